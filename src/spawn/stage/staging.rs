//! The staging directory of a spawn: made beside the target under a
//! hidden name, locked for as long as the spawn runs, removed again if the
//! spawn fails, and swept up by the next spawn if a kill left it.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::{ExitCode, fail};
use crate::fsutil::{self, describe_io};
use crate::spawn::config::{SpawnConfig, validate_name};

/// The directories of `--out-dir` that this spawn created itself, outermost
/// first. If the spawn fails they are removed again, innermost first, with
/// `rmdir` only: a directory that holds anything (another spawn's
/// repository, or its staging directory) stops the removal there. A spawn
/// never deletes recursively anything it did not create alone.
pub(super) struct CreatedBase {
    created: Vec<PathBuf>,
    pub(super) keep: bool,
}

impl Drop for CreatedBase {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        for dir in self.created.iter().rev() {
            if fs::remove_dir(dir).is_err() {
                break;
            }
        }
    }
}

fn create_base(base: &Path) -> Result<CreatedBase> {
    let not_a_dir = |what: String| {
        fail(
            ExitCode::Io,
            format!("--out-dir {} {what}; choose a directory", base.display()),
        )
    };
    match (fs::metadata(base), fs::symlink_metadata(base)) {
        (Ok(meta), _) if !meta.is_dir() => {
            return Err(not_a_dir("is a file, not a directory".into()));
        }
        (Err(_), Ok(link)) if link.file_type().is_symlink() => {
            let to = fs::read_link(base)
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            return Err(not_a_dir(format!(
                "is a symlink to {to}, which does not exist"
            )));
        }
        _ => {}
    }
    let cannot = |e: std::io::Error| {
        fail(
            ExitCode::Io,
            format!(
                "cannot create {}: {}; choose a writable --out-dir",
                base.display(),
                describe_io(&e)
            ),
        )
    };
    let mut missing: Vec<&Path> = base
        .ancestors()
        .take_while(|dir| fs::symlink_metadata(dir).is_err())
        .collect();
    missing.reverse();
    let mut created = CreatedBase {
        created: Vec::new(),
        keep: false,
    };
    // One directory at a time, so that only those this spawn made itself
    // (mkdir succeeded) are its to remove; one another process made
    // meanwhile (AlreadyExists) is not.
    for dir in missing {
        match fs::create_dir(dir) {
            Ok(()) => created.created.push(dir.to_path_buf()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(cannot(e)),
        }
    }
    fs::create_dir_all(base).map_err(cannot)?;
    Ok(created)
}

/// The staging directory of a spawn in progress, locked (`flock`) for as
/// long as the spawn runs: a staging directory whose lock can be taken
/// belongs to a spawn that was killed (see [`remove_stale`]).
///
/// Fields drop in order: the staging directory first, then the lock, then
/// the base directories, which can only be removed once they are empty.
pub(super) struct Staging {
    pub(super) dir: StagingDir,
    _lock: File,
    pub(super) base: CreatedBase,
}

/// Removes the staging directory when dropped, unless it was kept (renamed
/// into place as the new repository).
pub(super) struct StagingDir {
    path: PathBuf,
    armed: bool,
}

impl StagingDir {
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn keep(&mut self) {
        self.armed = false;
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Create the base directories and a locked staging directory in them.
///
/// The directory is made under a nursery name (`.NAME.nursery-RANDOM`),
/// locked, and only then renamed to its staging name, so a sweep of stale
/// staging directories never sees one whose lock is not yet taken. Another
/// spawn that fails may `rmdir` a base directory it created in the instant
/// before ours is inside it, and a sweep may `rmdir` an empty nursery in the
/// instant before it is locked: either way it is simply made again.
pub(super) fn stage_in(config: &SpawnConfig) -> Result<Staging> {
    let mut tries = 0;
    loop {
        let base = create_base(&config.base)?;
        match nurse(config) {
            Ok((dir, lock)) => {
                return Ok(Staging {
                    dir,
                    _lock: lock,
                    base,
                });
            }
            Err(e) if e.kind() == ErrorKind::NotFound && tries < 5 => tries += 1,
            Err(e) => {
                return Err(fail(
                    ExitCode::Io,
                    format!(
                        "cannot write in {}: {}; choose a writable --out-dir",
                        config.base.display(),
                        describe_io(&e)
                    ),
                ));
            }
        }
    }
}

/// One try at a locked staging directory: make it as a nursery, lock it,
/// rename it to its staging name.
fn nurse(config: &SpawnConfig) -> std::io::Result<(StagingDir, File)> {
    let nursery = tempfile::Builder::new()
        .prefix(&format!(".{}{NURSERY_MARK}", config.name))
        .permissions(fs::Permissions::from_mode(0o755))
        .tempdir_in(&config.base)?;
    let lock = open_dir(nursery.path())?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)?;
    let random = nursery
        .path()
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.rsplit_once(NURSERY_MARK))
        .map(|(_, random)| random.to_owned())
        .unwrap_or_default();
    let path = config
        .base
        .join(format!(".{}{STAGING_MARK}{random}", config.name));
    fsutil::rename_no_replace(nursery.path(), &path)?;
    // The nursery name is gone; from here the guard owns the directory.
    let _ = nursery.keep();
    Ok((StagingDir { path, armed: true }, lock))
}

/// What every staging directory's name holds: `.NAME.spawning-RANDOM`.
const STAGING_MARK: &str = ".spawning-";
/// What a staging directory is called in the instant before it is locked.
const NURSERY_MARK: &str = ".nursery-";

/// The directory at `path` itself, never a symlink's target.
fn open_dir(path: &Path) -> std::io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(File::from(rustix::fs::open(path, flags, Mode::empty())?))
}

/// Whether `path` still names the directory `dir` has open.
fn same_dir(dir: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (dir.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Whether `name` is `.NAME{mark}RANDOM` with NAME a valid repository name
/// and RANDOM letters and digits: a staging directory's name with
/// [`STAGING_MARK`], a nursery's with [`NURSERY_MARK`].
fn is_staging_name(name: &str, mark: &str) -> bool {
    let Some((repo, random)) = name
        .strip_prefix('.')
        .and_then(|rest| rest.split_once(mark))
    else {
        return false;
    };
    validate_name(repo).is_ok()
        && !random.is_empty()
        && random.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Remove the staging directories in `base` left by spawns that were
/// killed (SIGKILL, power loss): those whose lock nobody holds. Each one
/// removed, or found but not removable, is one line of `say`. Returns the
/// paths removed.
pub fn remove_stale(base: &Path, say: &mut dyn FnMut(&str)) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = fs::read_dir(base) else {
        return removed;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let Some(name) = name.to_str().filter(|_| is_dir) else {
            continue;
        };
        let nursery = is_staging_name(name, NURSERY_MARK);
        if !nursery && !is_staging_name(name, STAGING_MARK) {
            continue;
        }
        let path = entry.path();
        let Ok(dir) = open_dir(&path) else {
            continue;
        };
        let free =
            rustix::fs::flock(&dir, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok();
        if !free || !same_dir(&dir, &path) {
            continue; // a spawn is still writing it, or it moved on
        }
        if nursery {
            // Always empty: a spawn killed before it locked its staging
            // directory, or one about to (which then makes another).
            let _ = fs::remove_dir(&path);
            continue;
        }
        match fs::remove_dir_all(&path) {
            Ok(()) => {
                say(&format!(
                    "removed {}: the staging directory of a spawn that was killed",
                    path.display()
                ));
                removed.push(path);
            }
            Err(e) => say(&format!(
                "cannot remove {}, the staging directory of a spawn that was killed: {}; remove it by hand",
                path.display(),
                describe_io(&e)
            )),
        }
    }
    removed
}
