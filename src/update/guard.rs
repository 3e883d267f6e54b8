//! What an update checks before it changes anything, in a real run and a
//! dry run alike (so a dry run exits as the run would): one update of a
//! repository at a time, no unresolved `PATH.spawn-elite-new` from an
//! earlier one, a metadata directory that is not a symlink, and, with git,
//! no file git's merge would throw away (untracked or ignored at a path
//! the update adds, or hidden by the assume-unchanged bit).

use std::fs::File;
use std::path::Path;

use anyhow::Result;

use super::classify::{Action, Change};
use super::merge::git;
use super::nogit::NEW_SUFFIX;
use super::plan::Plan;
use crate::error::{ExitCode, fail};
use crate::ops::git::text;
use crate::receipt::meta;

/// The update's hold on its repository: an exclusive `flock` of the
/// repository's directory, for the update's whole run (a dry run takes it
/// shared). Released when dropped, and by the kernel if the process dies,
/// so a killed update never leaves a stale lock. Nothing is written for it.
pub struct Lock {
    _dir: File,
}

/// How often a busy lock is tried again, 50 ms apart.
const LOCK_TRIES: u32 = 20;

/// Take the lock of `dir`, or refuse: another update is running.
pub fn lock(dir: &Path, shared: bool) -> Result<Lock> {
    use rustix::fs::{FlockOperation, Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let opened = rustix::fs::open(dir, flags, Mode::empty()).map_err(|e| {
        fail(
            ExitCode::Io,
            format!(
                "cannot open {}: {e}; pass the spawned repository to update",
                dir.display()
            ),
        )
    })?;
    let op = if shared {
        FlockOperation::NonBlockingLockShared
    } else {
        FlockOperation::NonBlockingLockExclusive
    };
    // A lock held for a moment longer than its update: a child git forked
    // by an update killed just then holds it until the child's `exec`.
    // So a busy lock is tried again for up to a second before refusing.
    let mut tries = 0;
    let taken = loop {
        match rustix::fs::flock(&opened, op) {
            Err(rustix::io::Errno::WOULDBLOCK) if tries < LOCK_TRIES => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => break other,
        }
    };
    match taken {
        Ok(()) => Ok(Lock {
            _dir: File::from(opened),
        }),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(fail(
            ExitCode::Usage,
            format!(
                "another update of this repository is running ({}); wait for it to finish, then run spawn-elite update again; nothing was changed",
                dir.display()
            ),
        )),
        Err(e) => Err(fail(
            ExitCode::Io,
            format!("cannot lock {} for the update: {e}", dir.display()),
        )),
    }
}

/// `.spawn-elite` must be the repository's own folder: the receipt and the
/// scratch directory are written there.
pub fn refuse_linked_metadata(dir: &Path) -> Result<()> {
    let at = dir.join(meta::DIR);
    if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
        let to = std::fs::read_link(&at)
            .map(|t| t.display().to_string())
            .unwrap_or_default();
        return Err(fail(
            ExitCode::Usage,
            format!(
                "{} is a symlink (to {to}); update writes the receipt there and never through a symlink: put the folder itself back, then run spawn-elite update again; nothing was changed",
                at.display()
            ),
        ));
    }
    Ok(())
}

/// Refuse while an update that left conflicts waits for
/// `update --continue` (its note is in the metadata directory).
pub fn refuse_pending(dir: &Path) -> Result<()> {
    if std::fs::symlink_metadata(dir.join(meta::PENDING_UPDATE_PATH)).is_ok() {
        return Err(fail(
            ExitCode::Usage,
            format!(
                "an earlier update of {} left conflicts and is not finished: resolve them, then run `spawn-elite update --continue` to record it; nothing was changed",
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// Refuse while a `PATH.spawn-elite-new` an earlier update wrote beside a
/// file of the scaffold is still there: the next update would replace it,
/// and the user's merge of it would be lost.
pub fn refuse_unresolved(dir: &Path, plan: &Plan) -> Result<()> {
    let mut left: Vec<String> = plan
        .old
        .files
        .iter()
        .map(|f| f.path.as_str())
        .chain(plan.files.iter().map(|f| f.path.as_str()))
        .map(|p| format!("{p}{NEW_SUFFIX}"))
        .filter(|p| std::fs::symlink_metadata(dir.join(p)).is_ok())
        .collect();
    left.sort();
    left.dedup();
    let Some(first) = left.first() else {
        return Ok(());
    };
    let more = match left.len() {
        1 => String::new(),
        n => format!(" and {} more ({})", n - 1, left[1..].join(", ")),
    };
    Err(fail(
        ExitCode::Usage,
        format!(
            "{first}{more} from an earlier update still waits to be merged: merge each into its file (or take it: `mv PATH{NEW_SUFFIX} PATH`) and delete it, then run `spawn-elite update --continue` to record that update; nothing was changed"
        ),
    ))
}

/// Git mode: refuse a file git's merge would throw away.
///
/// - A file in the work tree that git does not track (untracked, ignored
///   by a `.gitignore`, or excluded by `.git/info/exclude`) at a path the
///   update adds: git's merge replaces an ignored one without a word.
/// - A tracked file with the assume-unchanged bit: `git status` does not
///   show its edit, and git resets it when a merge refuses.
pub fn refuse_what_git_would_lose(dir: &Path, changes: &[Change]) -> Result<()> {
    let listed = git(dir).output(&["ls-files", "-v", "-z"], "list the tracked files")?;
    let mut hidden = Vec::new();
    let mut tracked = std::collections::HashSet::new();
    for entry in listed.split(|&b| b == 0).filter(|e| e.len() > 2) {
        let path = String::from_utf8_lossy(&entry[2..]).into_owned();
        // `ls-files -v` shows the assume-unchanged bit as a lowercase tag.
        if entry[0].is_ascii_lowercase() {
            hidden.push(path.clone());
        }
        tracked.insert(path);
    }
    if let Some(first) = hidden.first() {
        let list = hidden.join(", ");
        return Err(fail(
            ExitCode::Usage,
            format!(
                "{} file{} marked assume-unchanged ({list}): git would not show an edit in {first} and would reset it; clear the bit (`git update-index --no-assume-unchanged {first}`), commit or stash any edit, then run spawn-elite update again; nothing was changed",
                hidden.len(),
                if hidden.len() == 1 { " is" } else { "s are" },
            ),
        ));
    }
    let mut untracked: Vec<&str> = changes
        .iter()
        .filter(|c| {
            matches!(
                c.action,
                Action::Added | Action::Renamed | Action::Conflict | Action::Merged
            )
        })
        .map(|c| c.path.as_str())
        .filter(|p| !tracked.contains(*p))
        .filter(|p| std::fs::symlink_metadata(dir.join(p)).is_ok())
        .collect();
    untracked.sort_unstable();
    let Some(first) = untracked.first() else {
        return Ok(());
    };
    let ignored = git(dir).ok(&["check-ignore", "-q", "--", first]);
    let why = if ignored {
        "is ignored (by a .gitignore or .git/info/exclude), so git's merge would replace it without a word"
    } else {
        "is not tracked, so git's merge would refuse it"
    };
    let more = match untracked.len() {
        1 => String::new(),
        n => format!(" (and {} more: {})", n - 1, untracked[1..].join(", ")),
    };
    Err(fail(
        ExitCode::Usage,
        format!(
            "{first}{more} is in the work tree where the update adds a file, and {why}: move it away (or commit it), then run spawn-elite update again; nothing was changed",
        ),
    ))
}

/// The commit `MERGE_HEAD` names, if a merge is in progress.
pub fn merge_head(dir: &Path) -> Option<String> {
    git(dir)
        .output(
            &["rev-parse", "--verify", "--quiet", "MERGE_HEAD"],
            "read MERGE_HEAD",
        )
        .ok()
        .map(|o| text(&o))
        .filter(|s| !s.is_empty())
}
