//! Inclusion proofs: evidence that one file belongs to a receipt's root,
//! checkable with that file alone.

use std::fs::{self, File};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::error::{ExitCode, fail};
use crate::receipt::merkle::{self, Hash, MODE_EXEC, MODE_FILE, MODE_LINK};
use crate::receipt::scan::hash_reader;
use crate::receipt::{Receipt, hex, mode_str, parse_hash, parse_mode};

pub const FORMAT: &str = "spawn-elite.proof/v1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proof {
    pub format: String,
    pub path: String,
    pub mode: String,
    pub size: u64,
    pub blake3: String,
    pub leaf_index: u64,
    pub leaf_count: u64,
    /// Bottom-up: the first sibling is the leaf's neighbour.
    pub siblings: Vec<String>,
    pub merkle_root: String,
}

/// A proof that was parsed and whose shape fits its leaf count.
pub struct Checked {
    pub proof: Proof,
    mode: u32,
    siblings: Vec<Hash>,
    root: Hash,
}

impl Proof {
    /// The proof for `path` in a (checked) receipt.
    pub fn build(receipt: &Receipt, path: &str) -> Result<Self> {
        let index = receipt.files.iter().position(|f| f.path == path).ok_or_else(|| {
            fail(
                ExitCode::Usage,
                format!(
                    "{path:?} is not in the receipt; name a file it lists (`spawn-elite receipt DIR` shows them), relative to DIR or to the current directory"
                ),
            )
        })?;
        let entry = &receipt.files[index];
        let siblings = merkle::proof(&receipt.leaves(), index);
        Ok(Proof {
            format: FORMAT.to_owned(),
            path: entry.path.clone(),
            mode: entry.mode.clone(),
            size: entry.size,
            blake3: entry.blake3.clone(),
            leaf_index: index as u64,
            leaf_count: receipt.files.len() as u64,
            siblings: siblings.iter().map(|s| hex(s)).collect(),
            merkle_root: receipt.merkle_root.clone(),
        })
    }

    pub fn to_json_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// `origin` names the input in error messages.
    pub fn parse(bytes: &[u8], origin: &str) -> Result<Checked> {
        let invalid = |why: String| fail(ExitCode::InvalidReceipt, format!("proof {origin} {why}"));
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            invalid(format!(
                "is not valid JSON ({e}); it may be truncated: make it again with `spawn-elite prove DIR PATH`"
            ))
        })?;
        match value.get("format").and_then(|f| f.as_str()) {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(invalid(format!(
                    "has format {other:?}, not {FORMAT:?}; pass the output of `spawn-elite prove`"
                )));
            }
            None => {
                return Err(invalid(format!(
                    "is JSON but not a spawn-elite proof (no \"format\": {FORMAT:?}); pass the output of `spawn-elite prove`"
                )));
            }
        }
        let proof: Proof = serde_json::from_value(value).map_err(|e| {
            invalid(format!(
                "is malformed: {e}; make it again with `spawn-elite prove DIR PATH`"
            ))
        })?;
        let mode = parse_mode(&proof.mode).ok_or_else(|| {
            invalid(format!(
                "has mode {:?}; only 100644, 100755 and 120000 exist",
                proof.mode
            ))
        })?;
        if parse_hash(&proof.blake3).is_none() {
            return Err(invalid(
                "has a blake3 that is not 64 lowercase hex digits".into(),
            ));
        }
        let root = parse_hash(&proof.merkle_root).ok_or_else(|| {
            invalid("has a merkle_root that is not 64 lowercase hex digits".into())
        })?;
        let siblings = proof
            .siblings
            .iter()
            .map(|s| parse_hash(s))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid("has a sibling that is not 64 lowercase hex digits".into()))?;
        if proof.leaf_index >= proof.leaf_count {
            return Err(invalid(format!(
                "has leaf_index {} outside its leaf_count {}",
                proof.leaf_index, proof.leaf_count
            )));
        }
        let want = merkle::proof_len(proof.leaf_index, proof.leaf_count);
        if siblings.len() != want {
            return Err(invalid(format!(
                "has {} siblings, but leaf {} of {} needs exactly {want}",
                siblings.len(),
                proof.leaf_index,
                proof.leaf_count
            )));
        }
        Ok(Checked {
            proof,
            mode,
            siblings,
            root,
        })
    }
}

impl Checked {
    /// Check `file` (its bytes, or its target if it is a symlink) against the
    /// proof, and the proof against `expected_root` when one is given.
    pub fn verify_file(&self, file: &Path, expected_root: Option<&str>) -> Result<()> {
        let p = &self.proof;
        let mismatch = |why: String| fail(ExitCode::ProofMismatch, why);
        let (mode, content) = hash_file(file)?;
        if content != parse_hash(&p.blake3).unwrap_or_default() {
            return Err(mismatch(format!(
                "{} does not match the proof for {:?}: its BLAKE3 is {}, the proof expects {}; it is a different file, or it was changed",
                file.display(),
                p.path,
                hex(&content),
                p.blake3
            )));
        }
        if mode != self.mode {
            return Err(mismatch(format!(
                "{} has mode {}, but the proof for {:?} is for mode {}; restore its mode (chmod) and retry",
                file.display(),
                mode_str(mode),
                p.path,
                p.mode
            )));
        }
        let leaf = merkle::leaf_hash(&p.path, mode, &content);
        let root = merkle::root_from_proof(&leaf, p.leaf_index, p.leaf_count, &self.siblings);
        if root != Some(self.root) {
            return Err(mismatch(format!(
                "the proof does not lead to its merkle_root {}: the proof file was altered; make it again with `spawn-elite prove`",
                p.merkle_root
            )));
        }
        if let Some(expected) = expected_root
            && !expected.eq_ignore_ascii_case(&p.merkle_root)
        {
            return Err(mismatch(format!(
                "the proof is for root {}, not the expected {expected}; it belongs to another receipt",
                p.merkle_root
            )));
        }
        Ok(())
    }
}

/// A file's mode and content hash as a receipt records them.
fn hash_file(file: &Path) -> Result<(u32, Hash)> {
    let unreadable = |e: std::io::Error| {
        fail(
            ExitCode::Io,
            format!(
                "cannot read {}: {e}; check the path and permissions",
                file.display()
            ),
        )
    };
    let meta = fs::symlink_metadata(file).map_err(unreadable)?;
    if meta.file_type().is_symlink() {
        let target = fs::read_link(file).map_err(unreadable)?;
        return Ok((
            MODE_LINK,
            *blake3::hash(target.as_os_str().as_bytes()).as_bytes(),
        ));
    }
    if !meta.is_file() {
        return Err(fail(
            ExitCode::Io,
            format!(
                "{} is not a file; pass the file the proof is about",
                file.display()
            ),
        ));
    }
    let mode = if meta.permissions().mode() & 0o100 != 0 {
        MODE_EXEC
    } else {
        MODE_FILE
    };
    let (_, hash) = hash_reader(File::open(file).map_err(unreadable)?).map_err(unreadable)?;
    Ok((mode, hash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn valid_proof_json() -> Vec<u8> {
        let leaves: Vec<Hash> = (0..5u8)
            .map(|i| merkle::leaf_hash(&format!("f{i}"), MODE_FILE, blake3::hash(&[i]).as_bytes()))
            .collect();
        Proof {
            format: FORMAT.into(),
            path: "f2".into(),
            mode: "100644".into(),
            size: 1,
            blake3: hex(blake3::hash(&[2]).as_bytes()),
            leaf_index: 2,
            leaf_count: 5,
            siblings: merkle::proof(&leaves, 2).iter().map(|s| hex(s)).collect(),
            merkle_root: hex(&merkle::root(&leaves)),
        }
        .to_json_bytes()
    }

    #[test]
    fn a_valid_proof_parses() {
        assert!(Proof::parse(&valid_proof_json(), "t").is_ok());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(2000)
        ))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Proof::parse(&bytes, "fuzz");
        }

        #[test]
        fn mutated_proofs_never_panic(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = valid_proof_json();
            for (at, b) in edits {
                let i = at.index(bytes.len());
                bytes[i] = b;
            }
            let keep = cut.index(bytes.len() + 1);
            let _ = Proof::parse(&bytes[..keep], "fuzz");
        }

        /// Shapes the parser accepts must never make the tree code panic.
        #[test]
        fn any_accepted_shape_evaluates_without_panic(
            index in any::<u64>(),
            count in any::<u64>(),
            n in 0usize..70,
        ) {
            let leaf = [7u8; 32];
            let siblings = vec![[9u8; 32]; n];
            let _ = merkle::root_from_proof(&leaf, index, count, &siblings);
            if count > 0 {
                let i = index % count;
                let siblings = vec![[9u8; 32]; merkle::proof_len(i, count)];
                prop_assert!(merkle::root_from_proof(&leaf, i, count, &siblings).is_some());
            }
        }
    }
}
