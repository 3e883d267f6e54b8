//! `spawn-elite ledger verify|list|repair|add`.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::shared::{read_own_receipt, stdout_write};
use crate::cli::LedgerAction;
use crate::error::{ExitCode, fail};
use crate::ledger::{self, Entry, Held, Repair, anchor};
use crate::receipt::{self, Receipt};

/// `spawn-elite ledger ACTION`
pub fn run(action: &LedgerAction) -> Result<ExitCode> {
    match action {
        LedgerAction::Verify { file, tsa_cert } => verify(file.as_deref(), tsa_cert.as_deref()),
        LedgerAction::Anchor { tsa, file } => anchor(tsa.as_deref(), file.as_deref()),
        LedgerAction::List { json, file } => list(*json, file.as_deref()),
        LedgerAction::Repair { file } => repair(file.as_deref()),
        LedgerAction::Add { dir } => add(dir),
    }
}

/// The chain `ledger verify|anchor` works on (`--file`, else the ledger),
/// checked whole: its label, path and entries.
fn checked_chain(file: Option<&Path>) -> Result<(&'static str, PathBuf, Held)> {
    Ok(match file {
        Some(f) => {
            let (held, broken) = ledger::read_file_until_break(f)?;
            if let Some(err) = broken {
                return Err(err);
            }
            (held.label(), f.to_path_buf(), held)
        }
        None => {
            let path = ledger::path()?;
            let entries = ledger::read_verified(&path)?;
            ("ledger", path, Held::Ledger(entries))
        }
    })
}

/// `spawn-elite ledger anchor [--tsa URL] [--file FILE]`
fn anchor(tsa: Option<&str>, file: Option<&Path>) -> Result<ExitCode> {
    let Some(tsa) = super::callback::tsa_url(tsa)? else {
        return Err(fail(
            ExitCode::Usage,
            "ledger anchor needs a time-stamp authority: pass --tsa URL (or set SPAWN_ELITE_TSA)",
        ));
    };
    let (label, path, held) = checked_chain(file)?;
    let done = anchor::anchor(&path, held.len(), &tsa)?;
    stdout_write(
        format!(
            "anchored {label} {} at line {} (head {}): TSA time {} ({}); kept in {}\n",
            path.display(),
            done.line,
            done.head,
            done.stamp.time,
            done.stamp.signer,
            done.sidecar.display()
        )
        .as_bytes(),
    )?;
    Ok(ExitCode::Success)
}

/// `spawn-elite ledger verify [--file FILE] [--tsa-cert FILE]`
pub fn verify(file: Option<&Path>, tsa_cert: Option<&Path>) -> Result<ExitCode> {
    let (label, path, held) = checked_chain(file)?;
    let last_root = match &held {
        Held::Ledger(entries) => entries.last().map(|e| e.merkle_root.clone()),
        Held::Log(lines) => lines
            .last()
            .map(|l| log_field(l, &["receipt", "merkle_root"])),
    };
    let msg = match last_root {
        None => format!(
            "ok: {label} {} is empty or absent; nothing to check\n",
            path.display()
        ),
        Some(root) => format!(
            "ok: {label} {} holds {} entries and its chain is intact (last root {root})\n",
            path.display(),
            held.len(),
        ),
    };
    stdout_write(msg.as_bytes())?;
    let sidecar = anchor::sidecar(&path);
    match tsa_cert {
        Some(cert) => match anchor::verify(&path, held.len(), cert)? {
            None => stdout_write(
                format!("no anchors: {} does not exist\n", sidecar.display()).as_bytes(),
            )?,
            Some(checked) => {
                let mut text = String::new();
                for (line, stamp) in &checked.anchors {
                    text.push_str(&format!(
                        "anchored: every entry up to line {line} existed at {} ({})\n",
                        stamp.time, stamp.signer
                    ));
                }
                stdout_write(text.as_bytes())?;
            }
        },
        None if sidecar.exists() => stdout_write(
            format!(
                "anchors in {} are present but unchecked; pass --tsa-cert FILE\n",
                sidecar.display()
            )
            .as_bytes(),
        )?,
        None => {}
    }
    Ok(ExitCode::Success)
}

/// `spawn-elite ledger list [--json] [--file FILE]`: a header line then one
/// row per spawn or update; with `--json`, JSON Lines: each entry as the
/// file holds it (for the ledger `seq`, `prev`, `created`, `repo`, `name`,
/// `type`, `merkle_root`, `leaf_count`, `receipt_blake3`, and `event` and
/// `update` for an update), one object per line and no header.
pub fn list(json: bool, file: Option<&Path>) -> Result<ExitCode> {
    // A broken line does not hide the entries before it: they are listed,
    // then the error (exit 1) names the line.
    let (path, held, broken) = match file {
        Some(f) => {
            let (held, broken) = ledger::read_file_until_break(f)?;
            (f.to_path_buf(), held, broken)
        }
        None => {
            let path = ledger::path()?;
            let (entries, broken) = ledger::read_until_break(&path)?;
            (path, Held::Ledger(entries), broken)
        }
    };
    if held.is_empty() && broken.is_none() {
        let what = if file.is_some() {
            "nothing"
        } else {
            "no spawns"
        };
        eprintln!("{what} recorded yet in {}", path.display());
        return Ok(ExitCode::Success);
    }
    let text = match (&held, json) {
        (Held::Ledger(entries), true) => json_lines(entries)?,
        (Held::Log(lines), true) => json_lines(lines)?,
        (_, false) if held.is_empty() => String::new(),
        (Held::Ledger(entries), false) => ledger_rows(entries),
        (Held::Log(lines), false) => log_rows(lines),
    };
    stdout_write(text.as_bytes())?;
    match broken {
        Some(err) => Err(err),
        None => Ok(ExitCode::Success),
    }
}

fn json_lines<T: serde::Serialize>(items: &[T]) -> Result<String> {
    let mut text = String::new();
    for item in items {
        text.push_str(&serde_json::to_string(item)?);
        text.push('\n');
    }
    Ok(text)
}

/// The ledger's rows. An update row shows when the update ran, not the
/// spawn time its receipt carries over, so the rows read in order.
fn ledger_rows(entries: &[Entry]) -> String {
    let mut text = format!(
        "{:>4}  {:<20}  {:<8} {:<24} {:<16}  {}\n",
        "SEQ", "CREATED", "TYPE", "NAME", "ROOT", "REPOSITORY"
    );
    for e in entries {
        let when = e.update.as_ref().map_or(&e.created, |u| &u.updated);
        text.push_str(&format!(
            "{:>4}  {}  {:<8} {:<24} {}  {}{}\n",
            e.seq,
            when,
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
    text
}

/// The receiver's log: one row per accepted receipt, with the key that
/// signed it.
fn log_rows(lines: &[serde_json::Value]) -> String {
    let mut text = format!(
        "{:>4}  {:<20}  {:<8} {:<24} {:<16}  {}\n",
        "SEQ", "RECEIVED", "TYPE", "NAME", "ROOT", "KEYID"
    );
    for (i, line) in lines.iter().enumerate() {
        text.push_str(&format!(
            "{:>4}  {:<20}  {:<8} {:<24} {:<16}  {}\n",
            i + 1,
            log_field(line, &["received_at"]),
            log_field(line, &["receipt", "spawn", "type"]),
            log_field(line, &["receipt", "spawn", "name"]),
            log_field(line, &["receipt", "merkle_root"])
                .chars()
                .take(16)
                .collect::<String>(),
            log_field(line, &["keyid"]),
        ));
    }
    text
}

/// A string field of a log line, or "-": the log keeps what it was sent.
fn log_field(line: &serde_json::Value, path: &[&str]) -> String {
    path.iter()
        .try_fold(line, |v, key| v.get(key))
        .and_then(serde_json::Value::as_str)
        .unwrap_or("-")
        .to_owned()
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
    let (receipt_path, expected) = read_own_receipt(dir)?;
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
