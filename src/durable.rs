//! Flushing to disk what an operation wrote, without waiting for what
//! other processes wrote.
//!
//! Two ways, chosen at the moment of the flush ([`Method::choose`]):
//! - [`Method::Files`]: an `fsync` of each file and directory the operation
//!   wrote, many at a time ([`flush`]). A flush blocks on the device, not on
//!   a core, so they overlap, and a journaling filesystem (ext4, xfs) can
//!   commit the ones waiting at the same moment in one transaction. Each
//!   `fsync` asks the device to empty its write cache, so on a quiet disk
//!   this costs one cache flush per file.
//! - [`Method::Filesystem`]: one `syncfs` of the filesystem, which writes
//!   every dirty page on it and empties the device's cache once. Next to a
//!   build or a file sync it waits for their data too (measured at 5-280 ms
//!   where flushing our own files took 7-35 ms), so it is used only when the
//!   kernel has little else waiting to be written ([`QUIET`]): then it
//!   writes the same data as the `fsync`s, with one cache flush instead of
//!   one per file.
//!
//! docs/RELIABILITY.md §7.2 has the measurements behind both.

use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How many flushes one [`flush`] keeps in flight. More than the cores:
/// each one mostly waits for the device. Not many more: next to a writer
/// that keeps the disk's queue full, 48 per [`flush`] made a spawn several
/// times slower than 16 in three runs of three, and 4 a little slower (a
/// spawn runs up to three at once: two behind git and the last).
const IN_FLIGHT: usize = 16;

/// A flush that took this long waited for the device: from then on the
/// rest are flushed [`IN_FLIGHT`] at a time. One that returns sooner (a
/// tmpfs, a file already clean) costs less than starting a thread.
const WAITED: Duration = Duration::from_micros(100);

/// Data the kernel may have waiting to be written, all filesystems
/// together (`Dirty` + `Writeback` in `/proc/meminfo`), at or under which a
/// `syncfs` waits only for about our own data. Measured on an ext4 disk: a
/// spawn's `syncfs` took 2.3-2.9 ms with up to 32 MiB of other data dirty,
/// 19 ms with 64 MiB and 47 ms with 128 MiB; a quarter of the flat part
/// leaves room for a slower disk.
pub const QUIET: u64 = 8 << 20;

/// How a tree is flushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// An `fsync` of each file and directory ([`flush`]).
    Files,
    /// One `syncfs` of the filesystem ([`Watched::flush`]).
    Filesystem,
}

impl Method {
    /// [`Method::Filesystem`] when the filesystem is `watched` (one
    /// `syncfs` of it can be trusted) and the kernel has at most [`QUIET`]
    /// bytes waiting to be written; [`Method::Files`] otherwise, and when
    /// that is not known (no `/proc`).
    pub fn choose(watched: Option<&Watched>) -> Method {
        match watched {
            Some(_) => Method::for_pending(pending_writes()),
            None => Method::Files,
        }
    }

    /// The choice for `pending` bytes waiting to be written (`None`:
    /// unknown).
    fn for_pending(pending: Option<u64>) -> Method {
        match pending {
            Some(bytes) if bytes <= QUIET => Method::Filesystem,
            _ => Method::Files,
        }
    }
}

/// A filesystem whose write errors are watched from the moment it was
/// opened, so that one `syncfs` at the end can stand for an `fsync` of each
/// file written since: Linux (from 5.8) reports to a `syncfs` every write
/// on the filesystem that failed since its descriptor was opened, whether
/// or not another process has seen the failure.
pub struct Watched {
    dir: File,
}

impl Watched {
    /// Watch the filesystem of the directory `dir`, when one `syncfs` of it
    /// can be trusted: Linux 5.8 or later (before, `syncfs` reported no
    /// failed write) and a local filesystem whose own sync writes every
    /// file (ext2/3/4, xfs, btrfs, tmpfs; not FUSE, whose `syncfs` does not
    /// reach its daemon, nor a network filesystem). `None` otherwise: flush
    /// per file.
    pub fn start(dir: &Path) -> Option<Watched> {
        let dir = open_no_follow(dir).ok()?;
        platform::syncfs_is_trusted(&dir).then_some(Watched { dir })
    }

    /// `syncfs`: every dirty page of the filesystem and the device's write
    /// cache; fails if any write on it failed since [`Watched::start`].
    pub fn flush(&self) -> std::io::Result<()> {
        platform::syncfs(&self.dir)
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod platform {
    use std::fs::File;

    /// ext2, ext3 and ext4; xfs; btrfs; tmpfs (`statfs(2)`).
    const TRUSTED: [u64; 4] = [0xEF53, 0x5846_5342, 0x9123_683E, 0x0102_1994];

    pub(super) fn syncfs_is_trusted(dir: &File) -> bool {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let Ok(fs) = rustix::fs::fstatfs(dir) else {
            return false;
        };
        // `f_type`'s integer type differs between targets; the magic
        // numbers are 32 bits.
        #[allow(clippy::unnecessary_cast)]
        let kind = (fs.f_type as i64 as u64) & 0xffff_ffff;
        super::kernel_at_least(&release, (5, 8)) && TRUSTED.contains(&kind)
    }

    pub(super) fn syncfs(dir: &File) -> std::io::Result<()> {
        Ok(rustix::fs::syncfs(dir)?)
    }

    /// See [`super::start_writeback`].
    pub(super) fn start_writeback(file: &File) {
        use std::os::fd::AsRawFd as _;
        // SAFETY: `file` stays open for the call, which reads and writes
        // none of our memory.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod platform {
    use std::fs::File;

    pub(super) fn syncfs_is_trusted(_: &File) -> bool {
        false
    }

    pub(super) fn syncfs(_: &File) -> std::io::Result<()> {
        Err(std::io::ErrorKind::Unsupported.into())
    }

    pub(super) fn start_writeback(_: &File) {}
}

/// Whether the kernel `release` (`uname -r`, as in
/// `/proc/sys/kernel/osrelease`) is `at_least` (major, minor).
fn kernel_at_least(release: &str, at_least: (u32, u32)) -> bool {
    let mut parts = release.trim().split(['.', '-']);
    let mut number = || parts.next().and_then(|p| p.parse::<u32>().ok());
    match (number(), number()) {
        (Some(major), Some(minor)) => (major, minor) >= at_least,
        _ => false,
    }
}

/// The bytes the kernel has yet to write to disk (`Dirty` and `Writeback`
/// of `/proc/meminfo`), or `None` when that cannot be read.
pub fn pending_writes() -> Option<u64> {
    pending_in(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

/// [`pending_writes`] of a `/proc/meminfo` text: both fields must be there.
fn pending_in(meminfo: &str) -> Option<u64> {
    let field = |name: &str| {
        meminfo.lines().find_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix(':')?;
            let kib: u64 = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
            kib.checked_mul(1024)
        })
    };
    field("Dirty")?.checked_add(field("Writeback")?)
}

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
/// one waits for the device ([`WAITED`]); then the data of all the rest is
/// handed to the device at once ([`start_writeback`]) and they are flushed
/// [`IN_FLIGHT`] at a time. Returns the first error; a failed flush fails
/// the whole, since the kernel reports a writeback error to one caller
/// only.
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
            // The device is slow to answer: have it write the data of all
            // the rest at once, so that each flush below is left with its
            // file's metadata and the cache flush.
            entries
                .get(i + 1..)
                .unwrap_or_default()
                .iter()
                .for_each(start_writeback);
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
        // A helper that cannot be started (a process limit) leaves its
        // share to the others and to this thread.
        for _ in 0..helpers {
            let _ = std::thread::Builder::new().spawn_scoped(scope, work);
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

/// Start writing a file's data to the device, without waiting for it or
/// for the device's cache (`sync_file_range` with `SYNC_FILE_RANGE_WRITE`).
/// Only a hint: its errors are left for the `fsync` that follows, which
/// sees them (a write-only `sync_file_range` does not consume the file's
/// writeback error, so a later opener still gets it).
fn start_writeback(entry: &Entry) {
    if entry.dir {
        return;
    }
    if let Ok(file) = open_no_follow(&entry.path) {
        platform::start_writeback(&file);
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
        flush(&tree(dir.path(), |_, _| Take::Yes).unwrap()).unwrap();
        if let Some(watched) = Watched::start(dir.path()) {
            watched.flush().unwrap();
        }
    }

    #[test]
    fn pending_writes_add_dirty_and_writeback_and_need_both() {
        let meminfo = "MemTotal:       24000000 kB\nDirty:              2872 kB\nWriteback:            16 kB\n";
        assert_eq!(pending_in(meminfo), Some((2872 + 16) * 1024));
        assert_eq!(pending_in("Dirty:  5 kB\n"), None);
        assert_eq!(pending_in("Dirty: x kB\nWriteback: 0 kB\n"), None);
        // A prefix of another field's name is not the field.
        assert_eq!(
            pending_in("DirtyX: 1 kB\nDirty: 2 kB\nWriteback: 0 kB\n"),
            Some(2048)
        );
    }

    #[test]
    fn kernel_releases_compare_by_major_and_minor() {
        assert!(kernel_at_least("5.8.0", (5, 8)));
        assert!(kernel_at_least("6.18.44-fc-v1252\n", (5, 8)));
        assert!(kernel_at_least("6.1.0-28-amd64", (5, 8)));
        assert!(!kernel_at_least("5.7.19", (5, 8)));
        assert!(!kernel_at_least("4.18.0-553.el8_10.x86_64", (5, 8)));
        assert!(!kernel_at_least("", (5, 8)));
        assert!(!kernel_at_least("linux", (5, 8)));
    }

    #[test]
    fn an_unwatched_filesystem_is_always_flushed_per_file() {
        assert_eq!(Method::choose(None), Method::Files);
    }

    #[test]
    fn a_quiet_kernel_gets_one_filesystem_flush_and_a_busy_or_unknown_one_per_file_flushes() {
        assert_eq!(Method::for_pending(Some(0)), Method::Filesystem);
        assert_eq!(Method::for_pending(Some(QUIET)), Method::Filesystem);
        assert_eq!(Method::for_pending(Some(QUIET + 1)), Method::Files);
        assert_eq!(Method::for_pending(Some(300 << 20)), Method::Files);
        assert_eq!(Method::for_pending(None), Method::Files);
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
