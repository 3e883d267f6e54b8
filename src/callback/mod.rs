//! Signed callback delivery that never loses a receipt.
//!
//! A callback is an HTTP `POST` of the receipt JSON, signed per RFC 9421
//! (see [`httpsig`]), retried with exponential backoff and jitter on
//! transient failures. It is written to the outbox
//! (`$XDG_DATA_HOME/spawn-elite/outbox/`) *before* the first attempt and
//! removed only once delivered, so a process killed at any instant leaves
//! it delivered or queued. `spawn-elite callback flush` resends the outbox.
//! The wire format is documented in `docs/CALLBACK.md`.
//!
//! - `options`: the resolved settings and the URL policy.
//! - `request`: the signed request (and `--dry-run`).
//! - `deliver`: attempts and backoff.
//! - `outbox`: queued callbacks, `flush`, `list`, `drop`.
//! - `keys`: Ed25519 keys and key ids; `httpsig`: RFC 9421 and RFC 9530.

pub mod deliver;
pub mod httpsig;
pub mod keys;
pub mod options;
pub mod outbox;
pub mod request;

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::error::{ExitCode, code_of, describe, fail};
pub use deliver::{Delivered, Undelivered};
pub use options::{CallbackOptions, DeliveryOptions, RetryOptions};
pub use outbox::checked_root;
use outbox::{Claim, OutboxEntry};
use request::Prepared;
pub use request::dry_run;

/// The result of [`deliver`]. Serializes as
/// `{"outcome":"delivered","status":204,"attempts":1}`,
/// `{"outcome":"queued","outbox_file":"…","reason":"…"}` or
/// `{"outcome":"interrupted","outbox_file":"…","reason":"…"}` for `--json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Delivery {
    Delivered(Delivered),
    /// Not delivered; the signed-request inputs are in `outbox_file`.
    Queued {
        outbox_file: PathBuf,
        reason: String,
    },
    /// Ctrl-C (or SIGTERM, SIGHUP) stopped it; it is in `outbox_file`.
    Interrupted {
        outbox_file: PathBuf,
        reason: String,
    },
}

impl Delivery {
    /// One line for the user.
    pub fn message(&self, url: &str) -> String {
        match self {
            Delivery::Delivered(Delivered {
                status, attempts, ..
            }) => format!(
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
            Delivery::Interrupted {
                outbox_file,
                reason,
            } => format!(
                "interrupted: callback to {url} not delivered ({reason}); it is queued in {}; resend with `spawn-elite callback flush`",
                outbox_file.display()
            ),
        }
    }

    /// The exit code of a command that ends here: a queued callback is
    /// still pending; an interrupted one is queued too, but the user asked
    /// to stop.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Delivery::Delivered(_) => ExitCode::Success,
            Delivery::Queued { .. } => ExitCode::CallbackPending,
            Delivery::Interrupted { .. } => ExitCode::Interrupted,
        }
    }
}

/// A callback written ahead to the outbox (or that could not be), not yet
/// sent: [`Pending::send`] it, or [`Pending::abandon`] it if the spawn it
/// belongs to failed.
pub struct Pending {
    /// What is sent: the receipt, or the bundle of receipt and attestation.
    receipt: Vec<u8>,
    merkle_root: String,
    receipt_path: Option<PathBuf>,
    opts: CallbackOptions,
    /// The entry, claimed by this process; or why it could not be written.
    queued: std::result::Result<Claim, String>,
}

impl Pending {
    /// Queue the callback durably in the outbox before anything is sent.
    /// A failure to queue is kept, not returned: the callback is still
    /// sent, and only reported as lost if it is not delivered.
    fn queue(
        receipt: &[u8],
        merkle_root: &str,
        receipt_path: Option<&Path>,
        opts: &CallbackOptions,
        awaiting_spawn: bool,
        attestation: Option<&[u8]>,
    ) -> Pending {
        let entry = OutboxEntry::new(
            receipt,
            merkle_root,
            receipt_path,
            opts,
            awaiting_spawn,
            attestation,
        );
        Pending {
            receipt: body(receipt, attestation).unwrap_or_else(|_| receipt.to_vec()),
            merkle_root: merkle_root.to_owned(),
            receipt_path: receipt_path.map(Path::to_path_buf),
            opts: opts.clone(),
            queued: entry.queue().map_err(|e| describe(&e)),
        }
    }

    /// The spawn this callback was queued for failed: remove the entry,
    /// there is nothing to report. (If this fails, `flush` removes it later:
    /// its receipt is not where the entry says.)
    pub fn abandon(self) {
        if let Ok(claim) = self.queued {
            let _ = claim.remove();
        }
    }

    /// Send it, with retries. On a 2xx the entry is removed; otherwise the
    /// attempt is recorded in it and it stays queued.
    ///
    /// `Err` only when it was not delivered and could not be queued either
    /// (exit code 4, or 130 if interrupted): the message says how to resend.
    pub fn send(self) -> Result<Delivery> {
        let prepared = self.opts.prepare();
        self.send_prepared(prepared)
    }

    fn send_prepared(self, prepared: Result<Prepared>) -> Result<Delivery> {
        let opts = &self.opts;
        let outcome = match prepared {
            Ok(p) => {
                deliver::send_with_retries(&p, &self.receipt, &self.merkle_root, &opts.delivery)
            }
            Err(e) => Err(Undelivered::permanent(describe(&e))),
        };
        match (outcome, self.queued) {
            (Ok(delivered), Ok(claim)) => {
                let file = claim.path().to_path_buf();
                let warning = claim.remove().err().map(|e| {
                    format!(
                        "{}; `spawn-elite callback flush` will send it again, which the receiver ignores as a duplicate, or remove {} by hand",
                        describe(&e),
                        file.display()
                    )
                });
                Ok(Delivery::Delivered(Delivered {
                    warning,
                    ..delivered
                }))
            }
            (Ok(delivered), Err(why)) => Ok(Delivery::Delivered(Delivered {
                warning: Some(format!(
                    "the outbox could not be written before sending ({why}); the callback was delivered, but one that failed could not have been kept: fix that before the next callback"
                )),
                ..delivered
            })),
            (Err(failed), Ok(mut claim)) => {
                let outbox_file = claim.path().to_path_buf();
                claim.entry.record(&failed);
                if let Err(e) = claim.update() {
                    crate::output::warn(&format!(
                        "could not record the attempt in {}: {}; it stays queued as it was",
                        outbox_file.display(),
                        describe(&e)
                    ));
                }
                let reason = failed.reason;
                Ok(if failed.interrupted {
                    Delivery::Interrupted {
                        outbox_file,
                        reason,
                    }
                } else {
                    Delivery::Queued {
                        outbox_file,
                        reason,
                    }
                })
            }
            (Err(failed), Err(why)) => {
                let receipt = self
                    .receipt_path
                    .as_ref()
                    .map_or_else(|| "RECEIPT".to_owned(), |p| p.display().to_string());
                let code = if failed.interrupted {
                    ExitCode::Interrupted
                } else {
                    ExitCode::Io
                };
                Err(fail(
                    code,
                    format!(
                        "callback to {} not delivered ({}), and nothing was queued because the outbox could not be written ({why}); fix that, then resend with `spawn-elite callback send --receipt {receipt} --url {} --key {}`",
                        opts.url,
                        failed.reason,
                        opts.url,
                        opts.key_path.display()
                    ),
                ))
            }
        }
    }
}

/// Sign and POST `receipt_json` to `opts.url`, retrying transient
/// failures. The request inputs are queued in the outbox first and removed
/// once delivered; when it cannot be delivered they stay there and
/// `Delivery::Queued` is returned: the receipt is never lost.
///
/// `Err` means a problem the user must fix first (bad URL, key, CA file;
/// nothing is queued), or that it was neither delivered nor queued.
/// `receipt_path` is where the receipt lives outside the outbox, recorded
/// in the entry so `callback drop` can point to it.
pub fn deliver(
    receipt_json: &[u8],
    merkle_root: &str,
    receipt_path: Option<&Path>,
    opts: &CallbackOptions,
) -> Result<Delivery> {
    let prepared = opts.prepare()?;
    Pending::queue(receipt_json, merkle_root, receipt_path, opts, false, None)
        .send_prepared(Ok(prepared))
}

/// Before a spawn's repository is moved into place: queue its callback, so
/// that no instant exists at which the repository exists and its callback
/// is neither delivered nor queued. `receipt_path` is where the receipt will
/// be once the spawn completes; until [`after_spawn`] runs, the entry counts
/// only if the receipt is there (see `awaiting_spawn` in docs/CALLBACK.md).
pub fn queue_for_spawn(
    receipt_json: &[u8],
    merkle_root: &str,
    receipt_path: &Path,
    opts: &CallbackOptions,
    attestation: Option<&[u8]>,
) -> Pending {
    Pending::queue(
        receipt_json,
        merkle_root,
        Some(receipt_path),
        opts,
        true,
        attestation,
    )
}

/// The format of a callback body that carries a signed spawn's
/// attestation with its receipt.
pub const BUNDLE_FORMAT: &str = "spawn-elite.bundle/v1";

/// What a callback sends: the receipt JSON as it is; or, with the
/// attestation of a signed spawn, one JSON object holding both
/// (`{"format": BUNDLE_FORMAT, "receipt": …, "attestation": …}`), so the
/// registry can keep the envelope and check it again from its log alone.
pub fn body(receipt: &[u8], attestation: Option<&[u8]>) -> std::result::Result<Vec<u8>, String> {
    let Some(attestation) = attestation else {
        return Ok(receipt.to_vec());
    };
    let receipt: serde_json::Value =
        serde_json::from_slice(receipt).map_err(|e| format!("the receipt is not JSON: {e}"))?;
    let envelope: serde_json::Value = serde_json::from_slice(attestation)
        .map_err(|e| format!("the attestation is not JSON: {e}"))?;
    serde_json::to_vec(&serde_json::json!({
        "format": BUNDLE_FORMAT,
        "receipt": receipt,
        "attestation": envelope,
    }))
    .map_err(|e| e.to_string())
}

/// A line for standard error about a callback: a note, a warning or an
/// error, printed by the command layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    Info(String),
    Warning(String),
    Error(String),
}

/// What became of a spawn's or an update's callback.
#[derive(Debug, Clone)]
pub struct AfterSpawn {
    /// Still pending (exit code 7), interrupted (130, still queued), lost
    /// (4), or delivered (0).
    pub code: ExitCode,
    /// The outcome for `--json`.
    pub json: serde_json::Value,
    /// What to tell the user, in order.
    pub notes: Vec<Note>,
}

/// After a successful spawn: deliver the queued receipt and say what became
/// of it. Never fails: the spawn is done and the receipt is in the
/// repository whatever happens.
pub fn after_spawn(mut pending: Pending, quiet: bool) -> AfterSpawn {
    let to_json = |d: &Delivery| serde_json::to_value(d).unwrap_or(serde_json::Value::Null);
    pending.opts.delivery.quiet = quiet;
    let url = pending.opts.url.clone();
    let receipt = pending.receipt_path.clone();
    let mut notes = Vec::new();
    match pending.send() {
        Ok(d) => {
            match &d {
                Delivery::Delivered(delivered) => {
                    if !quiet {
                        notes.push(Note::Info(d.message(&url)));
                    }
                    if let Some(w) = &delivered.warning {
                        notes.push(Note::Warning(w.clone()));
                    }
                }
                Delivery::Queued { .. } => notes.push(Note::Warning(d.message(&url))),
                Delivery::Interrupted { .. } => notes.push(Note::Info(d.message(&url))),
            }
            AfterSpawn {
                code: d.exit_code(),
                json: to_json(&d),
                notes,
            }
        }
        Err(e) => {
            let reason = describe(&e);
            notes.push(Note::Error(reason.clone()));
            AfterSpawn {
                code: code_of(&e),
                json: serde_json::json!({"outcome": "failed", "reason": reason, "receipt": receipt}),
                notes,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_serializes_for_json_output() {
        let d = Delivery::Delivered(Delivered {
            status: 204,
            attempts: 2,
            warning: None,
        });
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
}
