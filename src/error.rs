//! The outcomes a user or a script can tell apart by exit code alone, and the
//! error that carries one.
//!
//! Codes are part of the interface: scripts branch on them, so a code never
//! changes meaning once released. [`EXIT_CODES`] is the one list of them:
//! `--help`, the man page and README.md's table are all made from (or checked
//! against) it.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Success = 0,
    Drift = 1,
    Usage = 2,
    TargetExists = 3,
    Io = 4,
    Git = 5,
    InvalidReceipt = 6,
    CallbackPending = 7,
    Unrecordable = 8,
    Key = 9,
    ProofMismatch = 10,
    Changed = 11,
    Conflicts = 12,
    Unsigned = 13,
    BadSignature = 14,
    UnknownKey = 15,
    ChangedSinceSigning = 16,
    BadTimestamp = 17,
    TimestampPending = 18,
    Registry = 19,
    Internal = 70,
    Interrupted = 130,
}

/// One row of the exit-code table. `meaning` is written for README.md
/// (Markdown code spans in backticks); the terminal and the man page show it
/// without the backticks.
pub struct ExitInfo {
    pub code: ExitCode,
    pub name: &'static str,
    pub meaning: &'static str,
}

/// Every exit code, in numeric order.
pub const EXIT_CODES: &[ExitInfo] = &[
    ExitInfo {
        code: ExitCode::Success,
        name: "success",
        meaning: "success",
    },
    ExitInfo {
        code: ExitCode::Drift,
        name: "drift",
        meaning: "`verify`: the tree differs from its receipt; `update --check`: the scaffold is out of date; `ledger verify`, `ledger list` and `receive`: a hash chain is broken",
    },
    ExitInfo {
        code: ExitCode::Usage,
        name: "usage",
        meaning: "bad command line or value (name, type, `--set`, callback URL, `--ca-cert`, `--trust`, `--listen`), or HOME unset",
    },
    ExitInfo {
        code: ExitCode::TargetExists,
        name: "target-exists",
        meaning: "the target directory already exists (left untouched)",
    },
    ExitInfo {
        code: ExitCode::Io,
        name: "io",
        meaning: "reading or writing files failed (nothing was left half-written)",
    },
    ExitInfo {
        code: ExitCode::Git,
        name: "git",
        meaning: "a git command failed (the spawn was undone)",
    },
    ExitInfo {
        code: ExitCode::InvalidReceipt,
        name: "invalid-receipt",
        meaning: "a receipt or proof file is malformed, foreign or inconsistent",
    },
    ExitInfo {
        code: ExitCode::CallbackPending,
        name: "callback-pending",
        meaning: "spawned, but the callback is pending in the outbox (`spawn-elite callback flush`)",
    },
    ExitInfo {
        code: ExitCode::Unrecordable,
        name: "unrecordable",
        meaning: "the tree holds something a receipt cannot record (a non-UTF-8 name, a FIFO, socket or device)",
    },
    ExitInfo {
        code: ExitCode::Key,
        name: "key",
        meaning: "a signing key is missing, malformed or unusable",
    },
    ExitInfo {
        code: ExitCode::ProofMismatch,
        name: "proof-mismatch",
        meaning: "an inclusion proof does not verify",
    },
    ExitInfo {
        code: ExitCode::Changed,
        name: "changed",
        meaning: "a file changed while `receipt`, `verify` or `prove` was hashing it; run again when nothing writes to the tree",
    },
    ExitInfo {
        code: ExitCode::Conflicts,
        name: "conflicts",
        meaning: "`update`: updated, with conflicts to resolve (git's conflict markers, or `PATH.spawn-elite-new` files without git)",
    },
    ExitInfo {
        code: ExitCode::Unsigned,
        name: "unsigned",
        meaning: "`verify --trust`: the tree has no signed attestation (`spawn-elite attest DIR` makes one)",
    },
    ExitInfo {
        code: ExitCode::BadSignature,
        name: "bad-signature",
        meaning: "`verify --trust`: the attestation's signature or statement does not verify (it was changed, or it is not spawn-elite's)",
    },
    ExitInfo {
        code: ExitCode::UnknownKey,
        name: "unknown-key",
        meaning: "`verify --trust`: the attestation is signed by a key that is not in the trust directory",
    },
    ExitInfo {
        code: ExitCode::ChangedSinceSigning,
        name: "changed-since-signing",
        meaning: "`verify --trust`: files or the receipt changed since the attestation was signed",
    },
    ExitInfo {
        code: ExitCode::BadTimestamp,
        name: "bad-timestamp",
        meaning: "a timestamp token is bad or foreign (`verify --tsa-cert`, `ledger verify --tsa-cert`), or a TSA answered `--tsa` with one (nothing was written)",
    },
    ExitInfo {
        code: ExitCode::TimestampPending,
        name: "timestamp-pending",
        meaning: "signed, but the TSA could not be reached: the timestamp request is queued in the outbox (`spawn-elite callback flush`)",
    },
    ExitInfo {
        code: ExitCode::Registry,
        name: "registry",
        meaning: "`registry`: the registry could not be reached, refused the read (401: sign it with `--key`) or failed",
    },
    ExitInfo {
        code: ExitCode::Internal,
        name: "internal",
        meaning: "an internal error: a bug in spawn-elite; please report it with the message",
    },
    ExitInfo {
        code: ExitCode::Interrupted,
        name: "interrupted",
        meaning: "interrupted by Ctrl-C, SIGTERM or SIGHUP (nothing was left behind)",
    },
];

impl ExitCode {
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The code's name in [`EXIT_CODES`]: the `kind` of a JSON error.
    pub fn name(self) -> &'static str {
        EXIT_CODES
            .iter()
            .find(|info| info.code == self)
            .map_or("internal", |info| info.name)
    }
}

/// What a command run with `--json` prints on stdout when it fails, as one
/// line: `{"error": {"code": N, "kind": NAME, "message": TEXT}}`, `kind`
/// the code's name in [`EXIT_CODES`] and `message` the text stderr shows
/// after `error: `. A tool reading stdout as JSON then gets JSON.
pub fn json_error(code: ExitCode, message: &str) -> String {
    serde_json::json!({
        "error": { "code": code.code(), "kind": code.name(), "message": message }
    })
    .to_string()
}

/// The note `--help` and the man page give about [`json_error`].
pub const JSON_ERRORS: &str = "With --json, an error is also printed on stdout as one JSON object, {\"error\": {\"code\": N, \"kind\": NAME, \"message\": TEXT}}, NAME as listed here.";

impl ExitInfo {
    /// The meaning as plain text, for a terminal or the man page.
    pub fn plain_meaning(&self) -> String {
        self.meaning.replace('`', "")
    }
}

/// The "Exit status" block of `--help`: one line per code.
pub fn exit_status_text() -> String {
    let mut text = String::from("Exit status:\n");
    let width = EXIT_CODES.iter().map(|i| i.name.len()).max().unwrap_or(0);
    for info in EXIT_CODES {
        text.push_str(&format!(
            "  {:<4} {:<width$}  {}\n",
            info.code.code(),
            info.name,
            info.plain_meaning()
        ));
    }
    text.push_str(JSON_ERRORS);
    text.push('\n');
    text
}

/// README.md's exit-code table, in Markdown.
pub fn exit_status_markdown() -> String {
    let mut text = String::from("| code | name | meaning |\n|---|---|---|\n");
    for info in EXIT_CODES {
        text.push_str(&format!(
            "| {} | `{}` | {} |\n",
            info.code.code(),
            info.name,
            info.meaning
        ));
    }
    text
}

/// An error that knows which exit code it deserves.
///
/// `message` is complete on its own: it already says what the source said,
/// so [`describe`] stops at it. `source` is kept for callers that want to
/// inspect the cause (e.g. downcast it to `std::io::Error`).
#[derive(Debug)]
pub struct Failure {
    pub code: ExitCode,
    pub message: String,
    pub source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Build an `anyhow::Error` carrying an exit code.
pub fn fail(code: ExitCode, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure {
        code,
        message: message.into(),
        source: None,
    })
}

/// Like [`fail`], keeping the error that caused it.
pub fn fail_with(
    code: ExitCode,
    message: impl Into<String>,
    source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
) -> anyhow::Error {
    anyhow::Error::new(Failure {
        code,
        message: message.into(),
        source: Some(source.into()),
    })
}

/// The exit code an error chain asks for: the first `Failure` in it wins;
/// else a failed read or write is I/O, and anything else is a bug.
pub fn code_of(err: &anyhow::Error) -> ExitCode {
    if let Some(failure) = err
        .chain()
        .find_map(|cause| cause.downcast_ref::<Failure>())
    {
        return failure.code;
    }
    if err.chain().any(|cause| cause.is::<std::io::Error>()) {
        return ExitCode::Io;
    }
    ExitCode::Internal
}

/// The error as one line for the user: each cause after the one before,
/// like `{:#}`, but ending at the first `Failure`, whose message already
/// says what its source said.
pub fn describe(err: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for cause in err.chain() {
        parts.push(cause.to_string());
        if cause.is::<Failure>() {
            break;
        }
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_numeric_order_and_complete() {
        let codes: Vec<i32> = EXIT_CODES.iter().map(|i| i.code.code()).collect();
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(codes, sorted);
        assert_eq!(codes.len(), 22, "every ExitCode variant has a row");
    }

    /// README.md documents the exit codes; its table must be this one.
    #[test]
    fn the_readme_table_matches_the_exit_codes() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .unwrap_or_default();
        let table: String = readme
            .split("### Exit codes\n")
            .nth(1)
            .unwrap_or_default()
            .trim_start()
            .lines()
            .take_while(|l| l.starts_with('|'))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(table, exit_status_markdown());
    }

    #[test]
    fn a_json_error_names_its_code_by_the_tables_name() {
        let line = json_error(ExitCode::ProofMismatch, "a \"quoted\" path");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!(value["error"]["code"], 10);
        assert_eq!(value["error"]["kind"], "proof-mismatch");
        assert_eq!(value["error"]["message"], "a \"quoted\" path");
        assert!(!line.contains('\n'), "one line: {line}");
        for info in EXIT_CODES {
            assert_eq!(info.code.name(), info.name);
        }
    }

    #[test]
    fn untagged_errors_are_io_only_when_io_is_the_cause() {
        let io = anyhow::Error::new(std::io::Error::other("disk")).context("writing");
        assert_eq!(code_of(&io), ExitCode::Io);
        assert_eq!(code_of(&anyhow::anyhow!("a bug")), ExitCode::Internal);
        let tagged = fail_with(ExitCode::Key, "bad key", std::io::Error::other("x"));
        assert_eq!(code_of(&tagged.context("loading")), ExitCode::Key);
    }

    #[test]
    fn a_failure_keeps_its_source_but_describes_itself_once() {
        let err = fail_with(
            ExitCode::Io,
            "cannot read f: gone",
            std::io::Error::other("gone"),
        )
        .context("while spawning");
        assert_eq!(describe(&err), "while spawning: cannot read f: gone");
        let io = err.chain().find_map(|c| c.downcast_ref::<std::io::Error>());
        assert!(io.is_some(), "the source can be inspected");
    }
}
