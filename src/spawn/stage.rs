//! Writing a planned repository so that it appears whole or not at all.
//!
//! Everything is written into a hidden staging directory beside the target
//! (same filesystem), committed there, and only then renamed into place. Any
//! failure or Ctrl-C before the rename drops the staging directory; the
//! rename itself refuses to replace anything that appeared meanwhile.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::config::SpawnConfig;
use super::git::{self, GitOutcome};
use crate::durable;
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

/// The staging directory of a spawn in progress, locked (`flock`) for as
/// long as the spawn runs: a staging directory whose lock can be taken
/// belongs to a spawn that was killed (see [`remove_stale`]).
///
/// Fields drop in order: the staging directory first, then the lock, then
/// the base directories, which can only be removed once they are empty.
struct Staging {
    dir: StagingDir,
    _lock: File,
    base: CreatedBase,
}

/// Removes the staging directory when dropped, unless it was kept (renamed
/// into place as the new repository).
struct StagingDir {
    path: PathBuf,
    armed: bool,
}

impl StagingDir {
    fn path(&self) -> &Path {
        &self.path
    }

    fn keep(&mut self) {
        self.armed = false;
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Create the base directories and a locked staging directory in them.
///
/// The directory is made under a nursery name (`.NAME.nursery-RANDOM`),
/// locked, and only then renamed to its staging name, so a sweep of stale
/// staging directories never sees one whose lock is not yet taken. Another
/// spawn that fails may `rmdir` a base directory it created in the instant
/// before ours is inside it, and a sweep may `rmdir` an empty nursery in the
/// instant before it is locked: either way it is simply made again.
fn stage_in(config: &SpawnConfig) -> Result<Staging> {
    let mut tries = 0;
    loop {
        let base = create_base(&config.base)?;
        match nurse(config) {
            Ok((dir, lock)) => {
                return Ok(Staging {
                    dir,
                    _lock: lock,
                    base,
                });
            }
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

/// One try at a locked staging directory: make it as a nursery, lock it,
/// rename it to its staging name.
fn nurse(config: &SpawnConfig) -> std::io::Result<(StagingDir, File)> {
    let nursery = tempfile::Builder::new()
        .prefix(&format!(".{}{NURSERY_MARK}", config.name))
        .permissions(fs::Permissions::from_mode(0o755))
        .tempdir_in(&config.base)?;
    let lock = open_dir(nursery.path())?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)?;
    let random = nursery
        .path()
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.rsplit_once(NURSERY_MARK))
        .map(|(_, random)| random.to_owned())
        .unwrap_or_default();
    let path = config
        .base
        .join(format!(".{}{STAGING_MARK}{random}", config.name));
    fsutil::rename_no_replace(nursery.path(), &path)?;
    // The nursery name is gone; from here the guard owns the directory.
    let _ = nursery.keep();
    Ok((StagingDir { path, armed: true }, lock))
}

/// Flushes the staged repository to disk before it is renamed into place,
/// so that after a power cut the repository is whole or absent, never there
/// with empty files.
///
/// Only what the spawn and its git processes wrote is flushed, file by file
/// and directory by directory ([`crate::durable`]), never the whole
/// filesystem: a `syncfs` would wait for every other process's writes too.
/// While git works, what can no longer change is flushed behind it on a
/// thread ([`Durability::flush_behind`]: the spawn's own files and folders
/// while `git init` and `git add` run, then what `git init` and `git add`
/// wrote while `git commit` runs), and remembered, so that the last flush
/// ([`Durability::finish`]) has only what the commit touches left: the
/// index, refs, logs, the commit's objects and the directories holding
/// them. Every flush's error fails the spawn.
struct Durability {
    dir: PathBuf,
    behind: Option<std::thread::JoinHandle<std::io::Result<Vec<durable::FileId>>>>,
    done: HashSet<durable::FileId>,
}

/// What is written for good when [`Durability::flush_behind`] is called.
#[derive(Clone, Copy)]
enum Settled {
    /// The spawn's own files and folders (the receipt too), not `.git`,
    /// which `git init` may still be writing.
    OwnFiles,
    /// And what `git init` and `git add` wrote: the hooks, `info/`,
    /// `description`, and every loose object under its final name (git
    /// writes an object under a temporary name and renames it when it is
    /// complete, so the commit running meanwhile adds objects but never
    /// changes one).
    AfterAdd,
}

impl Durability {
    fn new(dir: &Path) -> Self {
        Durability {
            dir: dir.to_path_buf(),
            behind: None,
            done: HashSet::new(),
        }
    }

    /// Start flushing what is settled and not flushed yet, on a thread,
    /// after the previous such flush has ended (its error is returned here).
    fn flush_behind(&mut self, settled: Settled) -> std::io::Result<()> {
        self.wait()?;
        let dir = self.dir.clone();
        let done = self.done.clone();
        self.behind = Some(std::thread::spawn(move || {
            flush_settled(&dir, settled, &done)
        }));
        Ok(())
    }

    fn wait(&mut self) -> std::io::Result<()> {
        if let Some(thread) = self.behind.take() {
            let flushed = thread
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the flush thread panicked")))?;
            self.done.extend(flushed);
        }
        Ok(())
    }

    /// Everything written in the staging directory is on disk when this
    /// returns `Ok`.
    fn finish(mut self) -> std::io::Result<()> {
        self.wait()?;
        make_durable(&self.dir, &self.done)
    }
}

/// Flush what is `settled` in the staged tree and not in `done`, and return
/// it.
fn flush_settled(
    dir: &Path,
    settled: Settled,
    done: &HashSet<durable::FileId>,
) -> std::io::Result<Vec<durable::FileId>> {
    let mut entries = settled_entries(dir, settled)?;
    entries.retain(|e| !done.contains(&e.id));
    durable::flush(&entries)?;
    Ok(entries.into_iter().map(|e| e.id).collect())
}

/// What is `settled` in the staged tree. The staging directory itself never
/// is: `.git` appears in it.
fn settled_entries(dir: &Path, settled: Settled) -> std::io::Result<Vec<durable::Entry>> {
    use durable::Take;
    durable::tree(dir, |path, is_dir| {
        let parts: Vec<&str> = path
            .components()
            .map(|c| c.as_os_str().to_str().unwrap_or(""))
            .collect();
        let take = |yes: bool| if yes { Take::Yes } else { Take::No };
        match parts.as_slice() {
            [] => Take::No,
            [".git", rest @ ..] if matches!(settled, Settled::AfterAdd) => match rest {
                // SHA-1 and SHA-256 names, less the two characters of `fan`.
                ["objects", fan, name] => take(
                    !is_dir
                        && fan.len() == 2
                        && is_hex(fan)
                        && matches!(name.len(), 38 | 62)
                        && is_hex(name),
                ),
                [] | ["objects", ..] => Take::No,
                ["hooks" | "info", ..] | ["description"] => Take::Yes,
                _ => Take::Prune,
            },
            [".git", ..] => Take::Prune,
            _ => Take::Yes,
        }
    })
}

/// Whether `s` is lowercase hex.
fn is_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Flush the staged repository: every file and directory not in `done`
/// (flushed behind git, unchanged since), many at a time.
fn make_durable(dir: &Path, done: &HashSet<durable::FileId>) -> std::io::Result<()> {
    durable::flush_tree_except(dir, done)
}

/// Flush `dir` itself (the new name in it); filesystems that cannot sync a
/// directory (`EINVAL`) have nothing to flush.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    durable::flush_dir(dir)
}

/// What every staging directory's name holds: `.NAME.spawning-RANDOM`.
const STAGING_MARK: &str = ".spawning-";
/// What a staging directory is called in the instant before it is locked.
const NURSERY_MARK: &str = ".nursery-";

/// The directory at `path` itself, never a symlink's target.
fn open_dir(path: &Path) -> std::io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(File::from(rustix::fs::open(path, flags, Mode::empty())?))
}

/// Whether `path` still names the directory `dir` has open.
fn same_dir(dir: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (dir.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Whether `name` is `.NAME{mark}RANDOM` with NAME a valid repository name
/// and RANDOM letters and digits: a staging directory's name with
/// [`STAGING_MARK`], a nursery's with [`NURSERY_MARK`].
fn is_staging_name(name: &str, mark: &str) -> bool {
    let Some((repo, random)) = name
        .strip_prefix('.')
        .and_then(|rest| rest.split_once(mark))
    else {
        return false;
    };
    super::config::validate_name(repo).is_ok()
        && !random.is_empty()
        && random.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Remove the staging directories in `base` left by spawns that were
/// killed (SIGKILL, power loss): those whose lock nobody holds. Each one
/// removed, or found but not removable, is one line of `say`. Returns the
/// paths removed.
pub fn remove_stale(base: &Path, say: &mut dyn FnMut(&str)) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = fs::read_dir(base) else {
        return removed;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let Some(name) = name.to_str().filter(|_| is_dir) else {
            continue;
        };
        let nursery = is_staging_name(name, NURSERY_MARK);
        if !nursery && !is_staging_name(name, STAGING_MARK) {
            continue;
        }
        let path = entry.path();
        let Ok(dir) = open_dir(&path) else {
            continue;
        };
        let free =
            rustix::fs::flock(&dir, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok();
        if !free || !same_dir(&dir, &path) {
            continue; // a spawn is still writing it, or it moved on
        }
        if nursery {
            // Always empty: a spawn killed before it locked its staging
            // directory, or one about to (which then makes another).
            let _ = fs::remove_dir(&path);
            continue;
        }
        match fs::remove_dir_all(&path) {
            Ok(()) => {
                say(&format!(
                    "removed {}: the staging directory of a spawn that was killed",
                    path.display()
                ));
                removed.push(path);
            }
            Err(e) => say(&format!(
                "cannot remove {}, the staging directory of a spawn that was killed: {}; remove it by hand",
                path.display(),
                describe_io(&e)
            )),
        }
    }
    removed
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
pub fn begin(config: &SpawnConfig) -> Result<Stage<'_>> {
    refuse_existing(&config.target)?;
    let staging = stage_in(config)?;
    let init = if config.git {
        Some(git::start_init(staging.dir.path())?)
    } else {
        None
    };
    remove_stale(&config.base, &mut |line| super::report::warn(line));
    Ok(Stage {
        config,
        init,
        staging,
    })
}

impl Stage<'_> {
    /// Write `files` as the new repository at `config.target`.
    ///
    /// `before_commit` runs on the staged tree after the files are written
    /// and before git sees them: the receipt is written there so that it is
    /// part of the initial commit.
    pub fn write(
        self,
        files: &[PlannedFile],
        before_commit: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<Spawned> {
        let Stage {
            config,
            init,
            mut staging,
        } = self;
        write_staged(config, init, &mut staging, files, before_commit)
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
    before_commit: impl FnOnce(&Path) -> Result<()>,
) -> Result<Spawned> {
    let bar = progress(config, files.len() as u64);
    for file in files {
        check_interrupted()?;
        write_file(staging.dir.path(), file)?;
        bar.inc(1);
    }
    bar.finish_and_clear();

    check_interrupted()?;
    before_commit(staging.dir.path())?;

    let mut durability = Durability::new(staging.dir.path());
    let git = if let Some(init) = init {
        check_interrupted()?;
        durability
            .flush_behind(Settled::OwnFiles)
            .map_err(flush_failed)?;
        let mut after_add = || {
            durability
                .flush_behind(Settled::AfterAdd)
                .map_err(flush_failed)
        };
        // Ctrl-C reaches git too and makes it fail: report the cause, not the symptom.
        let outcome = init.commit(config, &mut after_add);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let out = git::git(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@localhost"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    }

    fn snapshot(entries: &[durable::Entry]) -> Vec<(PathBuf, u64, Vec<u8>)> {
        entries
            .iter()
            .filter(|e| !e.dir)
            .map(|e| (e.path.clone(), e.id, fs::read(&e.path).unwrap()))
            .collect()
    }

    /// What is flushed behind git and then skipped by the last flush must
    /// not change afterwards: every file settled after `git add` is still
    /// the same file (inode) with the same bytes once `git commit` has run,
    /// and what is settled before git runs leaves out `.git`.
    #[test]
    fn what_is_settled_behind_git_is_never_changed_by_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("src/app")).unwrap();
        fs::write(root.join("README.md"), "readme\n").unwrap();
        fs::write(root.join("src/app/main.py"), "print(1)\n").unwrap();
        git(root, &["-c", "init.defaultBranch=main", "init", "--quiet"]);

        let own = settled_entries(root, Settled::OwnFiles).unwrap();
        let mut own_paths: Vec<String> = own
            .iter()
            .map(|e| e.path.strip_prefix(root).unwrap().display().to_string())
            .collect();
        own_paths.sort();
        assert_eq!(
            own_paths,
            ["README.md", "src", "src/app", "src/app/main.py"]
        );

        git(root, &["add", "--all"]);
        let after_add = settled_entries(root, Settled::AfterAdd).unwrap();
        let names: Vec<String> = after_add
            .iter()
            .map(|e| e.path.strip_prefix(root).unwrap().display().to_string())
            .collect();
        let objects = names
            .iter()
            .filter(|n| n.starts_with(".git/objects/"))
            .count();
        assert!(
            objects >= 2,
            "the blobs git add wrote are settled: {names:?}"
        );
        for never in [
            ".git",
            ".git/index",
            ".git/HEAD",
            ".git/config",
            ".git/objects",
        ] {
            assert!(
                !names.iter().any(|n| n == never),
                "{never} is not settled: {names:?}"
            );
        }

        let before = snapshot(&after_add);
        git(
            root,
            &["commit", "--quiet", "--no-verify", "-m", "scaffold"],
        );
        let after = snapshot(&settled_entries(root, Settled::AfterAdd).unwrap());
        for file in &before {
            assert!(
                after.contains(file),
                "{} changed after the commit",
                file.0.display()
            );
        }
    }
}
