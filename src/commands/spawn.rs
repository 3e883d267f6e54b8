//! `spawn-elite NAME [TYPE]` and `spawn-elite new NAME [TYPE]`: check the
//! options, resolve the callback, run the spawn, and print what it made —
//! the summary, then what became of the callback; or, with `--json`, one
//! object at the end that includes the callback's outcome.

use std::io::IsTerminal;

use anyhow::Result;
use serde_json::json;

use super::callback::print_notes;
use crate::cli::SpawnArgs;
use crate::clock::Clock;
use crate::error::{ExitCode, fail};
use crate::ops::record;
use crate::output::{self, stdout_json, stdout_write, warn};
use crate::provenance::{ATTESTATION_PATH, TIMESTAMP_PATH};
use crate::receipt::RECEIPT_PATH;
use crate::spawn::git::GitOutcome;
use crate::spawn::{self, Outcome, config::Request, config::SpawnConfig};
use crate::templates::PlannedFile;

pub fn run(name: &str, kind: Option<&str>, args: &SpawnArgs) -> Result<ExitCode> {
    if args.interactive && !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(fail(
            ExitCode::Usage,
            "-i needs a terminal; pass values with --set KEY=VALUE or --values FILE",
        ));
    }
    let request = Request {
        name: name.to_owned(),
        kind: kind.map(str::to_owned),
        type_option: args.type_option.clone(),
        out_dir: args.out_dir.clone(),
        no_elite: args.no_elite,
        no_git: args.no_git,
        dry_run: args.dry_run,
        json: args.json,
        quiet: args.quiet,
        no_ledger: args.no_ledger,
        set: args.set.clone(),
        templates: args.templates.clone().filter(|p| !p.as_os_str().is_empty()),
        templates_digest: args.templates_digest.clone(),
        values: args.values.clone(),
        from_receipt: args.from_receipt.clone(),
        interactive: args.interactive,
    };
    let mut config = SpawnConfig::from_request(&request, Clock::from_env()?)?;
    // A bad signing key fails before anything is written.
    config.signer = super::callback::signer(&args.callback)?;
    for warning in &config.warnings {
        warn(warning);
    }
    // A bad callback key or URL fails before anything is written.
    let callback = super::callback::checked_options(&args.callback)?;
    if config.dry_run {
        let preview = spawn::preview(&config)?;
        print_plan(&config, &preview.files)?;
        if let Some(cb) = &callback {
            let receipt = &preview.receipt;
            let request =
                crate::callback::dry_run(&receipt.to_json_bytes(), receipt.merkle_root(), cb)?;
            stdout_write(request.as_bytes())?;
        }
        return Ok(ExitCode::Success);
    }
    let mut outcome = spawn::run(&config, callback.as_ref())?;
    for warning in outcome.warnings.iter().chain(&outcome.recorded.warnings) {
        warn(warning);
    }
    if !config.json {
        print_summary(&config, &outcome, None)?;
    }
    let delivered = outcome.recorded.deliver(config.quiet);
    if let Some(d) = &delivered {
        print_notes(&d.notes);
    }
    if config.json {
        print_summary(&config, &outcome, delivered.as_ref().map(|d| &d.json))?;
    }
    Ok(record::exit_code(delivered.as_ref(), &outcome.recorded))
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

/// `--dry-run`: the exact file list, sizes and modes, and where it would go.
fn print_plan(config: &SpawnConfig, files: &[PlannedFile]) -> Result<()> {
    if config.json {
        return stdout_json(&json!({
            "name": config.name,
            "type": config.kind,
            "path": config.target,
            "elite": config.elite,
            "dry_run": true,
            "files": files_json(files),
        }));
    }
    let total: usize = files.iter().map(|f| f.contents.len()).sum();
    // The list alone does not show what is missing from it.
    let base_only = if config.elite {
        ""
    } else {
        ", --no-elite: the base files only"
    };
    let mut text = format!(
        "Would create {} repository {} at {} ({} files, {} bytes{base_only}); nothing was written:\n",
        config.kind,
        config.name,
        config.target.display(),
        files.len(),
        total
    );
    for file in files {
        text.push_str(&format!(
            "  {} {:>7}  {}\n",
            mode_text(file),
            file.contents.len(),
            file.path
        ));
    }
    stdout_write(text.as_bytes())
}

/// What a finished spawn made, with the callback's outcome for `--json`.
fn print_summary(
    config: &SpawnConfig,
    outcome: &Outcome,
    callback: Option<&serde_json::Value>,
) -> Result<()> {
    let commit = match &outcome.git {
        Some(GitOutcome::Committed { commit }) => Some(commit.as_str()),
        _ => None,
    };
    let files = &outcome.files;
    if config.json {
        return stdout_json(&json!({
            "name": config.name,
            "type": config.kind,
            "path": outcome.path,
            "elite": config.elite,
            "commit": commit,
            "receipt": {
                "path": outcome.path.join(RECEIPT_PATH),
                "merkle_root": outcome.receipt.merkle_root(),
            },
            "ledger": outcome.recorded.ledger,
            "attestation": outcome.signed_by.as_ref().map(|key_id| json!({
                "path": outcome.path.join(ATTESTATION_PATH),
                "key_id": key_id,
                "timestamp": stamp_json(outcome),
            })),
            "callback": callback,
            "files": files_json(files),
        }));
    }
    if config.quiet {
        return Ok(());
    }
    let mut text = format!(
        "Created {} repository {} at {}\n",
        config.kind,
        config.name,
        outcome.path.display()
    );
    match commit {
        Some(commit) => text.push_str(&format!(
            "  {} files, initial commit {} on main\n",
            files.len(),
            &commit[..commit.len().min(12)]
        )),
        None => text.push_str(&format!("  {} files, no git repository\n", files.len())),
    }
    text.push_str(&format!(
        "  receipt {RECEIPT_PATH}, Merkle root {}\n",
        outcome.receipt.merkle_root()
    ));
    if let Some(key_id) = &outcome.signed_by {
        text.push_str(&format!(
            "  attestation {ATTESTATION_PATH}, signed by key {key_id}\n"
        ));
    }
    if let Some(stamp) = &outcome.stamped {
        text.push_str(&format!(
            "  timestamp {TIMESTAMP_PATH}, TSA time {} ({})\n",
            stamp.time, stamp.signer
        ));
    }
    text.push_str(&format!("\nNext steps:\n  cd {}\n", outcome.path.display()));
    let steps = config
        .set
        .manifest
        .type_spec(&config.kind)
        .map(|t| t.next_steps(config.elite))
        .unwrap_or_default();
    for step in steps {
        text.push_str(&format!("  {step}\n"));
    }
    output::stdout_write(text.as_bytes())
}

/// The timestamp of a signed spawn, for `--json`: the TSA's time, or
/// pending (queued), or none asked for.
fn stamp_json(outcome: &spawn::Outcome) -> serde_json::Value {
    match (&outcome.stamped, &outcome.recorded.stamp_pending) {
        (Some(stamp), _) => json!({
            "path": outcome.path.join(TIMESTAMP_PATH),
            "time": stamp.time,
            "tsa": stamp.signer,
            "serial": stamp.serial,
        }),
        (None, Some(url)) => json!({ "pending": true, "tsa_url": url }),
        (None, None) => serde_json::Value::Null,
    }
}
