//! Signed callback delivery that never loses a receipt.
//!
//! A callback is an HTTP `POST` of the receipt JSON, signed per RFC 9421
//! (see [`httpsig`]), retried with exponential backoff and jitter on
//! transient failures, and written to the outbox
//! (`$XDG_DATA_HOME/spawn-elite/outbox/`) when it finally cannot be
//! delivered. `spawn-elite callback flush` resends the outbox.
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

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::error::{ExitCode, describe};
pub use deliver::{Delivered, Undelivered};
pub use options::{CallbackOptions, DeliveryOptions, RetryOptions};
use outbox::OutboxEntry;
pub use outbox::checked_root;
pub use request::dry_run;

/// The result of [`deliver`]. Serializes as
/// `{"outcome":"delivered","status":204,"attempts":1}` or
/// `{"outcome":"queued","outbox_file":"…","reason":"…"}` for `--json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Delivery {
    Delivered(Delivered),
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
            Delivery::Delivered(Delivered { status, attempts }) => format!(
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

    /// The exit code of a command that ends here: a queued callback is
    /// still pending.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Delivery::Delivered(_) => ExitCode::Success,
            Delivery::Queued { .. } => ExitCode::CallbackPending,
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
    match deliver::send_with_retries(&prepared, receipt_json, merkle_root, &opts.delivery) {
        Ok(delivered) => Ok(Delivery::Delivered(delivered)),
        Err(failed) => {
            let entry = OutboxEntry::new(receipt_json, merkle_root, receipt_path, opts, &failed);
            let reason = failed.reason;
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
/// whether the callback is still pending (exit code 7), with the outcome as
/// JSON. Never fails: the spawn is done and the receipt is at
/// `receipt_path` whatever happens.
pub fn after_spawn(
    receipt_json: &[u8],
    merkle_root: &str,
    receipt_path: &Path,
    opts: &CallbackOptions,
    quiet: bool,
) -> (ExitCode, serde_json::Value) {
    let to_json = |d: &Delivery| serde_json::to_value(d).unwrap_or(serde_json::Value::Null);
    let mut opts = opts.clone();
    opts.delivery.quiet = quiet;
    let opts = &opts;
    match deliver(receipt_json, merkle_root, Some(receipt_path), opts) {
        Ok(d @ Delivery::Delivered(_)) => {
            if !quiet {
                eprintln!("{}", d.message(&opts.url));
            }
            (d.exit_code(), to_json(&d))
        }
        Ok(d @ Delivery::Queued { .. }) => {
            eprintln!("warning: {}", d.message(&opts.url));
            (d.exit_code(), to_json(&d))
        }
        Err(e) => {
            let reason = describe(&e);
            eprintln!(
                "warning: {reason}; resend with `spawn-elite callback send --receipt {} --url {} --key {}`",
                receipt_path.display(),
                opts.url,
                opts.key_path.display()
            );
            let report =
                serde_json::json!({"outcome": "failed", "reason": reason, "receipt": receipt_path});
            (ExitCode::CallbackPending, report)
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
