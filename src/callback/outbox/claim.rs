//! Claims on outbox entries: a new entry is queued already claimed, and a
//! queued one is claimed by an exclusive, non-blocking `flock` on its file
//! (see the outbox's module documentation). Under a claim an entry is
//! written back after a failed attempt or removed once delivered.

use std::fs::{self, File};
use std::io::Read as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{OutboxEntry, outbox_dir};
use crate::callback::request::{random_bytes, unix_now};
use crate::error::{ExitCode, fail};
use crate::fsutil::{self, WriteOptions};

/// What an outbox file can hold: a callback ([`OutboxEntry`]) or a
/// timestamp request ([`super::stamp::StampEntry`]). Both are queued,
/// claimed, rewritten and removed by the same rules.
pub(in crate::callback) trait Entry: Serialize + DeserializeOwned {
    /// A readable part of the file name (after the time).
    fn tag(&self) -> String;
    /// The entry in `bytes`, or why they are not one.
    fn parse(bytes: &[u8]) -> std::result::Result<Self, String>;
}

impl Entry for OutboxEntry {
    fn tag(&self) -> String {
        self.idempotency_key
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(16)
            .collect()
    }

    fn parse(bytes: &[u8]) -> std::result::Result<Self, String> {
        OutboxEntry::parse(bytes)
    }
}

impl OutboxEntry {
    /// Queue this entry under a new name, durably (file and directory
    /// flushed to disk), and return it claimed by this process.
    pub(in crate::callback) fn queue(self) -> Result<Claim> {
        queue(self)
    }
}

/// Queue `entry` under a new name, durably (file and directory flushed to
/// disk), and return it claimed by this process.
pub(in crate::callback) fn queue<E: Entry>(entry: E) -> Result<Claim<E>> {
    let dir = outbox_dir()?;
    // One look: another process may create the directory at any moment,
    // so "not a directory now" and "exists now" must come from one call.
    let found = fs::metadata(&dir);
    let existed = found.as_ref().is_ok_and(|m| m.is_dir());
    if found.is_ok_and(|m| !m.is_dir()) {
        return Err(fail(
            ExitCode::Io,
            format!(
                "the outbox {} is not a directory; move that file away",
                dir.display()
            ),
        ));
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create outbox {}", dir.display()))?;
    if !existed && let Some(parent) = dir.parent() {
        File::open(parent)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot flush {} to disk", parent.display()))?;
    }
    let root = entry.tag();
    let tag = URL_SAFE_NO_PAD.encode(random_bytes::<6>()?);
    let path = dir.join(format!("{}-{root}-{tag}.json", unix_now()));
    let json = serde_json::to_vec_pretty(&entry)?;
    let file = fsutil::write_new_locked(&path, &json, 0o600)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Claim { path, file, entry })
}

/// An outbox entry this process holds (see the module documentation).
pub(in crate::callback) struct Claim<E = OutboxEntry> {
    path: PathBuf,
    /// The entry file, locked; it must still be the file at `path`.
    file: File,
    pub entry: E,
}

/// What [`Claim::take`] found at a path.
pub(super) enum Take<E = OutboxEntry> {
    Claimed(Box<Claim<E>>),
    /// Another process holds it right now.
    Busy,
    /// Removed (delivered, dropped) since it was listed.
    Gone,
}

impl<E: Entry> Claim<E> {
    pub(in crate::callback) fn path(&self) -> &Path {
        &self.path
    }

    /// Claim the entry at `path` without waiting. `Err` is an entry that
    /// cannot be read or parsed (it is claimed all the same while reading).
    pub(super) fn take(path: &Path) -> std::result::Result<Take<E>, String> {
        use rustix::fs::{FlockOperation, flock};
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Take::Gone),
            Err(e) => return Err(format!("cannot read: {e}")),
        };
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => return Ok(Take::Busy),
            Err(e) => return Err(format!("cannot lock: {e}")),
        }
        let claim_file = file.try_clone().map_err(|e| format!("cannot read: {e}"))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read: {e}"))?;
        let claim = |entry| Claim {
            path: path.to_path_buf(),
            file: claim_file,
            entry,
        };
        // Locked, but perhaps only after its holder removed or replaced it.
        if !same_file(path, &file) {
            return Ok(Take::Gone);
        }
        Ok(Take::Claimed(Box::new(claim(E::parse(&bytes)?))))
    }

    /// The locked file is still the entry at `path`: nobody removed it.
    fn still_queued(&self) -> bool {
        same_file(&self.path, &self.file)
    }

    /// Write the entry back after a failed attempt, in place of the file
    /// claimed, and only if it is still there: an entry removed meanwhile
    /// is never brought back. Returns false when there was nothing to update.
    pub(in crate::callback) fn update(self) -> Result<bool> {
        if !self.still_queued() {
            return Ok(false);
        }
        let json = serde_json::to_vec_pretty(&self.entry)?;
        let opts = WriteOptions {
            mode: 0o600,
            ..WriteOptions::DATA
        };
        fsutil::write_atomic(&self.path, &json, opts)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        Ok(true)
    }

    /// Remove the entry: it was delivered (or its spawn never completed).
    pub(in crate::callback) fn remove(self) -> Result<()> {
        if !self.still_queued() {
            return Ok(());
        }
        fs::remove_file(&self.path)
            .with_context(|| format!("cannot remove {}", self.path.display()))
    }
}

/// `path` names the very file `file` has open.
fn same_file(path: &Path, file: &File) -> bool {
    match (fs::symlink_metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}
