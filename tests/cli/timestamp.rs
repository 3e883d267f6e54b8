//! RFC 3161 timestamps of attestations (`--tsa`, `verify --tsa-cert`, the
//! outbox), against a real OpenSSL TSA on loopback (support/tsa.rs).

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::support::tsa::{Mode, TestTsa, have_openssl};
use crate::support::{Outcome, Sandbox, git};

const TOKEN: &str = ".spawn-elite/attestation.tst";
const ATTESTATION: &str = ".spawn-elite/attestation.intoto.json";

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

fn spawn(sb: &Sandbox, key: &Path, name: &str, tsa: &TestTsa) -> Outcome {
    sb.run([
        name,
        "--sign",
        "--key",
        s(key),
        "--tsa",
        &tsa.url(),
        "--out-dir",
        s(&sb.repos()),
        "--quiet",
    ])
}

/// The raw Ed25519 signature bytes of the repository's envelope, in a file.
fn signature_file(sb: &Sandbox, repo: &Path) -> PathBuf {
    let env: Value =
        serde_json::from_slice(&std::fs::read(repo.join(ATTESTATION)).expect("attestation"))
            .expect("JSON");
    let sig = STANDARD
        .decode(env["signatures"][0]["sig"].as_str().expect("sig"))
        .expect("base64");
    assert_eq!(sig.len(), 64);
    let at = sb.path().join("sig.bin");
    std::fs::write(&at, sig).expect("write sig");
    at
}

fn openssl_verifies(token: &Path, data: &Path, ca: &Path) -> (bool, String) {
    let out = Command::new("openssl")
        .args([
            "ts",
            "-verify",
            "-in",
            s(token),
            "-token_in",
            "-data",
            s(data),
        ])
        .args(["-CAfile", s(ca)])
        .output()
        .expect("openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn verify(sb: &Sandbox, repo: &Path, cert: &Path) -> Outcome {
    sb.run([
        "verify",
        s(repo),
        "--trust",
        s(&sb.trust()),
        "--tsa-cert",
        s(cert),
    ])
}

fn outbox_entries(sb: &Sandbox) -> Vec<PathBuf> {
    std::fs::read_dir(sb.outbox())
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

#[test]
fn a_stamped_spawn_commits_a_token_that_openssl_and_verify_accept() {
    if !have_openssl() {
        return;
    }
    let sb = Sandbox::new();
    let tsa = TestTsa::start(&sb.path().join("pki"), false);
    let (key, _) = sb.trusted_key("signer");
    let out = spawn(&sb, &key, "svc", &tsa);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let repo = sb.repos().join("svc");
    assert!(repo.join(TOKEN).is_file());
    assert!(
        git(&repo, &["ls-files"]).lines().any(|l| l == TOKEN),
        "the token is committed with the tree"
    );
    // OpenSSL itself accepts it: over the signature bytes, by the test CA.
    let sig = signature_file(&sb, &repo);
    let (ok, text) = openssl_verifies(&repo.join(TOKEN), &sig, &tsa.pki.ca);
    assert!(ok, "{text}");
    assert!(text.contains("Verification: OK"), "{text}");
    // And spawn-elite, with the CA or with the TSA's own certificate.
    for cert in [&tsa.pki.ca, &tsa.pki.tsa_cert] {
        let out = verify(&sb, &repo, cert);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(
            out.stdout.contains(
                "timestamped: .spawn-elite/attestation.tst by CN=Loopback Test TSA at 20"
            ),
            "{}",
            out.stdout
        );
    }
    let out = sb.run([
        "verify",
        s(&repo),
        "--trust",
        s(&sb.trust()),
        "--tsa-cert",
        s(&tsa.pki.ca),
        "--json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).expect("json");
    let ts = &v["signed"]["timestamp"];
    assert_eq!(ts["checked"], true);
    assert_eq!(ts["tsa"], "CN=Loopback Test TSA");
    assert_eq!(ts["policy"], "1.2.3.4.1");
    let time: jiff::Timestamp = ts["time"]
        .as_str()
        .expect("time")
        .parse()
        .expect("RFC 3339");
    let age = jiff::Timestamp::now().duration_since(time);
    assert!(age.as_secs() < 600, "the TSA's time is now: {time}");
}

#[test]
fn an_ecdsa_p256_tsa_is_accepted_too() {
    if !have_openssl() {
        return;
    }
    let sb = Sandbox::new();
    let tsa = TestTsa::start(&sb.path().join("pki"), true);
    let (key, _) = sb.trusted_key("signer");
    let out = spawn(&sb, &key, "svc", &tsa);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let repo = sb.repos().join("svc");
    let out = verify(&sb, &repo, &tsa.pki.ca);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let sig = signature_file(&sb, &repo);
    let (ok, text) = openssl_verifies(&repo.join(TOKEN), &sig, &tsa.pki.ca);
    assert!(ok, "{text}");
}

#[test]
fn a_token_is_present_but_unchecked_without_tsa_cert_and_foreign_with_another_ca() {
    if !have_openssl() {
        return;
    }
    let sb = Sandbox::new();
    let tsa = TestTsa::start(&sb.path().join("pki"), false);
    let (key, _) = sb.trusted_key("signer");
    assert_eq!(spawn(&sb, &key, "svc", &tsa).code, 0);
    let repo = sb.repos().join("svc");
    let out = sb.run(["verify", s(&repo), "--trust", s(&sb.trust())]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("is present but unchecked; pass --tsa-cert"),
        "{}",
        out.stdout
    );
    let out = verify(&sb, &repo, &tsa.other.ca);
    out.assert_error(17, "a foreign TSA");
}

#[test]
fn a_token_from_a_foreign_tsa_or_for_another_attestation_is_bad_timestamp() {
    if !have_openssl() {
        return;
    }
    let sb = Sandbox::new();
    let tsa = TestTsa::start(&sb.path().join("pki"), false);
    let (key, _) = sb.trusted_key("signer");
    // The foreign TSA's token is well-formed, so the spawn keeps it; only
    // the user's trust (--tsa-cert) can tell it is not their TSA's.
    tsa.set(Mode::Foreign);
    assert_eq!(spawn(&sb, &key, "foreign", &tsa).code, 0);
    let out = verify(&sb, &sb.repos().join("foreign"), &tsa.pki.ca);
    out.assert_error(17, "CN=Foreign Test TSA");
    // A good token, copied onto another repository's attestation.
    tsa.set(Mode::Good);
    assert_eq!(spawn(&sb, &key, "one", &tsa).code, 0);
    sb.spawn(&["two", "--sign", "--key", s(&key)]);
    let two = sb.repos().join("two");
    std::fs::copy(sb.repos().join("one").join(TOKEN), two.join(TOKEN)).expect("copy");
    let out = verify(&sb, &two, &tsa.pki.ca);
    out.assert_error(17, "it is for another imprint");
}

#[test]
fn a_tsa_answering_badly_fails_the_spawn_before_anything_is_written() {
    if !have_openssl() {
        return;
    }
    let sb = Sandbox::new();
    let tsa = TestTsa::start(&sb.path().join("pki"), false);
    let (key, _) = sb.trusted_key("signer");
    for (mode, needle) in [
        (Mode::Reject, "it refused the request (Rejection"),
        (Mode::Garbage, "not a TimeStampResp"),
        (Mode::OtherRequest, "it is for another imprint"),
    ] {
        tsa.set(mode);
        let out = spawn(&sb, &key, "svc", &tsa);
        out.assert_error(17, needle);
        assert!(
            out.stderr.contains("nothing was written"),
            "{mode:?}: {}",
            out.stderr
        );
        assert!(!sb.repos().join("svc").exists(), "{mode:?}: no repository");
        assert!(outbox_entries(&sb).is_empty(), "{mode:?}: nothing queued");
    }
}

#[test]
fn an_unreachable_tsa_queues_the_request_and_flush_writes_the_token() {
    if !have_openssl() {
        return;
    }
    let sb = Sandbox::new();
    let tsa = TestTsa::start(&sb.path().join("pki"), false);
    let (key, _) = sb.trusted_key("signer");
    for (mode, name, needle) in [
        (Mode::ServerError, "five", "answered HTTP 500"),
        (Mode::Hang, "slow", "did not answer in time"),
    ] {
        tsa.set(mode);
        let out = spawn(&sb, &key, name, &tsa);
        assert_eq!(out.code, 18, "{mode:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{}", out.stderr);
        assert!(
            out.stderr.contains("the timestamp request is queued in"),
            "{}",
            out.stderr
        );
        let repo = sb.repos().join(name);
        assert!(repo.join(ATTESTATION).is_file(), "signed all the same");
        assert!(!repo.join(TOKEN).exists());
    }
    assert_eq!(outbox_entries(&sb).len(), 2);
    let list = sb.run(["callback", "list"]);
    assert!(
        list.stdout.contains("timestamp: http://"),
        "{}",
        list.stdout
    );

    // Reachable again: flush sends both and writes the tokens.
    tsa.set(Mode::Good);
    let out = sb.run(["callback", "flush"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("2 timestamp(s) written, 0 still queued"),
        "{}",
        out.stdout
    );
    assert!(outbox_entries(&sb).is_empty());
    for name in ["five", "slow"] {
        let repo = sb.repos().join(name);
        let verified = verify(&sb, &repo, &tsa.pki.ca);
        assert_eq!(verified.code, 0, "{name}: {}", verified.stderr);
        assert!(
            verified.stdout.contains("timestamped:"),
            "{}",
            verified.stdout
        );
    }
}

#[test]
fn attest_with_tsa_stamps_an_existing_tree() {
    if !have_openssl() {
        return;
    }
    let sb = Sandbox::new();
    let tsa = TestTsa::start(&sb.path().join("pki"), false);
    let (key, _) = sb.trusted_key("signer");
    let repo = sb.spawn(&["svc"]);
    let out = sb.run(["attest", s(&repo), "--key", s(&key), "--tsa", &tsa.url()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("stamped by CN=Loopback Test TSA at"),
        "{}",
        out.stdout
    );
    assert_eq!(verify(&sb, &repo, &tsa.pki.ca).code, 0);
    assert_eq!(tsa.served(), 1);
}

#[test]
fn tsa_needs_sign_and_an_http_url() {
    let sb = Sandbox::new();
    sb.assert_error(
        ["svc", "--tsa", "http://127.0.0.1:9/"],
        2,
        "--tsa time-stamps the attestation, so it needs --sign",
    );
    let (key, _) = sb.trusted_key("signer");
    sb.assert_error(
        [
            "svc",
            "--sign",
            "--key",
            s(&key),
            "--tsa",
            "ftp://example.invalid/",
        ],
        2,
        "is not http:// or https://",
    );
    assert!(!sb.path().join("svc").exists());
}

#[test]
fn update_with_tsa_stamps_the_new_attestation_in_git_and_receipt_mode() {
    if !have_openssl() {
        return;
    }
    let sb = Sandbox::new();
    let tsa = TestTsa::start(&sb.path().join("pki"), false);
    let (key, _) = sb.trusted_key("signer");
    for git_mode in [true, false] {
        let name = if git_mode { "with-git" } else { "no-git" };
        let mut args = vec![name, "--sign", "--key", s(&key), "--tsa"];
        let url = tsa.url();
        args.push(&url);
        if !git_mode {
            args.push("--no-git");
        }
        let repo = sb.spawn(&args);
        let first = std::fs::read(repo.join(TOKEN)).expect("the spawn's token");
        let update = |port: &str| {
            sb.run([
                "update",
                s(&repo),
                "--set",
                port,
                "--sign",
                "--key",
                s(&key),
                "--tsa",
                &tsa.url(),
            ])
        };

        let out = update("port=9001");
        assert_eq!(out.code, 0, "{name}: {}", out.stderr);
        assert!(
            out.stdout
                .contains(&format!("timestamp: {TOKEN}, TSA time 20")),
            "{name}: {}",
            out.stdout
        );
        let token = std::fs::read(repo.join(TOKEN)).expect("a new token");
        assert_ne!(token, first, "{name}: the update's own token");
        if git_mode {
            assert!(
                git(&repo, &["ls-files"]).lines().any(|l| l == TOKEN),
                "committed with the update"
            );
            assert_eq!(git(&repo, &["status", "--porcelain"]), "", "{name}");
        }
        let sig = signature_file(&sb, &repo);
        let (ok, text) = openssl_verifies(&repo.join(TOKEN), &sig, &tsa.pki.ca);
        assert!(ok, "{name}: {text}");
        let verified = verify(&sb, &repo, &tsa.pki.ca);
        assert_eq!(verified.code, 0, "{name}: {}", verified.stderr);
        assert!(
            verified.stdout.contains("timestamped:"),
            "{}",
            verified.stdout
        );

        // The TSA down: signed, exit 18, the request queued; the old token
        // (of the attestation replaced) is not left beside the new one.
        tsa.set(Mode::ServerError);
        let out = update("port=9002");
        assert_eq!(out.code, 18, "{name}: {}", out.stderr);
        assert!(
            out.stderr.contains("the timestamp request is queued in"),
            "{}",
            out.stderr
        );
        assert!(!repo.join(TOKEN).exists(), "{name}: no stale token");
        assert_eq!(verify(&sb, &repo, &tsa.pki.ca).code, 0, "{name}");
        tsa.set(Mode::Good);
        let flushed = sb.run(["callback", "flush"]);
        assert_eq!(
            flushed.code, 0,
            "{name}: {}{}",
            flushed.stdout, flushed.stderr
        );
        assert!(outbox_entries(&sb).is_empty(), "{name}");
        let verified = verify(&sb, &repo, &tsa.pki.ca);
        assert_eq!(verified.code, 0, "{name}: {}", verified.stderr);
        assert!(
            verified.stdout.contains("timestamped:"),
            "{}",
            verified.stdout
        );
    }
}
