//! The options of signed callbacks: keys, delivery (timeouts, retries, TLS),
//! `callback send` and `flush`, and the receiver.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

/// `spawn-elite keygen`: create an Ed25519 key pair for signed callbacks.
#[derive(Args, Debug, Clone)]
pub struct KeygenArgs {
    /// Where to write the private key (PKCS#8 PEM, mode 0600); the public
    /// key goes to PATH.pub. Default: $XDG_DATA_HOME/spawn-elite/keys/callback.pem
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// `spawn-elite receive`: verify signed callbacks and log the receipts.
#[derive(Args, Debug, Clone)]
pub struct ReceiveArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8787")]
    pub listen: String,
    /// Directory of trusted public keys (*.pub, SPKI PEM), looked up by key id
    #[arg(long, value_name = "DIR")]
    pub trust: PathBuf,
    /// Directory of public keys (*.pub) that may read the registry (API and
    /// page) from another host, with signed requests [default: reads from
    /// loopback only]
    #[arg(long, value_name = "DIR")]
    pub readers: Option<PathBuf>,
    /// Ask for a reader's signature from loopback too: for a receiver behind
    /// a proxy on the same host, where every read arrives from loopback
    #[arg(long, requires = "readers")]
    pub require_signed_reads: bool,
    /// Hash-chained JSONL log of accepted receipts
    /// (default: $XDG_DATA_HOME/spawn-elite/received.jsonl)
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// The URL senders sign for, when it is not the listen address (e.g. behind
    /// a proxy): its host[:port] must be the signed authority and, if it has a
    /// path, the signed path [default: this receiver's own addresses, any path]
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Largest accepted body in bytes (413 above it)
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub max_body: usize,
    /// Requests checked and logged at once (signature checks, log writes)
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,
    /// Connections held open at once; more wait until one closes
    #[arg(long, value_name = "N", default_value_t = 512, value_parser = clap::value_parser!(u16).range(1..=16384))]
    pub max_connections: u16,
    /// Seconds a client has to send a request's headers, and again its body
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=300))]
    pub read_timeout: u16,
    /// How the operational log on stderr is written: lines for people, or
    /// one JSON object a line for log collectors
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
}

/// The receiver's log format (`--log-format`).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

/// Spawn and update flags for signing and the callback; both commands
/// flatten this in.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Signing and callback")]
pub struct CallbackArgs {
    /// Sign the tree: an in-toto attestation in a DSSE envelope, written to
    /// .spawn-elite/attestation.intoto.json and committed (docs/PROVENANCE.md) [env: SPAWN_ELITE_SIGN=1]
    // SPAWN_ELITE_SIGN is read by the command layer, not by clap (see RetryArgs).
    #[arg(long)]
    pub sign: bool,
    /// After a successful spawn, POST the signed receipt to URL
    #[arg(long = "callback", value_name = "URL")]
    pub callback: Option<String>,
    /// Ed25519 private key (PKCS#8 PEM from `spawn-elite keygen`) that signs the attestation and the callback
    /// [default: $XDG_DATA_HOME/spawn-elite/keys/callback.pem]
    #[arg(long = "key", value_name = "PATH")]
    pub key: Option<PathBuf>,
    /// Key id to put in the signature (default: the key's fingerprint)
    #[arg(long = "key-id", value_name = "ID", requires = "callback")]
    pub key_id: Option<String>,
    /// With --sign: an RFC 3161 timestamp of the attestation from the TSA at URL, committed with it (queued in the outbox if the TSA cannot be reached) [env: SPAWN_ELITE_TSA]
    // SPAWN_ELITE_TSA is read by the command layer, as SPAWN_ELITE_SIGN is.
    #[arg(long = "tsa", value_name = "URL")]
    pub tsa: Option<String>,
    #[command(flatten)]
    pub delivery: DeliveryArgs,
}

/// Timeout and retry flags, as given. The environment overrides
/// (`SPAWN_ELITE_CALLBACK_*`) are read when the flags are resolved, not by
/// clap: clap counts a set variable as a given flag and prints it in every
/// usage line. `callback flush` takes only these; everything else comes
/// from the queued entry.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Delivery")]
pub struct RetryArgs {
    /// Time allowed to connect, per attempt [default: 5s] [env: SPAWN_ELITE_CALLBACK_CONNECT_TIMEOUT]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub connect_timeout: Option<Duration>,
    /// Time allowed for a whole attempt, connect to response [default: 30s] [env: SPAWN_ELITE_CALLBACK_TIMEOUT]
    #[arg(long = "callback-timeout", value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Attempts before the callback is queued in the outbox (1-100) [default: 4] [env: SPAWN_ELITE_CALLBACK_ATTEMPTS]
    #[arg(long, value_name = "N", value_parser = parse_attempts)]
    pub attempts: Option<u32>,
    /// Wait before the first retry; doubles each retry, with jitter [default: 500ms] [env: SPAWN_ELITE_CALLBACK_BACKOFF]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub backoff: Option<Duration>,
    /// Longest wait between attempts; a longer Retry-After queues the callback instead [default: 60s] [env: SPAWN_ELITE_CALLBACK_MAX_BACKOFF]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_backoff: Option<Duration>,
}

/// How hard to try (timeouts, retries) and whom to trust (TLS).
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Delivery")]
pub struct DeliveryArgs {
    #[command(flatten)]
    pub retry: RetryArgs,
    /// PEM file of CA certificates to trust instead of the platform's [env: SSL_CERT_FILE]
    // SSL_CERT_FILE is read by the callback engine, not by clap: clap would
    // count a set variable as a given flag and print it in usage lines.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Allow plain http:// to hosts other than loopback (the receipt and signature travel in clear)
    #[arg(long)]
    pub allow_insecure_http: bool,
}

/// `spawn-elite callback …`
// Parsed once per run: boxing `Send` would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug, Clone)]
pub enum CallbackCommand {
    /// Send one receipt by hand (queued in the outbox if it cannot be delivered)
    Send(SendArgs),
    /// Resend every callback queued in the outbox; delivered ones are removed
    Flush(FlushArgs),
    /// Show what is queued in the outbox: file, URL, root, attempts, last error
    List,
    /// Remove one entry from the outbox (it is not sent); says where its receipt is
    Drop {
        /// The entry: a path or file name shown by `spawn-elite callback list`
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Args, Debug, Clone)]
pub struct SendArgs {
    /// Receipt file (.spawn-elite/receipt.json, or from `spawn-elite receipt`)
    #[arg(long, value_name = "FILE")]
    pub receipt: PathBuf,
    /// Where to POST it
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// Ed25519 private key (PKCS#8 PEM)
    #[arg(long, value_name = "PATH")]
    pub key: PathBuf,
    /// Key id to put in the signature (default: the key's fingerprint)
    #[arg(long = "key-id", value_name = "ID")]
    pub key_id: Option<String>,
    /// Print the exact request and signature base instead of sending
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub delivery: DeliveryArgs,
}

/// The URL, key, key id, CA file and `--allow-insecure-http` of each entry
/// are those it was queued with; only timeouts and retries are set here.
#[derive(Args, Debug, Clone)]
pub struct FlushArgs {
    #[command(flatten)]
    pub retry: RetryArgs,
}

/// `10s`, `500ms`, `2m`, or a bare number of seconds (may be fractional).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration; write e.g. 10s, 500ms or 2m"))?;
    if !v.is_finite() || v < 0.0 || v * scale > 86_400.0 {
        return Err(format!("{s:?} is out of range (0 to 24h)"));
    }
    Ok(Duration::from_secs_f64(v * scale))
}

/// A number of callback attempts, 1 to 100.
pub fn parse_attempts(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if (1..=100).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not a number of attempts from 1 to 100")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_accept_units_and_reject_nonsense() {
        use super::parse_duration;
        use std::time::Duration;
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("2d").is_err());
    }
}
