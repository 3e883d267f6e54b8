//! `spawn-elite doctor [--json]`: check the host's tools and print the
//! report. Always exits 0 when it could look: see [`crate::doctor`].

use anyhow::Result;
use serde_json::json;

use crate::doctor::{self, Status, Tool};
use crate::error::ExitCode;

pub fn run(json: bool) -> Result<ExitCode> {
    // Staging directories of spawns that were killed are litter in the
    // default base; a spawn into another --out-dir removes those there.
    if let Ok(base) = crate::spawn::config::default_base() {
        crate::spawn::stage::remove_stale(&base, &mut |line| crate::output::warn(line));
    }
    report(&doctor::check_all(), json)?;
    Ok(ExitCode::Success)
}

/// Print the report: only a failed write to stdout fails it.
fn report(results: &[(&Tool, Status)], as_json: bool) -> Result<()> {
    if as_json {
        let tools: Vec<_> = results
            .iter()
            .map(|(tool, status)| {
                json!({
                    "name": tool.name,
                    "status": status.word(),
                    "version": status.version(),
                    "minimum": tool.minimum,
                    "detail": match status { Status::Broken(reason) => Some(reason.as_str()), _ => None },
                    "needed_for": tool.needed_for,
                })
            })
            .collect();
        // One list a status, so a script that insists on a tool can tell
        // "install it" (missing) from "upgrade it" (too_old).
        let value = json!({
            "tools": tools,
            "missing": named(results, "missing"),
            "too_old": named(results, "too old"),
            "broken": named(results, "broken"),
        });
        crate::output::stdout_line(&serde_json::to_string_pretty(&value).unwrap_or_default())?;
        return Ok(());
    }

    crate::output::stdout_line(&format!(
        "spawn-elite {}: tools the spawned repositories use on this host",
        env!("CARGO_PKG_VERSION")
    ))?;
    crate::output::stdout_line("")?;
    let name_width = results.iter().map(|(t, _)| t.name.len()).max().unwrap_or(0);
    for (tool, status) in results {
        let version = match status {
            Status::Found(v) => v.clone(),
            Status::TooOld(v) => format!("{v} (needs >= {})", tool.minimum.unwrap_or("?")),
            Status::Missing => "-".to_string(),
            Status::Broken(reason) => reason.clone(),
        };
        crate::output::stdout_line(&format!(
            "  {:<7}  {:<name_width$}  {:<24}  {}",
            status.word(),
            tool.name,
            version,
            tool.needed_for
        ))?;
    }
    crate::output::stdout_line("")?;
    // What to do differs: install what is missing, upgrade what is too
    // old, look at what is broken; so each gets its own line.
    let summary = [
        ("missing", "Missing here"),
        ("too old", "Too old here"),
        ("broken", "Broken here"),
    ];
    let mut any = false;
    for (word, label) in summary {
        let names = named(results, word);
        if !names.is_empty() {
            any = true;
            crate::output::stdout_line(&format!("{label}: {}.", names.join(", ")))?;
        }
    }
    if any {
        crate::output::stdout_line(
            "spawn-elite itself still works; only what is listed beside those tools will not work here.",
        )?;
    } else {
        crate::output::stdout_line("Everything the spawned repositories use is here.")?;
    }
    Ok(())
}

/// The names of the tools whose status is `word`, in report order.
fn named(results: &[(&Tool, Status)], word: &str) -> Vec<&'static str> {
    results
        .iter()
        .filter(|(_, status)| status.word() == word)
        .map(|(tool, _)| tool.name)
        .collect()
}
