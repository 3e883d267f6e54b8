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
//! crash mid-write; [`repair`] sets it aside and keeps every complete line.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

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

    /// Flush every line written so far to disk.
    pub fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    /// A second handle to the file, to flush it without holding the chain.
    pub fn try_clone_file(&self) -> std::io::Result<File> {
        self.file.try_clone()
    }
}

/// What [`repair`] found, and did.
#[derive(Debug)]
pub struct Repaired<T> {
    /// The chain as it was found.
    pub walked: Walked<T>,
    /// When its last line was cut off: where the cut-off bytes were saved,
    /// and how many there were. The file now ends after the line before.
    pub saved: Option<(PathBuf, usize)>,
}

/// How long [`repair`] waits for another writer to let go of the file.
const REPAIR_LOCK_WAIT: Duration = Duration::from_secs(5);

/// Mend a chain whose last line was cut off while written (a crash, or a
/// full disk under an older version): save the cut-off bytes to
/// `PATH.torn-TIME` (never replacing a file), then cut the file back to the
/// end of its last complete line and flush it, all under the writers' lock.
/// Every complete line is kept, so the chain verifies again. A chain that
/// is intact, or broken anywhere else, is left as it is (see
/// [`Repaired::walked`]). Fails with `ErrorKind::WouldBlock` if another
/// process holds the lock for longer than a few seconds (a receiver holds
/// its log as long as it runs), and `NotFound` if there is no file.
pub fn repair<T: Link>(path: &Path) -> std::io::Result<Repaired<T>> {
    repair_within(path, REPAIR_LOCK_WAIT)
}

fn repair_within<T: Link>(path: &Path, wait: Duration) -> std::io::Result<Repaired<T>> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    lock_within(&file, wait)?;
    let mut text = Vec::new();
    file.read_to_end(&mut text)?;
    let walked = walk::<T>(&text);
    let Some((_, Fault::Cut)) = &walked.broken else {
        return Ok(Repaired {
            walked,
            saved: None,
        });
    };
    let keep = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let torn = &text[keep..];
    let saved = save_aside(path, torn)?;
    file.set_len(keep as u64)?;
    file.sync_all()?;
    Ok(Repaired {
        walked,
        saved: Some((saved, torn.len())),
    })
}

/// Take the writers' lock, trying again for up to `wait`.
fn lock_within(file: &File, wait: Duration) -> std::io::Result<()> {
    let step = Duration::from_millis(50);
    let tries = wait.as_millis() / step.as_millis();
    for _ in 0..tries {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) => std::thread::sleep(step),
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
    file.try_lock().map_err(std::io::Error::from)
}

/// Write `bytes` to a new `PATH.torn-YYYYMMDDTHHMMSSZ` (or `…-2`, `…-3`
/// when that exists) beside `path`, atomically, and return its path.
fn save_aside(path: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let opts = crate::fsutil::WriteOptions {
        replace: false,
        ..crate::fsutil::WriteOptions::DATA
    };
    let mut last = None;
    for n in 1..=100 {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".torn-{stamp}"));
        if n > 1 {
            name.push(format!("-{n}"));
        }
        let aside = PathBuf::from(name);
        match crate::fsutil::write_atomic(&aside, bytes, opts) {
            Ok(()) => return Ok(aside),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| ErrorKind::AlreadyExists.into()))
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

    /// A chain file that takes `room` more bytes, then fails like a full
    /// disk; with `fail_sync`, its next flush fails; with `undo_fails`,
    /// cutting it back fails too.
    struct FullDisk {
        file: File,
        room: usize,
        fail_sync: bool,
        undo_fails: bool,
    }

    impl Sink for FullDisk {
        fn append_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
            let fits = bytes.len().min(self.room);
            self.file.write_all(&bytes[..fits])?;
            self.room -= fits;
            if fits < bytes.len() {
                return Err(ErrorKind::StorageFull.into());
            }
            Ok(())
        }
        fn cut_to(&mut self, len: u64) -> std::io::Result<()> {
            if self.undo_fails {
                return Err(std::io::Error::other("injected: cannot truncate"));
            }
            self.file.set_len(len)
        }
        fn sync(&mut self) -> std::io::Result<()> {
            if std::mem::take(&mut self.fail_sync) {
                return Err(std::io::Error::other("injected: cannot sync"));
            }
            self.file.sync_data()
        }
    }

    fn next_line(chain: &Chain) -> Vec<u8> {
        serde_json::json!({"seq": chain.seq + 1, "pad": "x".repeat(40), "prev": chain.last_hash})
            .to_string()
            .into_bytes()
    }

    fn full_disk(path: &Path, room: usize) -> FullDisk {
        let file = OpenOptions::new().append(true).open(path).unwrap();
        FullDisk {
            file,
            room,
            fail_sync: false,
            undo_fails: false,
        }
    }

    #[test]
    fn a_failed_append_is_undone_wherever_the_disk_fills_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let (mut chain, _) = Chain::open::<serde_json::Value>(&path, Lock::Wait).unwrap();
        for _ in 0..2 {
            chain.append_synced(&next_line(&chain)).unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let line = next_line(&chain);
        // Every byte the line and its newline could be cut after, and a
        // failed flush after the whole line was written.
        for room in 0..=line.len() + 1 {
            for sync in [false, true] {
                let mut sink = full_disk(&path, room);
                sink.fail_sync = room > line.len();
                let sync = sync || sink.fail_sync;
                let err = chain.append_through(&mut sink, &line, sync);
                assert!(err.is_err(), "room {room}");
                assert_eq!(std::fs::read(&path).unwrap(), before, "room {room}");
                assert_eq!(chain.seq, 2, "the chain did not advance");
            }
        }
        // Space again: the next append continues the chain.
        chain.append_synced(&line).unwrap();
        drop(chain);
        let text = std::fs::read(&path).unwrap();
        let walked = walk::<serde_json::Value>(&text);
        assert_eq!((walked.entries.len(), walked.broken.is_none()), (3, true));
    }

    #[test]
    fn a_failed_undo_stops_later_appends_and_repair_mends_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let (mut chain, _) = Chain::open::<serde_json::Value>(&path, Lock::Wait).unwrap();
        chain.append_synced(&next_line(&chain)).unwrap();
        let before = std::fs::read(&path).unwrap();
        let line = next_line(&chain);
        let mut sink = full_disk(&path, 10);
        sink.undo_fails = true;
        let err = chain.append_through(&mut sink, &line, false).unwrap_err();
        assert!(err.to_string().contains("could not be removed"), "{err}");
        let err = chain.append(&line).unwrap_err();
        assert!(err.to_string().contains("nothing may be chained"), "{err}");
        drop(chain);
        assert_eq!(std::fs::read(&path).unwrap().len(), before.len() + 10);

        let repaired = repair::<serde_json::Value>(&path).unwrap();
        let (saved, bytes) = repaired.saved.unwrap();
        assert_eq!((repaired.walked.entries.len(), bytes), (1, 10));
        assert_eq!(std::fs::read(&saved).unwrap(), &line[..10]);
        assert_eq!(std::fs::read(&path).unwrap(), before);
        let (mut chain, walked) = Chain::open::<serde_json::Value>(&path, Lock::Wait).unwrap();
        assert!(walked.broken.is_none());
        chain.append_synced(&next_line(&chain)).unwrap();
    }

    #[test]
    fn repair_leaves_intact_and_otherwise_broken_chains_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        std::fs::write(&path, chain_of(3)).unwrap();
        let r = repair::<serde_json::Value>(&path).unwrap();
        assert!(r.saved.is_none() && r.walked.broken.is_none());
        let edited = String::from_utf8(chain_of(3))
            .unwrap()
            .replacen("\"y\"", "\"z\"", 1)
            + "{\"cut";
        std::fs::write(&path, &edited).unwrap();
        let r = repair::<serde_json::Value>(&path).unwrap();
        assert!(matches!(r.walked.broken, Some((2, Fault::Prev(_)))));
        assert!(r.saved.is_none());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), edited);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let missing = repair::<serde_json::Value>(&dir.path().join("none")).unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn repair_waits_for_the_writers_lock_and_saves_aside_without_replacing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let mut text = chain_of(2);
        text.extend_from_slice(b"{\"seq\":3,\"pr");
        std::fs::write(&path, &text).unwrap();
        let (held, _) = Chain::open::<serde_json::Value>(&path, Lock::Fail).unwrap();
        let err = repair_within::<serde_json::Value>(&path, Duration::from_millis(100));
        assert_eq!(err.unwrap_err().kind(), ErrorKind::WouldBlock);
        drop(held);
        let first = save_aside(&path, b"a").unwrap();
        let r = repair::<serde_json::Value>(&path).unwrap();
        let (second, _) = r.saved.unwrap();
        assert_ne!(first, second);
        assert_eq!(std::fs::read(&first).unwrap(), b"a");
        assert_eq!(std::fs::read(&second).unwrap(), b"{\"seq\":3,\"pr");
        assert_eq!(std::fs::read(&path).unwrap(), chain_of(2));
    }
}
