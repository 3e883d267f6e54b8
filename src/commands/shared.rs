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
