//! The receipt: what a tree held when it was generated, in a form anyone can
//! check later. docs/RECEIPT.md is the specification; this follows it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::clock;
use crate::error::{ExitCode, fail, fail_with};
use crate::fsutil::{self, PlannedFile, WriteOptions};

pub mod drift;
pub mod merkle;
pub mod meta;
pub mod path;
pub mod proof;
pub mod scan;

use merkle::{Hash, MODE_EXEC, MODE_FILE, MODE_LINK};
pub use meta::RECEIPT_PATH;

/// A receipt without a `spawn` section: the same in both versions, so it is
/// written as v1, which every release reads.
pub const FORMAT: &str = "spawn-elite.receipt/v1";
/// A receipt of a spawn: v2 records the template set in `spawn.templates`
/// where v1 had `spawn.template_digest`. Both are read.
pub const FORMAT_V2: &str = "spawn-elite.receipt/v2";
const FORMAT_FAMILY: &str = "spawn-elite.receipt/";

/// What a spawn was asked for; absent when a receipt describes an arbitrary
/// tree (`spawn-elite receipt DIR`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpawnInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Every template value the spawn used of the keys that apply to its
    /// type, keyed by its `--set` name: the `--set` value, else the
    /// default, so the spawn can be repeated.
    pub options: BTreeMap<String, String>,
    /// v1 only: digest of the embedded templates of the binary that spawned it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_digest: Option<String>,
    /// v2: the template set the spawn used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates: Option<TemplatesInfo>,
    pub elite: bool,
}

/// The template set a spawn used (receipt v2): where it came from, its
/// manifest's name and version, and its digest (docs/TEMPLATES.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplatesInfo {
    /// `embedded` or `dir`.
    pub source: String,
    pub name: String,
    pub version: String,
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub mode: String,
    pub blake3: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub format: String,
    pub tool: Tool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spawn: Option<SpawnInfo>,
    pub created: String,
    pub merkle_root: String,
    pub leaf_count: u64,
    pub files: Vec<FileEntry>,
}

impl Receipt {
    /// Hash every file under `dir` (see `scan::scan` for what is left out).
    pub fn of_tree(dir: &Path, spawn: Option<SpawnInfo>, created: jiff::Timestamp) -> Result<Self> {
        Ok(Self::of_scanned(
            scan::scan(dir)?,
            spawn,
            clock::stamp(created),
        ))
    }

    /// A receipt of `dir` without the files `skip` accepts (never read), and
    /// how many those were.
    pub fn of_tree_skipping(
        dir: &Path,
        skip: &(dyn Fn(&str) -> bool + Sync),
        created: jiff::Timestamp,
    ) -> Result<(Self, usize)> {
        let (scanned, skipped) = scan::scan_skipping(dir, skip)?;
        Ok((
            Self::of_scanned(scanned, None, clock::stamp(created)),
            skipped,
        ))
    }

    /// Whether `path` is one of the receipt's entries.
    pub fn lists(&self, path: &str) -> bool {
        self.files
            .binary_search_by(|f| f.path.as_bytes().cmp(path.as_bytes()))
            .is_ok()
    }

    /// The receipt of `files` as they will be written: the same leaves,
    /// order and fields as [`Receipt::of_tree`] of them on disk, without
    /// writing or reading anything. Metadata files among them are left out,
    /// as a scan leaves them out. `created` is written as it is given.
    pub fn of_planned(files: &[PlannedFile], spawn: Option<SpawnInfo>, created: String) -> Self {
        let mut covered: Vec<&PlannedFile> = files
            .iter()
            .filter(|f| !meta::is_uncovered(&f.path))
            .collect();
        covered.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        let scanned = covered
            .into_iter()
            .map(|f| scan::Scanned {
                path: f.path.clone(),
                mode: if f.executable { MODE_EXEC } else { MODE_FILE },
                size: f.contents.len() as u64,
                blake3: *blake3::hash(&f.contents).as_bytes(),
            })
            .collect();
        Self::of_scanned(scanned, spawn, created)
    }

    /// The receipt as the file it is written to in a repository.
    pub fn as_planned(&self) -> PlannedFile {
        PlannedFile {
            path: RECEIPT_PATH.to_owned(),
            contents: self.to_json_bytes(),
            executable: false,
        }
    }

    fn of_scanned(scanned: Vec<scan::Scanned>, spawn: Option<SpawnInfo>, created: String) -> Self {
        let leaves: Vec<Hash> = scanned
            .iter()
            .map(|f| merkle::leaf_hash(&f.path, f.mode, &f.blake3))
            .collect();
        let files = scanned
            .into_iter()
            .map(|f| FileEntry {
                path: f.path,
                size: f.size,
                mode: mode_str(f.mode).to_owned(),
                blake3: hex(&f.blake3),
            })
            .collect::<Vec<_>>();
        Receipt {
            format: if spawn.is_some() { FORMAT_V2 } else { FORMAT }.to_owned(),
            tool: Tool {
                name: env!("CARGO_PKG_NAME").to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
            },
            spawn,
            created,
            merkle_root: hex(&merkle::root(&leaves)),
            leaf_count: files.len() as u64,
            files,
        }
    }

    pub fn merkle_root(&self) -> &str {
        &self.merkle_root
    }

    /// Pretty JSON with a final newline: receipts are committed, so they
    /// should diff well and satisfy editors.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Write to `path`, creating its directory; a crash leaves either the
    /// old file or the new one, never half of one.
    pub fn write(&self, path: &Path) -> Result<()> {
        let io = |e: std::io::Error| {
            let message = format!(
                "cannot write receipt {}: {e}; check the directory is writable",
                path.display()
            );
            fail_with(ExitCode::Io, message, e)
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        fsutil::write_atomic(path, &self.to_json_bytes(), WriteOptions::DATA).map_err(io)
    }

    /// Read and fully check a receipt file, so that everything after can
    /// trust its fields. A damaged receipt's error says how to get the right
    /// one back, which depends on where it lives (see `damage_remedy`).
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| {
            let message = format!(
                "cannot read receipt {}: {e}; pass the right file with --receipt",
                path.display()
            );
            fail_with(ExitCode::Io, message, e)
        })?;
        Self::parse_with(&bytes, &path.display().to_string(), &damage_remedy(path))
    }

    /// `origin` names the input in error messages. For receipts that are
    /// not files the user keeps (a request body, an outbox entry), so a
    /// damaged one gets no advice to regenerate it.
    pub fn parse(bytes: &[u8], origin: &str) -> Result<Self> {
        Self::parse_with(bytes, origin, BYTES_REMEDY)
    }

    /// `remedy` ends the message of every error that means the receipt was
    /// damaged or edited: what to do to get the right one back.
    fn parse_with(bytes: &[u8], origin: &str, remedy: &str) -> Result<Self> {
        let invalid =
            |why: String| fail(ExitCode::InvalidReceipt, format!("receipt {origin} {why}"));
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            invalid(format!(
                "is not valid JSON ({e}); it may be truncated: {remedy}"
            ))
        })?;
        match value.get("format").and_then(|f| f.as_str()) {
            Some(FORMAT | FORMAT_V2) => {}
            Some(other) if other.starts_with(FORMAT_FAMILY) => {
                return Err(invalid(format!(
                    "has format {other:?}, but this spawn-elite reads only {FORMAT:?} and {FORMAT_V2:?}; use a matching spawn-elite version"
                )));
            }
            Some(other) => {
                return Err(invalid(format!(
                    "has format {other:?}, not {FORMAT:?}; it is not a spawn-elite receipt"
                )));
            }
            None => {
                return Err(invalid(format!(
                    "is JSON but not a spawn-elite receipt (no \"format\": {FORMAT:?}); pass the file written to {RECEIPT_PATH}"
                )));
            }
        }
        let receipt: Receipt = serde_json::from_value(value)
            .map_err(|e| invalid(format!("is malformed: {e}; {remedy}")))?;
        receipt.check(origin, remedy)?;
        Ok(receipt)
    }

    fn check(&self, origin: &str, remedy: &str) -> Result<()> {
        let invalid = |why: String| {
            fail(
                ExitCode::InvalidReceipt,
                format!("receipt {origin} {why}; {remedy}"),
            )
        };
        let exact_shape = self.created.len() == 20 && self.created.ends_with('Z');
        if !exact_shape || self.created.parse::<jiff::Timestamp>().is_err() {
            return Err(invalid(format!(
                "has created {:?}, which is not an RFC 3339 UTC time like 2026-01-31T12:00:00Z",
                self.created
            )));
        }
        if let Some(spawn) = &self.spawn {
            let v2 = self.format == FORMAT_V2;
            match (&spawn.template_digest, &spawn.templates) {
                (Some(_), None) if !v2 => {}
                (None, Some(t)) if v2 => {
                    if t.source != "embedded" && t.source != "dir" {
                        return Err(invalid(format!(
                            "has spawn.templates.source {:?}; only \"embedded\" and \"dir\" exist",
                            t.source
                        )));
                    }
                }
                _ if v2 => {
                    return Err(invalid(
                        "is malformed: a v2 spawn section has templates and no template_digest"
                            .into(),
                    ));
                }
                _ => {
                    return Err(invalid(
                        "is malformed: a v1 spawn section has template_digest and no templates"
                            .into(),
                    ));
                }
            }
        }
        let root = parse_hash(&self.merkle_root).ok_or_else(|| {
            invalid("has a merkle_root that is not 64 lowercase hex digits".into())
        })?;
        if self.leaf_count != self.files.len() as u64 {
            return Err(invalid(format!(
                "says leaf_count {} but lists {} files: it was edited or corrupted",
                self.leaf_count,
                self.files.len()
            )));
        }
        let mut leaves = Vec::with_capacity(self.files.len());
        for (i, f) in self.files.iter().enumerate() {
            if let Some(why) = path::problem(&f.path, path::Scope::Covered) {
                return Err(invalid(format!("has a bad path {:?}: {why}", f.path)));
            }
            if i > 0 && self.files[i - 1].path.as_bytes() >= f.path.as_bytes() {
                return Err(invalid(format!(
                    "lists {:?} out of order or twice; files must be sorted by path bytes",
                    f.path
                )));
            }
            let mode = parse_mode(&f.mode).ok_or_else(|| {
                invalid(format!(
                    "gives {:?} mode {:?}; only 100644, 100755 and 120000 exist",
                    f.path, f.mode
                ))
            })?;
            let content = parse_hash(&f.blake3).ok_or_else(|| {
                invalid(format!(
                    "gives {:?} a blake3 that is not 64 lowercase hex digits",
                    f.path
                ))
            })?;
            leaves.push(merkle::leaf_hash(&f.path, mode, &content));
        }
        let actual = merkle::root(&leaves);
        if actual != root {
            return Err(invalid(format!(
                "is inconsistent: its merkle_root {} does not match its own file list (which gives {}): it was edited or corrupted",
                self.merkle_root,
                hex(&actual)
            )));
        }
        Ok(())
    }

    /// Check the sizes this receipt (read from `origin`) records against
    /// `actual`, a receipt of the tree made now. Sizes are not in the Merkle
    /// tree, so an edited size passes [`Receipt::read`]; but a file whose
    /// content is the content the receipt names (same BLAKE3) has that
    /// content's size, so a different recorded size means the receipt, not
    /// the tree, was changed.
    pub fn check_sizes(&self, actual: &Receipt, origin: &Path) -> Result<()> {
        for recorded in &self.files {
            let Ok(i) = actual
                .files
                .binary_search_by(|f| f.path.as_bytes().cmp(recorded.path.as_bytes()))
            else {
                continue;
            };
            let found = &actual.files[i];
            if found.blake3 == recorded.blake3 && found.size != recorded.size {
                return Err(fail(
                    ExitCode::InvalidReceipt,
                    format!(
                        "receipt {} is inconsistent: it gives {:?} size {}, but the content its blake3 names is {} bytes: it was edited or corrupted; {}",
                        origin.display(),
                        recorded.path,
                        recorded.size,
                        found.size,
                        damage_remedy(origin)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The leaf hashes in order, for proofs. Only valid on a checked receipt.
    pub fn leaves(&self) -> Vec<Hash> {
        self.files
            .iter()
            .map(|f| {
                let mode = parse_mode(&f.mode).unwrap_or(MODE_FILE);
                let content = parse_hash(&f.blake3).unwrap_or_default();
                merkle::leaf_hash(&f.path, mode, &content)
            })
            .collect()
    }
}

/// How to recover from a damaged receipt that the user made and keeps
/// outside a repository: making a new one approves whatever the tree holds
/// now, so that is the last resort and the message says so.
const USER_FILE_REMEDY: &str = "restore it from where you got it; only if the tree is known to be good, `spawn-elite receipt DIR -o FILE --force` writes a new one, which re-approves the tree as it is now";

/// How to recover from a damaged receipt that came from elsewhere.
const BYTES_REMEDY: &str = "use the receipt exactly as spawn-elite wrote it";

/// What to do about a damaged receipt at `path`. One at a repository's
/// `.spawn-elite/receipt.json` was committed there: the good copy is in git
/// (and its root in the ledger), and regenerating it would approve the very
/// change that damaged it, so the message never suggests that.
fn damage_remedy(path: &Path) -> String {
    let in_repo = path.ends_with(RECEIPT_PATH);
    let root = path.parent().and_then(Path::parent);
    match root {
        Some(root) if in_repo => {
            let ledger = "`spawn-elite ledger list` shows the root it had when spawned";
            let on_disk = if root.as_os_str().is_empty() {
                Path::new(".")
            } else {
                root
            };
            if on_disk.join(".git").exists() {
                let git = if root.as_os_str().is_empty() {
                    "git".to_owned()
                } else {
                    format!("git -C {}", root.display())
                };
                format!(
                    "restore it from git (`{git} checkout -- {RECEIPT_PATH}`; {ledger}); do not regenerate it, which would approve the change"
                )
            } else {
                format!(
                    "restore it from a backup or a clean copy of the repository ({ledger}); do not regenerate it, which would approve the change"
                )
            }
        }
        _ => USER_FILE_REMEDY.to_owned(),
    }
}

pub fn mode_str(mode: u32) -> &'static str {
    match mode {
        MODE_EXEC => "100755",
        MODE_LINK => "120000",
        _ => "100644",
    }
}

pub fn parse_mode(s: &str) -> Option<u32> {
    match s {
        "100644" => Some(MODE_FILE),
        "100755" => Some(MODE_EXEC),
        "120000" => Some(MODE_LINK),
        _ => None,
    }
}

pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Lowercase only, so that one hash has exactly one spelling.
pub fn parse_hash(s: &str) -> Option<Hash> {
    if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests;
