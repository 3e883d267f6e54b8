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
use crate::fsutil;
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

/// One file to move into place: its staged copy and its destination.
struct Staged {
    from: PathBuf,
    to: PathBuf,
}

fn interrupted(done: usize, total: usize) -> anyhow::Error {
    fail(
        ExitCode::Interrupted,
        format!(
            "interrupted after {done} of {total} changes; every file is either old or new and the receipt is the old one: run spawn-elite update again to finish"
        ),
    )
}

/// Write `bytes` to a new file `path` with exactly `mode`, synced.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    fsutil::write_new(path, bytes, mode)?.sync_all()
}

/// Apply `changes` to `dir`, then write the new receipt.
pub fn apply(dir: &Path, plan: &Plan, changes: &mut [Change]) -> Result<()> {
    let total = changes
        .iter()
        .filter(|c| c.action != Action::Unchanged && c.action != Action::Kept)
        .count();
    let state = state_dir(dir);
    let io = |what: &str, e: std::io::Error| {
        fail(
            ExitCode::Io,
            format!(
                "cannot {what}: {e}; nothing was changed yet: fix this, then run spawn-elite update again"
            ),
        )
    };
    std::fs::create_dir_all(&state).map_err(|e| io("create .spawn-elite/", e))?;
    let scratch = tempfile::Builder::new()
        .prefix(meta::SCRATCH_PREFIX)
        .tempdir_in(&state)
        .map_err(|e| io("create a scratch directory in .spawn-elite/", e))?;

    // 1. Stage every new file, and the receipt.
    let mut staged = Vec::new();
    let mut removed = Vec::new();
    for change in changes.iter() {
        if interrupt::requested() {
            return Err(interrupted(0, total));
        }
        let mut to = dir.join(&change.path);
        match change.action {
            Action::Updated | Action::Added | Action::Renamed | Action::Conflict => {}
            Action::Removed => {
                removed.push(to);
                continue;
            }
            Action::Unchanged | Action::Kept | Action::Merged => continue,
        }
        if let Some(from) = change.from.as_deref() {
            removed.push(dir.join(from));
        }
        let Some(file) = plan.file(&change.path) else {
            continue;
        };
        if change.action == Action::Conflict {
            let mut beside = to.into_os_string();
            beside.push(NEW_SUFFIX);
            to = PathBuf::from(beside);
        }
        let from = scratch.path().join(staged.len().to_string());
        write_new(&from, &file.contents, file.mode())
            .map_err(|e| io(&format!("stage the new {}", change.path), e))?;
        staged.push(Staged { from, to });
    }
    let mut metadata_staged = Vec::new();
    for (i, file) in plan.metadata.iter().enumerate() {
        let at = scratch.path().join(format!("metadata-{i}"));
        write_new(&at, &file.contents, file.mode())
            .map_err(|e| io(&format!("stage the new {}", file.path), e))?;
        metadata_staged.push((at, dir.join(&file.path)));
    }
    let receipt_staged = scratch.path().join("receipt.json");
    let receipt_file = plan.receipt_file();
    write_new(&receipt_staged, &receipt_file.contents, receipt_file.mode())
        .map_err(|e| io("stage the new receipt", e))?;
    fsutil::sync_dir(&receipt_staged).map_err(|e| io("sync the scratch directory", e))?;

    // 2. Into place, one rename a file; then the removals.
    let mut done = 0;
    for file in &staged {
        if interrupt::requested() {
            return Err(interrupted(done, total));
        }
        let failed = |e: std::io::Error| {
            fail(
                ExitCode::Io,
                format!(
                    "cannot update {}: {e}; {done} of {total} changes were made and the receipt is the old one: fix this, then run spawn-elite update again",
                    file.to.display()
                ),
            )
        };
        if let Some(parent) = file.to.parent() {
            std::fs::create_dir_all(parent).map_err(failed)?;
        }
        std::fs::rename(&file.from, &file.to).map_err(failed)?;
        done += 1;
    }
    for path in &removed {
        if interrupt::requested() {
            return Err(interrupted(done, total));
        }
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(fail(
                    ExitCode::Io,
                    format!(
                        "cannot remove {}: {e}; {done} of {total} changes were made and the receipt is the old one: fix this, then run spawn-elite update again",
                        path.display()
                    ),
                ));
            }
            _ => {}
        }
        remove_empty_parents(dir, path);
        done += 1;
    }
    for file in &staged {
        let _ = fsutil::sync_dir(&file.to);
    }

    // 3. The attestation of the new tree (and its timestamp), then the
    //    receipt, last. A new attestation without a new token makes the
    //    old token a stamp of nothing here: it goes first.
    let metadata_failed = |to: &Path, e: std::io::Error| {
        fail(
            ExitCode::Io,
            format!(
                "cannot write {}: {e}; every file is new but the receipt is the old one: fix this, then run spawn-elite update again",
                to.display()
            ),
        )
    };
    let signed = plan.metadata.iter().any(|f| f.path == ATTESTATION_PATH);
    let stamped = plan.metadata.iter().any(|f| f.path == TIMESTAMP_PATH);
    if signed && !stamped {
        let stale = dir.join(TIMESTAMP_PATH);
        match std::fs::remove_file(&stale) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(metadata_failed(&stale, e));
            }
            _ => {}
        }
    }
    for (from, to) in &metadata_staged {
        std::fs::rename(from, to).map_err(|e| metadata_failed(to, e))?;
    }
    let receipt = dir.join(RECEIPT_PATH);
    std::fs::rename(&receipt_staged, &receipt).map_err(|e| {
        fail(
            ExitCode::Io,
            format!(
                "cannot write receipt {}: {e}; every file is new but the receipt is the old one: fix this, then run spawn-elite update again",
                receipt.display()
            ),
        )
    })?;
    let _ = fsutil::sync_dir(&receipt);
    let _ = scratch.close();
    Ok(())
}

/// Remove the directories a removed file leaves empty, up to `root`.
fn remove_empty_parents(root: &Path, file: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}
