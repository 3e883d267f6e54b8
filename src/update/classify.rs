//! What an update does to each path, decided from three versions: the old
//! pristine output (the base commit's files, or only the receipt's hashes
//! without git), the new pristine output, and the work tree.

use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::base::Base;
use super::merge;
use super::plan::Plan;
use crate::error::{ExitCode, fail};
use crate::receipt::hex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Neither the templates nor the user changed it (or both changed it
    /// the same way).
    Unchanged,
    /// The user changed it and the templates did not: it stays as it is.
    Kept,
    /// Only the templates changed it: the new version replaces it.
    Updated,
    /// The templates added it.
    Added,
    /// The templates removed it and the user had not changed it.
    Removed,
    /// The templates moved an untouched file (same contents and mode) from
    /// `Change::from` to this path.
    Renamed,
    /// Both changed it and git merges the changes.
    Merged,
    /// Both changed it in ways that need the user.
    Conflict,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Unchanged => "unchanged",
            Action::Kept => "kept",
            Action::Updated => "updated",
            Action::Added => "added",
            Action::Removed => "removed",
            Action::Renamed => "renamed",
            Action::Merged => "merged",
            Action::Conflict => "conflict",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub path: String,
    pub action: Action,
    /// For `Renamed`: the path it had.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// For a `Conflict` nothing is written for: the folder on its way that
    /// is a symlink, which the update never follows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linked: Option<String>,
}

impl Change {
    pub fn new(path: String, action: Action) -> Change {
        Change {
            path,
            action,
            from: None,
            linked: None,
        }
    }
}

/// A version of one file: mode and BLAKE3, or absent.
type Version = Option<(String, String)>;

/// The work tree's version of `path` (a symlink as its target).
fn current(dir: &Path, path: &str) -> Result<Version> {
    let full = dir.join(path);
    let meta = match std::fs::symlink_metadata(&full) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => return Ok(None),
        Err(e) => return Err(read_failed(path, e)),
    };
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(&full).map_err(|e| read_failed(path, e))?;
        let hash = hex(blake3::hash(target.as_os_str().as_bytes()).as_bytes());
        return Ok(Some(("120000".into(), hash)));
    }
    if !meta.is_file() {
        // A directory where the templates have a file: a change of the user's.
        return Ok(Some(("040000".into(), String::new())));
    }
    let bytes = std::fs::read(&full).map_err(|e| read_failed(path, e))?;
    let mode = if meta.permissions().mode() & 0o111 != 0 {
        "100755"
    } else {
        "100644"
    };
    Ok(Some((mode.into(), hex(blake3::hash(&bytes).as_bytes()))))
}

fn read_failed(path: &str, e: std::io::Error) -> anyhow::Error {
    fail(
        ExitCode::Io,
        format!("cannot read {path}: {e}; check its permissions; nothing was changed"),
    )
}

fn new_version(plan: &Plan, path: &str) -> Version {
    plan.receipt
        .files
        .binary_search_by(|f| f.path.as_bytes().cmp(path.as_bytes()))
        .ok()
        .map(|i| {
            let f = &plan.receipt.files[i];
            (f.mode.clone(), f.blake3.clone())
        })
}

fn version_in(receipt: &crate::receipt::Receipt, path: &str) -> Version {
    receipt
        .files
        .binary_search_by(|f| f.path.as_bytes().cmp(path.as_bytes()))
        .ok()
        .map(|i| {
            let f = &receipt.files[i];
            (f.mode.clone(), f.blake3.clone())
        })
}

/// The decision for one path, when both sides changed it differently.
enum Both {
    Conflict,
    Merge,
}

fn decide(old: &Version, new: &Version, cur: &Version, both: impl FnOnce() -> Both) -> Action {
    if old == new {
        return if cur == old {
            Action::Unchanged
        } else {
            Action::Kept
        };
    }
    if cur == new {
        return Action::Unchanged;
    }
    if cur == old {
        return match (old, new) {
            (None, Some(_)) => Action::Added,
            (Some(_), None) => Action::Removed,
            _ => Action::Updated,
        };
    }
    match both() {
        Both::Merge => Action::Merged,
        Both::Conflict => Action::Conflict,
    }
}

/// Every path the old or new pristine output holds.
fn paths(old: &crate::receipt::Receipt, plan: &Plan) -> BTreeSet<String> {
    old.files
        .iter()
        .chain(plan.receipt.files.iter())
        .map(|f| f.path.clone())
        .collect()
}

/// Git mode: both sides changed a file → what `git merge-file` says of it.
pub fn with_base(dir: &Path, plan: &Plan, base: &Base) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    for path in paths(&base.receipt, plan) {
        let old = version_in(&base.receipt, &path);
        let new = new_version(plan, &path);
        let cur = current(dir, &path)?;
        let action = decide(&old, &new, &cur, || {
            let (Some((_, base_bytes)), Some(new_file), Some(_)) =
                (base.files.get(&path), plan.file(&path), &cur)
            else {
                // Deleted on one side and changed on the other.
                return Both::Conflict;
            };
            let ours = std::fs::read(dir.join(&path)).unwrap_or_default();
            match merge::merges_cleanly(dir, base_bytes, &ours, &new_file.contents) {
                Ok(true) => Both::Merge,
                _ => Both::Conflict,
            }
        });
        out.push(Change::new(path, action));
    }
    Ok(pair_renames(out, &base.receipt, plan))
}

/// Receipt mode: with no old contents, both sides changing a file is a conflict.
pub fn from_receipt(dir: &Path, plan: &Plan) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    for path in paths(&plan.old, plan) {
        let old = version_in(&plan.old, &path);
        let new = new_version(plan, &path);
        let cur = current(dir, &path)?;
        let mut action = decide(&old, &new, &cur, || Both::Conflict);
        // Already at its new version while the receipt still records the
        // old one: an update killed after moving it into place. It counts
        // as the template's change, which the new receipt then records.
        if action == Action::Unchanged && old != new {
            action = match (&old, &new) {
                (None, _) => Action::Added,
                (_, None) => Action::Removed,
                _ => Action::Updated,
            };
        }
        out.push(Change::new(path, action));
    }
    Ok(pair_renames(out, &plan.old, plan))
}

/// A file the templates removed and one they added with the same contents
/// and mode are one rename (what git's rename detection reports of an
/// untouched file): `renamed OLD -> NEW` instead of `removed` + `added`.
fn pair_renames(changes: Vec<Change>, old: &crate::receipt::Receipt, plan: &Plan) -> Vec<Change> {
    let mut removed: Vec<(String, Version)> = changes
        .iter()
        .filter(|c| c.action == Action::Removed)
        .map(|c| (c.path.clone(), version_in(old, &c.path)))
        .collect();
    let mut paired = BTreeSet::new();
    let mut out = Vec::with_capacity(changes.len());
    for mut change in changes {
        if change.action == Action::Added {
            let new = new_version(plan, &change.path);
            if let Some(i) = removed.iter().position(|(_, v)| new.is_some() && *v == new) {
                let (from, _) = removed.remove(i);
                paired.insert(from.clone());
                change.action = Action::Renamed;
                change.from = Some(from);
            }
        }
        out.push(change);
    }
    out.retain(|c| !(c.action == Action::Removed && paired.contains(&c.path)));
    out
}
