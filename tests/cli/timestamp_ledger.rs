//! `ledger anchor --tsa` and `ledger verify --tsa-cert`: RFC 3161 anchors of
//! a chain's head, kept in `LOG.anchors.jsonl`, against a real OpenSSL TSA
//! on loopback (support/tsa.rs).

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::support::Sandbox;
use crate::support::tsa::{Mode, TestTsa, have_openssl};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

fn ledger(sb: &Sandbox) -> PathBuf {
    sb.data().join("spawn-elite/ledger.jsonl")
}

fn anchors(log: &Path) -> Vec<Value> {
    let mut name = log.as_os_str().to_owned();
    name.push(".anchors.jsonl");
    std::fs::read_to_string(PathBuf::from(name))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("an anchor is JSON"))
        .collect()
}

#[test]
fn anchors_of_the_ledger_verify_as_it_grows_and_catch_a_rewritten_history() {
    if !have_openssl() {
        return;
    }
    let sb = Sandbox::new();
    let tsa = TestTsa::start(&sb.path().join("pki"), false);
    sb.spawn(&["one", "--no-git"]);
    sb.spawn(&["two", "--no-git"]);
    let out = sb.run(["ledger", "anchor", "--tsa", &tsa.url()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("at line 2 (head "), "{}", out.stdout);
    sb.spawn(&["three", "--no-git"]);
    let out = sb.run(["ledger", "anchor", "--tsa", &tsa.url()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    sb.spawn(&["four", "--no-git"]);

    let kept = anchors(&ledger(&sb));
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[0]["line"], 2);
    assert_eq!(kept[1]["line"], 3);
    // The head is the next line's prev: the chain's own hash of that line.
    let lines: Vec<Value> = std::fs::read_to_string(ledger(&sb))
        .expect("ledger")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(kept[0]["head"], lines[2]["prev"]);
    assert_eq!(kept[1]["head"], lines[3]["prev"]);

    // OpenSSL accepts the token over the head's 32 bytes.
    let head = kept[0]["head"].as_str().expect("head");
    let bytes: Vec<u8> = (0..64)
        .step_by(2)
        .map(|i| u8::from_str_radix(&head[i..i + 2], 16).expect("hex"))
        .collect();
    std::fs::write(sb.path().join("head.bin"), &bytes).expect("write");
    let token = STANDARD
        .decode(kept[0]["token"].as_str().expect("token"))
        .expect("base64");
    std::fs::write(sb.path().join("anchor.tst"), token).expect("write");
    let ok = Command::new("openssl")
        .args(["ts", "-verify", "-token_in", "-in"])
        .arg(sb.path().join("anchor.tst"))
        .arg("-data")
        .arg(sb.path().join("head.bin"))
        .arg("-CAfile")
        .arg(&tsa.pki.ca)
        .output()
        .expect("openssl");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let out = sb.run(["ledger", "verify", "--tsa-cert", s(&tsa.pki.ca)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for line in [2, 3] {
        assert!(
            out.stdout.contains(&format!(
                "anchored: every entry up to line {line} existed at 20"
            )),
            "{}",
            out.stdout
        );
    }
    let out = sb.run(["ledger", "verify"]);
    assert!(
        out.stdout.contains("present but unchecked"),
        "{}",
        out.stdout
    );
    // Another TSA's CA: not a timestamp the user trusts.
    sb.run(["ledger", "verify", "--tsa-cert", s(&tsa.other.ca)])
        .assert_error(17, "anchor 1 of");

    // History rewritten whole (a fresh, intact chain): the anchors say so.
    std::fs::remove_file(ledger(&sb)).expect("rm");
    for name in ["five", "six", "seven"] {
        sb.spawn(&[name, "--no-git"]);
    }
    assert_eq!(
        sb.run(["ledger", "verify"]).code,
        0,
        "the chain alone is intact"
    );
    sb.run(["ledger", "verify", "--tsa-cert", s(&tsa.pki.ca)])
        .assert_error(1, "line 2 (or one before it) changed since it was stamped");
    // Cut back to one line: lines were removed.
    let text = std::fs::read_to_string(ledger(&sb)).expect("ledger");
    let first = text.lines().next().expect("a line");
    std::fs::write(ledger(&sb), format!("{first}\n")).expect("write");
    sb.run(["ledger", "verify", "--tsa-cert", s(&tsa.pki.ca)])
        .assert_error(1, "lines were removed since");
}

#[test]
fn the_receivers_log_is_anchored_while_it_runs_and_a_bad_tsa_writes_nothing() {
    if !have_openssl() {
        return;
    }
    let sb = Sandbox::new();
    let tsa = TestTsa::start(&sb.path().join("pki"), false);
    let (key, _) = sb.trusted_key("k");
    let rx = sb.receiver("127.0.0.1:0");
    let url = rx.url("/hooks/spawn");
    sb.spawn(&["a", "--no-git", "--callback", &url, "--key", s(&key)]);
    let log = sb.log();
    for (mode, code, needle) in [
        (Mode::ServerError, 4, "answered HTTP 500"),
        (Mode::Reject, 17, "it refused the request"),
    ] {
        tsa.set(mode);
        let out = sb.run(["ledger", "anchor", "--tsa", &tsa.url(), "--file", s(&log)]);
        out.assert_error(code, needle);
        assert!(out.stderr.contains("nothing was written"), "{}", out.stderr);
        assert!(anchors(&log).is_empty(), "{mode:?}");
    }
    tsa.set(Mode::Good);
    let out = sb.run(["ledger", "anchor", "--tsa", &tsa.url(), "--file", s(&log)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("anchored log"), "{}", out.stdout);
    sb.spawn(&["b", "--no-git", "--callback", &url, "--key", s(&key)]);
    let (clean, rxlog) = rx.stop();
    assert!(clean, "{rxlog}");
    let out = sb.run([
        "ledger",
        "verify",
        "--file",
        s(&log),
        "--tsa-cert",
        s(&tsa.pki.ca),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("anchored: every entry up to line 1 existed at 20"),
        "{}",
        out.stdout
    );
    // An edited anchor (its head) no longer matches its token.
    let mut name = log.as_os_str().to_owned();
    name.push(".anchors.jsonl");
    let sidecar = PathBuf::from(name);
    let text = std::fs::read_to_string(&sidecar).expect("anchors");
    let head = anchors(&log)[0]["head"].as_str().expect("head").to_owned();
    // Another 32-byte hash: the first hex digit changed.
    let flipped = if head.starts_with('0') { "1" } else { "0" };
    let edited = text.replace(&head, &format!("{flipped}{}", &head[1..]));
    assert_ne!(edited, text);
    std::fs::write(&sidecar, edited).expect("write");
    sb.run([
        "ledger",
        "verify",
        "--file",
        s(&log),
        "--tsa-cert",
        s(&tsa.pki.ca),
    ])
    .assert_error(17, "is not a good timestamp of its head");
    assert_eq!(
        sb.run(["ledger", "anchor", "--file", s(&log)]).code,
        2,
        "no --tsa and no SPAWN_ELITE_TSA"
    );
}
