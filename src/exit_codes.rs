//! The outcomes a user or a script can tell apart by exit code alone.
//!
//! Codes are part of the interface: scripts branch on them, so a code never
//! changes meaning once released. README.md lists them.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Success = 0,
    /// `verify` found the tree differs from its receipt.
    Drift = 1,
    /// Bad command line or bad value (name, type, `--set`).
    Usage = 2,
    /// The target directory exists; it was not touched.
    TargetExists = 3,
    /// Reading or writing files failed (permissions, disk full, ...).
    Io = 4,
    /// A git command failed while committing; the spawn was undone.
    Git = 5,
    /// A receipt or proof file is malformed, foreign or inconsistent.
    InvalidReceipt = 6,
    /// The tree holds something a receipt cannot record: a name that is not
    /// UTF-8, or a FIFO, socket or device.
    Unrecordable = 8,
    /// The spawn succeeded but the callback could not be delivered and waits in the outbox.
    CallbackPending = 7,
    /// A signing key is missing, malformed or unusable.
    Key = 9,
    /// An inclusion proof does not match the file or root.
    ProofMismatch = 10,
    /// The user pressed Ctrl-C; anything half-written was removed.
    Interrupted = 130,
}

impl ExitCode {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// An error that knows which exit code it deserves.
///
/// Anything else that bubbles up through `anyhow` is treated as an I/O
/// failure, the only kind of error left once inputs have been validated.
#[derive(Debug)]
pub struct Failure {
    pub code: ExitCode,
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// Build an `anyhow::Error` carrying an exit code.
pub fn fail(code: ExitCode, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure {
        code,
        message: message.into(),
    })
}

/// The exit code an error chain asks for: the first `Failure` in it wins.
pub fn code_of(err: &anyhow::Error) -> ExitCode {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<Failure>())
        .map_or(ExitCode::Io, |failure| failure.code)
}
