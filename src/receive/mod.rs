//! The receiver: a small HTTP server that verifies signed callbacks and
//! appends accepted receipts to a hash-chained JSONL log.
//!
//! Statuses: 204 accepted (or already accepted: same `Idempotency-Key`),
//! 400 malformed, 401 bad/unknown signature, body not matching its digest,
//! or `created`/`expires` outside the window, 409 replayed nonce,
//! 413 body too large, 500 the log could not be written (nothing accepted).
//! See `docs/CALLBACK.md`.
//!
//! - `verify`: checking one request.
//! - `log`: the log of accepted receipts.
//! - `trust`: the trusted public keys.

pub mod log;
pub mod trust;
pub mod verify;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{ExitCode, fail};
use anyhow::{Result, anyhow};
pub use verify::WINDOW_SECS;

/// How to run the receiver, resolved.
#[derive(Debug, Clone)]
pub struct Options {
    /// Address to listen on; port 0 picks a free one.
    pub listen: String,
    /// Directory of trusted `*.pub` keys.
    pub trust: PathBuf,
    /// The log of accepted receipts.
    pub log: PathBuf,
    /// Largest accepted body in bytes.
    pub max_body: usize,
    /// Requests handled at once.
    pub workers: u16,
}

/// The default log: `$XDG_DATA_HOME/spawn-elite/received.jsonl`.
pub fn default_log() -> Result<PathBuf> {
    Ok(crate::paths::data_dir()?.join("received.jsonl"))
}

/// A running receiver. Dropping it without [`Receiver::stop`] leaves the
/// workers running until the process ends.
pub struct Receiver {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    keys: usize,
}

impl Receiver {
    /// Bind, load the trusted keys and the log, and start the workers.
    pub fn start(opts: &Options, stop: Arc<AtomicBool>) -> Result<Receiver> {
        let keys = trust::load(&opts.trust)?;
        let log = log::Log::open(&opts.log)?;
        let server = tiny_http::Server::http(&opts.listen).map_err(|e| {
            fail(
                ExitCode::Usage,
                format!(
                    "cannot listen on {}: {e}; pick another address with --listen",
                    opts.listen
                ),
            )
        })?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| anyhow!("listening address is not an IP address"))?;
        let server = Arc::new(server);
        let n_keys = keys.len();
        let state = Arc::new(verify::State {
            trust_dir: opts.trust.clone(),
            keys: RwLock::new(keys),
            nonces: Mutex::new(HashMap::new()),
            log,
            max_body: opts.max_body,
        });
        let workers = (0..opts.workers)
            .map(|_| {
                let server = Arc::clone(&server);
                let state = Arc::clone(&state);
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match server.recv_timeout(Duration::from_millis(100)) {
                            Ok(Some(req)) => verify::serve(&state, req),
                            Ok(None) => {}
                            Err(_) => break,
                        }
                    }
                })
            })
            .collect();
        Ok(Receiver {
            addr,
            stop,
            workers,
            keys: n_keys,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many trusted keys were loaded at start.
    pub fn keys(&self) -> usize {
        self.keys
    }

    /// Finish the requests in hand, then stop listening.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            let _ = w.join();
        }
    }
}
