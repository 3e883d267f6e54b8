//! Finding the base of an update: the newest commit in HEAD's history whose
//! tree is exactly the pristine output its own receipt describes.
//!
//! Pristine commits are recognised by their message, so nothing but the
//! history itself is needed (a fresh clone works; no refs or notes): the
//! initial scaffold commit (`feat: initial repository scaffold`), and every
//! pristine commit an update built, which carries the trailer
//! `Spawn-Elite-Pristine: <merkle root>`. After an update the pristine
//! commit is the merge's second parent, so the whole history is searched,
//! not only first parents; `--topo-order` lists children before parents, so
//! the first candidate whose tree checks out is the newest. A message alone
//! proves nothing: each candidate's tree is checked file by file (path, mode,
//! BLAKE3) against the receipt inside it.

use std::collections::BTreeMap;

use anyhow::Result;

use super::merge::git;
use crate::ops::git::{INITIAL_SUBJECT, PRISTINE_TRAILER};
use crate::receipt::{RECEIPT_PATH, Receipt, hex, meta};

/// How many candidates are checked before giving up.
const MAX_CANDIDATES: usize = 64;

/// A pristine commit, its receipt, and its files' contents.
#[derive(Debug)]
pub struct Base {
    pub commit: String,
    pub receipt: Receipt,
    /// Path → (git mode, contents), the receipt excluded.
    pub files: BTreeMap<String, (String, Vec<u8>)>,
}

/// The newest pristine commit reachable from HEAD, if any.
pub fn find(dir: &std::path::Path) -> Result<Option<Base>> {
    // An unborn HEAD (no commit yet) has no history to search.
    let git = git(dir);
    if !git.ok(&["rev-parse", "--verify", "--quiet", "HEAD"]) {
        return Ok(None);
    }
    let list = git.output(
        &[
            "rev-list",
            "--topo-order",
            "HEAD",
            &format!("--grep=^{PRISTINE_TRAILER}: "),
            &format!("--grep=^{INITIAL_SUBJECT}$"),
        ],
        "list the commits of HEAD's history",
    )?;
    let text = String::from_utf8_lossy(&list);
    for commit in text.split_whitespace().take(MAX_CANDIDATES) {
        if let Some(base) = check(dir, commit)? {
            return Ok(Some(base));
        }
    }
    Ok(None)
}

/// `commit` as a base, if its tree is exactly what its receipt lists.
fn check(dir: &std::path::Path, commit: &str) -> Result<Option<Base>> {
    let git = git(dir);
    let listing = git.output(
        &["ls-tree", "-r", "-z", "--full-tree", commit],
        "list a commit's files",
    )?;
    let mut entries = Vec::new();
    for item in listing.split(|&b| b == 0).filter(|i| !i.is_empty()) {
        let item = String::from_utf8_lossy(item);
        let Some((meta, path)) = item.split_once('\t') else {
            return Ok(None);
        };
        let mut parts = meta.split(' ');
        let (Some(mode), Some("blob"), Some(oid)) = (parts.next(), parts.next(), parts.next())
        else {
            return Ok(None);
        };
        entries.push((path.to_owned(), mode.to_owned(), oid.to_owned()));
    }
    let Some(receipt_at) = entries.iter().position(|(p, _, _)| p == RECEIPT_PATH) else {
        return Ok(None);
    };
    let oids: Vec<&str> = entries.iter().map(|(_, _, oid)| oid.as_str()).collect();
    let contents = git.cat_blobs(&oids, "read the pristine files")?;
    let origin = format!("{}:{RECEIPT_PATH}", &commit[..commit.len().min(12)]);
    let Ok(receipt) = Receipt::parse(&contents[receipt_at], &origin) else {
        return Ok(None);
    };
    // Every file but the metadata (the receipt, and whatever else
    // `receipt::meta` says the receipt does not cover) must be listed.
    let covered = entries
        .iter()
        .filter(|(p, _, _)| !meta::is_uncovered(p))
        .count();
    if receipt.spawn.is_none() || receipt.files.len() != covered {
        return Ok(None);
    }
    let mut files = BTreeMap::new();
    for ((path, mode, _), content) in entries.into_iter().zip(contents) {
        if meta::is_uncovered(&path) {
            continue;
        }
        let Ok(i) = receipt
            .files
            .binary_search_by(|f| f.path.as_bytes().cmp(path.as_bytes()))
        else {
            return Ok(None);
        };
        let entry = &receipt.files[i];
        if entry.mode != mode || entry.blake3 != hex(blake3::hash(&content).as_bytes()) {
            return Ok(None);
        }
        files.insert(path, (mode, content));
    }
    Ok(Some(Base {
        commit: commit.to_owned(),
        receipt,
        files,
    }))
}
