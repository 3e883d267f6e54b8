//! `spawn-elite update --continue`: an update is recorded (ledger line,
//! callback) when it is finished, not when it starts. One that left
//! conflicts is finished by the user; this checks that nothing is left
//! unresolved, makes the merge commit (git mode, as `git merge --continue`
//! would), and records it. An update the user aborts is never recorded.
//!
//! What the record needs is where the update left it: with git, the old
//! receipt in `HEAD`, the new one in the work tree, the conflicts in git's
//! `MERGE_MSG`; without git, a small note beside the receipt,
//! `.spawn-elite/pending-update.json`, that only this step removes.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::guard;
use super::merge::git;
use super::nogit::NEW_SUFFIX;
use crate::callback::CallbackOptions;
use crate::clock::Clock;
use crate::error::{ExitCode, fail};
use crate::fsutil::beneath;
use crate::ledger::UpdateRecord;
use crate::ops::git::{self as ops_git, PRISTINE_TRAILER, text};
use crate::ops::record::{self, Event, Recorded};
use crate::provenance;
use crate::receipt::{RECEIPT_PATH, Receipt, TemplatesInfo, meta};
use crate::templates::PlannedFile;

/// What `--continue` finished.
#[derive(Debug)]
pub struct Resumed {
    /// The merge commit it made (git mode).
    pub merge: Option<String>,
    pub update: UpdateRecord,
    pub recorded: Recorded,
}

fn pending_path(dir: &Path) -> PathBuf {
    dir.join(meta::PENDING_UPDATE_PATH)
}

/// Receipt mode, conflicts left: keep what the record will need.
pub fn keep_pending(dir: &Path, update: &UpdateRecord) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(update)?;
    let path = pending_path(dir);
    beneath::write_atomic_in(dir, Path::new(meta::PENDING_UPDATE_PATH), &bytes).map_err(|e| {
        fail(
            ExitCode::Io,
            format!(
                "cannot write {}: {e}; the update is applied, but `spawn-elite update --continue` will not be able to record it",
                path.display()
            ),
        )
    })
}

fn nothing_to_continue(dir: &Path) -> anyhow::Error {
    fail(
        ExitCode::Usage,
        format!(
            "no update of {} waits to be finished (no spawn-elite merge in progress, no pending update); run spawn-elite update to start one",
            dir.display()
        ),
    )
}

/// `update --continue` in `dir`.
pub fn resume(
    dir: &Path,
    ledger: bool,
    clock: &Clock,
    callback: Option<&CallbackOptions>,
) -> Result<Resumed> {
    let _lock = guard::lock(dir, false)?;
    guard::refuse_linked_metadata(dir)?;
    let git_repo = dir.join(".git").exists() && git(dir).available();
    let merging = if git_repo {
        guard::merge_head(dir)
    } else {
        None
    };
    let (merge, update) = match merging {
        Some(head) => finish_merge(dir, &head, clock)?,
        None => (None, finish_pending(dir)?),
    };
    let receipt = Receipt::read(&dir.join(RECEIPT_PATH))?;
    // The callback carries the attestation the update wrote, if it signed.
    let meta: Vec<PlannedFile> = std::fs::read(dir.join(provenance::ATTESTATION_PATH))
        .ok()
        .map(|contents| PlannedFile {
            path: provenance::ATTESTATION_PATH.to_owned(),
            contents,
            executable: false,
        })
        .into_iter()
        .collect();
    let record = record::begin(&receipt, dir, callback, &meta, None);
    let event = ledger.then(|| Event::Update(Box::new(update.clone())));
    let recorded = record.finish(event);
    // Only once it is recorded: a kill before leaves the note for a re-run.
    let _ = std::fs::remove_file(pending_path(dir));
    Ok(Resumed {
        merge,
        update,
        recorded,
    })
}

/// Receipt mode: every `PATH.spawn-elite-new` merged and deleted; the note
/// the update left.
fn finish_pending(dir: &Path) -> Result<UpdateRecord> {
    let path = pending_path(dir);
    let Ok(bytes) = std::fs::read(&path) else {
        return Err(nothing_to_continue(dir));
    };
    let update: UpdateRecord = serde_json::from_slice(&bytes).map_err(|e| {
        fail(
            ExitCode::InvalidReceipt,
            format!(
                "{} is not what update wrote: {e}; delete it and record the repository with `spawn-elite ledger add`",
                path.display()
            ),
        )
    })?;
    let receipt = Receipt::read(&dir.join(RECEIPT_PATH))?;
    let mut left: Vec<String> = receipt
        .files
        .iter()
        .map(|f| format!("{}{NEW_SUFFIX}", f.path))
        .filter(|p| std::fs::symlink_metadata(dir.join(p)).is_ok())
        .collect();
    left.sort();
    if let Some(first) = left.first() {
        return Err(fail(
            ExitCode::Usage,
            format!(
                "{} still wait{} to be merged ({first} first): merge each into its file and delete it, then run spawn-elite update --continue again",
                left.join(", "),
                if left.len() == 1 { "s" } else { "" }
            ),
        ));
    }
    Ok(update)
}

/// Git mode: the merge of a pristine commit, resolved and committed.
fn finish_merge(
    dir: &Path,
    merge_head: &str,
    clock: &Clock,
) -> Result<(Option<String>, UpdateRecord)> {
    let g = git(dir);
    let message = text(&g.output(&["log", "-1", "--format=%B", merge_head], "read MERGE_HEAD")?);
    if !message.contains(&format!("{PRISTINE_TRAILER}: ")) {
        return Err(fail(
            ExitCode::Usage,
            format!(
                "the merge in progress in {} is not a spawn-elite update; finish it with git (`git merge --continue` or `git merge --abort`)",
                dir.display()
            ),
        ));
    }
    let unmerged = text(&g.output(
        &["diff", "--name-only", "--diff-filter=U"],
        "list the unmerged files",
    )?);
    if !unmerged.is_empty() {
        let files: Vec<&str> = unmerged.lines().collect();
        return Err(fail(
            ExitCode::Usage,
            format!(
                "{} still in conflict: edit each, `git add` it, then run spawn-elite update --continue again",
                files.join(", ")
            ),
        ));
    }
    // `git diff --check` also reports whitespace; only markers stop us.
    let check = g
        .command()
        .args(["diff", "--cached", "--check"])
        .output()
        .map_err(|e| g.cannot_run(e, "look for conflict markers"))?;
    let markers: Vec<String> = String::from_utf8_lossy(&check.stdout)
        .lines()
        .filter(|l| l.contains("conflict marker"))
        .map(|l| l.split(": ").next().unwrap_or(l).to_owned())
        .collect();
    if let Some(first) = markers.first() {
        return Err(fail(
            ExitCode::Usage,
            format!(
                "{first}: a conflict marker is still there ({} in all); resolve it, `git add` the file, then run spawn-elite update --continue again",
                markers.len()
            ),
        ));
    }
    let git_dir = PathBuf::from(text(&g.output(
        &["rev-parse", "--absolute-git-dir"],
        "find the git directory",
    )?));
    let conflicts = std::fs::read_to_string(git_dir.join("MERGE_MSG"))
        .map(|m| {
            m.lines()
                .skip_while(|l| !l.starts_with("# Conflicts:"))
                .filter(|l| l.starts_with("#\t"))
                .count() as u64
        })
        .unwrap_or(0);
    let old = Receipt::parse(
        &g.output(
            &["show", &format!("HEAD:{RECEIPT_PATH}")],
            "read the receipt before the update",
        )?,
        "HEAD",
    )?;
    let new = Receipt::read(&dir.join(RECEIPT_PATH))?;
    let mut cmd = g.command();
    cmd.args(g.fallback_identity_args())
        .args(["commit", "--no-edit", "--no-verify", "--quiet"]);
    g.checked(ops_git::dated(&mut cmd, clock).output(), "commit the merge")?;
    let head = text(&g.output(&["rev-parse", "HEAD"], "read the merge commit")?);
    let update = UpdateRecord {
        old_merkle_root: old.merkle_root.clone(),
        old_templates: templates_of(&old),
        new_templates: templates_of(&new),
        conflicts,
        updated: clock.stamp(),
    };
    Ok((Some(head), update))
}

/// The set a receipt records, as the update's plan reads it.
fn templates_of(receipt: &Receipt) -> TemplatesInfo {
    let spawn = receipt.spawn.as_ref();
    spawn
        .and_then(|s| s.templates.clone())
        .unwrap_or_else(|| TemplatesInfo {
            source: "embedded".into(),
            name: "spawn-elite".into(),
            version: "unknown".into(),
            digest: spawn
                .and_then(|s| s.template_digest.clone())
                .unwrap_or_default(),
        })
}
