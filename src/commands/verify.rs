//! `spawn-elite verify [DIR] [--receipt FILE] [--json] [--exclude GLOB]... [--no-ignore]`:
//! check a tree against its receipt and list every difference.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use super::shared::{read_receipt, stdout_write};
use crate::callback::keys;
use crate::error::ExitCode;
use crate::provenance;
use crate::provenance::stamp::{self, TimestampCheck};
use crate::receipt::drift::{self, Excludes, Walked};

/// How many added paths `verify` lists in text before summing up the rest
/// by top-level directory (`--json` always lists every one).
const ADDED_LISTED: usize = 50;
/// How many "… and N more added under DIR/" lines at most.
const ADDED_SUMMARIES: usize = 10;

/// `spawn-elite verify [DIR] [--receipt FILE] [--json] [--exclude GLOB]... [--no-ignore]`
///
/// `--exclude` and the tree's ignore rules only ever skip paths the receipt
/// does not list: every path it lists is still checked, so neither can hide
/// a change to what was generated. `--no-ignore` reports ignored files too.
pub fn run(
    dir: &Path,
    receipt_file: Option<&Path>,
    json: bool,
    exclude: &[String],
    no_ignore: bool,
    (trust, tsa_cert): (Option<&Path>, Option<&Path>),
) -> Result<ExitCode> {
    let excludes = Excludes::new(exclude)?;
    let (path, expected) = read_receipt(dir, receipt_file)?;
    for (i, listed) in excludes.listed_matches(&expected) {
        let shown: Vec<&str> = listed.iter().take(3).copied().collect();
        let more = if listed.len() > shown.len() {
            ", ..."
        } else {
            ""
        };
        crate::output::warn(&format!(
            "--exclude {:?} has no effect on {} file(s) the receipt lists ({}{more}): they are still checked; --exclude skips only paths the receipt does not list",
            exclude[i],
            listed.len(),
            shown.join(", ")
        ));
    }
    // `--trust`: the attestation first; each way it can fail has its own
    // exit code, and a tree whose signature fails is not checked further.
    let signed = match trust {
        Some(trust) => Some(provenance::verify_tree(
            dir,
            &expected,
            &keys::load_trusted(trust, "--trust")?,
        )?),
        None => None,
    };
    // Then its timestamp, offline, when there is one: exit 17 if it is bad
    // or by a TSA the --tsa-cert certificate does not vouch for.
    let timestamp = match trust {
        Some(_) => Some(stamp::verify_timestamp(dir, tsa_cert)?),
        None => None,
    };
    let Walked {
        actual,
        drift,
        excluded,
        ignored,
    } = drift::walk(dir, &expected, &path, &excludes, no_ignore)?;
    if json {
        let mut report = serde_json::json!({
            "ok": drift.is_empty(),
            "receipt": path.display().to_string(),
            "expected_root": expected.merkle_root,
            "actual_root": actual.merkle_root,
            "modified": drift.modified,
            "added": drift.added,
            "removed": drift.removed,
            "mode_changed": drift.mode_changed,
            "excluded": excluded,
            "ignored": ignored,
        });
        if let Some(signed) = &signed {
            report["signed"] = serde_json::json!({
                "key_id": signed.key_id,
                "claimed": signed.claimed,
                "timestamp": match &timestamp {
                    Some(TimestampCheck::Checked(s)) => serde_json::json!({
                        "checked": true,
                        "time": s.time,
                        "tsa": s.signer,
                        "serial": s.serial,
                        "policy": s.policy,
                    }),
                    Some(TimestampCheck::Unchecked) => serde_json::json!({ "checked": false }),
                    _ => serde_json::Value::Null,
                },
            });
        }
        let mut bytes = serde_json::to_vec_pretty(&report).unwrap_or_default();
        bytes.push(b'\n');
        stdout_write(&bytes)?;
    } else {
        let mut text = String::new();
        if let Some(signed) = &signed {
            text.push_str(&format!(
                "signed: {} by key {} (its statement says {})\n",
                provenance::ATTESTATION_PATH,
                signed.key_id,
                signed.claimed
            ));
        }
        match &timestamp {
            Some(TimestampCheck::Checked(s)) => text.push_str(&format!(
                "timestamped: {} by {} at {} (checked against --tsa-cert)\n",
                provenance::TIMESTAMP_PATH,
                s.signer,
                s.time
            )),
            Some(TimestampCheck::Unchecked) => text.push_str(&format!(
                "timestamped: {} is present but unchecked; pass --tsa-cert FILE (the TSA's CA certificate) to check it\n",
                provenance::TIMESTAMP_PATH
            )),
            _ => {}
        }
        for p in &drift.modified {
            text.push_str(&format!("modified      {p}\n"));
        }
        text.push_str(&added_listing(&drift.added));
        for p in &drift.removed {
            text.push_str(&format!("removed       {p}\n"));
        }
        for m in &drift.mode_changed {
            text.push_str(&format!(
                "mode-changed  {} ({} -> {})\n",
                m.path, m.from, m.to
            ));
        }
        if drift.is_empty() {
            let mut skipped = String::new();
            if excluded > 0 {
                skipped.push_str(&format!("; {excluded} other path(s) skipped by --exclude"));
            }
            if ignored > 0 {
                skipped.push_str(&format!(
                    "; {ignored} path(s) skipped as ignored by .gitignore (--no-ignore checks them)"
                ));
            }
            text.push_str(&format!(
                "ok: {} matches {} ({} files, root {}{skipped})\n",
                dir.display(),
                path.display(),
                expected.leaf_count,
                expected.merkle_root
            ));
        }
        stdout_write(text.as_bytes())?;
    }
    if drift.is_empty() {
        return Ok(ExitCode::Success);
    }
    let n =
        drift.modified.len() + drift.added.len() + drift.removed.len() + drift.mode_changed.len();
    eprintln!(
        "drift: {} differs from {} in {n} place(s) (root {} now, {} in the receipt)",
        dir.display(),
        path.display(),
        actual.merkle_root,
        expected.merkle_root
    );
    if !json && drift.added.len() > ADDED_LISTED {
        eprintln!(
            "hint: {ADDED_LISTED} of the {} added paths are listed; --json lists them all",
            drift.added.len()
        );
    }
    // Only --no-ignore can report ignored files; say so when that is all
    // that was added. The rules are read only now, when there is a need.
    if no_ignore && !drift.added.is_empty() {
        let all_ignored = drift::all_ignored(dir, &drift.added);
        if all_ignored {
            eprintln!(
                "hint: all {} added paths are ignored by the repository's .gitignore (build output?); verify skips them without --no-ignore",
                drift.added.len()
            );
        }
    }
    Ok(ExitCode::Drift)
}

/// Added paths grouped by their top-level directory (`"dir/"`), top-level
/// files under `""`; each group keeps the paths' order.
fn top_level_groups(added: &[String]) -> BTreeMap<&str, Vec<&str>> {
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for p in added {
        let top = p.find('/').map_or("", |i| &p[..=i]);
        groups.entry(top).or_default().push(p);
    }
    groups
}

/// The `added` lines of `verify`: all of them when there are few; else
/// `ADDED_LISTED`, shared out fairly between top-level directories (so one
/// huge `.venv/` cannot hide a lone addition elsewhere), and a count of the
/// rest per directory.
fn added_listing(added: &[String]) -> String {
    let mut text = String::new();
    if added.len() <= ADDED_LISTED {
        for p in added {
            text.push_str(&format!("added         {p}\n"));
        }
        return text;
    }
    let groups = top_level_groups(added);
    // Round-robin: every directory gets one slot before any gets a second.
    let mut shown: BTreeMap<&str, usize> = groups.keys().map(|k| (*k, 0)).collect();
    let mut budget = ADDED_LISTED;
    while budget > 0 {
        let mut gave = false;
        for (top, paths) in &groups {
            let n = shown.entry(top).or_default();
            if budget > 0 && *n < paths.len() {
                *n += 1;
                budget -= 1;
                gave = true;
            }
        }
        if !gave {
            break;
        }
    }
    let mut listed: BTreeMap<&str, usize> = BTreeMap::new();
    for p in added {
        let top = p.find('/').map_or("", |i| &p[..=i]);
        let n = listed.entry(top).or_default();
        if *n < shown.get(top).copied().unwrap_or(0) {
            text.push_str(&format!("added         {p}\n"));
        }
        *n += 1;
    }
    let mut rest: Vec<(&str, usize)> = groups
        .iter()
        .map(|(top, paths)| (*top, paths.len() - shown.get(top).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    rest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    for (top, n) in rest.iter().take(ADDED_SUMMARIES) {
        if top.is_empty() {
            text.push_str(&format!("… and {n} more added at the top level\n"));
        } else {
            text.push_str(&format!("… and {n} more added under {top}\n"));
        }
    }
    if rest.len() > ADDED_SUMMARIES {
        let others = &rest[ADDED_SUMMARIES..];
        let n: usize = others.iter().map(|(_, n)| n).sum();
        text.push_str(&format!(
            "… and {n} more added in {} other places\n",
            others.len()
        ));
    }
    text
}
