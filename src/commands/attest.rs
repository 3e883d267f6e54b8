//! `spawn-elite attest [DIR] [--key PATH]`: sign a tree that has a receipt.

use std::path::Path;

use anyhow::Result;

use super::shared::read_receipt;
use crate::callback::keys;
use crate::clock::Clock;
use crate::error::{ExitCode, fail};
use crate::fsutil::{self, WriteOptions};
use crate::output::{stdout_json, stdout_line};
use crate::provenance::{self, ATTESTATION_PATH, Signer};

pub fn run(dir: &Path, key: Option<&Path>, json: bool) -> Result<ExitCode> {
    let (_, receipt) = read_receipt(dir, None)?;
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
    let at = dir.join(ATTESTATION_PATH);
    fsutil::write_atomic(&at, &file.contents, WriteOptions::DATA).map_err(|e| {
        fail(
            ExitCode::Io,
            format!("cannot write {}: {e}; nothing was signed", at.display()),
        )
    })?;
    if json {
        stdout_json(&serde_json::json!({
            "attestation": at,
            "key_id": signer.key_id(),
            "merkle_root": receipt.merkle_root,
            "files": receipt.leaf_count,
            "previous": previous.is_some(),
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
    }
    Ok(ExitCode::Success)
}
