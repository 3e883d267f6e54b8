//! The metadata directory, `.spawn-elite/`, inside a spawned repository:
//! the one place that says which paths in it exist and which of them the
//! receipt covers. Scanning, verifying, finding an update's base and
//! writing all ask here, so adding a file (an attestation, a timestamp)
//! takes one line in [`FILES`].

/// The directory, relative to the repository's root.
pub const DIR: &str = ".spawn-elite";

/// Where the receipt of a spawned repository lives, relative to its root.
pub const RECEIPT_PATH: &str = ".spawn-elite/receipt.json";

/// The signed provenance of the tree: a DSSE envelope holding an in-toto
/// Statement (docs/PROVENANCE.md).
pub const ATTESTATION_PATH: &str = ".spawn-elite/attestation.intoto.json";

/// The RFC 3161 timestamp of the attestation: a DER time-stamp token
/// (a CMS ContentInfo) over the envelope's signature bytes.
pub const TIMESTAMP_PATH: &str = ".spawn-elite/attestation.tst";

/// The prefix, inside [`DIR`], of the scratch directories of an update
/// without git history (`.spawn-elite/update-XXXX/`): never part of the
/// tree, removed by the next update if a kill left one.
pub const SCRATCH_PREFIX: &str = "update-";

/// What an update that left conflicts without git keeps until
/// `update --continue` records it (see `update::resume`).
pub const PENDING_UPDATE_PATH: &str = ".spawn-elite/pending-update.json";

/// One file spawn-elite keeps in [`DIR`].
#[derive(Debug, Clone, Copy)]
pub struct MetaFile {
    /// Relative to the repository's root.
    pub path: &'static str,
    /// What it is, for messages.
    pub what: &'static str,
}

/// Every file spawn-elite keeps in the metadata directory. None is covered
/// by the receipt (the receipt cannot cover itself, and what is made from
/// the receipt comes after it); all are committed with the files they
/// describe.
pub const FILES: &[MetaFile] = &[
    MetaFile {
        path: RECEIPT_PATH,
        what: "the receipt",
    },
    MetaFile {
        path: ATTESTATION_PATH,
        what: "the signed attestation",
    },
    MetaFile {
        path: TIMESTAMP_PATH,
        what: "the attestation's timestamp",
    },
    MetaFile {
        path: PENDING_UPDATE_PATH,
        what: "the note of an update that waits for `spawn-elite update --continue`",
    },
];

/// The metadata file at `path`, if it is one.
pub fn file(path: &str) -> Option<&'static MetaFile> {
    FILES.iter().find(|f| f.path == path)
}

/// Whether `path` is a metadata file, which the receipt never covers.
pub fn is_uncovered(path: &str) -> bool {
    file(path).is_some()
}

/// Whether `path` is the metadata directory or anything inside it: a path
/// no template may produce.
pub fn is_inside(path: &str) -> bool {
    path == DIR
        || path
            .strip_prefix(DIR)
            .is_some_and(|rest| rest.starts_with('/'))
}
