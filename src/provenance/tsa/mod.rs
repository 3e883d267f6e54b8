//! RFC 3161 timestamps: ask a Time-Stamping Authority to sign "this
//! SHA-256 existed at this time", check its answer before keeping it, and
//! check a kept token offline later.
//!
//! What is stamped is the DSSE envelope's signature bytes (the raw Ed25519
//! signature): that binds the statement, its payload and the signer at
//! once, and a third party checks it with `openssl ts -verify -data`.

mod token;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use der::asn1::{Int, OctetString};
use der::{Decode as _, Encode as _};
use sha2::{Digest as _, Sha256};
use spki::AlgorithmIdentifierOwned;
use ureq::Agent;
use ureq::tls::{RootCerts, TlsConfig};
use x509_cert::Certificate;
use x509_tsp::{MessageImprint, TimeStampReq, TimeStampResp, TspVersion};

pub use token::{Stamp, chains_to};

/// The media types of RFC 3161 §3.4 (time-stamp over HTTP).
const QUERY_TYPE: &str = "application/timestamp-query";

/// The most of a TSA's answer that is read: tokens are a few KB.
const MAX_REPLY: u64 = 256 * 1024;

/// Where to ask for a timestamp, and how long to wait.
#[derive(Debug, Clone)]
pub struct Tsa {
    pub url: String,
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

impl Tsa {
    /// A TSA at `url` with the default timeouts (5 s to connect, 15 s in
    /// all): a stamp must not hold a spawn up for long; an unreachable TSA
    /// queues the request instead.
    pub fn new(url: &str) -> Tsa {
        Tsa {
            url: url.to_owned(),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
        }
    }
}

/// A timestamp request, kept as sent so that it can be sent again (a
/// queued one) and its answer checked against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// SHA-256 of the stamped bytes.
    pub imprint: [u8; 32],
    /// The positive random nonce, as its DER INTEGER content.
    pub nonce: Vec<u8>,
}

impl Query {
    /// A request over `data`, with a fresh random nonce.
    pub fn new(data: &[u8]) -> Result<Query, String> {
        let mut nonce = vec![0u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| format!("no randomness for the nonce: {e}"))?;
        // Positive and minimal, so the DER INTEGER is these 16 bytes.
        nonce[0] = (nonce[0] & 0x7f) | 0x01;
        Ok(Query {
            imprint: Sha256::digest(data).into(),
            nonce,
        })
    }

    /// The DER TimeStampReq: version 1, the SHA-256 imprint, the nonce,
    /// certReq true (the token must carry the TSA's certificate, which
    /// the check needs).
    pub fn to_der(&self) -> Result<Vec<u8>, String> {
        let req = TimeStampReq {
            version: TspVersion::V1,
            message_imprint: MessageImprint {
                hash_algorithm: AlgorithmIdentifierOwned {
                    oid: token::SHA256,
                    parameters: None,
                },
                hashed_message: OctetString::new(self.imprint.to_vec())
                    .map_err(|e| e.to_string())?,
            },
            req_policy: None,
            nonce: Some(Int::new(&self.nonce).map_err(|e| e.to_string())?),
            cert_req: true,
            extensions: None,
        };
        req.to_der().map_err(|e| e.to_string())
    }
}

/// Why no token was kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failed {
    /// Not reached, no answer in time, or a 5xx/408/429: trying later may
    /// work, so the request is queued.
    Unreachable(String),
    /// It answered, and the answer is not a good token for this request:
    /// a rejection, garbage, another imprint or nonce, a bad signature.
    Refused(String),
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::Unreachable(why) | Failed::Refused(why) => f.write_str(why),
        }
    }
}

/// A token checked against the request it answers.
#[derive(Debug, Clone)]
pub struct Token {
    /// The DER ContentInfo, as `openssl ts -verify -token_in` reads it.
    pub der: Vec<u8>,
    pub stamp: Stamp,
}

/// Send `query` to `tsa` and check the answer.
pub fn stamp(tsa: &Tsa, query: &Query) -> Result<Token, Failed> {
    let body = query.to_der().map_err(Failed::Refused)?;
    let reply = post(tsa, &body)?;
    let token = answer(&reply, query).map_err(|why| {
        Failed::Refused(format!(
            "the TSA at {} answered, but not with a good timestamp: {why}",
            tsa.url
        ))
    })?;
    Ok(token)
}

fn agent(tsa: &Tsa) -> Agent {
    let config = Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(tsa.connect_timeout))
        .timeout_global(Some(tsa.timeout))
        .user_agent(concat!("spawn-elite/", env!("CARGO_PKG_VERSION")))
        .tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::PlatformVerifier)
                .unversioned_rustls_crypto_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .build(),
        )
        .build();
    Agent::new_with_config(config)
}

fn post(tsa: &Tsa, body: &[u8]) -> Result<Vec<u8>, Failed> {
    let at = &tsa.url;
    let sent = agent(tsa)
        .post(at)
        .header("Content-Type", QUERY_TYPE)
        .send(body);
    let mut resp = match sent {
        Ok(r) => r,
        Err(e @ (ureq::Error::BadUri(_) | ureq::Error::Tls(_) | ureq::Error::Rustls(_))) => {
            return Err(Failed::Refused(format!("cannot ask the TSA at {at}: {e}")));
        }
        Err(ureq::Error::Timeout(t)) => {
            return Err(Failed::Unreachable(format!(
                "the TSA at {at} did not answer in time ({t})"
            )));
        }
        Err(e) => {
            return Err(Failed::Unreachable(format!(
                "cannot reach the TSA at {at}: {e}"
            )));
        }
    };
    let status = resp.status().as_u16();
    if status == 408 || status == 429 || (500..600).contains(&status) {
        return Err(Failed::Unreachable(format!(
            "the TSA at {at} answered HTTP {status}"
        )));
    }
    if !(200..300).contains(&status) {
        return Err(Failed::Refused(format!(
            "the TSA at {at} answered HTTP {status}; check the URL"
        )));
    }
    resp.body_mut()
        .with_config()
        .limit(MAX_REPLY)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::Timeout(_) | ureq::Error::Io(_) => {
                Failed::Unreachable(format!("the TSA at {at} did not finish its answer: {e}"))
            }
            _ => Failed::Refused(format!("the TSA at {at} sent an unreadable answer: {e}")),
        })
}

/// Check a TimeStampResp against the query it answers; keep its token.
pub fn answer(reply: &[u8], query: &Query) -> Result<Token, String> {
    use cmpv2::status::PkiStatus;
    let resp = TimeStampResp::from_der(reply).map_err(|e| format!("not a TimeStampResp ({e})"))?;
    match resp.status.status {
        PkiStatus::Accepted | PkiStatus::GrantedWithMods => {}
        other => {
            let text = resp
                .status
                .status_string
                .as_ref()
                .map(|s| {
                    s.iter()
                        .map(|t| t.as_str().to_owned())
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "no reason given".to_owned());
            return Err(format!("it refused the request ({other:?}: {text})"));
        }
    }
    let token = resp
        .time_stamp_token
        .ok_or("its answer says granted but holds no token")?
        .to_der()
        .map_err(|e| e.to_string())?;
    let checked = token::check(&token, &query.imprint, Some(&query.nonce))?;
    Ok(Token {
        der: token,
        stamp: checked.stamp,
    })
}

/// Why a kept token is not believed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bad(pub String);

/// Check a kept token offline: it is for `stamped` (SHA-256), its own
/// signature holds, and its signer is, or is signed by, a certificate in
/// the PEM file `trusted`.
pub fn verify(token: &[u8], stamped: &[u8], trusted: &[Certificate]) -> Result<Stamp, Bad> {
    let imprint: [u8; 32] = Sha256::digest(stamped).into();
    let checked = token::check(token, &imprint, None).map_err(Bad)?;
    if !trusted.iter().any(|a| chains_to(&checked.signer, a)) {
        let issuer = checked.signer.tbs_certificate.issuer.to_string();
        return Err(Bad(format!(
            "it is signed by {} (issued by {issuer}), which is not the --tsa-cert certificate nor issued by it: a foreign TSA",
            checked.stamp.signer
        )));
    }
    Ok(checked.stamp)
}

/// The certificates of `--tsa-cert FILE` (PEM, one or more; or one DER).
pub fn load_certificates(path: &Path) -> Result<Vec<Certificate>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = if bytes.starts_with(b"-----") || bytes.iter().take(64).all(u8::is_ascii) {
        Certificate::load_pem_chain(&bytes).map_err(|e| e.to_string())
    } else {
        Certificate::from_der(&bytes)
            .map(|c| vec![c])
            .map_err(|e| e.to_string())
    };
    match certs {
        Ok(c) if !c.is_empty() => Ok(c),
        Ok(_) => Err(format!("{} holds no certificate", path.display())),
        Err(e) => Err(format!(
            "{} is not a PEM or DER X.509 certificate ({e})",
            path.display()
        )),
    }
}
