//! Timestamp requests in the outbox: a spawn (or `attest`) whose TSA could
//! not be reached queues its request here, and `callback flush` sends it
//! and writes the token into the repository. Same directory, same durable
//! queueing and `flock` claims as callbacks ([`super::claim`]); the entry
//! says `"kind": "timestamp"`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::claim::{self, Claim, Entry};
use super::{FlushReport, RetryOptions};
use crate::callback::Undelivered;
use crate::error::describe;
use crate::fsutil::beneath;
use crate::provenance::stamp::{PendingStamp, stamped_bytes};
use crate::provenance::tsa::{self, Failed, Query, Tsa};
use crate::provenance::{ATTESTATION_PATH, TIMESTAMP_PATH};
use crate::receipt::hex;

const KIND: &str = "timestamp";

/// One queued timestamp request: the query as first made (so the token
/// answers exactly it) and the repository whose attestation it stamps.
#[derive(Debug, Serialize, Deserialize)]
pub(in crate::callback) struct StampEntry {
    kind: String,
    version: u32,
    tsa_url: String,
    /// The repository's root; the token goes to its [`TIMESTAMP_PATH`].
    repo: PathBuf,
    /// SHA-256 of the attestation's signature bytes, hex.
    imprint: String,
    /// The request's nonce, hex.
    nonce: String,
    queued_at: String,
    #[serde(default)]
    attempts: u32,
    last_error: String,
    #[serde(default)]
    permanent: bool,
    /// Queued by a spawn or an update before its tree was put in place: it
    /// counts only once the repository holds the attestation it stamps.
    /// Cleared when the work completes; left set only if it was killed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    awaiting_spawn: bool,
}

impl Entry for StampEntry {
    fn tag(&self) -> String {
        format!("tsa-{}", &self.imprint[..self.imprint.len().min(16)])
    }

    fn parse(bytes: &[u8]) -> std::result::Result<Self, String> {
        let entry: StampEntry =
            serde_json::from_slice(bytes).map_err(|e| format!("not an outbox entry: {e}"))?;
        if entry.kind != KIND {
            return Err(format!("an entry of kind {:?}, not {KIND:?}", entry.kind));
        }
        Ok(entry)
    }
}

impl StampEntry {
    fn query(&self) -> std::result::Result<Query, String> {
        let bytes = |name: &str, h: &str| {
            (0..h.len())
                .step_by(2)
                .map(|i| h.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
                .collect::<Option<Vec<u8>>>()
                .ok_or(format!("its {name} is not hex: the entry was edited"))
        };
        let imprint = bytes("imprint", &self.imprint)?
            .try_into()
            .map_err(|_| "its imprint is not 32 bytes: the entry was edited".to_owned())?;
        Ok(Query {
            imprint,
            nonce: bytes("nonce", &self.nonce)?,
        })
    }
}

/// Whether the outbox file at `path` is a timestamp request (its kind is
/// fixed when it is queued, so one look decides).
pub(super) fn is_stamp(path: &Path) -> bool {
    #[derive(Deserialize)]
    struct Kind {
        kind: Option<String>,
    }
    fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Kind>(&b).ok())
        .is_some_and(|k| k.kind.as_deref() == Some(KIND))
}

/// Queue `pending` for the repository at `repo`, whose attestation is in
/// place already (`attest`); returns the entry's file.
pub fn queue(pending: &PendingStamp, repo: &Path) -> Result<PathBuf> {
    Ok(claim::queue(entry(pending, repo, false))?
        .path()
        .to_path_buf())
}

/// A timestamp request queued before the tree it stamps was put in place,
/// held (claimed) by this process until the work ends: [`Queued::settle`]
/// once the attestation is in place, [`Queued::abandon`] if it never will be.
/// A process killed in between leaves it queued, `awaiting_spawn`, and the
/// next `flush` sends it or drops it by what the repository holds.
pub struct Queued(Claim<StampEntry>);

/// Queue `pending` for the repository at `repo` before the work that writes
/// its attestation there has completed (see [`Queued`]).
pub fn queue_for_spawn(pending: &PendingStamp, repo: &Path) -> Result<Queued> {
    Ok(Queued(claim::queue(entry(pending, repo, true))?))
}

impl Queued {
    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// The work completed: the entry counts from now on, whatever the
    /// repository holds. A failure to clear the mark is harmless (the
    /// attestation is in place, so `flush` sends it all the same).
    pub fn settle(mut self) {
        self.0.entry.awaiting_spawn = false;
        let _ = self.0.update();
    }

    /// The work failed and wrote nothing: withdraw the request. (If this
    /// fails, `flush` drops it later: the attestation is not there.)
    pub fn abandon(self) {
        let _ = self.0.remove();
    }
}

fn entry(pending: &PendingStamp, repo: &Path, awaiting_spawn: bool) -> StampEntry {
    StampEntry {
        kind: KIND.to_owned(),
        version: 1,
        tsa_url: pending.url.clone(),
        repo: std::path::absolute(repo).unwrap_or_else(|_| repo.to_path_buf()),
        imprint: hex(&pending.query.imprint),
        nonce: hex(&pending.query.nonce),
        queued_at: jiff::Timestamp::now().to_string(),
        attempts: 1,
        last_error: pending.reason.clone(),
        permanent: false,
        awaiting_spawn,
    }
}

/// Why the entry has nothing left to do, if so: its repository is gone,
/// re-signed (the attestation is not the one stamped), or stamped already.
fn obsolete(entry: &StampEntry, query: &Query) -> Option<String> {
    let attestation = entry.repo.join(ATTESTATION_PATH);
    if entry.awaiting_spawn && !holds(&attestation, query) {
        return Some(format!(
            "queued by a spawn or update that never completed ({} does not hold the attestation it stamps), so there is nothing to stamp",
            attestation.display()
        ));
    }
    let Ok(envelope) = fs::read(&attestation) else {
        return Some(format!(
            "{} is gone, so there is nothing to stamp",
            attestation.display()
        ));
    };
    let now = stamped_bytes(&envelope)
        .map(|b| <sha2::Sha256 as sha2::Digest>::digest(&b).to_vec())
        .unwrap_or_default();
    if now != query.imprint {
        return Some(format!(
            "{} was signed again since, so this request is for an attestation no longer there",
            attestation.display()
        ));
    }
    if entry.repo.join(TIMESTAMP_PATH).exists() {
        return Some(format!(
            "{} exists already",
            entry.repo.join(TIMESTAMP_PATH).display()
        ));
    }
    None
}

/// The attestation file at `at` is the one `query` stamps.
fn holds(at: &Path, query: &Query) -> bool {
    fs::read(at)
        .ok()
        .and_then(|envelope| stamped_bytes(&envelope).ok())
        .is_some_and(|b| <sha2::Sha256 as sha2::Digest>::digest(&b).as_slice() == query.imprint)
}

/// Send one claimed timestamp request; on a good token, write it into the
/// repository (atomically) and remove the entry.
pub(super) fn flush_one(
    mut claim: Claim<StampEntry>,
    retry: &RetryOptions,
    report: &mut FlushReport,
) {
    let file = claim.path().to_path_buf();
    let query = match claim.entry.query() {
        Ok(q) => q,
        Err(why) => {
            report.pending_stamps += 1;
            report.pending.push((file, Undelivered::permanent(why)));
            return;
        }
    };
    if let Some(why) = obsolete(&claim.entry, &query) {
        match claim.remove() {
            Ok(()) => report.abandoned.push((file, why)),
            Err(e) => report.warnings.push(format!("{why}, but {}", describe(&e))),
        }
        return;
    }
    let tsa = Tsa {
        url: claim.entry.tsa_url.clone(),
        connect_timeout: retry.connect_timeout,
        timeout: retry.timeout,
    };
    let failed = match tsa::stamp(&tsa, &query) {
        Ok(token) => {
            let at = claim.entry.repo.join(TIMESTAMP_PATH);
            match beneath::write_atomic_in(&claim.entry.repo, Path::new(TIMESTAMP_PATH), &token.der)
            {
                Ok(()) => {
                    if let Err(e) = claim.remove() {
                        report.warnings.push(format!(
                            "wrote {}, but {}; remove the entry with `spawn-elite callback drop`",
                            at.display(),
                            describe(&e)
                        ));
                    }
                    report.stamped.push((file, at, token.stamp.time));
                    return;
                }
                Err(e) => Undelivered {
                    reason: format!("cannot write {}: {e}", at.display()),
                    attempts: 1,
                    permanent: false,
                    interrupted: false,
                },
            }
        }
        Err(Failed::Unreachable(reason)) => Undelivered {
            reason,
            attempts: 1,
            permanent: false,
            interrupted: false,
        },
        Err(Failed::Refused(reason)) => Undelivered {
            reason,
            attempts: 1,
            permanent: true,
            interrupted: false,
        },
    };
    // Past `obsolete`: the attestation is in place, so its work completed.
    claim.entry.awaiting_spawn = false;
    claim.entry.attempts = claim.entry.attempts.saturating_add(1);
    claim.entry.last_error = failed.reason.clone();
    claim.entry.permanent = failed.permanent;
    if let Err(e) = claim.update() {
        report.warnings.push(format!(
            "could not record the attempt in the entry: {}",
            describe(&e)
        ));
    }
    report.pending_stamps += 1;
    report.pending.push((file, failed));
}

/// The `callback list` block of a timestamp request.
pub(super) fn describe_entry(path: &Path) -> std::result::Result<(String, bool), String> {
    let e = StampEntry::parse(&fs::read(path).map_err(|e| format!("cannot read: {e}"))?)?;
    let mut out = String::new();
    out.push_str(&format!("  timestamp: {}\n", e.tsa_url));
    out.push_str(&format!(
        "  for:       {}\n",
        e.repo.join(ATTESTATION_PATH).display()
    ));
    out.push_str(&format!("  queued at: {}\n", e.queued_at));
    if e.awaiting_spawn {
        out.push_str(
            "  spawn:     not completed yet, or killed; stamped only once the attestation is there\n",
        );
    }
    out.push_str(&format!("  attempts:  {}\n", e.attempts));
    out.push_str(&format!("  last:      {}\n", e.last_error));
    Ok((out, e.permanent))
}

/// `callback drop` of a timestamp request: nothing but the request is lost
/// (the attestation stays, unstamped).
pub(super) fn drop_entry(path: &Path) -> Result<String> {
    use super::claim::Take;
    match Claim::<StampEntry>::take(path) {
        Ok(Take::Claimed(claim)) => {
            let message = format!(
                "dropped {} (timestamp of {} from {}); the attestation stays, unstamped: `spawn-elite attest --tsa URL` stamps it anew",
                path.display(),
                claim.entry.repo.display(),
                claim.entry.tsa_url
            );
            claim.remove()?;
            Ok(message)
        }
        Ok(Take::Busy) => Err(crate::error::fail(
            crate::error::ExitCode::Io,
            format!(
                "{} is being sent by another process right now",
                path.display()
            ),
        )),
        Ok(Take::Gone) => Ok(format!("{} was removed meanwhile", path.display())),
        Err(why) => Err(crate::error::fail(
            crate::error::ExitCode::InvalidReceipt,
            format!(
                "{}: {why}; inspect it and remove it by hand",
                path.display()
            ),
        )),
    }
}
