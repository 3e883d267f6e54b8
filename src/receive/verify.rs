//! Checking one request: size, signature (RFC 9421) over the required
//! components, Content-Digest, time window, a valid receipt whose
//! merkle_root is the Idempotency-Key, replay; then logging it.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::VerifyingKey;
use serde_json::json;

use super::log::Log;
use super::trust;
use crate::callback::httpsig::{self, RequestParts, SigError};
use crate::error::describe;
use crate::receipt::Receipt;

/// Accepted clock skew and signature lifetime, in seconds.
pub const WINDOW_SECS: i64 = 300;

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What every worker shares.
pub(super) struct State {
    pub trust_dir: PathBuf,
    pub keys: RwLock<HashMap<String, VerifyingKey>>,
    pub nonces: Mutex<HashMap<(String, String), i64>>,
    pub log: Log,
    pub max_body: usize,
}

/// A trusted key by id; rereads the trust directory once on a miss, so
/// keys added while running are picked up.
fn lookup_key(state: &State, id: &str) -> Option<VerifyingKey> {
    if let Some(k) = state
        .keys
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(id)
    {
        return Some(*k);
    }
    let fresh = trust::load(&state.trust_dir).ok()?;
    let found = fresh.get(id).copied();
    *state.keys.write().unwrap_or_else(PoisonError::into_inner) = fresh;
    found
}

pub(super) fn serve(state: &State, mut req: tiny_http::Request) {
    let (status, msg) = match check(state, &mut req) {
        Ok(msg) => (204, msg),
        Err((status, msg)) => (status, msg),
    };
    eprintln!("{status} {} {}: {msg}", req.method(), req.url());
    let resp = if status == 204 {
        tiny_http::Response::from_string(String::new()).with_status_code(204)
    } else {
        tiny_http::Response::from_string(format!("{msg}\n")).with_status_code(status)
    };
    let _ = req.respond(resp);
}

type Reject = (u16, String);

fn bad(msg: impl Into<String>) -> Reject {
    (400, msg.into())
}

fn unauthorized(msg: impl Into<String>) -> Reject {
    (401, msg.into())
}

fn sig_reject(e: SigError) -> Reject {
    match e {
        SigError::Malformed(_) => (400, e.to_string()),
        _ => (401, e.to_string()),
    }
}

fn check(state: &State, req: &mut tiny_http::Request) -> std::result::Result<String, Reject> {
    if req.method() != &tiny_http::Method::Post {
        return Err(bad(format!("only POST is accepted, not {}", req.method())));
    }
    if req.body_length().is_some_and(|n| n > state.max_body) {
        return Err((413, format!("body larger than {} bytes", state.max_body)));
    }
    let mut body = Vec::new();
    req.as_reader()
        .take(state.max_body as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| bad(format!("cannot read body: {e}")))?;
    if body.len() > state.max_body {
        return Err((413, format!("body larger than {} bytes", state.max_body)));
    }

    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_owned(),
                h.value.as_str().to_owned(),
            )
        })
        .collect();
    let (path, query) = match req.url().split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (req.url().to_owned(), None),
    };
    let mut parts = RequestParts {
        method: req.method().as_str().to_owned(),
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
        lookup_key(state, id)
    })
    .map_err(sig_reject)?;
    let p = &verified.params;
    if let Some(missing) = required
        .iter()
        .find(|c| !p.components.iter().any(|x| x == *c))
    {
        return Err(unauthorized(format!("signature does not cover {missing}")));
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

    // Only a valid receipt is logged: a proof or any other JSON that
    // happens to carry a merkle_root would take that root's place.
    let checked = Receipt::parse(&body, "in the request body").map_err(|e| bad(describe(&e)))?;
    if checked.merkle_root() != idem {
        return Err(bad(format!(
            "Idempotency-Key {idem:?} is not the receipt's merkle_root {}",
            checked.merkle_root()
        )));
    }
    // Logged as sent (member order kept), now known to be a valid receipt.
    let receipt: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| bad(format!("body is not JSON: {e}")))?;

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

    let line = |seq: u64, prev: &str| {
        json!({
            "seq": seq,
            "received_at": jiff::Timestamp::now().to_string(),
            "keyid": keyid,
            "idempotency_key": idem,
            "content_digest": httpsig::content_digest(&body),
            "receipt": receipt,
            "prev": prev,
        })
        .to_string()
    };
    match state.log.accept(&idem, line) {
        Ok(false) => return Ok(format!("already accepted {idem}; not logged again")),
        Ok(true) => {}
        Err(e) => return Err((500, e)),
    }
    Ok(format!("accepted {idem} from key {keyid}"))
}
