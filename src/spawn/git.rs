//! The one git operation a spawn needs: a fresh repository with a single
//! commit holding every generated file.

use std::ffi::OsStr;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use anyhow::Result;

use super::config::SpawnConfig;
use crate::error::{ExitCode, fail};

/// The identity of the commit when the user has none configured; their
/// config is never changed.
const FALLBACK_NAME: &str = "spawn-elite";
const FALLBACK_EMAIL: &str = "spawn-elite@localhost";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitOutcome {
    Committed {
        commit: String,
    },
    /// git is not installed; the spawn goes on without a repository.
    NotInstalled,
}

/// A git command isolated from the environment of whatever launched us: when
/// spawn-elite runs inside another repository's hook, `GIT_DIR` and friends
/// would otherwise point the commands at that repository. Spawns and updates
/// both start their git processes here.
pub(crate) fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_OBJECT_DIRECTORY")
        .env("GIT_TERMINAL_PROMPT", "0");
    cmd
}

fn run<I, S>(
    dir: &Path,
    args: I,
    describe: &str,
    configure: impl FnOnce(&mut Command),
) -> Result<Output>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = git(dir);
    cmd.args(args);
    configure(&mut cmd);
    checked(cmd.output(), describe)
}

fn cannot_run(e: std::io::Error, describe: &str) -> anyhow::Error {
    fail(
        ExitCode::Git,
        format!("cannot run git to {describe}: {e}; fix git or pass --no-git"),
    )
}

/// A finished git process as its output, or as an error naming the step
/// that failed.
fn checked(output: std::io::Result<Output>, describe: &str) -> Result<Output> {
    let output = output.map_err(|e| cannot_run(e, describe))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        // Up to three lines: git often says what failed on one line and why
        // on the next (e.g. "gpg failed to sign the data" / "failed to write commit object").
        let lines: Vec<&str> = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(3)
            .collect();
        let reason = if lines.is_empty() {
            "no message".to_owned()
        } else {
            lines.join(" / ")
        };
        return Err(fail(
            ExitCode::Git,
            format!(
                "git failed to {describe}: {}; nothing was created, fix git or pass --no-git",
                reason.trim()
            ),
        ));
    }
    Ok(output)
}

/// Whether the user's config names both an author and an email, asked in
/// one process. Asked only after a commit failed: a commit that succeeds
/// had an identity.
fn has_identity(dir: &Path) -> bool {
    let Ok(out) = git(dir)
        .args(["config", "--get-regexp", r"^user\.(name|email)$"])
        .output()
    else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let set = |key: &str| {
        text.lines().any(|l| {
            l.split_once(' ')
                .is_some_and(|(k, v)| k == key && !v.trim().is_empty())
        })
    };
    set("user.name") && set("user.email")
}

/// `-c user.name=… -c user.email=…` naming spawn-elite, for a commit in
/// `dir` when the user's config names no identity (their config is never
/// changed); empty when it does. Spawns and updates both use it.
pub(crate) fn fallback_identity_args(dir: &Path) -> Vec<String> {
    if has_identity(dir) {
        return Vec::new();
    }
    vec![
        "-c".into(),
        format!("user.name={FALLBACK_NAME}"),
        "-c".into(),
        format!("user.email={FALLBACK_EMAIL}"),
    ]
}

/// The commit `HEAD` names, read from the files of the repository that was
/// just made (`HEAD`, then the loose ref it points to) instead of asking a
/// git process; `None` when they do not hold one plainly, as with the
/// reftable format.
fn head_commit(dir: &Path) -> Option<String> {
    let git_dir = dir.join(".git");
    let head = std::fs::read_to_string(git_dir.join("HEAD")).ok()?;
    let name = head.trim_end().strip_prefix("ref: ")?;
    let branch = name.strip_prefix("refs/heads/")?;
    if branch.is_empty() || branch.split('/').any(|c| c.is_empty() || c == "..") {
        return None;
    }
    let id = std::fs::read_to_string(git_dir.join(name)).ok()?;
    let id = id.trim_end();
    let hex = id
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (hex && matches!(id.len(), 40 | 64)).then(|| id.to_owned())
}

/// A `git init` running in the background while the templates are
/// rendered and the files written (it only makes `.git`, so it needs none
/// of them). Dropped before [`Init::commit`], it kills and reaps git, so
/// that nothing writes in the staging directory once the spawn has given up
/// on it.
pub struct Init {
    dir: PathBuf,
    /// `None` when git is not installed.
    child: Option<Child>,
}

/// Start `git init` on branch main in `dir`: the first of the spawn's three
/// git processes.
pub fn start_init(dir: &Path) -> Result<Init> {
    let started = git(dir)
        .args(["-c", "init.defaultBranch=main", "init", "--quiet"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let child = match started {
        Ok(child) => Some(child),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(cannot_run(e, "initialise the repository")),
    };
    Ok(Init {
        dir: dir.to_path_buf(),
        child,
    })
}

impl Drop for Init {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Init {
    /// Wait for `git init`, then add everything and commit: three git
    /// processes in all. Only when the commit fails is the user's identity
    /// asked for, and the commit made again with spawn-elite's own if they
    /// have none. `after_add` runs between the add and the commit (the
    /// stage starts flushing what git has written so far, while the commit
    /// runs).
    pub fn commit(
        mut self,
        config: &SpawnConfig,
        after_add: &mut dyn FnMut() -> Result<()>,
    ) -> Result<GitOutcome> {
        let Some(child) = self.child.take() else {
            return Ok(GitOutcome::NotInstalled);
        };
        checked(child.wait_with_output(), "initialise the repository")?;
        add_and_commit(&self.dir, config, after_add)
    }
}

fn add_and_commit(
    dir: &Path,
    config: &SpawnConfig,
    after_add: &mut dyn FnMut() -> Result<()>,
) -> Result<GitOutcome> {
    // init.defaultBranch covers git >= 2.28; older ones need the branch named.
    let head = std::fs::read_to_string(dir.join(".git/HEAD")).unwrap_or_default();
    if head.trim() != "ref: refs/heads/main" {
        run(
            dir,
            ["symbolic-ref", "HEAD", "refs/heads/main"],
            "name the branch main",
            |_| {},
        )?;
    }
    run(dir, ["add", "--all"], "add the generated files", |_| {})?;
    after_add()?;

    let message = format!(
        "feat: initial repository scaffold\n\nType: {}\nGenerated by spawn-elite {}{}.\n",
        config.kind,
        env!("CARGO_PKG_VERSION"),
        if config.elite {
            " with elite files"
        } else {
            ""
        },
    );
    let stamp =
        std::env::var_os("SOURCE_DATE_EPOCH").map(|_| format!("@{} +0000", config.now.as_second()));
    let commit = |identity: &[String]| {
        let mut cmd = git(dir);
        // No automatic gc or maintenance for a repository of one commit:
        // git would start it detached after the commit, for nothing.
        // useConfigOnly: an identity git would guess from the user and host
        // names is none, so the user's config decides, as it always did.
        cmd.args(["-c", "gc.auto=0", "-c", "maintenance.auto=false"])
            .args(["-c", "user.useConfigOnly=true"])
            .args(identity)
            .args(["commit", "--quiet", "--no-verify", "-m", &message]);
        if let Some(stamp) = &stamp {
            cmd.env("GIT_AUTHOR_DATE", stamp)
                .env("GIT_COMMITTER_DATE", stamp);
        }
        checked(cmd.output(), "commit")
    };
    if let Err(err) = commit(&[]) {
        let fallback = fallback_identity_args(dir);
        if fallback.is_empty() {
            return Err(err);
        }
        commit(&fallback)?;
    }
    let commit = match head_commit(dir) {
        Some(id) => id,
        None => {
            let head = run(dir, ["rev-parse", "HEAD"], "read the new commit", |_| {})?;
            String::from_utf8_lossy(&head.stdout).trim().to_owned()
        }
    };
    Ok(GitOutcome::Committed { commit })
}
