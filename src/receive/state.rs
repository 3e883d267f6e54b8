//! What the receiver's workers share: the keys, the log, the registry's
//! index and the metrics, and the one way to read the index.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::keyring::KeyRing;
use super::log::Log;
use super::metrics::Metrics;
use super::site::Site;
use crate::registry::index::Index;

/// What every worker shares.
pub(super) struct State {
    /// The senders' keys (`--trust`).
    pub trusted: KeyRing,
    pub nonces: Mutex<HashMap<(String, String), i64>>,
    pub log: Log,
    /// Where this receiver is reached: what a signature must be made for.
    pub site: Site,
    /// The readers' keys (`--readers`): who may read the registry from
    /// another host.
    pub readers: Option<KeyRing>,
    /// Whether reads from loopback need no signature (the default).
    pub loopback_reads_open: bool,
    /// The registry's index of the log.
    pub registry: Mutex<Index>,
    pub metrics: Metrics,
}

impl State {
    /// The index, with every staged line written first: a read sees every
    /// line logged before it.
    pub(super) fn index(&self) -> MutexGuard<'_, Index> {
        let mut index = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        report_index(index.flush());
        index
    }
}

/// Log what writing the registry's index said: the lines it left out (not
/// fleet events), or why it could not be written (it catches up at the next
/// start; the log has every line).
pub(super) fn report_index(taken: anyhow::Result<Vec<(u64, String)>>) {
    match taken {
        Ok(skipped) => {
            for (seq, why) in skipped {
                tracing::warn!(seq, "log line {seq} is not in the registry index: {why}");
            }
        }
        Err(e) => tracing::error!(
            "the registry index did not take in the latest log lines: {e:#}; they are logged, restart the receiver to catch the index up"
        ),
    }
}
