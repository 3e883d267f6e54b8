//! Writing a planned repository so that it appears whole or not at all.
//!
//! Everything is written into a hidden staging directory beside the target
//! (same filesystem), committed there, and only then renamed into place. Any
//! failure or Ctrl-C before the rename drops the staging directory; the
//! rename itself refuses to replace anything that appeared meanwhile.

mod durable;
mod staging;

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::config::SpawnConfig;
use super::git::{self, GitOutcome};
use crate::error::{ExitCode, fail};
use crate::fsutil::{self, describe_io};
use crate::interrupt;
use crate::templates::PlannedFile;
use durable::{Durability, Settled, sync_dir};
pub use staging::remove_stale;
use staging::{Staging, stage_in};

/// Ctrl-C during a spawn must not kill the process mid-write: the writer
/// checks for it between steps, so cleanup always runs.
fn check_interrupted() -> Result<()> {
    if interrupt::requested() {
        return Err(fail(
            ExitCode::Interrupted,
            "interrupted: nothing was created",
        ));
    }
    Ok(())
}

#[derive(Debug)]
pub struct Spawned {
    pub path: PathBuf,
    pub git: Option<GitOutcome>,
}

fn flush_failed(e: std::io::Error) -> anyhow::Error {
    fail(
        ExitCode::Io,
        format!(
            "cannot flush the new repository to disk: {}; nothing was created",
            describe_io(&e)
        ),
    )
}

pub fn refuse_existing(target: &Path) -> Result<()> {
    if fs::symlink_metadata(target).is_ok() {
        return Err(fail(
            ExitCode::TargetExists,
            format!(
                "cannot create {}: it already exists and was left untouched; choose another name or remove it",
                target.display()
            ),
        ));
    }
    Ok(())
}

fn progress(config: &SpawnConfig, len: u64) -> ProgressBar {
    let target = if config.quiet || config.json {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message("writing");
    bar
}

/// Write one planned file into the staging directory.
fn write_file(root: &Path, file: &PlannedFile) -> Result<()> {
    fsutil::write_planned(root, file).map(drop).map_err(|e| {
        fail(
            ExitCode::Io,
            format!(
                "cannot write {}: {}; nothing was created",
                file.path,
                describe_io(&e)
            ),
        )
    })
}

/// A spawn's locked staging directory, with `git init` already running in
/// it; dropped without [`Stage::write`], it leaves nothing behind.
pub struct Stage<'a> {
    config: &'a SpawnConfig,
    // Declared before `staging`, so dropped before it: git is stopped
    // before the staging directory is removed.
    init: Option<git::Init>,
    staging: Staging,
}

/// Make the staging directory for `config.target` and start `git init` in
/// it, so that git works while the templates are rendered.
/// Staging directories that killed spawns left are swept up here: a line
/// for each in `warnings`.
pub fn begin<'a>(config: &'a SpawnConfig, warnings: &mut Vec<String>) -> Result<Stage<'a>> {
    refuse_existing(&config.target)?;
    let staging = stage_in(config)?;
    let init = if config.git {
        Some(git::start_init(staging.dir.path())?)
    } else {
        None
    };
    remove_stale(&config.base, &mut |line| warnings.push(line.to_owned()));
    Ok(Stage {
        config,
        init,
        staging,
    })
}

impl Stage<'_> {
    /// Write `files` and their `meta` files (the receipt, an attestation)
    /// as the new repository at `config.target`. `before_commit` runs once
    /// they are all written,
    /// before git sees them and before the repository is moved into place
    /// (the callback is queued there).
    pub fn write(
        self,
        files: &[PlannedFile],
        meta: &[PlannedFile],
        before_commit: impl FnOnce(),
    ) -> Result<Spawned> {
        let Stage {
            config,
            init,
            mut staging,
        } = self;
        write_staged(config, init, &mut staging, files, meta, before_commit)
    }
}

/// The body of [`Stage::write`], apart so that `init`, consumed or dropped
/// here, is always gone (git stopped) before `staging`, which the caller
/// owns, can be dropped and its directory removed.
fn write_staged(
    config: &SpawnConfig,
    init: Option<git::Init>,
    staging: &mut Staging,
    files: &[PlannedFile],
    meta: &[PlannedFile],
    before_commit: impl FnOnce(),
) -> Result<Spawned> {
    // Before anything is written: a write that fails from here on is
    // reported to the last flush.
    let mut durability = Durability::new(staging.dir.path());
    let bar = progress(config, files.len() as u64);
    for file in files {
        check_interrupted()?;
        write_file(staging.dir.path(), file)?;
        bar.inc(1);
    }
    bar.finish_and_clear();

    check_interrupted()?;
    for file in meta {
        write_file(staging.dir.path(), file)?;
    }
    before_commit();

    let git = if let Some(init) = init {
        check_interrupted()?;
        durability.flush_behind(Settled::OwnFiles);
        let mut after_add = || {
            durability.flush_behind(Settled::AfterAdd);
            Ok(())
        };
        // Ctrl-C reaches git too and makes it fail: report the cause, not the symptom.
        let outcome = init.commit(&config.kind, config.elite, &config.clock, &mut after_add);
        check_interrupted()?;
        Some(outcome?)
    } else {
        None
    };

    check_interrupted()?;
    durability.finish().map_err(flush_failed)?;
    match fsutil::rename_no_replace(staging.dir.path(), &config.target) {
        Ok(()) => {
            staging.base.keep = true;
            staging.dir.keep();
        }
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::AlreadyExists | ErrorKind::DirectoryNotEmpty
            ) =>
        {
            return Err(fail(
                ExitCode::TargetExists,
                format!(
                    "cannot create {}: it appeared while spawning and was left untouched; choose another name or remove it",
                    config.target.display()
                ),
            ));
        }
        Err(e) => {
            return Err(fail(
                ExitCode::Io,
                format!(
                    "cannot move the new repository into {}: {}; nothing was created",
                    config.target.display(),
                    describe_io(&e)
                ),
            ));
        }
    }
    // The rename is what makes the repository exist; a failure to flush it
    // leaves the repository in place and complete, so it is not an error.
    let _ = sync_dir(&config.base);
    Ok(Spawned {
        path: config.target.clone(),
        git,
    })
}
