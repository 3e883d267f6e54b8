//! What several commands share: writing to stdout (from [`crate::output`]),
//! and finding the receipt a command checks a tree against.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::{ExitCode, fail};
use crate::receipt::{RECEIPT_PATH, Receipt};

pub(crate) use crate::output::stdout_write;

/// `--receipt FILE`, else DIR's own receipt.
pub(crate) fn receipt_path(dir: &Path, explicit: Option<&Path>) -> PathBuf {
    explicit.map_or_else(|| dir.join(RECEIPT_PATH), Path::to_path_buf)
}

/// The receipt to check DIR against, read and checked.
pub(crate) fn read_receipt(dir: &Path, explicit: Option<&Path>) -> Result<(PathBuf, Receipt)> {
    must_be_dir(dir)?;
    let path = receipt_path(dir, explicit);
    if explicit.is_none() && !path.exists() {
        return Err(fail(
            ExitCode::Io,
            format!(
                "no receipt at {}; pass one with --receipt FILE, or make one with `spawn-elite receipt DIR -o FILE`",
                path.display()
            ),
        ));
    }
    let receipt = Receipt::read(&path)?;
    Ok((path, receipt))
}

/// DIR's own receipt, for `ledger add DIR`, which takes no `--receipt`:
/// the advice for a tree without one is the way to give it one there.
pub(crate) fn read_own_receipt(dir: &Path) -> Result<(PathBuf, Receipt)> {
    must_be_dir(dir)?;
    let path = dir.join(RECEIPT_PATH);
    if !path.exists() {
        let shown = crate::ledger::shell_word(&dir.display().to_string());
        return Err(fail(
            ExitCode::Io,
            format!(
                "no receipt at {}: spawn-elite did not spawn {shown}; to record it anyway, write its receipt there with `spawn-elite receipt {shown} -o {}`, then run `spawn-elite ledger add {shown}` again",
                path.display(),
                crate::ledger::shell_word(&path.display().to_string()),
            ),
        ));
    }
    let receipt = Receipt::read(&path)?;
    Ok((path, receipt))
}

/// A missing tree is named as such, not as a tree without a receipt.
pub(crate) fn must_be_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let what = if dir.exists() {
        "is not a directory"
    } else {
        "does not exist"
    };
    Err(fail(
        ExitCode::Io,
        format!(
            "{} {what}; give the directory of the tree to check",
            dir.display()
        ),
    ))
}
