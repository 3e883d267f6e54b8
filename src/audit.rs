//! The subcommands that read receipts, proofs and the ledger: `verify`,
//! `receipt`, `prove`, `verify-proof` and `ledger`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Result;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::exit_codes::{ExitCode, fail};
use crate::ledger;
use crate::proof::Proof;
use crate::receipt::{self, Receipt};
use crate::scan::RECEIPT_PATH;

fn stdout_write(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| {
            fail(
                ExitCode::Io,
                format!("cannot write to standard output: {e}"),
            )
        })
}

fn receipt_path(dir: &Path, explicit: Option<&Path>) -> PathBuf {
    explicit.map_or_else(|| dir.join(RECEIPT_PATH), Path::to_path_buf)
}

fn read_receipt(dir: &Path, explicit: Option<&Path>) -> Result<(PathBuf, Receipt)> {
    let path = receipt_path(dir, explicit);
    if explicit.is_none() && !path.exists() {
        return Err(fail(
            ExitCode::Io,
            format!(
                "no receipt at {}; pass one with --receipt FILE, or make one with `spawn-elite receipt DIR -o FILE`",
                path.display()
            ),
        ));
    }
    let receipt = Receipt::read(&path)?;
    Ok((path, receipt))
}

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
pub fn verify(
    dir: &Path,
    receipt_file: Option<&Path>,
    json: bool,
    exclude: &[String],
) -> Result<ExitCode> {
    let excludes = Excludes::new(exclude)?;
    let (path, expected) = read_receipt(dir, receipt_file)?;
    let skip = |rel: &str| excludes.matches(rel) && !expected.lists(rel);
    let (actual, excluded) = Receipt::of_tree_skipping(dir, &skip, jiff::Timestamp::now())?;
    let drift = receipt::compare(&expected, &actual);
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

/// `spawn-elite receipt DIR [-o FILE [--force]]`
pub fn receipt(dir: &Path, out: Option<&Path>, force: bool) -> Result<ExitCode> {
    // Checked before hashing, so a slow tree does not end in a refusal.
    if let Some(path) = out
        && !force
        && std::fs::symlink_metadata(path).is_ok()
    {
        return Err(fail(
            ExitCode::Usage,
            format!("{} exists; pass --force to replace it", path.display()),
        ));
    }
    let receipt = Receipt::of_tree(dir, None, crate::config::now()?)?;
    match out {
        Some(path) => {
            receipt.write(path)?;
            eprintln!(
                "wrote {} ({} files, root {})",
                path.display(),
                receipt.leaf_count,
                receipt.merkle_root
            );
        }
        None => stdout_write(&receipt.to_json_bytes())?,
    }
    Ok(ExitCode::Success)
}

/// `spawn-elite prove DIR PATH [--receipt FILE]`: against the receipt when
/// there is one, since that is what a third party can trust; else against
/// the tree as it is now.
pub fn prove(dir: &Path, path: &Path, receipt_file: Option<&Path>) -> Result<ExitCode> {
    let candidates = PathCandidates::new(dir, path)?;
    let receipt_at = receipt_path(dir, receipt_file);
    let receipt = if receipt_file.is_some() || receipt_at.exists() {
        let receipt = read_receipt(dir, receipt_file)?.1;
        eprintln!("proving against {}", receipt_at.display());
        receipt
    } else {
        eprintln!(
            "no receipt at {}: proving against the tree as it is now",
            receipt_at.display()
        );
        Receipt::of_tree(dir, None, jiff::Timestamp::now())?
    };
    let wanted = candidates.choose(&receipt);
    let proof = Proof::build(&receipt, &wanted)?;
    stdout_write(&proof.to_json_bytes())?;
    Ok(ExitCode::Success)
}

/// What PATH may mean inside DIR. PATH may be relative to DIR (as the
/// receipt lists it), relative to the current directory (as a shell
/// completes it), or absolute; either of the last two must lie inside DIR.
struct PathCandidates {
    /// PATH resolved against the current directory, relative to DIR.
    from_cwd: Option<String>,
    /// PATH taken as relative to DIR.
    from_dir: Option<String>,
    /// Whether PATH names something on disk (from the current directory).
    exists: bool,
}

impl PathCandidates {
    /// Fails (exit 2) when PATH cannot name anything inside DIR, before any
    /// receipt is read.
    fn new(dir: &Path, path: &Path) -> Result<Self> {
        let shown = path.display();
        if path.to_str().is_none() {
            return Err(fail(
                ExitCode::Usage,
                format!("{shown} is not valid UTF-8, so no receipt can list it"),
            ));
        }
        let root = resolve(dir).unwrap_or_else(|| dir.to_path_buf());
        let from_cwd = resolve(path).and_then(|p| {
            let rel = p.strip_prefix(&root).ok()?;
            if rel.as_os_str().is_empty() {
                return None;
            }
            rel.to_str().map(str::to_owned)
        });
        let from_dir = if path.is_absolute() {
            None
        } else {
            dir_relative(path)
        };
        if from_cwd.is_none() && from_dir.is_none() {
            return Err(fail(
                ExitCode::Usage,
                format!(
                    "{shown} is not a file inside {}; name one relative to DIR, to the current directory, or by an absolute path inside DIR",
                    dir.display()
                ),
            ));
        }
        Ok(PathCandidates {
            from_cwd,
            from_dir,
            exists: std::fs::symlink_metadata(path).is_ok(),
        })
    }

    /// The path the receipt should list: a meaning the receipt does list
    /// (the current directory's first, as for every other command-line
    /// path), else the likeliest one, for the "not in the receipt" error.
    fn choose(self, receipt: &Receipt) -> String {
        let PathCandidates {
            from_cwd,
            from_dir,
            exists,
        } = self;
        let listed = |p: &Option<String>| p.as_deref().is_some_and(|p| receipt.lists(p));
        let pick = if listed(&from_cwd) {
            from_cwd
        } else if listed(&from_dir) {
            from_dir
        } else if exists && from_cwd.is_some() {
            from_cwd
        } else {
            from_dir.or(from_cwd)
        };
        // `new` made sure there is at least one meaning.
        pick.unwrap_or_default()
    }
}

/// PATH as a path inside DIR: `./` components dropped, `None` if it is
/// empty or climbs out with `..`.
fn dir_relative(path: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// `path` made absolute against the current directory, with every existing
/// directory on the way resolved (symlinks included, so `DIR` given through
/// a link still contains its files), but the last component left as it is:
/// a symlink in the tree is proved as a link, not as what it points to.
fn resolve(path: &Path) -> Option<PathBuf> {
    let mut abs = PathBuf::new();
    for c in std::path::absolute(path).ok()?.components() {
        match c {
            Component::ParentDir => {
                abs.pop();
            }
            Component::CurDir => {}
            other => abs.push(other),
        }
    }
    let Some(name) = abs.file_name().map(ToOwned::to_owned) else {
        return Some(abs);
    };
    let mut base = abs.parent()?.to_path_buf();
    let mut missing = Vec::new();
    loop {
        if let Ok(mut real) = base.canonicalize() {
            real.extend(missing.iter().rev());
            real.push(name);
            return Some(real);
        }
        missing.push(base.file_name()?.to_owned());
        base = base.parent()?.to_path_buf();
    }
}

/// `spawn-elite verify-proof PROOF FILE [--root HEX]`
pub fn verify_proof(proof_file: &Path, file: &Path, root: Option<&str>) -> Result<ExitCode> {
    let root = root.map(expected_root).transpose()?;
    let root = root.as_deref();
    let bytes = std::fs::read(proof_file).map_err(|e| {
        fail(
            ExitCode::Io,
            format!(
                "cannot read proof {}: {e}; check the path",
                proof_file.display()
            ),
        )
    })?;
    let checked = Proof::parse(&bytes, &proof_file.display().to_string())?;
    checked.verify_file(file, root)?;
    let p = &checked.proof;
    stdout_write(
        format!(
            "ok: {} is {:?}, leaf {} of {} under root {}\n",
            file.display(),
            p.path,
            p.leaf_index,
            p.leaf_count,
            p.merkle_root
        )
        .as_bytes(),
    )?;
    Ok(ExitCode::Success)
}

/// `--root HEX` in the one spelling receipts use: 64 hex digits, any case.
fn expected_root(hex: &str) -> Result<String> {
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(hex.to_ascii_lowercase());
    }
    Err(fail(
        ExitCode::Usage,
        format!(
            "--root {hex:?} is not a Merkle root; give the 64 hex digits of a receipt's merkle_root"
        ),
    ))
}

/// `spawn-elite ledger verify`
pub fn ledger_verify() -> Result<ExitCode> {
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
pub fn ledger_list() -> Result<ExitCode> {
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
