//! Walking a tree and hashing every file in it, as a receipt records it.
//!
//! Files are hashed in parallel with rayon; files of 4 MiB and more are also
//! split across threads with `update_rayon`, 1 MiB at a time, while the next
//! 1 MiB is read. Smaller files are read through one buffer per thread.
//! Memory therefore stays the same whatever the file sizes.
//!
//! Files are read, never memory-mapped: another process that truncates a
//! mapped file turns the next access into SIGBUS, which would end the whole
//! process without a word. A file whose size, modification or change time
//! differs after hashing from before, or that ends early, changed while it
//! was hashed: that is an error (exit code `changed`), since its hash could
//! be of no version of the file that ever existed.

use std::cell::RefCell;
use std::fs::{self, File};
use std::io::{ErrorKind, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use rustix::fs::{Mode, OFlags};
use walkdir::WalkDir;

use crate::error::{ExitCode, fail};
use crate::receipt::merkle::{Hash, MODE_EXEC, MODE_FILE, MODE_LINK};
use crate::receipt::meta;

const BUF_LEN: usize = 256 << 10;
/// What a large file is read and hashed in: large enough for
/// `update_rayon` to pay, small enough to be hashed while it is still in
/// the CPU's cache (8 MiB windows made `receipt` 40-55 % slower than 1 MiB).
const WINDOW: usize = 1 << 20;
/// Below this, splitting one file across threads costs more than it saves.
const PARALLEL_FILE_MIN: u64 = 4 << 20;
/// Trees with fewer files finish before a progress bar would be readable.
const PROGRESS_MIN_FILES: usize = 2000;
/// Trees with fewer files are hashed on the calling thread: starting the
/// thread pool costs more than a spawned repository's few dozen files take
/// to hash, and its idle threads then spin on the CPUs git needs next (a
/// file of over [`PARALLEL_FILE_MIN`] is still hashed across threads).
const PARALLEL_MIN_FILES: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    pub path: String,
    pub mode: u32,
    pub size: u64,
    pub blake3: Hash,
}

struct Pending {
    rel: String,
    abs: PathBuf,
    mode: u32,
}

/// Every file, executable and symlink under `dir`, sorted by path bytes.
///
/// `.git` at the top is git's own state, and the metadata files
/// ([`meta::FILES`]) are not covered by the receipt,
/// so both are left out. Symlinks are recorded, never followed, so a link
/// pointing outside the tree reveals nothing about what it points to.
pub fn scan(dir: &Path) -> Result<Vec<Scanned>> {
    scan_skipping(dir, &|_| false).map(|(files, _)| files)
}

/// Like `scan`, but leaves out (and never reads) every file whose relative
/// path `skip` accepts; also returns how many were left out.
pub fn scan_skipping(
    dir: &Path,
    skip: &(dyn Fn(&str) -> bool + Sync),
) -> Result<(Vec<Scanned>, usize)> {
    let meta = fs::metadata(dir).map_err(|e| {
        fail(
            ExitCode::Io,
            format!(
                "cannot read directory {}: {e}; check the path",
                dir.display()
            ),
        )
    })?;
    if !meta.is_dir() {
        return Err(fail(
            ExitCode::Io,
            format!(
                "{} is not a directory; pass the repository's root directory",
                dir.display()
            ),
        ));
    }
    let (mut pending, skipped) = list(dir, skip)?;
    pending.sort_unstable_by(|a, b| a.rel.cmp(&b.rel));
    Ok((hash_all(&pending)?, skipped))
}

fn list(dir: &Path, skip: &(dyn Fn(&str) -> bool + Sync)) -> Result<(Vec<Pending>, usize)> {
    let walk = WalkDir::new(dir)
        .follow_links(false)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| !(e.depth() == 1 && e.file_name() == ".git"));
    let mut out = Vec::new();
    let mut skipped = 0;
    for entry in walk {
        let entry = entry.map_err(|e| {
            let at = e.path().unwrap_or(dir).display().to_string();
            let reason = e
                .io_error()
                .map_or_else(|| e.to_string(), |io| io.to_string());
            fail(
                ExitCode::Io,
                format!("cannot read {at}: {reason}; make it readable or remove it from the tree"),
            )
        })?;
        let kind = entry.file_type();
        if kind.is_dir() {
            continue;
        }
        let rel_path = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        let Some(rel) = rel_path.to_str() else {
            return Err(fail(
                ExitCode::Unrecordable,
                format!(
                    "{} has a name that is not valid UTF-8; receipts record UTF-8 paths only, so rename it",
                    entry.path().display()
                ),
            ));
        };
        if meta::is_uncovered(rel) {
            continue;
        }
        if skip(rel) {
            skipped += 1;
            continue;
        }
        let mode = if kind.is_symlink() {
            MODE_LINK
        } else if kind.is_file() {
            // Executable or not is read once the file is open, on a worker
            // thread: a stat here would be a serial pass over every file.
            MODE_FILE
        } else {
            return Err(fail(
                ExitCode::Unrecordable,
                format!(
                    "{} is not a regular file, directory or symlink; a receipt cannot record it, so remove it",
                    entry.path().display()
                ),
            ));
        };
        out.push(Pending {
            rel: rel.to_owned(),
            abs: entry.path().to_path_buf(),
            mode,
        });
    }
    Ok((out, skipped))
}

fn hash_all(pending: &[Pending]) -> Result<Vec<Scanned>> {
    let bar = if pending.len() >= PROGRESS_MIN_FILES {
        // indicatif draws nothing when stderr is not a terminal.
        let bar =
            ProgressBar::with_draw_target(Some(pending.len() as u64), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "hashing {bar:30} {human_pos}/{human_len} files, eta {eta}",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let one = |p: &Pending| {
        let scanned = hash_one(p)?;
        bar.inc(1);
        Ok(scanned)
    };
    let out = if pending.len() < PARALLEL_MIN_FILES {
        pending.iter().map(one).collect::<Result<Vec<_>>>()
    } else {
        pending.par_iter().map(one).collect::<Result<Vec<_>>>()
    };
    bar.finish_and_clear();
    out
}

fn hash_one(p: &Pending) -> Result<Scanned> {
    let unreadable = |e: std::io::Error| {
        fail(
            ExitCode::Io,
            format!(
                "cannot read {}: {e}; make it readable or remove it from the tree",
                p.abs.display()
            ),
        )
    };
    if p.mode == MODE_LINK {
        let target = fs::read_link(&p.abs).map_err(unreadable)?;
        let bytes = target.as_os_str().as_bytes();
        return Ok(Scanned {
            path: p.rel.clone(),
            mode: p.mode,
            size: bytes.len() as u64,
            blake3: *blake3::hash(bytes).as_bytes(),
        });
    }
    // Never follow a symlink swapped in since the walk, and never block on a
    // FIFO swapped in: either way the fstat below rejects what was opened.
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let file = File::from(
        rustix::fs::open(&p.abs, flags, Mode::empty()).map_err(|e| unreadable(e.into()))?,
    );
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(fail(
            ExitCode::Io,
            format!(
                "{} changed type while it was being read; retry once the tree is still",
                p.abs.display()
            ),
        ));
    }
    let mode = if meta.permissions().mode() & 0o100 != 0 {
        MODE_EXEC
    } else {
        MODE_FILE
    };
    let len = meta.len();
    let (size, hash) = if len >= PARALLEL_FILE_MIN {
        hash_large(&file).map_err(unreadable)?
    } else {
        hash_reader(&file).map_err(unreadable)?
    };
    let after = file.metadata().map_err(unreadable)?;
    let stamp = |m: &fs::Metadata| {
        (
            m.len(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
        )
    };
    if size != len || stamp(&after) != stamp(&meta) {
        return Err(fail(
            ExitCode::Changed,
            format!(
                "{} changed while it was being hashed; run again when nothing writes to the tree",
                p.abs.display()
            ),
        ));
    }
    Ok(Scanned {
        path: p.rel.clone(),
        mode,
        size,
        blake3: hash,
    })
}

/// Fill `buf` from `file` at `offset`, short only at the end of the file.
fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The BLAKE3 of all of a large `file` and its size as read: each window is
/// hashed across threads while the next one is read. The buffers are this
/// call's own, not the thread's: `update_rayon` may run another file's job
/// on this thread meanwhile.
fn hash_large(file: &File) -> std::io::Result<(u64, Hash)> {
    let mut hasher = blake3::Hasher::new();
    let (mut current, mut next) = (vec![0u8; WINDOW], vec![0u8; WINDOW]);
    let mut n = read_full_at(file, &mut current, 0)?;
    let mut size = n as u64;
    while n > 0 {
        let (read, ()) = rayon::join(
            || read_full_at(file, &mut next, size),
            || {
                hasher.update_rayon(&current[..n]);
            },
        );
        n = read?;
        size += n as u64;
        std::mem::swap(&mut current, &mut next);
    }
    Ok((size, *hasher.finalize().as_bytes()))
}

thread_local! {
    static BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; BUF_LEN]);
}

/// The BLAKE3 of everything `reader` yields and how many bytes that was.
///
/// The size comes from what was read, not from metadata, so a file that
/// changes while it is hashed still gets a self-consistent entry. The
/// thread's buffer is safe to borrow here because nothing below calls into
/// rayon, which could run another file's job on this thread meanwhile.
pub fn hash_reader(reader: impl Read) -> std::io::Result<(u64, Hash)> {
    BUF.with_borrow_mut(|buf| {
        let mut reader = reader;
        let mut hasher = blake3::Hasher::new();
        let mut size = 0u64;
        loop {
            let n = match reader.read(buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        Ok((size, *hasher.finalize().as_bytes()))
    })
}
