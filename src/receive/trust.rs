//! The receiver's trusted keys: every `*.pub` (SPKI PEM) in the `--trust`
//! directory, looked up by key id.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use anyhow::Result;
use ed25519_dalek::VerifyingKey;

use crate::callback::keys;
use crate::error::{ExitCode, fail_with};

/// The trusted keys by key id. An unreadable `--trust` directory is a bad
/// value, like an unreadable `--ca-cert` (exit code 2).
pub fn load(dir: &Path) -> Result<HashMap<String, VerifyingKey>> {
    let entries = fs::read_dir(dir).map_err(|e| {
        let message = format!(
            "cannot read trust directory {}: {e}; create it and put *.pub keys in it",
            dir.display()
        );
        fail_with(ExitCode::Usage, message, e)
    })?;
    let mut keys = HashMap::new();
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "pub") {
            match keys::load_public_key(&p) {
                Ok(k) => {
                    keys.insert(keys::key_id(&k), k);
                }
                Err(e) => {
                    tracing::warn!(file = %p.display(), error = %e, "skipping a key that cannot be read")
                }
            }
        }
    }
    Ok(keys)
}
