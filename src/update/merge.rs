//! The git side of an update, all by running git: the checks before it, the
//! pristine commit built with plumbing (a temporary index, never the user's
//! index or work tree), and the merge, which is `git merge` itself.

use std::ffi::OsStr;
use std::io::{ErrorKind, Read as _, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::Result;

use super::base::TRAILER;
use super::plan::Plan;
use crate::error::{ExitCode, fail};
use crate::receipt::RECEIPT_PATH;
use crate::spawn::git::fallback_identity_args;
use crate::spawn::stage;

/// git, isolated from a surrounding repository's environment (a hook) as
/// for a spawn, and never reading the terminal.
fn git(dir: &Path) -> Command {
    let mut cmd = crate::spawn::git::git(dir);
    cmd.stdin(Stdio::null());
    cmd
}

/// Whether git runs at all.
pub fn git_available(dir: &Path) -> bool {
    match git(dir).arg("--version").output() {
        Err(e) if e.kind() == ErrorKind::NotFound => false,
        other => other.is_ok_and(|o| o.status.success()),
    }
}

/// Whether `git ARGS` succeeds.
pub fn git_ok(dir: &Path, args: &[&str]) -> bool {
    git(dir)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The stdout of `git ARGS`, or an error naming what failed.
pub fn git_output<S: AsRef<OsStr>>(dir: &Path, args: &[S], describe: &str) -> Result<Vec<u8>> {
    let output = git(dir).args(args).output();
    checked(output, describe).map(|o| o.stdout)
}

fn checked(output: std::io::Result<Output>, describe: &str) -> Result<Output> {
    let output = output.map_err(|e| {
        fail(
            ExitCode::Git,
            format!("cannot run git to {describe}: {e}; install or fix git"),
        )
    })?;
    if !output.status.success() {
        return Err(fail(
            ExitCode::Git,
            format!(
                "git failed to {describe}: {}; the repository was left unchanged",
                stderr_lines(&output.stderr)
            ),
        ));
    }
    Ok(output)
}

/// Up to three non-empty lines of git's stderr, on one line.
fn stderr_lines(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(3)
        .collect();
    if lines.is_empty() {
        "no message".to_owned()
    } else {
        lines.join(" / ")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_owned()
}

/// Refuse (exit 2, nothing changed) a work tree with uncommitted changes to
/// tracked files, or a merge, rebase, cherry-pick or revert in progress.
pub fn refuse_unready(dir: &Path) -> Result<()> {
    let shown = dir.display();
    for (state, what, how) in [
        (
            "MERGE_HEAD",
            "a merge",
            "git merge --continue` or `git merge --abort",
        ),
        (
            "rebase-merge",
            "a rebase",
            "git rebase --continue` or `git rebase --abort",
        ),
        (
            "rebase-apply",
            "a rebase or am",
            "git rebase --continue` or `git rebase --abort",
        ),
        (
            "CHERRY_PICK_HEAD",
            "a cherry-pick",
            "git cherry-pick --continue` or `git cherry-pick --abort",
        ),
        (
            "REVERT_HEAD",
            "a revert",
            "git revert --continue` or `git revert --abort",
        ),
    ] {
        let path = git_output(dir, &["rev-parse", "--git-path", state], "read git's state")?;
        let path = PathBuf::from(text(&path));
        if dir.join(path).exists() {
            return Err(fail(
                ExitCode::Usage,
                format!(
                    "{shown} has {what} in progress; finish it (`{how}`), then run spawn-elite update again; nothing was changed"
                ),
            ));
        }
    }
    let status = git_output(
        dir,
        &["status", "--porcelain", "--untracked-files=no"],
        "read the work tree's status",
    )?;
    let status = String::from_utf8_lossy(&status);
    let dirty: Vec<&str> = status.lines().map(|l| l.get(3..).unwrap_or(l)).collect();
    if let Some(first) = dirty.first() {
        return Err(fail(
            ExitCode::Usage,
            format!(
                "{shown} has uncommitted changes ({} file{}, e.g. {first}); commit or stash them, then run spawn-elite update again; nothing was changed",
                dirty.len(),
                if dirty.len() == 1 { "" } else { "s" }
            ),
        ));
    }
    Ok(())
}

/// The contents of the blobs `oids`, in order, read by one `git cat-file`.
pub fn cat_blobs(dir: &Path, oids: &[&str]) -> Result<Vec<Vec<u8>>> {
    let failed = |e: std::io::Error| {
        fail(
            ExitCode::Git,
            format!("cannot run git to read the pristine files: {e}; install or fix git"),
        )
    };
    let mut child = git(dir)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(failed)?;
    let input: String = oids.iter().map(|o| format!("{o}\n")).collect();
    let mut stdin = child.stdin.take();
    // Written from a thread: git answers while it reads, and a full pipe
    // on either side must not stop the other.
    let writer = std::thread::spawn(move || {
        if let Some(stdin) = stdin.as_mut() {
            let _ = stdin.write_all(input.as_bytes());
        }
        drop(stdin);
    });
    let mut out = Vec::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_end(&mut out).map_err(failed)?;
    }
    let _ = writer.join();
    let status = child.wait().map_err(failed)?;
    let bad = || {
        fail(
            ExitCode::Git,
            "git cat-file gave an unexpected answer while reading the pristine files; check the repository with `git fsck`",
        )
    };
    if !status.success() {
        return Err(bad());
    }
    let mut blobs = Vec::with_capacity(oids.len());
    let mut at = 0;
    for _ in oids {
        let end = out[at..].iter().position(|&b| b == b'\n').ok_or_else(bad)? + at;
        let header = String::from_utf8_lossy(&out[at..end]).into_owned();
        let size: usize = header
            .rsplit(' ')
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        let start = end + 1;
        let stop = start + size;
        if !header.contains(" blob ") || out.get(stop) != Some(&b'\n') {
            return Err(bad());
        }
        blobs.push(out[start..stop].to_vec());
        at = stop + 1;
    }
    Ok(blobs)
}

/// `SOURCE_DATE_EPOCH` fixes commit dates too, as for a spawn.
fn dated(cmd: &mut Command) -> &mut Command {
    if let Some(secs) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
    {
        let stamp = format!("@{secs} +0000");
        cmd.env("GIT_AUTHOR_DATE", &stamp)
            .env("GIT_COMMITTER_DATE", &stamp);
    }
    cmd
}

/// "acme 1.0.0" for messages.
pub fn versions(plan: &Plan) -> (String, String) {
    let o = &plan.old_templates;
    let n = &plan.new_templates;
    (
        format!("{} {}", o.name, o.version),
        format!("{} {}", n.name, n.version),
    )
}

/// The prefix of an update's scratch directories, inside the git directory.
pub const SCRATCH_PREFIX: &str = "spawn-elite-update-";

/// The repository's git directory, absolute.
pub fn git_dir(dir: &Path) -> Result<PathBuf> {
    Ok(PathBuf::from(text(&git_output(
        dir,
        &["rev-parse", "--absolute-git-dir"],
        "find the git directory",
    )?)))
}

/// A scratch directory inside the git directory (`.git/spawn-elite-update-XXXX`):
/// never part of the work tree, on the repository's own filesystem, and
/// found again by [`remove_stale_scratch`] if a kill left it behind.
fn scratch(git_dir: &Path) -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(SCRATCH_PREFIX)
        .tempdir_in(git_dir)
}

/// Remove the scratch directories a killed update left in the git
/// directory. Run at the start of every update that changes something; two
/// updates of one repository at the same time are not supported (git's own
/// merge would refuse the second anyway).
pub fn remove_stale_scratch(dir: &Path) -> Result<()> {
    super::remove_scratch_dirs(&git_dir(dir)?, SCRATCH_PREFIX)
}

/// Build the new pristine commit, a child of `base`, and return its id. The
/// files go through a scratch directory (in the git directory) and a
/// temporary index; the user's index, work tree and refs are not touched
/// (only new objects are written).
pub fn pristine_commit(dir: &Path, plan: &Plan, base: &str) -> Result<String> {
    let io = |e: std::io::Error| {
        fail(
            ExitCode::Io,
            format!(
                "cannot write the pristine files to a scratch directory in the git directory: {e}; free some space or check its permissions"
            ),
        )
    };
    let git_dir = git_dir(dir)?;
    let scratch = scratch(&git_dir).map_err(io)?;
    let tree_dir = scratch.path().join("tree");
    std::fs::create_dir(&tree_dir).map_err(io)?;
    for file in &plan.files {
        stage::write_file(&tree_dir, file)?;
    }
    let receipt = tree_dir.join(RECEIPT_PATH);
    if let Some(parent) = receipt.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(&receipt, plan.receipt_bytes()).map_err(io)?;
    let index = scratch.path().join("index");
    let plumbing = |args: &[&str], describe: &str| -> Result<Vec<u8>> {
        let mut cmd = git(&tree_dir);
        cmd.env("GIT_DIR", &git_dir)
            .env("GIT_WORK_TREE", &tree_dir)
            .env("GIT_INDEX_FILE", &index)
            .args(["-c", "core.autocrlf=false", "-c", "core.filemode=true"])
            .args(fallback_identity_args(dir))
            .args(args);
        checked(dated(&mut cmd).output(), describe).map(|o| o.stdout)
    };
    plumbing(
        &["add", "--all", "--force", "--", "."],
        "record the pristine files",
    )?;
    let tree = text(&plumbing(&["write-tree"], "write the pristine tree")?);
    let (from, to) = versions(plan);
    let message = format!(
        "chore: pristine scaffold from template set {to}\n\nThe files template set {to} renders for this repository, as a child of\nthe pristine scaffold of {from}; spawn-elite update merges it.\n\n{TRAILER}: {}\n",
        plan.receipt.merkle_root
    );
    let commit = plumbing(
        &["commit-tree", &tree, "-p", base, "-m", &message],
        "commit the pristine scaffold",
    )?;
    Ok(text(&commit))
}

/// How the merge ended.
#[derive(Debug)]
pub enum Merged {
    /// The merge commit.
    Clean(String),
    /// The paths git left unmerged (with its markers) for the user.
    Conflicts(Vec<String>),
}

/// `git merge --no-ff` of the pristine commit into the current branch.
///
/// git runs in its own process group: a Ctrl-C at the terminal reaches
/// spawn-elite (which waits) but not git, so git is never stopped between
/// writing the work tree and committing; if spawn-elite itself is killed,
/// git still finishes. Either way the branch ends untouched or merged.
pub fn merge(dir: &Path, plan: &Plan, pristine: &str) -> Result<Merged> {
    let (from, to) = versions(plan);
    let message = format!(
        "chore: update scaffold from template set {from} to {to}\n\nMerged by spawn-elite update; the second parent is the pristine scaffold\nof {to}.\n"
    );
    // Not pipes: if spawn-elite is killed, git must not die of SIGPIPE
    // while it writes what it did; its messages go to a file instead.
    let log = tempfile::tempfile().map_err(|e| {
        fail(
            ExitCode::Io,
            format!(
                "cannot create a temporary file for git's messages: {e}; free some space in $TMPDIR"
            ),
        )
    })?;
    let mut log_reader = log.try_clone()?;
    let mut cmd = git(dir);
    cmd.stdout(Stdio::null())
        .stderr(log)
        .args(fallback_identity_args(dir))
        .args([
            "merge",
            "--no-ff",
            "--no-edit",
            "--no-verify",
            "-m",
            &message,
            pristine,
        ])
        .process_group(0);
    let status = dated(&mut cmd).status().map_err(|e| {
        fail(
            ExitCode::Git,
            format!("cannot run git to merge: {e}; install or fix git"),
        )
    })?;
    if status.success() {
        let head = text(&git_output(
            dir,
            &["rev-parse", "HEAD"],
            "read the merge commit",
        )?);
        return Ok(Merged::Clean(head));
    }
    if git_ok(dir, &["rev-parse", "--verify", "--quiet", "MERGE_HEAD"]) {
        let unmerged = git_output(
            dir,
            &["diff", "--name-only", "-z", "--diff-filter=U"],
            "list the conflicts",
        )?;
        let mut paths: Vec<String> = unmerged
            .split(|&b| b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        paths.sort();
        paths.dedup();
        return Ok(Merged::Conflicts(paths));
    }
    Err(fail(
        ExitCode::Git,
        format!(
            "git merge failed: {}; the branch was left unchanged (the pristine scaffold is commit {pristine})",
            stderr_lines(&{
                let mut text = Vec::new();
                let _ = std::io::Seek::rewind(&mut log_reader);
                let _ = log_reader.read_to_end(&mut text);
                text
            })
        ),
    ))
}

/// Whether git merges `base`, `ours` and `theirs` without conflict (for
/// `--dry-run`), by `git merge-file` on scratch copies.
pub fn merges_cleanly(dir: &Path, base: &[u8], ours: &[u8], theirs: &[u8]) -> Result<bool> {
    let scratch = scratch(&git_dir(dir)?)?;
    let mut paths = Vec::new();
    for (name, bytes) in [("ours", ours), ("base", base), ("theirs", theirs)] {
        let path = scratch.path().join(name);
        std::fs::write(&path, bytes)?;
        paths.push(path);
    }
    let status = git(dir)
        .arg("merge-file")
        .arg("-p")
        .arg("--quiet")
        .args(&paths)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| {
            fail(
                ExitCode::Git,
                format!("cannot run git merge-file: {e}; install or fix git"),
            )
        })?;
    Ok(status.success())
}
