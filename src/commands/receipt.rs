//! `spawn-elite receipt DIR [-o FILE [--force]]`: a receipt for any tree.

use std::path::Path;

use anyhow::Result;

use super::shared::stdout_write;
use crate::error::{ExitCode, fail};
use crate::receipt::Receipt;

/// `spawn-elite receipt DIR [-o FILE [--force]]`
pub fn run(dir: &Path, out: Option<&Path>, force: bool) -> Result<ExitCode> {
    // Checked before hashing, so a slow tree does not end in a refusal.
    if let Some(path) = out
        && !force
        && std::fs::symlink_metadata(path).is_ok()
    {
        return Err(fail(
            ExitCode::Usage,
            format!("{} exists; pass --force to replace it", path.display()),
        ));
    }
    let receipt = Receipt::of_tree(dir, None, crate::clock::Clock::from_env()?.now())?;
    match out {
        Some(path) => {
            receipt.write(path)?;
            eprintln!(
                "wrote {} ({} files, root {})",
                path.display(),
                receipt.leaf_count,
                receipt.merkle_root
            );
        }
        None => stdout_write(&receipt.to_json_bytes())?,
    }
    Ok(ExitCode::Success)
}
