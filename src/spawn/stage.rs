//! Writing a planned repository so that it appears whole or not at all.
//!
//! Everything is written into a hidden staging directory beside the target
//! (same filesystem), committed there, and only then renamed into place. Any
//! failure or Ctrl-C before the rename drops the staging directory; the
//! rename itself refuses to replace anything that appeared meanwhile.

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::config::SpawnConfig;
use super::git::{self, GitOutcome};
use crate::error::{ExitCode, fail};
use crate::fsutil;
use crate::interrupt;
use crate::templates::PlannedFile;

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

/// The directories of `--out-dir` that this spawn created itself, outermost
/// first. If the spawn fails they are removed again, innermost first, with
/// `rmdir` only: a directory that holds anything (another spawn's
/// repository, or its staging directory) stops the removal there. A spawn
/// never deletes recursively anything it did not create alone.
struct CreatedBase {
    created: Vec<PathBuf>,
    keep: bool,
}

impl Drop for CreatedBase {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        for dir in self.created.iter().rev() {
            if fs::remove_dir(dir).is_err() {
                break;
            }
        }
    }
}

fn create_base(base: &Path) -> Result<CreatedBase> {
    let not_a_dir = |what: String| {
        fail(
            ExitCode::Io,
            format!("--out-dir {} {what}; choose a directory", base.display()),
        )
    };
    match (fs::metadata(base), fs::symlink_metadata(base)) {
        (Ok(meta), _) if !meta.is_dir() => {
            return Err(not_a_dir("is a file, not a directory".into()));
        }
        (Err(_), Ok(link)) if link.file_type().is_symlink() => {
            let to = fs::read_link(base)
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            return Err(not_a_dir(format!(
                "is a symlink to {to}, which does not exist"
            )));
        }
        _ => {}
    }
    let cannot = |e: std::io::Error| {
        fail(
            ExitCode::Io,
            format!(
                "cannot create {}: {}; choose a writable --out-dir",
                base.display(),
                describe_io(&e)
            ),
        )
    };
    let mut missing: Vec<&Path> = base
        .ancestors()
        .take_while(|dir| fs::symlink_metadata(dir).is_err())
        .collect();
    missing.reverse();
    let mut created = CreatedBase {
        created: Vec::new(),
        keep: false,
    };
    // One directory at a time, so that only those this spawn made itself
    // (mkdir succeeded) are its to remove; one another process made
    // meanwhile (AlreadyExists) is not.
    for dir in missing {
        match fs::create_dir(dir) {
            Ok(()) => created.created.push(dir.to_path_buf()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(cannot(e)),
        }
    }
    fs::create_dir_all(base).map_err(cannot)?;
    Ok(created)
}

/// Create the base directories and a staging directory in them. Another
/// spawn that fails may `rmdir` a base directory it created, in the instant
/// before ours is inside it; then the base is made again.
fn stage_in(config: &SpawnConfig) -> Result<(CreatedBase, tempfile::TempDir)> {
    let mut tries = 0;
    loop {
        let created_base = create_base(&config.base)?;
        let staging = tempfile::Builder::new()
            .prefix(&format!(".{}.spawning-", config.name))
            .permissions(fs::Permissions::from_mode(0o755))
            .tempdir_in(&config.base);
        match staging {
            Ok(staging) => return Ok((created_base, staging)),
            Err(e) if e.kind() == ErrorKind::NotFound && tries < 5 => tries += 1,
            Err(e) => {
                return Err(fail(
                    ExitCode::Io,
                    format!(
                        "cannot write in {}: {}; choose a writable --out-dir",
                        config.base.display(),
                        describe_io(&e)
                    ),
                ));
            }
        }
    }
}

/// The OS's reason alone: some errors carry the path of our hidden staging
/// directory, which would only confuse.
fn describe_io(err: &std::io::Error) -> String {
    match err.kind() {
        ErrorKind::PermissionDenied => "permission denied".into(),
        ErrorKind::StorageFull => "no space left on device".into(),
        ErrorKind::ReadOnlyFilesystem => "read-only file system".into(),
        _ => match err.raw_os_error() {
            Some(code) => std::io::Error::from_raw_os_error(code).to_string(),
            None => err.kind().to_string(),
        },
    }
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

pub fn write_file(root: &Path, file: &PlannedFile) -> Result<()> {
    let path = root.join(&file.path);
    let io_fail = |e: std::io::Error| {
        fail(
            ExitCode::Io,
            format!(
                "cannot write {}: {}; nothing was created",
                file.path,
                describe_io(&e)
            ),
        )
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_fail)?;
    }
    let mode = if file.executable { 0o755 } else { 0o644 };
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&path)
        .map_err(io_fail)?;
    out.write_all(&file.contents).map_err(io_fail)?;
    // The umask may have removed bits; the executable bit is part of what we
    // promise (and of the receipt), so set it exactly.
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(io_fail)?;
    Ok(())
}

/// Write `files` as a new repository at `config.target`.
///
/// `before_commit` runs on the staged tree after the files are written and
/// before git sees them: the receipt is written there so that it is part of
/// the initial commit.
pub fn write_repository(
    config: &SpawnConfig,
    files: &[PlannedFile],
    before_commit: impl FnOnce(&Path) -> Result<()>,
) -> Result<Spawned> {
    refuse_existing(&config.target)?;
    let (mut created_base, staging) = stage_in(config)?;

    let bar = progress(config, files.len() as u64);
    for file in files {
        check_interrupted()?;
        write_file(staging.path(), file)?;
        bar.inc(1);
    }
    bar.finish_and_clear();

    check_interrupted()?;
    before_commit(staging.path())?;

    let git = if config.git {
        check_interrupted()?;
        // Ctrl-C reaches git too and makes it fail: report the cause, not the symptom.
        let outcome = git::init_and_commit(staging.path(), config);
        check_interrupted()?;
        Some(outcome?)
    } else {
        None
    };

    check_interrupted()?;
    match fsutil::rename_no_replace(staging.path(), &config.target) {
        Ok(()) => {
            let _ = staging.keep();
            created_base.keep = true;
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
    Ok(Spawned {
        path: config.target.clone(),
        git,
    })
}
