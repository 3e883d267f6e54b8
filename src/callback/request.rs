//! Building one signed callback request: the HTTP agent (timeouts, TLS
//! roots), the headers with `Content-Digest` and an RFC 9421 signature, and
//! the dry run that prints them instead of sending.

use std::fs;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Result, anyhow};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ureq::Agent;
use ureq::tls::{PemItem, RootCerts, TlsConfig};

use super::httpsig::{self, RequestParts, SignatureParams};
use super::keys;
use super::options::{CallbackOptions, DeliveryOptions, Target};
use crate::error::{ExitCode, fail, fail_with};

/// A callback ready to send: URL checked, key loaded, agent built.
#[derive(Clone)]
pub(super) struct Prepared {
    pub target: Target,
    pub key: SigningKey,
    pub key_id: String,
    pub agent: Agent,
}

impl CallbackOptions {
    pub(super) fn prepare(&self) -> Result<Prepared> {
        let target = Target::parse(&self.url, self.delivery.allow_insecure_http)?;
        let key = self.signing_key()?;
        let key_id = match &self.key_id {
            Some(id) => id.clone(),
            None => keys::key_id(&key.verifying_key()),
        };
        let agent = build_agent(&self.delivery)?;
        Ok(Prepared {
            target,
            key,
            key_id,
            agent,
        })
    }
}

/// The CA file is a value the user gave (`--ca-cert` or `SSL_CERT_FILE`):
/// unreadable or without a certificate, it is the same mistake, a usage
/// error (exit code 2).
fn build_agent(d: &DeliveryOptions) -> Result<Agent> {
    http_agent(d.ca_file(), d.retry.connect_timeout, d.retry.timeout)
}

/// The HTTP agent of everything spawn-elite sends: no redirects, the given
/// timeouts, HTTP errors as answers (not `Err`), and TLS through rustls
/// with the system's roots or the CA file given.
pub fn http_agent(
    ca_file: Option<std::path::PathBuf>,
    connect_timeout: std::time::Duration,
    timeout: std::time::Duration,
) -> Result<Agent> {
    let roots = match &ca_file {
        Some(path) => {
            let pem = fs::read(path).map_err(|e| {
                let message = format!(
                    "cannot read CA certificates {}: {e}; pass an existing PEM file to --ca-cert (or SSL_CERT_FILE)",
                    path.display()
                );
                fail_with(ExitCode::Usage, message, e)
            })?;
            let mut certs = Vec::new();
            for item in ureq::tls::parse_pem(&pem) {
                if let Ok(PemItem::Certificate(c)) = item {
                    certs.push(c);
                }
            }
            if certs.is_empty() {
                return Err(fail(
                    ExitCode::Usage,
                    format!(
                        "{} holds no PEM certificate; pass a CA bundle to --ca-cert (or SSL_CERT_FILE)",
                        path.display()
                    ),
                ));
            }
            RootCerts::new_with_certs(&certs)
        }
        None => RootCerts::PlatformVerifier,
    };
    let config = Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(connect_timeout))
        .timeout_global(Some(timeout))
        .user_agent(concat!("spawn-elite/", env!("CARGO_PKG_VERSION")))
        .tls_config(
            TlsConfig::builder()
                .root_certs(roots)
                .unversioned_rustls_crypto_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .build(),
        )
        .build();
    Ok(Agent::new_with_config(config))
}

pub(super) struct SignedRequest {
    pub headers: Vec<(String, String)>,
    pub base: String,
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| anyhow!("no randomness from the operating system: {e}"))?;
    Ok(b)
}

/// Headers for one attempt: fresh `created` and nonce every time.
pub(super) fn signed_request(
    p: &Prepared,
    body: &[u8],
    merkle_root: &str,
) -> Result<SignedRequest> {
    let nonce = URL_SAFE_NO_PAD.encode(random_bytes::<16>()?);
    let digest = httpsig::content_digest(body);
    let mut headers = vec![
        ("Host".to_owned(), p.target.authority.clone()),
        ("Content-Type".to_owned(), "application/json".to_owned()),
        ("Content-Digest".to_owned(), digest),
        ("Idempotency-Key".to_owned(), merkle_root.to_owned()),
    ];
    let parts = RequestParts {
        method: "POST".to_owned(),
        authority: p.target.authority.clone(),
        path: p.target.path.clone(),
        query: p.target.query.clone(),
        headers: headers.clone(),
    };
    let params = SignatureParams::spawn(
        unix_now(),
        nonce,
        p.key_id.clone(),
        p.target.query.is_some(),
    );
    let signed = httpsig::sign(&parts, &params, &p.key, httpsig::LABEL)
        .map_err(|e| anyhow!("cannot sign the callback: {e}"))?;
    headers.push(("Signature-Input".to_owned(), signed.signature_input));
    headers.push(("Signature".to_owned(), signed.signature));
    Ok(SignedRequest {
        headers,
        base: signed.base,
    })
}

/// The exact request `deliver` would send first (headers, body size and the
/// signature base), without sending it.
pub fn dry_run(receipt_json: &[u8], merkle_root: &str, opts: &CallbackOptions) -> Result<String> {
    let prepared = opts.prepare()?;
    let req = signed_request(&prepared, receipt_json, merkle_root)?;
    let mut out = String::new();
    let target = match &prepared.target.query {
        Some(q) => format!("{}?{q}", prepared.target.path),
        None => prepared.target.path.clone(),
    };
    out.push_str(&format!("POST {target} HTTP/1.1\n"));
    for (k, v) in &req.headers {
        out.push_str(&format!("{k}: {v}\n"));
    }
    out.push_str(&format!("Content-Length: {}\n", receipt_json.len()));
    out.push_str(&format!(
        "\n[{} bytes of receipt JSON]\n\n--- signature base ---\n{}\n--- end of signature base ---\n",
        receipt_json.len(),
        req.base
    ));
    Ok(out)
}
