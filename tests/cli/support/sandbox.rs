//! The sandbox every test runs the real binary in: a private HOME, data
//! directory and git configuration, so nothing on the developer's machine
//! leaks in and nothing of the tests leaks out; a fixed date; callback
//! timeouts sized for tests. Plus the one way to check a failure.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tempfile::TempDir;

/// 2026-01-02T03:04:05Z: fixed so snapshots and receipts are reproducible.
pub const EPOCH: &str = "1767323045";

pub struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let sb = Sandbox {
            dir: tempfile::tempdir().expect("create temp dir"),
        };
        std::fs::create_dir_all(sb.home()).expect("create home");
        std::fs::create_dir_all(sb.trust()).expect("create trust dir");
        sb
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn home(&self) -> PathBuf {
        self.path().join("home")
    }

    /// The default `--out-dir` of `stdout` and `spawn`.
    pub fn repos(&self) -> PathBuf {
        self.path().join("repos")
    }

    /// XDG_DATA_HOME: the ledger, the callback outbox and dropped receipts.
    pub fn data(&self) -> PathBuf {
        self.home().join(".local/share")
    }

    pub fn outbox(&self) -> PathBuf {
        self.data().join("spawn-elite/outbox")
    }

    /// The receiver's `--trust` directory of public keys.
    pub fn trust(&self) -> PathBuf {
        self.path().join("trust")
    }

    /// A global git config with an identity, like most users have.
    pub fn git_config(&self) -> PathBuf {
        let path = self.path().join("gitconfig");
        if !path.exists() {
            std::fs::write(
                &path,
                "[user]\n\tname = Test User\n\temail = test@example.com\n",
            )
            .expect("write gitconfig");
        }
        path
    }

    /// The binary, isolated: HOME, XDG_DATA_HOME and git's global config
    /// point into the sandbox, SOURCE_DATE_EPOCH is `EPOCH`, and callbacks
    /// time out and back off in milliseconds. For a process that runs in
    /// the background; to run one to its end, use `cmd` or `run`.
    pub fn process(&self) -> std::process::Command {
        self.process_of(Path::new(env!("CARGO_BIN_EXE_spawn-elite")))
    }

    /// [`Sandbox::process`] of another build of spawn-elite (a baseline).
    pub fn process_of(&self, bin: &Path) -> std::process::Command {
        let mut cmd = std::process::Command::new(bin);
        cmd.current_dir(self.path())
            .env("HOME", self.home())
            .env("XDG_DATA_HOME", self.data())
            .env_remove("VAULTMESH_REPOS")
            .env_remove("SSL_CERT_FILE")
            .env_remove("SPAWN_ELITE_TSA")
            .env("SPAWN_ELITE_TSA_TIMEOUT", "3s")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", self.git_config())
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .env("SPAWN_ELITE_CALLBACK_CONNECT_TIMEOUT", "2s")
            .env("SPAWN_ELITE_CALLBACK_TIMEOUT", "5s")
            .env("SPAWN_ELITE_CALLBACK_BACKOFF", "10ms")
            .env("SPAWN_ELITE_CALLBACK_MAX_BACKOFF", "200ms")
            .stdin(Stdio::null());
        cmd
    }

    /// The isolated binary (see `process`), with assert_cmd's assertions.
    pub fn cmd(&self) -> assert_cmd::Command {
        assert_cmd::Command::from_std(self.process())
    }

    /// Run the isolated binary with `args` to its end.
    pub fn run<I, S>(&self, args: I) -> Outcome
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Outcome::of(self.cmd().args(args))
    }

    /// Run with `args`, and assert it fails as errors do: exit `code`, and
    /// stderr is one line, `error: ...`, containing `needle`.
    pub fn assert_error<I, S>(&self, args: I, code: i32, needle: &str) -> Outcome
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let outcome = self.run(args);
        outcome.assert_error(code, needle);
        outcome
    }

    /// Run with `--out-dir repos/`, expect success, return stdout.
    pub fn stdout(&self, args: &[&str]) -> String {
        let mut cmd = self.cmd();
        cmd.args(args).arg("--out-dir").arg(self.repos());
        let out = cmd.assert().success().get_output().stdout.clone();
        String::from_utf8(out).expect("stdout is UTF-8")
    }

    /// Spawn into `repos/` and return the repository path.
    pub fn spawn(&self, args: &[&str]) -> PathBuf {
        let mut cmd = self.cmd();
        cmd.args(args)
            .arg("--out-dir")
            .arg(self.repos())
            .arg("--quiet");
        cmd.assert().success();
        self.repos().join(args[0])
    }
}

/// How a run of the binary ended: its exit code (-1 if a signal ended it)
/// and its output as text.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Run `cmd` to its end.
    pub fn of(cmd: &mut assert_cmd::Command) -> Outcome {
        Outcome::from(cmd.output().expect("run spawn-elite"))
    }

    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// A failure as users see it: exit `code`, no panic, and one line of
    /// stderr, `error: ...`, containing `needle`. `Sandbox::assert_error`
    /// runs and checks in one step.
    pub fn assert_error(&self, code: i32, needle: &str) {
        assert_eq!(self.code, code, "stderr: {}", self.stderr);
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        assert_eq!(self.stderr.lines().count(), 1, "{}", self.stderr);
        assert!(self.stderr.starts_with("error: "), "{}", self.stderr);
        assert!(
            self.stderr.contains(needle),
            "wanted {needle:?} in {}",
            self.stderr
        );
    }
}

impl From<std::process::Output> for Outcome {
    fn from(out: std::process::Output) -> Outcome {
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Every entry below `dir` (relative, sorted), `.git` excluded.
pub fn tree(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git")
        .map(|e| {
            let e = e.expect("walk");
            e.path()
                .strip_prefix(dir)
                .expect("below dir")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    out.sort();
    out
}

/// Run git in `dir` with no user or system configuration; expect success.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let mut cmd = std::process::Command::new("git");
    cmd.current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null");
    git_output(cmd, args)
}

/// Run `cmd` (git, set up by the caller) with `args`; its stdout. Fails the
/// test, with git's stderr, if git fails.
pub fn git_output(mut cmd: std::process::Command, args: &[&str]) -> String {
    let out = cmd.args(args).output().expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
