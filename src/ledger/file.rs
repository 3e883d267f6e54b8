//! A chain file named with `ledger verify|list --file`: a copied ledger,
//! another machine's, or the receiver's log, read as the ledger is.

use std::path::Path;

use anyhow::Result;

use super::{Entry, read_bytes, shell_word, why};
use crate::chain::{self, Fault};
use crate::error::{ExitCode, fail};

/// What a file given to `ledger verify|list --file` holds.
#[derive(Debug)]
pub enum Held {
    /// A ledger: a copy, or another machine's.
    Ledger(Vec<Entry>),
    /// The log of `spawn-elite receive`: each line as it was written.
    Log(Vec<serde_json::Value>),
}

impl Held {
    pub fn label(&self) -> &'static str {
        match self {
            Held::Ledger(_) => "ledger",
            Held::Log(_) => "log",
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Held::Ledger(e) => e.len(),
            Held::Log(e) => e.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Read the chain file `path` named with `--file`, up to its first broken
/// line, as [`read_until_break`] does. The receiver's log is told apart by
/// its first line's `received_at`, which no ledger line has; every other
/// file is checked as a ledger, field by field.
pub fn read_file_until_break(path: &Path) -> Result<(Held, Option<anyhow::Error>)> {
    let Some(text) = read_bytes(path, "chain file")? else {
        return Err(fail(
            ExitCode::Usage,
            format!(
                "{} does not exist; give --file a ledger (a copy of ledger.jsonl) or the --log of `spawn-elite receive`",
                path.display()
            ),
        ));
    };
    let first = text.split(|&b| b == b'\n').next().unwrap_or_default();
    let is_log = serde_json::from_slice::<serde_json::Value>(first)
        .is_ok_and(|v| v.get("received_at").is_some());
    let broken = |label: &str, found: Option<&(usize, Fault)>, last_hash: &str| {
        found.map(|(line, fault)| {
            fail(
                ExitCode::Drift,
                file_broken_message(path, label, *line, fault, last_hash),
            )
        })
    };
    if is_log {
        let walked = chain::walk::<serde_json::Value>(&text);
        let err = broken("log", walked.broken.as_ref(), &walked.last_hash);
        Ok((Held::Log(walked.entries), err))
    } else {
        let walked = chain::walk::<Entry>(&text);
        let err = broken("ledger", walked.broken.as_ref(), &walked.last_hash);
        Ok((Held::Ledger(walked.entries), err))
    }
}

/// The same for a file named with `--file` (a copied ledger, the
/// receiver's log): no spawn writes to it, so only a cut-off last line has
/// a remedy, and that one takes the same `--file`.
fn file_broken_message(
    path: &Path,
    label: &str,
    line: usize,
    fault: &Fault,
    expected_prev: &str,
) -> String {
    let mut why = why(line, fault, expected_prev);
    if label == "log" {
        why = why.replace("ledger entry", "JSON line");
    }
    let shown = path.display();
    match fault {
        Fault::Cut => format!(
            "{label} {shown} is broken at line {line}: {why}; run `spawn-elite ledger repair --file {}` to set it aside and keep the {} complete entries before it",
            shell_word(&shown.to_string()),
            line - 1
        ),
        _ => format!(
            "{label} {shown} is broken at line {line}: {why}; the {} entries before it are intact, the rest cannot be trusted: compare it with the copy it came from",
            line - 1
        ),
    }
}
