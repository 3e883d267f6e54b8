//! `spawn-elite update [DIR]`: resolve the options, run the update, and
//! print what it did: every path and what happens to it, then what to do
//! about conflicts; or one JSON object with `--json`.

use anyhow::Result;
use serde_json::json;

use super::callback::print_notes;
use crate::cli::UpdateArgs;
use crate::clock::Clock;
use crate::error::ExitCode;
use crate::ops::record;
use crate::output::{stdout_write, warn};
use crate::provenance::TIMESTAMP_PATH;
use crate::update::classify::Action;
use crate::update::merge::versions;
use crate::update::nogit::NEW_SUFFIX;
use crate::update::plan::Plan;
use crate::update::{self, Mode, Options, Outcome};

pub fn run(args: &UpdateArgs) -> Result<ExitCode> {
    let opts = Options {
        dir: update::checked_dir(&args.dir)?,
        templates: args.templates.clone().filter(|p| !p.as_os_str().is_empty()),
        set: args.set.clone(),
        dry_run: args.dry_run,
        check: args.check,
        json: args.json,
        quiet: args.quiet,
        ledger: !args.no_ledger,
        clock: Clock::from_env()?,
        signer: None,
    };
    if opts.check {
        let plan = update::check(&opts)?;
        print_check(&opts, &plan)?;
        return Ok(if plan.current() {
            ExitCode::Success
        } else {
            ExitCode::Drift
        });
    }
    // A bad callback key or URL fails before anything is changed.
    let callback = super::callback::checked_options(&args.callback)?;
    let opts = Options {
        signer: super::callback::signer(&args.callback)?,
        ..opts
    };

    if args.resume {
        return resume(&opts, callback.as_ref());
    }
    let mut outcome = update::run(&opts, callback.as_ref())?;
    for warning in &outcome.warnings {
        warn(warning);
    }
    let Some(recorded) = &outcome.recorded else {
        // A dry run, nothing to do, or conflicts that wait for the user.
        print_outcome(&opts, &outcome, None)?;
        let waiting = !opts.dry_run && !outcome.conflicts().is_empty();
        return Ok(if waiting {
            ExitCode::Conflicts
        } else {
            ExitCode::Success
        });
    };
    for warning in &recorded.warnings {
        warn(warning);
    }
    let conflicts = !outcome.conflicts().is_empty();
    if !opts.json {
        print_outcome(&opts, &outcome, None)?;
    }
    let delivered = outcome
        .recorded
        .as_mut()
        .and_then(|r| r.deliver(opts.quiet));
    if let Some(d) = &delivered {
        print_notes(&d.notes);
    }
    if opts.json {
        print_outcome(&opts, &outcome, delivered.as_ref().map(|d| &d.json))?;
    }
    Ok(match outcome.recorded.as_ref() {
        _ if conflicts => ExitCode::Conflicts,
        Some(recorded) => record::exit_code(delivered.as_ref(), recorded),
        None => delivered.as_ref().map_or(ExitCode::Success, |d| d.code),
    })
}

/// `update --continue`: the finished update, recorded.
fn resume(opts: &Options, callback: Option<&crate::callback::CallbackOptions>) -> Result<ExitCode> {
    let mut done = update::resume::resume(&opts.dir, opts.ledger, &opts.clock, callback)?;
    for warning in &done.recorded.warnings {
        warn(warning);
    }
    let u = &done.update;
    if opts.json {
        let value = json!({
            "dir": opts.dir.display().to_string(),
            "templates": { "from": u.old_templates, "to": u.new_templates },
            "merge": done.merge,
            "conflicts_resolved": u.conflicts,
            "ledger": done.recorded.ledger.as_ref().map(|p| p.display().to_string()),
        });
        let mut out = serde_json::to_vec_pretty(&value)?;
        out.push(b'\n');
        stdout_write(&out)?;
    } else if !opts.quiet {
        let mut text = format!(
            "finished the update of {} from template set {} {} to {} {}\n",
            opts.dir.display(),
            u.old_templates.name,
            u.old_templates.version,
            u.new_templates.name,
            u.new_templates.version
        );
        if let Some(commit) = &done.merge {
            text.push_str(&format!("merge commit: {commit}\n"));
        }
        if let Some(ledger) = &done.recorded.ledger {
            text.push_str(&format!("ledger: {}\n", ledger.display()));
        }
        stdout_write(text.as_bytes())?;
    }
    let delivered = done.recorded.deliver(opts.quiet);
    if let Some(d) = &delivered {
        print_notes(&d.notes);
    }
    Ok(delivered.map_or(ExitCode::Success, |d| d.code))
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// `update --check`.
fn print_check(opts: &Options, plan: &Plan) -> Result<()> {
    let (from, to) = versions(plan);
    let differ = differing(plan);
    if opts.json {
        let value = json!({
            "current": plan.current(),
            "templates": { "from": plan.old_templates, "to": plan.new_templates },
            "merkle_root": { "recorded": plan.old.merkle_root, "current_set": plan.receipt.merkle_root },
            "files": differ,
        });
        let mut out = serde_json::to_vec_pretty(&value)?;
        out.push(b'\n');
        return stdout_write(&out);
    }
    if opts.quiet {
        return Ok(());
    }
    let text = if plan.current() {
        format!(
            "ok: scaffold is current: template set {to} renders what the receipt records ({from})\n"
        )
    } else if plan.files_current() {
        format!(
            "scaffold is out of date; run spawn-elite update: template set {to} renders the same files as {from}, but the receipt records {from}\n"
        )
    } else {
        format!(
            "scaffold is out of date; run spawn-elite update: template set {to} changes {} file{} of {from} ({})\n",
            differ.len(),
            if differ.len() == 1 { "" } else { "s" },
            differ.join(", ")
        )
    };
    stdout_write(text.as_bytes())
}

/// The paths whose pristine version differs between the receipt and the set.
fn differing(plan: &Plan) -> Vec<String> {
    let mut paths: Vec<String> = plan
        .old
        .files
        .iter()
        .filter(|f| !plan.receipt.files.contains(f))
        .chain(
            plan.receipt
                .files
                .iter()
                .filter(|f| !plan.old.files.contains(f)),
        )
        .map(|f| f.path.clone())
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// An update's outcome (or plan, with `--dry-run`).
fn print_outcome(opts: &Options, o: &Outcome, callback: Option<&serde_json::Value>) -> Result<()> {
    if opts.json {
        return json_outcome(o, callback);
    }
    let conflicts = o.conflicts();
    if opts.quiet && conflicts.is_empty() {
        return Ok(());
    }
    let (from, to) = versions(&o.plan);
    let name = o
        .plan
        .old
        .spawn
        .as_ref()
        .map_or("the repository", |s| s.name.as_str());
    let mut text = String::new();
    if o.current() {
        text.push_str(&format!(
            "{name} is up to date: template set {to} renders what the receipt records ({from}); nothing to do\n"
        ));
        return stdout_write(text.as_bytes());
    }
    let how = match (o.mode, &o.base) {
        (Mode::Git, Some(base)) => format!("git merge, base {}", short(base)),
        _ => "receipt only, no git history".to_owned(),
    };
    if o.dry_run {
        text.push_str(&format!(
            "dry run: would update {name} from template set {from} to {to} ({how}); nothing was changed\n"
        ));
    } else {
        text.push_str(&format!(
            "updated {name} from template set {from} to {to} ({how})\n"
        ));
    }
    for (key, old, new) in value_changes(&o.plan) {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".to_owned());
        text.push_str(&format!(
            "  value     {key} {} → {}\n",
            show(&old),
            show(&new)
        ));
    }
    let mut unchanged = 0;
    for change in &o.changes {
        if change.action == Action::Unchanged && !o.dry_run {
            unchanged += 1;
            continue;
        }
        match &change.from {
            Some(from) => text.push_str(&format!(
                "  {:<10}{from} -> {}\n",
                change.action.as_str(),
                change.path
            )),
            None => text.push_str(&format!(
                "  {:<10}{}{}\n",
                change.action.as_str(),
                change.path,
                change.linked.as_ref().map_or_else(String::new, |l| format!(
                    " ({l} is a symlink, which update never follows: nothing was written there)"
                ))
            )),
        }
    }
    if unchanged > 0 {
        text.push_str(&format!("  ({unchanged} files unchanged)\n"));
    }
    if o.plan.files_current() {
        let what = if o.dry_run { "would change" } else { "changed" };
        text.push_str(&format!(
            "only the receipt {what}: it records template set {to} (the same files as {from})\n"
        ));
    }
    if !o.dry_run {
        if let Some(commit) = &o.merge {
            text.push_str(&format!("merge commit: {commit}\n"));
        }
        text.push_str(&format!("merkle root: {}\n", o.plan.receipt.merkle_root));
        if let Some(ledger) = o.recorded.as_ref().and_then(|r| r.ledger.as_ref()) {
            text.push_str(&format!("ledger: {}\n", ledger.display()));
        }
        if let Some(stamp) = &o.stamped {
            text.push_str(&format!(
                "timestamp: {TIMESTAMP_PATH}, TSA time {} ({})\n",
                stamp.time, stamp.signer
            ));
        }
    }
    if !conflicts.is_empty() {
        let n = conflicts.len();
        let s = if n == 1 { "" } else { "s" };
        let what = match (o.mode, o.dry_run) {
            (_, true) => format!("{n} conflict{s} would need resolving\n"),
            (Mode::Git, false) => format!(
                "{n} conflict{s} to resolve: git marked them (`git status` lists them); edit each (or run `git mergetool`), `git add` it, then run `spawn-elite update --continue`, which commits the merge and records the update; `git merge --abort` undoes it\n"
            ),
            (Mode::Receipt, false) => format!(
                "{n} conflict{s} to resolve: your version was kept and the new one written beside it as PATH{NEW_SUFFIX}; merge it in by hand and delete the {NEW_SUFFIX} file, then run `spawn-elite update --continue` to record the update\n"
            ),
        };
        text.push_str(&what);
    }
    stdout_write(text.as_bytes())
}

/// The values the new receipt records differently from the old one
/// (`--set`, a key the set added or dropped): key, old, new.
fn value_changes(plan: &Plan) -> Vec<(String, Option<String>, Option<String>)> {
    let empty = std::collections::BTreeMap::new();
    let old = plan.old.spawn.as_ref().map_or(&empty, |s| &s.options);
    let new = plan.receipt.spawn.as_ref().map_or(&empty, |s| &s.options);
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|k| ((*k).clone(), old.get(k).cloned(), new.get(k).cloned()))
        .collect()
}

fn json_outcome(o: &Outcome, callback: Option<&serde_json::Value>) -> Result<()> {
    let mut value = json!({
        "dir": o.dir.display().to_string(),
        "dry_run": o.dry_run,
        "current": o.current(),
        "mode": o.mode.as_str(),
        "fallback": o.fallback,
        "templates": { "from": o.plan.old_templates, "to": o.plan.new_templates },
        "merkle_root": { "old": o.plan.old.merkle_root, "new": o.plan.receipt.merkle_root },
        "base": o.base,
        "pristine": o.pristine,
        "merge": o.merge,
        "files": o.changes,
        "values": value_changes(&o.plan)
            .into_iter()
            .map(|(key, from, to)| json!({"key": key, "from": from, "to": to}))
            .collect::<Vec<_>>(),
        "conflicts": o.conflicts(),
        "ledger": o.recorded.as_ref().and_then(|r| r.ledger.as_ref()).map(|p| p.display().to_string()),
        "callback": callback,
    });
    // Only with --tsa, so the output of every other update stays as it was.
    let pending = o.recorded.as_ref().and_then(|r| r.stamp_pending.as_ref());
    let timestamp = match (&o.stamped, pending) {
        (Some(stamp), _) => Some(json!({
            "path": o.dir.join(TIMESTAMP_PATH),
            "time": stamp.time,
            "tsa": stamp.signer,
            "serial": stamp.serial,
        })),
        (None, Some(url)) => Some(json!({ "pending": true, "tsa_url": url })),
        (None, None) => None,
    };
    if let (Some(t), Some(map)) = (timestamp, value.as_object_mut()) {
        map.insert("timestamp".to_owned(), t);
    }
    let mut out = serde_json::to_vec_pretty(&value)?;
    out.push(b'\n');
    stdout_write(&out)
}
