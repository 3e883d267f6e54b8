//! A pending timestamp request and kills: it is queued before the tree is
//! put in place (like a callback, `awaiting_spawn`), so a spawn killed at
//! any instant leaves a signed repository with its token or its request
//! queued; and `callback flush` exits 18 while only such requests remain.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sha2::Digest as _;

use crate::support::tsa::{Mode, TestTsa, have_openssl};
use crate::support::{Outcome, Sandbox};

const TOKEN: &str = ".spawn-elite/attestation.tst";
const ATTESTATION: &str = ".spawn-elite/attestation.intoto.json";

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

fn spawn_args(sb: &Sandbox, key: &Path, name: &str, tsa: &TestTsa) -> Vec<String> {
    [
        name,
        "--sign",
        "--key",
        s(key),
        "--tsa",
        &tsa.url(),
        "--out-dir",
        s(&sb.repos()),
        "--quiet",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The outbox's timestamp entries, parsed.
fn stamp_entries(sb: &Sandbox) -> Vec<Value> {
    let Ok(dir) = std::fs::read_dir(sb.outbox()) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|p| serde_json::from_slice::<Value>(&std::fs::read(p).ok()?).ok())
        .filter(|v| v["kind"] == "timestamp")
        .collect()
}

/// Hex SHA-256 of the raw signature in `repo`'s attestation: the imprint a
/// request for it carries.
fn imprint_of(repo: &Path) -> Option<String> {
    let env: Value = serde_json::from_slice(&std::fs::read(repo.join(ATTESTATION)).ok()?).ok()?;
    let sig = STANDARD
        .decode(env["signatures"][0]["sig"].as_str()?)
        .ok()?;
    Some(
        sha2::Sha256::digest(&sig)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

/// A `git` first on PATH that touches `marker` and sleeps 5 s on `commit`
/// (before running the real git): the spawn then waits there with its
/// requests queued and its repository not yet in place.
fn slow_git(sb: &Sandbox, marker: &Path) -> std::ffi::OsString {
    let bin = sb.path().join("slowbin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let real = std::process::Command::new("sh")
        .args(["-c", "command -v git"])
        .output()
        .expect("sh");
    let real = String::from_utf8_lossy(&real.stdout).trim().to_owned();
    let script = format!(
        "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = commit ] && {{ touch '{}'; sleep 5; }}; done\nexec {real} \"$@\"\n",
        marker.display()
    );
    let git = bin.join("git");
    std::fs::write(&git, script).expect("write git");
    std::fs::set_permissions(&git, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut paths = vec![bin];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).expect("PATH")
}

#[test]
fn a_spawn_killed_before_its_rename_leaves_its_timestamp_request_awaiting_and_flush_drops_it() {
    if !have_openssl() {
        return;
    }
    let sb = Sandbox::new();
    let tsa = TestTsa::start(&sb.path().join("pki"), false);
    tsa.set(Mode::ServerError);
    let (key, _) = sb.trusted_key("signer");
    let marker = sb.path().join("at-commit");
    let mut child = sb
        .process()
        .args(spawn_args(&sb, &key, "svc", &tsa))
        .env("PATH", slow_git(&sb, &marker))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start spawn-elite");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !marker.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let reached = marker.exists();
    let _ = child.kill();
    let _ = child.wait();
    assert!(reached, "the spawn never reached git commit");
    assert!(!sb.repos().join("svc").exists(), "killed before the rename");

    // Queued already, before the rename, and marked as awaiting the spawn.
    let entries = stamp_entries(&sb);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["awaiting_spawn"], true, "{}", entries[0]);
    let why = entries[0]["last_error"].as_str().unwrap_or_default();
    assert!(why.contains("answered HTTP 500"), "{why}");
    let list = sb.run(["callback", "list"]);
    assert!(
        list.stdout
            .contains("spawn:     not completed yet, or killed"),
        "{}",
        list.stdout
    );

    // The spawn never completed: flush drops the request without asking.
    tsa.set(Mode::Good);
    let out = sb.run(["callback", "flush"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("queued by a spawn or update that never completed"),
        "{}",
        out.stdout
    );
    assert!(stamp_entries(&sb).is_empty());
    assert_eq!(
        tsa.served(),
        1,
        "only the spawn's own attempt reached the TSA"
    );
}

#[test]
fn a_completed_spawn_clears_the_mark_and_a_failed_one_withdraws_its_request() {
    if !have_openssl() {
        return;
    }
    let sb = Sandbox::new();
    let tsa = TestTsa::start(&sb.path().join("pki"), false);
    tsa.set(Mode::ServerError);
    let (key, _) = sb.trusted_key("signer");
    let out = sb.run(spawn_args(&sb, &key, "done", &tsa));
    assert_eq!(out.code, 18, "{}", out.stderr);
    let entries = stamp_entries(&sb);
    assert_eq!(entries.len(), 1);
    assert!(entries[0].get("awaiting_spawn").is_none(), "{}", entries[0]);
    assert_eq!(
        entries[0]["imprint"].as_str(),
        imprint_of(&sb.repos().join("done")).as_deref()
    );

    // git fails at commit: nothing is written, and the request queued
    // before it is withdrawn with the rest.
    let bin = sb.path().join("failbin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let real = std::process::Command::new("sh")
        .args(["-c", "command -v git"])
        .output()
        .expect("sh");
    let real = String::from_utf8_lossy(&real.stdout).trim().to_owned();
    std::fs::write(
        bin.join("git"),
        format!("#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = commit ] && {{ echo 'fatal: simulated' >&2; exit 128; }}; done\nexec {real} \"$@\"\n"),
    )
    .expect("write git");
    std::fs::set_permissions(bin.join("git"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let mut paths = vec![bin];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let out = Outcome::of(
        assert_cmd::Command::from_std(sb.process())
            .args(spawn_args(&sb, &key, "failed", &tsa))
            .env("PATH", std::env::join_paths(paths).expect("PATH")),
    );
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(!sb.repos().join("failed").exists());
    assert_eq!(stamp_entries(&sb).len(), 1, "only the completed spawn's");
}

#[test]
fn sigkill_at_random_instants_of_a_stamped_spawn_never_loses_its_timestamp() {
    if !have_openssl() {
        return;
    }
    const TRIALS: u64 = 24;
    let sb = Sandbox::new();
    let tsa = TestTsa::start(&sb.path().join("pki"), false);
    tsa.set(Mode::ServerError);
    let (key, _) = sb.trusted_key("signer");
    let started = Instant::now();
    let out = sb.run(spawn_args(&sb, &key, "warm", &tsa));
    let full = started.elapsed();
    assert_eq!(out.code, 18, "{}", out.stderr);

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 | 1)
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    let mut x = seed;
    let mut spawned: Vec<PathBuf> = vec![sb.repos().join("warm")];
    for i in 0..TRIALS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // From a third of a spawn to twice one: spawns run slower while the
        // others are killed and reaped, so most kills land near the end.
        let delay = full.mul_f64(0.3 + (x % 1700) as f64 / 1000.0);
        let name = format!("k{i}");
        let mut child = sb
            .process()
            .args(spawn_args(&sb, &key, &name, &tsa))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start spawn-elite");
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        let repo = sb.repos().join(&name);
        let Some(imprint) = imprint_of(&repo) else {
            assert!(
                !repo.exists(),
                "trial {i} (seed {seed}): a half-made repository"
            );
            continue;
        };
        let queued = stamp_entries(&sb)
            .iter()
            .any(|e| e["imprint"].as_str() == Some(imprint.as_str()));
        assert!(
            queued,
            "trial {i} (seed {seed}, killed after {delay:?} of {full:?}): {name} is signed, unstamped, and its timestamp request is not queued"
        );
        spawned.push(repo);
    }
    eprintln!(
        "{TRIALS} SIGKILLs over {full:?} (seed {seed}): {} of {} spawns completed",
        spawned.len() - 1,
        TRIALS
    );

    // One flush stamps every repository that exists and drops the rest.
    tsa.set(Mode::Good);
    let out = sb.run(["callback", "flush"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(stamp_entries(&sb).is_empty(), "{}", out.stdout);
    for repo in &spawned {
        assert!(
            repo.join(TOKEN).is_file(),
            "{}: {}",
            repo.display(),
            out.stdout
        );
        let v = sb.run([
            "verify",
            s(repo),
            "--trust",
            s(&sb.trust()),
            "--tsa-cert",
            s(&tsa.pki.ca),
        ]);
        assert_eq!(v.code, 0, "{}: {}", repo.display(), v.stderr);
    }
}

#[test]
fn flush_exits_18_while_only_timestamps_remain_and_7_while_a_callback_does() {
    if !have_openssl() {
        return;
    }
    let sb = Sandbox::new();
    let tsa = TestTsa::start(&sb.path().join("pki"), false);
    tsa.set(Mode::ServerError);
    let (key, _) = sb.trusted_key("signer");
    let out = sb.run(spawn_args(&sb, &key, "svc", &tsa));
    assert_eq!(out.code, 18, "{}", out.stderr);
    let out = sb.run(["callback", "flush"]);
    assert_eq!(out.code, 18, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("0 delivered, 1 still queued"),
        "{}",
        out.stdout
    );

    // A callback that cannot be delivered joins it: 7, the callback's code.
    let receipt = sb.repos().join("svc/.spawn-elite/receipt.json");
    let sent = sb.run([
        "callback",
        "send",
        "--receipt",
        s(&receipt),
        "--url",
        "http://127.0.0.1:1/hooks",
        "--key",
        s(&key),
        "--attempts",
        "1",
    ]);
    assert_eq!(sent.code, 7, "{}", sent.stderr);
    let out = sb.run(["callback", "flush", "--attempts", "1"]);
    assert_eq!(out.code, 7, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("0 delivered, 2 still queued"),
        "{}",
        out.stdout
    );
}
