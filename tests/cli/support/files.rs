//! Small file, template-set and git helpers the update and registry
//! tests share.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Outcome, Sandbox, git_output};

/// A path as the `&str` an argument list takes.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Replace the first `from` in the file with `to`; `from` must be there.
pub fn replace_in(path: &Path, from: &str, to: &str) {
    let text = read(path);
    assert!(text.contains(from), "{from:?} not in {}", path.display());
    fs::write(path, text.replacen(from, to, 1)).expect("write");
}

pub fn append(path: &Path, text: &str) {
    let mut old = read(path);
    old.push_str(text);
    fs::write(path, old).expect("write");
}

/// `cp -a FROM TO`.
pub fn copy_dir(from: &Path, to: &Path) {
    let ok = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp")
        .success();
    assert!(ok, "cp -a {} {}", from.display(), to.display());
}

/// Change a set's manifest version from `from` to `to`.
pub fn set_version(set: &Path, from: &str, to: &str) {
    replace_in(
        &set.join("spawn-elite.toml"),
        &format!("version = \"{from}\""),
        &format!("version = \"{to}\""),
    );
}

impl Sandbox {
    /// The embedded set exported to `dir_name` in the sandbox and renamed
    /// `acme` (version 1.0.0): a set of the user's own.
    pub fn export_acme(&self, dir_name: &str) -> PathBuf {
        let dir = self.path().join(dir_name);
        let out = self.run(["templates", "export", s(&dir)]);
        assert!(out.success(), "{}", out.stderr);
        replace_in(
            &dir.join("spawn-elite.toml"),
            "name = \"spawn-elite\"",
            "name = \"acme\"",
        );
        dir
    }

    /// `git ARGS` in `dir` as the user, with the sandbox's identity and a
    /// fixed date; its stdout, trimmed. Fails the test if git fails.
    pub fn user_git(&self, dir: &Path, args: &[&str]) -> String {
        let mut cmd = std::process::Command::new("git");
        cmd.current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", self.git_config())
            .env("GIT_AUTHOR_DATE", "@1767323045 +0000")
            .env("GIT_COMMITTER_DATE", "@1767323045 +0000");
        git_output(cmd, args).trim().to_owned()
    }

    /// `spawn-elite update DIR ARGS`.
    pub fn update(&self, dir: &Path, args: &[&str]) -> Outcome {
        let mut all = vec!["update", s(dir)];
        all.extend(args);
        self.run(all)
    }
}
