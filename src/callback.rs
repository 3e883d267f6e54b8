//! Signed callback delivery that never loses a receipt.
//!
//! A callback is an HTTP `POST` of the receipt JSON, signed per RFC 9421
//! (see [`crate::httpsig`]), retried with exponential backoff and jitter on
//! transient failures, and written to the outbox
//! (`$XDG_DATA_HOME/spawn-elite/outbox/`) when it finally cannot be
//! delivered. `spawn-elite callback flush` resends the outbox.
//! The wire format is documented in `docs/CALLBACK.md`.

use std::fs;
use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use clap::{Args, Subcommand};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use ureq::Agent;
use ureq::http::Uri;
use ureq::tls::{PemItem, RootCerts, TlsConfig};

use crate::exit_codes::{ExitCode, fail};
use crate::httpsig::{self, RequestParts, SignatureParams};
use crate::interrupt;
use crate::keys;
use crate::receipt::Receipt;

/// Spawn flags for the callback; the spawn command flattens this in.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Signed callback")]
pub struct CallbackArgs {
    /// After a successful spawn, POST the signed receipt to URL
    #[arg(long = "callback", value_name = "URL")]
    pub callback: Option<String>,
    /// Ed25519 private key (PKCS#8 PEM from `spawn-elite keygen`) that signs the callback
    #[arg(long = "key", value_name = "PATH", requires = "callback")]
    pub key: Option<PathBuf>,
    /// Key id to put in the signature (default: the key's fingerprint)
    #[arg(long = "key-id", value_name = "ID", requires = "callback")]
    pub key_id: Option<String>,
    #[command(flatten)]
    pub delivery: DeliveryOptions,
}

impl CallbackArgs {
    /// The callback options, if `--callback` was given. Call this and
    /// [`CallbackOptions::check`] before spawning, so a bad key or URL
    /// fails before anything is created.
    pub fn options(&self) -> Result<Option<CallbackOptions>> {
        let Some(url) = &self.callback else {
            return Ok(None);
        };
        let key_path = match &self.key {
            Some(k) => k.clone(),
            None => keys::default_key_path()?,
        };
        Ok(Some(CallbackOptions::new(
            url.clone(),
            key_path,
            self.key_id.clone(),
            self.delivery.resolved()?,
        )))
    }
}

/// Timeout and retry flags, as given. The environment overrides
/// (`SPAWN_ELITE_CALLBACK_*`) are read by [`RetryArgs::resolve`], not by
/// clap: clap counts a set variable as a given flag and prints it in every
/// usage line. `callback flush` takes only these; everything else comes
/// from the queued entry.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Delivery")]
pub struct RetryArgs {
    /// Time allowed to connect, per attempt [default: 5s] [env: SPAWN_ELITE_CALLBACK_CONNECT_TIMEOUT]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub connect_timeout: Option<Duration>,
    /// Time allowed for a whole attempt, connect to response [default: 30s] [env: SPAWN_ELITE_CALLBACK_TIMEOUT]
    #[arg(long = "callback-timeout", value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Attempts before the callback is queued in the outbox (1-100) [default: 4] [env: SPAWN_ELITE_CALLBACK_ATTEMPTS]
    #[arg(long, value_name = "N", value_parser = parse_attempts)]
    pub attempts: Option<u32>,
    /// Wait before the first retry; doubles each retry, with jitter [default: 500ms] [env: SPAWN_ELITE_CALLBACK_BACKOFF]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub backoff: Option<Duration>,
    /// Longest wait between attempts; a longer Retry-After queues the callback instead [default: 60s] [env: SPAWN_ELITE_CALLBACK_MAX_BACKOFF]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_backoff: Option<Duration>,
}

impl RetryArgs {
    /// Flag, else environment variable, else default. A malformed variable
    /// is a usage error (exit code 2) naming it.
    pub fn resolve(&self) -> Result<RetryOptions> {
        let d = RetryOptions::default();
        Ok(RetryOptions {
            connect_timeout: pick(
                self.connect_timeout,
                "SPAWN_ELITE_CALLBACK_CONNECT_TIMEOUT",
                parse_duration,
                d.connect_timeout,
            )?,
            timeout: pick(
                self.timeout,
                "SPAWN_ELITE_CALLBACK_TIMEOUT",
                parse_duration,
                d.timeout,
            )?,
            attempts: pick(
                self.attempts,
                "SPAWN_ELITE_CALLBACK_ATTEMPTS",
                parse_attempts,
                d.attempts,
            )?,
            backoff: pick(
                self.backoff,
                "SPAWN_ELITE_CALLBACK_BACKOFF",
                parse_duration,
                d.backoff,
            )?,
            max_backoff: pick(
                self.max_backoff,
                "SPAWN_ELITE_CALLBACK_MAX_BACKOFF",
                parse_duration,
                d.max_backoff,
            )?,
        })
    }
}

fn pick<T>(
    flag: Option<T>,
    var: &str,
    parse: fn(&str) -> std::result::Result<T, String>,
    default: T,
) -> Result<T> {
    if let Some(v) = flag {
        return Ok(v);
    }
    match std::env::var(var) {
        Ok(v) if v.trim().is_empty() => Ok(default),
        Ok(v) => parse(&v).map_err(|e| {
            fail(
                ExitCode::Usage,
                format!("environment variable {var}: {e}; fix it or unset it"),
            )
        }),
        Err(std::env::VarError::NotPresent) => Ok(default),
        Err(std::env::VarError::NotUnicode(_)) => Err(fail(
            ExitCode::Usage,
            format!("environment variable {var} is not UTF-8; fix it or unset it"),
        )),
    }
}

fn parse_attempts(s: &str) -> std::result::Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if (1..=100).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not a number of attempts from 1 to 100")),
    }
}

/// Timeouts and retries in effect: flags, environment and defaults resolved.
#[derive(Debug, Clone)]
pub struct RetryOptions {
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryOptions {
    fn default() -> Self {
        RetryOptions {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            attempts: 4,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// How hard to try (timeouts, retries) and whom to trust (TLS).
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Delivery")]
pub struct DeliveryOptions {
    #[command(flatten)]
    pub retry_args: RetryArgs,
    /// `retry_args` resolved; filled in by [`DeliveryOptions::resolved`].
    #[arg(skip)]
    pub retry: RetryOptions,
    /// PEM file of CA certificates to trust instead of the platform's [env: SSL_CERT_FILE]
    // SSL_CERT_FILE is read by `ca_file`, not by clap: clap would count a
    // set variable as a given flag and print it in usage lines.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Allow plain http:// to hosts other than loopback (the receipt and signature travel in clear)
    #[arg(long)]
    pub allow_insecure_http: bool,
    /// Print no retry notices (`-q`); the final outcome is still reported.
    #[arg(skip)]
    pub quiet: bool,
}

impl DeliveryOptions {
    /// A copy with the timeout and retry settings resolved (flags,
    /// environment, defaults).
    pub fn resolved(&self) -> Result<DeliveryOptions> {
        let mut d = self.clone();
        d.retry = self.retry_args.resolve()?;
        Ok(d)
    }

    /// The CA file to trust: `--ca-cert`, else a non-empty `SSL_CERT_FILE`.
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.ca_cert.clone().or_else(ssl_cert_file)
    }
}

fn ssl_cert_file() -> Option<PathBuf> {
    std::env::var_os("SSL_CERT_FILE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Everything needed to deliver one callback.
#[derive(Debug, Clone)]
pub struct CallbackOptions {
    pub url: String,
    pub key_path: PathBuf,
    /// Overrides the key's fingerprint as `keyid`.
    pub key_id: Option<String>,
    pub delivery: DeliveryOptions,
    /// The key, once loaded: `check` and the delivery after it read (and
    /// warn about) the key file once.
    key: OnceLock<SigningKey>,
}

impl CallbackOptions {
    pub fn new(
        url: String,
        key_path: PathBuf,
        key_id: Option<String>,
        delivery: DeliveryOptions,
    ) -> Self {
        CallbackOptions {
            url,
            key_path,
            key_id,
            delivery,
            key: OnceLock::new(),
        }
    }

    /// Check the URL, load the key and CA file. Errors here are the user's
    /// to fix (key errors exit with code 9); nothing is queued.
    pub fn check(&self) -> Result<()> {
        self.prepare().map(|_| ())
    }

    fn signing_key(&self) -> Result<SigningKey> {
        if let Some(k) = self.key.get() {
            return Ok(k.clone());
        }
        let k = keys::load_signing_key(&self.key_path)?;
        Ok(self.key.get_or_init(|| k).clone())
    }

    fn prepare(&self) -> Result<Prepared> {
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

/// The result of [`deliver`]. Serializes as
/// `{"outcome":"delivered","status":204,"attempts":1}` or
/// `{"outcome":"queued","outbox_file":"…","reason":"…"}` for `--json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Delivery {
    /// The receiver answered 2xx.
    Delivered { status: u16, attempts: u32 },
    /// Not delivered; the signed-request inputs are in `outbox_file`.
    Queued {
        outbox_file: PathBuf,
        reason: String,
    },
}

impl Delivery {
    /// One line for the user.
    pub fn message(&self, url: &str) -> String {
        match self {
            Delivery::Delivered { status, attempts } => format!(
                "callback delivered to {url} (HTTP {status}, {attempts} attempt{})",
                if *attempts == 1 { "" } else { "s" }
            ),
            Delivery::Queued {
                outbox_file,
                reason,
            } => format!(
                "callback to {url} not delivered ({reason}); queued in {}; resend with `spawn-elite callback flush`",
                outbox_file.display()
            ),
        }
    }
}

/// Sign and POST `receipt_json` to `opts.url`, retrying transient
/// failures. When it cannot be delivered, the request inputs go to the
/// outbox and `Delivery::Queued` is returned: the receipt is never lost.
///
/// `Err` means a problem the user must fix first (bad URL, key, CA file),
/// or that even the outbox could not be written.
/// `receipt_path` is where the receipt lives outside the outbox, recorded
/// in the entry so `callback drop` can point to it.
pub fn deliver(
    receipt_json: &[u8],
    merkle_root: &str,
    receipt_path: Option<&Path>,
    opts: &CallbackOptions,
) -> Result<Delivery> {
    let prepared = opts.prepare()?;
    match send_with_retries(&prepared, receipt_json, merkle_root, &opts.delivery) {
        Outcome::Delivered { status, attempts } => Ok(Delivery::Delivered { status, attempts }),
        Outcome::Failed {
            reason,
            attempts,
            permanent,
        } => {
            let mut entry = OutboxEntry::new(receipt_json, merkle_root, opts, &reason);
            entry.receipt_path = receipt_path.map(Path::to_path_buf);
            entry.attempts = attempts;
            entry.permanent = permanent;
            let outbox_file = entry.write().with_context(|| {
                format!("callback failed ({reason}) and the outbox could not be written; the receipt is still in the spawned repository")
            })?;
            Ok(Delivery::Queued {
                outbox_file,
                reason,
            })
        }
    }
}

/// After a successful spawn: deliver the receipt, tell the user, and say
/// whether the callback is still pending (exit code 7). Never fails: the
/// spawn is done and the receipt is at `receipt_path` whatever happens.
pub fn after_spawn(
    receipt_json: &[u8],
    merkle_root: &str,
    receipt_path: &Path,
    opts: &CallbackOptions,
    quiet: bool,
) -> (CallbackStatus, serde_json::Value) {
    let to_json = |d: &Delivery| serde_json::to_value(d).unwrap_or(serde_json::Value::Null);
    let mut opts = opts.clone();
    opts.delivery.quiet = quiet;
    let opts = &opts;
    match deliver(receipt_json, merkle_root, Some(receipt_path), opts) {
        Ok(d @ Delivery::Delivered { .. }) => {
            if !quiet {
                eprintln!("{}", d.message(&opts.url));
            }
            (CallbackStatus::Done, to_json(&d))
        }
        Ok(d @ Delivery::Queued { .. }) => {
            eprintln!("warning: {}", d.message(&opts.url));
            (CallbackStatus::Pending, to_json(&d))
        }
        Err(e) => {
            let reason = format!("{e:#}");
            eprintln!(
                "warning: {reason}; resend with `spawn-elite callback send --receipt {} --url {} --key {}`",
                receipt_path.display(),
                opts.url,
                opts.key_path.display()
            );
            let report =
                serde_json::json!({"outcome": "failed", "reason": reason, "receipt": receipt_path});
            (CallbackStatus::Pending, report)
        }
    }
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

struct Prepared {
    target: Target,
    key: SigningKey,
    key_id: String,
    agent: Agent,
}

#[derive(Debug, Clone)]
struct Target {
    url: String,
    authority: String,
    path: String,
    query: Option<String>,
}

impl Target {
    fn parse(url: &str, allow_insecure_http: bool) -> Result<Target> {
        let uri: Uri = url.parse().map_err(|e| {
            fail(
                ExitCode::Usage,
                format!("callback URL {url:?} is not a valid URL ({e}); use https://host/path"),
            )
        })?;
        let scheme = uri.scheme_str().unwrap_or("");
        let auth = uri.authority().ok_or_else(|| {
            fail(
                ExitCode::Usage,
                format!("callback URL {url:?} has no host; use https://host/path"),
            )
        })?;
        if auth.as_str().contains('@') {
            return Err(fail(
                ExitCode::Usage,
                format!("callback URL {url:?} carries credentials; remove the user:password@ part"),
            ));
        }
        let host = auth.host().to_ascii_lowercase();
        let default_port = match scheme {
            "https" => 443,
            "http" => 80,
            _ => {
                return Err(fail(
                    ExitCode::Usage,
                    format!(
                        "callback URL {url:?} must start with https:// (or http:// for loopback)"
                    ),
                ));
            }
        };
        if scheme == "http" && !allow_insecure_http && !is_loopback(&host) {
            return Err(fail(
                ExitCode::Usage,
                format!(
                    "refusing to send a callback over plain http:// to {host}: use https://, or pass --allow-insecure-http"
                ),
            ));
        }
        let authority = match auth.port_u16() {
            Some(p) if p != default_port => format!("{host}:{p}"),
            _ => host,
        };
        let path = if uri.path().is_empty() {
            "/".to_owned()
        } else {
            uri.path().to_owned()
        };
        Ok(Target {
            url: url.to_owned(),
            authority,
            path,
            query: uri.query().map(str::to_owned),
        })
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn build_agent(d: &DeliveryOptions) -> Result<Agent> {
    let roots = match &d.ca_file() {
        Some(path) => {
            let pem = fs::read(path).map_err(|e| {
                anyhow!(
                    "cannot read CA certificates {}: {e}; pass an existing PEM file to --ca-cert (or SSL_CERT_FILE)",
                    path.display()
                )
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
        .timeout_connect(Some(d.retry.connect_timeout))
        .timeout_global(Some(d.retry.timeout))
        .user_agent(concat!("spawn-elite/", env!("CARGO_PKG_VERSION")))
        .tls_config(TlsConfig::builder().root_certs(roots).build())
        .build();
    Ok(Agent::new_with_config(config))
}

struct SignedRequest {
    headers: Vec<(String, String)>,
    base: String,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| anyhow!("no randomness from the operating system: {e}"))?;
    Ok(b)
}

/// Headers for one attempt: fresh `created` and nonce every time.
fn signed_request(p: &Prepared, body: &[u8], merkle_root: &str) -> Result<SignedRequest> {
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

enum Attempt {
    Delivered(u16),
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    Fail(String),
}

fn attempt_once(p: &Prepared, body: &[u8], merkle_root: &str) -> Attempt {
    let req = match signed_request(p, body, merkle_root) {
        Ok(r) => r,
        Err(e) => return Attempt::Fail(e.to_string()),
    };
    let mut builder = p.agent.post(&p.target.url);
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    match builder.send(body) {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            if (200..300).contains(&status) {
                return Attempt::Delivered(status);
            }
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            let text = resp
                .body_mut()
                .with_config()
                .limit(512)
                .read_to_string()
                .unwrap_or_default();
            let text = text.trim();
            let reason = if text.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {}", text.lines().next().unwrap_or(""))
            };
            if status == 408 || status == 429 || (500..600).contains(&status) {
                Attempt::Retry {
                    reason,
                    retry_after,
                }
            } else {
                Attempt::Fail(reason)
            }
        }
        Err(e) => {
            let reason = describe(&e);
            match e {
                ureq::Error::BadUri(_)
                | ureq::Error::Tls(_)
                | ureq::Error::Pem(_)
                | ureq::Error::Rustls(_)
                | ureq::Error::InvalidProxyUrl
                | ureq::Error::RedirectFailed
                | ureq::Error::TooManyRedirects => Attempt::Fail(reason),
                _ => Attempt::Retry {
                    reason,
                    retry_after: None,
                },
            }
        }
    }
}

fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::ConnectionFailed => "connection failed".to_owned(),
        ureq::Error::HostNotFound => "host not found".to_owned(),
        ureq::Error::Io(io) => format!("network error: {io}"),
        other => other.to_string(),
    }
}

/// `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::parse(v).ok()?.timestamp().as_second();
    Some(Duration::from_secs(
        when.saturating_sub(unix_now()).max(0) as u64
    ))
}

enum Outcome {
    Delivered {
        status: u16,
        attempts: u32,
    },
    Failed {
        reason: String,
        attempts: u32,
        /// Retrying will not help (a 4xx, a TLS error): the receiver or the
        /// setup must change first.
        permanent: bool,
    },
}

fn backoff_for(d: &RetryOptions, retry: u32) -> Duration {
    let base = d
        .backoff
        .saturating_mul(1u32 << retry.min(20))
        .min(d.max_backoff);
    // Equal jitter: half fixed, half random.
    let half = base / 2;
    let frac = random_bytes::<8>()
        .map(|b| u64::from_le_bytes(b) as f64 / u64::MAX as f64)
        .unwrap_or(0.5);
    half + half.mul_f64(frac)
}

fn send_with_retries(p: &Prepared, body: &[u8], merkle_root: &str, d: &DeliveryOptions) -> Outcome {
    let r = &d.retry;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match attempt_once(p, body, merkle_root) {
            Attempt::Delivered(status) => {
                return Outcome::Delivered {
                    status,
                    attempts: attempt,
                };
            }
            Attempt::Fail(reason) => {
                return Outcome::Failed {
                    reason,
                    attempts: attempt,
                    permanent: true,
                };
            }
            Attempt::Retry {
                reason,
                retry_after,
            } => {
                if attempt >= r.attempts {
                    return Outcome::Failed {
                        reason: format!(
                            "{reason}; gave up after {attempt} attempt{}",
                            if attempt == 1 { "" } else { "s" }
                        ),
                        attempts: attempt,
                        permanent: false,
                    };
                }
                let wait = match retry_after {
                    Some(ra) if ra > r.max_backoff => {
                        return Outcome::Failed {
                            reason: format!(
                                "{reason}; server asked to retry after {}s, longer than --max-backoff",
                                ra.as_secs()
                            ),
                            attempts: attempt,
                            permanent: false,
                        };
                    }
                    Some(ra) => ra,
                    None => backoff_for(r, attempt - 1),
                };
                if !d.quiet {
                    eprintln!(
                        "callback attempt {attempt}/{} to {} failed: {reason}; retrying in {} ms",
                        r.attempts,
                        p.target.url,
                        wait.as_millis()
                    );
                }
                if !interrupt::sleep(wait) {
                    return Outcome::Failed {
                        reason: format!("{reason}; interrupted before attempt {}", attempt + 1),
                        attempts: attempt,
                        permanent: false,
                    };
                }
            }
        }
    }
}

// ---------------------------------------------------------------- outbox

/// One queued callback: what is needed to sign and send it again.
#[derive(Debug, Serialize, Deserialize)]
struct OutboxEntry {
    version: u32,
    url: String,
    key_path: PathBuf,
    key_id: Option<String>,
    idempotency_key: String,
    /// The receipt bytes exactly as first sent, base64.
    receipt_base64: String,
    /// Where the receipt lives outside the outbox, when known.
    #[serde(default)]
    receipt_path: Option<PathBuf>,
    ca_cert: Option<PathBuf>,
    allow_insecure_http: bool,
    queued_at: String,
    /// Attempts made so far, by the first send and every flush.
    #[serde(default)]
    attempts: u32,
    last_error: String,
    /// The last failure will not go away by retrying (a 4xx such as 401,
    /// a TLS error, a key that cannot be loaded).
    #[serde(default)]
    permanent: bool,
}

impl OutboxEntry {
    fn new(receipt: &[u8], merkle_root: &str, opts: &CallbackOptions, reason: &str) -> Self {
        OutboxEntry {
            version: 1,
            url: opts.url.clone(),
            key_path: opts.key_path.clone(),
            key_id: opts.key_id.clone(),
            idempotency_key: merkle_root.to_owned(),
            receipt_base64: STANDARD.encode(receipt),
            receipt_path: None,
            ca_cert: opts.delivery.ca_file(),
            allow_insecure_http: opts.delivery.allow_insecure_http,
            queued_at: jiff::Timestamp::now().to_string(),
            attempts: 0,
            last_error: reason.to_owned(),
            permanent: false,
        }
    }

    fn read(file: &Path) -> std::result::Result<OutboxEntry, String> {
        let bytes = fs::read(file).map_err(|e| format!("cannot read: {e}"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("not an outbox entry: {e}"))
    }

    fn receipt(&self) -> std::result::Result<Vec<u8>, String> {
        STANDARD
            .decode(&self.receipt_base64)
            .map_err(|e| format!("receipt_base64 is not base64: {e}"))
    }

    /// The URL, key, key id, CA file and `--allow-insecure-http` come from
    /// the entry; timeouts and retries from `flush`.
    fn options(&self, retry: &RetryOptions) -> CallbackOptions {
        let delivery = DeliveryOptions {
            retry_args: RetryArgs::default(),
            retry: retry.clone(),
            ca_cert: self.ca_cert.clone(),
            allow_insecure_http: self.allow_insecure_http,
            quiet: false,
        };
        CallbackOptions::new(
            self.url.clone(),
            self.key_path.clone(),
            self.key_id.clone(),
            delivery,
        )
    }

    fn write(&self) -> Result<PathBuf> {
        let dir = outbox_dir()?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot create outbox {}", dir.display()))?;
        let root: String = self
            .idempotency_key
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(16)
            .collect();
        let tag = URL_SAFE_NO_PAD.encode(random_bytes::<6>()?);
        let name = format!("{}-{root}-{tag}.json", unix_now());
        let path = dir.join(&name);
        self.write_to(&path)?;
        Ok(path)
    }

    /// Write atomically to `path` (a temporary file beside it, renamed).
    fn write_to(&self, path: &Path) -> Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let json = serde_json::to_vec_pretty(self)?;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        if let Err(e) = f.write_all(&json).and_then(|_| f.sync_all()) {
            let _ = fs::remove_file(&tmp);
            return Err(anyhow!("cannot write {}: {e}", tmp.display()));
        }
        fs::rename(&tmp, path).with_context(|| format!("cannot create {}", path.display()))
    }
}

/// `$XDG_DATA_HOME/spawn-elite/outbox`.
pub fn outbox_dir() -> Result<PathBuf> {
    Ok(crate::paths::data_dir()?.join("outbox"))
}

/// The entry files in the outbox, oldest first (names start with the time).
fn outbox_files() -> Result<Vec<PathBuf>> {
    let dir = outbox_dir()?;
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => bail!("cannot read outbox {}: {e}", dir.display()),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_entry_name(p))
        .collect();
    files.sort();
    Ok(files)
}

fn is_entry_name(p: &Path) -> bool {
    p.extension().is_some_and(|x| x == "json")
        && !p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// A queued callback `flush` could not deliver.
#[derive(Debug)]
pub struct Pending {
    pub file: PathBuf,
    pub reason: String,
    /// Retrying as it is will not help; see [`OutboxEntry::permanent`].
    pub permanent: bool,
}

/// What `callback flush` did.
#[derive(Debug, Default)]
pub struct FlushReport {
    pub delivered: Vec<PathBuf>,
    /// Still queued, with the reason.
    pub pending: Vec<Pending>,
}

/// Try every outbox entry once (with retries); remove only the delivered.
pub fn flush(retry: &RetryOptions) -> Result<FlushReport> {
    let mut report = FlushReport::default();
    for file in outbox_files()? {
        match flush_one(&file, retry) {
            Ok(()) => {
                fs::remove_file(&file).with_context(|| {
                    format!(
                        "delivered but could not remove {}; remove it by hand",
                        file.display()
                    )
                })?;
                report.delivered.push(file);
            }
            Err((reason, permanent)) => report.pending.push(Pending {
                file,
                reason,
                permanent,
            }),
        }
    }
    Ok(report)
}

/// The merkle_root of a valid receipt, checked as `verify` checks it.
/// A proof, a ledger line or any other JSON is refused (exit code 6).
fn checked_root(receipt: &[u8], origin: &str) -> Result<String> {
    Ok(Receipt::parse(receipt, origin)?.merkle_root().to_owned())
}

fn flush_one(file: &Path, retry: &RetryOptions) -> std::result::Result<(), (String, bool)> {
    let mut entry = OutboxEntry::read(file).map_err(|e| (e, true))?;
    let receipt = entry.receipt().map_err(|e| (e, true))?;
    let origin = format!("queued in {}", file.display());
    let root = checked_root(&receipt, &origin).map_err(|e| (format!("{e:#}"), true))?;
    if root != entry.idempotency_key {
        return Err((
            format!(
                "its idempotency_key {} is not its receipt's merkle_root {root}; the entry was edited",
                entry.idempotency_key
            ),
            true,
        ));
    }
    let opts = entry.options(retry);
    let outcome = match opts.prepare() {
        Ok(prepared) => send_with_retries(&prepared, &receipt, &root, &opts.delivery),
        Err(e) => Outcome::Failed {
            reason: format!("{e:#}"),
            attempts: 0,
            permanent: true,
        },
    };
    match outcome {
        Outcome::Delivered { .. } => Ok(()),
        Outcome::Failed {
            reason,
            attempts,
            permanent,
        } => {
            entry.attempts = entry.attempts.saturating_add(attempts);
            entry.last_error = reason.clone();
            entry.permanent = permanent;
            if let Err(e) = entry.write_to(file) {
                eprintln!("warning: could not record the attempt in the entry: {e:#}");
            }
            Err((reason, permanent))
        }
    }
}

/// Resolve `callback drop FILE`: a file in the outbox, by path or by name.
/// Anything outside the outbox is refused, so `drop` never deletes other files.
fn entry_path(arg: &Path) -> Result<PathBuf> {
    let dir = outbox_dir()?;
    let by_name = arg.components().count() == 1;
    let candidate = if by_name {
        dir.join(arg)
    } else {
        arg.to_path_buf()
    };
    let not_entry = |why: String| {
        fail(
            ExitCode::Usage,
            format!(
                "{} {why}; pass a file listed by `spawn-elite callback list`",
                arg.display()
            ),
        )
    };
    let file = fs::canonicalize(&candidate)
        .map_err(|e| not_entry(format!("is not an outbox entry ({e})")))?;
    let dir = fs::canonicalize(&dir).map_err(|e| {
        not_entry(format!(
            "is not an outbox entry (outbox {}: {e})",
            dir.display()
        ))
    })?;
    if file.parent() != Some(dir.as_path()) || !is_entry_name(&file) {
        return Err(not_entry(format!("is not in the outbox {}", dir.display())));
    }
    Ok(file)
}

/// `callback drop FILE`: remove one entry; the receipt must survive
/// elsewhere, so it is saved when it is not where the entry says it is.
/// Returns the message for the user.
fn drop_entry(arg: &Path) -> Result<String> {
    let file = entry_path(arg)?;
    let entry = OutboxEntry::read(&file).map_err(|e| {
        fail(
            ExitCode::InvalidReceipt,
            format!(
                "{}: {e}; it is not an entry spawn-elite can read: inspect it and remove it by hand",
                file.display()
            ),
        )
    })?;
    let receipt = entry.receipt().map_err(|e| {
        fail(
            ExitCode::InvalidReceipt,
            format!("{}: {e}; inspect it and remove it by hand", file.display()),
        )
    })?;
    let kept_at = entry
        .receipt_path
        .as_ref()
        .filter(|p| fs::read(p).is_ok_and(|b| b == receipt));
    let where_now = match kept_at {
        Some(p) => format!("the receipt is still at {}", p.display()),
        None => {
            let saved_dir = crate::paths::data_dir()?.join("dropped");
            fs::create_dir_all(&saved_dir)
                .with_context(|| format!("cannot create {}", saved_dir.display()))?;
            let name = file.file_name().map(|n| n.to_owned()).unwrap_or_default();
            let saved = saved_dir.join(name);
            fs::write(&saved, &receipt).with_context(|| {
                format!(
                    "cannot save the receipt to {}; the entry was not dropped",
                    saved.display()
                )
            })?;
            let missing = match &entry.receipt_path {
                Some(p) => format!("is no longer at {}", p.display()),
                None => "has no recorded location".to_owned(),
            };
            format!(
                "the receipt {missing}, so it was saved to {}",
                saved.display()
            )
        }
    };
    fs::remove_file(&file).with_context(|| format!("cannot remove {}", file.display()))?;
    Ok(format!(
        "dropped {} (callback to {}, merkle_root {}); {where_now}",
        file.display(),
        entry.url,
        entry.idempotency_key
    ))
}

/// `callback list`: one block per queued callback.
fn list() -> Result<String> {
    let files = outbox_files()?;
    let dir = outbox_dir()?;
    if files.is_empty() {
        return Ok(format!("outbox {} is empty\n", dir.display()));
    }
    let mut out = String::new();
    let mut permanent = 0;
    for f in &files {
        out.push_str(&format!("{}\n", f.display()));
        match OutboxEntry::read(f) {
            Ok(e) => {
                if e.permanent {
                    permanent += 1;
                }
                out.push_str(&format!("  url:       {}\n", e.url));
                out.push_str(&format!("  root:      {}\n", e.idempotency_key));
                if let Some(p) = &e.receipt_path {
                    out.push_str(&format!("  receipt:   {}\n", p.display()));
                }
                out.push_str(&format!("  queued at: {}\n", e.queued_at));
                out.push_str(&format!("  attempts:  {}\n", e.attempts));
                out.push_str(&format!(
                    "  last:      {}{}\n",
                    e.last_error,
                    if e.permanent {
                        " (permanent: retrying will not help until this is fixed)"
                    } else {
                        ""
                    }
                ));
            }
            Err(why) => {
                permanent += 1;
                out.push_str(&format!("  unreadable: {why}\n"));
            }
        }
    }
    out.push_str(&format!(
        "{} queued ({permanent} failing permanently); resend with `spawn-elite callback flush`, remove one with `spawn-elite callback drop FILE`\n",
        files.len()
    ));
    Ok(out)
}

// ---------------------------------------------------------------- CLI

/// `spawn-elite callback …`
// Parsed once per run: boxing `Send` would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug, Clone)]
pub enum CallbackCommand {
    /// Send one receipt by hand (queued in the outbox if it cannot be delivered)
    Send(SendArgs),
    /// Resend every callback queued in the outbox; delivered ones are removed
    Flush(FlushArgs),
    /// Show what is queued in the outbox: file, URL, root, attempts, last error
    List,
    /// Remove one entry from the outbox (it is not sent); says where its receipt is
    Drop {
        /// The entry: a path or file name shown by `spawn-elite callback list`
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Args, Debug, Clone)]
pub struct SendArgs {
    /// Receipt file (.spawn-elite/receipt.json, or from `spawn-elite receipt`)
    #[arg(long, value_name = "FILE")]
    pub receipt: PathBuf,
    /// Where to POST it
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// Ed25519 private key (PKCS#8 PEM)
    #[arg(long, value_name = "PATH")]
    pub key: PathBuf,
    /// Key id to put in the signature (default: the key's fingerprint)
    #[arg(long = "key-id", value_name = "ID")]
    pub key_id: Option<String>,
    /// Print the exact request and signature base instead of sending
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub delivery: DeliveryOptions,
}

/// The URL, key, key id, CA file and `--allow-insecure-http` of each entry
/// are those it was queued with; only timeouts and retries are set here.
#[derive(Args, Debug, Clone)]
pub struct FlushArgs {
    #[command(flatten)]
    pub retry: RetryArgs,
}

/// How a callback command ended, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackStatus {
    /// Everything delivered (or nothing to do).
    Done,
    /// Something is (still) queued in the outbox.
    Pending,
}

pub fn run(cmd: &CallbackCommand) -> Result<CallbackStatus> {
    match cmd {
        CallbackCommand::Send(a) => {
            let receipt = fs::read(&a.receipt).map_err(|e| {
                fail(
                    ExitCode::Io,
                    format!(
                        "cannot read receipt {}: {e}; pass the right file with --receipt",
                        a.receipt.display()
                    ),
                )
            })?;
            let root = checked_root(&receipt, &a.receipt.display().to_string())?;
            let opts = CallbackOptions::new(
                a.url.clone(),
                a.key.clone(),
                a.key_id.clone(),
                a.delivery.resolved()?,
            );
            if a.dry_run {
                print!("{}", dry_run(&receipt, &root, &opts)?);
                return Ok(CallbackStatus::Done);
            }
            let receipt_path = std::path::absolute(&a.receipt).ok();
            let outcome = deliver(&receipt, &root, receipt_path.as_deref(), &opts)?;
            match outcome {
                Delivery::Delivered { .. } => {
                    println!("{}", outcome.message(&opts.url));
                    Ok(CallbackStatus::Done)
                }
                Delivery::Queued { .. } => {
                    eprintln!("{}", outcome.message(&opts.url));
                    Ok(CallbackStatus::Pending)
                }
            }
        }
        CallbackCommand::Flush(a) => {
            let report = flush(&a.retry.resolve()?)?;
            for f in &report.delivered {
                println!("delivered {}", f.display());
            }
            let mut permanent = 0;
            for p in &report.pending {
                if p.permanent {
                    permanent += 1;
                    eprintln!(
                        "rejected {}: {}; retrying will not help until that is fixed; to give up on it: spawn-elite callback drop {}",
                        p.file.display(),
                        p.reason,
                        p.file.display()
                    );
                } else {
                    eprintln!("still queued {}: {}", p.file.display(), p.reason);
                }
            }
            let mut summary = format!(
                "outbox: {} delivered, {} still queued",
                report.delivered.len(),
                report.pending.len()
            );
            if permanent > 0 {
                summary.push_str(&format!(
                    " ({permanent} rejected; `spawn-elite callback list` shows them)"
                ));
            }
            println!("{summary}");
            if report.pending.is_empty() {
                Ok(CallbackStatus::Done)
            } else {
                Ok(CallbackStatus::Pending)
            }
        }
        CallbackCommand::List => {
            print!("{}", list()?);
            Ok(CallbackStatus::Done)
        }
        CallbackCommand::Drop { file } => {
            println!("{}", drop_entry(file)?);
            Ok(CallbackStatus::Done)
        }
    }
}

/// `10s`, `500ms`, `2m`, or a bare number of seconds (may be fractional).
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration; write e.g. 10s, 500ms or 2m"))?;
    if !v.is_finite() || v < 0.0 || v * scale > 86_400.0 {
        return Err(format!("{s:?} is out of range (0 to 24h)"));
    }
    Ok(Duration::from_secs_f64(v * scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_serializes_for_json_output() {
        let d = Delivery::Delivered {
            status: 204,
            attempts: 2,
        };
        assert_eq!(
            serde_json::to_string(&d).expect("json"),
            r#"{"outcome":"delivered","status":204,"attempts":2}"#
        );
        let q = Delivery::Queued {
            outbox_file: PathBuf::from("/o/1.json"),
            reason: "HTTP 500".into(),
        };
        assert_eq!(
            serde_json::to_string(&q).expect("json"),
            r#"{"outcome":"queued","outbox_file":"/o/1.json","reason":"HTTP 500"}"#
        );
    }

    #[test]
    fn durations_accept_units_and_reject_nonsense() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("2d").is_err());
    }

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Tue, 20 Apr 2021 02:07:55 GMT"),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn targets_normalise_the_authority_and_refuse_remote_plain_http() {
        let t = Target::parse("https://Registry.Example:443/a/b?x=1", false).expect("ok");
        assert_eq!(t.authority, "registry.example");
        assert_eq!(t.path, "/a/b");
        assert_eq!(t.query.as_deref(), Some("x=1"));
        let t = Target::parse("http://127.0.0.1:8080", false).expect("loopback");
        assert_eq!(
            (t.authority.as_str(), t.path.as_str()),
            ("127.0.0.1:8080", "/")
        );
        assert!(Target::parse("http://[::1]:9/x", false).is_ok());
        assert!(Target::parse("http://localhost/x", false).is_ok());
        assert!(Target::parse("http://registry.example/x", false).is_err());
        assert!(Target::parse("http://registry.example/x", true).is_ok());
        assert!(Target::parse("https://user:pw@registry.example/x", false).is_err());
        assert!(Target::parse("ftp://registry.example/x", false).is_err());
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let d = RetryOptions {
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..RetryOptions::default()
        };
        for retry in 0..8 {
            let full =
                Duration::from_millis(100 * (1u64 << retry)).min(Duration::from_millis(1000));
            let w = backoff_for(&d, retry);
            assert!(
                w >= full / 2 && w <= full,
                "retry {retry}: {w:?} not in [{:?}, {full:?}]",
                full / 2
            );
        }
    }
}
