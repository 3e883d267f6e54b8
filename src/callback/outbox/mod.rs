//! The outbox: every callback is written here before its first attempt,
//! one JSON file each (`$XDG_DATA_HOME/spawn-elite/outbox/`), and removed
//! only once a receiver answered 2xx; what was not delivered waits until
//! `callback flush` delivers it or `callback drop` removes it.
//!
//! A process works on an entry only while it holds a [`Claim`] on it, an
//! exclusive `flock` on the entry file: concurrent flushes (and the spawn or
//! `send` that queued it) never send, rewrite or remove the same entry at
//! once. The kernel drops the lock of a process that dies, so there are no
//! stale claims.

mod claim;
mod listing;
pub mod stamp;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Result;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::deliver::{Undelivered, send_with_retries};
use super::options::{CallbackOptions, DeliveryOptions, RetryOptions};
use crate::error::{ExitCode, describe, fail, fail_with};
use crate::fsutil::{self, WriteOptions};
use crate::interrupt;
use crate::receipt::Receipt;
pub(super) use claim::Claim;
use claim::Take;
pub use listing::{drop_entry, list};

/// One queued callback: what is needed to sign and send it again.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct OutboxEntry {
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
    /// A signed spawn's attestation (its DSSE envelope file), base64: the
    /// callback then sends both as one bundle (docs/CALLBACK.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attestation_base64: Option<String>,
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
    /// Queued by a spawn before its repository was moved into place: it
    /// counts only once the receipt is at `receipt_path`. Cleared by the
    /// spawn's first outcome; left set only if the spawn was killed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    awaiting_spawn: bool,
}

impl OutboxEntry {
    /// The entry for a callback about to be sent. `receipt_path` is where
    /// the receipt lives outside the outbox, if known.
    pub(super) fn new(
        receipt: &[u8],
        merkle_root: &str,
        receipt_path: Option<&Path>,
        opts: &CallbackOptions,
        awaiting_spawn: bool,
        attestation: Option<&[u8]>,
    ) -> Self {
        OutboxEntry {
            attestation_base64: attestation.map(|a| STANDARD.encode(a)),
            version: 1,
            url: opts.url.clone(),
            key_path: opts.key_path.clone(),
            key_id: opts.key_id.clone(),
            idempotency_key: merkle_root.to_owned(),
            receipt_base64: STANDARD.encode(receipt),
            receipt_path: receipt_path.map(Path::to_path_buf),
            ca_cert: opts.delivery.ca_file(),
            allow_insecure_http: opts.delivery.allow_insecure_http,
            queued_at: jiff::Timestamp::now().to_string(),
            attempts: 0,
            last_error: "not attempted yet (queued before the first attempt)".to_owned(),
            permanent: false,
            awaiting_spawn,
        }
    }

    fn read(file: &Path) -> std::result::Result<OutboxEntry, String> {
        let bytes = fs::read(file).map_err(|e| format!("cannot read: {e}"))?;
        Self::parse(&bytes)
    }

    fn parse(bytes: &[u8]) -> std::result::Result<OutboxEntry, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("not an outbox entry: {e}"))
    }

    /// Count the attempts of `failed` and remember why the last one failed.
    pub(super) fn record(&mut self, failed: &Undelivered) {
        self.attempts = self.attempts.saturating_add(failed.attempts);
        self.last_error = failed.reason.clone();
        self.permanent = failed.permanent;
        self.awaiting_spawn = false;
    }

    fn attestation(&self) -> std::result::Result<Option<Vec<u8>>, String> {
        self.attestation_base64
            .as_ref()
            .map(|a| {
                STANDARD
                    .decode(a)
                    .map_err(|e| format!("attestation_base64 is not base64: {e}"))
            })
            .transpose()
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
        Err(e) => {
            let message = format!("cannot read outbox {}: {e}", dir.display());
            return Err(fail_with(ExitCode::Io, message, e));
        }
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

/// What `callback flush` did.
#[derive(Debug, Default)]
pub struct FlushReport {
    pub delivered: Vec<PathBuf>,
    /// Timestamp requests answered: the entry, the token file written, the
    /// TSA's time.
    pub stamped: Vec<(PathBuf, PathBuf, String)>,
    /// Still queued, with why the last try failed.
    pub pending: Vec<(PathBuf, Undelivered)>,
    /// How many of `pending` are timestamp requests (the rest: callbacks).
    pub pending_stamps: usize,
    /// Being sent right now by another process (another flush, a spawn,
    /// `callback send`), which reports its outcome: left to it.
    pub busy: Vec<PathBuf>,
    /// Queued by a spawn that never completed (nothing to report to a
    /// registry): removed, with why.
    pub abandoned: Vec<(PathBuf, String)>,
    /// Things that went wrong after the fact (a delivered entry that could
    /// not be removed, an attempt that could not be recorded), one line each.
    pub warnings: Vec<String>,
    /// Stopped by Ctrl-C (or SIGTERM, SIGHUP); whatever was not delivered
    /// is still queued.
    pub interrupted: bool,
}

/// Try every outbox entry once (with retries); remove only the delivered.
/// Entries another process holds are skipped, so several flushes (and
/// spawns) can run at once and each entry is sent by one of them.
pub fn flush(retry: &RetryOptions) -> Result<FlushReport> {
    let mut report = FlushReport::default();
    for file in outbox_files()? {
        if interrupt::requested() {
            report.interrupted = true;
            break;
        }
        if stamp::is_stamp(&file) {
            match Claim::take(&file) {
                Ok(Take::Claimed(claim)) => stamp::flush_one(*claim, retry, &mut report),
                Ok(Take::Busy) => report.busy.push(file),
                Ok(Take::Gone) => {}
                Err(why) => {
                    report.pending_stamps += 1;
                    report.pending.push((file, Undelivered::permanent(why)));
                }
            }
            continue;
        }
        match Claim::<OutboxEntry>::take(&file) {
            Ok(Take::Claimed(claim)) => flush_one(*claim, retry, &mut report),
            Ok(Take::Busy) => report.busy.push(file),
            Ok(Take::Gone) => {}
            Err(why) => report.pending.push((file, Undelivered::permanent(why))),
        }
        if report.interrupted {
            break;
        }
    }
    Ok(report)
}

/// The merkle_root of a valid receipt, checked as `verify` checks it.
/// A proof, a ledger line or any other JSON is refused (exit code 6).
pub fn checked_root(receipt: &[u8], origin: &str) -> Result<String> {
    Ok(Receipt::parse(receipt, origin)?.merkle_root().to_owned())
}

/// Why a claimed entry is not sent.
enum Unsendable {
    /// Not a valid entry or receipt: kept, and reported as rejected.
    Invalid(Undelivered),
    /// Queued by a spawn that was killed before its repository existed.
    Abandoned(String),
}

/// The receipt and its root, if the entry may be sent as it is.
/// The body to send (the receipt, or the bundle of receipt and
/// attestation) and the receipt's root, if the entry may be sent as it is.
fn sendable(entry: &OutboxEntry, file: &Path) -> Result<(Vec<u8>, String), Unsendable> {
    let invalid = |why: String| Unsendable::Invalid(Undelivered::permanent(why));
    let receipt = entry.receipt().map_err(invalid)?;
    let origin = format!("queued in {}", file.display());
    let root = checked_root(&receipt, &origin).map_err(|e| invalid(describe(&e)))?;
    if root != entry.idempotency_key {
        return Err(invalid(format!(
            "its idempotency_key {} is not its receipt's merkle_root {root}; the entry was edited",
            entry.idempotency_key
        )));
    }
    if entry.awaiting_spawn {
        let spawned = entry
            .receipt_path
            .as_ref()
            .is_some_and(|p| fs::read(p).is_ok_and(|b| b == receipt));
        if !spawned {
            let at = entry
                .receipt_path
                .as_ref()
                .map_or_else(|| "(no path)".to_owned(), |p| p.display().to_string());
            return Err(Unsendable::Abandoned(format!(
                "queued by a spawn that never completed ({at} does not hold its receipt), so there is nothing to report"
            )));
        }
    }
    let attestation = entry.attestation().map_err(invalid)?;
    let body = super::body(&receipt, attestation.as_deref()).map_err(invalid)?;
    Ok((body, root))
}

fn flush_one(mut claim: Claim, retry: &RetryOptions, report: &mut FlushReport) {
    let file = claim.path().to_path_buf();
    let (receipt, root) = match sendable(&claim.entry, &file) {
        Ok(ok) => ok,
        Err(Unsendable::Invalid(failed)) => {
            report.pending.push((file, failed));
            return;
        }
        Err(Unsendable::Abandoned(why)) => {
            match claim.remove() {
                Ok(()) => report.abandoned.push((file, why)),
                Err(e) => report.warnings.push(format!("{why}, but {}", describe(&e))),
            }
            return;
        }
    };
    let opts = claim.entry.options(retry);
    let outcome = match opts.prepare() {
        Ok(prepared) => send_with_retries(&prepared, &receipt, &root, &opts.delivery),
        Err(e) => Err(Undelivered::permanent(describe(&e))),
    };
    match outcome {
        Ok(_) => {
            if let Err(e) = claim.remove() {
                report.warnings.push(format!(
                    "delivered {}, but {}; remove it by hand (sent again, the receiver ignores it as a duplicate)",
                    file.display(),
                    describe(&e)
                ));
            }
            report.delivered.push(file);
        }
        // Left as it was: Ctrl-C is not a failure of the receiver.
        Err(failed) if failed.interrupted => {
            report.interrupted = true;
            report.pending.push((file, failed));
        }
        Err(failed) => {
            claim.entry.record(&failed);
            if let Err(e) = claim.update() {
                report.warnings.push(format!(
                    "could not record the attempt in the entry: {}",
                    describe(&e)
                ));
            }
            report.pending.push((file, failed));
        }
    }
}
