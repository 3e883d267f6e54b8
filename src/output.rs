//! The one printer. Results go to standard output, where a failed write (a
//! full disk behind a redirect, a closed pipe that did not end the
//! process) is an error with exit code 4; warnings, notes and progress go
//! to standard error, one line each. The command layer prints outcomes
//! through it; an engine only ever reports progress while it waits (a
//! callback's retries) and warnings it cannot return.

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

/// `value` as pretty JSON and a newline on stdout.
pub fn stdout_json(value: &serde_json::Value) -> Result<()> {
    let mut out = serde_json::to_vec_pretty(value)?;
    out.push(b'\n');
    stdout_write(&out)
}

/// `warning: MESSAGE` on stderr.
pub fn warn(message: &str) {
    eprintln!("warning: {message}");
}

/// `error: MESSAGE` on stderr, for an error that does not end the command.
pub fn error(message: &str) {
    eprintln!("error: {message}");
}

/// A line of progress or a note on stderr.
pub fn progress(line: &str) {
    eprintln!("{line}");
}

/// `line` and a newline on stdout.
pub fn stdout_line(line: &str) -> Result<()> {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    stdout_write(&bytes)
}
