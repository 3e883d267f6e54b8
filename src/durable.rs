//! Flushing to disk exactly what an operation wrote, never the whole
//! filesystem.
//!
//! A `syncfs` (or `sync`) flushes every dirty page of the filesystem, other
//! processes' included, so next to a build or a file sync it waits for their
//! data: measured at 5-280 ms where flushing our own files took 7-35 ms (see
//! docs/RELIABILITY.md §7). The functions here `fsync` named files and
//! directories instead, many at a time: a flush blocks on the device, not on
//! a core, and a journaling filesystem (ext4, xfs) can commit the flushes
//! that are waiting at the same moment in one journal transaction.

use std::collections::HashSet;
use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How many flushes are in flight at once. More than the cores: each one
/// mostly waits for the device.
const IN_FLIGHT: usize = 16;

/// A flush that took this long waited for the device: from then on the
/// rest are flushed [`IN_FLIGHT`] at a time. One that returns sooner (a
/// tmpfs, a file already clean) costs less than starting a thread.
const WAITED: Duration = Duration::from_micros(100);

/// A file's identity in a tree on one filesystem (its inode number), to
/// remember what was flushed.
pub type FileId = u64;

/// One path to flush, and whether it is a directory.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: PathBuf,
    pub dir: bool,
    pub id: FileId,
}

/// Flush each entry's contents and metadata (`fsync`: the mode is part of
/// what is promised, which `fdatasync` need not write), one at a time until
/// one waits for the device ([`WAITED`]), then [`IN_FLIGHT`] at a time. Returns the first error; a failed flush fails the whole, since the
/// kernel reports a writeback error to one caller only.
pub fn flush(entries: &[Entry]) -> std::io::Result<()> {
    let next = AtomicUsize::new(0);
    // Flushes that return at once (tmpfs, or nothing left to write) are
    // not worth a thread each: go on alone until one waits for the device,
    // then share the rest out.
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(entry) = entries.get(i) else {
            return Ok(());
        };
        let started = Instant::now();
        flush_one(entry)?;
        if started.elapsed() >= WAITED {
            break;
        }
    }
    let failed: Mutex<Option<std::io::Error>> = Mutex::new(None);
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(entry) = entries.get(i) else { break };
            if let Err(e) = flush_one(entry) {
                if let Ok(mut slot) = failed.lock() {
                    slot.get_or_insert(e);
                }
                // Stop the others early: the operation fails anyway.
                next.store(entries.len(), Ordering::Relaxed);
                break;
            }
        }
    };
    let helpers = IN_FLIGHT.min(entries.len()).saturating_sub(1);
    std::thread::scope(|scope| {
        for _ in 0..helpers {
            scope.spawn(work);
        }
        work();
    });
    match failed.into_inner() {
        Ok(Some(e)) => Err(e),
        Ok(None) => Ok(()),
        Err(_) => Err(std::io::Error::other("a flush thread panicked")),
    }
}

fn flush_one(entry: &Entry) -> std::io::Result<()> {
    let file = open_no_follow(&entry.path)?;
    match file.sync_all() {
        // Filesystems that cannot sync a directory have nothing to flush.
        Err(e) if entry.dir && e.kind() == ErrorKind::InvalidInput => Ok(()),
        other => other,
    }
}

/// `path` itself for reading (enough to flush it), never a symlink's target.
fn open_no_follow(path: &Path) -> std::io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    Ok(File::from(rustix::fs::open(path, flags, Mode::empty())?))
}

/// Flush the directory `dir` itself: the names in it, as after a rename
/// into it. Filesystems that cannot sync a directory (`EINVAL`) have
/// nothing to flush.
pub fn flush_dir(dir: &Path) -> std::io::Result<()> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        Err(e) if e.kind() == ErrorKind::InvalidInput => Ok(()),
        other => other,
    }
}

/// Whether [`tree`] lists an entry, and walks into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Listed (and walked into, if a directory).
    Yes,
    /// Not listed, but walked into.
    No,
    /// Neither listed nor walked into.
    Prune,
}

/// Every directory and regular file under `root` (`root` included), symlinks
/// not followed and not listed (a symlink lives in its directory, which is
/// listed), as `take` decides from its path relative to `root` and whether
/// it is a directory. The names and inode numbers come from reading the
/// directories alone, without a `stat` of each entry.
pub fn tree(root: &Path, take: impl Fn(&Path, bool) -> Take) -> std::io::Result<Vec<Entry>> {
    use walkdir::DirEntryExt as _;
    let mut out = Vec::new();
    let relative = |e: &walkdir::DirEntry| {
        e.path()
            .strip_prefix(root)
            .map(Path::to_path_buf)
            .unwrap_or_default()
    };
    let walker = walkdir::WalkDir::new(root)
        .into_iter()
        .filter_entry(|e| take(&relative(e), e.file_type().is_dir()) != Take::Prune);
    for entry in walker {
        let entry = entry.map_err(std::io::Error::from)?;
        let kind = entry.file_type();
        if !(kind.is_dir() || kind.is_file()) || take(&relative(&entry), kind.is_dir()) != Take::Yes
        {
            continue;
        }
        out.push(Entry {
            path: entry.path().to_path_buf(),
            dir: kind.is_dir(),
            id: entry.ino(),
        });
    }
    Ok(out)
}

/// Flush every directory and regular file under `root` except those in
/// `done` (flushed before, and known not to have changed since).
pub fn flush_tree_except(root: &Path, done: &HashSet<FileId>) -> std::io::Result<()> {
    let mut entries = tree(root, |_, _| Take::Yes)?;
    entries.retain(|e| !done.contains(&e.id));
    flush(&entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_lists_every_file_and_directory_and_no_symlink() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/f"), "x").unwrap();
        std::fs::write(dir.path().join("g"), "y").unwrap();
        std::os::unix::fs::symlink("g", dir.path().join("link")).unwrap();
        let mut names: Vec<(String, bool)> = tree(dir.path(), |_, _| Take::Yes)
            .unwrap()
            .into_iter()
            .map(|e| {
                let rel = e.path.strip_prefix(dir.path()).unwrap();
                (rel.display().to_string(), e.dir)
            })
            .collect();
        names.sort();
        let expected = [
            ("", true),
            ("a", true),
            ("a/b", true),
            ("a/b/f", false),
            ("g", false),
        ];
        let expected: Vec<(String, bool)> =
            expected.iter().map(|(p, d)| (p.to_string(), *d)).collect();
        assert_eq!(names, expected);
        flush_tree_except(dir.path(), &HashSet::new()).unwrap();
    }

    #[test]
    fn a_flush_of_a_path_that_is_gone_fails() {
        let dir = tempfile::tempdir().unwrap();
        let gone = Entry {
            path: dir.path().join("gone"),
            dir: false,
            id: 0,
        };
        let err = flush(&[gone]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
}
