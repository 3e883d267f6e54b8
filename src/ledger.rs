//! The local ledger: one JSON line per spawn, each carrying the BLAKE3 of the
//! line before it, so editing, dropping or reordering past lines is evident.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::exit_codes::{ExitCode, fail};
use crate::paths::data_dir;
use crate::receipt::{Receipt, hex};

/// What the first line's `prev` holds, as there is no line before it.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

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
}

pub fn path() -> Result<PathBuf> {
    Ok(data_dir()?.join("ledger.jsonl"))
}

/// Append one line for `receipt` and return the ledger's path.
///
/// The file is locked while the last line is read and the new one written,
/// so two spawns at once still make one chain.
pub fn append(receipt: &Receipt, repo_path: &Path) -> Result<PathBuf> {
    let path = path()?;
    append_to(&path, receipt, repo_path)?;
    Ok(path)
}

fn append_to(path: &Path, receipt: &Receipt, repo_path: &Path) -> Result<()> {
    let io = |e: std::io::Error| {
        fail(
            ExitCode::Io,
            format!(
                "cannot update ledger {}: {e}; make its directory writable",
                path.display()
            ),
        )
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(io)?;
    file.lock().map_err(io)?;
    let mut text = Vec::new();
    file.read_to_end(&mut text).map_err(io)?;
    // A line chained to a broken ledger would never verify, so the whole
    // chain is checked first (hashing a line per spawn costs nothing).
    let (entries, broken) = check_chain(&text);
    if let Some((line, why)) = broken {
        return Err(fail(ExitCode::Io, broken_message(path, line, &why)));
    }
    let (seq, prev) = match (entries.last(), last_line(&text)) {
        (Some(entry), Some(last)) => (entry.seq + 1, hex(blake3::hash(last).as_bytes())),
        _ => (1, GENESIS.to_owned()),
    };
    let repo = std::fs::canonicalize(repo_path).unwrap_or_else(|_| repo_path.to_path_buf());
    let entry = Entry {
        seq,
        prev,
        created: receipt.created.clone(),
        repo: repo.display().to_string(),
        name: receipt.spawn.as_ref().map(|s| s.name.clone()),
        kind: receipt.spawn.as_ref().map(|s| s.kind.clone()),
        merkle_root: receipt.merkle_root.clone(),
        leaf_count: receipt.leaf_count,
        receipt_blake3: hex(blake3::hash(&receipt.to_json_bytes()).as_bytes()),
    };
    let mut line = serde_json::to_vec(&entry).map_err(|e| io(e.into()))?;
    line.push(b'\n');
    file.seek(SeekFrom::End(0)).map_err(io)?;
    file.write_all(&line).map_err(io)?;
    file.sync_data().map_err(io)
}

/// The last line's bytes without its newline.
fn last_line(text: &[u8]) -> Option<&[u8]> {
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    if body.is_empty() {
        return None;
    }
    Some(match body.iter().rposition(|&b| b == b'\n') {
        Some(i) => &body[i + 1..],
        None => body,
    })
}

/// What is wrong with a broken ledger, and how to recover: the chain
/// cannot be mended without rewriting history, so a new one starts.
fn broken_message(path: &Path, line: usize, why: &str) -> String {
    format!(
        "ledger {} is broken at line {line}: {why}; move it aside (`mv {0} {0}.broken`) and the next spawn starts a new chain",
        path.display()
    )
}

/// All entries, checking the chain; the error names the first broken line.
pub fn read_verified(path: &Path) -> Result<Vec<Entry>> {
    let (entries, broken) = read_until_break(path)?;
    match broken {
        Some(err) => Err(err),
        None => Ok(entries),
    }
}

/// The entries before the first broken line, and the error (exit 1) naming
/// that line if there is one; `Err` only when the file cannot be read.
pub fn read_until_break(path: &Path) -> Result<(Vec<Entry>, Option<anyhow::Error>)> {
    let mut text = Vec::new();
    match File::open(path) {
        Ok(mut f) => f.read_to_end(&mut text).map(|_| ()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
        Err(e) => Err(e),
    }
    .map_err(|e| {
        fail(
            ExitCode::Io,
            format!(
                "cannot read ledger {}: {e}; check its permissions",
                path.display()
            ),
        )
    })?;
    let (entries, broken) = check_chain(&text);
    let broken = broken.map(|(line, why)| fail(ExitCode::Drift, broken_message(path, line, &why)));
    Ok((entries, broken))
}

/// The entries up to the first line that does not fit the chain, and that
/// line's number with what is wrong with it.
fn check_chain(text: &[u8]) -> (Vec<Entry>, Option<(usize, String)>) {
    let mut entries = Vec::new();
    let mut prev = GENESIS.to_owned();
    if text.is_empty() {
        return (entries, None);
    }
    // A last line without its newline was cut off while written: the lines
    // before it still count.
    let (body, cut) = match text.strip_suffix(b"\n") {
        Some(body) => (body, false),
        None => (text, true),
    };
    let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        if cut && n == lines.len() {
            let why = "it has no final newline, so it was cut off while written";
            return (entries, Some((n, why.into())));
        }
        let entry: Entry = match serde_json::from_slice(line) {
            Ok(entry) => entry,
            Err(e) => {
                let why = format!("it is not a ledger entry ({e}); it was edited");
                return (entries, Some((n, why)));
            }
        };
        if entry.seq != n as u64 {
            let why = format!(
                "its seq is {} instead of {n}; lines were removed or reordered",
                entry.seq
            );
            return (entries, Some((n, why)));
        }
        if entry.prev != prev {
            let why = format!(
                "its prev {} is not the BLAKE3 of line {} ({prev}); the line before it was edited, removed or reordered",
                entry.prev,
                n - 1
            );
            return (entries, Some((n, why)));
        }
        prev = hex(blake3::hash(line).as_bytes());
        entries.push(entry);
    }
    (entries, None)
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
            append_to(&ledger, &receipt, dir.path())?;
        }
        let entries = read_verified(&ledger)?;
        assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(entries[0].prev, GENESIS);
        assert_eq!(entries[2].merkle_root, receipt.merkle_root);
        Ok(())
    }

    fn broken_at(text: &[u8]) -> Option<usize> {
        check_chain(text).1.map(|(n, _)| n)
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (entries, broken) = check_chain(&chain(4));
        assert_eq!((entries.len(), broken), (4, None));
        assert_eq!(check_chain(b"").0.len(), 0);
        assert_eq!(broken_at(b""), None);
    }

    #[test]
    fn an_edit_is_reported_at_the_following_line() {
        let text = String::from_utf8(chain(4)).unwrap_or_default();
        let edited = text
            .replacen("\"/r\"", "\"/s\"", 2)
            .replacen("\"/s\"", "\"/r\"", 1);
        assert_eq!(broken_at(edited.as_bytes()), Some(3));
        assert_eq!(check_chain(edited.as_bytes()).0.len(), 2);
    }

    #[test]
    fn a_dropped_line_and_a_cut_line_are_reported() {
        let text = chain(3);
        let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        let dropped = [lines[0], lines[2], b""].join(&b'\n');
        assert_eq!(broken_at(&dropped), Some(2));
        assert_eq!(broken_at(&text[..text.len() - 5]), Some(3));
        assert_eq!(check_chain(&text[..text.len() - 5]).0.len(), 2);
    }

    #[test]
    fn appending_to_a_broken_ledger_is_refused_and_says_how_to_recover() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let ledger = dir.path().join("ledger.jsonl");
        let text = chain(3);
        std::fs::write(&ledger, &text[..text.len() - 5])?;
        let receipt = Receipt::of_tree(dir.path(), None, jiff::Timestamp::UNIX_EPOCH)?;
        let err = append_to(&ledger, &receipt, dir.path())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("is broken at line 3:"), "{err}");
        assert!(err.contains("move it aside"), "{err}");
        assert!(!err.contains("--no-ledger"), "{err}");
        assert_eq!(std::fs::read(&ledger)?, &text[..text.len() - 5]);
        Ok(())
    }
}
