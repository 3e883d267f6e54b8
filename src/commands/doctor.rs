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
        let missing: Vec<_> = results
            .iter()
            .filter(|(_, s)| !s.usable())
            .map(|(t, _)| t.name)
            .collect();
        let value = json!({ "tools": tools, "missing": missing });
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
    let unusable: Vec<_> = results
        .iter()
        .filter(|(_, s)| !s.usable())
        .map(|(t, _)| t.name)
        .collect();
    if unusable.is_empty() {
        crate::output::stdout_line("Everything the spawned repositories use is here.")?;
    } else {
        crate::output::stdout_line(&format!(
            "Not usable here: {}. spawn-elite itself still works; only what is listed beside them will not work here.",
            unusable.join(", ")
        ))?;
    }
    Ok(())
}
