//! RFC 9421 / RFC 9530 conformance of `spawn_elite::callback::httpsig`, and round-trip
//! tamper tests.

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::support::httpsig::{self, RequestParts, SigError, SignatureParams};

// RFC 9421 Appendix B.1.4, "test-key-ed25519".
const RFC_PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----
";
const RFC_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=
-----END PUBLIC KEY-----
";

// RFC 9421 Appendix B.2.6: signature base (no trailing newline).
const RFC_BASE: &str = "\"date\": Tue, 20 Apr 2021 02:07:55 GMT
\"@method\": POST
\"@path\": /foo
\"@authority\": example.com
\"content-type\": application/json
\"content-length\": 18
\"@signature-params\": (\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\"";

const RFC_SIGNATURE_INPUT: &str = "sig-b26=(\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\"";
const RFC_SIGNATURE: &str = "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:";

/// The RFC's test-request message (Appendix B.2), as seen by a server.
fn rfc_request() -> RequestParts {
    RequestParts {
        method: "POST".into(),
        authority: "example.com".into(),
        path: "/foo".into(),
        query: Some("param=Value&Pet=dog".into()),
        headers: vec![
            ("Host".into(), "example.com".into()),
            ("Date".into(), "Tue, 20 Apr 2021 02:07:55 GMT".into()),
            ("Content-Type".into(), "application/json".into()),
            (
                "Content-Digest".into(),
                "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:".into(),
            ),
            ("Content-Length".into(), "18".into()),
        ],
    }
}

fn rfc_params() -> SignatureParams {
    SignatureParams {
        components: [
            "date",
            "@method",
            "@path",
            "@authority",
            "content-type",
            "content-length",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        created: Some(1618884473),
        keyid: Some("test-key-ed25519".into()),
        ..Default::default()
    }
}

fn rfc_keys() -> (SigningKey, VerifyingKey) {
    let sk = SigningKey::from_pkcs8_pem(RFC_PRIVATE_PEM).expect("RFC private key parses");
    let pk = VerifyingKey::from_public_key_pem(RFC_PUBLIC_PEM).expect("RFC public key parses");
    assert_eq!(sk.verifying_key(), pk, "RFC key pair is consistent");
    (sk, pk)
}

#[test]
fn rfc9421_b26_signature_base_and_signature_byte_for_byte() {
    let (sk, _) = rfc_keys();
    let signed = httpsig::sign(&rfc_request(), &rfc_params(), &sk, "sig-b26").expect("signs");
    assert_eq!(signed.base, RFC_BASE);
    assert_eq!(signed.signature_input, RFC_SIGNATURE_INPUT);
    assert_eq!(signed.signature, RFC_SIGNATURE);
}

#[test]
fn rfc9421_b26_rfc_signature_verifies() {
    let (_, pk) = rfc_keys();
    let v = httpsig::verify(
        &rfc_request(),
        RFC_SIGNATURE_INPUT,
        RFC_SIGNATURE,
        "sig-b26",
        |id| (id == "test-key-ed25519").then_some(pk),
    )
    .expect("the RFC's own signature verifies");
    assert_eq!(v.base, RFC_BASE);
    assert_eq!(v.params, rfc_params());
}

#[test]
fn rfc9421_b26_rfc_signature_fails_on_other_path() {
    let (_, pk) = rfc_keys();
    let mut req = rfc_request();
    req.path = "/bar".into();
    let err = httpsig::verify(&req, RFC_SIGNATURE_INPUT, RFC_SIGNATURE, "sig-b26", |_| {
        Some(pk)
    })
    .expect_err("changed path must not verify");
    assert!(matches!(err, SigError::BadSignature(_)), "{err}");
}

#[test]
fn rfc9530_content_digest_of_the_rfc_test_body() {
    // RFC 9421 Appendix B.2 test-request body and its sha-256 Content-Digest.
    let body = br#"{"hello": "world"}"#;
    assert_eq!(
        httpsig::content_digest(body),
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    );
    httpsig::check_content_digest(
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
        body,
    )
    .expect("matches");
    assert_eq!(
        httpsig::check_content_digest(
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
            br#"{"hello": "world!"}"#
        ),
        Err(SigError::DigestMismatch)
    );
    assert!(matches!(
        httpsig::check_content_digest("sha-256=X48E9q", body),
        Err(SigError::Malformed(_))
    ));
}

// ---- round trip with spawn-elite's own parameters ----

const BODY: &[u8] = br#"{"merkle_root":"abc","files":3}"#;

fn our_request(body: &[u8]) -> RequestParts {
    RequestParts {
        method: "POST".into(),
        authority: "registry.example:8443".into(),
        path: "/hooks/spawn".into(),
        query: Some("team=core".into()),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("content-digest".into(), httpsig::content_digest(body)),
        ],
    }
}

fn our_signed() -> (RequestParts, httpsig::Signed, VerifyingKey) {
    let sk = SigningKey::from_bytes(&[7u8; 32]);
    let req = our_request(BODY);
    let params = SignatureParams::spawn(
        1_700_000_000,
        "bm9uY2Vub25jZW5vbmNl".into(),
        "kid-1".into(),
        true,
    );
    let signed = httpsig::sign(&req, &params, &sk, httpsig::LABEL).expect("signs");
    (req, signed, sk.verifying_key())
}

fn verify_our(
    req: &RequestParts,
    input: &str,
    sig: &str,
    pk: VerifyingKey,
) -> Result<httpsig::Verified, SigError> {
    httpsig::verify(req, input, sig, httpsig::LABEL, |id| {
        (id == "kid-1").then_some(pk)
    })
}

#[test]
fn spawn_signature_base_has_the_prescribed_shape() {
    let (_, signed, _) = our_signed();
    let expected = format!(
        "\"@method\": POST
\"@authority\": registry.example:8443
\"@path\": /hooks/spawn
\"@query\": ?team=core
\"content-type\": application/json
\"content-digest\": {}
\"@signature-params\": (\"@method\" \"@authority\" \"@path\" \"@query\" \"content-type\" \"content-digest\");created=1700000000;expires=1700000300;nonce=\"bm9uY2Vub25jZW5vbmNl\";keyid=\"kid-1\";alg=\"ed25519\";tag=\"spawn-elite\"",
        httpsig::content_digest(BODY)
    );
    assert_eq!(signed.base, expected);
    assert!(signed.signature_input.starts_with("spawn=(\"@method\""));
    assert!(signed.signature.starts_with("spawn=:") && signed.signature.ends_with(':'));
}

#[test]
fn spawn_signature_round_trips() {
    let (req, signed, pk) = our_signed();
    let v = verify_our(&req, &signed.signature_input, &signed.signature, pk).expect("verifies");
    assert_eq!(v.base, signed.base);
    assert_eq!(v.params.nonce.as_deref(), Some("bm9uY2Vub25jZW5vbmNl"));
}

#[test]
fn every_request_tampering_breaks_the_signature() {
    let (req, signed, pk) = our_signed();
    type Tamper = fn(&mut RequestParts);
    let cases: [(&str, Tamper); 5] = [
        ("method", |r| r.method = "PUT".into()),
        ("authority", |r| r.authority = "evil.example:8443".into()),
        ("path", |r| r.path = "/hooks/other".into()),
        ("query", |r| r.query = Some("team=evil".into())),
        ("content-type", |r| r.headers[0].1 = "text/plain".into()),
    ];
    for (what, tamper) in cases {
        let mut t = req.clone();
        tamper(&mut t);
        let err = verify_our(&t, &signed.signature_input, &signed.signature, pk).expect_err(what);
        assert!(matches!(err, SigError::BadSignature(_)), "{what}: {err}");
    }
}

#[test]
fn tampered_body_fails_the_digest_and_a_recomputed_digest_fails_the_signature() {
    let (req, signed, pk) = our_signed();
    let tampered = br#"{"merkle_root":"abd","files":3}"#;
    let digest = req.header("content-digest").expect("has digest");
    assert_eq!(
        httpsig::check_content_digest(&digest, tampered),
        Err(SigError::DigestMismatch)
    );
    let t = our_request(tampered);
    let err = verify_our(&t, &signed.signature_input, &signed.signature, pk).expect_err("body");
    assert!(matches!(err, SigError::BadSignature(_)), "{err}");
}

#[test]
fn every_parameter_tampering_breaks_the_signature() {
    let (req, signed, pk) = our_signed();
    let input = &signed.signature_input;
    let cases = [
        ("created", "created=1700000000", "created=1700000001"),
        ("expires", "expires=1700000300", "expires=1700009999"),
        (
            "nonce",
            "nonce=\"bm9uY2Vub25jZW5vbmNl\"",
            "nonce=\"bm9uY2Vub25jZW5vbmNm\"",
        ),
        ("tag", "tag=\"spawn-elite\"", "tag=\"other\""),
        ("components", "\"@query\" ", ""),
    ];
    for (what, from, to) in cases {
        assert!(input.contains(from), "{what}: {input}");
        let t = input.replace(from, to);
        let err = verify_our(&req, &t, &signed.signature, pk).expect_err(what);
        assert!(matches!(err, SigError::BadSignature(_)), "{what}: {err}");
    }
    // keyid: another key id is unknown, or (if trusted) the wrong key
    let t = input.replace("keyid=\"kid-1\"", "keyid=\"kid-2\"");
    let err = verify_our(&req, &t, &signed.signature, pk).expect_err("keyid");
    assert_eq!(err, SigError::UnknownKey("kid-2".into()));
    let t = input.replace("keyid=\"kid-1\"", "keyid=\"kid-2\"");
    let err = httpsig::verify(&req, &t, &signed.signature, httpsig::LABEL, |_| Some(pk))
        .expect_err("keyid");
    assert!(matches!(err, SigError::BadSignature(_)), "{err}");
    // alg: anything but ed25519 is refused outright
    let t = input.replace("alg=\"ed25519\"", "alg=\"rsa-pss-sha512\"");
    let err = verify_our(&req, &t, &signed.signature, pk).expect_err("alg");
    assert!(matches!(err, SigError::BadSignature(_)), "{err}");
    // a flipped signature byte
    let mut sig = signed.signature.clone().into_bytes();
    sig[10] = if sig[10] == b'A' { b'B' } else { b'A' };
    let sig = String::from_utf8(sig).expect("ascii");
    let err = verify_our(&req, input, &sig, pk).expect_err("signature bytes");
    assert!(matches!(err, SigError::BadSignature(_)), "{err}");
}

#[test]
fn wrong_key_and_malformed_fields_are_told_apart() {
    let (req, signed, _) = our_signed();
    let other = SigningKey::from_bytes(&[8u8; 32]).verifying_key();
    let err = verify_our(&req, &signed.signature_input, &signed.signature, other).expect_err("key");
    assert!(matches!(err, SigError::BadSignature(_)), "{err}");
    let pk = SigningKey::from_bytes(&[7u8; 32]).verifying_key();
    for (input, sig) in [
        ("spawn=(\"@method\"", signed.signature.as_str()),
        (signed.signature_input.as_str(), "spawn=abc"),
        (
            "other=(\"@method\");keyid=\"kid-1\"",
            signed.signature.as_str(),
        ),
    ] {
        let err = verify_our(&req, input, sig, pk).expect_err("malformed");
        assert!(matches!(err, SigError::Malformed(_)), "{err}");
    }
}
