//! One spawn, from checked options to a repository on disk with its
//! receipt, a ledger line and a callback.
//!
//! - `config`: what the user asked for, checked (`Request` → `SpawnConfig`).
//! - `plan`: the templates rendered into in-memory files.
//! - `stage`: those files written whole or not at all.
//! - `git`: the initial commit, inside the staging directory.
//! - `report`: what is printed.

pub mod config;
pub mod git;
pub mod plan;
pub mod prompt;
pub mod report;
pub mod stage;

use anyhow::Result;

use crate::callback::{self, CallbackOptions};
use crate::error::ExitCode;
use crate::interrupt;
use crate::ledger;
use crate::receipt::{RECEIPT_PATH, Receipt, SpawnInfo, TemplatesInfo};
use crate::templates::PlannedFile;
use config::SpawnConfig;
use git::GitOutcome;
use report::Report;

/// One spawn, start to end: plan in memory, write atomically with the
/// receipt, record it in the ledger, then send the callback.
///
/// `callback` must already be checked ([`CallbackOptions::check`]), so a bad
/// key or URL fails before anything is written.
pub fn run(config: &SpawnConfig, callback: Option<&CallbackOptions>) -> Result<ExitCode> {
    if config.dry_run {
        return dry_run(config, &plan::plan(config)?, callback);
    }
    interrupt::install();
    // The staging directory first, so that `git init` runs in it while the
    // templates are rendered.
    let stage = stage::begin(config)?;
    let files = plan::plan(config)?;
    let mut made = None;
    let mut pending = None;
    let spawned = stage.write(&files, |staging| {
        let receipt = Receipt::of_tree(staging, Some(spawn_info(config)), config.now)?;
        // One more staged file: the stage makes it durable with the rest.
        stage::write_file(
            staging,
            &PlannedFile {
                path: RECEIPT_PATH.to_owned(),
                contents: receipt.to_json_bytes(),
                executable: false,
            },
        )?;
        // Queued before the repository is moved into place, so that a kill
        // at any instant after that leaves the callback queued or delivered.
        pending = callback.map(|cb| {
            let at = config.target.join(RECEIPT_PATH);
            callback::queue_for_spawn(&receipt.to_json_bytes(), receipt.merkle_root(), &at, cb)
        });
        made = Some(receipt);
        Ok(())
    });
    let spawned = match spawned {
        Ok(spawned) => spawned,
        Err(e) => {
            if let Some(p) = pending {
                p.abandon();
            }
            return Err(e);
        }
    };
    let receipt =
        made.ok_or_else(|| anyhow::anyhow!("internal error: the spawn wrote no receipt"))?;
    if spawned.git == Some(GitOutcome::NotInstalled) {
        report::warn(
            "git is not installed: the repository was created without git; install git, or pass --no-git to silence this",
        );
    }
    // The repository and its receipt exist now; a ledger that cannot be
    // written is worth a warning, not a failed spawn.
    let ledger = if config.ledger {
        ledger::append(&receipt, &spawned.path)
            .inspect_err(|e| {
                report::warn(&format!(
                    "{}; the spawn is complete but not in the ledger (pass --no-ledger to skip it)",
                    crate::error::describe(e)
                ))
            })
            .ok()
    } else {
        None
    };
    let mut summary = Report {
        files: &files,
        spawned: &spawned,
        receipt: &receipt,
        ledger: ledger.as_deref(),
        callback: None,
    };
    // Text: the summary first, then what became of the callback. JSON: one
    // object at the end that includes the callback's outcome.
    if !config.json {
        report::summary(config, &summary);
    }
    let delivery = pending.map(|p| callback::after_spawn(p, config.quiet));
    if config.json {
        summary.callback = delivery.as_ref().map(|(_, json)| json);
        report::summary(config, &summary);
    }
    Ok(delivery.map_or(ExitCode::Success, |(code, _)| code))
}

/// `--dry-run`: the plan, and with `--callback` the request that would be sent.
fn dry_run(
    config: &SpawnConfig,
    files: &[PlannedFile],
    callback: Option<&CallbackOptions>,
) -> Result<ExitCode> {
    stage::refuse_existing(&config.target)?;
    report::plan(config, files);
    if let Some(cb) = callback {
        let receipt = preview_receipt(config, files)?;
        print!(
            "{}",
            callback::dry_run(&receipt.to_json_bytes(), receipt.merkle_root(), cb)?
        );
    }
    Ok(ExitCode::Success)
}

/// The receipt a spawn would write, for `--dry-run --callback`: the planned
/// files are written to a scratch directory and measured like the real thing.
fn preview_receipt(config: &SpawnConfig, files: &[PlannedFile]) -> Result<Receipt> {
    let scratch = tempfile::tempdir()?;
    for file in files {
        stage::write_file(scratch.path(), file)?;
    }
    Receipt::of_tree(scratch.path(), Some(spawn_info(config)), config.now)
}

fn spawn_info(config: &SpawnConfig) -> SpawnInfo {
    SpawnInfo {
        name: config.name.clone(),
        kind: config.kind.clone(),
        options: config.values.clone(),
        template_digest: None,
        templates: Some(TemplatesInfo {
            source: config.set.source.as_str().to_owned(),
            name: config.set.manifest.name.clone(),
            version: config.set.manifest.version.clone(),
            digest: config.set.digest().to_owned(),
        }),
        elite: config.elite,
    }
}
