//! Receipt mode, for a repository without git history: the receipt's hashes
//! say which files are untouched, and only those are replaced or removed. A
//! file both sides changed is left alone, with the new version beside it as
//! `PATH.spawn-elite-new`.
//!
//! In three steps, so that a kill at any instant leaves every file either
//! its old bytes or its new bytes, and the receipt on disk the old one
//! until every file is new:
//!
//! 1. every new file and the new receipt are written (and synced) into a
//!    scratch directory, `.spawn-elite/update-XXXX`, on the repository's
//!    own filesystem;
//! 2. each is renamed into place (one atomic rename a file), then the files
//!    the templates removed are removed;
//! 3. the new receipt is renamed into place, last; the scratch directory
//!    is removed.
//!
//! Running the update again finishes the job: a file already at its new
//! hash counts as updated (see `classify::from_receipt`), and the scratch
//! directory a killed update left is removed first ([`remove_stale_scratch`]).

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::classify::{Action, Change};
use super::plan::Plan;
use crate::error::{ExitCode, fail};
use crate::fsutil::beneath::{self, Root};
use crate::interrupt;
use crate::receipt::meta::{ATTESTATION_PATH, TIMESTAMP_PATH};
use crate::receipt::{RECEIPT_PATH, meta};

/// The suffix of the new version of a file both sides changed.
pub const NEW_SUFFIX: &str = ".spawn-elite-new";

/// `.spawn-elite/`, where the receipt and the scratch directory live.
fn state_dir(dir: &Path) -> PathBuf {
    dir.join(meta::DIR)
}

/// Remove the scratch directories a killed update left in `.spawn-elite/`.
pub fn remove_stale_scratch(dir: &Path) -> Result<()> {
    super::remove_scratch_dirs(&state_dir(dir), meta::SCRATCH_PREFIX)
}

/// One file to move into place: its name in the scratch directory and its
/// path in the repository.
struct Staged {
    from: String,
    to: String,
}

fn interrupted(done: usize, total: usize) -> anyhow::Error {
    fail(
        ExitCode::Interrupted,
        format!(
            "interrupted after {done} of {total} changes; every file is either old or new and the receipt is the old one: run spawn-elite update again to finish"
        ),
    )
}

/// A change under a folder that is a symlink becomes a conflict for
/// which nothing is written, moved or removed: the update never reaches
/// through a symlink out of the repository (or into another part of it).
pub fn block_linked(dir: &Path, changes: &mut [Change]) -> Result<()> {
    let root = Root::open(dir)
        .map_err(|e| fail(ExitCode::Io, format!("cannot open {}: {e}", dir.display())))?;
    for change in changes.iter_mut() {
        if matches!(change.action, Action::Unchanged | Action::Kept) {
            continue;
        }
        let linked = root
            .linked_folder(&change.path)
            .or_else(|| change.from.as_deref().and_then(|f| root.linked_folder(f)));
        if let Some(folder) = linked {
            change.action = Action::Conflict;
            change.linked = Some(folder);
        }
    }
    Ok(())
}

/// Apply `changes` to `dir`, then write the new receipt.
///
/// Every rename and removal is made relative to a folder opened without
/// following symlinks ([`fsutil::beneath`]): one that became a symlink
/// since [`block_linked`] looked fails the update instead.
pub fn apply(dir: &Path, plan: &Plan, changes: &mut [Change]) -> Result<()> {
    let total = changes
        .iter()
        .filter(|c| c.action != Action::Unchanged && c.action != Action::Kept)
        .count();
    let io = |what: &str, e: std::io::Error| {
        fail(
            ExitCode::Io,
            format!(
                "cannot {what}: {e}; nothing was changed yet: fix this, then run spawn-elite update again"
            ),
        )
    };
    let root = Root::open(dir).map_err(|e| io(&format!("open {}", dir.display()), e))?;
    let state_rel = Path::new(meta::DIR);
    root.create_dirs(state_rel)
        .map_err(|e| io("open .spawn-elite/ (it must be a folder, not a symlink)", e))?;
    let scratch = tempfile::Builder::new()
        .prefix(meta::SCRATCH_PREFIX)
        .tempdir_in(state_dir(dir))
        .map_err(|e| io("create a scratch directory in .spawn-elite/", e))?;
    let scratch_rel = state_rel.join(scratch.path().file_name().unwrap_or_default());
    let scratch_fd = root
        .dir(&scratch_rel)
        .map_err(|e| io("open the scratch directory in .spawn-elite/", e))?;

    // 1. Stage every new file, and the receipt.
    let mut staged: Vec<Staged> = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    for change in changes.iter() {
        if interrupt::requested() {
            return Err(interrupted(0, total));
        }
        if change.linked.is_some() {
            continue;
        }
        let mut to = change.path.clone();
        match change.action {
            Action::Updated | Action::Added | Action::Renamed | Action::Conflict => {}
            Action::Removed => {
                removed.push(to);
                continue;
            }
            Action::Unchanged | Action::Kept | Action::Merged => continue,
        }
        if let Some(from) = change.from.as_deref() {
            removed.push(from.to_owned());
        }
        let Some(file) = plan.file(&change.path) else {
            continue;
        };
        if change.action == Action::Conflict {
            to.push_str(NEW_SUFFIX);
        }
        let from = staged.len().to_string();
        beneath::write_new_in(&scratch_fd, from.as_ref(), &file.contents, file.mode())
            .and_then(|f| f.sync_all())
            .map_err(|e| io(&format!("stage the new {}", change.path), e))?;
        staged.push(Staged { from, to });
    }
    // The other metadata files (attestation, timestamp), staged like the rest.
    let mut metadata_staged = Vec::new();
    for (i, file) in plan.metadata.iter().enumerate() {
        let name = format!("metadata-{i}");
        beneath::write_new_in(&scratch_fd, name.as_ref(), &file.contents, file.mode())
            .and_then(|f| f.sync_all())
            .map_err(|e| io(&format!("stage the new {}", file.path), e))?;
        metadata_staged.push((name, file.path.clone()));
    }
    let receipt_file = plan.receipt_file();
    beneath::write_new_in(
        &scratch_fd,
        "receipt.json".as_ref(),
        &receipt_file.contents,
        receipt_file.mode(),
    )
    .and_then(|f| f.sync_all())
    .map_err(|e| io("stage the new receipt", e))?;
    rustix::fs::fsync(&scratch_fd)
        .map_err(|e| io("sync the scratch directory", std::io::Error::from(e)))?;

    // 2. Into place, one rename a file; then the removals.
    let mut done = 0;
    let mut touched: Vec<PathBuf> = Vec::new();
    for file in &staged {
        if interrupt::requested() {
            return Err(interrupted(done, total));
        }
        let failed = |e: std::io::Error| partial(&file.to, &e, done, total, "update");
        let (parent, name) = beneath::split(Path::new(&file.to)).map_err(failed)?;
        let into = root.create_dirs(parent).map_err(failed)?;
        beneath::rename(&scratch_fd, file.from.as_ref(), &into, name).map_err(failed)?;
        touched.push(parent.to_path_buf());
        done += 1;
    }
    for path in &removed {
        if interrupt::requested() {
            return Err(interrupted(done, total));
        }
        let failed = |e: std::io::Error| partial(path, &e, done, total, "remove");
        let (parent, name) = beneath::split(Path::new(path)).map_err(failed)?;
        match root
            .dir(parent)
            .and_then(|d| beneath::remove_file(&d, name))
        {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(failed(e)),
            _ => {}
        }
        remove_empty_parents(&root, parent);
        done += 1;
    }
    touched.sort();
    touched.dedup();
    for parent in &touched {
        if let Ok(d) = root.dir(parent) {
            let _ = rustix::fs::fsync(&d);
        }
    }

    // 3. The attestation of the new tree (and its timestamp), then the
    //    receipt, last. A new attestation without a new token makes the
    //    old token a stamp of nothing here: it goes first.
    let metadata_failed = |to: &str, e: std::io::Error| {
        fail(
            ExitCode::Io,
            format!(
                "cannot write {}: {e}; every file is new but the receipt is the old one: fix this, then run spawn-elite update again",
                dir.join(to).display()
            ),
        )
    };
    let signed = plan.metadata.iter().any(|f| f.path == ATTESTATION_PATH);
    let stamped = plan.metadata.iter().any(|f| f.path == TIMESTAMP_PATH);
    if signed && !stamped {
        let (parent, name) = beneath::split(Path::new(TIMESTAMP_PATH))
            .map_err(|e| metadata_failed(TIMESTAMP_PATH, e))?;
        match root
            .dir(parent)
            .and_then(|d| beneath::remove_file(&d, name))
        {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(metadata_failed(TIMESTAMP_PATH, e));
            }
            _ => {}
        }
    }
    for (from, to) in &metadata_staged {
        let (parent, name) = beneath::split(Path::new(to)).map_err(|e| metadata_failed(to, e))?;
        root.dir(parent)
            .and_then(|into| beneath::rename(&scratch_fd, from.as_ref(), &into, name))
            .map_err(|e| metadata_failed(to, e))?;
    }
    let (parent, name) =
        beneath::split(Path::new(RECEIPT_PATH)).map_err(|e| io("name the receipt", e))?;
    root.dir(parent)
        .and_then(|into| {
            beneath::rename(&scratch_fd, "receipt.json".as_ref(), &into, name)?;
            let _ = rustix::fs::fsync(&into);
            Ok(())
        })
        .map_err(|e| {
            fail(
                ExitCode::Io,
                format!(
                    "cannot write receipt {}: {e}; every file is new but the receipt is the old one: fix this, then run spawn-elite update again",
                    dir.join(RECEIPT_PATH).display()
                ),
            )
        })?;
    let _ = scratch.close();
    Ok(())
}

/// A failure after some changes were made.
fn partial(path: &str, e: &std::io::Error, done: usize, total: usize, what: &str) -> anyhow::Error {
    let why = if beneath::is_link_error(e) {
        "a folder on its way is a symlink (or a file), which update never follows".to_owned()
    } else {
        e.to_string()
    };
    fail(
        ExitCode::Io,
        format!(
            "cannot {what} {path}: {why}; {done} of {total} changes were made and the receipt is the old one: fix this, then run spawn-elite update again"
        ),
    )
}

/// Remove the folders a removed file leaves empty, innermost first, up to
/// the root; each relative to its parent, never through a symlink.
fn remove_empty_parents(root: &Root, folder: &Path) {
    let mut dir = folder;
    while let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) {
        let removed = root.dir(parent).and_then(|p| beneath::remove_dir(&p, name));
        if removed.is_err() {
            break;
        }
        dir = parent;
    }
}
