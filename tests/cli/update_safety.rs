//! Issue 19, items 1-8: `update` never touches what is not its own. Each
//! test reproduces one way an update lost a user's work, wrote outside the
//! repository, or said something other than what it did, as a user meets
//! it. docs/RELIABILITY.md names the test that proves each guarantee.
//!
//! The sets: v1 is the embedded set exported (renamed `acme`); v2 changes
//! `docs/README.md` and `main.py` and adds `MAINTAINERS`; v3 changes
//! `main.py` again; `v2-drop` is v2 without `docs/README.md`.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::files::{append, copy_dir, read, s, set_version};
use crate::support::{Outcome, Sandbox};

/// The sets v1, v2, v3 and v2-drop (see the module's doc).
struct Sets {
    v1: PathBuf,
    v2: PathBuf,
    v3: PathBuf,
    v2_drop: PathBuf,
}

fn sets(sb: &Sandbox) -> Sets {
    let v1 = sb.export_acme("set-v1");
    let v2 = sb.path().join("set-v2");
    copy_dir(&v1, &v2);
    set_version(&v2, "1.0.0", "2.0.0");
    append(&v2.join("base/docs/README.md.j2"), "\nv2 docs\n");
    append(&v2.join("service/main.py.j2"), "\n# v2\n");
    fs::write(v2.join("base/MAINTAINERS"), "* @acme/platform\n").expect("write");
    let v3 = sb.path().join("set-v3");
    copy_dir(&v2, &v3);
    set_version(&v3, "2.0.0", "3.0.0");
    append(&v3.join("service/main.py.j2"), "# v3\n");
    let v2_drop = sb.path().join("set-v2-drop");
    copy_dir(&v2, &v2_drop);
    set_version(&v2_drop, "2.0.0", "2.1.0");
    fs::remove_file(v2_drop.join("base/docs/README.md.j2")).expect("rm");
    Sets {
        v1,
        v2,
        v3,
        v2_drop,
    }
}

fn spawn_svc(sb: &Sandbox, set: &Path, extra: &[&str]) -> PathBuf {
    let mut args = vec!["svc", "--templates", s(set)];
    args.extend(extra);
    sb.spawn(&args)
}

/// The ledger's update lines.
fn update_lines(sb: &Sandbox) -> Vec<Value> {
    let path = sb.data().join("spawn-elite/ledger.jsonl");
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON line"))
        .filter(|l| l["event"] == "update")
        .collect()
}

/// Every file below `dir` and its bytes, for "nothing changed here".
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(dir).expect("below");
            (
                rel.to_string_lossy().into_owned(),
                fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    out.sort();
    out
}

// ------------------------------------------------- 1. no write through a symlink

/// A no-git repository whose `docs/` was moved elsewhere and replaced by a
/// symlink: neither a changed file nor a removed one is written or
/// removed through it. The file under it is a conflict that names the
/// symlink; everything outside the repository is as it was.
#[test]
fn a_no_git_update_never_writes_or_removes_through_a_symlinked_folder() {
    let sb = Sandbox::new();
    let sets = sets(&sb);
    for (set, what) in [(&sets.v2, "changes"), (&sets.v2_drop, "removes")] {
        let repo = sb.repos().join("svc");
        if repo.exists() {
            fs::remove_dir_all(&repo).expect("rm");
        }
        let repo = spawn_svc(&sb, &sets.v1, &["--no-git", "--no-ledger"]);
        let elsewhere = sb.path().join("elsewhere");
        if elsewhere.exists() {
            fs::remove_dir_all(&elsewhere).expect("rm");
        }
        fs::create_dir(&elsewhere).expect("mkdir");
        fs::rename(repo.join("docs"), elsewhere.join("docs")).expect("move docs");
        std::os::unix::fs::symlink(elsewhere.join("docs"), repo.join("docs")).expect("symlink");
        let before = snapshot(&elsewhere);

        let out = sb.update(&repo, &["--templates", s(set), "--no-ledger"]);
        assert_eq!(
            snapshot(&elsewhere),
            before,
            "the set {what} docs/README.md: {out:?}"
        );
        assert_eq!(
            out.code, 12,
            "a conflict, for the set that {what} it: {}{}",
            out.stdout, out.stderr
        );
        assert!(
            out.stdout.contains("docs/README.md") && out.stdout.contains("symlink"),
            "names the file and why: {}",
            out.stdout
        );
        // What is the repository's own was updated.
        assert!(read(&repo.join("main.py")).ends_with("# v2\n"));
    }
}

/// `.spawn-elite/` replaced by a symlink: the scratch directory and the
/// receipt would land outside, so the update is refused and nothing there
/// changes.
#[test]
fn a_no_git_update_refuses_a_symlinked_spawn_elite_folder() {
    let sb = Sandbox::new();
    let sets = sets(&sb);
    let repo = spawn_svc(&sb, &sets.v1, &["--no-git", "--no-ledger"]);
    let elsewhere = sb.path().join("elsewhere");
    fs::create_dir(&elsewhere).expect("mkdir");
    fs::rename(repo.join(".spawn-elite"), elsewhere.join("state")).expect("move");
    std::os::unix::fs::symlink(elsewhere.join("state"), repo.join(".spawn-elite"))
        .expect("symlink");
    let before = snapshot(&elsewhere);
    let main_before = read(&repo.join("main.py"));
    let out = sb.update(&repo, &["--templates", s(&sets.v2), "--no-ledger"]);
    out.assert_error(2, ".spawn-elite is a symlink");
    assert_eq!(snapshot(&elsewhere), before);
    assert_eq!(read(&repo.join("main.py")), main_before);
}

/// `templates export --force` into a folder whose `base` is a symlink out
/// of it writes nothing there.
#[test]
fn export_force_never_writes_through_a_symlink_inside_the_folder() {
    let sb = Sandbox::new();
    let dir = sb.path().join("set");
    let elsewhere = sb.path().join("elsewhere");
    fs::create_dir_all(&dir).expect("mkdir");
    fs::create_dir_all(&elsewhere).expect("mkdir");
    std::os::unix::fs::symlink(&elsewhere, dir.join("base")).expect("symlink");
    let out = sb.run(["templates", "export", s(&dir), "--force"]);
    out.assert_error(2, &format!("{}/base is a symlink", dir.display()));
    assert_eq!(snapshot(&elsewhere), Vec::new(), "nothing written outside");
}

// ------------------------------------- 2. ignored and excluded files are the user's

/// A file the user keeps out of git (`.git/info/exclude`, or a line they
/// added to `.gitignore`) at a path the new set adds: git's merge would
/// replace it. The update refuses, names it, and the file is kept; the
/// dry run says the same with the same exit code.
#[test]
fn git_mode_never_overwrites_an_ignored_or_excluded_file() {
    let sb = Sandbox::new();
    let sets = sets(&sb);
    for how in ["info/exclude", ".gitignore"] {
        let repo = sb.repos().join("svc");
        if repo.exists() {
            fs::remove_dir_all(&repo).expect("rm");
        }
        let repo = spawn_svc(&sb, &sets.v1, &["--no-ledger"]);
        if how == "info/exclude" {
            append(&repo.join(".git/info/exclude"), "MAINTAINERS\n");
        } else {
            append(&repo.join(".gitignore"), "MAINTAINERS\n");
            sb.user_git(&repo, &["commit", "-qam", "ignore my MAINTAINERS"]);
        }
        fs::write(repo.join("MAINTAINERS"), "mine, not in git\n").expect("write");
        let head = sb.user_git(&repo, &["rev-parse", "HEAD"]);

        let dry = sb.update(&repo, &["--templates", s(&sets.v2), "--dry-run"]);
        let real = sb.update(&repo, &["--templates", s(&sets.v2)]);
        assert_eq!(
            read(&repo.join("MAINTAINERS")),
            "mine, not in git\n",
            "{how}: {real:?}"
        );
        real.assert_error(2, "MAINTAINERS");
        assert!(real.stderr.contains("ignored"), "{how}: {}", real.stderr);
        assert_eq!(dry.code, real.code, "{how}: the dry run: {dry:?}");
        assert_eq!(sb.user_git(&repo, &["rev-parse", "HEAD"]), head);
        assert!(update_lines(&sb).is_empty());
    }
}

// ---------------------------------------------- 3. assume-unchanged is refused

/// An uncommitted edit hidden from `git status` by the assume-unchanged
/// bit: git's failed merge reset it. Refused up front, naming the file.
#[test]
fn an_assume_unchanged_file_is_refused_before_anything_changes() {
    let sb = Sandbox::new();
    let sets = sets(&sb);
    let repo = spawn_svc(&sb, &sets.v1, &["--no-ledger"]);
    append(&repo.join("main.py"), "# my uncommitted edit\n");
    sb.user_git(&repo, &["update-index", "--assume-unchanged", "main.py"]);
    let head = sb.user_git(&repo, &["rev-parse", "HEAD"]);
    for args in [vec!["--dry-run"], vec![]] {
        let mut all = vec!["--templates", s(&sets.v2)];
        all.extend(args);
        let out = sb.update(&repo, &all);
        out.assert_error(2, "assume-unchanged");
        assert!(out.stderr.contains("main.py"), "{}", out.stderr);
        assert!(read(&repo.join("main.py")).ends_with("# my uncommitted edit\n"));
        assert_eq!(sb.user_git(&repo, &["rev-parse", "HEAD"]), head);
    }
}

// ------------------------------------------------------- 4. one update at a time

/// A stand-in `git` that, for the process with `HOLD_GATE` set, writes
/// `HOLD_STARTED` and waits (at most 30 s) for `HOLD_GATE` before running
/// `git merge`; every other call is the real git.
fn holding_git(sb: &Sandbox) -> PathBuf {
    let bin = sb.path().join("holdbin");
    fs::create_dir_all(&bin).expect("mkdir");
    let out = Command::new("sh")
        .args(["-c", "command -v git"])
        .output()
        .expect("sh");
    let real = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(!real.is_empty(), "these tests need git");
    let script = format!(
        r#"#!/bin/sh
if [ -n "$HOLD_GATE" ]; then
  for a in "$@"; do
    if [ "$a" = merge ]; then
      : > "$HOLD_STARTED"
      i=0
      while [ ! -e "$HOLD_GATE" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
      break
    fi
  done
fi
exec {real} "$@"
"#
    );
    let path = bin.join("git");
    fs::write(&path, script).expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
    bin
}

fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut paths = vec![dir.to_path_buf()];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).expect("PATH")
}

/// A second update while one runs (held just before its `git merge`)
/// exits at once with "another update of this repository is running" and
/// changes nothing; the first then finishes, and the repository is merged
/// once, clean, with one ledger line.
#[test]
fn a_second_update_while_one_runs_is_refused() {
    let sb = Sandbox::new();
    let sets = sets(&sb);
    let repo = spawn_svc(&sb, &sets.v1, &[]);
    let bin = holding_git(&sb);
    let started = sb.path().join("started");
    let gate = sb.path().join("gate");
    let first = sb
        .process()
        .env("PATH", path_with(&bin))
        .env("HOLD_STARTED", &started)
        .env("HOLD_GATE", &gate)
        .args(["update", s(&repo), "--templates", s(&sets.v2), "-q"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !started.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(started.exists(), "the first update reached its merge");

    let second = Outcome::of(
        sb.cmd()
            .env("PATH", path_with(&bin))
            .args(["update", s(&repo), "--templates", s(&sets.v2), "-q"])
            .timeout(std::time::Duration::from_secs(60)),
    );
    fs::write(&gate, "").expect("open the gate");
    let first = first.wait_with_output().expect("wait");
    let first = Outcome::from(first);

    second.assert_error(2, "another update of this repository is running");
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(
        sb.user_git(&repo, &["status", "--porcelain", "--untracked-files=all"]),
        "",
        "nothing staged or changed after the update"
    );
    assert_eq!(
        sb.user_git(&repo, &["rev-list", "--merges", "--count", "HEAD"]),
        "1"
    );
    assert_eq!(update_lines(&sb).len(), 1);
}

// ------------------------------------- 5. an unresolved conflict is never overwritten

/// Receipt mode: `main.py.spawn-elite-new` waits to be merged by hand. The
/// next update (to v3, or v2 again) refuses and lists it, rather than
/// replacing it or saying "up to date".
#[test]
fn an_unresolved_spawn_elite_new_file_stops_the_next_update() {
    let sb = Sandbox::new();
    let sets = sets(&sb);
    let repo = spawn_svc(&sb, &sets.v1, &["--no-git", "--no-ledger"]);
    append(&repo.join("main.py"), "# mine\n");
    let first = sb.update(&repo, &["--templates", s(&sets.v2), "--no-ledger"]);
    assert_eq!(first.code, 12, "{}{}", first.stdout, first.stderr);
    let pending = repo.join("main.py.spawn-elite-new");
    let waiting = read(&pending);
    assert!(waiting.ends_with("# v2\n"));

    for set in [&sets.v3, &sets.v2] {
        let out = sb.update(&repo, &["--templates", s(set), "--no-ledger"]);
        out.assert_error(2, "main.py.spawn-elite-new");
        assert_eq!(read(&pending), waiting, "left as it was");
    }
    // Resolved (taken, here): the next update goes ahead.
    fs::rename(&pending, repo.join("main.py")).expect("take it");
    let out = sb.update(&repo, &["--templates", s(&sets.v3), "--no-ledger"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
}

// -------------------------------------------- 6. recorded when finished, not begun

/// A conflicting git-mode update is not in the ledger while it waits; one
/// the user aborts never is; one the user resolves is recorded (once) by
/// `update --continue`, which also makes the merge commit. `--continue`
/// refuses while a conflict marker remains.
#[test]
fn an_update_is_recorded_when_it_is_finished() {
    let sb = Sandbox::new();
    let sets = sets(&sb);
    let repo = spawn_svc(&sb, &sets.v1, &[]);
    append(&repo.join("main.py"), "# mine\n");
    sb.user_git(&repo, &["commit", "-qam", "mine"]);

    let out = sb.update(&repo, &["--templates", s(&sets.v2)]);
    assert_eq!(out.code, 12, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("spawn-elite update --continue"),
        "{}",
        out.stdout
    );
    assert_eq!(
        update_lines(&sb).len(),
        0,
        "not recorded while conflicts wait"
    );
    sb.user_git(&repo, &["merge", "--abort"]);
    assert_eq!(
        update_lines(&sb).len(),
        0,
        "an aborted update is never recorded"
    );

    let out = sb.update(&repo, &["--templates", s(&sets.v2)]);
    assert_eq!(out.code, 12, "{}{}", out.stdout, out.stderr);
    let refused = sb.update(&repo, &["--continue"]);
    refused.assert_error(2, "main.py");
    assert!(refused.stderr.contains("conflict"), "{}", refused.stderr);

    let text = read(&repo.join("main.py"));
    let resolved: String = text
        .lines()
        .filter(|l| {
            !l.starts_with("<<<<<<<") && !l.starts_with("=======") && !l.starts_with(">>>>>>>")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(repo.join("main.py"), resolved).expect("resolve");
    sb.user_git(&repo, &["add", "main.py"]);
    let done = sb.update(&repo, &["--continue"]);
    assert_eq!(done.code, 0, "{}{}", done.stdout, done.stderr);
    assert!(!repo.join(".git/MERGE_HEAD").exists());
    assert_eq!(
        sb.user_git(&repo, &["rev-list", "--merges", "--count", "HEAD"]),
        "1"
    );
    let lines = update_lines(&sb);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["update"]["new_templates"]["version"], "2.0.0");
    let again = sb.update(&repo, &["--continue"]);
    again.assert_error(2, "no update");
    assert_eq!(update_lines(&sb).len(), 1);
}

/// Receipt mode: the update with conflicts is recorded once the user has
/// merged each `PATH.spawn-elite-new` and runs `update --continue`.
#[test]
fn a_receipt_mode_update_is_recorded_when_its_conflicts_are_resolved() {
    let sb = Sandbox::new();
    let sets = sets(&sb);
    let repo = spawn_svc(&sb, &sets.v1, &["--no-git"]);
    append(&repo.join("main.py"), "# mine\n");
    let out = sb.update(&repo, &["--templates", s(&sets.v2)]);
    assert_eq!(out.code, 12, "{}{}", out.stdout, out.stderr);
    assert_eq!(update_lines(&sb).len(), 0);
    sb.update(&repo, &["--continue"])
        .assert_error(2, "main.py.spawn-elite-new");
    fs::remove_file(repo.join("main.py.spawn-elite-new")).expect("resolve: keep mine");
    let done = sb.update(&repo, &["--continue"]);
    assert_eq!(done.code, 0, "{}{}", done.stdout, done.stderr);
    assert_eq!(update_lines(&sb).len(), 1);
}

// ---------------------------------------------- 7. the dry run predicts the run

/// `--dry-run` exits with the code the real run would, for a dirty tree,
/// an untracked file at a path the set adds, and a merge in progress.
#[test]
fn the_dry_run_refuses_what_the_run_refuses() {
    let sb = Sandbox::new();
    let sets = sets(&sb);
    let repo = spawn_svc(&sb, &sets.v1, &["--no-ledger"]);
    let v2 = s(&sets.v2);
    let both = |what: &str| {
        let dry = sb.update(&repo, &["--templates", v2, "--dry-run", "--no-ledger"]);
        let head = sb.user_git(&repo, &["rev-parse", "HEAD"]);
        let real = sb.update(&repo, &["--templates", v2, "--no-ledger"]);
        assert_eq!(sb.user_git(&repo, &["rev-parse", "HEAD"]), head, "{what}");
        assert_ne!(real.code, 0, "{what}: the real run refuses: {real:?}");
        assert_eq!(dry.code, real.code, "{what}: {dry:?} vs {real:?}");
        assert_eq!(dry.stderr, real.stderr, "{what}");
    };
    // A dirty tree.
    append(&repo.join("README.md"), "draft\n");
    both("a dirty tree");
    sb.user_git(&repo, &["checkout", "README.md"]);
    // An untracked file where the set adds one.
    fs::write(repo.join("MAINTAINERS"), "mine\n").expect("write");
    both("an untracked file at an added path");
    fs::remove_file(repo.join("MAINTAINERS")).expect("rm");
    // A merge in progress.
    sb.user_git(&repo, &["checkout", "-qb", "side"]);
    append(&repo.join("README.md"), "side\n");
    sb.user_git(&repo, &["commit", "-qam", "side"]);
    sb.user_git(&repo, &["checkout", "-q", "-"]);
    append(&repo.join("README.md"), "main\n");
    sb.user_git(&repo, &["commit", "-qam", "main"]);
    let merge = Command::new("git")
        .current_dir(&repo)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", sb.git_config())
        .args(["merge", "side"])
        .output()
        .expect("git merge");
    assert!(!merge.status.success(), "the merge conflicts");
    both("a merge in progress");
}

// ------------------------------------------------------------------ 8. messages

/// `-q` prints nothing for a clean update; a `--set` is named in the
/// summary with its old and new value.
#[test]
fn quiet_is_quiet_and_a_value_change_is_named() {
    let sb = Sandbox::new();
    let sets = sets(&sb);
    let repo = spawn_svc(&sb, &sets.v1, &["--no-ledger"]);
    let out = sb.update(&repo, &["--templates", s(&sets.v2), "-q", "--no-ledger"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));

    let out = sb.update(
        &repo,
        &[
            "--templates",
            s(&sets.v2),
            "--set",
            "port=9001",
            "--no-ledger",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("port 8000 → 9001"), "{}", out.stdout);
}

/// A repository with git history but no pristine commit is updated from
/// the receipt alone: the update says so, and that the result is left
/// uncommitted for the user to review and commit.
#[test]
fn receipt_mode_in_a_git_repository_says_the_result_is_uncommitted() {
    let sb = Sandbox::new();
    let sets = sets(&sb);
    let repo = spawn_svc(&sb, &sets.v1, &["--no-git", "--no-ledger"]);
    sb.user_git(&repo, &["init", "-q"]);
    sb.user_git(&repo, &["add", "-A"]);
    sb.user_git(&repo, &["commit", "-qm", "imported"]);
    let out = sb.update(&repo, &["--templates", s(&sets.v2), "--no-ledger"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(said.contains("no pristine scaffold commit"), "{said}");
    assert!(said.contains("left uncommitted"), "{said}");
    assert!(
        !sb.user_git(&repo, &["status", "--porcelain"]).is_empty(),
        "the changes are in the work tree"
    );
}

/// A full disk while a git-mode update builds its pristine commit: the
/// message says the repository was left unchanged (not that "nothing was
/// created", which is a spawn's), and it was.
#[test]
fn a_full_disk_in_git_mode_says_the_repository_is_unchanged() {
    let sb = Sandbox::new();
    let sets = sets(&sb);
    let mount = sb.path().join("small");
    fs::create_dir_all(&mount).expect("mkdir");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&mount)
        .output();
    if !mounted.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: cannot mount a tmpfs to fill up (needs root and mount permission)");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mount.clone());
    let out = sb.run([
        "svc",
        "--templates",
        s(&sets.v1),
        "--no-ledger",
        "-q",
        "--out-dir",
        s(&mount),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let repo = mount.join("svc");
    let head = sb.user_git(&repo, &["rev-parse", "HEAD"]);
    // Fill the disk, then free 48 KiB: room for git's index, not for the
    // files of the pristine commit.
    {
        use std::io::Write as _;
        let mut f = fs::File::create(mount.join("filler")).expect("filler");
        let chunk = [b'x'; 65536];
        for _ in 0..1000 {
            if f.write_all(&chunk).is_err() {
                break;
            }
        }
        for _ in 0..65536 {
            if f.write_all(b"x").is_err() {
                break;
            }
        }
        let len = f.metadata().expect("size").len();
        f.set_len(len.saturating_sub(48 << 10))
            .expect("free 48 KiB");
    }
    let out = sb.update(&repo, &["--templates", s(&sets.v2), "--no-ledger"]);
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(
        !out.stderr.contains("nothing was created"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("left unchanged"), "{}", out.stderr);
    assert_eq!(sb.user_git(&repo, &["rev-parse", "HEAD"]), head);
}
