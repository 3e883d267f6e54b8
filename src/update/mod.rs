//! `spawn-elite update`: bring a spawned repository up to the current
//! template set, keeping the user's changes. docs/UPDATE.md is the user's
//! account of it; the pipeline, in order:
//!
//! - `plan`: read the receipt, resolve type, elite flag and values against
//!   the current set, render in memory (as a spawn does, through the
//!   template set), and make the new receipt of that pristine output.
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
//!
//! Then the record step every spawn shares (`ops::record`): the ledger line
//! and the callback. The command layer prints the [`Outcome`].

pub mod base;
pub mod classify;
pub mod guard;
pub mod merge;
pub mod nogit;
pub mod plan;
pub mod resume;

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::callback::CallbackOptions;
use crate::clock::Clock;
use crate::error::{ExitCode, fail};
use crate::interrupt;
use crate::ledger::UpdateRecord;
use crate::ops::record::{self, Event, Recorded};
use crate::provenance::{self, Signer};
use classify::{Action, Change};
use plan::Plan;
use std::sync::Arc;

/// One update as the command line asked for it.
#[derive(Debug, Clone)]
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
    /// The time of the update, for its ledger line and its commits.
    pub clock: Clock,
    /// `--sign`: the key that signs the new tree's attestation.
    pub signer: Option<Arc<Signer>>,
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
    /// The ledger line and the callback still to be delivered; `None`
    /// when nothing was recorded: a dry run, nothing to do, or conflicts
    /// that wait for the user (`update --continue` records the update once
    /// they are resolved).
    pub recorded: Option<Recorded>,
    /// What the user should know, though the update went on.
    pub warnings: Vec<String>,
    /// With `--tsa`: the TSA's time of the new attestation's timestamp
    /// (none when it is pending: `recorded.stamp_pending`).
    pub stamped: Option<crate::provenance::tsa::Stamp>,
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

/// `update --check`: the plan alone; current or not is
/// [`Plan::current`].
pub fn check(opts: &Options) -> Result<Plan> {
    plan::plan(opts)
}

/// One update, start to end; with `--dry-run`, what it would do.
pub fn run(opts: &Options, callback: Option<&CallbackOptions>) -> Result<Outcome> {
    interrupt::install();
    // One update of a repository at a time, held until it is recorded.
    let _lock = guard::lock(&opts.dir, opts.dry_run)?;
    guard::refuse_linked_metadata(&opts.dir)?;
    let plan = plan::plan(opts)?;
    guard::refuse_unresolved(&opts.dir, &plan)?;
    guard::refuse_pending(&opts.dir)?;
    let mut warnings = plan.warnings.clone();
    let git_repo = opts.dir.join(".git").exists() && merge::git(&opts.dir).available();
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
        // In a dry run too, so that it exits as the run would.
        merge::refuse_unready(&opts.dir)?;
        let found = base::find(&opts.dir)?;
        if found.is_none() {
            fallback = Some(
                "no pristine scaffold commit is in HEAD's history (no commit holds exactly the files its receipt lists); updating from the receipt alone: the result is left uncommitted in the work tree, for you to review (`git status`) and commit".to_owned(),
            );
        }
        found
    } else {
        None
    };
    warnings.extend(fallback.clone());
    let mode = if found.is_some() {
        Mode::Git
    } else {
        Mode::Receipt
    };
    let mut changes = match &found {
        Some(b) => classify::with_base(&opts.dir, &plan, b)?,
        None => classify::from_receipt(&opts.dir, &plan)?,
    };
    if found.is_none() {
        nogit::block_linked(&opts.dir, &mut changes)?;
    }
    if found.is_some() {
        guard::refuse_what_git_would_lose(&opts.dir, &changes)?;
    }
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
        recorded: None,
        warnings,
        stamped: None,
    };
    if opts.dry_run || outcome.current() {
        return Ok(outcome);
    }
    if interrupt::requested() {
        return Err(interrupted());
    }
    if opts.signer.is_none() && opts.dir.join(provenance::ATTESTATION_PATH).exists() {
        outcome.warnings.push(format!(
            "this repository was signed, and this update is not: its {} will no longer match the tree; pass --sign (or run `spawn-elite attest` afterwards)",
            provenance::ATTESTATION_PATH
        ));
    }
    let mut pending_stamp = None;
    if let Some(signer) = &opts.signer {
        // The new pristine tree's attestation, naming the one it follows,
        // and with --tsa its timestamp: written and committed with it.
        let previous = provenance::previous(&opts.dir);
        let plan = &outcome.plan;
        let meta = record::metadata(
            &plan.receipt,
            &plan.files,
            Some(signer),
            &opts.clock,
            previous.as_deref(),
        )?;
        outcome.plan.metadata = meta
            .files
            .into_iter()
            .filter(|f| f.path != crate::receipt::RECEIPT_PATH)
            .collect();
        outcome.stamped = meta.stamped;
        pending_stamp = meta.pending;
    }
    // Queued before anything changes, so that from the moment the new
    // receipt is in place its callback (and a timestamp request the TSA
    // did not answer) is queued or done.
    let record = record::begin(
        &outcome.plan.receipt,
        &outcome.dir,
        callback,
        &outcome.plan.metadata,
        pending_stamp.as_ref(),
    );
    let applied = match &found {
        Some(base) => apply_git(&mut outcome, base, &opts.clock),
        None => nogit::apply(&opts.dir, &outcome.plan, &mut outcome.changes),
    };
    if let Err(e) = applied {
        record.abandon();
        return Err(e);
    }
    let update = update_record(&outcome, &opts.clock);
    if !outcome.conflicts().is_empty() {
        // Not finished: recorded by `update --continue` once the user has
        // resolved the conflicts, never if they abort.
        record.abandon();
        // Without git, a note keeps what the record needs (with git, the
        // merge in progress holds it); with nothing to record, no note.
        if outcome.mode == Mode::Receipt && (opts.ledger || callback.is_some()) {
            resume::keep_pending(&outcome.dir, &update)?;
        }
        return Ok(outcome);
    }
    let event = opts.ledger.then(|| Event::Update(Box::new(update)));
    outcome.recorded = Some(record.finish(event));
    Ok(outcome)
}

/// Git mode: the pristine commit, then the merge.
fn apply_git(outcome: &mut Outcome, base: &base::Base, clock: &Clock) -> Result<()> {
    let pristine = merge::pristine_commit(&outcome.dir, &outcome.plan, &base.commit, clock)?;
    outcome.pristine = Some(pristine.clone());
    if interrupt::requested() {
        return Err(interrupted());
    }
    let merged = merge::merge(&outcome.dir, &outcome.plan, &pristine, clock)?;
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

/// What the ledger line of an update records besides its receipt.
fn update_record(outcome: &Outcome, clock: &Clock) -> UpdateRecord {
    let plan = &outcome.plan;
    UpdateRecord {
        old_merkle_root: plan.old.merkle_root.clone(),
        old_templates: plan.old_templates.clone(),
        new_templates: plan.new_templates.clone(),
        conflicts: outcome.conflicts().len() as u64,
        updated: clock.stamp(),
    }
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
