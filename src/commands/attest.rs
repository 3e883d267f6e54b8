//! `spawn-elite attest [DIR] [--key PATH] [--tsa URL]`: sign a tree that
//! has a receipt, and time-stamp the attestation.

use std::path::Path;

use anyhow::Result;

use super::shared::read_receipt;
use crate::callback::keys;
use crate::callback::outbox;
use crate::clock::Clock;
use crate::error::{ExitCode, fail};
use crate::fsutil::beneath;
use crate::output::{stdout_json, stdout_line, warn};
use crate::provenance::stamp::{self, Stamping};
use crate::provenance::{self, ATTESTATION_PATH, Signer, TIMESTAMP_PATH};

pub fn run(dir: &Path, key: Option<&Path>, tsa: Option<&str>, json: bool) -> Result<ExitCode> {
    let (_, receipt) = read_receipt(dir, None)?;
    let tsa = super::callback::tsa_url(tsa)?;
    let key_path = match key {
        Some(k) => k.to_path_buf(),
        None => keys::default_key_path()?,
    };
    let signer = Signer::load(&key_path)?;
    let clock = Clock::from_env()?;
    let previous = provenance::previous(dir);
    let file = provenance::attest_tree(
        dir,
        &receipt,
        &signer,
        clock.now(),
        clock.later(),
        previous.as_deref(),
    )?;
    // Stamped before anything is written: a TSA that answers badly fails
    // the command with the old attestation (and its token) untouched.
    let stamping = match &tsa {
        Some(tsa) => Some(stamp::stamp_attestation(&file.contents, tsa)?),
        None => None,
    };
    let at = dir.join(ATTESTATION_PATH);
    let token_at = dir.join(TIMESTAMP_PATH);
    let write = |path: &Path, bytes: &[u8]| {
        let rel = path.strip_prefix(dir).unwrap_or(path);
        beneath::write_atomic_in(dir, rel, bytes).map_err(|e| {
            fail(
                ExitCode::Io,
                format!("cannot write {}: {e}", path.display()),
            )
        })
    };
    // The old token stamps the old attestation: removed first, so that no
    // instant pairs the new attestation with it.
    match std::fs::remove_file(&token_at) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(fail(
                ExitCode::Io,
                format!(
                    "cannot remove the old timestamp {}: {e}; nothing was signed",
                    token_at.display()
                ),
            ));
        }
    }
    write(&at, &file.contents)?;
    let mut code = ExitCode::Success;
    let mut stamped = None;
    match stamping {
        Some(Stamping::Stamped { file, stamp }) => {
            write(&token_at, &file.contents)?;
            stamped = Some(stamp);
        }
        Some(Stamping::Pending(p)) => {
            code = ExitCode::TimestampPending;
            match outbox::stamp::queue(&p, dir) {
                Ok(entry) => warn(&format!(
                    "{}; the timestamp request is queued in {}: `spawn-elite callback flush` sends it and writes {}",
                    p.reason,
                    entry.display(),
                    token_at.display()
                )),
                Err(e) => warn(&format!(
                    "{}, and the request could not be queued ({}); run this command again when the TSA is reachable",
                    p.reason,
                    crate::error::describe(&e)
                )),
            }
        }
        None => {}
    }
    if json {
        stdout_json(&serde_json::json!({
            "attestation": at,
            "key_id": signer.key_id(),
            "merkle_root": receipt.merkle_root,
            "files": receipt.leaf_count,
            "previous": previous.is_some(),
            "timestamp": match (&stamped, code) {
                (Some(s), _) => serde_json::json!({
                    "path": token_at, "time": s.time, "tsa": s.signer, "serial": s.serial,
                }),
                (None, ExitCode::TimestampPending) => serde_json::json!({ "pending": true }),
                _ => serde_json::Value::Null,
            },
        }))?;
    } else {
        stdout_line(&format!(
            "signed {}: {} files, Merkle root {}, key {}; wrote {}",
            dir.display(),
            receipt.leaf_count,
            receipt.merkle_root,
            signer.key_id(),
            at.display()
        ))?;
        if let Some(s) = &stamped {
            stdout_line(&format!(
                "stamped by {} at {}; wrote {}",
                s.signer,
                s.time,
                token_at.display()
            ))?;
        }
    }
    Ok(code)
}
