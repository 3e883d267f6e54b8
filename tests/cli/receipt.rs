//! `receipt` and `verify` as users run them: golden roots from the
//! specification, every kind of tampering, and every kind of bad input.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{Outcome, Sandbox};

/// The entries of docs/RECEIPT.md's golden trees; tree T<n> is the first n.
const ENTRIES: [(&str, u32, &[u8]); 8] = [
    ("README.md", 0o100644, b"hello\n"),
    ("bin/run", 0o100755, b"#!/bin/sh\necho run\n"),
    ("a.txt", 0o100644, b""),
    ("a/b.txt", 0o100644, b"nested\n"),
    ("link", 0o120000, b"a.txt"),
    ("a-b", 0o100644, b"dash\n"),
    ("Zebra", 0o100644, b"upper\n"),
    ("\u{e9}.txt", 0o100644, b"unicode\n"),
];

/// From docs/RECEIPT.md, computed there by scripts/receipt_vectors.py.
const GOLDEN: [(usize, &str); 6] = [
    (
        0,
        "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
    ),
    (
        1,
        "fe0bc271323a3f212581ad5c8ed3bf5fd7e41e356c3c68807fc3535c0db6d015",
    ),
    (
        2,
        "b44983e1397d26e5b47b0dd613f42156fcc231dc0259f4b360341fd5ee6230ed",
    ),
    (
        3,
        "b7e6ba81b37cdec3aaa6a5b920f30a46114fb961122ba11ef45cefc33e200233",
    ),
    (
        5,
        "146809bbd9cb0e000ab10213ffccab1751946203d9047b22747351d4965989a8",
    ),
    (
        8,
        "b89f2bb57dec61b334f1fd70a74679e3dfd9e6bbf94333edd18fa05b8ad7b3aa",
    ),
];

/// The first `n` golden-vector entries under `dir` (created, even for n = 0).
fn make_tree(dir: &Path, n: usize) {
    fs::create_dir_all(dir).expect("mkdir");
    for (path, mode, content) in &ENTRIES[..n] {
        let full = dir.join(path);
        fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        if *mode == 0o120000 {
            symlink(std::ffi::OsStr::from_bytes(content), &full).expect("symlink");
        } else {
            fs::write(&full, content).expect("write");
            let perm = if *mode == 0o100755 { 0o755 } else { 0o644 };
            fs::set_permissions(&full, fs::Permissions::from_mode(perm)).expect("chmod");
        }
    }
}

/// `make_tree` at `name` in the sandbox; returns its path.
fn tree_in(sb: &Sandbox, name: &str, n: usize) -> PathBuf {
    let dir = sb.path().join(name);
    make_tree(&dir, n);
    dir
}

fn receipt_json(sb: &Sandbox, dir: &Path) -> Value {
    let out = sb.cmd().arg("receipt").arg(dir).output().expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("receipt is JSON")
}

/// A tree with a receipt at its usual place.
fn receipted(sb: &Sandbox, dir: &Path) {
    sb.cmd()
        .arg("receipt")
        .arg(dir)
        .arg("-o")
        .arg(dir.join(".spawn-elite/receipt.json"))
        .assert()
        .success();
}

fn verify(sb: &Sandbox, dir: &Path) -> Outcome {
    sb.run(["verify".as_ref(), dir.as_os_str()])
}

#[test]
fn golden_trees_have_the_documented_roots() {
    let sb = Sandbox::new();
    for (n, root) in GOLDEN {
        let dir = tree_in(&sb, &format!("t{n}"), n);
        let r = receipt_json(&sb, &dir);
        assert_eq!(r["merkle_root"], root, "tree T{n}");
        assert_eq!(r["leaf_count"], n as u64);
        assert_eq!(r["format"], "spawn-elite.receipt/v1");
        assert!(r.get("spawn").is_none(), "a plain tree has no spawn fields");
        assert_eq!(
            r["created"], "2026-01-02T03:04:05Z",
            "SOURCE_DATE_EPOCH is honoured"
        );
    }
}

#[test]
fn receipt_lists_files_in_byte_order_with_modes_and_plain_blake3() {
    let sb = Sandbox::new();
    let dir = tree_in(&sb, "t8", 8);
    let r = receipt_json(&sb, &dir);
    let files = r["files"].as_array().expect("files");
    let paths: Vec<&str> = files.iter().filter_map(|f| f["path"].as_str()).collect();
    assert_eq!(
        paths,
        [
            "README.md",
            "Zebra",
            "a-b",
            "a.txt",
            "a/b.txt",
            "bin/run",
            "link",
            "\u{e9}.txt"
        ]
    );
    let mode = |p: &str| {
        files
            .iter()
            .find(|f| f["path"] == p)
            .map(|f| f["mode"].clone())
    };
    assert_eq!(mode("bin/run"), Some("100755".into()));
    assert_eq!(mode("link"), Some("120000".into()));
    assert_eq!(mode("a.txt"), Some("100644".into()));
    let readme = &files[0];
    assert_eq!(readme["size"], 6);
    assert_eq!(
        readme["blake3"],
        blake3::hash(b"hello\n").to_hex().as_str(),
        "the same digest b3sum prints"
    );
}

#[test]
fn git_dir_and_the_receipt_itself_are_not_covered() {
    let sb = Sandbox::new();
    let dir = sb.path().join("t");
    fs::create_dir_all(dir.join(".git/objects")).expect("mkdir");
    fs::write(dir.join(".git/HEAD"), "ref: x\n").expect("write");
    make_tree(&dir, 3);
    receipted(&sb, &dir);
    let r = receipt_json(&sb, &dir);
    assert_eq!(r["merkle_root"], GOLDEN[3].1);
    fs::write(dir.join(".git/HEAD"), "changed\n").expect("write");
    let o = verify(&sb, &dir);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.starts_with("ok: "), "{}", o.stdout);
}

/// A spawned repository with its receipt, as users get it.
fn spawned(sb: &Sandbox) -> PathBuf {
    sb.cmd()
        .args(["tamper-me", "tool", "--out-dir"])
        .arg(sb.repos())
        .assert()
        .success();
    let dir = sb.repos().join("tamper-me");
    // The receipt the spawn wrote and committed is the one checked.
    assert!(dir.join(".spawn-elite/receipt.json").is_file());
    assert_eq!(verify(sb, &dir).code, 0);
    dir
}

fn tracked_files(dir: &Path) -> Vec<String> {
    let r: Value = serde_json::from_slice(
        &fs::read(dir.join(".spawn-elite/receipt.json")).expect("read receipt"),
    )
    .expect("json");
    r["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter(|f| f["mode"] != "120000")
        .filter_map(|f| f["path"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn every_single_byte_flip_in_a_small_tree_is_named() {
    let sb = Sandbox::new();
    let dir = tree_in(&sb, "t8", 8);
    receipted(&sb, &dir);
    for (path, mode, content) in ENTRIES {
        if mode == 0o120000 {
            continue;
        }
        for i in 0..content.len() {
            let mut changed = content.to_vec();
            changed[i] ^= 0x01;
            fs::write(dir.join(path), &changed).expect("write");
            let o = verify(&sb, &dir);
            assert_eq!(o.code, 1, "flip of byte {i} in {path} went unnoticed");
            assert_eq!(o.stdout, format!("modified      {path}\n"));
            fs::write(dir.join(path), content).expect("restore");
        }
    }
    assert_eq!(verify(&sb, &dir).code, 0);
}

#[test]
fn a_byte_flip_in_every_file_of_a_spawned_repo_is_named() {
    let sb = Sandbox::new();
    let dir = spawned(&sb);
    let files = tracked_files(&dir);
    assert!(files.len() > 5, "{files:?}");
    for path in files {
        let original = fs::read(dir.join(&path)).expect("read");
        // First, middle and last byte: the ends catch off-by-one reads.
        let len = original.len();
        for i in [0, len / 2, len.saturating_sub(1)] {
            if len == 0 {
                break;
            }
            let mut changed = original.clone();
            changed[i] ^= 0x80;
            fs::write(dir.join(&path), &changed).expect("write");
            let o = verify(&sb, &dir);
            assert_eq!(o.code, 1, "flip at {i} in {path}");
            assert_eq!(o.stdout, format!("modified      {path}\n"));
            assert!(o.stderr.starts_with("drift: "), "{}", o.stderr);
        }
        fs::write(dir.join(&path), &original).expect("restore");
    }
    assert_eq!(verify(&sb, &dir).code, 0);
}

#[test]
fn rename_add_delete_and_chmod_are_each_named() {
    let sb = Sandbox::new();
    let dir = spawned(&sb);
    let bin = "bin/tamper-me";
    let readme = dir.join("README.md");

    fs::rename(&readme, dir.join("README.txt")).expect("rename");
    let o = verify(&sb, &dir);
    assert_eq!(o.code, 1);
    assert_eq!(
        o.stdout,
        "added         README.txt\nremoved       README.md\n"
    );
    fs::rename(dir.join("README.txt"), &readme).expect("rename back");

    fs::write(dir.join("extra.txt"), "x").expect("add");
    let o = verify(&sb, &dir);
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (1, "added         extra.txt\n")
    );
    fs::remove_file(dir.join("extra.txt")).expect("rm");

    let saved = fs::read(&readme).expect("read");
    fs::remove_file(&readme).expect("delete");
    let o = verify(&sb, &dir);
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (1, "removed       README.md\n")
    );
    fs::write(&readme, saved).expect("restore");

    fs::set_permissions(dir.join(bin), fs::Permissions::from_mode(0o644)).expect("chmod");
    let o = verify(&sb, &dir);
    assert_eq!(o.code, 1);
    assert_eq!(
        o.stdout,
        format!("mode-changed  {bin} (100755 -> 100644)\n")
    );
    fs::set_permissions(dir.join(bin), fs::Permissions::from_mode(0o755)).expect("chmod");

    assert_eq!(verify(&sb, &dir).code, 0);
}

#[test]
fn verify_json_reports_the_same_drift() {
    let sb = Sandbox::new();
    let dir = spawned(&sb);
    fs::write(dir.join("new"), "x").expect("add");
    fs::write(dir.join("README.md"), "changed").expect("modify");
    let o = sb.run(["verify".as_ref(), dir.as_os_str(), "--json".as_ref()]);
    assert_eq!(o.code, 1);
    let v: Value = serde_json::from_str(&o.stdout).expect("json");
    assert_eq!(v["ok"], false);
    assert_eq!(v["added"], serde_json::json!(["new"]));
    assert_eq!(v["modified"], serde_json::json!(["README.md"]));
    assert_eq!(v["removed"], serde_json::json!([]));
    assert_ne!(v["expected_root"], v["actual_root"]);
}

#[test]
fn a_symlink_out_of_the_tree_is_recorded_by_target_and_never_followed() {
    let sb = Sandbox::new();
    let secret = sb.path().join("secret.txt");
    fs::write(&secret, "outside\n").expect("write");
    let dir = sb.path().join("t");
    fs::create_dir_all(&dir).expect("mkdir");
    symlink(&secret, dir.join("escape")).expect("symlink");
    let r = receipt_json(&sb, &dir);
    let f = &r["files"][0];
    assert_eq!(f["mode"], "120000");
    let target = secret.as_os_str().as_bytes();
    assert_eq!(f["blake3"], blake3::hash(target).to_hex().as_str());
    assert_eq!(f["size"], target.len());
    receipted(&sb, &dir);
    fs::write(&secret, "changed outside\n").expect("write");
    assert_eq!(
        verify(&sb, &dir).code,
        0,
        "the target's content is not covered"
    );
    fs::remove_file(dir.join("escape")).expect("rm");
    symlink("elsewhere", dir.join("escape")).expect("symlink");
    let o = verify(&sb, &dir);
    assert_eq!((o.code, o.stdout.as_str()), (1, "modified      escape\n"));
}

fn with_receipt_text(sb: &Sandbox, text: &[u8]) -> Outcome {
    let dir = sb.path().join("t");
    fs::create_dir_all(&dir).expect("mkdir");
    let file = sb.path().join("receipt.json");
    fs::write(&file, text).expect("write");
    sb.run([
        "verify".as_ref(),
        dir.as_os_str(),
        "--receipt".as_ref(),
        file.as_os_str(),
    ])
}

fn good_receipt(sb: &Sandbox) -> String {
    let dir = sb.path().join("src");
    if !dir.exists() {
        make_tree(&dir, 5);
    }
    serde_json::to_string_pretty(&receipt_json(sb, &dir)).expect("json")
}

#[test]
fn malformed_receipt_json_exits_6() {
    let sb = Sandbox::new();
    let o = with_receipt_text(&sb, b"{not json");
    o.assert_error(6, "is not valid JSON");
}

#[test]
fn truncated_receipt_exits_6() {
    let sb = Sandbox::new();
    let text = good_receipt(&sb);
    for cut in [1, text.len() / 3, text.len() / 2, text.len() - 2] {
        let o = with_receipt_text(&sb, &text.as_bytes()[..cut]);
        o.assert_error(6, "truncated");
    }
}

#[test]
fn foreign_json_exits_6() {
    let sb = Sandbox::new();
    let o = with_receipt_text(&sb, br#"{"name": "left-pad", "version": "1.3.0"}"#);
    o.assert_error(6, "not a spawn-elite receipt");
    let o = with_receipt_text(&sb, b"[1, 2, 3]");
    o.assert_error(6, "not a spawn-elite receipt");
}

#[test]
fn wrong_format_exits_6() {
    let sb = Sandbox::new();
    let text = good_receipt(&sb).replace("spawn-elite.receipt/v1", "spawn-elite.receipt/v9");
    let o = with_receipt_text(&sb, text.as_bytes());
    o.assert_error(
        6,
        "reads only \"spawn-elite.receipt/v1\" and \"spawn-elite.receipt/v2\"",
    );
    let text = good_receipt(&sb).replace("spawn-elite.receipt/v1", "cyclonedx/1.5");
    let o = with_receipt_text(&sb, text.as_bytes());
    o.assert_error(6, "not a spawn-elite receipt");
}

#[test]
fn a_receipt_whose_root_does_not_match_its_files_exits_6() {
    let sb = Sandbox::new();
    let text = good_receipt(&sb);
    let mut v: Value = serde_json::from_str(&text).expect("json");
    v["files"][0]["blake3"] = blake3::hash(b"forged").to_hex().as_str().into();
    let o = with_receipt_text(&sb, v.to_string().as_bytes());
    o.assert_error(6, "is inconsistent");

    let mut v: Value = serde_json::from_str(&text).expect("json");
    v["leaf_count"] = 4.into();
    let o = with_receipt_text(&sb, v.to_string().as_bytes());
    o.assert_error(6, "leaf_count 4");

    let mut v: Value = serde_json::from_str(&text).expect("json");
    v["files"][0]["path"] = "../escape".into();
    let o = with_receipt_text(&sb, v.to_string().as_bytes());
    o.assert_error(6, "bad path");
}

#[test]
fn a_missing_receipt_exits_4_and_says_how_to_make_one() {
    let sb = Sandbox::new();
    let dir = sb.path().join("t");
    fs::create_dir_all(&dir).expect("mkdir");
    let o = verify(&sb, &dir);
    o.assert_error(4, "spawn-elite receipt DIR -o FILE");
}

/// Root reads anything, so drop the capabilities that let it.
fn without_override(sb: &Sandbox, args: &[&std::ffi::OsStr]) -> Outcome {
    let is_root = fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if !is_root {
        return sb.run(args);
    }
    let out = std::process::Command::new("setpriv")
        .args(["--bounding-set", "-dac_override,-dac_read_search", "--"])
        .arg(env!("CARGO_BIN_EXE_spawn-elite"))
        .args(args)
        .env("HOME", sb.home())
        .output()
        .expect("setpriv (util-linux) runs");
    Outcome::from(out)
}

#[test]
fn an_unreadable_file_exits_4_and_is_named() {
    let sb = Sandbox::new();
    let dir = tree_in(&sb, "t", 2);
    let locked = dir.join("README.md");
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).expect("chmod");
    let o = without_override(&sb, &["receipt".as_ref(), dir.as_os_str()]);
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o644)).expect("chmod");
    o.assert_error(4, "README.md");
    assert!(o.stderr.contains("make it readable"), "{}", o.stderr);
    assert!(o.stdout.is_empty(), "no partial receipt: {}", o.stdout);
}

#[test]
fn a_non_utf8_name_exits_8_and_is_named() {
    let sb = Sandbox::new();
    let dir = sb.path().join("t");
    fs::create_dir_all(&dir).expect("mkdir");
    fs::write(dir.join(std::ffi::OsStr::from_bytes(b"bad\xffname")), "x").expect("write");
    let o = sb.assert_error(["receipt".as_ref(), dir.as_os_str()], 8, "not valid UTF-8");
    assert!(o.stderr.contains("bad"), "{}", o.stderr);
}

#[test]
fn a_fifo_in_the_tree_exits_8_instead_of_hanging() {
    let sb = Sandbox::new();
    let dir = sb.path().join("t");
    fs::create_dir_all(&dir).expect("mkdir");
    let status = std::process::Command::new("mkfifo")
        .arg(dir.join("pipe"))
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
    sb.assert_error(
        ["receipt".as_ref(), dir.as_os_str()],
        8,
        "not a regular file",
    );
}

#[test]
fn receipt_output_file_round_trips_through_verify_receipt() {
    let sb = Sandbox::new();
    let dir = tree_in(&sb, "t", 8);
    let out = sb.path().join("elsewhere/r.json");
    let o = sb.run([
        "receipt".as_ref(),
        dir.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stderr.contains(GOLDEN[5].1), "{}", o.stderr);
    let o = sb.run([
        "verify".as_ref(),
        dir.as_os_str(),
        "--receipt".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
}

#[test]
fn large_files_hash_to_their_plain_blake3_and_late_flips_are_caught() {
    let sb = Sandbox::new();
    let dir = sb.path().join("t");
    fs::create_dir_all(&dir).expect("mkdir");
    // Sizes around every read strategy's edges: buffered, mapped, mapped in
    // several windows and split across threads.
    let sizes = [
        (64 << 10) - 1,
        64 << 10,
        100_000,
        (8 << 20) + 3,
        (17 << 20) + 1,
    ];
    for (i, size) in sizes.iter().enumerate() {
        let content: Vec<u8> = (0..*size).map(|b| (b * 7 + i) as u8).collect();
        fs::write(dir.join(format!("big{i}")), &content).expect("write");
    }
    let r = receipt_json(&sb, &dir);
    for (i, size) in sizes.iter().enumerate() {
        let content: Vec<u8> = (0..*size).map(|b| (b * 7 + i) as u8).collect();
        let f = &r["files"][i];
        assert_eq!(f["path"], format!("big{i}"));
        assert_eq!(f["size"], *size as u64);
        assert_eq!(
            f["blake3"],
            blake3::hash(&content).to_hex().as_str(),
            "big{i}"
        );
    }
    receipted(&sb, &dir);
    let last = dir.join("big4");
    let mut content = fs::read(&last).expect("read");
    let end = content.len() - 1;
    content[end] ^= 1;
    fs::write(&last, &content).expect("write");
    let o = verify(&sb, &dir);
    assert_eq!((o.code, o.stdout.as_str()), (1, "modified      big4\n"));
}

#[test]
fn a_large_tree_prints_no_progress_when_stderr_is_not_a_terminal() {
    let sb = Sandbox::new();
    let dir = sb.path().join("t");
    for i in 0..2500 {
        let sub = dir.join(format!("d{}", i % 25));
        fs::create_dir_all(&sub).expect("mkdir");
        fs::write(sub.join(format!("f{i}")), i.to_string()).expect("write");
    }
    let out = sb.cmd().arg("receipt").arg(&dir).output().expect("run");
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(r["leaf_count"], 2500);
}

#[test]
fn verify_without_arguments_checks_the_current_directory() {
    let sb = Sandbox::new();
    let dir = spawned(&sb);
    let out = sb
        .cmd()
        .arg("verify")
        .current_dir(&dir)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    fs::write(dir.join("stray"), "x").expect("write");
    let out = sb
        .cmd()
        .arg("verify")
        .current_dir(&dir)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "added         stray\n"
    );
}

/// What `make venv && make test` leaves behind: files git ignores.
fn build_output(dir: &Path, venv_files: usize) {
    for i in 0..venv_files {
        let f = dir.join(format!(
            ".venv/lib/python3.12/site-packages/pkg{}/m{i}.py",
            i % 7
        ));
        fs::create_dir_all(f.parent().expect("parent")).expect("mkdir");
        fs::write(f, "x").expect("write");
    }
    for name in ["a", "b"] {
        let f = dir.join(format!("tests/__pycache__/{name}.cpython-312.pyc"));
        fs::create_dir_all(f.parent().expect("parent")).expect("mkdir");
        fs::write(f, "pyc").expect("write");
    }
}

/// `verify DIR --no-ignore` and `args`.
fn verify_all(sb: &Sandbox, dir: &Path, args: &[&str]) -> Outcome {
    let mut all: Vec<&std::ffi::OsStr> =
        vec!["verify".as_ref(), dir.as_os_str(), "--no-ignore".as_ref()];
    all.extend(args.iter().map(std::ffi::OsStr::new));
    sb.run(all)
}

#[test]
fn build_output_is_summed_up_and_hinted_and_exclude_makes_verify_pass() {
    let sb = Sandbox::new();
    let dir = spawned(&sb);
    build_output(&dir, 300);
    let o = verify_all(&sb, &dir, &[]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    let added = o.stdout.lines().filter(|l| l.starts_with("added ")).count();
    assert_eq!(added, 50, "{}", o.stdout);
    assert!(
        o.stdout.contains("… and 252 more added under .venv/\n"),
        "{}",
        o.stdout
    );
    // The smaller directory still gets its lines, not buried under .venv/.
    assert!(
        o.stdout
            .contains("added         tests/__pycache__/a.cpython-312.pyc\n"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.lines().count() <= 60, "{}", o.stdout);
    assert!(o.stderr.starts_with("drift: "), "{}", o.stderr);
    assert!(
        o.stderr
            .contains("50 of the 302 added paths are listed; --json lists them all"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains(
            "hint: all 302 added paths are ignored by the repository's .gitignore (build output?); verify skips them without --no-ignore"
        ),
        "{}",
        o.stderr
    );

    let o = verify_all(&sb, &dir, &["--json"]);
    assert_eq!(o.code, 1);
    let v: Value = serde_json::from_str(&o.stdout).expect("json");
    assert_eq!(v["added"].as_array().map(Vec::len), Some(302));

    let o = verify_all(
        &sb,
        &dir,
        &["--exclude", ".venv/**", "--exclude", "**/__pycache__/**"],
    );
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stdout.starts_with("ok: ") && o.stdout.contains("302 other path(s) skipped by --exclude"),
        "{}",
        o.stdout
    );
    // A pattern naming a directory covers what is under it.
    let o = verify_all(
        &sb,
        &dir,
        &["--exclude", ".venv", "--exclude", "**/__pycache__"],
    );
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
}

#[test]
fn exclude_never_hides_a_path_the_receipt_lists_nor_an_unmatched_addition() {
    let sb = Sandbox::new();
    let dir = spawned(&sb);
    build_output(&dir, 3);
    fs::write(dir.join("README.md"), "changed").expect("write");
    fs::write(dir.join("backdoor.sh"), "x").expect("write");
    let o = verify_all(
        &sb,
        &dir,
        &[
            "--exclude",
            ".venv/**",
            "--exclude",
            "README.md",
            "--exclude",
            "tests/*.pyc",
        ],
    );
    assert_eq!(o.code, 1);
    // `*` stays within one directory, so tests/__pycache__/*.pyc is not skipped.
    assert_eq!(
        o.stdout,
        "modified      README.md\n\
         added         backdoor.sh\n\
         added         tests/__pycache__/a.cpython-312.pyc\n\
         added         tests/__pycache__/b.cpython-312.pyc\n"
    );
    // backdoor.sh is not ignored, so there is no build-output hint.
    assert!(!o.stderr.contains("hint:"), "{}", o.stderr);
}

#[test]
fn a_bad_exclude_glob_exits_2() {
    let sb = Sandbox::new();
    let dir = spawned(&sb);
    sb.assert_error(
        [
            "verify".as_ref(),
            dir.as_os_str(),
            "--exclude".as_ref(),
            "a[b".as_ref(),
        ],
        2,
        "--exclude \"a[b\" is not a valid glob",
    );
}

/// What `make venv`, `make test` and `make lint` leave in a service, in
/// byte order: every path is one its .gitignore names.
const SERVICE_TOOL_OUTPUT: [&str; 9] = [
    ".coverage",
    ".mypy_cache/3.12/main.data.json",
    ".mypy_cache/CACHEDIR.TAG",
    ".pytest_cache/README.md",
    ".pytest_cache/v/cache/nodeids",
    ".ruff_cache/0.6.9/1234567890",
    ".venv/bin/python",
    "__pycache__/main.cpython-312.pyc",
    "tests/__pycache__/test_main.cpython-312-pytest-8.3.3.pyc",
];

#[test]
fn verify_skips_what_the_repository_ignores_and_no_ignore_reports_it() {
    let sb = Sandbox::new();
    let dir = sb.spawn(&["ignoring-svc", "service"]);
    for path in SERVICE_TOOL_OUTPUT {
        let f = dir.join(path);
        fs::create_dir_all(f.parent().expect("parent")).expect("mkdir");
        fs::write(f, "cache").expect("write");
    }
    // The README's own example, after the repository's make targets.
    let o = sb.run([
        "verify".as_ref(),
        dir.as_os_str(),
        "--exclude".as_ref(),
        ".venv".as_ref(),
        "--exclude".as_ref(),
        "**/__pycache__".as_ref(),
    ]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains(
            "; 3 other path(s) skipped by --exclude; 6 path(s) skipped as ignored by .gitignore (--no-ignore checks them))\n"
        ),
        "{}",
        o.stdout
    );
    assert_eq!(o.stderr, "");
    let o = verify(&sb, &dir);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stdout
            .contains("; 9 path(s) skipped as ignored by .gitignore (--no-ignore checks them)"),
        "{}",
        o.stdout
    );
    let o = sb.run(["verify".as_ref(), dir.as_os_str(), "--json".as_ref()]);
    let v: Value = serde_json::from_str(&o.stdout).expect("json");
    assert_eq!(
        (v["ok"].as_bool(), v["ignored"].as_u64()),
        (Some(true), Some(9))
    );

    let o = verify_all(&sb, &dir, &[]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    let listed: String = SERVICE_TOOL_OUTPUT
        .iter()
        .map(|p| format!("added         {p}\n"))
        .collect();
    assert_eq!(o.stdout, listed);
    assert!(
        o.stderr.contains(
            "hint: all 9 added paths are ignored by the repository's .gitignore (build output?); verify skips them without --no-ignore\n"
        ),
        "{}",
        o.stderr
    );
}

#[test]
fn an_ignored_file_the_receipt_lists_is_still_checked() {
    let sb = Sandbox::new();
    let dir = spawned(&sb);
    // Every Markdown file ignored, generated ones included.
    fs::write(dir.join(".git/info/exclude"), "*.md\n").expect("write");
    fs::write(dir.join("README.md"), "changed").expect("write");
    fs::write(dir.join("NOTES.md"), "mine").expect("write");
    let o = verify(&sb, &dir);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert_eq!(o.stdout, "modified      README.md\n");
    fs::remove_file(dir.join("AGENTS.md")).expect("remove");
    let o = verify(&sb, &dir);
    assert_eq!(
        o.stdout,
        "modified      README.md\nremoved       AGENTS.md\n"
    );
}

#[test]
fn nested_gitignores_info_exclude_and_global_excludes_all_count() {
    let sb = Sandbox::new();
    let dir = spawned(&sb);
    fs::create_dir_all(dir.join("data/raw")).expect("mkdir");
    // A nested .gitignore that the receipt does not list is itself added,
    // and what it ignores (with its exception) is decided by it.
    fs::write(dir.join("data/.gitignore"), "raw/\n*.csv\n!keep.csv\n").expect("write");
    fs::write(dir.join("data/raw/dump.bin"), "x").expect("write");
    fs::write(dir.join("data/a.csv"), "x").expect("write");
    fs::write(dir.join("data/keep.csv"), "x").expect("write");
    fs::write(dir.join(".git/info/exclude"), "scratch/\n").expect("write");
    fs::create_dir_all(dir.join("scratch")).expect("mkdir");
    fs::write(dir.join("scratch/try.sh"), "x").expect("write");
    // The global excludes file that core.excludesFile names.
    let excludes = sb.path().join("global-ignore");
    fs::write(&excludes, "*.orig\n").expect("write");
    let config = sb.path().join("gitconfig-excludes");
    fs::write(
        &config,
        format!("[core]\n\texcludesFile = {}\n", excludes.display()),
    )
    .expect("write");
    fs::write(dir.join("Makefile.orig"), "x").expect("write");
    let out = sb
        .cmd()
        .arg("verify")
        .arg(&dir)
        .env("GIT_CONFIG_GLOBAL", &config)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "added         data/.gitignore\nadded         data/keep.csv\n"
    );
}

#[test]
fn verify_runs_no_git_to_apply_ignore_rules() {
    let sb = Sandbox::new();
    let dir = tree_in(&sb, "plain", 3);
    receipted(&sb, &dir);
    fs::write(dir.join("new"), "x").expect("write");
    let o = verify(&sb, &dir);
    assert_eq!((o.code, o.stdout.as_str()), (1, "added         new\n"));
    assert_eq!(o.stderr.lines().count(), 1, "{}", o.stderr);

    // A repository's .gitignore applies with no git on PATH, and with no
    // .git at all (a --no-git spawn carries the same .gitignore).
    let git_repo = spawned(&sb);
    build_output(&git_repo, 1);
    fs::remove_dir_all(git_repo.join(".git")).expect("remove .git");
    let empty_path = sb.path().join("no-git-here");
    fs::create_dir_all(&empty_path).expect("mkdir");
    let run = |args: &[&str]| {
        sb.cmd()
            .arg("verify")
            .arg(&git_repo)
            .args(args)
            .env("PATH", &empty_path)
            .output()
            .expect("run")
    };
    let out = run(&[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = run(&["--no-ignore"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("drift: "), "{err}");
    assert!(
        err.contains("are ignored by the repository's .gitignore"),
        "{err}"
    );
}

#[test]
fn a_damaged_receipt_in_a_repo_says_restore_it_from_git_never_regenerate() {
    let sb = Sandbox::new();
    let dir = spawned(&sb);
    let file = dir.join(".spawn-elite/receipt.json");
    let text = fs::read_to_string(&file).expect("read");
    let mut v: Value = serde_json::from_str(&text).expect("json");
    v["files"][0]["blake3"] = blake3::hash(b"forged").to_hex().as_str().into();
    for damaged in [v.to_string(), text[..text.len() / 2].to_owned()] {
        fs::write(&file, damaged).expect("write");
        let o = verify(&sb, &dir);
        let restore = format!(
            "git -C {} checkout -- .spawn-elite/receipt.json",
            dir.display()
        );
        o.assert_error(6, &restore);
        assert!(o.stderr.contains("ledger list"), "{}", o.stderr);
        assert!(!o.stderr.contains("spawn-elite receipt"), "{}", o.stderr);
        sb.assert_error(
            ["prove".as_ref(), dir.as_os_str(), "README.md".as_ref()],
            6,
            &restore,
        );
    }
    // The advice works: git has the good copy.
    crate::support::git(&dir, &["checkout", "--", ".spawn-elite/receipt.json"]);
    assert_eq!(verify(&sb, &dir).code, 0);
}

#[test]
fn a_damaged_user_receipt_says_regenerating_re_approves_the_tree() {
    let sb = Sandbox::new();
    let text = good_receipt(&sb);
    let o = with_receipt_text(&sb, &text.as_bytes()[..text.len() / 2]);
    o.assert_error(6, "re-approves the tree as it is now");
    assert!(o.stderr.contains("-o FILE --force"), "{}", o.stderr);

    // A receipt at .spawn-elite/ of a tree without git: no git advice.
    let dir = tree_in(&sb, "nogit", 2);
    receipted(&sb, &dir);
    fs::write(dir.join(".spawn-elite/receipt.json"), "{").expect("write");
    let o = verify(&sb, &dir);
    o.assert_error(6, "restore it from a backup or a clean copy");
    assert!(!o.stderr.contains("git -C"), "{}", o.stderr);
}

#[test]
fn receipt_refuses_to_overwrite_a_file_without_force() {
    let sb = Sandbox::new();
    let dir = tree_in(&sb, "t", 2);
    let out = sb.path().join("r.json");
    fs::write(&out, "precious").expect("write");
    let args = [
        "receipt".as_ref(),
        dir.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ];
    sb.assert_error(
        args,
        2,
        &format!("{} exists; pass --force to replace it", out.display()),
    );
    assert_eq!(fs::read_to_string(&out).expect("read"), "precious");
    let mut forced = args.to_vec();
    forced.push("--force".as_ref());
    let o = sb.run(&forced);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let r: Value = serde_json::from_slice(&fs::read(&out).expect("read")).expect("json");
    assert_eq!(r["merkle_root"], GOLDEN[2].1);
}

#[test]
fn every_positional_argument_has_help_text() {
    let sb = Sandbox::new();
    for cmd in ["verify", "receipt", "prove", "verify-proof"] {
        let o = sb.run([cmd, "--help"]);
        assert_eq!(o.code, 0, "{}", o.stderr);
        let args: Vec<&str> = o
            .stdout
            .lines()
            .skip_while(|l| *l != "Arguments:")
            .skip(1)
            .take_while(|l| !l.is_empty())
            .collect();
        assert!(!args.is_empty(), "{cmd}: {}", o.stdout);
        for line in args {
            let words: Vec<&str> = line.split_whitespace().collect();
            assert!(words.len() > 1, "{cmd}: {line:?} has no help text");
        }
    }
}
