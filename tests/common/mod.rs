//! Helpers shared by the integration tests: every test runs the real binary
//! with a private HOME, data directory and git configuration, so nothing on
//! the developer's machine leaks in and nothing of the tests leaks out.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use tempfile::TempDir;

/// 2026-01-02T03:04:05Z: fixed so snapshots and receipts are reproducible.
pub const EPOCH: &str = "1767323045";

pub struct Sandbox {
    pub dir: TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("create temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn home(&self) -> PathBuf {
        self.path().join("home")
    }

    pub fn repos(&self) -> PathBuf {
        self.path().join("repos")
    }

    /// The binary, isolated: HOME, XDG_DATA_HOME and git's global config point into the sandbox.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::cargo_bin("spawn-elite").expect("binary built");
        let home = self.home();
        std::fs::create_dir_all(&home).expect("create home");
        cmd.current_dir(self.path())
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env_remove("VAULTMESH_REPOS")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", self.git_config())
            .env("SOURCE_DATE_EPOCH", EPOCH);
        cmd
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

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args(args)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
