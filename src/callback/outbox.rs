//! The outbox: callbacks that could not be delivered wait here, one JSON
//! file each (`$XDG_DATA_HOME/spawn-elite/outbox/`), until `callback flush`
//! delivers them or `callback drop` removes one.

use std::fs;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use super::deliver::{Undelivered, send_with_retries};
use super::options::{CallbackOptions, DeliveryOptions, RetryOptions};
use super::request::{random_bytes, unix_now};
use crate::error::{ExitCode, describe, fail, fail_with};
use crate::fsutil::{self, WriteOptions};
use crate::receipt::Receipt;

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
    /// The entry for a callback that was not delivered. `receipt_path` is
    /// where the receipt lives outside the outbox, if known.
    pub(super) fn new(
        receipt: &[u8],
        merkle_root: &str,
        receipt_path: Option<&Path>,
        opts: &CallbackOptions,
        failed: &Undelivered,
    ) -> Self {
        OutboxEntry {
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
            attempts: failed.attempts,
            last_error: failed.reason.clone(),
            permanent: failed.permanent,
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

    pub(super) fn write(&self) -> Result<PathBuf> {
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

    /// Write atomically to `path`, readable by the owner only.
    fn write_to(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self)?;
        let opts = WriteOptions {
            mode: 0o600,
            ..WriteOptions::DATA
        };
        fsutil::write_atomic(path, &json, opts)
            .with_context(|| format!("cannot write {}", path.display()))
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
    /// Still queued, with why the last try failed.
    pub pending: Vec<(PathBuf, Undelivered)>,
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
            Err(undelivered) => report.pending.push((file, undelivered)),
        }
    }
    Ok(report)
}

/// The merkle_root of a valid receipt, checked as `verify` checks it.
/// A proof, a ledger line or any other JSON is refused (exit code 6).
pub fn checked_root(receipt: &[u8], origin: &str) -> Result<String> {
    Ok(Receipt::parse(receipt, origin)?.merkle_root().to_owned())
}

fn flush_one(file: &Path, retry: &RetryOptions) -> Result<(), Undelivered> {
    let mut entry = OutboxEntry::read(file).map_err(Undelivered::permanent)?;
    let receipt = entry.receipt().map_err(Undelivered::permanent)?;
    let origin = format!("queued in {}", file.display());
    let root = checked_root(&receipt, &origin).map_err(|e| Undelivered::permanent(describe(&e)))?;
    if root != entry.idempotency_key {
        return Err(Undelivered::permanent(format!(
            "its idempotency_key {} is not its receipt's merkle_root {root}; the entry was edited",
            entry.idempotency_key
        )));
    }
    let opts = entry.options(retry);
    let outcome = match opts.prepare() {
        Ok(prepared) => send_with_retries(&prepared, &receipt, &root, &opts.delivery),
        Err(e) => Err(Undelivered::permanent(describe(&e))),
    };
    outcome.map(|_| ()).inspect_err(|failed| {
        entry.attempts = entry.attempts.saturating_add(failed.attempts);
        entry.last_error = failed.reason.clone();
        entry.permanent = failed.permanent;
        if let Err(e) = entry.write_to(file) {
            eprintln!(
                "warning: could not record the attempt in the entry: {}",
                describe(&e)
            );
        }
    })
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
pub fn drop_entry(arg: &Path) -> Result<String> {
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
            fsutil::write_atomic(&saved, &receipt, WriteOptions::DATA).with_context(|| {
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
pub fn list() -> Result<String> {
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
