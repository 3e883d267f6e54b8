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
//!
//! # What is checked when
//!
//! The rules for one line live in [`check_line`]; every reader applies them
//! through it. There are two ways to open a chain for appending:
//!
//! - [`Chain::open`] and [`Chain::open_walking`] walk every line from the
//!   start (streaming, one line in memory at a time): `ledger add` (which
//!   looks for a duplicate anyway) and the receiver at start use them, as
//!   `ledger verify` and `ledger list` walk every line they show.
//! - [`Chain::open_at_head`] is what a spawn or an update appends through,
//!   so that its cost does not grow with the ledger: under the lock it
//!   reads only the file's last two lines, from the end, and requires that
//!   the file ends in a newline, that the last line parses with a `seq`,
//!   that the line before it parses with the `seq` before that, and that the
//!   last line's `prev` is that line's hash (or, for a file of one line,
//!   that its `seq` is 1 and its `prev` is [`GENESIS`]): the line a new
//!   line is chained onto, and its link to the one before. When any of it
//!   does not hold, the whole chain is walked
//!   as [`Chain::open`] walks it, so a broken file is refused with exactly
//!   the line and reason a walk finds (a cut-off last line included).
//!
//! What an append through [`Chain::open_at_head`] no longer notices: an
//! edited, removed or reordered line anywhere before the last two, or a
//! last line's `seq` that is not its line number because earlier lines were
//! removed. The new line is chained on as usual, and the break stays where
//! it was: `ledger verify` and `ledger list` name it, as they did before
//! the append. Nothing is remembered between appends (no sidecar file): a
//! head file would cost every append one more durable write, where reading
//! two lines from the end costs one `pread`, and a ledger written by an
//! earlier release needs nothing new.

mod repair;
#[cfg(test)]
mod tests;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write as _};
use std::os::unix::fs::FileExt as _;
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
    /// Read one line (without its newline). A type that reads only part of
    /// a line overrides this to refuse exactly the lines a full read
    /// refuses.
    fn parse(line: &[u8]) -> serde_json::Result<Self> {
        serde_json::from_slice(line)
    }
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

/// A chain walked without keeping its lines.
#[derive(Debug)]
pub struct Checked {
    /// The `seq` of the last line that fits (0 if none).
    pub seq: u64,
    /// The first line that does not fit (numbered from 1), and why.
    pub broken: Option<(usize, Fault)>,
    /// The hash of the last line that fits ([`GENESIS`] if none).
    pub last_hash: String,
}

/// Whether the text ends in a line without its newline.
pub fn is_cut(text: &[u8]) -> bool {
    !text.is_empty() && !text.ends_with(b"\n")
}

/// The chain's rule for line `n` (given without its newline): it reads as
/// `T`, states `seq` `n`, and states as `prev` the hash of the line before
/// it, `prev` (checked only when that line is at hand: `Some`).
pub fn check_line<T: Link>(line: &[u8], n: u64, prev: Option<&str>) -> Result<T, Fault> {
    let entry = T::parse(line).map_err(Fault::Unparsable)?;
    if entry.seq() != Some(n) {
        return Err(Fault::Seq(entry.seq()));
    }
    match prev {
        Some(prev) if entry.prev() != Some(prev) => {
            Err(Fault::Prev(entry.prev().map(str::to_owned)))
        }
        _ => Ok(entry),
    }
}

/// Check every line of `text` in order, keeping them.
pub fn walk<T: Link>(text: &[u8]) -> Walked<T> {
    let mut entries = Vec::new();
    // Reading from a byte slice cannot fail.
    let checked = walk_from::<T>(text, |e| entries.push(e)).unwrap_or_else(|e| Checked {
        seq: 0,
        broken: Some((1, Fault::Unparsable(serde_json::Error::io(e)))),
        last_hash: GENESIS.to_owned(),
    });
    Walked {
        entries,
        broken: checked.broken,
        last_hash: checked.last_hash,
    }
}

/// Check the lines `reader` gives, in order, one at a time: `each` is
/// handed every line that fits, and nothing else is kept, so a walk of any
/// length takes the memory of its longest line. Stops at the first line
/// that does not fit; `Err` only when reading fails.
pub fn walk_from<T: Link>(
    mut reader: impl BufRead,
    mut each: impl FnMut(T),
) -> std::io::Result<Checked> {
    let mut checked = Checked {
        seq: 0,
        broken: None,
        last_hash: GENESIS.to_owned(),
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(checked);
        }
        let n = checked.seq + 1;
        let fitted = if line.last() == Some(&b'\n') {
            line.pop();
            check_line::<T>(&line, n, Some(&checked.last_hash))
        } else {
            Err(Fault::Cut)
        };
        match fitted {
            Ok(entry) => {
                each(entry);
                checked.seq = n;
                checked.last_hash = line_hash(&line);
            }
            Err(fault) => {
                checked.broken = Some((usize::try_from(n).unwrap_or(usize::MAX), fault));
                return Ok(checked);
            }
        }
    }
}

/// How many bytes [`head`] first reads from the end of a file; twice as
/// many each time that does not hold its last two lines.
const TAIL_READ: u64 = 16 * 1024;

/// The `seq` and hash of the last line of `file` (`len` bytes long), if the
/// last two lines show an intact head (see the module's doc); `None` if
/// not, or if the file ends in a partial line. Reads from the end only as
/// far back as the start of the line before the last.
fn head<T: Link>(file: &File, len: u64) -> std::io::Result<Option<(u64, String)>> {
    if len == 0 {
        return Ok(Some((0, GENESIS.to_owned())));
    }
    let mut want = TAIL_READ;
    loop {
        let start = len.saturating_sub(want);
        let mut tail = vec![0; usize::try_from(len - start).unwrap_or(usize::MAX)];
        file.read_exact_at(&mut tail, start)?;
        let Some(body) = tail.strip_suffix(b"\n") else {
            return Ok(None);
        };
        let mut lines = body.rsplitn(3, |&b| b == b'\n');
        let last = lines.next().unwrap_or_default();
        let before = lines.next();
        // Both lines are whole if a newline precedes the one before the
        // last, or the read began at the start of the file.
        if start == 0 || lines.next().is_some() {
            return Ok(fits_at_head::<T>(last, before));
        }
        want = want.saturating_mul(2);
    }
}

/// Whether `last`, the last line, fits onto `before`, the line before it
/// (`None`: there is none), and if so its `seq` and hash.
fn fits_at_head<T: Link>(last: &[u8], before: Option<&[u8]>) -> Option<(u64, String)> {
    let seq = T::parse(last).ok()?.seq()?;
    let prev = match before {
        None if seq == 1 => GENESIS.to_owned(),
        None => return None,
        Some(before) => {
            check_line::<T>(before, seq.checked_sub(1)?, None).ok()?;
            line_hash(before)
        }
    };
    check_line::<T>(last, seq, Some(&prev)).ok()?;
    Some((seq, line_hash(last)))
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
        let mut entries = Vec::new();
        let (chain, checked) = Chain::open_walking::<T>(path, lock, |e| entries.push(e))?;
        let walked = Walked {
            entries,
            broken: checked.broken,
            last_hash: checked.last_hash,
        };
        Ok((chain, walked))
    }

    /// Like [`Chain::open`], handing each line that fits to `each` instead
    /// of keeping it: the file is read line by line, never held whole.
    pub fn open_walking<T: Link>(
        path: &Path,
        lock: Lock,
        each: impl FnMut(T),
    ) -> std::io::Result<(Chain, Checked)> {
        let file = open_locked(path, lock)?;
        let len = file.metadata()?.len();
        let checked = walk_from::<T>(BufReader::new(&file), each)?;
        Ok((Chain::at(file, len, &checked), checked))
    }

    /// Open and lock as [`Chain::open`] does, but check only the file's
    /// last two lines (see the module's doc), so that the cost does not
    /// grow with the chain; when they do not show an intact head, walk
    /// every line to find what is wrong.
    pub fn open_at_head<T: Link>(path: &Path, lock: Lock) -> std::io::Result<(Chain, Checked)> {
        let file = open_locked(path, lock)?;
        let len = file.metadata()?.len();
        let checked = match head::<T>(&file, len)? {
            Some((seq, last_hash)) => Checked {
                seq,
                broken: None,
                last_hash,
            },
            None => walk_from::<T>(BufReader::new(&file), |_| {})?,
        };
        Ok((Chain::at(file, len, &checked), checked))
    }

    /// The chain of `file`, `len` bytes long, as `checked` found it.
    fn at(file: File, len: u64, checked: &Checked) -> Chain {
        Chain {
            file,
            seq: checked.seq,
            last_hash: checked.last_hash.clone(),
            len,
            torn: checked.broken.is_some(),
        }
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

/// Open `path` for reading and appending (creating it and its directory)
/// and take the writers' lock.
fn open_locked(path: &Path, lock: Lock) -> std::io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)?;
    match lock {
        Lock::Wait => file.lock()?,
        Lock::Fail => file.try_lock().map_err(std::io::Error::from)?,
    }
    Ok(file)
}
