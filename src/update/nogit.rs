//! Receipt mode, for a repository without git history: the receipt's hashes
//! say which files are untouched, and only those are replaced or removed. A
//! file both sides changed is left alone, with the new version beside it as
//! `PATH.spawn-elite-new`. The new receipt is written last.
//!
//! Every file is written atomically, so an interruption leaves each file
//! old or new and the old receipt in place; running the update again
//! finishes the job (a file already new counts as unchanged).

use std::path::Path;

use anyhow::Result;

use super::classify::{Action, Change};
use super::plan::Plan;
use crate::error::{ExitCode, fail};
use crate::fsutil::{self, WriteOptions};
use crate::interrupt;
use crate::receipt::RECEIPT_PATH;

/// The suffix of the new version of a file both sides changed.
pub const NEW_SUFFIX: &str = ".spawn-elite-new";

fn options(executable: bool) -> WriteOptions {
    WriteOptions {
        mode: if executable { 0o755 } else { 0o644 },
        exact_mode: true,
        replace: true,
    }
}

/// Apply `changes` to `dir`, then write the new receipt.
pub fn apply(dir: &Path, plan: &Plan, changes: &mut [Change]) -> Result<()> {
    let total = changes
        .iter()
        .filter(|c| c.action != Action::Unchanged && c.action != Action::Kept)
        .count();
    let mut done = 0;
    for change in changes.iter() {
        if interrupt::requested() {
            return Err(fail(
                ExitCode::Interrupted,
                format!(
                    "interrupted after {done} of {total} changes; every file is either old or new and the receipt is the old one: run spawn-elite update again to finish"
                ),
            ));
        }
        let path = dir.join(&change.path);
        let failed = |e: std::io::Error| {
            fail(
                ExitCode::Io,
                format!(
                    "cannot update {}: {e}; {done} of {total} changes were made and the receipt is the old one: fix this, then run spawn-elite update again",
                    change.path
                ),
            )
        };
        match change.action {
            Action::Updated | Action::Added => {
                if let Some(file) = plan.file(&change.path) {
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent).map_err(failed)?;
                    }
                    fsutil::write_atomic(&path, &file.contents, options(file.executable))
                        .map_err(failed)?;
                }
            }
            Action::Removed => {
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(failed(e)),
                    _ => {}
                }
                remove_empty_parents(dir, &path);
            }
            Action::Conflict => {
                if let Some(file) = plan.file(&change.path) {
                    let mut beside = path.clone().into_os_string();
                    beside.push(NEW_SUFFIX);
                    let beside = std::path::PathBuf::from(beside);
                    if let Some(parent) = beside.parent() {
                        std::fs::create_dir_all(parent).map_err(failed)?;
                    }
                    fsutil::write_atomic(&beside, &file.contents, options(file.executable))
                        .map_err(failed)?;
                }
            }
            Action::Unchanged | Action::Kept | Action::Merged => continue,
        }
        done += 1;
    }
    plan.receipt.write(&dir.join(RECEIPT_PATH))
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
