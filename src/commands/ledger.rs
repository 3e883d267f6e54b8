//! `spawn-elite ledger verify|list|repair|add`.

use std::path::Path;

use anyhow::Result;

use super::shared::{read_receipt, stdout_write};
use crate::cli::LedgerAction;
use crate::error::{ExitCode, fail};
use crate::ledger::{self, Repair};
use crate::receipt::{self, Receipt};

/// `spawn-elite ledger ACTION`
pub fn run(action: &LedgerAction) -> Result<ExitCode> {
    match action {
        LedgerAction::Verify => verify(),
        LedgerAction::List { json } => list(*json),
        LedgerAction::Repair { file } => repair(file.as_deref()),
        LedgerAction::Add { dir } => add(dir),
    }
}

/// `spawn-elite ledger verify`
pub fn verify() -> Result<ExitCode> {
    let path = ledger::path()?;
    let entries = ledger::read_verified(&path)?;
    let msg = match entries.last() {
        None => format!(
            "ok: ledger {} is empty or absent; nothing to check\n",
            path.display()
        ),
        Some(last) => format!(
            "ok: ledger {} holds {} entries and its chain is intact (last root {})\n",
            path.display(),
            entries.len(),
            last.merkle_root
        ),
    };
    stdout_write(msg.as_bytes())?;
    Ok(ExitCode::Success)
}

/// `spawn-elite ledger list [--json]`: a header line then one row per
/// spawn; with `--json`, JSON Lines: each entry as the ledger holds it
/// (`seq`, `prev`, `created`, `repo`, `name`, `type`, `merkle_root`,
/// `leaf_count`, `receipt_blake3`), one object per line and no header.
pub fn list(json: bool) -> Result<ExitCode> {
    let path = ledger::path()?;
    // A broken line does not hide the spawns before it: they are listed,
    // then the error (exit 1) names the line.
    let (entries, broken) = ledger::read_until_break(&path)?;
    if entries.is_empty() && broken.is_none() {
        eprintln!("no spawns recorded yet in {}", path.display());
        return Ok(ExitCode::Success);
    }
    let mut text = String::new();
    if json {
        for e in &entries {
            text.push_str(&serde_json::to_string(e)?);
            text.push('\n');
        }
    } else if !entries.is_empty() {
        text.push_str(&format!(
            "{:>4}  {:<20}  {:<8} {:<24} {:<16}  {}\n",
            "SEQ", "CREATED", "TYPE", "NAME", "ROOT", "REPOSITORY"
        ));
        for e in &entries {
            text.push_str(&format!(
                "{:>4}  {}  {:<8} {:<24} {}  {}{}\n",
                e.seq,
                e.created,
                e.kind.as_deref().unwrap_or("-"),
                e.name.as_deref().unwrap_or("-"),
                e.merkle_root.chars().take(16).collect::<String>(),
                e.repo,
                match &e.update {
                    Some(u) => format!(
                        "  (update {} {} -> {} {})",
                        u.old_templates.name,
                        u.old_templates.version,
                        u.new_templates.name,
                        u.new_templates.version
                    ),
                    None => String::new(),
                }
            ));
        }
    }
    stdout_write(text.as_bytes())?;
    match broken {
        Some(err) => Err(err),
        None => Ok(ExitCode::Success),
    }
}

/// `spawn-elite ledger repair [--file FILE]`
pub fn repair(file: Option<&Path>) -> Result<ExitCode> {
    let (path, label) = match file {
        Some(f) => (f.to_path_buf(), "log"),
        None => (ledger::path()?, "ledger"),
    };
    let shown = path.display();
    let msg = match ledger::repair(&path, label, file.is_none())? {
        Repair::Absent => format!("ok: {label} {shown} is absent; nothing to repair\n"),
        Repair::Intact(n) => {
            format!(
                "ok: {label} {shown} holds {n} entries and its chain is intact; nothing to repair\n"
            )
        }
        Repair::Repaired { kept, saved, bytes } => format!(
            "repaired: {label} {shown} keeps its {kept} complete entries; the cut-off last line ({bytes} bytes) was moved to {}\n",
            saved.display()
        ),
    };
    stdout_write(msg.as_bytes())?;
    Ok(ExitCode::Success)
}

/// `spawn-elite ledger add DIR`
pub fn add(dir: &Path) -> Result<ExitCode> {
    let (receipt_path, expected) = read_receipt(dir, None)?;
    let (actual, _) = Receipt::of_tree_skipping(dir, &|_| false, jiff::Timestamp::now())?;
    let drift = receipt::drift::compare(&expected, &actual);
    if !drift.is_empty() {
        let changed = drift.modified.len()
            + drift.added.len()
            + drift.removed.len()
            + drift.mode_changed.len();
        return Err(fail(
            ExitCode::Drift,
            format!(
                "{} does not match its receipt {} ({changed} difference(s)); nothing was added: `spawn-elite verify {}` lists them",
                dir.display(),
                receipt_path.display(),
                ledger::shell_word(&dir.display().to_string())
            ),
        ));
    }
    let (path, seq) = ledger::add(&expected, dir)?;
    let msg = format!(
        "added: {} to ledger {} as entry {seq} (root {})\n",
        dir.display(),
        path.display(),
        expected.merkle_root
    );
    stdout_write(msg.as_bytes())?;
    Ok(ExitCode::Success)
}
