//! Walking a tree and hashing every file in it, as a receipt records it.
//!
//! Files are hashed in parallel with rayon and read through one fixed buffer
//! per thread, so memory stays the same whatever the file sizes. Large files
//! are also split across threads with `update_rayon`. Memory mapping would
//! save a copy, but every mapped page counts towards the process's resident
//! size, so a 4 GiB file would show as 4 GiB of RSS.

use std::cell::RefCell;
use std::fs::{self, File};
use std::io::{ErrorKind, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use walkdir::WalkDir;

use crate::exit_codes::{ExitCode, fail};
use crate::merkle::{Hash, MODE_EXEC, MODE_FILE, MODE_LINK};

/// Where the receipt of a spawned repository lives, relative to its root.
pub const RECEIPT_PATH: &str = ".spawn-elite/receipt.json";

const BUF_LEN: usize = 1 << 20;
const PARALLEL_BUF_LEN: usize = 4 << 20;
/// Below this, splitting one file across threads costs more than it saves.
const PARALLEL_FILE_MIN: u64 = 4 << 20;
/// Trees smaller than this finish before a progress bar would be readable.
const PROGRESS_MIN_BYTES: u64 = 64 << 20;
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
    len: u64,
}

/// Every file, executable and symlink under `dir`, sorted by path bytes.
///
/// `.git` at the top is git's own state, and the receipt cannot cover itself,
/// so both are left out. Symlinks are recorded, never followed, so a link
/// pointing outside the tree reveals nothing about what it points to.
pub fn scan(dir: &Path) -> Result<Vec<Scanned>> {
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
    let mut pending = list(dir)?;
    pending.sort_unstable_by(|a, b| a.rel.cmp(&b.rel));
    hash_all(&pending)
}

fn list(dir: &Path) -> Result<Vec<Pending>> {
    let walk = WalkDir::new(dir)
        .follow_links(false)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| !(e.depth() == 1 && e.file_name() == ".git"));
    let mut out = Vec::new();
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
                ExitCode::Io,
                format!(
                    "{} has a name that is not valid UTF-8; receipts record UTF-8 paths only, so rename it",
                    entry.path().display()
                ),
            ));
        };
        if rel == RECEIPT_PATH {
            continue;
        }
        let meta = entry.metadata().map_err(|e| {
            fail(
                ExitCode::Io,
                format!(
                    "cannot read {}: {e}; make it readable",
                    entry.path().display()
                ),
            )
        })?;
        let mode = if kind.is_symlink() {
            MODE_LINK
        } else if kind.is_file() {
            if meta.permissions().mode() & 0o100 != 0 {
                MODE_EXEC
            } else {
                MODE_FILE
            }
        } else {
            return Err(fail(
                ExitCode::Io,
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
            len: meta.len(),
        });
    }
    Ok(out)
}

fn hash_all(pending: &[Pending]) -> Result<Vec<Scanned>> {
    let total: u64 = pending.iter().map(|p| p.len).sum();
    let bar = if total >= PROGRESS_MIN_BYTES || pending.len() >= PROGRESS_MIN_FILES {
        // indicatif draws nothing when stderr is not a terminal.
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "hashing {bar:30} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
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
            bar.inc(p.len);
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
    let file = File::open(&p.abs).map_err(unreadable)?;
    let (size, hash) = hash_reader(file, p.len >= PARALLEL_FILE_MIN).map_err(unreadable)?;
    Ok(Scanned {
        path: p.rel.clone(),
        mode: p.mode,
        size,
        blake3: hash,
    })
}

thread_local! {
    static BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; BUF_LEN]);
}

/// The BLAKE3 of everything `reader` yields and how many bytes that was.
///
/// The size comes from what was read, not from metadata, so a file that
/// changes while it is hashed still gets a self-consistent entry.
pub fn hash_reader(reader: impl Read, parallel: bool) -> std::io::Result<(u64, Hash)> {
    if parallel {
        // Not the thread's buffer: while `update_rayon` waits, rayon may run
        // another file's job on this same thread, which would need it too.
        let mut buf = vec![0; PARALLEL_BUF_LEN];
        hash_with(reader, &mut buf, true)
    } else {
        BUF.with_borrow_mut(|buf| hash_with(reader, buf, false))
    }
}

fn hash_with(
    mut reader: impl Read,
    buf: &mut [u8],
    parallel: bool,
) -> std::io::Result<(u64, Hash)> {
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    loop {
        let n = match reader.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if parallel {
            hasher.update_rayon(&buf[..n]);
        } else {
            hasher.update(&buf[..n]);
        }
        size += n as u64;
    }
    Ok((size, *hasher.finalize().as_bytes()))
}
