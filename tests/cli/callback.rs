//! Signed callbacks end to end: keygen, delivery, retries, outbox, flush,
//! and the receiver's verdicts. Every server is on 127.0.0.1 and is started
//! and stopped by the test that uses it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::{
    Flaky, Outcome, Sandbox, Step, free_port, hand_signed, load_key, receipt_json, root_for,
    send_args, unix_now,
};

/// Seed of the test receipt (see `receipt_json`).
const SEED: &str = "main";

/// The test receipt's merkle_root: its Idempotency-Key.
fn root() -> String {
    root_for(SEED)
}

fn s(p: &std::path::Path) -> &str {
    p.to_str().expect("utf8 path")
}

/// A key `k` and the test receipt in `receipt.json`: (key, keyid, receipt).
fn key_and_receipt(sb: &Sandbox) -> (PathBuf, String, PathBuf) {
    let (key, id) = sb.keygen("k");
    (key, id, sb.write_receipt("receipt.json", SEED))
}

/// As `key_and_receipt`, with the key trusted by the receiver.
fn trusted_key_and_receipt(sb: &Sandbox) -> (PathBuf, String, PathBuf) {
    let (key, id) = sb.trusted_key("k");
    (key, id, sb.write_receipt("receipt.json", SEED))
}

// ------------------------------------------------------------------ keys

#[test]
fn keygen_writes_a_private_key_0600_and_refuses_to_overwrite() {
    use std::os::unix::fs::PermissionsExt as _;
    let sb = Sandbox::new();
    let (key, id) = sb.keygen("k");
    let mode = std::fs::metadata(&key).expect("key").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let private = std::fs::read_to_string(&key).expect("read");
    assert!(
        private.starts_with("-----BEGIN PRIVATE KEY-----"),
        "{private}"
    );
    let public = std::fs::read_to_string(sb.path().join("k.pem.pub")).expect("pub");
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"), "{public}");
    assert_eq!(id.len(), 22, "key id is 128 bits base64url: {id}");

    sb.assert_error(["keygen", "-o", s(&key)], 9, "already exists");
    assert_eq!(
        std::fs::read_to_string(&key).expect("read"),
        private,
        "untouched"
    );
}

#[test]
fn malformed_or_exposed_key_is_reported_naming_the_file() {
    use std::os::unix::fs::PermissionsExt as _;
    let sb = Sandbox::new();
    let receipt = sb.write_receipt("receipt.json", SEED);
    let bad = sb.path().join("bad.pem");
    std::fs::write(
        &bad,
        "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n",
    )
    .expect("write");
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    sb.send(s(&receipt), "http://127.0.0.1:9/", s(&bad), &[])
        .assert_error(9, s(&bad));
    assert!(sb.outbox_files().is_empty(), "a key error queues nothing");

    let (key, _) = sb.keygen("open");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = sb.send(s(&receipt), "http://127.0.0.1:9/", s(&key), &["--dry-run"]);
    assert!(out.success(), "{}", out.stderr);
    assert!(
        out.stderr.contains("warning: private key") && out.stderr.contains("chmod 600"),
        "{}",
        out.stderr
    );
}

// ------------------------------------------------------------------ delivery

#[test]
fn dry_run_prints_the_exact_request_and_signature_base() {
    let sb = Sandbox::new();
    let (key, id, receipt) = key_and_receipt(&sb);
    let out = sb.send(
        s(&receipt),
        "https://registry.example/hooks/spawn?team=core",
        s(&key),
        &["--dry-run"],
    );
    assert!(out.success(), "{}", out.stderr);
    let text = out.stdout;
    for needle in [
        "POST /hooks/spawn?team=core HTTP/1.1\n",
        "Host: registry.example\n",
        "Content-Type: application/json\n",
        "Content-Digest: sha-256=:",
        &format!("Idempotency-Key: {}\n", root()),
        "Signature-Input: spawn=(\"@method\" \"@authority\" \"@path\" \"@query\" \"content-type\" \"content-digest\");created=",
        &format!(";keyid=\"{id}\";alg=\"ed25519\";tag=\"spawn-elite\"\n"),
        "Signature: spawn=:",
        "\"@method\": POST\n\"@authority\": registry.example\n\"@path\": /hooks/spawn\n\"@query\": ?team=core\n\"content-type\": application/json\n\"content-digest\": sha-256=:",
        "\"@signature-params\": (\"@method\"",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    let sb = Sandbox::new();
    let (key, _, receipt) = key_and_receipt(&sb);
    sb.send(s(&receipt), "http://registry.example/hook", s(&key), &[])
        .assert_error(2, "--allow-insecure-http");
    assert!(sb.outbox_files().is_empty());
}

#[test]
fn delivered_to_the_receiver_and_logged_once() {
    let sb = Sandbox::new();
    let (key, id, receipt) = trusted_key_and_receipt(&sb);
    let rx = sb.receiver("127.0.0.1:0");
    let url = rx.url("/hooks/spawn");
    let out = sb.send(s(&receipt), &url, s(&key), &[]);
    assert!(out.success(), "{}", out.stderr);
    assert!(
        out.stdout.contains("callback delivered") && out.stdout.contains("1 attempt"),
        "{}",
        out.stdout
    );
    // The same receipt again: accepted as a duplicate, not logged twice.
    let out = sb.send(s(&receipt), &url, s(&key), &[]);
    assert!(out.success(), "{}", out.stderr);
    let (clean, log) = rx.stop();
    assert!(clean, "receiver stops cleanly on SIGTERM: {log}");
    let lines = sb.log_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["idempotency_key"], root().as_str());
    assert_eq!(lines[0]["keyid"], id.as_str());
    assert_eq!(lines[0]["receipt"]["merkle_root"], root().as_str());
    assert!(sb.outbox_files().is_empty());
}

#[test]
fn two_server_errors_then_success_is_three_attempts_and_one_logged_receipt() {
    let sb = Sandbox::new();
    let (key, _, receipt) = trusted_key_and_receipt(&sb);
    // The scripted server stands in front of the receiver like a proxy:
    // the request is signed for the proxy's address, the receiver's
    // --public-url.
    let port = free_port();
    let flaky = Flaky::start(vec![
        Step::Status(500, vec![]),
        Step::Status(500, vec![]),
        Step::Forward(([127, 0, 0, 1], port).into()),
    ]);
    let rx = sb.receiver_with(
        &format!("127.0.0.1:{port}"),
        &["--public-url", &flaky.url("")],
    );
    let out = sb.send(s(&receipt), &flaky.url("/hook"), s(&key), &[]);
    assert!(out.success(), "{}", out.stderr);
    assert!(out.stdout.contains("3 attempts"), "{}", out.stdout);
    assert_eq!(
        out.stderr.matches("retrying in").count(),
        2,
        "{}",
        out.stderr
    );
    let seen = flaky.requests();
    assert_eq!(seen.len(), 3, "exactly three attempts");
    // Same Idempotency-Key every time, but a fresh signature each attempt.
    let inputs: Vec<String> = seen
        .iter()
        .map(|r| r.header("signature-input").expect("signed"))
        .collect();
    for r in &seen {
        assert_eq!(
            r.header("idempotency-key").as_deref(),
            Some(root().as_str())
        );
        assert_eq!(r.body, receipt_json(SEED).as_bytes());
    }
    assert_ne!(inputs[0], inputs[1]);
    assert_ne!(inputs[1], inputs[2]);
    drop(flaky);
    rx.stop();
    assert_eq!(sb.log_lines().len(), 1);
    assert!(sb.outbox_files().is_empty());
}

#[test]
fn a_400_is_not_retried_and_the_receipt_is_queued() {
    let sb = Sandbox::new();
    let (key, _, receipt) = key_and_receipt(&sb);
    let flaky = Flaky::start(vec![Step::Status(400, vec![]), Step::Status(204, vec![])]);
    let out = sb.send(s(&receipt), &flaky.url("/hook"), s(&key), &[]);
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert_eq!(flaky.requests().len(), 1, "no retry after 400");
    assert!(out.stderr.contains("HTTP 400"), "{}", out.stderr);
    assert_eq!(sb.outbox_files().len(), 1);
}

#[test]
fn a_429_is_retried_after_its_retry_after_and_a_long_one_is_queued() {
    let sb = Sandbox::new();
    let (key, _, receipt) = key_and_receipt(&sb);
    let flaky = Flaky::start(vec![
        Step::Status(429, vec![("Retry-After".into(), "0".into())]),
        Step::Status(204, vec![]),
    ]);
    let out = sb.send(s(&receipt), &flaky.url("/hook"), s(&key), &[]);
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(flaky.requests().len(), 2);
    drop(flaky);

    // Retry-After beyond --max-backoff (200ms here): queued, not hammered.
    let flaky = Flaky::start(vec![
        Step::Status(503, vec![("Retry-After".into(), "3600".into())]),
        Step::Status(204, vec![]),
    ]);
    let out = sb.send(s(&receipt), &flaky.url("/hook"), s(&key), &[]);
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert_eq!(flaky.requests().len(), 1);
    assert!(out.stderr.contains("retry after 3600s"), "{}", out.stderr);
}

#[test]
fn server_down_queues_in_the_outbox_and_flush_delivers_later() {
    let sb = Sandbox::new();
    let (key, _, receipt) = trusted_key_and_receipt(&sb);
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let out = sb.send(s(&receipt), &url, s(&key), &["--attempts", "2"]);
    assert_eq!(out.code, 7, "{}", out.stderr);
    let err = out.stderr;
    assert!(
        err.contains("queued in") && err.contains("spawn-elite callback flush"),
        "{err}"
    );
    let queued = sb.outbox_files();
    assert_eq!(queued.len(), 1);
    let entry: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&queued[0]).expect("read")).expect("json");
    assert_eq!(entry["url"], url.as_str());
    assert_eq!(entry["idempotency_key"], root().as_str());

    // Still down: flush keeps it and says so.
    let out = sb.run(["callback", "flush", "--attempts", "1"]);
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert_eq!(sb.outbox_files().len(), 1);

    // The registry comes up on that port: flush delivers and empties the outbox.
    let rx = sb.receiver(&format!("127.0.0.1:{port}"));
    let out = sb.run(["callback", "flush"]);
    assert!(out.success(), "{}", out.stderr);
    assert!(
        out.stdout.contains("1 delivered, 0 still queued"),
        "{}",
        out.stdout
    );
    assert!(sb.outbox_files().is_empty());
    rx.stop();
    let lines = sb.log_lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["receipt"]["merkle_root"], root().as_str());
}

#[test]
fn a_server_that_never_answers_hits_the_timeout() {
    let sb = Sandbox::new();
    let (key, _, receipt) = key_and_receipt(&sb);
    let flaky = Flaky::start(vec![Step::Hang]);
    let started = Instant::now();
    let out = sb.send(
        s(&receipt),
        &flaky.url("/hook"),
        s(&key),
        &["--callback-timeout", "300ms", "--attempts", "2"],
    );
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(out.stderr.contains("timed out"), "{}", out.stderr);
    assert_eq!(flaky.requests().len(), 2);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the timeout bounds the wait"
    );
    assert_eq!(sb.outbox_files().len(), 1);
}

// ------------------------------------------------------------------ receiver verdicts

#[test]
fn receiver_rejects_tampering_unknown_keys_replays_and_stale_signatures() {
    let sb = Sandbox::new();
    let (key_path, id) = sb.trusted_key("k");
    let (other_path, other_id) = sb.keygen("stranger");
    let key = load_key(&key_path);
    let stranger = load_key(&other_path);
    let rx = sb.receiver_with("127.0.0.1:0", &["--max-body", "4096"]);
    let a = rx.addr;
    let body = receipt_json(SEED).into_bytes();
    let now = unix_now();
    let sign = |nonce: &str, created: i64| {
        hand_signed(a, "/hook", &body, &root(), &key, &id, created, nonce)
    };

    // Tampered body: same signed headers, one byte changed.
    let mut t = sign("n-body", now);
    t.body = receipt_json("tampered").into_bytes();
    assert_eq!(t.send(a).0, 401, "tampered body");

    // Tampered header: a covered header changed after signing.
    let mut t = sign("n-header", now);
    t.set_header("Content-Type", "text/plain");
    assert_eq!(t.send(a).0, 401, "tampered header");

    // Unknown key.
    let t = hand_signed(
        a,
        "/hook",
        &body,
        &root(),
        &stranger,
        &other_id,
        now,
        "n-unknown",
    );
    let (status, msg) = t.send(a);
    assert_eq!(status, 401, "unknown key: {msg}");
    assert!(msg.contains("unknown key id"), "{msg}");

    // Stale and future `created`.
    assert_eq!(sign("n-stale", now - 400).send(a).0, 401, "stale created");
    assert_eq!(
        sign("n-future", now + 400).send(a).0,
        401,
        "created in the future"
    );

    // Malformed signature fields, missing headers.
    let mut t = sign("n-malformed", now);
    t.set_header("Signature-Input", "spawn=(\"@method\"");
    assert_eq!(t.send(a).0, 400, "malformed Signature-Input");
    let mut t = sign("n-missing", now);
    t.remove_header("Content-Digest");
    assert_eq!(t.send(a).0, 400, "missing Content-Digest");

    // Too large.
    let big = format!(
        "{{\"merkle_root\":\"{}\",\"pad\":\"{}\"}}",
        root(),
        "x".repeat(5000)
    );
    let t = hand_signed(a, "/hook", big.as_bytes(), &root(), &key, &id, now, "n-big");
    assert_eq!(t.send(a).0, 413, "body over --max-body");

    // Nothing so far was logged.
    assert!(sb.log_lines().is_empty());

    // A good one, then the very same request again: replay.
    let good = sign("n-good", now);
    assert_eq!(good.send(a).0, 204);
    assert_eq!(good.send(a).0, 409, "replayed nonce");
    // A fresh signature for the same receipt: idempotent success.
    assert_eq!(sign("n-again", now).send(a).0, 204);

    let (clean, _) = rx.stop();
    assert!(clean);
    assert_eq!(sb.log_lines().len(), 1);
}

#[test]
fn receiver_log_is_hash_chained_and_survives_a_restart() {
    let sb = Sandbox::new();
    let (key_path, id) = sb.trusted_key("k");
    let key = load_key(&key_path);
    let roots = ["aa11", "bb22", "cc33"];
    for (i, root) in roots.iter().enumerate() {
        let rx = sb.receiver("127.0.0.1:0");
        let body = receipt_json(root).into_bytes();
        let t = hand_signed(
            rx.addr,
            "/",
            &body,
            &root_for(root),
            &key,
            &id,
            unix_now(),
            &format!("n{i}"),
        );
        assert_eq!(t.send(rx.addr).0, 204);
        // Restarted receivers still know what they accepted.
        if i > 0 {
            let body = receipt_json(roots[0]).into_bytes();
            let t = hand_signed(
                rx.addr,
                "/",
                &body,
                &root_for(roots[0]),
                &key,
                &id,
                unix_now(),
                &format!("d{i}"),
            );
            assert_eq!(t.send(rx.addr).0, 204);
        }
        rx.stop();
    }
    let text = std::fs::read_to_string(sb.log()).expect("log");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    let mut prev = "0".repeat(64);
    for (line, root) in lines.iter().zip(roots) {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        assert_eq!(v["prev"], prev.as_str());
        assert_eq!(v["idempotency_key"], root_for(root).as_str());
        prev = blake3::hash(line.as_bytes()).to_hex().to_string();
    }

    // A broken chain is refused at start, naming the file.
    let broken = text.replacen(&root_for("aa11"), &root_for("aa12"), 2);
    std::fs::write(
        sb.log(),
        broken.replacen(&"0".repeat(64), &"1".repeat(64), 1),
    )
    .expect("write");
    let out = sb.run([
        "receive",
        "--listen",
        "127.0.0.1:0",
        "--trust",
        s(&sb.trust()),
        "--log",
        s(&sb.log()),
    ]);
    assert!(!out.success());
    assert!(out.stderr.contains("broken at line 1"), "{}", out.stderr);
}

#[test]
fn flush_removes_only_what_was_delivered() {
    let sb = Sandbox::new();
    let (key, _) = sb.trusted_key("k");
    let dead = format!("http://127.0.0.1:{}/hook", free_port());
    let first = sb.write_receipt("a.json", "root-a");
    let second = sb.write_receipt("b.json", "root-b");
    for receipt in [&first, &second] {
        let out = sb.send(s(receipt), &dead, s(&key), &["--attempts", "1"]);
        assert_eq!(out.code, 7, "{}", out.stderr);
    }
    let queued = sb.outbox_files();
    assert_eq!(queued.len(), 2);

    // Point the first entry at a live receiver; the second stays dead.
    let rx = sb.receiver("127.0.0.1:0");
    let mut entry: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&queued[0]).expect("read")).expect("json");
    let live_for = entry["idempotency_key"].as_str().expect("key").to_owned();
    entry["url"] = serde_json::Value::String(rx.url("/hook"));
    std::fs::write(&queued[0], serde_json::to_vec(&entry).expect("json")).expect("write");

    let out = sb.run(["callback", "flush", "--attempts", "1"]);
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(
        out.stdout.contains("1 delivered, 1 still queued"),
        "{}",
        out.stdout
    );
    assert_eq!(sb.outbox_files(), vec![queued[1].clone()]);
    rx.stop();
    let lines = sb.log_lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["idempotency_key"], live_for.as_str());
}

#[test]
fn a_key_trusted_while_the_receiver_runs_is_picked_up() {
    let sb = Sandbox::new();
    let rx = sb.receiver("127.0.0.1:0");
    let (key_path, id) = sb.keygen("late");
    let key = load_key(&key_path);
    let body = receipt_json(SEED).into_bytes();
    let req = |nonce: &str| hand_signed(rx.addr, "/", &body, &root(), &key, &id, unix_now(), nonce);
    assert_eq!(req("n1").send(rx.addr).0, 401, "not trusted yet");
    std::fs::copy(sb.path().join("late.pem.pub"), sb.trust().join("late.pub")).expect("trust it");
    assert_eq!(req("n2").send(rx.addr).0, 204, "trusted now");
    rx.stop();
}

// ------------------------------------------------------------------ spawn --callback

fn spawn_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["svc", "--out-dir", out, "--no-git", "--no-ledger"];
    v.extend_from_slice(extra);
    v
}

/// `spawn --dry-run --callback URL --key KEY` into `out`, which succeeds.
fn dry_run_with_callback(
    sb: &Sandbox,
    out: &std::path::Path,
    url: &str,
    key: &std::path::Path,
) -> Outcome {
    let run = sb.run(spawn_args(
        s(out),
        &["--dry-run", "--callback", url, "--key", s(key)],
    ));
    assert!(run.success(), "{}", run.stderr);
    run
}

fn receipt_of(repo: &std::path::Path) -> (Vec<u8>, String) {
    let bytes = std::fs::read(repo.join(".spawn-elite/receipt.json")).expect("receipt");
    let v: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    let root = v["merkle_root"].as_str().expect("merkle_root").to_owned();
    (bytes, root)
}

#[test]
fn spawn_with_callback_delivers_its_receipt() {
    let sb = Sandbox::new();
    let (key, _) = sb.trusted_key("k");
    let rx = sb.receiver("127.0.0.1:0");
    let url = rx.url("/hooks/spawn");
    let repos = sb.path().join("repos");
    let out = sb.run(spawn_args(
        s(&repos),
        &["--callback", &url, "--key", s(&key)],
    ));
    assert!(out.success(), "{}", out.stderr);
    assert!(out.stderr.contains("callback delivered"), "{}", out.stderr);
    rx.stop();
    let (_, root) = receipt_of(&repos.join("svc"));
    let lines = sb.log_lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["idempotency_key"], root.as_str());
    assert_eq!(lines[0]["receipt"]["merkle_root"], root.as_str());
    // The receiver's real log reads with `ledger verify|list --file`.
    let out = sb.run(["ledger", "verify", "--file", s(&sb.log())]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("ok: log ") && out.stdout.contains(&format!("(last root {root})")),
        "{}",
        out.stdout
    );
    let out = sb.run(["ledger", "list", "--file", s(&sb.log())]);
    let row = out.stdout.lines().nth(1).unwrap_or_default();
    assert!(
        row.contains(" service  svc ") && row.contains(&root[..16]),
        "{}",
        out.stdout
    );
}

#[test]
fn spawn_with_callback_to_a_down_server_succeeds_with_exit_7_and_flush_delivers() {
    let sb = Sandbox::new();
    let (key, _) = sb.trusted_key("k");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hooks/spawn");
    let repos = sb.path().join("repos");
    let out = sb.run(spawn_args(
        s(&repos),
        &[
            "--callback",
            &url,
            "--key",
            s(&key),
            "--attempts",
            "2",
            "--json",
        ],
    ));
    assert_eq!(out.code, 7, "{}", out.stderr);
    let err = out.stderr;
    assert!(err.contains("spawn-elite callback flush"), "{err}");
    let (receipt, root) = receipt_of(&repos.join("svc"));
    let queued = sb.outbox_files();
    assert_eq!(queued.len(), 1);
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).expect("one JSON object");
    assert_eq!(summary["callback"]["outcome"], "queued");
    assert_eq!(summary["callback"]["outbox_file"], s(&queued[0]));
    assert_eq!(summary["receipt"]["merkle_root"], root.as_str());

    let rx = sb.receiver(&format!("127.0.0.1:{port}"));
    let out = sb.run(["callback", "flush"]);
    assert!(out.success(), "{}", out.stderr);
    assert!(sb.outbox_files().is_empty());
    rx.stop();
    let lines = sb.log_lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["idempotency_key"], root.as_str());
    assert_eq!(
        lines[0]["content_digest"],
        crate::support::httpsig::content_digest(&receipt).as_str(),
        "the receipt was sent byte for byte"
    );
}

#[test]
fn spawn_dry_run_with_callback_prints_the_request_and_sends_nothing() {
    let sb = Sandbox::new();
    let (key, _) = sb.keygen("k");
    let flaky = Flaky::start(vec![Step::Status(204, vec![])]);
    let repos = sb.path().join("repos");
    let out = dry_run_with_callback(&sb, &repos, &flaky.url("/hook"), &key);
    let text = out.stdout;
    assert!(text.contains("POST /hook HTTP/1.1"), "{text}");
    assert!(text.contains("--- signature base ---"), "{text}");
    assert!(text.contains("Idempotency-Key: "), "{text}");
    assert!(flaky.requests().is_empty(), "nothing sent");
    assert!(!repos.join("svc").exists(), "nothing written");
}

#[test]
fn spawn_with_a_missing_key_fails_with_exit_9_before_writing_anything() {
    let sb = Sandbox::new();
    let repos = sb.path().join("repos");
    let missing = sb.path().join("nope.pem");
    sb.assert_error(
        spawn_args(
            s(&repos),
            &["--callback", "http://127.0.0.1:9/", "--key", s(&missing)],
        ),
        9,
        s(&missing),
    );
    assert!(!repos.join("svc").exists());
}

/// Ctrl-C ends the command (exit 130, as while the request is in flight:
/// see reliability_callback.rs); the callback stays queued.
#[test]
fn ctrl_c_while_waiting_to_retry_queues_the_callback_at_once() {
    use std::io::{BufRead, BufReader};
    let sb = Sandbox::new();
    let (key, _) = sb.trusted_key("k");
    let url = format!("http://127.0.0.1:{}/hooks/spawn", free_port());
    let repos = sb.path().join("repos");
    let args = spawn_args(
        s(&repos),
        &[
            "--callback",
            &url,
            "--key",
            s(&key),
            "--attempts",
            "3",
            "--backoff",
            "60s",
            "--max-backoff",
            "60s",
        ],
    );
    let mut child = sb
        .process()
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start spawn-elite");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    // The first attempt fails at once (nothing listens); wait for the retry notice.
    let notice = lines
        .by_ref()
        .take(20)
        .map_while(Result::ok)
        .find(|l| l.contains("retrying in"));
    assert!(notice.is_some(), "no retry notice");
    let started = Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("wait");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "Ctrl-C did not cut the 60 s backoff short"
    );
    assert_eq!(status.code(), Some(130), "{rest:?}");
    assert!(
        rest.iter()
            .any(|l| l.contains("interrupted") && l.contains("queued in")),
        "{rest:?}"
    );
    assert_eq!(
        sb.outbox_files().len(),
        1,
        "the callback waits in the outbox"
    );
    assert!(repos.join("svc/.spawn-elite/receipt.json").is_file());
}

// ------------------------------------------------------------------ new-user review fixes

/// A real tree, its receipt (`spawn-elite receipt`) and a proof for one file
/// (`spawn-elite prove`): the proof carries the same merkle_root.
fn receipt_and_proof(sb: &Sandbox) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let tree = sb.path().join("tree");
    std::fs::create_dir_all(&tree).expect("tree");
    std::fs::write(tree.join("main.py"), "print('hi')\n").expect("write");
    std::fs::write(tree.join("README.md"), "# tree\n").expect("write");
    let receipt = sb.path().join("r.json");
    let out = sb.run(["receipt", s(&tree), "-o", s(&receipt)]);
    assert!(out.success(), "{}", out.stderr);
    let out = sb.run(["prove", s(&tree), "main.py", "--receipt", s(&receipt)]);
    assert!(out.success(), "{}", out.stderr);
    let proof = sb.path().join("p.json");
    std::fs::write(&proof, &out.stdout).expect("write proof");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&receipt).expect("read")).expect("json");
    let root = v["merkle_root"].as_str().expect("root").to_owned();
    (receipt, proof, root)
}

#[test]
fn a_proof_is_refused_by_send_and_by_the_receiver_and_the_real_receipt_is_logged() {
    let sb = Sandbox::new();
    let (key_path, id) = sb.trusted_key("k");
    let (receipt, proof, root) = receipt_and_proof(&sb);
    let proof_bytes = std::fs::read(&proof).expect("read proof");
    assert!(
        String::from_utf8_lossy(&proof_bytes).contains("spawn-elite.proof/v1")
            && String::from_utf8_lossy(&proof_bytes).contains(&root),
        "the proof carries the repo's root"
    );
    let rx = sb.receiver("127.0.0.1:0");
    let url = rx.url("/hooks/spawn");

    // `callback send` with the proof: exit 6, nothing sent, nothing queued.
    let out = sb.send(s(&proof), &url, s(&key_path), &[]);
    out.assert_error(6, "not a spawn-elite receipt");
    let err = out.stderr;
    assert!(
        err.contains(s(&proof)) && err.contains("\"spawn-elite.proof/v1\""),
        "{err}"
    );
    assert!(sb.outbox_files().is_empty());

    // Posted anyway, correctly signed, with the root as Idempotency-Key: 400.
    let key = load_key(&key_path);
    let t = hand_signed(
        rx.addr,
        "/hooks/spawn",
        &proof_bytes,
        &root,
        &key,
        &id,
        unix_now(),
        "n-proof",
    );
    let (status, msg) = t.send(rx.addr);
    assert_eq!(status, 400, "{msg}");
    assert!(msg.contains("not a spawn-elite receipt"), "{msg}");

    // Any other JSON with a merkle_root: 400 too.
    let other = format!("{{\"merkle_root\":\"{root}\",\"files\":[]}}");
    let t = hand_signed(
        rx.addr,
        "/hooks/spawn",
        other.as_bytes(),
        &root,
        &key,
        &id,
        unix_now(),
        "n-other",
    );
    assert_eq!(t.send(rx.addr).0, 400);

    // A valid receipt under another Idempotency-Key: 400, naming both.
    let body = std::fs::read(&receipt).expect("read");
    let wrong = root_for("someone else");
    let t = hand_signed(
        rx.addr,
        "/hooks/spawn",
        &body,
        &wrong,
        &key,
        &id,
        unix_now(),
        "n-mismatch",
    );
    let (status, msg) = t.send(rx.addr);
    assert_eq!(status, 400, "{msg}");
    assert!(msg.contains(&wrong) && msg.contains(&root), "{msg}");
    assert!(sb.log_lines().is_empty(), "nothing logged so far");

    // The real receipt is then accepted and logged: nothing took its key.
    let out = sb.send(s(&receipt), &url, s(&key_path), &[]);
    assert!(out.success(), "{}", out.stderr);
    rx.stop();
    let lines = sb.log_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["idempotency_key"], root.as_str());
    assert_eq!(lines[0]["receipt"]["format"], "spawn-elite.receipt/v1");
}

#[test]
fn quiet_spawn_prints_no_retry_notices_but_still_the_queued_warning() {
    let sb = Sandbox::new();
    let (key, _) = sb.keygen("k");
    let url = format!("http://127.0.0.1:{}/hooks/spawn", free_port());
    let repos = sb.path().join("repos");
    let cb = ["--callback", &url, "--key", s(&key), "--attempts", "3"];
    let mut args = spawn_args(s(&repos), &cb);
    args.push("-q");
    let out = sb.run(&args);
    assert_eq!(out.code, 7, "{}", out.stderr);
    let err = out.stderr;
    assert!(!err.contains("retrying"), "quiet: {err}");
    assert!(!err.contains("callback attempt"), "quiet: {err}");
    assert_eq!(err.lines().count(), 1, "only the warning: {err}");
    assert!(
        err.starts_with("warning: callback to ")
            && err.contains("gave up after 3 attempts")
            && err.contains("spawn-elite callback flush"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);

    // Without -q the same spawn says what it is doing.
    let repos = sb.path().join("repos2");
    let out = sb.run(spawn_args(s(&repos), &cb));
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert_eq!(out.stderr.matches("retrying in").count(), 2);
}

#[test]
fn a_world_readable_key_is_warned_about_once_per_spawn() {
    use std::os::unix::fs::PermissionsExt as _;
    let sb = Sandbox::new();
    let (key, _) = sb.trusted_key("k");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let rx = sb.receiver("127.0.0.1:0");
    let repos = sb.path().join("repos");
    let out = sb.run(spawn_args(
        s(&repos),
        &["--callback", &rx.url("/hook"), "--key", s(&key)],
    ));
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(out.stderr.matches("chmod 600").count(), 1, "{}", out.stderr);

    let out = dry_run_with_callback(&sb, &sb.path().join("dry"), &rx.url("/hook"), &key);
    assert_eq!(out.stderr.matches("chmod 600").count(), 1, "{}", out.stderr);
    rx.stop();
}

#[test]
fn a_public_key_or_a_text_file_as_key_says_what_to_pass_instead() {
    let sb = Sandbox::new();
    let (key, _) = sb.keygen("k");
    let public = sb.path().join("k.pem.pub");
    let receipt = sb.write_receipt("receipt.json", SEED);

    let out = sb.send(s(&receipt), "http://127.0.0.1:9/", s(&public), &[]);
    assert_eq!(out.code, 9, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        format!(
            "error: {} is a public key; pass the private key ({}) to --key\n",
            public.display(),
            key.display()
        )
    );

    let text = sb.path().join("notes.txt");
    std::fs::write(&text, "just some notes\n").expect("write");
    let repos = sb.path().join("repos");
    let out = sb.run(spawn_args(
        s(&repos),
        &["--callback", "http://127.0.0.1:9/", "--key", s(&text)],
    ));
    assert_eq!(out.code, 9, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        format!(
            "error: no PEM private key found in {0}; create a key with `spawn-elite keygen -o NEW.pem` and pass that\n",
            text.display()
        )
    );
    assert!(!repos.join("svc").exists());
}

/// Queue one callback that the receiver rejects with 401 (unknown key).
fn queue_a_rejected_callback(
    sb: &Sandbox,
) -> (std::path::PathBuf, std::path::PathBuf, ReceiverLike) {
    let (key, _) = sb.keygen("untrusted");
    let receipt = sb.write_receipt("receipt.json", SEED);
    let rx = sb.receiver("127.0.0.1:0");
    let out = sb.send(s(&receipt), &rx.url("/hook"), s(&key), &[]);
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(out.stderr.contains("HTTP 401"), "{}", out.stderr);
    let queued = sb.outbox_files();
    assert_eq!(queued.len(), 1);
    (queued[0].clone(), receipt, rx)
}

type ReceiverLike = crate::support::ReceiverProc;

#[test]
fn rejected_entries_are_named_by_flush_listed_and_dropped_with_the_receipt_kept() {
    let sb = Sandbox::new();
    let (entry, receipt, rx) = queue_a_rejected_callback(&sb);
    let url = rx.url("/hook");

    let out = sb.run(["callback", "flush"]);
    assert_eq!(out.code, 7, "{}", out.stderr);
    let err = out.stderr;
    assert!(
        err.contains(&format!("rejected {}: HTTP 401", entry.display()))
            && err.contains(&format!("spawn-elite callback drop {}", entry.display())),
        "{err}"
    );
    assert!(
        out.stdout
            .contains("0 delivered, 1 still queued (1 rejected"),
        "{}",
        out.stdout
    );

    let out = sb.run(["callback", "list"]);
    assert!(out.success(), "{}", out.stderr);
    let text = out.stdout;
    for needle in [
        format!("{}\n", entry.display()),
        format!("  url:       {url}\n"),
        format!("  root:      {}\n", root()),
        format!("  receipt:   {}\n", receipt.display()),
        "  attempts:  2\n".to_owned(),
        "  last:      HTTP 401: unknown key id".to_owned(),
        "(permanent: retrying will not help".to_owned(),
        "1 queued (1 failing permanently)".to_owned(),
        "spawn-elite callback drop FILE".to_owned(),
    ] {
        assert!(text.contains(&needle), "missing {needle:?} in\n{text}");
    }

    // Only files in the outbox can be dropped.
    sb.assert_error(["callback", "drop", s(&receipt)], 2, "is not in the outbox");
    assert!(receipt.is_file());

    // By file name: removed, and the receipt is where it was.
    let name = entry.file_name().expect("name").to_str().expect("utf8");
    let out = sb.run(["callback", "drop", name]);
    assert!(out.success(), "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!("dropped {}", entry.display()))
            && out
                .stdout
                .contains(&format!("the receipt is still at {}", receipt.display())),
        "{}",
        out.stdout
    );
    assert!(sb.outbox_files().is_empty());
    assert!(receipt.is_file());
    let out = sb.run(["callback", "list"]);
    assert!(out.stdout.contains("is empty"), "{}", out.stdout);
    let out = sb.run(["callback", "flush"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    rx.stop();
}

#[test]
fn dropping_an_entry_whose_receipt_is_gone_saves_the_receipt() {
    let sb = Sandbox::new();
    let (entry, receipt, rx) = queue_a_rejected_callback(&sb);
    rx.stop();
    let bytes = std::fs::read(&receipt).expect("read");
    std::fs::remove_file(&receipt).expect("rm");
    let out = sb.run(["callback", "drop", s(&entry)]);
    assert!(out.success(), "{}", out.stderr);
    let saved = sb
        .data()
        .join("spawn-elite/dropped")
        .join(entry.file_name().expect("name"));
    assert!(
        out.stdout
            .contains(&format!("so it was saved to {}", saved.display())),
        "{}",
        out.stdout
    );
    assert_eq!(std::fs::read(&saved).expect("saved"), bytes);
    assert!(sb.outbox_files().is_empty());
}

#[test]
fn flush_refuses_a_queued_entry_that_is_not_a_valid_receipt() {
    let sb = Sandbox::new();
    let (entry, _, rx) = queue_a_rejected_callback(&sb);
    let (_, proof, _) = receipt_and_proof(&sb);
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&entry).expect("read")).expect("json");
    use base64::Engine as _;
    v["receipt_base64"] = base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(&proof).expect("proof"))
        .into();
    std::fs::write(&entry, serde_json::to_vec(&v).expect("json")).expect("write");
    let out = sb.run(["callback", "flush"]);
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(
        out.stderr.contains("not a spawn-elite receipt") && out.stderr.contains("rejected "),
        "{}",
        out.stderr
    );
    let (_, log) = rx.stop();
    assert_eq!(
        log.matches("POST /hook").count(),
        1,
        "only the first 401 reached it: {log}"
    );
    assert_eq!(sb.outbox_files(), vec![entry], "kept, never lost");
}

#[test]
fn flush_help_offers_only_what_flush_uses() {
    let sb = Sandbox::new();
    let out = sb.run(["callback", "flush", "--help"]);
    assert!(out.success());
    let help = out.stdout;
    assert!(
        help.contains("--attempts") && help.contains("--backoff"),
        "{help}"
    );
    assert!(!help.contains("--ca-cert"), "{help}");
    assert!(!help.contains("--allow-insecure-http"), "{help}");
    let out = sb.run(["callback", "flush", "--allow-insecure-http"]);
    assert_eq!(out.code, 2);
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/CALLBACK.md"))
        .expect("doc");
    assert!(doc.contains("CA file and `--allow-insecure-http` come from the entry"));
}

#[test]
fn defaults_give_up_on_a_down_receiver_within_seconds() {
    let sb = Sandbox::new();
    let (key, _, receipt) = key_and_receipt(&sb);
    let mut cmd = sb.cmd();
    for var in [
        "SPAWN_ELITE_CALLBACK_CONNECT_TIMEOUT",
        "SPAWN_ELITE_CALLBACK_TIMEOUT",
        "SPAWN_ELITE_CALLBACK_ATTEMPTS",
        "SPAWN_ELITE_CALLBACK_BACKOFF",
        "SPAWN_ELITE_CALLBACK_MAX_BACKOFF",
    ] {
        cmd.env_remove(var);
    }
    let help = Outcome::of(cmd.args(["callback", "send", "--help"])).stdout;
    for default in ["[default: 5s]", "[default: 4]", "[default: 500ms]"] {
        assert!(help.contains(default), "missing {default} in {help}");
    }
    let mut cmd = sb.cmd();
    for var in [
        "SPAWN_ELITE_CALLBACK_ATTEMPTS",
        "SPAWN_ELITE_CALLBACK_BACKOFF",
        "SPAWN_ELITE_CALLBACK_MAX_BACKOFF",
    ] {
        cmd.env_remove(var);
    }
    let url = format!("http://127.0.0.1:{}/hook", free_port());
    let started = Instant::now();
    let out = Outcome::of(cmd.args(send_args(s(&receipt), &url, s(&key))));
    let took = started.elapsed();
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(
        out.stderr.contains("gave up after 4 attempts"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.matches("retrying in").count(), 3);
    // Waits of at most 0.5 + 1 + 2 s (documented worst case for a refused connection).
    assert!(took < Duration::from_millis(3500 + 2000), "took {took:?}");
}

#[test]
fn ssl_cert_file_does_not_show_up_as_a_required_flag_in_usage() {
    let sb = Sandbox::new();
    let out = Outcome::of(
        sb.cmd()
            .env("SSL_CERT_FILE", sb.path().join("ca.pem"))
            .args(["callback", "send", "--receipt", "r.json"]),
    );
    assert_eq!(out.code, 2);
    let err = out.stderr;
    assert!(
        err.contains(
            "Usage: spawn-elite callback send --receipt <FILE> --url <URL> --key <PATH>\n"
        ),
        "{err}"
    );
    assert!(!err.contains("--ca-cert"), "{err}");
    // The SPAWN_ELITE_CALLBACK_* overrides (set by Sandbox::process) are still
    // honoured, and a bad one is named.
    let (key, _, receipt) = key_and_receipt(&sb);
    let out = Outcome::of(
        sb.cmd()
            .env("SPAWN_ELITE_CALLBACK_ATTEMPTS", "0")
            .args(send_args(s(&receipt), "http://127.0.0.1:9/", s(&key))),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("environment variable SPAWN_ELITE_CALLBACK_ATTEMPTS: \"0\""),
        "{}",
        out.stderr
    );
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/CALLBACK.md"))
        .expect("doc");
    assert!(
        !doc.contains(".spawn/"),
        "the receipt lives in .spawn-elite/"
    );
}
