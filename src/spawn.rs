//! One spawn from validated input to report, and the part that matters
//! most: writing a planned repository so that it appears whole or not at all.
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

use crate::callback;
use crate::cli::SpawnArgs;
use crate::config::SpawnConfig;
use crate::exit_codes::{ExitCode, fail};
use crate::git::{self, GitOutcome};
use crate::interrupt;
use crate::ledger;
use crate::output;
use crate::receipt::{Receipt, SpawnInfo};
use crate::scan;
use crate::templates;
use crate::templates::PlannedFile;

/// What a finished spawn reports to the user.
pub struct Report<'a> {
    pub files: &'a [PlannedFile],
    pub spawned: &'a Spawned,
    pub receipt: &'a Receipt,
    pub ledger: Option<&'a Path>,
    pub callback: Option<&'a serde_json::Value>,
}

/// One spawn, start to end: check every input, plan in memory, write
/// atomically with the receipt, record it in the ledger, then send the callback.
pub fn run(name: &str, kind: Option<&str>, args: &SpawnArgs) -> Result<ExitCode> {
    let config = SpawnConfig::from_args(name, kind, args)?;
    for warning in &config.warnings {
        output::warn(warning);
    }
    // A bad callback key or URL fails before anything is written.
    let callback = args.callback.options()?;
    if let Some(cb) = &callback {
        cb.check()?;
    }
    let files = templates::plan(&config)?;
    if config.dry_run {
        refuse_existing(&config.target)?;
        output::plan(&config, &files);
        if let Some(cb) = &callback {
            let receipt = preview_receipt(&config, &files)?;
            print!(
                "{}",
                callback::dry_run(&receipt.to_json_bytes(), receipt.merkle_root(), cb)?
            );
        }
        return Ok(ExitCode::Success);
    }
    interrupt::install();
    let mut made = None;
    let spawned = write_repository(&config, &files, |staging| {
        let receipt = Receipt::of_tree(staging, Some(spawn_info(&config)), config.now)?;
        receipt.write(&staging.join(scan::RECEIPT_PATH))?;
        made = Some(receipt);
        Ok(())
    })?;
    let receipt =
        made.ok_or_else(|| anyhow::anyhow!("internal error: the spawn wrote no receipt"))?;
    if spawned.git == Some(GitOutcome::NotInstalled) {
        output::warn(
            "git is not installed: the repository was created without git; install git, or pass --no-git to silence this",
        );
    }
    // The repository and its receipt exist now; a ledger that cannot be
    // written is worth a warning, not a failed spawn.
    let ledger = if config.ledger {
        ledger::append(&receipt, &spawned.path)
            .inspect_err(|e| output::warn(&format!("{e:#}; the spawn is complete but not in the ledger (pass --no-ledger to skip it)")))
            .ok()
    } else {
        None
    };
    let mut report = Report {
        files: &files,
        spawned: &spawned,
        receipt: &receipt,
        ledger: ledger.as_deref(),
        callback: None,
    };
    // Text: the summary first, then what became of the callback. JSON: one
    // object at the end that includes the callback's outcome.
    if !config.json {
        output::summary(&config, &report);
    }
    let delivery = callback.as_ref().map(|cb| {
        callback::after_spawn(
            &receipt.to_json_bytes(),
            receipt.merkle_root(),
            &spawned.path.join(scan::RECEIPT_PATH),
            cb,
            config.quiet,
        )
    });
    if config.json {
        report.callback = delivery.as_ref().map(|(_, json)| json);
        output::summary(&config, &report);
    }
    match delivery {
        Some((callback::CallbackStatus::Pending, _)) => Ok(ExitCode::CallbackPending),
        _ => Ok(ExitCode::Success),
    }
}

/// The receipt a spawn would write, for `--dry-run --callback`: the planned
/// files are written to a scratch directory and measured like the real thing.
fn preview_receipt(config: &SpawnConfig, files: &[templates::PlannedFile]) -> Result<Receipt> {
    let scratch = tempfile::tempdir()?;
    for file in files {
        write_file(scratch.path(), file)?;
    }
    Receipt::of_tree(scratch.path(), Some(spawn_info(config)), config.now)
}

fn spawn_info(config: &SpawnConfig) -> SpawnInfo {
    SpawnInfo {
        name: config.name.clone(),
        kind: config.kind.as_str().to_owned(),
        options: config.values.clone(),
        template_digest: templates::digest(),
        elite: config.elite,
    }
}

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

/// Removes the parent directories this spawn created if it fails, so that a
/// failed spawn into a new `--out-dir` leaves the filesystem as it found it.
struct CreatedBase {
    topmost: Option<PathBuf>,
    keep: bool,
}

impl Drop for CreatedBase {
    fn drop(&mut self) {
        if let (false, Some(dir)) = (self.keep, &self.topmost) {
            let _ = fs::remove_dir_all(dir);
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
    let topmost = base
        .ancestors()
        .take_while(|dir| fs::symlink_metadata(dir).is_err())
        .last()
        .map(Path::to_path_buf);
    fs::create_dir_all(base).map_err(|e| {
        fail(
            ExitCode::Io,
            format!(
                "cannot create {}: {}; choose a writable --out-dir",
                base.display(),
                describe_io(&e)
            ),
        )
    })?;
    Ok(CreatedBase {
        topmost,
        keep: false,
    })
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

/// Rename that fails instead of replacing an empty directory that appeared
/// at the target since we checked (plain rename(2) would replace it):
/// renameat2(RENAME_NOREPLACE) on Linux, renameatx_np(RENAME_EXCL) on macOS.
fn rename_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        // Filesystems without no-replace renames: check, then rename.
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
            if fs::symlink_metadata(to).is_ok() {
                return Err(ErrorKind::AlreadyExists.into());
            }
            fs::rename(from, to)
        }
        Err(e) => Err(e.into()),
    }
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
    let mut created_base = create_base(&config.base)?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{}.spawning-", config.name))
        .permissions(fs::Permissions::from_mode(0o755))
        .tempdir_in(&config.base)
        .map_err(|e| {
            fail(
                ExitCode::Io,
                format!(
                    "cannot write in {}: {}; choose a writable --out-dir",
                    config.base.display(),
                    describe_io(&e)
                ),
            )
        })?;

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
    match rename_no_replace(staging.path(), &config.target) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_never_replaces_an_empty_directory_that_appeared() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("staging"), dir.path().join("target"));
        fs::create_dir(&from).unwrap();
        fs::write(from.join("f"), "new").unwrap();
        fs::create_dir(&to).unwrap();
        let err = rename_no_replace(&from, &to).unwrap_err();
        assert!(matches!(
            err.kind(),
            ErrorKind::AlreadyExists | ErrorKind::DirectoryNotEmpty
        ));
        assert!(from.join("f").exists() && fs::read_dir(&to).unwrap().next().is_none());
        fs::remove_dir(&to).unwrap();
        rename_no_replace(&from, &to).unwrap();
        assert_eq!(fs::read_to_string(to.join("f")).unwrap(), "new");
    }
}
