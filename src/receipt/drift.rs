//! How a tree differs from its receipt: the walk `verify` makes (the
//! receipt's paths always, other paths unless `--exclude` or the tree's
//! ignore rules skip them) and the differences it finds.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Serialize;

use super::Receipt;
use crate::error::{ExitCode, fail};

#[derive(Debug, Default, Serialize)]
pub struct Drift {
    pub modified: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub mode_changed: Vec<ModeChange>,
}

#[derive(Debug, Serialize)]
pub struct ModeChange {
    pub path: String,
    pub from: String,
    pub to: String,
}

impl Drift {
    pub fn is_empty(&self) -> bool {
        self.modified.is_empty()
            && self.added.is_empty()
            && self.removed.is_empty()
            && self.mode_changed.is_empty()
    }
}

/// How `actual` differs from `expected`; both lists are sorted by path.
pub fn compare(expected: &Receipt, actual: &Receipt) -> Drift {
    let mut drift = Drift::default();
    let (mut e, mut a) = (
        expected.files.iter().peekable(),
        actual.files.iter().peekable(),
    );
    loop {
        match (e.peek(), a.peek()) {
            (None, None) => break,
            (Some(x), None) => {
                drift.removed.push(x.path.clone());
                e.next();
            }
            (None, Some(y)) => {
                drift.added.push(y.path.clone());
                a.next();
            }
            (Some(x), Some(y)) => match x.path.as_bytes().cmp(y.path.as_bytes()) {
                std::cmp::Ordering::Less => {
                    drift.removed.push(x.path.clone());
                    e.next();
                }
                std::cmp::Ordering::Greater => {
                    drift.added.push(y.path.clone());
                    a.next();
                }
                std::cmp::Ordering::Equal => {
                    if x.blake3 != y.blake3 || x.size != y.size {
                        drift.modified.push(x.path.clone());
                    }
                    if x.mode != y.mode {
                        drift.mode_changed.push(ModeChange {
                            path: x.path.clone(),
                            from: x.mode.clone(),
                            to: y.mode.clone(),
                        });
                    }
                    e.next();
                    a.next();
                }
            },
        }
    }
    drift
}

/// `--exclude` patterns: `*` stays within one path component, `**` crosses
/// them, and a pattern that matches a directory covers everything under it.
pub struct Excludes(Option<GlobSet>);

impl Excludes {
    pub fn new(patterns: &[String]) -> Result<Self> {
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
        prefixes(rel).any(|p| set.is_match(p))
    }

    /// For each pattern (by its index) that matches paths `receipt` lists,
    /// those paths: the pattern has no effect on them, as they are checked
    /// all the same, which a user who typed it did not expect.
    pub fn listed_matches<'a>(&self, receipt: &'a Receipt) -> BTreeMap<usize, Vec<&'a str>> {
        let mut found: BTreeMap<usize, Vec<&'a str>> = BTreeMap::new();
        let Some(set) = &self.0 else {
            return found;
        };
        for file in &receipt.files {
            let mut hit: Vec<usize> = prefixes(&file.path).flat_map(|p| set.matches(p)).collect();
            hit.sort_unstable();
            hit.dedup();
            for i in hit {
                found.entry(i).or_default().push(&file.path);
            }
        }
        found
    }
}

/// `a`, `a/b`, `a/b/c` for `a/b/c`: a pattern matching a directory
/// matches everything under it.
fn prefixes(rel: &str) -> impl Iterator<Item = &str> {
    rel.match_indices('/')
        .map(|(i, _)| &rel[..i])
        .chain(std::iter::once(rel))
}

/// The files of `dir` that its ignore rules keep, as ripgrep decides it
/// (the `ignore` crate): every `.gitignore` in the tree, nested ones
/// included, `.git/info/exclude` and the user's global git excludes file.
/// Only the tree's own ignore files count, not those of directories above
/// it, and they count without a `.git` too: a repository spawned with
/// `--no-git` carries the same `.gitignore`. No git process is run.
struct Kept(HashSet<String>);

impl Kept {
    fn of(dir: &Path) -> Result<Self> {
        let walk = ignore::WalkBuilder::new(dir)
            .standard_filters(false)
            .git_ignore(true)
            .git_exclude(true)
            .git_global(true)
            .require_git(false)
            .parents(false)
            .follow_links(false)
            .filter_entry(|e| !(e.depth() == 1 && e.file_name() == ".git"))
            .build();
        let mut kept = HashSet::new();
        for entry in walk {
            // A directory that cannot be listed here could not be hashed
            // either: fail the same way, rather than guess what it holds.
            let entry = entry.map_err(|e| {
                fail(
                    ExitCode::Io,
                    format!(
                        "cannot read {} while applying its ignore rules: {e}; make it readable, or pass --no-ignore",
                        dir.display()
                    ),
                )
            })?;
            if entry.file_type().is_none_or(|t| t.is_dir()) {
                continue;
            }
            let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
            if let Some(rel) = rel.to_str() {
                kept.insert(rel.to_owned());
            }
        }
        Ok(Kept(kept))
    }

    fn ignores(&self, rel: &str) -> bool {
        !self.0.contains(rel)
    }
}

/// What a walk of a tree against its receipt found.
pub struct Walked {
    /// The receipt of the tree as it is (skipped paths left out).
    pub actual: Receipt,
    pub drift: Drift,
    /// Paths `--exclude` skipped.
    pub excluded: usize,
    /// Paths the tree's ignore rules skipped.
    pub ignored: usize,
}

/// Walk `dir` against `expected` (read from `receipt_path`).
///
/// `excludes` and the tree's ignore rules (unless `no_ignore`) only ever
/// skip paths the receipt does not list: every path it lists is still
/// checked, so neither can hide a change to what was generated.
pub fn walk(
    dir: &Path,
    expected: &Receipt,
    receipt_path: &Path,
    excludes: &Excludes,
    no_ignore: bool,
) -> Result<Walked> {
    let kept = if no_ignore {
        None
    } else {
        Some(Kept::of(dir)?)
    };
    let (excluded, ignored) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let skip = |rel: &str| {
        if expected.lists(rel) {
            false
        } else if excludes.matches(rel) {
            excluded.fetch_add(1, Ordering::Relaxed);
            true
        } else if kept.as_ref().is_some_and(|k| k.ignores(rel)) {
            ignored.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            false
        }
    };
    let (actual, _) = Receipt::of_tree_skipping(dir, &skip, jiff::Timestamp::now())?;
    expected.check_sizes(&actual, receipt_path)?;
    let drift = compare(expected, &actual);
    Ok(Walked {
        actual,
        drift,
        excluded: excluded.into_inner(),
        ignored: ignored.into_inner(),
    })
}

/// Whether the tree's ignore rules ignore every one of `added` (read only
/// when asked: after a `--no-ignore` walk found additions).
pub fn all_ignored(dir: &Path, added: &[String]) -> bool {
    Kept::of(dir).is_ok_and(|kept| added.iter().all(|p| kept.ignores(p)))
}
