//! Checking one request (method and size are the server's job): signature
//! (RFC 9421) over the required components with `alg="ed25519"`, signed
//! for this receiver's authority and path, `application/json`,
//! Content-Digest, time window, a valid receipt whose merkle_root is the
//! Idempotency-Key, replay; then logging it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::PoisonError;
use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::VerifyingKey;
use serde_json::json;

use super::state::{State, report_index};
use crate::callback;
use crate::callback::httpsig::{self, RequestParts, SigError};
use crate::error::describe;
use crate::provenance::dsse::{Envelope, Refused};
use crate::provenance::{self, statement};
use crate::receipt::{self, Receipt};

/// Accepted clock skew and signature lifetime, in seconds.
pub const WINDOW_SECS: i64 = 300;

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// One request as read off the connection, body complete.
pub(super) struct Incoming {
    pub method: String,
    /// Absolute path; `/` when the target has none.
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The local address the connection arrived on (not client-chosen).
    pub local: SocketAddr,
}

/// The receipt's bytes and, for a bundle (`callback::BUNDLE_FORMAT`), the
/// attestation's DSSE envelope.
fn split_bundle(body: &[u8]) -> std::result::Result<(Vec<u8>, Option<serde_json::Value>), Reject> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("body is not JSON: {e}")))?;
    if value.get("format").and_then(|f| f.as_str()) != Some(callback::BUNDLE_FORMAT) {
        return Ok((body.to_vec(), None));
    }
    let (Some(receipt), Some(envelope)) = (value.get("receipt"), value.get("attestation")) else {
        return Err(bad(format!(
            "a {} body needs a receipt and an attestation",
            callback::BUNDLE_FORMAT
        )));
    };
    let bytes = serde_json::to_vec(receipt).map_err(|e| bad(e.to_string()))?;
    Ok((bytes, Some(envelope.clone())))
}

/// The attestation of a bundle: signed by a key of the trust directory,
/// and a statement that binds this very receipt and lists exactly the
/// files it covers. A registry keeps it so anyone can check it again from
/// the log alone.
fn check_attestation(
    state: &State,
    receipt: &Receipt,
    envelope: &serde_json::Value,
) -> std::result::Result<(), Reject> {
    let envelope: Envelope = serde_json::from_value(envelope.clone())
        .map_err(|e| bad(format!("the attestation is not a DSSE envelope: {e}")))?;
    if envelope.payload_type != provenance::PAYLOAD_TYPE {
        return Err(bad(format!(
            "the attestation's payloadType is {:?}, not {:?}",
            envelope.payload_type,
            provenance::PAYLOAD_TYPE
        )));
    }
    let trusted: HashMap<String, VerifyingKey> = envelope
        .signatures
        .iter()
        .filter_map(|s| state.trusted.get(&s.keyid).map(|k| (s.keyid.clone(), k)))
        .collect();
    let (_, payload) = envelope.verify(&trusted).map_err(|r| match r {
        Refused::UnknownKey(ids) => unauthorized(format!(
            "the attestation is signed by key {}, which is not trusted here",
            ids.join(", ")
        )),
        Refused::BadSignature(id) => unauthorized(format!(
            "the attestation's signature by key {id} does not verify: it was changed after signing"
        )),
        Refused::Malformed(why) => bad(format!("the attestation is malformed: {why}")),
    })?;
    let read = statement::read(&payload).map_err(|why| bad(format!("the attestation {why}")))?;
    let receipt_sha256 = receipt::hex(&statement::sha256(&receipt.to_json_bytes()));
    let listed: Vec<&str> = read.subjects.iter().map(|(p, _)| p.as_str()).collect();
    let covered: Vec<&str> = receipt.files.iter().map(|f| f.path.as_str()).collect();
    if read.merkle_root != receipt.merkle_root
        || read.receipt_sha256 != receipt_sha256
        || listed != covered
    {
        return Err(bad(
            "the attestation does not bind this receipt (another Merkle root, receipt or file list)",
        ));
    }
    Ok(())
}

/// A refusal: status and a one-line reason.
pub(super) type Reject = (u16, String);

fn bad(msg: impl Into<String>) -> Reject {
    (400, msg.into())
}

fn unauthorized(msg: impl Into<String>) -> Reject {
    (401, msg.into())
}

/// `application/json`, parameters (such as a charset) allowed.
fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

fn sig_reject(e: SigError) -> Reject {
    match e {
        SigError::Malformed(_) => (400, e.to_string()),
        _ => (401, e.to_string()),
    }
}

/// A read of the registry from another host: it must carry an RFC 9421
/// signature with `tag="spawn-elite-read"` and `alg="ed25519"`, covering
/// `@method`, `@authority` and `@path` (and `@query` when there is one),
/// made for this receiver's authority within the time window, by a key of
/// `--readers DIR`. Reads change nothing, so a replayed read within the
/// window is let through (its nonce is not remembered). `Ok` names the key.
pub(super) fn check_read(
    state: &State,
    parts: RequestParts,
    peer: std::net::IpAddr,
    local: SocketAddr,
) -> std::result::Result<String, Reject> {
    let Some(readers) = &state.readers else {
        return Err(unauthorized(
            "a signed read needs a reader's key, and this receiver has no readers: start it with --readers DIR (or, on this host, read without --key)",
        ));
    };
    let authority = parts
        .header("host")
        .ok_or_else(|| bad("missing host header"))?
        .to_ascii_lowercase();
    let parts = RequestParts { authority, ..parts };
    let (Some(input), Some(signature)) =
        (parts.header("signature-input"), parts.header("signature"))
    else {
        let hint = if state.loopback_reads_open {
            "or read from this host"
        } else {
            "this receiver asks it of every read (--require-signed-reads)"
        };
        return Err(unauthorized(format!(
            "unsigned read from {peer}: sign it with a key of the readers directory (`spawn-elite registry --key PATH`), {hint}"
        )));
    };
    let verified = httpsig::verify(&parts, &input, &signature, httpsig::LABEL, |id| {
        readers.get(id)
    })
    .map_err(|e| match e {
        SigError::UnknownKey(id) => unauthorized(format!(
            "the read is signed by key {id}, which is not a reader here: add its .pub file to the readers directory {} (--readers), not to --trust",
            readers.dir().display()
        )),
        other => sig_reject(other),
    })?;
    let p = &verified.params;
    let mut required = vec!["@method", "@authority", "@path"];
    if parts.query.is_some() {
        required.push("@query");
    }
    if let Some(missing) = required
        .iter()
        .find(|c| !p.components.iter().any(|x| x == *c))
    {
        return Err(unauthorized(format!("signature does not cover {missing}")));
    }
    if p.alg.as_deref() != Some(httpsig::ALG) || p.tag.as_deref() != Some(httpsig::READ_TAG) {
        return Err(unauthorized(format!(
            "a read is signed with alg=\"{}\" and tag=\"{}\"",
            httpsig::ALG,
            httpsig::READ_TAG
        )));
    }
    state
        .site
        .check_read_authority(&parts.authority, local)
        .map_err(unauthorized)?;
    let (Some(created), Some(expires), Some(keyid)) = (p.created, p.expires, p.keyid.clone())
    else {
        return Err(bad("signature needs created, expires and keyid"));
    };
    check_window(created, expires, unix_now())?;
    Ok(keyid)
}

/// `created` within [`WINDOW_SECS`] of `now`, and not expired.
fn check_window(created: i64, expires: i64, now: i64) -> std::result::Result<(), Reject> {
    if created > now + WINDOW_SECS {
        return Err(unauthorized(format!(
            "created is {}s in the future; check the sender's clock",
            created - now
        )));
    }
    if created < now - WINDOW_SECS {
        return Err(unauthorized(format!(
            "created is {}s old (limit {WINDOW_SECS}s); resend with a fresh signature",
            now - created
        )));
    }
    if expires < now {
        return Err(unauthorized(
            "signature has expired; resend with a fresh signature",
        ));
    }
    Ok(())
}

pub(super) fn check(state: &State, req: Incoming) -> std::result::Result<String, Reject> {
    let Incoming {
        method,
        path,
        query,
        headers,
        body,
        local,
    } = req;
    let mut parts = RequestParts {
        method,
        authority: String::new(),
        path,
        query,
        headers,
    };
    let need = |parts: &RequestParts, name: &str| {
        parts
            .header(name)
            .ok_or_else(|| bad(format!("missing {name} header")))
    };
    parts.authority = need(&parts, "host")?.to_ascii_lowercase();
    let sig_input = need(&parts, "signature-input")?;
    let signature = need(&parts, "signature")?;
    let digest = need(&parts, "content-digest")?;
    let idem = need(&parts, "idempotency-key")?;

    // The covered set and parameters spawn-elite requires.
    let mut required = vec![
        "@method",
        "@authority",
        "@path",
        "content-type",
        "content-digest",
    ];
    if parts.query.is_some() {
        required.push("@query");
    }
    let verified = httpsig::verify(&parts, &sig_input, &signature, httpsig::LABEL, |id| {
        state.trusted.get(id)
    })
    .map_err(sig_reject)?;
    let p = &verified.params;
    if let Some(missing) = required
        .iter()
        .find(|c| !p.components.iter().any(|x| x == *c))
    {
        return Err(unauthorized(format!("signature does not cover {missing}")));
    }
    if p.alg.as_deref() != Some(httpsig::ALG) {
        return Err(unauthorized(format!(
            "signature has no alg parameter; sign with alg=\"{}\"",
            httpsig::ALG
        )));
    }
    // What was signed must be this receiver: a request made for another
    // registry that trusts the same key is not valid here.
    state
        .site
        .check(&parts.authority, &parts.path, local)
        .map_err(unauthorized)?;
    let content_type = need(&parts, "content-type")?;
    if !is_json(&content_type) {
        return Err(bad(format!(
            "Content-Type is {content_type:?}; send the receipt as application/json"
        )));
    }
    if p.tag.as_deref() != Some(httpsig::TAG) {
        return Err(unauthorized(format!(
            "signature tag must be {:?}",
            httpsig::TAG
        )));
    }
    let (Some(created), Some(expires), Some(nonce), Some(keyid)) =
        (p.created, p.expires, p.nonce.clone(), p.keyid.clone())
    else {
        return Err(bad("signature needs created, expires, nonce and keyid"));
    };
    httpsig::check_content_digest(&digest, &body).map_err(sig_reject)?;

    let now = unix_now();
    check_window(created, expires, now)?;

    // A signed spawn sends its receipt and attestation as one bundle.
    let (receipt_bytes, attestation) = split_bundle(&body)?;
    // Only a valid receipt is logged: a proof or any other JSON that
    // happens to carry a merkle_root would take that root's place.
    let checked =
        Receipt::parse(&receipt_bytes, "in the request body").map_err(|e| bad(describe(&e)))?;
    if checked.merkle_root() != idem {
        return Err(bad(format!(
            "Idempotency-Key {idem:?} is not the receipt's merkle_root {}",
            checked.merkle_root()
        )));
    }
    if let Some(envelope) = &attestation {
        check_attestation(state, &checked, envelope)?;
    }
    // Logged as sent (member order kept), now known to be a valid receipt.
    let receipt: serde_json::Value = serde_json::from_slice(&receipt_bytes)
        .map_err(|e| bad(format!("body is not JSON: {e}")))?;

    // Replay: a nonce is remembered until its signature can no longer be
    // accepted.
    {
        let mut nonces = state.nonces.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (keyid.clone(), nonce);
        if nonces.get(&key).is_some_and(|&until| until >= now) {
            return Err((409, "nonce already used: replayed request".to_owned()));
        }
        if nonces.len() >= 4096 && nonces.len().is_power_of_two() {
            nonces.retain(|_, until| *until >= now);
        }
        nonces.insert(
            key,
            expires.min(created + WINDOW_SECS).max(now) + WINDOW_SECS,
        );
    }

    let digest = httpsig::content_digest(&body);
    let line = |seq: u64, prev: &str| {
        let mut line = json!({
            "seq": seq,
            "received_at": jiff::Timestamp::now().to_string(),
            "keyid": keyid,
            "idempotency_key": idem,
            "content_digest": digest,
            "receipt": receipt,
        });
        // A signed spawn's envelope, kept whole: the log alone lets anyone
        // check it again.
        if let (Some(map), Some(envelope)) = (line.as_object_mut(), &attestation) {
            map.insert("attestation".to_owned(), envelope.clone());
        }
        if let Some(map) = line.as_object_mut() {
            map.insert("prev".to_owned(), prev.into());
        }
        line.to_string()
    };
    let logged = |seq: u64, offset: u64, bytes: &[u8]| {
        let mut index = state
            .registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        report_index(index.stage(seq, offset, bytes));
    };
    match state.log.accept(&idem, &digest, line, logged) {
        Ok(false) => return Ok(format!("already accepted {idem}; not logged again")),
        Ok(true) => {}
        Err(e) => return Err((500, e)),
    }
    Ok(format!("accepted {idem} from key {keyid}"))
}
