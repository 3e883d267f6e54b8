//! `spawn-elite receive`: a small HTTP server that verifies signed
//! callbacks and appends accepted receipts to a hash-chained JSONL log.
//!
//! Statuses: 204 accepted (or already accepted: same `Idempotency-Key`),
//! 400 malformed, 401 bad/unknown signature, body not matching its digest,
//! or `created`/`expires` outside the window, 409 replayed nonce,
//! 413 body too large, 500 the log could not be written (nothing accepted).
//! See `docs/CALLBACK.md`.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::Args;
use ed25519_dalek::VerifyingKey;
use serde_json::json;

use crate::httpsig::{self, RequestParts, SigError};
use crate::keys;
use crate::receipt::Receipt;
// The log's chain follows the spawn ledger's convention: `seq` from 1,
// `prev` = BLAKE3 hex of the previous line's bytes without its newline,
// and the ledger's GENESIS before the first line.
use crate::ledger::GENESIS;

/// Accepted clock skew and signature lifetime, in seconds.
pub const WINDOW_SECS: i64 = 300;

/// `spawn-elite receive`: verify signed callbacks and log the receipts.
#[derive(Args, Debug, Clone)]
pub struct ReceiveArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8787")]
    pub listen: String,
    /// Directory of trusted public keys (*.pub, SPKI PEM), looked up by key id
    #[arg(long, value_name = "DIR")]
    pub trust: PathBuf,
    /// Hash-chained JSONL log of accepted receipts
    /// (default: $XDG_DATA_HOME/spawn-elite/received.jsonl)
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Largest accepted body in bytes (413 above it)
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub max_body: usize,
    /// Requests handled at once
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,
}

/// BLAKE3 (hex) of one log line, without its newline.
pub fn line_hash(line: &str) -> String {
    blake3::hash(line.as_bytes()).to_hex().to_string()
}

struct LogState {
    file: File,
    last_hash: String,
    seq: u64,
    seen: HashSet<String>,
}

/// Read an existing log, check its chain, and collect what it accepted.
fn open_log(path: &Path) -> Result<LogState> {
    let mut last_hash = GENESIS.to_owned();
    let mut seq = 0;
    let mut seen = HashSet::new();
    if path.exists() {
        let text = fs::read_to_string(path)
            .with_context(|| format!("cannot read log {}", path.display()))?;
        if !text.is_empty() && !text.ends_with('\n') {
            bail!(
                "log {} ends in a partial line (cut off while written); move the file aside or remove that line",
                path.display()
            );
        }
        for (n, line) in text.lines().enumerate() {
            let n = n + 1;
            let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
                anyhow!(
                    "log {} is broken at line {n}: not JSON ({e}); move the file aside",
                    path.display()
                )
            })?;
            if v.get("seq").and_then(|s| s.as_u64()) != Some(n as u64) {
                bail!(
                    "log {} is broken at line {n}: its seq is not {n}, lines were removed or reordered; move the file aside",
                    path.display()
                );
            }
            if v.get("prev").and_then(|p| p.as_str()) != Some(last_hash.as_str()) {
                bail!(
                    "log {} is broken at line {n}: its prev is not the BLAKE3 of the line before; move the file aside",
                    path.display()
                );
            }
            if let Some(k) = v.get("idempotency_key").and_then(|k| k.as_str()) {
                seen.insert(k.to_owned());
            }
            last_hash = line_hash(line);
            seq += 1;
        }
    } else if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open log {} for appending", path.display()))?;
    Ok(LogState {
        file,
        last_hash,
        seq,
        seen,
    })
}

fn load_trust(dir: &Path) -> Result<HashMap<String, VerifyingKey>> {
    let entries = fs::read_dir(dir).map_err(|e| {
        anyhow!(
            "cannot read trust directory {}: {e}; create it and put *.pub keys in it",
            dir.display()
        )
    })?;
    let mut keys = HashMap::new();
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "pub") {
            match keys::load_public_key(&p) {
                Ok(k) => {
                    keys.insert(keys::key_id(&k), k);
                }
                Err(e) => eprintln!("warning: skipping {}: {e}", p.display()),
            }
        }
    }
    Ok(keys)
}

struct State {
    trust_dir: PathBuf,
    keys: RwLock<HashMap<String, VerifyingKey>>,
    nonces: Mutex<HashMap<(String, String), i64>>,
    log: Mutex<LogState>,
    /// Group commit: the highest `seq` known to be on disk, and a handle
    /// to flush the log with. One `fdatasync` covers every line written
    /// before it, so concurrent requests share it.
    synced: Mutex<u64>,
    sync_file: File,
    max_body: usize,
}

/// A running receiver. Dropping it without [`Receiver::stop`] leaves the
/// workers running until the process ends.
pub struct Receiver {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    keys: usize,
}

impl Receiver {
    /// Bind, load the trusted keys and the log, and start the workers.
    pub fn start(args: &ReceiveArgs, stop: Arc<AtomicBool>) -> Result<Receiver> {
        let log_path = match &args.log {
            Some(p) => p.clone(),
            None => crate::paths::data_dir()?.join("received.jsonl"),
        };
        let keys = load_trust(&args.trust)?;
        let log = open_log(&log_path)?;
        let sync_file = log
            .file
            .try_clone()
            .with_context(|| format!("cannot open log {}", log_path.display()))?;
        let synced = log.seq;
        let server = tiny_http::Server::http(&args.listen).map_err(|e| {
            anyhow!(
                "cannot listen on {}: {e}; pick another address with --listen",
                args.listen
            )
        })?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| anyhow!("listening address is not an IP address"))?;
        let server = Arc::new(server);
        let n_keys = keys.len();
        let state = Arc::new(State {
            trust_dir: args.trust.clone(),
            keys: RwLock::new(keys),
            nonces: Mutex::new(HashMap::new()),
            log: Mutex::new(log),
            synced: Mutex::new(synced),
            sync_file,
            max_body: args.max_body,
        });
        let workers = (0..args.workers)
            .map(|_| {
                let server = Arc::clone(&server);
                let state = Arc::clone(&state);
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match server.recv_timeout(Duration::from_millis(100)) {
                            Ok(Some(req)) => serve(&state, req),
                            Ok(None) => {}
                            Err(_) => break,
                        }
                    }
                })
            })
            .collect();
        Ok(Receiver {
            addr,
            stop,
            workers,
            keys: n_keys,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Finish the requests in hand, then stop listening.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            let _ = w.join();
        }
    }
}

/// Run the receiver until SIGINT or SIGTERM.
pub fn run(args: &ReceiveArgs) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("cannot install the signal handler")?;
    }
    let r = Receiver::start(args, Arc::clone(&stop))?;
    println!(
        "listening on http://{} ({} trusted key{})",
        r.addr(),
        r.keys,
        if r.keys == 1 { "" } else { "s" }
    );
    let _ = std::io::stdout().flush();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    r.stop();
    eprintln!("receiver stopped");
    Ok(())
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn serve(state: &State, mut req: tiny_http::Request) {
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
    let checked =
        Receipt::parse(&body, "in the request body").map_err(|e| bad(format!("{e:#}")))?;
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

    let mut log = state.log.lock().unwrap_or_else(PoisonError::into_inner);
    if log.seen.contains(&idem) {
        return Ok(format!("already accepted {idem}; not logged again"));
    }
    let line = json!({
        "seq": log.seq + 1,
        "received_at": jiff::Timestamp::now().to_string(),
        "keyid": keyid,
        "idempotency_key": idem,
        "content_digest": httpsig::content_digest(&body),
        "receipt": receipt,
        "prev": log.last_hash,
    })
    .to_string();
    if let Err(e) = log.file.write_all(format!("{line}\n").as_bytes()) {
        return Err((500, format!("cannot write the log: {e}")));
    }
    log.last_hash = line_hash(&line);
    log.seq += 1;
    log.seen.insert(idem.clone());
    let my_seq = log.seq;
    drop(log);

    // 204 only once the line is on disk.
    let mut synced = state.synced.lock().unwrap_or_else(PoisonError::into_inner);
    if *synced < my_seq {
        let written = state.log.lock().unwrap_or_else(PoisonError::into_inner).seq;
        if let Err(e) = state.sync_file.sync_data() {
            return Err((500, format!("cannot flush the log to disk: {e}")));
        }
        *synced = written;
    }
    Ok(format!("accepted {idem} from key {keyid}"))
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
    let fresh = load_trust(&state.trust_dir).ok()?;
    let found = fresh.get(id).copied();
    *state.keys.write().unwrap_or_else(PoisonError::into_inner) = fresh;
    found
}
