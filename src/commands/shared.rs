//! What several commands share: writing to stdout, and finding the receipt
//! a command checks a tree against.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::{ExitCode, fail};
use crate::receipt::{RECEIPT_PATH, Receipt};

/// Write to stdout; a failure is an I/O error (exit code 4).
pub(crate) fn stdout_write(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| {
            fail(
                ExitCode::Io,
                format!("cannot write to standard output: {e}"),
            )
        })
}

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
