//! Writing to standard output: the one place where a failed write (a full
//! disk behind a redirect, a closed pipe that did not end the process) turns
//! into an error with exit code 4. Used by the commands and by the engine's
//! own reports alike.

use std::io::Write as _;

use anyhow::Result;

use crate::error::{ExitCode, fail};

/// Write to stdout; a failure is an I/O error (exit code 4).
pub fn stdout_write(bytes: &[u8]) -> Result<()> {
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
