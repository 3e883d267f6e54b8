//! The one git operation a spawn needs: a fresh repository with a single
//! commit holding every generated file.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use anyhow::Result;

use crate::clock::Clock;
use crate::ops::git::{self, Git};
use crate::receipt::path::{self, Scope};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitOutcome {
    Committed {
        commit: String,
    },
    /// git is not installed; the spawn goes on without a repository.
    NotInstalled,
}

/// `git add --all`, writing the blobs into one pack instead of a loose
/// object each: a file over `core.bigFileThreshold` (here every file of two
/// bytes or more) is streamed into the pack of the add, unless git
/// converts it on the way in (gitattributes `text`, `eol` or `filter`,
/// `core.autocrlf`), which stays a loose object as before. The same
/// objects by the same names, but two or three files to write and flush
/// instead of a file and a directory per blob: a spawn on disk took
/// 40.8 ms against 50.0 ms with loose objects, in one hyperfine run of
/// both. The pack is flushed with the rest of the repository behind the
/// commit, so git does not flush it itself (`core.fsync` without the pack;
/// gits before 2.36 ignore the key and flush it anyway).
pub(crate) const ADD: [&str; 6] = [
    "-c",
    "core.bigFileThreshold=1",
    "-c",
    "core.fsync=-pack,-pack-metadata",
    "add",
    "--all",
];

fn git(dir: &Path) -> Git<'_> {
    Git::new(dir, git::SPAWN)
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
    if path::problem(branch, Scope::Plain).is_some() {
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
        .command()
        .args(["-c", "init.defaultBranch=main", "init", "--quiet"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let child = match started {
        Ok(child) => Some(child),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(git(dir).cannot_run(e, "initialise the repository")),
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
        kind: &str,
        elite: bool,
        clock: &Clock,
        after_add: &mut dyn FnMut() -> Result<()>,
    ) -> Result<GitOutcome> {
        let Some(child) = self.child.take() else {
            return Ok(GitOutcome::NotInstalled);
        };
        git(&self.dir).checked(child.wait_with_output(), "initialise the repository")?;
        add_and_commit(&self.dir, kind, elite, clock, after_add)
    }
}

fn add_and_commit(
    dir: &Path,
    kind: &str,
    elite: bool,
    clock: &Clock,
    after_add: &mut dyn FnMut() -> Result<()>,
) -> Result<GitOutcome> {
    let git = git(dir);
    // init.defaultBranch covers git >= 2.28; older ones need the branch named.
    let head = std::fs::read_to_string(dir.join(".git/HEAD")).unwrap_or_default();
    if head.trim() != "ref: refs/heads/main" {
        git.output(
            &["symbolic-ref", "HEAD", "refs/heads/main"],
            "name the branch main",
        )?;
    }
    git.output(&ADD, "add the generated files")?;
    after_add()?;

    let message = git::initial_message(kind, elite);
    let commit = |identity: &[String]| {
        let mut cmd = git.command();
        // No automatic gc or maintenance for a repository of one commit:
        // git would start it detached after the commit, for nothing.
        // useConfigOnly: an identity git would guess from the user and host
        // names is none, so the user's config decides, as it always did.
        cmd.args(["-c", "gc.auto=0", "-c", "maintenance.auto=false"])
            .args(["-c", "user.useConfigOnly=true"])
            .args(identity)
            .args(["commit", "--quiet", "--no-verify", "-m", &message]);
        git.checked(git::dated(&mut cmd, clock).output(), "commit")
    };
    // Only when the commit fails is the user's identity asked for (a
    // commit that succeeds had one), and the commit made again with
    // spawn-elite's own if they have none.
    if let Err(err) = commit(&[]) {
        let fallback = git.fallback_identity_args();
        if fallback.is_empty() {
            return Err(err);
        }
        commit(&fallback)?;
    }
    let commit = match head_commit(dir) {
        Some(id) => id,
        None => git::text(&git.output(&["rev-parse", "HEAD"], "read the new commit")?),
    };
    Ok(GitOutcome::Committed { commit })
}
