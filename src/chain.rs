//! The hash-chained JSONL log that the spawn ledger and the receiver's log
//! are both made of.
//!
//! One JSON object per line. Line `n` carries `"seq": n` (from 1) and
//! `"prev"`: the BLAKE3 (hex) of line `n - 1`'s bytes without its newline,
//! or [`GENESIS`] on the first line. Editing, dropping or reordering a line
//! therefore breaks the chain at the line after it. Writers hold an
//! exclusive lock on the file while they append, and flush each line to disk.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::Path;

use serde::de::DeserializeOwned;

/// What the first line's `prev` holds, as there is no line before it.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// BLAKE3 (hex) of one line, without its newline.
pub fn line_hash(line: &[u8]) -> String {
    blake3::hash(line).to_hex().to_string()
}

/// A line's place in the chain, as the line states it.
pub trait Link: DeserializeOwned {
    fn seq(&self) -> Option<u64>;
    fn prev(&self) -> Option<&str>;
}

/// Lines read as plain JSON: the receiver's log keeps whatever it was sent.
impl Link for serde_json::Value {
    fn seq(&self) -> Option<u64> {
        self.get("seq").and_then(serde_json::Value::as_u64)
    }
    fn prev(&self) -> Option<&str> {
        self.get("prev").and_then(serde_json::Value::as_str)
    }
}

/// What is wrong with the first line that does not fit the chain.
#[derive(Debug)]
pub enum Fault {
    /// The last line has no newline: it was cut off while written.
    Cut,
    /// The line is not what this log holds.
    Unparsable(serde_json::Error),
    /// Its `seq` (if any) is not its line number.
    Seq(Option<u64>),
    /// Its `prev` (if any) is not the hash of the line before.
    Prev(Option<String>),
}

/// The lines of a chain up to the first one that does not fit.
#[derive(Debug)]
pub struct Walked<T> {
    pub entries: Vec<T>,
    /// The first line that does not fit (numbered from 1), and why.
    pub broken: Option<(usize, Fault)>,
    /// The hash of the last line that fits ([`GENESIS`] if none): the
    /// `prev` the next line must carry.
    pub last_hash: String,
}

/// Whether the text ends in a line without its newline.
pub fn is_cut(text: &[u8]) -> bool {
    !text.is_empty() && !text.ends_with(b"\n")
}

/// Check every line of `text` in order.
pub fn walk<T: Link>(text: &[u8]) -> Walked<T> {
    let mut walked = Walked {
        entries: Vec::new(),
        broken: None,
        last_hash: GENESIS.to_owned(),
    };
    if text.is_empty() {
        return walked;
    }
    let cut = is_cut(text);
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        let fault = if cut && n == lines.len() {
            Some(Fault::Cut)
        } else {
            match serde_json::from_slice::<T>(line) {
                Err(e) => Some(Fault::Unparsable(e)),
                Ok(entry) if entry.seq() != Some(n as u64) => Some(Fault::Seq(entry.seq())),
                Ok(entry) if entry.prev() != Some(walked.last_hash.as_str()) => {
                    Some(Fault::Prev(entry.prev().map(str::to_owned)))
                }
                Ok(entry) => {
                    walked.entries.push(entry);
                    None
                }
            }
        };
        if let Some(fault) = fault {
            walked.broken = Some((n, fault));
            return walked;
        }
        walked.last_hash = line_hash(line);
    }
    walked
}

/// Whether [`Chain::open`] waits for another writer to finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// Wait: the writer holds the lock for one append (the ledger).
    Wait,
    /// Fail with `ErrorKind::WouldBlock`: the writer holds it for as long as
    /// it runs (the receiver).
    Fail,
}

/// A chain file opened for appending and locked against other writers until
/// it is dropped.
#[derive(Debug)]
pub struct Chain {
    file: File,
    /// The `seq` of the last line (0 when empty).
    pub seq: u64,
    /// The `prev` the next line must carry.
    pub last_hash: String,
}

impl Chain {
    /// Open (creating the file and its directory), lock, and read every
    /// line. When the chain is broken the caller must not append: a line
    /// chained to a broken log would never verify.
    pub fn open<T: Link>(path: &Path, lock: Lock) -> std::io::Result<(Chain, Walked<T>)> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        match lock {
            Lock::Wait => file.lock()?,
            Lock::Fail => file.try_lock().map_err(std::io::Error::from)?,
        }
        let mut text = Vec::new();
        file.read_to_end(&mut text)?;
        let walked = walk::<T>(&text);
        let chain = Chain {
            file,
            seq: walked.entries.len() as u64,
            last_hash: walked.last_hash.clone(),
        };
        Ok((chain, walked))
    }

    /// Append one line (given without its newline) and advance the chain.
    /// The line is written but not yet flushed: see [`Chain::sync`].
    pub fn append(&mut self, line: &[u8]) -> std::io::Result<()> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
        self.file.seek(SeekFrom::End(0))?;
        self.file.write_all(&bytes)?;
        self.seq += 1;
        self.last_hash = line_hash(line);
        Ok(())
    }

    /// Flush every line written so far to disk.
    pub fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    /// A second handle to the file, to flush it without holding the chain.
    pub fn try_clone_file(&self) -> std::io::Result<File> {
        self.file.try_clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain_of(n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut prev = GENESIS.to_owned();
        for seq in 1..=n {
            let line = serde_json::json!({"seq": seq, "x": "y", "prev": prev}).to_string();
            prev = line_hash(line.as_bytes());
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
        out
    }

    fn broken_at(text: &[u8]) -> Option<usize> {
        walk::<serde_json::Value>(text).broken.map(|(n, _)| n)
    }

    #[test]
    fn an_intact_chain_walks_to_its_end() {
        let w = walk::<serde_json::Value>(&chain_of(3));
        assert_eq!((w.entries.len(), w.broken.is_none()), (3, true));
        assert_eq!(broken_at(b""), None);
    }

    #[test]
    fn edits_drops_and_cuts_break_the_chain_where_they_show() {
        let text = String::from_utf8(chain_of(3)).unwrap_or_default();
        assert_eq!(
            broken_at(text.replacen("\"y\"", "\"z\"", 1).as_bytes()),
            Some(2)
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            broken_at(format!("{}\n{}\n", lines[0], lines[2]).as_bytes()),
            Some(2)
        );
        assert_eq!(broken_at(&text.as_bytes()[..text.len() - 3]), Some(3));
    }

    #[test]
    fn appends_continue_the_chain_and_a_second_exclusive_writer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/log.jsonl");
        let (mut chain, _) = Chain::open::<serde_json::Value>(&path, Lock::Fail).unwrap();
        for _ in 0..2 {
            let line = serde_json::json!({"seq": chain.seq + 1, "prev": chain.last_hash});
            chain.append(line.to_string().as_bytes()).unwrap();
        }
        chain.sync().unwrap();
        let second = Chain::open::<serde_json::Value>(&path, Lock::Fail);
        assert!(second.is_err(), "the lock is held");
        drop(chain);
        let (again, walked) = Chain::open::<serde_json::Value>(&path, Lock::Fail).unwrap();
        assert_eq!((again.seq, walked.broken.is_none()), (2, true));
    }
}
