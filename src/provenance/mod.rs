//! Signed provenance: an in-toto Statement (what was generated, from what,
//! when, binding the receipt) in a DSSE envelope signed with the same
//! Ed25519 key as callbacks, kept in the metadata directory beside the
//! receipt. docs/PROVENANCE.md is the user's reference.
//!
//! - `statement`: the in-toto Statement v1 with its SLSA Provenance v1
//!   predicate.
//! - `dsse`: the envelope, its signing and its verification.

pub mod dsse;
pub mod stamp;
pub mod statement;
pub mod tsa;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::callback::keys;
use crate::error::{ExitCode, fail};
use crate::fsutil::PlannedFile;
use crate::receipt::{Receipt, hex, meta};
use dsse::{Envelope, Refused};
pub use meta::{ATTESTATION_PATH, TIMESTAMP_PATH};
use statement::{Claim, sha256};

/// The DSSE payload type of an in-toto Statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// A key that signs attestations.
pub struct Signer {
    key: SigningKey,
    path: PathBuf,
    /// `--tsa`: where the attestation is time-stamped.
    tsa: Option<tsa::Tsa>,
}

impl Signer {
    /// The private key at `path` (PKCS#8 PEM from `spawn-elite keygen`).
    pub fn load(path: &Path) -> Result<Signer> {
        Ok(Signer {
            key: keys::load_signing_key(path)?,
            path: path.to_path_buf(),
            tsa: None,
        })
    }

    /// The same signer, time-stamping what it signs at `tsa`.
    pub fn with_tsa(self, tsa: Option<tsa::Tsa>) -> Signer {
        Signer { tsa, ..self }
    }

    pub fn tsa(&self) -> Option<&tsa::Tsa> {
        self.tsa.as_ref()
    }

    pub fn key_id(&self) -> String {
        keys::key_id(&self.key.verifying_key())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("path", &self.path)
            .field("key_id", &self.key_id())
            .field("tsa", &self.tsa.as_ref().map(|t| &t.url))
            .finish()
    }
}

/// The attestation of a tree whose covered files are `files` (in memory:
/// a spawn's or an update's), as the file it is written to.
pub fn attest_planned(
    receipt: &Receipt,
    files: &[PlannedFile],
    signer: &Signer,
    started: jiff::Timestamp,
    finished: jiff::Timestamp,
    previous: Option<&[u8]>,
) -> PlannedFile {
    let mut subjects: Vec<(String, [u8; 32])> = files
        .iter()
        .filter(|f| !meta::is_uncovered(&f.path))
        .map(|f| (f.path.clone(), sha256(&f.contents)))
        .collect();
    subjects.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    envelope_file(receipt, subjects, signer, started, finished, previous)
}

/// The attestation of the tree at `dir` as its receipt describes it. Each
/// file is read once: its BLAKE3 must be the receipt's (else the tree
/// changed since the receipt was made, and nothing is signed) and its
/// SHA-256 becomes its subject.
pub fn attest_tree(
    dir: &Path,
    receipt: &Receipt,
    signer: &Signer,
    started: jiff::Timestamp,
    finished: jiff::Timestamp,
    previous: Option<&[u8]>,
) -> Result<PlannedFile> {
    let mut subjects = Vec::with_capacity(receipt.files.len());
    for entry in &receipt.files {
        let bytes = read_covered(dir, &entry.path, &entry.mode)?;
        if hex(blake3::hash(&bytes).as_bytes()) != entry.blake3 {
            return Err(fail(
                ExitCode::Drift,
                format!(
                    "{} differs from its receipt ({} changed); only a tree its receipt describes is signed: run `spawn-elite verify {}` to see every difference",
                    dir.display(),
                    entry.path,
                    dir.display()
                ),
            ));
        }
        subjects.push((entry.path.clone(), sha256(&bytes)));
    }
    Ok(envelope_file(
        receipt, subjects, signer, started, finished, previous,
    ))
}

/// A covered file's bytes as the receipt hashes them: a symlink's target,
/// else the file's contents.
fn read_covered(dir: &Path, path: &str, mode: &str) -> Result<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt as _;
    let at = dir.join(path);
    let read = if mode == "120000" {
        std::fs::read_link(&at).map(|t| t.as_os_str().as_bytes().to_vec())
    } else {
        std::fs::read(&at)
    };
    read.map_err(|e| {
        fail(
            ExitCode::Drift,
            format!(
                "cannot read {} ({e}), which the receipt lists; run `spawn-elite verify {}`",
                at.display(),
                dir.display()
            ),
        )
    })
}

fn envelope_file(
    receipt: &Receipt,
    subjects: Vec<(String, [u8; 32])>,
    signer: &Signer,
    started: jiff::Timestamp,
    finished: jiff::Timestamp,
    previous: Option<&[u8]>,
) -> PlannedFile {
    let claim = Claim {
        receipt,
        subjects,
        started,
        finished,
        previous: previous.map(sha256),
    };
    let payload = serde_json::to_vec(&statement::statement(&claim)).unwrap_or_default();
    PlannedFile {
        path: ATTESTATION_PATH.to_owned(),
        contents: Envelope::sign(PAYLOAD_TYPE, &payload, &signer.key).to_json_bytes(),
        executable: false,
    }
}

/// Who signed a tree, and when they say it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub key_id: String,
    /// The statement's `finishedOn` (the signer's own clock).
    pub claimed: String,
}

/// Check the attestation in `dir` against `receipt` and the files on disk:
/// a signature by a key in `trusted`, a statement that binds this receipt
/// and lists exactly the files it covers, each with the SHA-256 it has now.
/// Each failure has its own exit code (docs/PROVENANCE.md).
pub fn verify_tree(
    dir: &Path,
    receipt: &Receipt,
    trusted: &HashMap<String, VerifyingKey>,
) -> Result<Signed> {
    let at = dir.join(ATTESTATION_PATH);
    let bytes = match std::fs::read(&at) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(fail(
                ExitCode::Unsigned,
                format!(
                    "{} is not signed: it has no {ATTESTATION_PATH}; sign it with `spawn-elite attest {}`",
                    dir.display(),
                    dir.display()
                ),
            ));
        }
        Err(e) => {
            return Err(fail(
                ExitCode::Io,
                format!("cannot read {}: {e}", at.display()),
            ));
        }
    };
    let bad = |why: String| {
        fail(
            ExitCode::BadSignature,
            format!("{} does not verify: {why}", at.display()),
        )
    };
    let envelope = Envelope::parse(&bytes).map_err(|r| match r {
        Refused::Malformed(why) => bad(why),
        other => bad(format!("{other:?}")),
    })?;
    if envelope.payload_type != PAYLOAD_TYPE {
        return Err(bad(format!(
            "its payloadType is {:?}, not {PAYLOAD_TYPE:?}",
            envelope.payload_type
        )));
    }
    let (key_id, payload) = envelope.verify(trusted).map_err(|r| match r {
        Refused::UnknownKey(ids) => fail(
            ExitCode::UnknownKey,
            format!(
                "{} is signed by key {}, which is not in the trust directory; add its .pub file there if you trust it",
                at.display(),
                ids.join(", ")
            ),
        ),
        Refused::BadSignature(id) => bad(format!(
            "the signature by trusted key {id} does not match the envelope: it was changed after signing"
        )),
        Refused::Malformed(why) => bad(why),
    })?;
    let read = statement::read(&payload).map_err(bad)?;
    if read.merkle_root != receipt.merkle_root
        || read.receipt_sha256 != hex(&sha256(&receipt.to_json_bytes()))
    {
        return Err(fail(
            ExitCode::ChangedSinceSigning,
            format!(
                "the receipt changed since signing: the attestation binds Merkle root {}, the receipt has {}; restore the receipt, or sign again with `spawn-elite attest {}`",
                read.merkle_root,
                receipt.merkle_root,
                dir.display()
            ),
        ));
    }
    let covered: Vec<&str> = receipt.files.iter().map(|f| f.path.as_str()).collect();
    let listed: Vec<&str> = read.subjects.iter().map(|(p, _)| p.as_str()).collect();
    if covered != listed {
        return Err(bad(
            "its subjects are not the files the receipt covers".into()
        ));
    }
    let mut changed = Vec::new();
    for ((path, digest), entry) in read.subjects.iter().zip(&receipt.files) {
        let now = read_covered(dir, path, &entry.mode)
            .map(|b| hex(&sha256(&b)))
            .unwrap_or_default();
        if &now != digest {
            changed.push(path.as_str());
        }
    }
    if let Some(first) = changed.first() {
        return Err(fail(
            ExitCode::ChangedSinceSigning,
            format!(
                "{} file(s) changed since signing (e.g. {first}); `spawn-elite verify {}` lists them",
                changed.len(),
                dir.display()
            ),
        ));
    }
    Ok(Signed {
        key_id,
        claimed: read.finished,
    })
}

/// The previous attestation of a repository, if it has one (an update's
/// new attestation names its digest).
pub fn previous(dir: &Path) -> Option<Vec<u8>> {
    std::fs::read(dir.join(ATTESTATION_PATH)).ok()
}
