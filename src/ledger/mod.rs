//! The local ledger: one JSON line per spawn, each carrying the BLAKE3 of the
//! line before it, so editing, dropping or reordering past lines is evident.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::chain::{self, Chain, Fault, Link, Lock};
use crate::error::{ExitCode, fail, fail_with};
use crate::paths::data_dir;
use crate::receipt::{Receipt, TemplatesInfo, hex};

pub use crate::chain::GENESIS;
pub use file::{Held, read_file_until_break};

pub mod anchor;
mod file;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// 1 for the first line, then one more per line.
    pub seq: u64,
    pub prev: String,
    pub created: String,
    pub repo: String,
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub merkle_root: String,
    pub leaf_count: u64,
    /// BLAKE3 of the receipt file's bytes, to find the exact receipt again.
    pub receipt_blake3: String,
    /// What the line records: absent for a spawn (every line written before
    /// updates existed), `update` for `spawn-elite update`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// For an update: where it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<UpdateRecord>,
}

/// What an `update` line records beyond the new receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRecord {
    /// The Merkle root of the receipt the update replaced.
    pub old_merkle_root: String,
    pub old_templates: TemplatesInfo,
    pub new_templates: TemplatesInfo,
    /// Conflicts left for the user to resolve.
    pub conflicts: u64,
    /// When the update ran (the receipt's `created` is the spawn's, carried over).
    pub updated: String,
}

impl Link for Entry {
    fn seq(&self) -> Option<u64> {
        Some(self.seq)
    }
    fn prev(&self) -> Option<&str> {
        Some(&self.prev)
    }
}

pub fn path() -> Result<PathBuf> {
    Ok(data_dir()?.join("ledger.jsonl"))
}

/// Append one line for `receipt` and return the ledger's path.
///
/// The file is locked while its last lines are read and the new one
/// written, so two spawns at once still make one chain. Only the ledger's
/// head is checked (see [`crate::chain`]): the cost of an append does not
/// grow with the ledger, and `ledger verify` checks every line. A write that fails (a full
/// disk) is undone before the error is returned, so the ledger is left as
/// it was and the error says how to record the spawn later.
pub fn append(receipt: &Receipt, repo_path: &Path) -> Result<PathBuf> {
    let path = path()?;
    append_to(&path, receipt, repo_path, false, None)?;
    Ok(path)
}

/// Append the line of an update (kind `update`): the new receipt, and the
/// old root and template versions in `update`.
pub fn append_update(receipt: &Receipt, repo_path: &Path, update: UpdateRecord) -> Result<PathBuf> {
    let path = path()?;
    append_to(&path, receipt, repo_path, false, Some(update))?;
    Ok(path)
}

/// `spawn-elite ledger add DIR`: append a line for a repository whose tree
/// was already checked against `receipt`, unless the ledger already holds
/// one with the same merkle root and path. Returns the new line's `seq`.
pub fn add(receipt: &Receipt, repo_path: &Path) -> Result<(PathBuf, u64)> {
    let path = path()?;
    let seq = append_to(&path, receipt, repo_path, true, None)?;
    Ok((path, seq))
}

fn append_to(
    path: &Path,
    receipt: &Receipt,
    repo_path: &Path,
    once: bool,
    update: Option<UpdateRecord>,
) -> Result<u64> {
    let repo = std::fs::canonicalize(repo_path).unwrap_or_else(|_| repo_path.to_path_buf());
    let shown = repo.display().to_string();
    let io = |e: std::io::Error| {
        let remedy = if e.kind() == std::io::ErrorKind::StorageFull {
            "free some space"
        } else {
            "make its directory writable"
        };
        fail_with(
            ExitCode::Io,
            format!(
                "cannot update ledger {}: {e}; the ledger is unchanged: {remedy}, then record it with `spawn-elite ledger add {}`",
                path.display(),
                shell_word(&shown)
            ),
            e,
        )
    };
    // A line chained to a broken ledger would never verify. A spawn or an
    // update checks the ledger's head only (its last two lines, read from
    // the end), so that its cost does not grow with the ledger; a break
    // further back is for `ledger verify` to find (see crate::chain).
    // `ledger add` reads every entry anyway, to refuse a duplicate.
    let (mut chain, checked, entries) = if once {
        let (chain, walked) = Chain::open::<Entry>(path, Lock::Wait).map_err(io)?;
        let checked = chain::Checked {
            seq: chain.seq,
            broken: walked.broken,
            last_hash: walked.last_hash,
        };
        (chain, checked, walked.entries)
    } else {
        let (chain, checked) = Chain::open_at_head::<Entry>(path, Lock::Wait).map_err(io)?;
        (chain, checked, Vec::new())
    };
    if let Some((line, fault)) = &checked.broken {
        return Err(fail(
            ExitCode::Drift,
            broken_message(path, *line, fault, &checked.last_hash),
        ));
    }
    if let Some(e) = entries
        .iter()
        .find(|e| e.repo == shown && e.merkle_root == receipt.merkle_root)
    {
        return Err(fail(
            ExitCode::Usage,
            format!(
                "{shown} is already in ledger {} as entry {} with the same merkle root {}; nothing was added",
                path.display(),
                e.seq,
                e.merkle_root
            ),
        ));
    }
    let entry = Entry {
        seq: chain.seq + 1,
        prev: chain.last_hash.clone(),
        created: receipt.created.clone(),
        repo: shown.clone(),
        name: receipt.spawn.as_ref().map(|s| s.name.clone()),
        kind: receipt.spawn.as_ref().map(|s| s.kind.clone()),
        merkle_root: receipt.merkle_root.clone(),
        leaf_count: receipt.leaf_count,
        receipt_blake3: hex(blake3::hash(&receipt.to_json_bytes()).as_bytes()),
        event: update.as_ref().map(|_| "update".to_owned()),
        update,
    };
    let line = serde_json::to_vec(&entry).map_err(|e| io(e.into()))?;
    chain.append_synced(&line).map_err(io)?;
    Ok(entry.seq)
}

/// `word` as one shell word: as it is when that is safe, else in single
/// quotes.
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:,@%=".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// What is wrong with line `n` of a ledger, in words.
pub(crate) fn why(n: usize, fault: &Fault, expected_prev: &str) -> String {
    match fault {
        Fault::Cut => "it has no final newline, so it was cut off while written".to_owned(),
        Fault::Unparsable(e) => format!("it is not a ledger entry ({e}); it was edited"),
        Fault::Seq(seq) => format!(
            "its seq is {} instead of {n}; lines were removed or reordered",
            seq.unwrap_or_default()
        ),
        Fault::Prev(prev) => format!(
            "its prev {} is not the BLAKE3 of line {} ({expected_prev}); the line before it was edited, removed or reordered",
            prev.as_deref().unwrap_or_default(),
            n - 1
        ),
    }
}

/// What is wrong with a broken ledger, and how to recover. A last line cut
/// off while written (a crash) is set aside by `spawn-elite ledger repair`,
/// which keeps every complete line. Any other break cannot be mended
/// without rewriting history, so a new chain starts.
fn broken_message(path: &Path, line: usize, fault: &Fault, expected_prev: &str) -> String {
    let why = why(line, fault, expected_prev);
    match fault {
        Fault::Cut => format!(
            "ledger {} is broken at line {line}: {why}; run `spawn-elite ledger repair` to set it aside and keep the {} complete entries before it",
            path.display(),
            line - 1
        ),
        _ => format!(
            "ledger {} is broken at line {line}: {why}; move it aside (`mv {0} {0}.broken`) and the next spawn starts a new chain",
            path.display()
        ),
    }
}

/// All entries, checking the chain; the error names the first broken line.
pub fn read_verified(path: &Path) -> Result<Vec<Entry>> {
    let (entries, broken) = read_until_break(path)?;
    match broken {
        Some(err) => Err(err),
        None => Ok(entries),
    }
}

/// The bytes of a chain file, or `None` when there is none.
pub(crate) fn read_bytes(path: &Path, label: &str) -> Result<Option<Vec<u8>>> {
    let mut text = Vec::new();
    match File::open(path) {
        Ok(mut f) => f.read_to_end(&mut text).map(|_| ()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => Err(e),
    }
    .map_err(|e| {
        fail_with(
            ExitCode::Io,
            format!(
                "cannot read {label} {}: {e}; check its permissions",
                path.display()
            ),
            e,
        )
    })?;
    Ok(Some(text))
}

/// The entries before the first broken line, and the error (exit 1) naming
/// that line if there is one; `Err` only when the file cannot be read.
pub fn read_until_break(path: &Path) -> Result<(Vec<Entry>, Option<anyhow::Error>)> {
    let Some(text) = read_bytes(path, "ledger")? else {
        return Ok((Vec::new(), None));
    };
    let walked = chain::walk::<Entry>(&text);
    let broken = walked.broken.as_ref().map(|(line, fault)| {
        fail(
            ExitCode::Drift,
            broken_message(path, *line, fault, &walked.last_hash),
        )
    });
    Ok((walked.entries, broken))
}

/// What `spawn-elite ledger repair` did.
#[derive(Debug)]
pub enum Repair {
    /// There is no file.
    Absent,
    /// Its chain is intact, with this many entries; nothing was changed.
    Intact(usize),
    /// The cut-off last line (`bytes` long) was saved to `saved` and removed;
    /// `kept` complete entries remain.
    Repaired {
        kept: usize,
        saved: PathBuf,
        bytes: usize,
    },
}

/// Set aside a cut-off last line of a chain file: the ledger (`label`
/// "ledger") or another hash-chained log such as the receiver's ("log"),
/// checked as plain JSON lines. A chain broken anywhere else is refused,
/// unchanged (exit 1).
pub fn repair(path: &Path, label: &str, as_ledger: bool) -> Result<Repair> {
    let shown = path.display();
    let outcome = if as_ledger {
        chain::repair::<Entry>(path).map(|r| {
            let broken = r
                .walked
                .broken
                .as_ref()
                .map(|(n, f)| (*n, why(*n, f, &r.walked.last_hash)));
            (r.walked.entries.len(), broken, r.saved)
        })
    } else {
        chain::repair::<serde_json::Value>(path).map(|r| {
            let broken = r.walked.broken.as_ref().map(|(n, f)| {
                (
                    *n,
                    why(*n, f, &r.walked.last_hash).replace("ledger entry", "JSON line"),
                )
            });
            (r.walked.entries.len(), broken, r.saved)
        })
    };
    let (kept, broken, saved) = match outcome {
        Ok(found) => found,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Repair::Absent),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            return Err(fail(
                ExitCode::Usage,
                format!(
                    "{label} {shown} is in use by another process (a running spawn, or `spawn-elite receive` for its log); stop it and run the repair again"
                ),
            ));
        }
        Err(e) => {
            let message = format!(
                "cannot repair {label} {shown}: {e}; check that it is writable and the disk has space, then run the repair again"
            );
            return Err(fail_with(ExitCode::Io, message, e));
        }
    };
    match (saved, broken) {
        (Some((saved, bytes)), _) => Ok(Repair::Repaired { kept, saved, bytes }),
        (None, None) => Ok(Repair::Intact(kept)),
        (None, Some((line, why))) => Err(fail(
            ExitCode::Drift,
            format!(
                "{label} {shown} is broken at line {line}: {why}; repair only sets aside a cut-off last line, so the file was left unchanged: move it aside (`mv {shown} {shown}.broken`) and a new chain starts"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seq: u64, prev: &str) -> Vec<u8> {
        let e = Entry {
            seq,
            prev: prev.into(),
            created: "2026-01-01T00:00:00Z".into(),
            repo: "/r".into(),
            name: Some("x".into()),
            kind: Some("service".into()),
            merkle_root: GENESIS.into(),
            leaf_count: 0,
            receipt_blake3: GENESIS.into(),
            event: None,
            update: None,
        };
        serde_json::to_vec(&e).unwrap_or_default()
    }

    fn chain(n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut prev = GENESIS.to_owned();
        for seq in 1..=n {
            let l = line(seq, &prev);
            prev = hex(blake3::hash(&l).as_bytes());
            out.extend_from_slice(&l);
            out.push(b'\n');
        }
        out
    }

    #[test]
    fn appended_lines_form_a_chain_that_verifies() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let ledger = dir.path().join("sub/ledger.jsonl");
        let receipt = Receipt::of_tree(dir.path(), None, jiff::Timestamp::UNIX_EPOCH)?;
        for _ in 0..3 {
            append_to(&ledger, &receipt, dir.path(), false, None)?;
        }
        let entries = read_verified(&ledger)?;
        assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(entries[0].prev, GENESIS);
        assert_eq!(entries[2].merkle_root, receipt.merkle_root);
        Ok(())
    }

    fn broken_at(text: &[u8]) -> Option<usize> {
        chain::walk::<Entry>(text).broken.map(|(n, _)| n)
    }

    fn entries(text: &[u8]) -> usize {
        chain::walk::<Entry>(text).entries.len()
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!((entries(&chain(4)), broken_at(&chain(4))), (4, None));
        assert_eq!(entries(b""), 0);
        assert_eq!(broken_at(b""), None);
    }

    #[test]
    fn an_edit_is_reported_at_the_following_line() {
        let text = String::from_utf8(chain(4)).unwrap_or_default();
        let edited = text
            .replacen("\"/r\"", "\"/s\"", 2)
            .replacen("\"/s\"", "\"/r\"", 1);
        assert_eq!(broken_at(edited.as_bytes()), Some(3));
        assert_eq!(entries(edited.as_bytes()), 2);
    }

    #[test]
    fn a_dropped_line_and_a_cut_line_are_reported() {
        let text = chain(3);
        let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        let dropped = [lines[0], lines[2], b""].join(&b'\n');
        assert_eq!(broken_at(&dropped), Some(2));
        assert_eq!(broken_at(&text[..text.len() - 5]), Some(3));
        assert_eq!(entries(&text[..text.len() - 5]), 2);
    }

    #[test]
    fn appending_to_a_broken_ledger_is_refused_and_says_how_to_recover() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let ledger = dir.path().join("ledger.jsonl");
        let text = chain(3);
        std::fs::write(&ledger, &text[..text.len() - 5])?;
        let receipt = Receipt::of_tree(dir.path(), None, jiff::Timestamp::UNIX_EPOCH)?;
        let err = append_to(&ledger, &receipt, dir.path(), false, None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("is broken at line 3:"), "{err}");
        assert!(err.contains("run `spawn-elite ledger repair`"), "{err}");
        assert!(err.contains("keep the 2 complete entries"), "{err}");
        assert!(!err.contains("--no-ledger"), "{err}");
        assert_eq!(std::fs::read(&ledger)?, &text[..text.len() - 5]);
        Ok(())
    }
}
