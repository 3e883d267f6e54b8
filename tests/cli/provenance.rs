//! Signed provenance: `--sign`, `attest` and `verify --trust`
//! (docs/PROVENANCE.md). The third-party check of the same files is
//! scripts/verify-provenance.sh, which CI runs.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::support::Sandbox;

const ATTESTATION: &str = ".spawn-elite/attestation.intoto.json";

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

fn envelope(repo: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(repo.join(ATTESTATION)).expect("attestation"))
        .expect("JSON")
}

fn statement(repo: &Path) -> Value {
    let payload = STANDARD
        .decode(envelope(repo)["payload"].as_str().expect("payload"))
        .expect("base64");
    serde_json::from_slice(&payload).expect("statement JSON")
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn verify(sb: &Sandbox, repo: &Path) -> crate::support::Outcome {
    sb.run(["verify", s(repo), "--trust", s(&sb.trust())])
}

#[test]
fn a_signed_spawn_verifies_and_names_every_file_by_sha256() {
    let sb = Sandbox::new();
    let (key, id) = sb.trusted_key("signer");
    let repo = sb.spawn(&["svc", "--sign", "--key", s(&key)]);
    let out = verify(&sb, &repo);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!("by key {id}")),
        "{}",
        out.stdout
    );

    let env = envelope(&repo);
    assert_eq!(env["payloadType"], "application/vnd.in-toto+json");
    assert_eq!(env["signatures"][0]["keyid"], id.as_str());
    let st = statement(&repo);
    assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(st["predicateType"], "https://slsa.dev/provenance/v1");
    let receipt: Value =
        serde_json::from_slice(&std::fs::read(repo.join(".spawn-elite/receipt.json")).unwrap())
            .unwrap();
    let subjects = st["subject"].as_array().expect("subjects");
    assert_eq!(subjects.len(), receipt["files"].as_array().unwrap().len());
    for subject in subjects {
        let name = subject["name"].as_str().unwrap();
        let bytes = std::fs::read(repo.join(name)).unwrap();
        assert_eq!(subject["digest"]["sha256"], sha256_hex(&bytes), "{name}");
    }
    let predicate = &st["predicate"];
    assert_eq!(
        predicate["buildDefinition"]["externalParameters"]["name"],
        "svc"
    );
    assert_eq!(
        predicate["runDetails"]["byproducts"][0]["annotations"]["merkle_root"],
        receipt["merkle_root"]
    );
    // The attestation is committed with the tree.
    let tracked = std::process::Command::new("git")
        .current_dir(&repo)
        .args(["ls-files", ATTESTATION])
        .output()
        .expect("git");
    assert_eq!(String::from_utf8_lossy(&tracked.stdout).trim(), ATTESTATION);
}

#[test]
fn verify_trust_tells_unsigned_unknown_key_bad_signature_and_changed_apart() {
    let sb = Sandbox::new();
    let (key, _) = sb.trusted_key("signer");
    let (stranger, _) = sb.keygen("stranger");

    let unsigned = sb.spawn(&["plain", "--no-git"]);
    let out = verify(&sb, &unsigned);
    out.assert_error(13, "is not signed");

    let foreign = sb.spawn(&["foreign", "--no-git", "--sign", "--key", s(&stranger)]);
    verify(&sb, &foreign).assert_error(15, "which is not in the trust directory");

    let signed = sb.spawn(&["signed", "--no-git", "--sign", "--key", s(&key)]);
    assert_eq!(verify(&sb, &signed).code, 0);

    // A changed payload: the signature no longer matches.
    let path = signed.join(ATTESTATION);
    let original = std::fs::read(&path).unwrap();
    let mut env = envelope(&signed);
    let mut st = statement(&signed);
    st["predicate"]["buildDefinition"]["externalParameters"]["name"] = "other".into();
    env["payload"] = STANDARD.encode(serde_json::to_vec(&st).unwrap()).into();
    std::fs::write(&path, serde_json::to_vec(&env).unwrap()).unwrap();
    verify(&sb, &signed).assert_error(14, "it was changed after signing");
    std::fs::write(&path, &original).unwrap();

    // A changed file.
    let main = signed.join("main.py");
    let before = std::fs::read(&main).unwrap();
    std::fs::write(&main, b"print('changed')\n").unwrap();
    verify(&sb, &signed).assert_error(16, "changed since signing (e.g. main.py)");
    std::fs::write(&main, &before).unwrap();

    // A changed receipt (made anew for an edited tree): refused too.
    std::fs::write(signed.join("NOTES.md"), b"notes\n").unwrap();
    let made = sb.run([
        "receipt",
        s(&signed),
        "-o",
        s(&signed.join(".spawn-elite/receipt.json")),
        "--force",
    ]);
    assert!(made.success(), "{}", made.stderr);
    verify(&sb, &signed).assert_error(16, "the receipt changed since signing");
}

#[test]
fn signing_is_deterministic_under_source_date_epoch() {
    let sb = Sandbox::new();
    let (key, _) = sb.trusted_key("signer");
    let a = sb.spawn(&["same", "--no-git", "--sign", "--key", s(&key)]);
    let first = std::fs::read(a.join(ATTESTATION)).unwrap();
    std::fs::remove_dir_all(&a).unwrap();
    let b = sb.spawn(&["same", "--no-git", "--sign", "--key", s(&key)]);
    assert_eq!(first, std::fs::read(b.join(ATTESTATION)).unwrap());
}

#[test]
fn attest_signs_a_tree_that_matches_its_receipt_and_refuses_one_that_does_not() {
    let sb = Sandbox::new();
    let (key, id) = sb.trusted_key("signer");
    let repo = sb.spawn(&["later", "tool", "--no-git"]);
    let out = sb.run(["attest", s(&repo), "--key", s(&key)]);
    assert!(out.success(), "{}", out.stderr);
    assert!(out.stdout.contains(&id), "{}", out.stdout);
    assert_eq!(verify(&sb, &repo).code, 0);

    let drifted = sb.spawn(&["drifted", "tool", "--no-git"]);
    std::fs::write(drifted.join("README.md"), b"mine\n").unwrap();
    sb.run(["attest", s(&drifted), "--key", s(&key)])
        .assert_error(1, "differs from its receipt (README.md changed)");
    assert!(!drifted.join(ATTESTATION).exists(), "nothing was signed");
}

#[test]
fn an_update_signs_the_new_tree_and_names_the_attestation_it_follows() {
    let sb = Sandbox::new();
    let (key, _) = sb.trusted_key("signer");
    for git in [true, false] {
        let name = if git { "with-git" } else { "no-git" };
        let mut args = vec![name, "--sign", "--key", s(&key)];
        if !git {
            args.push("--no-git");
        }
        let repo = sb.spawn(&args);
        let before = std::fs::read(repo.join(ATTESTATION)).unwrap();
        let out = sb.run([
            "update",
            s(&repo),
            "--set",
            "port=9001",
            "--sign",
            "--key",
            s(&key),
            "-q",
        ]);
        assert_eq!(out.code, 0, "{name}: {}", out.stderr);
        assert_eq!(verify(&sb, &repo).code, 0, "{name}");
        let deps = statement(&repo)["predicate"]["buildDefinition"]["resolvedDependencies"].clone();
        let previous = deps
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == "previous-attestation")
            .expect("names the previous attestation");
        assert_eq!(previous["digest"]["sha256"], sha256_hex(&before), "{name}");
    }
}

#[test]
fn sign_without_a_key_says_how_to_make_one_and_key_alone_is_refused() {
    let sb = Sandbox::new();
    sb.assert_error(
        ["nokey", "--sign"],
        9,
        "create one with `spawn-elite keygen`",
    );
    assert!(!sb.repos().join("nokey").exists());
    let (key, _) = sb.keygen("k");
    sb.assert_error(
        ["keyonly", "--key", s(&key)],
        2,
        "--key names the key of --sign and --callback",
    );
}

#[test]
fn a_signed_spawns_callback_carries_its_attestation_and_the_registry_keeps_it() {
    let sb = Sandbox::new();
    let (key, id) = sb.trusted_key("signer");
    let rx = sb.receiver("127.0.0.1:0");
    let url = rx.url("/hooks/spawn");
    let repo = sb.spawn(&["reg", "--sign", "--key", s(&key), "--callback", &url]);
    let (clean, log) = rx.stop();
    assert!(clean, "{log}");
    let lines = sb.log_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert_eq!(line["keyid"], id.as_str());
    // The log alone: the envelope it kept verifies with the key and binds
    // the receipt it kept.
    let env: spawn_elite::provenance::dsse::Envelope =
        serde_json::from_value(line["attestation"].clone()).expect("an envelope in the log");
    assert_eq!(env, serde_json::from_value(envelope(&repo)).unwrap());
    let signing = spawn_elite::callback::keys::load_signing_key(&key).expect("key");
    let trusted = std::collections::HashMap::from([(id.clone(), signing.verifying_key())]);
    let (_, payload) = env.verify(&trusted).expect("verifies from the log");
    let read = spawn_elite::provenance::statement::read(&payload).expect("statement");
    assert_eq!(
        read.merkle_root,
        line["receipt"]["merkle_root"].as_str().unwrap()
    );
}

#[test]
fn the_registry_refuses_an_attestation_it_cannot_trust_or_that_binds_another_receipt() {
    use crate::support::{hand_signed, load_key, unix_now};
    let sb = Sandbox::new();
    let (key, id) = sb.trusted_key("signer");
    let (stranger, _) = sb.keygen("stranger");
    let a = sb.spawn(&["one", "--no-git", "--sign", "--key", s(&stranger)]);
    let b = sb.spawn(&["two", "--no-git", "--sign", "--key", s(&key)]);
    let receipt_of = |repo: &Path| -> Value {
        serde_json::from_slice(&std::fs::read(repo.join(".spawn-elite/receipt.json")).unwrap())
            .unwrap()
    };
    let rx = sb.receiver("127.0.0.1:0");
    let addr = rx.addr;
    let signing = load_key(&key);
    let cases = [
        // Signed by a key the registry does not trust.
        (receipt_of(&a), envelope(&a), 401, "not trusted here"),
        // A trusted envelope for another receipt.
        (
            receipt_of(&a),
            envelope(&b),
            400,
            "does not bind this receipt",
        ),
    ];
    for (i, (receipt, env, status, needle)) in cases.into_iter().enumerate() {
        let root = receipt["merkle_root"].as_str().unwrap().to_owned();
        let body = serde_json::to_vec(&serde_json::json!({
            "format": "spawn-elite.bundle/v1",
            "receipt": receipt,
            "attestation": env,
        }))
        .unwrap();
        let req = hand_signed(
            addr,
            "/hooks/spawn",
            &body,
            &root,
            &signing,
            &id,
            unix_now(),
            &format!("nonce-{i}"),
        );
        let (code, text) = req.send(addr);
        assert_eq!(code, status, "{needle}: {text}");
        assert!(text.contains(needle), "{text}");
    }
    let (clean, _) = rx.stop();
    assert!(clean);
    assert!(sb.log_lines().is_empty(), "nothing refused was logged");
}

#[test]
fn a_trusted_signature_over_a_statement_with_an_extra_or_missing_subject_is_refused() {
    let sb = Sandbox::new();
    let (key, _) = sb.trusted_key("signer");
    let signing = spawn_elite::callback::keys::load_signing_key(&key).expect("key");
    let repo = sb.spawn(&["subjects", "--no-git", "--sign", "--key", s(&key)]);
    let original = statement(&repo);
    // Re-signed by the trusted key itself: the signature verifies, and it is
    // the statement that must be refused.
    let resign = |st: &Value| {
        let env = spawn_elite::provenance::dsse::Envelope::sign(
            "application/vnd.in-toto+json",
            &serde_json::to_vec(st).unwrap(),
            &signing,
        );
        std::fs::write(repo.join(ATTESTATION), env.to_json_bytes()).unwrap();
    };
    let mut missing = original.clone();
    missing["subject"].as_array_mut().unwrap().pop();
    resign(&missing);
    verify(&sb, &repo).assert_error(14, "its subjects are not the files the receipt covers");

    let mut extra = original.clone();
    extra["subject"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "extra.txt", "digest": {"sha256": "00"}}));
    resign(&extra);
    verify(&sb, &repo).assert_error(14, "its subjects are not the files the receipt covers");

    resign(&original);
    assert_eq!(
        verify(&sb, &repo).code,
        0,
        "the same statement re-signed verifies"
    );
}

#[test]
fn attest_never_writes_through_a_symlinked_metadata_folder() {
    let sb = Sandbox::new();
    let (key, _) = sb.trusted_key("signer");
    let repo = sb.spawn(&["linked", "tool", "--no-git"]);
    let elsewhere = sb.path().join("elsewhere");
    std::fs::rename(repo.join(".spawn-elite"), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, repo.join(".spawn-elite")).unwrap();
    let out = sb.run(["attest", s(&repo), "--key", s(&key)]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(out.stderr.contains("cannot write"), "{}", out.stderr);
    assert!(
        !elsewhere.join("attestation.intoto.json").exists(),
        "nothing was written outside the repository"
    );
}
