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
                "cannot update ledger {}: {e}; fix its permissions or pass --no-ledger",
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
    let (seq, prev) = match last_line(&text) {
        None => (1, GENESIS.to_owned()),
        Some(last) => {
            if !text.ends_with(b"\n") {
                return Err(fail(
                    ExitCode::Io,
                    format!(
                        "ledger {} ends in a partial line; run `spawn-elite ledger verify`, repair it, or pass --no-ledger",
                        path.display()
                    ),
                ));
            }
            let entry: Entry = serde_json::from_slice(last).map_err(|e| {
                fail(
                    ExitCode::Io,
                    format!(
                        "ledger {} has an unreadable last line ({e}); run `spawn-elite ledger verify`, or pass --no-ledger",
                        path.display()
                    ),
                )
            })?;
            (entry.seq + 1, hex(blake3::hash(last).as_bytes()))
        }
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

/// All entries, checking the chain; the error names the first broken line.
pub fn read_verified(path: &Path) -> Result<Vec<Entry>> {
    let mut text = Vec::new();
    match File::open(path) {
        Ok(mut f) => f.read_to_end(&mut text).map(|_| ()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
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
    check_chain(&text).map_err(|(line, why)| {
        fail(
            ExitCode::Drift,
            format!("ledger {} is broken at line {line}: {why}", path.display()),
        )
    })
}

fn check_chain(text: &[u8]) -> std::result::Result<Vec<Entry>, (usize, String)> {
    let mut entries = Vec::new();
    let mut prev = GENESIS.to_owned();
    if text.is_empty() {
        return Ok(entries);
    }
    let body = match text.strip_suffix(b"\n") {
        Some(body) => body,
        None => {
            let n = text.iter().filter(|&&b| b == b'\n').count() + 1;
            return Err((
                n,
                "it has no final newline, so it was cut off while written".into(),
            ));
        }
    };
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let n = i + 1;
        let entry: Entry = serde_json::from_slice(line)
            .map_err(|e| (n, format!("it is not a ledger entry ({e}); it was edited")))?;
        if entry.seq != n as u64 {
            return Err((
                n,
                format!(
                    "its seq is {} instead of {n}; lines were removed or reordered",
                    entry.seq
                ),
            ));
        }
        if entry.prev != prev {
            return Err((
                n,
                format!(
                    "its prev {} is not the BLAKE3 of line {} ({prev}); the line before it was edited, removed or reordered",
                    entry.prev,
                    n - 1
                ),
            ));
        }
        prev = hex(blake3::hash(line).as_bytes());
        entries.push(entry);
    }
    Ok(entries)
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

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(check_chain(&chain(4)).map(|e| e.len()), Ok(4));
        assert_eq!(check_chain(b"").map(|e| e.len()), Ok(0));
    }

    #[test]
    fn an_edit_is_reported_at_the_following_line() {
        let text = String::from_utf8(chain(4)).unwrap_or_default();
        let edited = text
            .replacen("\"/r\"", "\"/s\"", 2)
            .replacen("\"/s\"", "\"/r\"", 1);
        assert_eq!(check_chain(edited.as_bytes()).map_err(|(n, _)| n), Err(3));
    }

    #[test]
    fn a_dropped_line_and_a_cut_line_are_reported() {
        let text = chain(3);
        let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        let dropped = [lines[0], lines[2], b""].join(&b'\n');
        assert_eq!(check_chain(&dropped).map_err(|(n, _)| n), Err(2));
        assert_eq!(
            check_chain(&text[..text.len() - 5]).map_err(|(n, _)| n),
            Err(3)
        );
    }
}
