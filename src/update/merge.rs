//! The git side of an update, all by running git: the checks before it, the
//! pristine commit built with plumbing (a temporary index, never the user's
//! index or work tree), and the merge, which is `git merge` itself.

use std::io::{Read as _, Seek as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Result;

use super::plan::Plan;
use crate::clock::Clock;
use crate::error::{ExitCode, fail};
use crate::fsutil;
use crate::ops::git::{self, Git, text};

/// git in the repository being updated.
pub fn git(dir: &Path) -> Git<'_> {
    Git::new(dir, git::UPDATE)
}

/// Refuse (exit 2, nothing changed) a work tree with uncommitted changes to
/// tracked files, or a merge, rebase, cherry-pick or revert in progress.
pub fn refuse_unready(dir: &Path) -> Result<()> {
    let shown = dir.display();
    const STATES: [(&str, &str, &str); 5] = [
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
    ];
    // One `git rev-parse` for every state file (a git process costs more
    // than the rest of these checks together).
    let mut args = vec!["rev-parse"];
    for (state, _, _) in STATES {
        args.extend(["--git-path", state]);
    }
    let paths = git(dir).output(&args, "read git's state")?;
    let paths = String::from_utf8_lossy(&paths);
    for ((state, what, how), path) in STATES.iter().zip(paths.lines()) {
        if dir.join(path.trim()).exists() {
            if *state == "MERGE_HEAD" && is_update_merge(dir) {
                return Err(fail(
                    ExitCode::Usage,
                    format!(
                        "{shown} has an update with conflicts in progress; resolve them (`git status` lists them), `git add` each, then run `spawn-elite update --continue` (or `git merge --abort` to undo it); nothing was changed"
                    ),
                ));
            }
            return Err(fail(
                ExitCode::Usage,
                format!(
                    "{shown} has {what} in progress; finish it (`{how}`), then run spawn-elite update again; nothing was changed"
                ),
            ));
        }
    }
    let status = git(dir).output(
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

/// Whether the merge in progress is of a pristine commit: an update's.
fn is_update_merge(dir: &Path) -> bool {
    git(dir)
        .output(
            &["log", "-1", "--format=%B", "MERGE_HEAD"],
            "read MERGE_HEAD",
        )
        .is_ok_and(|m| {
            String::from_utf8_lossy(&m).contains(&format!("{}: ", git::PRISTINE_TRAILER))
        })
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
    Ok(PathBuf::from(text(&git(dir).output(
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
pub fn pristine_commit(dir: &Path, plan: &Plan, base: &str, clock: &Clock) -> Result<String> {
    let io = |e: std::io::Error| {
        fail(
            ExitCode::Io,
            format!(
                "cannot write the pristine files to a scratch directory in the git directory: {}; the repository was left unchanged: free some space or check its permissions, then run spawn-elite update again",
                fsutil::describe_io(&e)
            ),
        )
    };
    let git_dir = git_dir(dir)?;
    let scratch = scratch(&git_dir).map_err(io)?;
    let tree_dir = scratch.path().join("tree");
    std::fs::create_dir(&tree_dir).map_err(io)?;
    let receipt = plan.receipt_file();
    for file in plan.files.iter().chain([&receipt]).chain(&plan.metadata) {
        fsutil::write_planned(&tree_dir, file).map_err(io)?;
    }
    let index = scratch.path().join("index");
    let identity = git(dir).fallback_identity_args();
    let plumbing = |args: &[&str], describe: &str| -> Result<Vec<u8>> {
        let git = git(&tree_dir);
        let mut cmd = git.command();
        cmd.env("GIT_DIR", &git_dir)
            .env("GIT_WORK_TREE", &tree_dir)
            .env("GIT_INDEX_FILE", &index)
            .args(["-c", "core.autocrlf=false", "-c", "core.filemode=true"])
            .args(&identity)
            .args(args);
        git.checked(git::dated(&mut cmd, clock).output(), describe)
            .map(|o| o.stdout)
    };
    plumbing(
        &["add", "--all", "--force", "--", "."],
        "record the pristine files",
    )?;
    let tree = text(&plumbing(&["write-tree"], "write the pristine tree")?);
    let (from, to) = versions(plan);
    let message = git::pristine_message(&from, &to, &plan.receipt.merkle_root);
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
pub fn merge(dir: &Path, plan: &Plan, pristine: &str, clock: &Clock) -> Result<Merged> {
    let (from, to) = versions(plan);
    let message = git::merge_message(&from, &to);
    let git = git(dir);
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
    let mut cmd = git.command();
    cmd.stdout(Stdio::null())
        .stderr(log)
        .args(git.fallback_identity_args())
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
    let status = git::dated(&mut cmd, clock)
        .status()
        .map_err(|e| git.cannot_run(e, "merge"))?;
    if status.success() {
        let head = text(&git.output(&["rev-parse", "HEAD"], "read the merge commit")?);
        return Ok(Merged::Clean(head));
    }
    if git.ok(&["rev-parse", "--verify", "--quiet", "MERGE_HEAD"]) {
        let unmerged = git.output(
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
            git::stderr_lines(&{
                let mut text = Vec::new();
                let _ = log_reader.rewind();
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
        .command()
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
