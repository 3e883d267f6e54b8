//! Walking a tree and hashing every file in it, as a receipt records it.
//!
//! Files are hashed in parallel with rayon; files of 4 MiB and more are also
//! split across threads with `update_rayon`. Small files are read through one
//! buffer per thread. Larger ones are memory-mapped, which saves copying every
//! byte out of the page cache (about a quarter of the CPU time otherwise), but
//! only a window at a time: each mapped page counts towards the process's
//! resident size, so mapping a whole 1 GiB file would show as 1 GiB of RSS.
//! Memory therefore stays the same whatever the file sizes.

use std::cell::RefCell;
use std::fs::{self, File};
use std::io::{ErrorKind, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use memmap2::MmapOptions;
use rayon::prelude::*;
use rustix::fs::{Mode, OFlags};
use walkdir::WalkDir;

use crate::error::{ExitCode, fail};
use crate::receipt::merkle::{Hash, MODE_EXEC, MODE_FILE, MODE_LINK};

/// Where the receipt of a spawned repository lives, relative to its root.
pub const RECEIPT_PATH: &str = ".spawn-elite/receipt.json";

const BUF_LEN: usize = 256 << 10;
/// From this size on, mapping costs less than copying.
const MAP_MIN: u64 = 64 << 10;
/// A multiple of any page size, and large enough for `update_rayon` to pay.
const MAP_WINDOW: u64 = 8 << 20;
/// Below this, splitting one file across threads costs more than it saves.
const PARALLEL_FILE_MIN: u64 = 4 << 20;
/// Trees with fewer files finish before a progress bar would be readable.
const PROGRESS_MIN_FILES: usize = 2000;

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
/// `.git` at the top is git's own state, and the receipt cannot cover itself,
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
        if rel == RECEIPT_PATH {
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
    let out = pending
        .par_iter()
        .map(|p| {
            let scanned = hash_one(p)?;
            bar.inc(1);
            Ok(scanned)
        })
        .collect::<Result<Vec<_>>>();
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
    let (size, hash) = if len >= MAP_MIN {
        let parallel = len >= PARALLEL_FILE_MIN;
        (len, hash_mapped(&file, len, parallel).map_err(unreadable)?)
    } else {
        hash_reader(file).map_err(unreadable)?
    };
    Ok(Scanned {
        path: p.rel.clone(),
        mode,
        size,
        blake3: hash,
    })
}

/// The BLAKE3 of the first `len` bytes of `file`, mapped a window at a time.
fn hash_mapped(file: &File, len: u64, parallel: bool) -> std::io::Result<Hash> {
    let mut hasher = blake3::Hasher::new();
    let mut offset = 0;
    while offset < len {
        let n = MAP_WINDOW.min(len - offset);
        let window = usize::try_from(n).map_err(std::io::Error::other)?;
        // SAFETY: the map is read-only and dropped before the next one is
        // made. Should another process truncate the file meanwhile, reading
        // past its new end raises SIGBUS; blake3's own mmap helpers and b3sum
        // accept the same risk, and a receipt of a tree that is being
        // rewritten could not be right anyway.
        let map = unsafe { MmapOptions::new().offset(offset).len(window).map(file)? };
        if parallel {
            hasher.update_rayon(&map);
        } else {
            hasher.update(&map);
        }
        offset += n;
    }
    Ok(*hasher.finalize().as_bytes())
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
