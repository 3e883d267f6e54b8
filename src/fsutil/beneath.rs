//! Paths inside one directory, resolved without ever following a symlink:
//! a repository being updated, an export's folder, a spawn's staging
//! directory. A user (or another process) may have replaced a folder of
//! the tree with a symlink to somewhere else; whatever spawn-elite writes,
//! renames or removes "in" the tree must then fail, not land there.
//!
//! Each folder is opened one component at a time, relative to the folder
//! before it, with `O_NOFOLLOW` (on Linux first in one `openat2` call with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, which the kernel enforces for
//! every component); the final step (`renameat`, `unlinkat`, `openat` with
//! `O_EXCL`) is relative to the folder's descriptor, so nothing is
//! resolved by path again in between.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{ErrorKind, Write as _};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags};

/// A directory opened as the root of the paths below it.
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

fn io(e: rustix::io::Errno) -> std::io::Error {
    std::io::Error::from(e)
}

/// The components of a relative path (`a/b/c`), empty ones skipped.
fn parts(rel: &Path) -> impl Iterator<Item = &OsStr> {
    rel.components().filter_map(|c| match c {
        std::path::Component::Normal(p) => Some(p),
        _ => None,
    })
}

impl Root {
    /// `path` itself, which the caller chose (it may be reached through a
    /// symlink); only what is below it is held to the rule.
    pub fn open(path: &Path) -> std::io::Result<Root> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(io)?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder `rel` below the root. A symlink anywhere on the way is an
    /// error (`ELOOP`, or `ENOTDIR` for a file), as is `..` or an absolute
    /// path.
    pub fn dir(&self, rel: &Path) -> std::io::Result<OwnedFd> {
        if rel.as_os_str().is_empty() {
            return rustix::io::fcntl_dupfd_cloexec(&self.fd, 0).map_err(io);
        }
        #[cfg(target_os = "linux")]
        {
            use rustix::fs::ResolveFlags;
            let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS;
            match rustix::fs::openat2(&self.fd, rel, DIR_FLAGS, Mode::empty(), how) {
                // Kernels before 5.6, or a sandbox that forbids the call:
                // the walk below gives the same guarantee.
                Err(rustix::io::Errno::NOSYS | rustix::io::Errno::PERM) => {}
                other => return other.map_err(io),
            }
        }
        let mut fd = rustix::io::fcntl_dupfd_cloexec(&self.fd, 0).map_err(io)?;
        for part in parts(rel) {
            fd = rustix::fs::openat(&fd, part, DIR_FLAGS, Mode::empty()).map_err(io)?;
        }
        Ok(fd)
    }

    /// The folder `rel` below the root, made (mode 0755) where missing,
    /// one component at a time, never through a symlink.
    pub fn create_dirs(&self, rel: &Path) -> std::io::Result<OwnedFd> {
        let mut fd = rustix::io::fcntl_dupfd_cloexec(&self.fd, 0).map_err(io)?;
        for part in parts(rel) {
            let next = match rustix::fs::openat(&fd, part, DIR_FLAGS, Mode::empty()) {
                Err(rustix::io::Errno::NOENT) => {
                    match rustix::fs::mkdirat(&fd, part, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(io(e)),
                    }
                    rustix::fs::openat(&fd, part, DIR_FLAGS, Mode::empty())
                }
                other => other,
            };
            fd = next.map_err(io)?;
        }
        Ok(fd)
    }

    /// The first folder of `rel` (not `rel` itself) that is a symlink or
    /// not a folder, for messages: `docs` for `docs/README.md`.
    pub fn linked_folder(&self, rel: &str) -> Option<String> {
        let mut at = String::new();
        let mut parts: Vec<&str> = rel.split('/').collect();
        parts.pop();
        for part in parts {
            if !at.is_empty() {
                at.push('/');
            }
            at.push_str(part);
            match std::fs::symlink_metadata(self.path.join(&at)) {
                Ok(m) if m.file_type().is_symlink() || !m.is_dir() => return Some(at),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    }
}

/// `rel`'s folder and file name.
pub fn split(rel: &Path) -> std::io::Result<(&Path, &OsStr)> {
    let name = rel
        .file_name()
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidInput, "no file name"))?;
    Ok((rel.parent().unwrap_or(Path::new("")), name))
}

/// Rename `from_name` in `from_dir` to `to_name` in `to_dir`, both
/// descriptors: no path is resolved.
pub fn rename(
    from_dir: impl AsFd,
    from_name: &OsStr,
    to_dir: impl AsFd,
    to_name: &OsStr,
) -> std::io::Result<()> {
    rustix::fs::renameat(from_dir, from_name, to_dir, to_name).map_err(io)
}

/// Remove the file `name` in `dir` (a symlink itself, never its target).
pub fn remove_file(dir: impl AsFd, name: &OsStr) -> std::io::Result<()> {
    rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(io)
}

/// Remove the empty folder `name` in `dir`.
pub fn remove_dir(dir: impl AsFd, name: &OsStr) -> std::io::Result<()> {
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR).map_err(io)
}

/// Create the file `name` in `dir` (never an existing file or symlink),
/// write `bytes` and set `mode` exactly.
pub fn write_new_in(
    dir: impl AsFd,
    name: &OsStr,
    bytes: &[u8],
    mode: u32,
) -> std::io::Result<File> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(mode)).map_err(io)?;
    let mut file = File::from(fd);
    file.write_all(bytes)?;
    // The umask may have removed bits: set them exactly.
    rustix::fs::fchmod(&file, Mode::from_raw_mode(mode)).map_err(io)?;
    Ok(file)
}

/// Whether an error is the one a symlink (or a file) on the way gives.
pub fn is_link_error(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(code) if code == libc::ELOOP || code == libc::ENOTDIR || code == libc::EXDEV
    )
}

/// Write `bytes` to `rel` inside the tree at `root` so that readers see the
/// old file or the new one (a temporary file beside it, flushed, renamed
/// over it, the folder flushed), with every folder on the way opened
/// beneath `root` without following a symlink: a metadata file written
/// into a repository (an attestation, a timestamp, a note) never lands
/// outside it.
pub fn write_atomic_in(root: &Path, rel: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let (parent, name) = split(rel)?;
    let dir = Root::open(root)?.dir(parent)?;
    let mut tag = [0u8; 6];
    getrandom::fill(&mut tag).map_err(|e| std::io::Error::other(e.to_string()))?;
    let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".{tag}.tmp"));
    let written = write_new_in(&dir, &tmp, bytes, 0o644)
        .and_then(|f| f.sync_all())
        .and_then(|()| rename(&dir, &tmp, &dir, name));
    if written.is_err() {
        let _ = remove_file(&dir, &tmp);
    }
    written?;
    rustix::fs::fsync(&dir).map_err(io)
}
