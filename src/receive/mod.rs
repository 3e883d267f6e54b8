//! The receiver: a small HTTP server that verifies signed callbacks and
//! appends accepted receipts to a hash-chained JSONL log.
//!
//! Statuses: 204 accepted (or already accepted: same `Idempotency-Key`),
//! 400 malformed (or not `application/json`), 401 bad/unknown signature,
//! no `alg`, signed for another authority or path, body not matching its
//! digest, or `created`/`expires` outside the window, 405 not a POST,
//! 408 body too slow, 409 replayed nonce, 413 body too large, 431 head too
//! large, 500 the log could not be written (nothing accepted).
//! See `docs/CALLBACK.md`.
//!
//! - `server`: HTTP on hyper and tokio, every client resource bounded.
//! - `verify`: checking one request's signature and body.
//! - `state`: what the workers share.
//! - `site`: what a signature must have been made for.
//! - `log`: the log of accepted receipts.
//! - `read`: the registry's reads (API, page, health, metrics), answered
//!   from [`crate::registry`]'s index of the log.
//! - `keyring`: the senders' (`--trust`) and readers' (`--readers`) keys.
//! - `metrics`: what `/metrics` counts.
//!
//! The trusted public keys are `callback::keys::load_trusted`, shared with
//! `verify --trust`.

mod keyring;
pub mod log;
mod metrics;
mod read;
mod server;
pub mod site;
mod state;
pub mod verify;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{ExitCode, fail, fail_with};
use crate::registry::index::{CatchUp, Index};
use anyhow::Result;
pub use server::{GRACE, MAX_HEADER_BYTES, MAX_HEADERS};
pub use verify::WINDOW_SECS;

/// How to run the receiver, resolved.
#[derive(Debug, Clone)]
pub struct Options {
    /// Address to listen on; port 0 picks a free one.
    pub listen: String,
    /// The URL senders sign for (`--public-url`); `None`: this receiver's
    /// own addresses, any path.
    pub public_url: Option<String>,
    /// Directory of trusted `*.pub` keys.
    pub trust: PathBuf,
    /// Directory of the `*.pub` keys that may read the registry from
    /// another host (`--readers`); `None`: reads from loopback only.
    pub readers: Option<PathBuf>,
    /// Reads from loopback need a signature too (a proxy on the same host).
    pub require_signed_reads: bool,
    /// The log of accepted receipts.
    pub log: PathBuf,
    /// Largest accepted body in bytes.
    pub max_body: usize,
    /// Requests checked and logged at once (threads of the blocking pool).
    pub workers: u16,
    /// Connections held open at once; more wait in the accept backlog.
    pub max_connections: usize,
    /// Time allowed for a request's head, and again for its body.
    pub read_timeout: Duration,
}

/// The default log: `$XDG_DATA_HOME/spawn-elite/received.jsonl`.
pub fn default_log() -> Result<PathBuf> {
    Ok(crate::paths::data_dir()?.join("received.jsonl"))
}

/// A running receiver. Dropping it without [`Receiver::stop`] leaves it
/// running until the process ends.
pub struct Receiver {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    server: JoinHandle<()>,
    keys: usize,
    caught_up: CatchUp,
}

impl Receiver {
    /// Bind, load the trusted keys and the log, and start serving.
    pub fn start(opts: &Options, stop: Arc<AtomicBool>) -> Result<Receiver> {
        let site = site::Site::new(&opts.listen, opts.public_url.as_deref())?;
        let trusted = keyring::KeyRing::load(&opts.trust, "--trust")?;
        let readers = opts
            .readers
            .as_deref()
            .map(|dir| keyring::KeyRing::load(dir, "--readers"))
            .transpose()?;
        let log = log::Log::open(&opts.log)?;
        let (index, caught_up) = Index::open(&opts.log)?;
        let cannot_listen = |e: std::io::Error| {
            let message = format!(
                "cannot listen on {}: {e}; pick another address with --listen",
                opts.listen
            );
            fail_with(ExitCode::Usage, message, e)
        };
        let listener = std::net::TcpListener::bind(&opts.listen).map_err(cannot_listen)?;
        listener.set_nonblocking(true).map_err(cannot_listen)?;
        let addr = listener.local_addr().map_err(cannot_listen)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .max_blocking_threads(usize::from(opts.workers.max(1)))
            .thread_name("receiver")
            .build()
            .map_err(|e| {
                fail(
                    ExitCode::Io,
                    format!("cannot start the receiver's runtime: {e}; check the process limits (ulimit -u)"),
                )
            })?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(cannot_listen)?
        };
        let n_keys = trusted.len();
        let state = Arc::new(state::State {
            trusted,
            readers,
            loopback_reads_open: !opts.require_signed_reads,
            registry: Mutex::new(index),
            metrics: metrics::Metrics::new(),
            nonces: Mutex::new(HashMap::new()),
            log,
            site,
        });
        let limits = server::Limits {
            max_body: opts.max_body,
            max_connections: opts.max_connections.max(1),
            read_timeout: opts.read_timeout,
        };
        let flag = Arc::clone(&stop);
        let server = std::thread::Builder::new()
            .name("receiver".into())
            .spawn(move || {
                runtime.block_on(server::serve(listener, state, limits, flag));
                // A check still writing the log gets a moment to finish;
                // its sender will retry and be de-duplicated if it is cut.
                runtime.shutdown_timeout(Duration::from_millis(500));
            })
            .map_err(|e| {
                fail(
                    ExitCode::Io,
                    format!("cannot start the receiver thread: {e}; check the process limits (ulimit -u)"),
                )
            })?;
        Ok(Receiver {
            addr,
            stop,
            server,
            keys: n_keys,
            caught_up,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What opening the registry's index did: caught up, or rebuilt and why,
    /// and the log lines it skipped.
    pub fn index(&self) -> &CatchUp {
        &self.caught_up
    }

    /// How many trusted keys were loaded at start.
    pub fn keys(&self) -> usize {
        self.keys
    }

    /// Stop accepting, let the requests in hand finish (for up to
    /// [`GRACE`]), then drop the rest.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.server.join();
    }
}
