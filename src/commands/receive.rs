//! `spawn-elite receive`: run the receiver until SIGINT or SIGTERM.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::cli::{LogFormat, ReceiveArgs};
use crate::error::ExitCode;
use crate::receive::{self, Receiver};

pub fn run(args: &ReceiveArgs) -> Result<ExitCode> {
    init_log(args.log_format);
    let opts = receive::Options {
        log: match &args.log {
            Some(p) => p.clone(),
            None => receive::default_log()?,
        },
        listen: args.listen.clone(),
        public_url: args.public_url.clone(),
        trust: args.trust.clone(),
        readers: args.readers.clone(),
        require_signed_reads: args.require_signed_reads,
        max_body: args.max_body,
        workers: args.workers,
        max_connections: usize::from(args.max_connections),
        read_timeout: Duration::from_secs(u64::from(args.read_timeout)),
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("cannot install the signal handler")?;
    }
    let r = Receiver::start(&opts, Arc::clone(&stop))?;
    let index = r.index();
    if let Some(why) = &index.rebuilt {
        tracing::warn!("{why}");
    }
    for (seq, why) in &index.skipped {
        tracing::warn!(seq, "log line {seq} is not in the registry index: {why}");
    }
    if r.keys() == 0 {
        tracing::warn!(
            "trust directory {} holds no *.pub keys, so every callback is refused (401) until one is put there",
            opts.trust.display()
        );
    }
    crate::output::stdout_line(&format!(
        "listening on http://{} ({} trusted key{})",
        r.addr(),
        r.keys(),
        if r.keys() == 1 { "" } else { "s" }
    ))?;
    let _ = std::io::stdout().flush();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    r.stop();
    tracing::info!("receiver stopped");
    Ok(ExitCode::Success)
}

/// The receiver's operational log: `tracing` events on stderr, as lines
/// for people or as JSON objects for a collector. The address it listens
/// on stays one plain line on stdout, for scripts.
fn init_log(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Human => builder.without_time().try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
