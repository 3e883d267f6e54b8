//! The one step after a tree is written, for a spawn and an update alike:
//! its receipt is in place, so it is recorded — (signing and time-stamping
//! go here, before the ledger, so that the ledger and the callback carry
//! them) → the ledger line → the callback, queued before the tree is put in
//! place and delivered after. Each part's result is an outcome value; the
//! command layer prints it.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::callback::{self, CallbackOptions, Pending, outbox};
use crate::clock::Clock;
use crate::error::{ExitCode, describe};
use crate::fsutil::PlannedFile;
use crate::ledger::{self, UpdateRecord};
use crate::provenance::TIMESTAMP_PATH;
use crate::provenance::stamp::{self, PendingStamp, Stamping};
use crate::provenance::tsa::Stamp;
use crate::provenance::{self, Signer};
use crate::receipt::{RECEIPT_PATH, Receipt};

/// The metadata the record step makes for a tree, before it is written.
#[derive(Debug, Default)]
pub struct Metadata {
    /// The files to write (and commit) with the tree: the receipt, and with
    /// a signer the attestation, and with `--tsa` its timestamp.
    pub files: Vec<PlannedFile>,
    /// The TSA's time, when the attestation was stamped.
    pub stamped: Option<Stamp>,
    /// The TSA could not be reached: [`begin`] queues this request.
    pub pending: Option<PendingStamp>,
}

/// The files the record step puts in the metadata directory with the tree,
/// before it is committed: the receipt of `files`, and with a signer the
/// attestation of both (naming `previous`, the attestation it replaces),
/// time-stamped when the signer has a TSA. A TSA that answers with a bad
/// token fails the work here, before anything is written (exit 17).
pub fn metadata(
    receipt: &Receipt,
    files: &[PlannedFile],
    signer: Option<&Signer>,
    clock: &Clock,
    previous: Option<&[u8]>,
) -> Result<Metadata> {
    let mut meta = Metadata {
        files: vec![receipt.as_planned()],
        ..Metadata::default()
    };
    if let Some(signer) = signer {
        let attestation = provenance::attest_planned(
            receipt,
            files,
            signer,
            clock.now(),
            clock.later(),
            previous,
        );
        if let Some(tsa) = signer.tsa() {
            match stamp::stamp_attestation(&attestation.contents, tsa)? {
                Stamping::Stamped { file, stamp } => {
                    meta.files.push(file);
                    meta.stamped = Some(stamp);
                }
                Stamping::Pending(p) => meta.pending = Some(p),
            }
        }
        meta.files.push(attestation);
    }
    Ok(meta)
}

/// What the ledger line records.
#[derive(Debug, Clone)]
pub enum Event {
    Spawn,
    Update(Box<UpdateRecord>),
}

impl Event {
    fn noun(&self) -> &'static str {
        match self {
            Event::Spawn => "spawn",
            Event::Update(_) => "update",
        }
    }
}

/// A record begun: the callback and the pending timestamp request are
/// queued. Begin it before the tree with its receipt is put in place, so
/// that no instant exists at which the tree exists and its callback (or its
/// attestation's timestamp) is neither done nor queued.
pub struct Record {
    receipt: Receipt,
    repo: PathBuf,
    pending: Option<Pending>,
    /// The request, and its outbox entry or why it could not be queued.
    stamp: Option<(
        PendingStamp,
        std::result::Result<outbox::stamp::Queued, String>,
    )>,
}

/// Queue `receipt`'s callback (when there is one) for the repository at
/// `repo`, where the receipt will be at [`RECEIPT_PATH`]; `meta` are the
/// metadata files written with it, whose attestation, if any, the callback
/// carries. `stamp` is the attestation's timestamp request when the TSA
/// could not be reached: queued too, counting only once the attestation is
/// in place (`awaiting_spawn`).
pub fn begin(
    receipt: &Receipt,
    repo: &Path,
    callback: Option<&CallbackOptions>,
    meta: &[PlannedFile],
    stamp: Option<&PendingStamp>,
) -> Record {
    let attestation = meta
        .iter()
        .find(|f| f.path == provenance::ATTESTATION_PATH)
        .map(|f| f.contents.as_slice());
    let pending = callback.map(|cb| {
        callback::queue_for_spawn(
            &receipt.to_json_bytes(),
            receipt.merkle_root(),
            &repo.join(RECEIPT_PATH),
            cb,
            attestation,
        )
    });
    let stamp = stamp.map(|p| {
        let queued = outbox::stamp::queue_for_spawn(p, repo).map_err(|e| describe(&e));
        (p.clone(), queued)
    });
    Record {
        receipt: receipt.clone(),
        repo: repo.to_path_buf(),
        pending,
        stamp,
    }
}

impl Record {
    /// The tree was not written: the queued callback and timestamp request
    /// are withdrawn.
    pub fn abandon(self) {
        if let Some(p) = self.pending {
            p.abandon();
        }
        if let Some((_, Ok(queued))) = self.stamp {
            queued.abandon();
        }
    }

    /// The tree and its receipt are in place: append the ledger line
    /// (`None`: `--no-ledger`). A ledger that cannot be written is a
    /// warning, not a failure: the work is done and its receipt is there.
    pub fn finish(self, event: Option<Event>) -> Recorded {
        let mut warnings = Vec::new();
        let ledger = event.and_then(|event| {
            let noun = event.noun();
            let appended = match event {
                Event::Spawn => ledger::append(&self.receipt, &self.repo),
                Event::Update(update) => {
                    ledger::append_update(&self.receipt, &self.repo, *update)
                }
            };
            appended
                .inspect_err(|e| {
                    warnings.push(format!(
                        "{}; the {noun} is complete but not in the ledger (pass --no-ledger to skip it)",
                        describe(e)
                    ))
                })
                .ok()
        });
        let stamp_pending = self.stamp.map(|(p, queued)| {
            match queued {
                Ok(queued) => {
                    warnings.push(format!(
                        "{}; the timestamp request is queued in {}: `spawn-elite callback flush` sends it and writes {} (commit it then)",
                        p.reason,
                        queued.path().display(),
                        TIMESTAMP_PATH
                    ));
                    queued.settle();
                }
                Err(why) => warnings.push(format!(
                    "{}, and the request could not be queued ({why}); stamp it later with `spawn-elite attest --tsa {}`",
                    p.reason, p.url
                )),
            }
            p.url
        });
        Recorded {
            ledger,
            warnings,
            stamp_pending,
            pending: self.pending,
        }
    }
}

/// What was recorded; the callback is delivered by [`Recorded::deliver`],
/// after the command layer has reported the work itself.
pub struct Recorded {
    /// The ledger the line went to.
    pub ledger: Option<PathBuf>,
    /// What went wrong without failing the work.
    pub warnings: Vec<String>,
    /// `--tsa` could not be reached: the TSA's URL (the request is queued,
    /// or a warning says why not).
    pub stamp_pending: Option<String>,
    pending: Option<Pending>,
}

impl std::fmt::Debug for Recorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorded")
            .field("ledger", &self.ledger)
            .field("warnings", &self.warnings)
            .field("callback", &self.pending.is_some())
            .finish()
    }
}

impl Recorded {
    /// Send the queued callback, if there is one.
    pub fn deliver(&mut self, quiet: bool) -> Option<callback::AfterSpawn> {
        self.pending.take().map(|p| callback::after_spawn(p, quiet))
    }
}

/// The exit code of work that ended with `delivered` (a callback or none):
/// the callback's when it is not a success, else 18 when the timestamp is
/// pending.
pub fn exit_code(delivered: Option<&callback::AfterSpawn>, recorded: &Recorded) -> ExitCode {
    match delivered.map_or(ExitCode::Success, |d| d.code) {
        ExitCode::Success if recorded.stamp_pending.is_some() => ExitCode::TimestampPending,
        code => code,
    }
}
