//! The receiver's log of accepted receipts: a hash chain (see
//! [`crate::chain`]) held locked for as long as the receiver runs, with
//! group commit, so that a 204 is only ever sent for a line on disk. A line
//! that cannot be written (a full disk) is undone before the error is
//! returned, so later lines are never chained onto a partial one.

use std::collections::HashSet;
use std::fs::File;
use std::io::ErrorKind;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use anyhow::Result;

use crate::chain::{Chain, Fault, Lock};
use crate::error::{ExitCode, fail, fail_with};

pub struct Log {
    inner: Mutex<Inner>,
    /// Group commit: the highest `seq` known to be on disk, and a handle to
    /// flush the log with. One `fdatasync` covers every line written before
    /// it, so concurrent requests share it.
    synced: Mutex<u64>,
    sync_file: File,
}

struct Inner {
    chain: Chain,
    /// The Idempotency-Keys already logged.
    seen: HashSet<String>,
}

impl Log {
    /// Open the log, check its chain, and collect what it accepted. A
    /// broken log exits with code 1, like a broken ledger.
    pub fn open(path: &Path) -> Result<Log> {
        let shown = path.display();
        let (chain, walked) = Chain::open::<serde_json::Value>(path, Lock::Fail).map_err(|e| {
            if e.kind() == ErrorKind::WouldBlock {
                return fail(
                    ExitCode::Usage,
                    format!(
                        "log {shown} is in use by another receiver; give this one its own --log"
                    ),
                );
            }
            let message = format!("cannot open log {shown} for appending: {e}");
            fail_with(ExitCode::Io, message, e)
        })?;
        if let Some((n, fault)) = &walked.broken {
            let message = match fault {
                Fault::Cut => format!(
                    "log {shown} ends in a partial line (cut off while written); run `spawn-elite ledger repair --file {}` to set it aside and keep the {} complete entries before it",
                    crate::ledger::shell_word(&shown.to_string()),
                    n - 1
                ),
                Fault::Unparsable(e) => format!(
                    "log {shown} is broken at line {n}: not JSON ({e}); move the file aside"
                ),
                Fault::Seq(_) => format!(
                    "log {shown} is broken at line {n}: its seq is not {n}, lines were removed or reordered; move the file aside"
                ),
                Fault::Prev(_) => format!(
                    "log {shown} is broken at line {n}: its prev is not the BLAKE3 of the line before; move the file aside"
                ),
            };
            return Err(fail(ExitCode::Drift, message));
        }
        let seen = walked
            .entries
            .iter()
            .filter_map(|v| v.get("idempotency_key").and_then(|k| k.as_str()))
            .map(str::to_owned)
            .collect();
        let sync_file = chain.try_clone_file().map_err(|e| {
            let message = format!("cannot open log {shown}: {e}");
            fail_with(ExitCode::Io, message, e)
        })?;
        Ok(Log {
            synced: Mutex::new(chain.seq),
            sync_file,
            inner: Mutex::new(Inner { chain, seen }),
        })
    }

    /// How many lines the log holds.
    pub fn seq(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .chain
            .seq
    }

    /// Log the receipt with Idempotency-Key `idem`, unless it was logged
    /// before: `line(seq, prev)` makes the line. `logged` is told of the
    /// line once it is written (its seq, the file offset it starts at, its
    /// bytes), still in log order: the registry's index follows the log
    /// through it. `Ok(true)` once the line is on disk, `Ok(false)` if it
    /// was already there; `Err` says why it could not be written.
    pub fn accept(
        &self,
        idem: &str,
        line: impl FnOnce(u64, &str) -> String,
        logged: impl FnOnce(u64, u64, &[u8]),
    ) -> Result<bool, String> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.seen.contains(idem) {
            return Ok(false);
        }
        let text = line(inner.chain.seq + 1, &inner.chain.last_hash);
        let offset = inner.chain.end_offset();
        inner
            .chain
            .append(text.as_bytes())
            .map_err(|e| format!("cannot write the log: {e}"))?;
        inner.seen.insert(idem.to_owned());
        let my_seq = inner.chain.seq;
        logged(my_seq, offset, text.as_bytes());
        drop(inner);

        // 204 only once the line is on disk.
        let mut synced = self.synced.lock().unwrap_or_else(PoisonError::into_inner);
        if *synced < my_seq {
            let written = self
                .inner
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .chain
                .seq;
            self.sync_file
                .sync_data()
                .map_err(|e| format!("cannot flush the log to disk: {e}"))?;
            *synced = written;
        }
        Ok(true)
    }
}
