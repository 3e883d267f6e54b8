//! One spawn, from checked options to a repository on disk with its
//! receipt, a ledger line and a queued callback; the command layer prints
//! the [`Outcome`] and delivers the callback.
//!
//! - `config`: what the user asked for, checked (`Request` → `SpawnConfig`).
//! - `prompt`: `-i`, the values asked for on a terminal.
//! - `stage`: the planned files written whole or not at all.
//! - `git`: the initial commit, inside the staging directory.

pub mod config;
pub mod git;
pub mod prompt;
pub mod stage;

use std::path::PathBuf;

use anyhow::Result;

use crate::callback::CallbackOptions;
use crate::ops::record::{self, Event, Recorded};
use crate::receipt::Receipt;
use crate::templates::PlannedFile;
use config::SpawnConfig;
use git::GitOutcome;

/// What a spawn made.
pub struct Outcome {
    /// Every file of the repository but the receipt, sorted by path.
    pub files: Vec<PlannedFile>,
    pub path: PathBuf,
    /// `None` with `--no-git`.
    pub git: Option<GitOutcome>,
    pub receipt: Receipt,
    /// With `--sign`: the key id that signed the attestation.
    pub signed_by: Option<String>,
    /// With `--tsa`: the TSA's time of the attestation's timestamp (none
    /// when it is pending: `recorded.stamp_pending`).
    pub stamped: Option<crate::provenance::tsa::Stamp>,
    /// The ledger line, and the callback still to be delivered.
    pub recorded: Recorded,
    /// What the user should know, though the spawn succeeded.
    pub warnings: Vec<String>,
}

/// What `--dry-run` would make: the files, and the receipt they would have.
pub struct Preview {
    pub files: Vec<PlannedFile>,
    pub receipt: Receipt,
}

/// One spawn, start to end: plan in memory, write atomically with the
/// receipt, then record it (ledger line, callback queued).
///
/// `callback` must already be checked ([`CallbackOptions::check`]), so a bad
/// key or URL fails before anything is written.
pub fn run(config: &SpawnConfig, callback: Option<&CallbackOptions>) -> Result<Outcome> {
    crate::interrupt::install();
    // The staging directory first, so that `git init` runs in it while the
    // templates are rendered.
    let mut warnings = Vec::new();
    let stage = stage::begin(config, &mut warnings)?;
    let files = config.set.render_type(&config.render())?;
    let receipt = receipt_of(config, &files);
    let meta = record::metadata(
        &receipt,
        &files,
        config.signer.as_deref(),
        &config.clock,
        None,
    )?;
    let mut record = None;
    let written = stage.write(&files, &meta.files, || {
        // Queued before the repository is moved into place, so that a kill
        // at any instant after that leaves the callback queued or delivered.
        // So is the attestation's timestamp request, if its TSA did not answer.
        record = Some(record::begin(
            &receipt,
            &config.target,
            callback,
            &meta.files,
            meta.pending.as_ref(),
        ));
    });
    let record = record.unwrap_or_else(|| record::begin(&receipt, &config.target, None, &[], None));
    let spawned = match written {
        Ok(spawned) => spawned,
        Err(e) => {
            record.abandon();
            return Err(e);
        }
    };
    if spawned.git == Some(GitOutcome::NotInstalled) {
        warnings.push(
            "git is not installed: the repository was created without git; install git, or pass --no-git to silence this".to_owned(),
        );
    }
    let recorded = record.finish(config.ledger.then_some(Event::Spawn));
    Ok(Outcome {
        files,
        path: spawned.path,
        git: spawned.git,
        receipt,
        signed_by: config.signer.as_ref().map(|s| s.key_id()),
        stamped: meta.stamped,
        recorded,
        warnings,
    })
}

/// `--dry-run`: what the spawn would write, and refuse as it would a target
/// that exists. Nothing is written.
pub fn preview(config: &SpawnConfig) -> Result<Preview> {
    let files = config.set.render_type(&config.render())?;
    stage::refuse_existing(&config.target)?;
    let receipt = receipt_of(config, &files);
    Ok(Preview { files, receipt })
}

/// The receipt of the spawn's files, made in memory.
fn receipt_of(config: &SpawnConfig, files: &[PlannedFile]) -> Receipt {
    let spawn = config.render().spawn_info(&config.set);
    Receipt::of_planned(files, Some(spawn), config.clock.stamp())
}
