//! Everything a spawn prints for the person (or script) that ran it.

use std::io::Write;

use serde_json::json;

use super::config::SpawnConfig;
use super::git::GitOutcome;
use super::stage::Spawned;
use crate::receipt::{RECEIPT_PATH, Receipt};
use crate::templates::PlannedFile;

/// What a finished spawn reports to the user.
pub struct Report<'a> {
    pub files: &'a [PlannedFile],
    pub spawned: &'a Spawned,
    pub receipt: &'a Receipt,
    pub ledger: Option<&'a std::path::Path>,
    pub callback: Option<&'a serde_json::Value>,
}

/// Git-style, as in receipts, so the two can be compared by eye or by script.
fn mode_text(file: &PlannedFile) -> &'static str {
    if file.executable { "100755" } else { "100644" }
}

fn files_json(files: &[PlannedFile]) -> Vec<serde_json::Value> {
    files
        .iter()
        .map(|f| json!({"path": f.path, "size": f.contents.len(), "mode": mode_text(f)}))
        .collect()
}

fn print_json(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut out, value);
    let _ = writeln!(out);
}

/// `--dry-run`: the exact file list, sizes and modes, and where it would go.
pub fn plan(config: &SpawnConfig, files: &[PlannedFile]) {
    if config.json {
        print_json(&json!({
            "name": config.name,
            "type": config.kind,
            "path": config.target,
            "dry_run": true,
            "files": files_json(files),
        }));
        return;
    }
    let total: usize = files.iter().map(|f| f.contents.len()).sum();
    println!(
        "Would create {} repository {} at {} ({} files, {} bytes); nothing was written:",
        config.kind,
        config.name,
        config.target.display(),
        files.len(),
        total
    );
    for file in files {
        println!(
            "  {} {:>7}  {}",
            mode_text(file),
            file.contents.len(),
            file.path
        );
    }
}

pub fn warn(message: &str) {
    eprintln!("warning: {message}");
}

pub fn summary(config: &SpawnConfig, report: &Report<'_>) {
    let Report {
        files,
        spawned,
        receipt,
        ledger,
        callback,
    } = *report;
    let commit = match &spawned.git {
        Some(GitOutcome::Committed { commit }) => Some(commit.as_str()),
        _ => None,
    };
    if config.json {
        print_json(&json!({
            "name": config.name,
            "type": config.kind,
            "path": spawned.path,
            "elite": config.elite,
            "commit": commit,
            "receipt": {
                "path": spawned.path.join(RECEIPT_PATH),
                "merkle_root": receipt.merkle_root(),
            },
            "ledger": ledger,
            "callback": callback,
            "files": files_json(files),
        }));
        return;
    }
    if config.quiet {
        return;
    }
    println!(
        "Created {} repository {} at {}",
        config.kind,
        config.name,
        spawned.path.display()
    );
    match commit {
        Some(commit) => println!(
            "  {} files, initial commit {} on main",
            files.len(),
            &commit[..commit.len().min(12)]
        ),
        None => println!("  {} files, no git repository", files.len()),
    }
    println!(
        "  receipt {RECEIPT_PATH}, Merkle root {}",
        receipt.merkle_root()
    );
    println!();
    println!("Next steps:");
    println!("  cd {}", spawned.path.display());
    let steps = config
        .set
        .manifest
        .type_spec(&config.kind)
        .map(|t| t.next_steps(config.elite))
        .unwrap_or_default();
    for step in steps {
        println!("  {step}");
    }
}
