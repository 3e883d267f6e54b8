//! The hash-chained JSONL log that the spawn ledger and the receiver's log
//! are both made of.
//!
//! One JSON object per line. Line `n` carries `"seq": n` (from 1) and
//! `"prev"`: the BLAKE3 (hex) of line `n - 1`'s bytes without its newline,
//! or [`GENESIS`] on the first line. Editing, dropping or reordering a line
//! therefore breaks the chain at the line after it. Writers hold an
//! exclusive lock on the file while they append, and flush each line to disk.
//!
//! An append that fails (a full disk) is undone before the error is
//! reported: the file is cut back to its length before the append and
//! flushed, so a failed write never leaves a partial line that later lines
//! would be chained onto. A partial last line can then only come from a
//! crash mid-write; [`repair()`] sets it aside and keeps every complete line.

mod repair;
#[cfg(test)]
mod tests;

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::Path;

use serde::de::DeserializeOwned;

pub use repair::{Repaired, repair};

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
    /// The file's length after the last complete line: what a failed
    /// append is cut back to.
    len: u64,
    /// Set when a failed append could not be undone: the file may end in a
    /// partial line, so nothing more may be chained onto it.
    torn: bool,
}

/// What an append writes to: the chain's file, or in tests a writer that
/// fails on cue.
trait Sink {
    /// Write all of `bytes` at the end.
    fn append_all(&mut self, bytes: &[u8]) -> std::io::Result<()>;
    /// Cut the file back to `len` bytes.
    fn cut_to(&mut self, len: u64) -> std::io::Result<()>;
    fn sync(&mut self) -> std::io::Result<()>;
}

impl Sink for &File {
    /// The file is opened with `O_APPEND`, so every write goes to its end.
    fn append_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.write_all(bytes)
    }
    fn cut_to(&mut self, len: u64) -> std::io::Result<()> {
        self.set_len(len)
    }
    fn sync(&mut self) -> std::io::Result<()> {
        self.sync_data()
    }
}

/// The file's new length, or why the line is not in it and whether the file
/// may now end in part of it.
type Written = Result<u64, (std::io::Error, bool)>;

/// Append `line` and its newline to a sink of length `len`, undoing it if
/// that fails (see [`append_or_undo`]). Refused if the sink is `torn`.
fn write_line(sink: &mut impl Sink, len: u64, torn: bool, line: &[u8], sync: bool) -> Written {
    if torn {
        let e = std::io::Error::other(
            "it is broken, or ends in a partial line a failed write could not remove, so nothing may be chained onto it",
        );
        return Err((e, true));
    }
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line);
    bytes.push(b'\n');
    match append_or_undo(sink, len, &bytes, sync) {
        Ok(()) => Ok(len + bytes.len() as u64),
        Err((e, None)) => Err((e, false)),
        Err((e, Some(undo))) => {
            let message = format!("{e}, and the partial line could not be removed ({undo})");
            Err((std::io::Error::new(e.kind(), message), true))
        }
    }
}

/// Append `bytes` to a sink of length `len` (then flush it too if `sync`);
/// if that fails, cut the sink back to `len` and flush it before returning
/// the error. The error's second part says whether the undo failed as well,
/// in which case the sink may end in part of `bytes`.
fn append_or_undo(
    sink: &mut impl Sink,
    len: u64,
    bytes: &[u8],
    sync: bool,
) -> Result<(), (std::io::Error, Option<std::io::Error>)> {
    let written = sink
        .append_all(bytes)
        .and_then(|()| if sync { sink.sync() } else { Ok(()) });
    match written {
        Ok(()) => Ok(()),
        Err(e) => Err((e, sink.cut_to(len).and_then(|()| sink.sync()).err())),
    }
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
            len: text.len() as u64,
            torn: walked.broken.is_some(),
        };
        Ok((chain, walked))
    }

    /// Append one line (given without its newline) and advance the chain.
    /// The line is written but not yet flushed: see [`Chain::sync`]. If the
    /// write fails, the file is cut back to where it was (and flushed)
    /// before the error is returned, and the chain does not advance.
    pub fn append(&mut self, line: &[u8]) -> std::io::Result<()> {
        self.append_with(line, false)
    }

    /// Like [`Chain::append`], and flush the line to disk; if the flush
    /// fails the line is undone too.
    pub fn append_synced(&mut self, line: &[u8]) -> std::io::Result<()> {
        self.append_with(line, true)
    }

    fn append_with(&mut self, line: &[u8], sync: bool) -> std::io::Result<()> {
        let mut file = &self.file;
        let outcome = write_line(&mut file, self.len, self.torn, line, sync);
        self.settle(outcome, line)
    }

    /// Advance the chain past `line` if it was written; else keep it where
    /// it is, and mark it torn if the undo failed too.
    fn settle(&mut self, outcome: Written, line: &[u8]) -> std::io::Result<()> {
        match outcome {
            Ok(len) => {
                self.len = len;
                self.seq += 1;
                self.last_hash = line_hash(line);
                Ok(())
            }
            Err((e, torn)) => {
                self.torn |= torn;
                Err(e)
            }
        }
    }

    /// [`Chain::append`] through a writer that fails on cue.
    #[cfg(test)]
    fn append_through(
        &mut self,
        sink: &mut impl Sink,
        line: &[u8],
        sync: bool,
    ) -> std::io::Result<()> {
        let outcome = write_line(sink, self.len, self.torn, line, sync);
        self.settle(outcome, line)
    }

    /// The file's length after the last complete line: where the next
    /// line will start.
    pub fn end_offset(&self) -> u64 {
        self.len
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
