//! Issue 14, the spawn and receipt half: each module reproduces one way a
//! spawn, `receipt` or `verify` broke its promise, as a user would meet it.
//! docs/RELIABILITY.md names the test that proves each guarantee.
//!
//! Spawns are held mid-way by a stand-in `git` (see [`blocking_git`]) so that
//! races and signals happen at a known point, not by timing luck.

mod cleanup;
mod mistyped;
mod receipt_sizes;
mod set_values;
mod signals;
mod template_values;
mod torn_reads;

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::support::Sandbox;

/// A directory holding a stand-in `git` that, when a spawn runs
/// `git commit` with `HOLD_STARTED` and `HOLD_GATE` set, writes its pid to
/// `HOLD_STARTED` and waits (at most 20 s) for `HOLD_GATE` to exist before
/// running the real git. Without those variables it is the real git.
pub fn blocking_git(sb: &Sandbox) -> PathBuf {
    let bin = sb.path().join("holdbin");
    std::fs::create_dir_all(&bin).unwrap();
    let out = Command::new("sh")
        .args(["-c", "command -v git"])
        .output()
        .unwrap();
    let real = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(!real.is_empty(), "these tests need git");
    let script = format!(
        r#"#!/bin/sh
if [ -n "$HOLD_STARTED" ]; then
  for a in "$@"; do
    if [ "$a" = commit ]; then
      echo $$ > "$HOLD_STARTED.tmp" && mv "$HOLD_STARTED.tmp" "$HOLD_STARTED"
      i=0
      while [ ! -e "$HOLD_GATE" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done
    fi
  done
fi
exec {real} "$@"
"#
    );
    let path = bin.join("git");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// `NAME [EXTRA...] --quiet --out-dir BASE`: a spawn of `name` into `base`.
pub fn quiet_into<'a>(name: &'a str, base: &'a Path, extra: &[&'a str]) -> Vec<&'a OsStr> {
    let mut args = vec![OsStr::new(name)];
    args.extend(extra.iter().copied().map(OsStr::new));
    args.extend([
        OsStr::new("--quiet"),
        OsStr::new("--out-dir"),
        base.as_os_str(),
    ]);
    args
}

/// A directory `tree` in the sandbox holding `files` (name, content).
pub fn tree_with(sb: &Sandbox, files: &[(&str, &[u8])]) -> PathBuf {
    let tree = sb.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    for (name, content) in files {
        std::fs::write(tree.join(name), content).unwrap();
    }
    tree
}

/// `verify TREE --receipt RECEIPT [EXTRA...]`.
pub fn verify_args<'a>(tree: &'a Path, receipt: &'a Path, extra: &[&'a str]) -> Vec<&'a OsStr> {
    let mut args = vec![
        OsStr::new("verify"),
        tree.as_os_str(),
        OsStr::new("--receipt"),
        receipt.as_os_str(),
    ];
    args.extend(extra.iter().copied().map(OsStr::new));
    args
}

/// Write a receipt of `tree` to `receipt.json` in the sandbox (expecting
/// success) and return its path.
pub fn receipt_of(sb: &Sandbox, tree: &Path) -> PathBuf {
    let receipt = sb.path().join("receipt.json");
    let made = sb.run([
        OsStr::new("receipt"),
        tree.as_os_str(),
        OsStr::new("-o"),
        receipt.as_os_str(),
    ]);
    assert!(made.success(), "{}", made.stderr);
    receipt
}

pub fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut paths = vec![dir.to_path_buf()];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).unwrap()
}

/// A spawn held in `git commit` until [`Held::release`]; killed and reaped
/// (with its stand-in git) if the test ends early.
pub struct Held {
    pub child: Option<Child>,
    started: PathBuf,
    gate: PathBuf,
}

impl Held {
    /// Start `spawn-elite b --quiet --out-dir BASE`, held in `git commit`.
    pub fn spawn_b(sb: &Sandbox, base: &Path) -> Held {
        Held::start(sb, "b", &quiet_into("b", base, &[]))
    }

    /// Start `spawn-elite ARGS` with the blocking git and wait (bounded)
    /// until it is inside `git commit`.
    pub fn start(sb: &Sandbox, tag: &str, args: &[&std::ffi::OsStr]) -> Held {
        let bin = blocking_git(sb);
        let started = sb.path().join(format!("{tag}.started"));
        let gate = sb.path().join(format!("{tag}.gate"));
        let child = sb
            .process()
            .args(args)
            .env("PATH", path_with(&bin))
            .env("HOLD_STARTED", &started)
            .env("HOLD_GATE", &gate)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let held = Held {
            child: Some(child),
            started,
            gate,
        };
        assert!(
            wait_for(|| held.started.exists(), Duration::from_secs(20)),
            "the spawn never reached git commit"
        );
        held
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or_default()
    }

    /// Let the stand-in git go on.
    pub fn release(&self) {
        std::fs::write(&self.gate, "").unwrap();
    }

    /// Release git and wait for the spawn to end.
    pub fn finish(mut self) -> std::process::Output {
        self.release();
        self.child.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.gate, "");
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

/// Poll `cond` every 20 ms for at most `limit`.
pub fn wait_for(mut cond: impl FnMut() -> bool, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}
