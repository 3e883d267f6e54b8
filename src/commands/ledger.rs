//! `spawn-elite ledger verify` and `spawn-elite ledger list`.

use anyhow::Result;

use super::shared::stdout_write;
use crate::error::ExitCode;
use crate::ledger;

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

/// `spawn-elite ledger list`
pub fn list() -> Result<ExitCode> {
    let path = ledger::path()?;
    // A broken line does not hide the spawns before it: they are listed,
    // then the error (exit 1) names the line.
    let (entries, broken) = ledger::read_until_break(&path)?;
    if entries.is_empty() && broken.is_none() {
        eprintln!("no spawns recorded yet in {}", path.display());
        return Ok(ExitCode::Success);
    }
    let mut text = String::new();
    for e in &entries {
        text.push_str(&format!(
            "{:>4}  {}  {:<8} {:<24} {}  {}\n",
            e.seq,
            e.created,
            e.kind.as_deref().unwrap_or("-"),
            e.name.as_deref().unwrap_or("-"),
            e.merkle_root.chars().take(16).collect::<String>(),
            e.repo
        ));
    }
    stdout_write(text.as_bytes())?;
    match broken {
        Some(err) => Err(err),
        None => Ok(ExitCode::Success),
    }
}
