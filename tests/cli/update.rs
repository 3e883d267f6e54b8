//! `spawn-elite update`: two exported template sets v1 → v2 (v2 changes,
//! adds, removes and renames files and changes a default), applied to an
//! untouched repository and to one a user changed in every way that
//! matters, with git and without; v1 → v2 → v3 across user commits and a
//! fresh clone; and updates killed at random instants.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::files::{append, copy_dir, read, replace_in, s};
use crate::support::{Sandbox, tree};

/// The embedded set, exported as v1.
fn export_v1(sb: &Sandbox) -> PathBuf {
    sb.export_acme("set-v1")
}

/// v2: a changed file at each end (main.py, Makefile's HOST line), a
/// changed SECURITY.md, a new MAINTAINERS, .yamllint removed,
/// docs/README.md renamed to docs/INDEX.md, and port's default 8000 → 9000.
fn make_v2(sb: &Sandbox, v1: &Path) -> PathBuf {
    let v2 = sb.path().join("set-v2");
    copy_dir(v1, &v2);
    let manifest = v2.join("spawn-elite.toml");
    replace_in(&manifest, "version = \"1.0.0\"", "version = \"2.0.0\"");
    replace_in(&manifest, "default = \"8000\"", "default = \"9000\"");
    append(&v2.join("service/main.py.j2"), "\n# v2: served by acme\n");
    replace_in(
        &v2.join("service/Makefile.j2"),
        "HOST ?= 127.0.0.1",
        "HOST ?= 0.0.0.0",
    );
    append(
        &v2.join("base/SECURITY.md.j2"),
        "\nv2: security@acme.test\n",
    );
    fs::write(v2.join("base/MAINTAINERS"), "* @acme/platform\n").expect("write");
    fs::remove_file(v2.join("base/.yamllint")).expect("rm");
    fs::rename(
        v2.join("base/docs/README.md.j2"),
        v2.join("base/docs/INDEX.md.j2"),
    )
    .expect("rename");
    let check = sb.run(["templates", "check", s(&v2)]);
    assert!(check.success(), "{}", check.stderr);
    v2
}

/// v3 from v2: MAINTAINERS changes.
fn make_v3(sb: &Sandbox, v2: &Path) -> PathBuf {
    let v3 = sb.path().join("set-v3");
    copy_dir(v2, &v3);
    replace_in(
        &v3.join("spawn-elite.toml"),
        "version = \"2.0.0\"",
        "version = \"3.0.0\"",
    );
    fs::write(v3.join("base/MAINTAINERS"), "* @acme/platform @acme/sre\n").expect("write");
    v3
}

fn receipt_of(repo: &Path) -> Value {
    serde_json::from_str(&read(&repo.join(".spawn-elite/receipt.json"))).expect("JSON")
}

fn ledger_lines(sb: &Sandbox) -> Vec<Value> {
    read(&sb.data().join("spawn-elite/ledger.jsonl"))
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// The user's changes (b)-(f): README.md (v2 leaves it), main.py's
/// docstring (v2 changes its end), Makefile's HOST line (v2 changes it
/// too), SECURITY.md deleted (v2 changes it), notes.txt added.
fn edit_as_user(repo: &Path) {
    append(&repo.join("README.md"), "\nOur own notes.\n");
    replace_in(
        &repo.join("main.py"),
        "status, health, readiness and Prometheus metrics.",
        "status, health, readiness and metrics (ours).",
    );
    replace_in(
        &repo.join("Makefile"),
        "HOST ?= 127.0.0.1",
        "HOST ?= localhost",
    );
    fs::remove_file(repo.join("SECURITY.md")).expect("rm");
    fs::write(repo.join("notes.txt"), "mine\n").expect("write");
}

/// The tree of an untouched repository after the update to v2.
fn v2_tree(v1_tree: &[String]) -> Vec<String> {
    let mut t: Vec<String> = v1_tree
        .iter()
        .filter(|p| *p != ".yamllint" && *p != "docs/README.md")
        .cloned()
        .collect();
    t.extend(["MAINTAINERS".to_owned(), "docs/INDEX.md".to_owned()]);
    t.sort();
    t
}

#[test]
fn git_mode_merges_the_template_changes_and_keeps_the_users() {
    let sb = Sandbox::new();
    let v1 = export_v1(&sb);
    let v2 = make_v2(&sb, &v1);
    let a = sb.spawn(&["plain", "--templates", s(&v1)]);
    let b = sb.spawn(&["edited", "--templates", s(&v1)]);
    let v1_tree = tree(&a);
    edit_as_user(&b);
    sb.user_git(&b, &["add", "--all"]);
    sb.user_git(&b, &["commit", "-q", "-m", "our changes"]);
    let b_head = sb.user_git(&b, &["rev-parse", "HEAD"]);

    // A set on disk is required, and --check says it is behind.
    sb.assert_error(
        ["update", s(&a)],
        2,
        "was spawned from template set acme 1.0.0 on disk; pass the set to update to with --templates DIR",
    );
    let check = sb.update(&a, &["--check", "--templates", s(&v1)]);
    assert_eq!(check.code, 0, "{}", check.stderr);
    let check = sb.update(&a, &["--check", "--templates", s(&v2)]);
    assert_eq!(check.code, 1, "{}", check.stderr);
    assert!(
        check
            .stdout
            .starts_with("scaffold is out of date; run spawn-elite update"),
        "{}",
        check.stdout
    );

    // --dry-run: every path and its fate, nothing changed.
    let dry = sb.update(&b, &["--dry-run", "--templates", s(&v2)]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    for line in [
        "  unchanged .dockerignore\n",
        "  kept      README.md\n",
        "  merged    main.py\n",
        "  conflict  Makefile\n",
        "  conflict  SECURITY.md\n",
        "  added     MAINTAINERS\n",
        "  renamed   docs/README.md -> docs/INDEX.md\n",
        "  removed   .yamllint\n",
    ] {
        assert!(dry.stdout.contains(line), "{line:?} in {}", dry.stdout);
    }
    assert!(!dry.stdout.contains("notes.txt"), "{}", dry.stdout);
    assert!(
        !dry.stdout.contains("  added     docs/INDEX.md")
            && !dry.stdout.contains("  removed   docs/README.md"),
        "a rename is one line: {}",
        dry.stdout
    );
    let json = sb.update(&a, &["--dry-run", "--json", "--templates", s(&v2)]);
    let json: Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(json["mode"], "git");
    assert_eq!(json["templates"]["from"]["version"], "1.0.0");
    assert_eq!(json["templates"]["to"]["version"], "2.0.0");
    let fate = |path: &str| {
        json["files"]
            .as_array()
            .and_then(|f| f.iter().find(|c| c["path"] == path))
            .map(|c| c["action"].clone())
    };
    assert_eq!(fate("main.py"), Some("updated".into()));
    assert_eq!(fate("docs/INDEX.md"), Some("renamed".into()));
    assert_eq!(fate("docs/README.md"), None);
    let renamed = json["files"]
        .as_array()
        .and_then(|f| f.iter().find(|c| c["path"] == "docs/INDEX.md"))
        .expect("docs/INDEX.md listed");
    assert_eq!(renamed["from"], "docs/README.md");
    assert_eq!(fate("LICENSE"), Some("unchanged".into()));
    assert_eq!(sb.user_git(&b, &["rev-parse", "HEAD"]), b_head);
    assert_eq!(sb.user_git(&b, &["status", "--porcelain"]), "");

    // A dirty work tree is refused, untouched.
    append(&b.join("README.md"), "uncommitted\n");
    sb.assert_error(
        ["update", s(&b), "--templates", s(&v2)],
        2,
        "has uncommitted changes (1 file, e.g. README.md); commit or stash them",
    );
    sb.user_git(&b, &["checkout", "--", "README.md"]);
    assert_eq!(sb.user_git(&b, &["rev-parse", "HEAD"]), b_head);

    // (a) untouched: a clean merge whose result is exactly a fresh spawn
    // from v2 with the recorded port (the new default does not apply).
    let out = sb.update(&a, &["--templates", s(&v2)]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .starts_with("updated plain from template set acme 1.0.0 to acme 2.0.0 (git merge"),
        "{}",
        out.stdout
    );
    assert_eq!(tree(&a), v2_tree(&v1_tree));
    assert!(read(&a.join("Makefile")).contains("HOST ?= 0.0.0.0\nPORT ?= 8000"));
    let parents = sb.user_git(&a, &["rev-list", "--parents", "-n1", "HEAD"]);
    assert_eq!(parents.split(' ').count(), 3, "a merge commit: {parents}");
    assert!(
        sb.user_git(&a, &["log", "-1", "--format=%s"])
            .contains("update scaffold from template set acme 1.0.0 to acme 2.0.0")
    );
    let pristine_msg = sb.user_git(&a, &["log", "-1", "--format=%B", "HEAD^2"]);
    let root = receipt_of(&a)["merkle_root"].as_str().unwrap().to_owned();
    assert!(
        pristine_msg.contains(&format!("Spawn-Elite-Pristine: {root}")),
        "{pristine_msg}"
    );
    let made = sb.run([
        "plain",
        "--templates",
        s(&v2),
        "--set",
        "port=8000",
        "--out-dir",
        s(&sb.path().join("fresh")),
        "--no-ledger",
        "-q",
    ]);
    assert!(made.success(), "{}", made.stderr);
    let fresh = sb.path().join("fresh/plain");
    assert_eq!(receipt_of(&fresh)["merkle_root"], root.as_str());
    assert!(sb.run(["verify", s(&a)]).success());
    assert_eq!(sb.update(&a, &["--check", "--templates", s(&v2)]).code, 0);

    // (b)-(f): conflicts in Makefile (same line) and SECURITY.md (deleted
    // by the user, changed by v2); the rest merges.
    let out = sb.update(&b, &["--templates", s(&v2)]);
    assert_eq!(out.code, 12, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("  conflict  Makefile\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("  conflict  SECURITY.md\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("  merged    main.py\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("2 conflicts to resolve: git marked them (`git status` lists them)"),
        "{}",
        out.stdout
    );
    let status = sb.user_git(&b, &["status", "--porcelain"]);
    let mut status: Vec<&str> = status.lines().collect();
    status.sort();
    assert_eq!(
        status,
        [
            "A  MAINTAINERS",
            "D  .yamllint",
            "DU SECURITY.md",
            "M  .spawn-elite/receipt.json",
            "M  main.py",
            "R  docs/README.md -> docs/INDEX.md",
            "UU Makefile",
        ]
    );
    let makefile = read(&b.join("Makefile"));
    assert!(
        makefile.contains("<<<<<<< HEAD\nHOST ?= localhost\n=======\nHOST ?= 0.0.0.0\n>>>>>>> "),
        "{makefile}"
    );
    let main = read(&b.join("main.py"));
    assert!(main.contains("readiness and metrics (ours)."), "{main}");
    assert!(main.ends_with("# v2: served by acme\n"), "{main}");
    assert!(read(&b.join("README.md")).ends_with("Our own notes.\n"));
    let mut expected = v2_tree(&v1_tree);
    expected.push("notes.txt".into());
    expected.sort();
    assert_eq!(tree(&b), expected);
    // Another update waits for this one to be finished.
    sb.assert_error(
        ["update", s(&b), "--templates", s(&v2)],
        2,
        "has an update with conflicts in progress; resolve them",
    );

    // Resolve with the template's side, `update --continue` commits: a
    // merge with two parents, and verify lists exactly the user's own
    // changes.
    sb.user_git(&b, &["checkout", "--theirs", "Makefile"]);
    sb.user_git(&b, &["add", "Makefile", "SECURITY.md"]);
    let done = sb.update(&b, &["--continue"]);
    assert_eq!(done.code, 0, "{}", done.stderr);
    let parents = sb.user_git(&b, &["rev-list", "--parents", "-n1", "HEAD"]);
    assert_eq!(parents.split(' ').count(), 3, "{parents}");
    assert_eq!(sb.user_git(&b, &["rev-parse", "HEAD^1"]), b_head);
    let verify = sb.run(["verify", s(&b)]);
    assert_eq!(verify.code, 1, "{}", verify.stdout);
    let drift: Vec<&str> = verify.stdout.lines().collect();
    assert_eq!(
        drift,
        [
            "modified      README.md",
            "modified      main.py",
            "added         notes.txt"
        ],
        "{}",
        verify.stdout
    );
    assert_eq!(sb.update(&b, &["--check", "--templates", s(&v2)]).code, 0);

    // The ledger: two spawns, then the two updates.
    let lines = ledger_lines(&sb);
    assert_eq!(lines.len(), 4);
    assert!(lines[0].get("event").is_none());
    let last = &lines[3];
    assert_eq!(last["event"], "update");
    assert_eq!(last["name"], "edited");
    assert_eq!(last["merkle_root"], receipt_of(&b)["merkle_root"]);
    assert_eq!(last["update"]["old_templates"]["version"], "1.0.0");
    assert_eq!(last["update"]["new_templates"]["version"], "2.0.0");
    assert_eq!(last["update"]["conflicts"], 2);
    assert!(sb.run(["ledger", "verify"]).success());
    let list = sb.run(["ledger", "list"]);
    assert!(
        list.stdout.contains("(update acme 1.0.0 -> acme 2.0.0)"),
        "{}",
        list.stdout
    );
}

#[test]
fn each_update_finds_its_base_after_user_commits_and_in_a_fresh_clone() {
    let sb = Sandbox::new();
    let v1 = export_v1(&sb);
    let v2 = make_v2(&sb, &v1);
    let v3 = make_v3(&sb, &v2);
    let repo = sb.spawn(&["chain", "--templates", s(&v1), "--no-ledger"]);
    let initial = sb.user_git(&repo, &["rev-parse", "HEAD"]);
    replace_in(
        &repo.join("main.py"),
        "import time\n",
        "import time  # ours\n",
    );
    sb.user_git(&repo, &["commit", "-q", "-am", "ours"]);
    let out = sb.update(&repo, &["--templates", s(&v2), "--no-ledger"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(&format!("base {}", &initial[..12])),
        "{}",
        out.stdout
    );
    let pristine2 = sb.user_git(&repo, &["rev-parse", "HEAD^2"]);
    assert_eq!(sb.user_git(&repo, &["rev-parse", "HEAD^2^"]), initial);
    // The user commits on top, then clones: no refs but the branch.
    fs::write(repo.join("later.txt"), "later\n").expect("write");
    sb.user_git(&repo, &["add", "later.txt"]);
    sb.user_git(&repo, &["commit", "-q", "-m", "later"]);
    let clone = sb.path().join("clone");
    sb.user_git(sb.path(), &["clone", "-q", s(&repo), s(&clone)]);
    let out = sb.update(&clone, &["--templates", s(&v3), "--no-ledger"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(&format!("base {}", &pristine2[..12])),
        "{}",
        out.stdout
    );
    assert_eq!(sb.user_git(&clone, &["rev-parse", "HEAD^2^"]), pristine2);
    assert_eq!(
        read(&clone.join("MAINTAINERS")),
        "* @acme/platform @acme/sre\n"
    );
    let main = read(&clone.join("main.py"));
    assert!(
        main.contains("import time  # ours\n") && main.contains("# v2: served by acme\n"),
        "{main}"
    );
    assert!(clone.join("later.txt").is_file());
    let check = sb.update(&clone, &["--check", "--templates", s(&v3)]);
    assert_eq!(check.code, 0, "{}", check.stdout);
    // Already current: nothing to do, nothing changed.
    let head = sb.user_git(&clone, &["rev-parse", "HEAD"]);
    let again = sb.update(&clone, &["--templates", s(&v3), "--no-ledger"]);
    assert_eq!(again.code, 0);
    assert!(again.stdout.contains("is up to date"), "{}", again.stdout);
    assert_eq!(sb.user_git(&clone, &["rev-parse", "HEAD"]), head);
}

#[test]
fn without_git_the_receipt_decides_and_conflicts_are_written_beside() {
    let sb = Sandbox::new();
    let v1 = export_v1(&sb);
    let v2 = make_v2(&sb, &v1);
    let a = sb.spawn(&["plain", "--templates", s(&v1), "--no-git"]);
    let b = sb.spawn(&["edited", "--templates", s(&v1), "--no-git"]);
    let v1_tree = tree(&a);
    edit_as_user(&b);

    // (a) untouched: exactly v2's output, and it verifies.
    let out = sb.update(&a, &["--templates", s(&v2)]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("(receipt only, no git history)"),
        "{}",
        out.stdout
    );
    assert_eq!(tree(&a), v2_tree(&v1_tree));
    assert!(sb.run(["verify", s(&a)]).success());
    assert_eq!(sb.update(&a, &["--check", "--templates", s(&v2)]).code, 0);

    // (b)-(f): without the old contents, both-changed is a conflict.
    let dry = sb.update(&b, &["--dry-run", "--templates", s(&v2)]);
    assert_eq!(dry.code, 0);
    assert!(
        dry.stdout.contains("  conflict  main.py\n"),
        "{}",
        dry.stdout
    );
    assert_eq!(tree(&b).len(), v1_tree.len(), "dry run changed nothing");
    let before_readme = read(&b.join("README.md"));
    let out = sb.update(&b, &["--templates", s(&v2)]);
    assert_eq!(out.code, 12, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("3 conflicts to resolve: your version was kept and the new one written beside it as PATH.spawn-elite-new"),
        "{}",
        out.stdout
    );
    let mut expected: Vec<String> = v2_tree(&v1_tree)
        .into_iter()
        .filter(|p| p != "SECURITY.md")
        .collect();
    expected.extend(
        [
            "notes.txt",
            ".spawn-elite/pending-update.json",
            "main.py.spawn-elite-new",
            "Makefile.spawn-elite-new",
            "SECURITY.md.spawn-elite-new",
        ]
        .map(String::from),
    );
    expected.sort();
    assert_eq!(tree(&b), expected);
    assert_eq!(read(&b.join("README.md")), before_readme);
    assert!(read(&b.join("main.py")).contains("(ours)"));
    assert!(read(&b.join("main.py.spawn-elite-new")).ends_with("# v2: served by acme\n"));
    assert!(read(&b.join("Makefile")).contains("HOST ?= localhost"));
    assert!(read(&b.join("Makefile.spawn-elite-new")).contains("HOST ?= 0.0.0.0"));
    assert_eq!(receipt_of(&b)["spawn"]["templates"]["version"], "2.0.0");
    assert_eq!(sb.update(&b, &["--check", "--templates", s(&v2)]).code, 0);
    // Resolved by taking the new versions: only the user's own changes remain.
    for f in ["main.py", "Makefile", "SECURITY.md"] {
        fs::rename(b.join(format!("{f}.spawn-elite-new")), b.join(f)).expect("mv");
    }
    // Finished: recorded now, and the note is gone.
    let done = sb.update(&b, &["--continue"]);
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert!(!b.join(".spawn-elite/pending-update.json").exists());
    let verify = sb.run(["verify", s(&b)]);
    assert_eq!(verify.code, 1);
    let drift: Vec<&str> = verify.stdout.lines().collect();
    assert_eq!(
        drift,
        ["modified      README.md", "added         notes.txt"]
    );
    assert_eq!(ledger_lines(&sb).len(), 4);
}

#[test]
fn set_changes_a_recorded_value_checked_by_the_sets_rules() {
    let sb = Sandbox::new();
    let repo = sb.spawn(&["valued", "--no-ledger"]);
    sb.assert_error(
        ["update", s(&repo), "--set", "port=80"],
        2,
        "invalid --set port=\"80\": use a port from 1024 to 65535",
    );
    assert_eq!(sb.update(&repo, &["--check"]).code, 0);
    let out = sb.update(&repo, &["--set", "port=9100", "--no-ledger"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(read(&repo.join("Makefile")).contains("PORT ?= 9100"));
    assert_eq!(receipt_of(&repo)["spawn"]["options"]["port"], "9100");
    assert!(sb.run(["verify", s(&repo)]).success());
    // Without a receipt there is nothing to update.
    let empty = sb.path().join("empty");
    fs::create_dir(&empty).expect("mkdir");
    sb.assert_error(
        ["update", s(&empty)],
        2,
        "has no .spawn-elite/receipt.json; update works on a repository spawn-elite spawned",
    );
}

/// Processes whose working directory is `dir` (git commands an update
/// started, which outlive a killed spawn-elite), as "PID: COMMAND LINE".
fn busy_in(dir: &Path) -> Vec<String> {
    let Ok(procs) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter(|p| fs::read_link(p.path().join("cwd")).is_ok_and(|cwd| cwd == dir))
        .map(|p| {
            let cmd = fs::read(p.path().join("cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            format!("{}: {cmd}", p.file_name().to_string_lossy())
        })
        .collect()
}

/// A small deterministic generator of kill delays.
struct Delays(u64);

impl Delays {
    /// A delay in 0..=1.2 × `took`.
    fn next(&mut self, took: Duration) -> Duration {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        Duration::from_micros((self.0 >> 33) % (took.as_micros() as u64 * 12 / 10 + 1))
    }
}

/// Start `update REPO --templates SET --no-ledger -q` with `TMPDIR` set to
/// `tmp`, wait `delay`, then SIGKILL it, or (`ctrl_c`) SIGINT its process
/// group as a terminal would; wait for it and for any git it started.
fn interrupt_update(
    sb: &Sandbox,
    repo: &Path,
    set: &Path,
    tmp: &Path,
    delay: Duration,
    ctrl_c: bool,
) {
    let mut cmd = sb.process();
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd
        .env("TMPDIR", tmp)
        .args([
            "update",
            s(repo),
            "--templates",
            s(set),
            "--no-ledger",
            "-q",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    std::thread::sleep(delay);
    let pid = child.id() as i32;
    unsafe {
        if ctrl_c {
            libc::kill(-pid, libc::SIGINT);
        } else {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    let _ = child.wait();
    // git runs in its own process group and finishes after a kill. A git
    // forked in the instant of the kill has not yet entered the repository
    // (its cwd changes at exec), so quiet means quiet twice, 100 ms apart,
    // with no index lock held.
    let deadline = Instant::now() + Duration::from_secs(20);
    let settled = || {
        let mut busy = busy_in(repo);
        if busy.is_empty() && repo.join(".git/index.lock").exists() {
            busy.push("index.lock held".to_owned());
        }
        busy
    };
    let mut busy = settled();
    loop {
        while !busy.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            busy = settled();
        }
        if !busy.is_empty() || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        busy = settled();
        if busy.is_empty() {
            break;
        }
    }
    assert!(
        busy.is_empty(),
        "still running in {} after 20s: {busy:?}",
        repo.display()
    );
}

/// Entries of `dir` whose name starts with `prefix`.
fn leftovers(dir: &Path, prefix: &str) -> Vec<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Every file below `dir` (`.git` excluded) and its bytes.
fn contents(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    tree(dir)
        .into_iter()
        .filter(|p| dir.join(p).is_file())
        .map(|p| {
            let bytes = fs::read(dir.join(&p)).expect("read");
            (p, bytes)
        })
        .collect()
}

/// HEAD is the update's merge: the user's old head as first parent, a
/// pristine scaffold as second, and the tree the reference update made.
/// Usually the very commit of the reference run (dates are fixed); the
/// comparison is by tree and first parent so that what "fully updated"
/// means is what is checked, and a mismatch says what differs.
fn assert_fully_updated(
    sb: &Sandbox,
    repo: &Path,
    old_head: &str,
    (reference, reference_tree): (&str, &str),
    trial: u64,
) {
    let head = sb.user_git(repo, &["rev-parse", "HEAD"]);
    if head == reference {
        return;
    }
    eprintln!(
        "trial {trial}: merge {} is not the reference commit; checking parents and tree",
        sb.user_git(
            repo,
            &["log", "-1", "--format=%H author %ad committer %cd", "HEAD"]
        )
    );
    let parents = sb.user_git(repo, &["rev-list", "--parents", "-n", "1", "HEAD"]);
    let parents: Vec<&str> = parents.split_whitespace().skip(1).collect();
    assert_eq!(
        parents.len(),
        2,
        "trial {trial}: HEAD {head} is neither the old head nor a merge"
    );
    assert_eq!(
        parents[0], old_head,
        "trial {trial}: the merge is not on the user's branch"
    );
    assert_eq!(
        sb.user_git(repo, &["rev-parse", "HEAD^{tree}"]),
        reference_tree,
        "trial {trial}: the merge's tree differs from the reference update's; HEAD {}",
        sb.user_git(repo, &["log", "-1", "--format=%H %ad %cd %s", "HEAD"])
    );
}

#[test]
fn an_update_killed_at_any_instant_leaves_the_branch_untouched_or_merged() {
    let sb = Sandbox::new();
    let v1 = export_v1(&sb);
    let v2 = make_v2(&sb, &v1);
    let tmp = sb.path().join("tmp");
    fs::create_dir(&tmp).expect("mkdir");
    let template = sb.spawn(&["killed", "--templates", s(&v1), "--no-ledger"]);
    append(&template.join("README.md"), "ours\n");
    sb.user_git(&template, &["commit", "-q", "-am", "ours"]);
    let template = fs::canonicalize(&template).expect("canonical");
    let old_head = sb.user_git(&template, &["rev-parse", "HEAD"]);

    // A reference run: how long an update takes, and the merge it makes
    // (commit ids are reproducible: fixed dates, same content).
    let reference = sb.path().join("reference");
    copy_dir(&template, &reference);
    let started = Instant::now();
    let out = sb.update(&reference, &["--templates", s(&v2), "--no-ledger"]);
    let took = started.elapsed();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let merged_head = sb.user_git(&reference, &["rev-parse", "HEAD"]);
    let merged_tree = sb.user_git(&reference, &["rev-parse", "HEAD^{tree}"]);

    // 52 trials, one in four a Ctrl-C to the process group, the others a
    // SIGKILL; each on a fresh copy of the prepared repository.
    let trials = 52u64;
    let mut delays = Delays(0x9e37_79b9_7f4a_7c15);
    let (mut untouched, mut merged) = (0, 0);
    let repo = sb.path().join("trial");
    for trial in 0..trials {
        copy_dir(&template, &repo);
        let repo = fs::canonicalize(&repo).expect("canonical");
        let delay = delays.next(took);
        interrupt_update(&sb, &repo, &v2, &tmp, delay, trial % 4 == 3);
        let head = sb.user_git(&repo, &["rev-parse", "HEAD"]);
        let status = sb.user_git(&repo, &["status", "--porcelain", "--untracked-files=all"]);
        assert_eq!(
            status, "",
            "trial {trial} (after {delay:?}): work tree not clean"
        );
        assert!(
            !repo.join(".git/MERGE_HEAD").exists(),
            "trial {trial}: merge left half done"
        );
        if head == old_head {
            untouched += 1;
        } else {
            assert_fully_updated(&sb, &repo, &old_head, (&merged_head, &merged_tree), trial);
            merged += 1;
        }
        // Finishing the job afterwards works from either state, and leaves
        // no scratch directory behind (in .git or in $TMPDIR).
        let again = sb.update(&repo, &["--templates", s(&v2), "--no-ledger", "-q"]);
        assert_eq!(again.code, 0, "trial {trial}: {}", again.stderr);
        assert_fully_updated(&sb, &repo, &old_head, (&merged_head, &merged_tree), trial);
        let left = leftovers(&repo.join(".git"), "spawn-elite-update-");
        assert!(
            left.is_empty(),
            "trial {trial}: scratch left in .git: {left:?}"
        );
        assert!(
            leftovers(&tmp, "").is_empty(),
            "trial {trial}: scratch left in $TMPDIR"
        );
        fs::remove_dir_all(&repo).expect("clean up");
    }
    assert_eq!(untouched + merged, trials);
    eprintln!("killed git-mode updates: {untouched} untouched, {merged} merged");
}

#[test]
fn a_receipt_mode_update_killed_at_any_instant_leaves_each_file_old_or_new() {
    let sb = Sandbox::new();
    let v1 = export_v1(&sb);
    let v2 = make_v2(&sb, &v1);
    let tmp = sb.path().join("tmp");
    fs::create_dir(&tmp).expect("mkdir");
    let template = sb.spawn(&["killed", "--templates", s(&v1), "--no-ledger", "--no-git"]);
    append(&template.join("README.md"), "ours\n");
    fs::write(template.join("notes.txt"), "mine\n").expect("write");
    let template = fs::canonicalize(&template).expect("canonical");
    let old = contents(&template);

    let reference = sb.path().join("reference");
    copy_dir(&template, &reference);
    let started = Instant::now();
    let out = sb.update(&reference, &["--templates", s(&v2), "--no-ledger"]);
    let took = started.elapsed();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let new = contents(&reference);
    let receipt = ".spawn-elite/receipt.json";
    let scratch = |p: &str| p.starts_with(".spawn-elite/update-");

    let trials = 50u64;
    let mut delays = Delays(0x2545_f491_4f6c_dd1d);
    let (mut untouched, mut partial, mut updated) = (0, 0, 0);
    let repo = sb.path().join("trial");
    for trial in 0..trials {
        copy_dir(&template, &repo);
        let repo = fs::canonicalize(&repo).expect("canonical");
        let delay = delays.next(took);
        interrupt_update(&sb, &repo, &v2, &tmp, delay, trial % 4 == 3);
        let now: std::collections::BTreeMap<String, Vec<u8>> = contents(&repo)
            .into_iter()
            .filter(|(p, _)| !scratch(p))
            .collect();
        // Each file is its old bytes or its new bytes (absent counts as
        // bytes); nothing else is there.
        for path in old.keys().chain(new.keys()).chain(now.keys()) {
            let is = now.get(path);
            assert!(
                is == old.get(path) || is == new.get(path),
                "trial {trial} (after {delay:?}): {path} is neither old nor new"
            );
        }
        // The receipt on disk is the old one until every file is new.
        if now == new {
            updated += 1;
        } else {
            assert_eq!(
                now.get(receipt),
                old.get(receipt),
                "trial {trial} (after {delay:?}): a new receipt over files not all new"
            );
            if now == old {
                untouched += 1;
            } else {
                partial += 1;
            }
        }
        // Running it again finishes the job and removes the scratch.
        let again = sb.update(&repo, &["--templates", s(&v2), "--no-ledger", "-q"]);
        assert_eq!(again.code, 0, "trial {trial}: {}", again.stderr);
        assert_eq!(
            contents(&repo),
            new,
            "trial {trial}: not finished by a re-run"
        );
        assert!(sb.run(["verify", s(&repo)]).code <= 1);
        assert!(
            leftovers(&tmp, "").is_empty(),
            "trial {trial}: scratch left in $TMPDIR"
        );
        fs::remove_dir_all(&repo).expect("clean up");
    }
    assert_eq!(untouched + partial + updated, trials);

    // Killed between two renames (too short a window to hit reliably by
    // timing): half the new files in place, the old receipt, and the
    // scratch directory. A re-run counts the files already new as updated,
    // finishes, and removes the scratch.
    copy_dir(&template, &repo);
    let changed: Vec<&String> = new
        .keys()
        .filter(|p| *p != receipt && old.get(*p) != new.get(*p))
        .collect();
    for path in changed.iter().step_by(2) {
        fs::write(repo.join(path), &new[*path]).expect("write");
    }
    fs::create_dir(repo.join(".spawn-elite/update-Ab12Cd")).expect("mkdir");
    fs::write(repo.join(".spawn-elite/update-Ab12Cd/0"), "staged").expect("write");
    let again = sb.update(&repo, &["--templates", s(&v2), "--no-ledger"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stdout.contains("  updated   main.py\n")
            && again.stdout.contains("  added     MAINTAINERS\n"),
        "{}",
        again.stdout
    );
    assert_eq!(contents(&repo), new);
    eprintln!(
        "killed receipt-mode updates: {untouched} untouched, {partial} part-way, {updated} updated"
    );
}

#[test]
fn callback_delivers_the_updated_receipt_to_the_receiver() {
    let sb = Sandbox::new();
    let v1 = export_v1(&sb);
    let v2 = make_v2(&sb, &v1);
    let (key, id) = sb.trusted_key("k");
    let repo = sb.spawn(&["called", "--templates", s(&v1), "--no-ledger"]);
    let rx = sb.receiver("127.0.0.1:0");
    let url = rx.url("/hooks/update");
    let out = sb.update(
        &repo,
        &[
            "--templates",
            s(&v2),
            "--no-ledger",
            "--callback",
            &url,
            "--key",
            s(&key),
        ],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains(&format!("callback delivered to {url} (HTTP 20")),
        "{all}"
    );
    assert!(
        all.contains("updated called from template set acme 1.0.0 to acme 2.0.0"),
        "{all}"
    );
    assert!(
        !all.to_lowercase().contains("spawn "),
        "says update, not spawn: {all}"
    );
    assert!(!all.contains("spawned"), "says update, not spawn: {all}");
    let (clean, log) = rx.stop();
    assert!(clean, "receiver stops cleanly: {log}");
    let lines = sb.log_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let root = receipt_of(&repo)["merkle_root"].clone();
    assert_eq!(lines[0]["keyid"], id.as_str());
    assert_eq!(lines[0]["idempotency_key"], root);
    assert_eq!(lines[0]["receipt"]["merkle_root"], root);
    assert_eq!(
        lines[0]["receipt"]["spawn"]["templates"]["version"],
        "2.0.0"
    );
    assert!(sb.outbox_files().is_empty());
}

#[test]
fn a_new_set_version_with_the_same_files_is_recorded_in_the_receipt() {
    let sb = Sandbox::new();
    let v1 = export_v1(&sb);
    let v1b = sb.path().join("set-v1.0.1");
    copy_dir(&v1, &v1b);
    replace_in(
        &v1b.join("spawn-elite.toml"),
        "version = \"1.0.0\"",
        "version = \"1.0.1\"",
    );
    for git in [true, false] {
        let name = if git { "same-git" } else { "same-nogit" };
        let mut args = vec![name, "--templates", s(&v1), "--no-ledger"];
        if !git {
            args.push("--no-git");
        }
        let repo = sb.spawn(&args);
        let files_before: Vec<(String, Vec<u8>)> = tree(&repo)
            .into_iter()
            .filter(|p| p != ".spawn-elite/receipt.json" && repo.join(p).is_file())
            .map(|p| {
                let bytes = fs::read(repo.join(&p)).expect("read");
                (p, bytes)
            })
            .collect();
        let check = sb.update(&repo, &["--check", "--templates", s(&v1b)]);
        assert_eq!(check.code, 1, "{}{}", check.stdout, check.stderr);
        assert!(
            check.stdout.starts_with(
                "scaffold is out of date; run spawn-elite update: template set acme 1.0.1 renders the same files as acme 1.0.0, but the receipt records acme 1.0.0"
            ),
            "{}",
            check.stdout
        );
        let head = git.then(|| sb.user_git(&repo, &["rev-parse", "HEAD"]));
        let out = sb.update(&repo, &["--templates", s(&v1b), "--no-ledger"]);
        assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
        assert!(
            out.stdout.contains(
                "only the receipt changed: it records template set acme 1.0.1 (the same files as acme 1.0.0)"
            ),
            "{}",
            out.stdout
        );
        let receipt = receipt_of(&repo);
        assert_eq!(receipt["spawn"]["templates"]["version"], "1.0.1");
        for (path, bytes) in &files_before {
            assert_eq!(&fs::read(repo.join(path)).expect("read"), bytes, "{path}");
        }
        if let Some(head) = head {
            // A merge whose pristine side changes only the receipt.
            assert_eq!(sb.user_git(&repo, &["rev-parse", "HEAD^1"]), head);
            let changed = sb.user_git(&repo, &["diff", "--name-only", "HEAD^2^", "HEAD^2"]);
            assert_eq!(changed, ".spawn-elite/receipt.json");
            assert_eq!(sb.user_git(&repo, &["status", "--porcelain"]), "");
        }
        assert!(sb.run(["verify", s(&repo)]).success());
        let check = sb.update(&repo, &["--check", "--templates", s(&v1b)]);
        assert_eq!(check.code, 0, "{}", check.stdout);
    }
}

#[test]
fn a_receipt_records_only_the_keys_that_apply_and_older_receipts_stay_current() {
    let sb = Sandbox::new();
    let repo = sb.spawn(&["tl", "tool", "--no-git"]);
    let receipt = receipt_of(&repo);
    let options = receipt["spawn"]["options"].as_object().expect("options");
    let mut keys: Vec<&str> = options.keys().map(String::as_str).collect();
    keys.sort();
    // port and python_version are service keys: a tool receipt has none.
    assert_eq!(keys, ["description", "org", "version"], "{receipt}");
    // A receipt written before this rule listed every key; it is current
    // all the same, and update has nothing to do.
    let mut older = receipt.clone();
    older["spawn"]["options"]["port"] = "8000".into();
    older["spawn"]["options"]["python_version"] = "3.12".into();
    std::fs::write(
        repo.join(".spawn-elite/receipt.json"),
        serde_json::to_vec_pretty(&older).expect("json"),
    )
    .expect("write");
    let check = sb.update(&repo, &["--check"]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    assert!(
        check.stdout.starts_with("ok: scaffold is current"),
        "{}",
        check.stdout
    );
}
