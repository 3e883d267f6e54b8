//! `spawn-elite verify [DIR] [--receipt FILE] [--json] [--exclude GLOB]...`:
//! check a tree against its receipt and list every difference.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Result;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::shared::{read_receipt, stdout_write};
use crate::error::{ExitCode, fail};
use crate::receipt::{self, Receipt};

/// How many added paths `verify` lists in text before summing up the rest
/// by top-level directory (`--json` always lists every one).
const ADDED_LISTED: usize = 50;
/// How many "… and N more added under DIR/" lines at most.
const ADDED_SUMMARIES: usize = 10;

/// `--exclude` patterns: `*` stays within one path component, `**` crosses
/// them, and a pattern that matches a directory covers everything under it.
struct Excludes(Option<GlobSet>);

impl Excludes {
    fn new(patterns: &[String]) -> Result<Self> {
        if patterns.is_empty() {
            return Ok(Excludes(None));
        }
        let mut set = GlobSetBuilder::new();
        for pattern in patterns {
            let glob = GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(|e| {
                    fail(
                        ExitCode::Usage,
                        format!(
                            "--exclude {pattern:?} is not a valid glob ({}); write it like '.venv/**' or '**/__pycache__/**', quoted",
                            e.kind()
                        ),
                    )
                })?;
            set.add(glob);
        }
        let set = set.build().map_err(|e| {
            fail(
                ExitCode::Usage,
                format!("the --exclude patterns cannot be used together: {e}"),
            )
        })?;
        Ok(Excludes(Some(set)))
    }

    fn matches(&self, rel: &str) -> bool {
        let Some(set) = &self.0 else {
            return false;
        };
        rel.match_indices('/')
            .map(|(i, _)| &rel[..i])
            .chain(std::iter::once(rel))
            .any(|p| set.is_match(p))
    }
}

/// `spawn-elite verify [DIR] [--receipt FILE] [--json] [--exclude GLOB]...`
///
/// `--exclude` only ever skips paths the receipt does not list: every path
/// it lists is still checked, so excluding cannot hide a change to what was
/// generated.
pub fn run(
    dir: &Path,
    receipt_file: Option<&Path>,
    json: bool,
    exclude: &[String],
) -> Result<ExitCode> {
    let excludes = Excludes::new(exclude)?;
    let (path, expected) = read_receipt(dir, receipt_file)?;
    let skip = |rel: &str| excludes.matches(rel) && !expected.lists(rel);
    let (actual, excluded) = Receipt::of_tree_skipping(dir, &skip, jiff::Timestamp::now())?;
    expected.check_sizes(&actual, &path)?;
    let drift = receipt::drift::compare(&expected, &actual);
    if json {
        let report = serde_json::json!({
            "ok": drift.is_empty(),
            "receipt": path.display().to_string(),
            "expected_root": expected.merkle_root,
            "actual_root": actual.merkle_root,
            "modified": drift.modified,
            "added": drift.added,
            "removed": drift.removed,
            "mode_changed": drift.mode_changed,
            "excluded": excluded,
        });
        let mut bytes = serde_json::to_vec_pretty(&report).unwrap_or_default();
        bytes.push(b'\n');
        stdout_write(&bytes)?;
    } else {
        let mut text = String::new();
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
            let skipped = match excluded {
                0 => String::new(),
                n => format!("; {n} other path(s) skipped by --exclude"),
            };
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
    if !drift.added.is_empty() && ignored_by_git(dir, &drift.added) == Some(drift.added.len()) {
        let example = top_level_groups(&drift.added)
            .into_iter()
            .max_by_key(|(_, paths)| paths.len())
            .filter(|(top, _)| !top.is_empty())
            .map(|(top, _)| format!(" (e.g. --exclude '{top}**')"))
            .unwrap_or_default();
        eprintln!(
            "hint: all {} added paths are ignored by git (build output?); pass --exclude GLOB{example} or verify a clean clone",
            drift.added.len()
        );
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

/// How many of `paths` (relative to `dir`) git ignores, asking
/// `git check-ignore` once; `None` when git is missing, `dir` is not in a
/// git work tree, or git fails: the caller then says nothing.
fn ignored_by_git(dir: &Path, paths: &[String]) -> Option<usize> {
    let inside = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--is-inside-work-tree"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !inside.status.success() || inside.stdout.trim_ascii() != b"true" {
        return None;
    }
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["check-ignore", "--stdin", "-z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut input = Vec::new();
    for p in paths {
        input.extend_from_slice(p.as_bytes());
        input.push(0);
    }
    // Written from another thread: git answers while it reads, and both
    // pipes filling up at once would leave each side waiting on the other.
    let mut stdin = child.stdin.take()?;
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let mut out = Vec::new();
    let read = child.stdout.take().map(|mut o| o.read_to_end(&mut out));
    let wrote = writer.join().ok().map(|r| r.is_ok());
    let status = child.wait().ok()?;
    // 0: some are ignored, 1: none is; anything else is a failure.
    if read.is_none_or(|r| r.is_err()) || wrote != Some(true) || status.code().is_none_or(|c| c > 1)
    {
        return None;
    }
    Some(out.split(|&b| b == 0).filter(|p| !p.is_empty()).count())
}
