//! Anchors: RFC 3161 timestamps of a chain's head (`ledger anchor`,
//! `ledger verify --tsa-cert`). Line `n`'s hash commits to every line up to
//! `n` (each line carries the hash of the one before), so a TSA's token over
//! it proves that those lines existed at the TSA's time, and stays valid as
//! the log grows: later lines do not change line `n`.
//!
//! The tokens are kept beside the log, in `LOG.anchors.jsonl`: itself a
//! hash chain ([`crate::chain`]: locked, flushed and cut back on a failed
//! append like the ledger), one line per anchor,
//! `{"seq", "prev", "line", "head", "time", "tsa", "token"}`: the log's line
//! number, its hash (hex BLAKE3, as the next line's `prev` holds it), the
//! TSA's time and name, and the token (DER, base64). The token's imprint is
//! SHA-256 of the 32 hash bytes (not of the hex).

use std::path::{Path, PathBuf};

use anyhow::Result;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::chain::{self, Chain, Link, Lock};
use crate::error::{ExitCode, fail, fail_with};
use crate::provenance::tsa::{self, Failed, Query, Stamp, Tsa};

/// One anchor line of the sidecar.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Anchor {
    /// The anchor's own place in the sidecar's chain.
    pub seq: u64,
    pub prev: String,
    /// The log's line whose hash was stamped (numbered from 1).
    pub line: u64,
    /// That line's hash, hex BLAKE3.
    pub head: String,
    /// The TSA's time and certificate subject, as the token says.
    pub time: String,
    pub tsa: String,
    /// The RFC 3161 token, DER, base64.
    pub token: String,
}

impl Link for Anchor {
    fn seq(&self) -> Option<u64> {
        Some(self.seq)
    }
    fn prev(&self) -> Option<&str> {
        Some(&self.prev)
    }
}

/// Where the anchors of the log at `log` are kept.
pub fn sidecar(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".anchors.jsonl");
    PathBuf::from(name)
}

/// The hashes of the first `n` lines of `text` (a chain checked already).
fn heads(text: &[u8], n: usize) -> Vec<String> {
    text.split(|&b| b == b'\n')
        .take(n)
        .map(chain::line_hash)
        .collect()
}

/// The 32 bytes a hex hash stands for.
fn hash_bytes(hex: &str) -> Option<[u8; 32]> {
    blake3::Hash::from_hex(hex).ok().map(|h| *h.as_bytes())
}

/// What `ledger anchor` made.
#[derive(Debug)]
pub struct Anchored {
    pub sidecar: PathBuf,
    pub line: u64,
    pub head: String,
    pub stamp: Stamp,
}

/// Stamp the head of the log at `log`, whose first `lines` lines form an
/// intact chain (checked by the caller, as `ledger verify` checks it), and
/// append the anchor to its sidecar. Nothing is written unless a good
/// token came back: an unreachable TSA is exit 4, a bad answer exit 17.
pub fn anchor(log: &Path, lines: usize, tsa: &Tsa) -> Result<Anchored> {
    if lines == 0 {
        return Err(fail(
            ExitCode::Usage,
            format!(
                "{} has no entries yet: there is nothing to anchor; anchor it after the first spawn",
                log.display()
            ),
        ));
    }
    let text = std::fs::read(log).map_err(|e| {
        fail_with(
            ExitCode::Io,
            format!("cannot read {}: {e}", log.display()),
            e,
        )
    })?;
    // Read again after the check: a log only grows, so its first `lines`
    // lines are the ones checked.
    let head = heads(&text, lines).pop().unwrap_or_default();
    let bytes = hash_bytes(&head).unwrap_or_default();
    let query = Query::new(&bytes).map_err(|why| fail(ExitCode::Io, why))?;
    let token = match tsa::stamp(tsa, &query) {
        Ok(token) => token,
        Err(Failed::Unreachable(why)) => {
            return Err(fail(
                ExitCode::Io,
                format!(
                    "{why}; nothing was written: run `spawn-elite ledger anchor` again once the TSA answers"
                ),
            ));
        }
        Err(Failed::Refused(why)) => {
            return Err(fail(
                ExitCode::BadTimestamp,
                format!("{why}; nothing was written: check the TSA URL (--tsa or SPAWN_ELITE_TSA)"),
            ));
        }
    };
    let at = sidecar(log);
    let io = |e: std::io::Error| {
        fail_with(
            ExitCode::Io,
            format!(
                "cannot append to {}: {e}; it is unchanged: make its directory writable, then anchor again",
                at.display()
            ),
            e,
        )
    };
    let existed = at.exists();
    let (mut chain, walked) = Chain::open::<Anchor>(&at, Lock::Wait).map_err(io)?;
    if let Some((n, _)) = walked.broken {
        return Err(fail(
            ExitCode::Drift,
            format!(
                "{} is broken at line {n}; nothing was appended: `spawn-elite ledger verify --tsa-cert FILE` says what is wrong",
                at.display()
            ),
        ));
    }
    let anchor = Anchor {
        seq: chain.seq + 1,
        prev: chain.last_hash.clone(),
        line: lines as u64,
        head: head.clone(),
        time: token.stamp.time.clone(),
        tsa: token.stamp.signer.clone(),
        token: STANDARD.encode(&token.der),
    };
    let line = serde_json::to_vec(&anchor).map_err(|e| io(e.into()))?;
    chain.append_synced(&line).map_err(io)?;
    if !existed {
        crate::fsutil::sync_dir(&at).map_err(io)?;
    }
    Ok(Anchored {
        sidecar: at,
        line: lines as u64,
        head,
        stamp: token.stamp,
    })
}

/// What `ledger verify --tsa-cert` found: each anchor's line and stamp.
#[derive(Debug)]
pub struct Checked {
    pub sidecar: PathBuf,
    pub anchors: Vec<(u64, Stamp)>,
}

/// Check every anchor of the log at `log`, whose first `lines` lines form
/// an intact chain: its token is signed by a TSA that `tsa_cert` vouches
/// for, over this anchor's head (exit 17 if not), and that head is the
/// log's hash at its line (exit 1 if not: the log changed since). `None`
/// when the log has no anchors.
pub fn verify(log: &Path, lines: usize, tsa_cert: &Path) -> Result<Option<Checked>> {
    let at = sidecar(log);
    let Some(text) = super::read_bytes(&at, "anchors")? else {
        return Ok(None);
    };
    let trusted = tsa::load_certificates(tsa_cert).map_err(|why| {
        fail(
            ExitCode::Usage,
            format!("--tsa-cert: {why}; pass the TSA's CA certificate (PEM)"),
        )
    })?;
    let walked = chain::walk::<Anchor>(&text);
    if let Some((n, _)) = walked.broken {
        return Err(fail(
            ExitCode::Drift,
            format!(
                "{} is broken at line {n} (edited, or cut off while written); the anchors before it are checked by removing it: keep a copy, then cut the file back to {} lines",
                at.display(),
                n - 1
            ),
        ));
    }
    let log_text = std::fs::read(log).map_err(|e| {
        fail_with(
            ExitCode::Io,
            format!("cannot read {}: {e}", log.display()),
            e,
        )
    })?;
    let hashes = heads(&log_text, lines);
    let mut anchors = Vec::new();
    for a in &walked.entries {
        let name = format!("anchor {} of {}", a.seq, at.display());
        let token = STANDARD.decode(&a.token).map_err(|e| {
            fail(
                ExitCode::BadTimestamp,
                format!("{name}: its token is not base64 ({e})"),
            )
        })?;
        let bytes = hash_bytes(&a.head).ok_or_else(|| {
            fail(
                ExitCode::BadTimestamp,
                format!("{name}: its head {:?} is not a hex BLAKE3 hash", a.head),
            )
        })?;
        let stamp = tsa::verify(&token, &bytes, &trusted).map_err(|tsa::Bad(why)| {
            fail(
                ExitCode::BadTimestamp,
                format!("{name} is not a good timestamp of its head: {why}"),
            )
        })?;
        let found = usize::try_from(a.line)
            .ok()
            .and_then(|l| l.checked_sub(1))
            .and_then(|i| hashes.get(i));
        match found {
            Some(h) if *h == a.head => anchors.push((a.line, stamp)),
            Some(_) => {
                return Err(fail(
                    ExitCode::Drift,
                    format!(
                        "{} does not match {name}: its line {} (or one before it) changed since it was stamped at {}; the log cannot be trusted up to there: compare it with a copy",
                        log.display(),
                        a.line,
                        stamp.time
                    ),
                ));
            }
            None => {
                return Err(fail(
                    ExitCode::Drift,
                    format!(
                        "{} has {lines} lines, but {name} stamped line {} at {}: lines were removed since",
                        log.display(),
                        a.line,
                        stamp.time
                    ),
                ));
            }
        }
    }
    Ok(Some(Checked {
        sidecar: at,
        anchors,
    }))
}
