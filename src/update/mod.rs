//! `spawn-elite update`: bring a spawned repository up to the current
//! template set, keeping the user's changes. docs/UPDATE.md is the user's
//! account of it; the pipeline, in order:
//!
//! - `plan`: read the receipt, resolve type, elite flag and values against
//!   the current set, render in memory (the spawn's own planning), and make
//!   the new receipt of that pristine output.
//! - `base`: with git, find the newest pristine commit in HEAD's history
//!   (the initial scaffold, or the pristine side of the last update) and
//!   check its tree against the receipt inside it.
//! - `classify`: each path's fate (unchanged, kept, updated, added,
//!   removed, merged, conflict) from the old pristine, the new pristine and
//!   the work tree; what `--dry-run` prints and every report lists.
//! - `merge`: the new pristine commit as a child of the base, built with
//!   plumbing in a temporary index, then `git merge`: git does the merge.
//! - `nogit`: without history, the receipt alone decides; conflicts are
//!   written beside the file as `PATH.spawn-elite-new`.
//! - `report`: what is printed, as text or JSON.

pub mod base;
pub mod classify;
pub mod merge;
pub mod nogit;
pub mod plan;
pub mod report;

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::callback::{self, CallbackOptions};
use crate::error::{ExitCode, fail};
use crate::interrupt;
use crate::ledger::{self, UpdateRecord};
use crate::receipt::RECEIPT_PATH;
use classify::{Action, Change};
use plan::Plan;

/// One update as the command line asked for it.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub dir: PathBuf,
    /// `--templates DIR`: the set to update to (else the embedded one).
    pub templates: Option<PathBuf>,
    /// `--set KEY=VALUE`, as typed.
    pub set: Vec<String>,
    pub dry_run: bool,
    pub check: bool,
    pub json: bool,
    pub quiet: bool,
    pub ledger: bool,
}

/// How the difference is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A merge commit of the new pristine commit into the current branch.
    Git,
    /// The receipt alone decides (no git history).
    Receipt,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Git => "git",
            Mode::Receipt => "receipt",
        }
    }
}

/// What an update did (or, with `--dry-run`, would do).
#[derive(Debug)]
pub struct Outcome {
    pub dir: PathBuf,
    pub plan: Plan,
    pub mode: Mode,
    pub changes: Vec<Change>,
    pub dry_run: bool,
    /// Git mode: the base, the new pristine commit and the merge commit
    /// (absent while conflicts wait to be resolved).
    pub base: Option<String>,
    pub pristine: Option<String>,
    pub merge: Option<String>,
    /// Why git mode was not used, when the repository has a `.git`.
    pub fallback: Option<String>,
    pub ledger: Option<PathBuf>,
    pub callback: Option<serde_json::Value>,
}

impl Outcome {
    pub fn conflicts(&self) -> Vec<&str> {
        self.changes
            .iter()
            .filter(|c| c.action == Action::Conflict)
            .map(|c| c.path.as_str())
            .collect()
    }

    /// Whether the templates change anything at all.
    pub fn current(&self) -> bool {
        self.plan.current()
    }
}

/// `update --check`: exit 0 when the receipt's pristine output is what the
/// current set renders, 1 when it is behind.
pub fn check(opts: &Options) -> Result<ExitCode> {
    let plan = plan::plan(opts)?;
    report::check(opts, &plan)?;
    Ok(if plan.current() {
        ExitCode::Success
    } else {
        ExitCode::Drift
    })
}

/// One update, start to end.
pub fn run(opts: &Options, callback: Option<&CallbackOptions>) -> Result<ExitCode> {
    interrupt::install();
    let plan = plan::plan(opts)?;
    for warning in &plan.warnings {
        report::warn(warning);
    }
    let git_repo = opts.dir.join(".git").exists() && merge::git_available(&opts.dir);
    if !opts.dry_run {
        // What a killed update left: its scratch directories (never part
        // of the tree; see merge::remove_stale_scratch, nogit::remove_stale_scratch).
        if git_repo {
            merge::remove_stale_scratch(&opts.dir)?;
        }
        nogit::remove_stale_scratch(&opts.dir)?;
    }
    let mut fallback = None;
    let found = if git_repo {
        if !opts.dry_run {
            merge::refuse_unready(&opts.dir)?;
        }
        let found = base::find(&opts.dir)?;
        if found.is_none() {
            fallback = Some(
                "no pristine scaffold commit is in HEAD's history (no commit holds exactly the files its receipt lists); updating from the receipt alone".to_owned(),
            );
        }
        found
    } else {
        None
    };
    if let Some(why) = &fallback {
        report::warn(why);
    }
    let mode = if found.is_some() {
        Mode::Git
    } else {
        Mode::Receipt
    };
    let changes = match &found {
        Some(b) => classify::with_base(&opts.dir, &plan, b)?,
        None => classify::from_receipt(&opts.dir, &plan)?,
    };
    let mut outcome = Outcome {
        dir: opts.dir.clone(),
        plan,
        mode,
        changes,
        dry_run: opts.dry_run,
        base: found.as_ref().map(|b| b.commit.clone()),
        pristine: None,
        merge: None,
        fallback,
        ledger: None,
        callback: None,
    };
    if opts.dry_run || outcome.current() {
        report::outcome(opts, &outcome)?;
        return Ok(ExitCode::Success);
    }
    if interrupt::requested() {
        return Err(interrupted());
    }
    // Queued before anything changes, so that from the moment the new
    // receipt is in place its callback is queued or delivered.
    let pending = callback.map(|cb| {
        let receipt = &outcome.plan.receipt;
        let at = outcome.dir.join(RECEIPT_PATH);
        callback::queue_for_spawn(&receipt.to_json_bytes(), receipt.merkle_root(), &at, cb)
    });
    let applied = match &found {
        Some(base) => apply_git(&mut outcome, base),
        None => nogit::apply(&opts.dir, &outcome.plan, &mut outcome.changes),
    };
    if let Err(e) = applied {
        if let Some(p) = pending {
            p.abandon();
        }
        return Err(e);
    }
    if opts.ledger {
        outcome.ledger = record(&outcome);
    }
    let conflicts = !outcome.conflicts().is_empty();
    let mut code = if conflicts {
        ExitCode::Conflicts
    } else {
        ExitCode::Success
    };
    if !opts.json {
        report::outcome(opts, &outcome)?;
    }
    if let Some(p) = pending {
        let (delivered, json) = callback::after_spawn(p, opts.quiet);
        outcome.callback = Some(json);
        if !conflicts {
            code = delivered;
        }
    }
    if opts.json {
        report::outcome(opts, &outcome)?;
    }
    Ok(code)
}

/// Git mode: the pristine commit, then the merge.
fn apply_git(outcome: &mut Outcome, base: &base::Base) -> Result<()> {
    let pristine = merge::pristine_commit(&outcome.dir, &outcome.plan, &base.commit)?;
    outcome.pristine = Some(pristine.clone());
    if interrupt::requested() {
        return Err(interrupted());
    }
    let merged = merge::merge(&outcome.dir, &outcome.plan, &pristine)?;
    match merged {
        merge::Merged::Clean(commit) => {
            outcome.merge = Some(commit);
            for change in &mut outcome.changes {
                if change.action == Action::Conflict {
                    change.action = Action::Merged;
                }
            }
        }
        merge::Merged::Conflicts(paths) => {
            for change in &mut outcome.changes {
                if paths.contains(&change.path) {
                    change.action = Action::Conflict;
                } else if change.action == Action::Conflict {
                    change.action = Action::Merged;
                }
            }
            for path in paths {
                if !outcome.changes.iter().any(|c| c.path == path) {
                    outcome.changes.push(Change::new(path, Action::Conflict));
                }
            }
        }
    }
    Ok(())
}

/// The ledger line; a ledger that cannot be written is a warning, as for a spawn.
fn record(outcome: &Outcome) -> Option<PathBuf> {
    let plan = &outcome.plan;
    let update = UpdateRecord {
        old_merkle_root: plan.old.merkle_root.clone(),
        old_templates: plan.old_templates.clone(),
        new_templates: plan.new_templates.clone(),
        conflicts: outcome.conflicts().len() as u64,
        updated: crate::spawn::config::now()
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_else(|_| plan.receipt.created.clone()),
    };
    ledger::append_update(&plan.receipt, &outcome.dir, update)
        .inspect_err(|e| {
            eprintln!(
                "warning: {}; the update is complete but not in the ledger (pass --no-ledger to skip it)",
                crate::error::describe(e)
            )
        })
        .ok()
}

fn interrupted() -> anyhow::Error {
    fail(
        ExitCode::Interrupted,
        "interrupted: the repository was left unchanged; run spawn-elite update again",
    )
}

/// `DIR` as given, or an error when it is not a directory.
pub fn checked_dir(dir: &Path) -> Result<PathBuf> {
    if !dir.is_dir() {
        return Err(fail(
            ExitCode::Usage,
            format!(
                "{} is not a directory; pass the spawned repository to update (default: the current directory)",
                dir.display()
            ),
        ));
    }
    std::path::absolute(dir).map_err(|e| {
        fail(
            ExitCode::Io,
            format!(
                "cannot resolve {}: {e}; pass an absolute path",
                dir.display()
            ),
        )
    })
}

/// Remove the directories named `PREFIX…` in `parent`: the scratch
/// directories a killed update left behind (in the git directory with git,
/// in `.spawn-elite/` without). Two updates of one repository at the same
/// time are not supported.
fn remove_scratch_dirs(parent: &std::path::Path, prefix: &str) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(prefix)
            && entry.file_type().is_ok_and(|t| t.is_dir())
        {
            std::fs::remove_dir_all(entry.path()).map_err(|e| {
                crate::error::fail(
                    crate::error::ExitCode::Io,
                    format!(
                        "cannot remove {}, left by an interrupted update: {e}; remove it by hand",
                        entry.path().display()
                    ),
                )
            })?;
        }
    }
    Ok(())
}
