//! Sending a prepared callback: one attempt, and the retries around it
//! (exponential backoff with jitter, `Retry-After`, Ctrl-C).
//!
//! Each attempt runs on its own thread while this one watches the interrupt
//! flag: a blocked connect or read cannot hold up Ctrl-C, SIGTERM or SIGHUP
//! for longer than [`POLL`].

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use serde::Serialize;

use super::options::{DeliveryOptions, RetryOptions};
use super::request::{Prepared, random_bytes, signed_request, unix_now};
use crate::interrupt;

/// The receiver took the callback (2xx).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivered {
    pub status: u16,
    pub attempts: u32,
    /// Delivered, but something around it went wrong (the outbox could not
    /// be written first, or the entry not removed after).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// The callback was not delivered, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undelivered {
    pub reason: String,
    pub attempts: u32,
    /// Retrying will not help (a 4xx, a TLS error, a key that cannot be
    /// loaded): the receiver or the setup must change first.
    pub permanent: bool,
    /// Stopped by Ctrl-C (or SIGTERM, SIGHUP), during an attempt or a wait.
    pub interrupted: bool,
}

impl Undelivered {
    /// A failure no retry can fix, before any attempt was made.
    pub(super) fn permanent(reason: String) -> Undelivered {
        Undelivered {
            reason,
            attempts: 0,
            permanent: true,
            interrupted: false,
        }
    }
}

/// How often the interrupt flag is checked while an attempt is in flight.
const POLL: Duration = Duration::from_millis(50);

enum Attempt {
    Delivered(u16),
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    Fail(String),
    Interrupted,
}

/// One attempt on a worker thread; returns `Interrupted` within [`POLL`] of
/// an interrupt, leaving the thread to its blocked I/O (the process is about
/// to exit). Without a thread (none can be started) it runs here.
fn attempt_watched(p: &Prepared, body: &Arc<[u8]>, merkle_root: &str) -> Attempt {
    if interrupt::requested() {
        return Attempt::Interrupted;
    }
    let (tx, rx) = mpsc::channel();
    let (p2, body2, root2) = (p.clone(), Arc::clone(body), merkle_root.to_owned());
    let started = std::thread::Builder::new()
        .name("callback-attempt".into())
        .spawn(move || {
            let _ = tx.send(attempt_once(&p2, &body2, &root2));
        });
    if started.is_err() {
        return attempt_once(p, body, merkle_root);
    }
    loop {
        match rx.recv_timeout(POLL) {
            Ok(outcome) => return outcome,
            Err(RecvTimeoutError::Timeout) if interrupt::requested() => {
                return Attempt::Interrupted;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Attempt::Retry {
                    reason: "the attempt ended without an outcome (an internal error)".into(),
                    retry_after: None,
                };
            }
        }
    }
}

fn attempt_once(p: &Prepared, body: &[u8], merkle_root: &str) -> Attempt {
    let req = match signed_request(p, body, merkle_root) {
        Ok(r) => r,
        Err(e) => return Attempt::Fail(e.to_string()),
    };
    let mut builder = p.agent.post(&p.target.url);
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    match builder.send(body) {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            if (200..300).contains(&status) {
                return Attempt::Delivered(status);
            }
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            let text = resp
                .body_mut()
                .with_config()
                .limit(512)
                .read_to_string()
                .unwrap_or_default();
            let text = text.trim();
            let reason = if text.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {}", text.lines().next().unwrap_or(""))
            };
            if status == 408 || status == 429 || (500..600).contains(&status) {
                Attempt::Retry {
                    reason,
                    retry_after,
                }
            } else {
                Attempt::Fail(reason)
            }
        }
        Err(e) => {
            let reason = describe(&e);
            match e {
                ureq::Error::BadUri(_)
                | ureq::Error::Tls(_)
                | ureq::Error::Pem(_)
                | ureq::Error::Rustls(_)
                | ureq::Error::InvalidProxyUrl
                | ureq::Error::RedirectFailed
                | ureq::Error::TooManyRedirects => Attempt::Fail(reason),
                _ => Attempt::Retry {
                    reason,
                    retry_after: None,
                },
            }
        }
    }
}

fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::ConnectionFailed => "connection failed".to_owned(),
        ureq::Error::HostNotFound => "host not found".to_owned(),
        ureq::Error::Io(io) => format!("network error: {io}"),
        other => other.to_string(),
    }
}

/// `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::parse(v).ok()?.timestamp().as_second();
    Some(Duration::from_secs(
        when.saturating_sub(unix_now()).max(0) as u64
    ))
}

fn backoff_for(d: &RetryOptions, retry: u32) -> Duration {
    let base = d
        .backoff
        .saturating_mul(1u32 << retry.min(20))
        .min(d.max_backoff);
    // Equal jitter: half fixed, half random.
    let half = base / 2;
    let frac = random_bytes::<8>()
        .map(|b| u64::from_le_bytes(b) as f64 / u64::MAX as f64)
        .unwrap_or(0.5);
    half + half.mul_f64(frac)
}

pub(super) fn send_with_retries(
    p: &Prepared,
    body: &[u8],
    merkle_root: &str,
    d: &DeliveryOptions,
) -> Result<Delivered, Undelivered> {
    let r = &d.retry;
    let body: Arc<[u8]> = Arc::from(body);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match attempt_watched(p, &body, merkle_root) {
            Attempt::Interrupted => {
                return Err(Undelivered {
                    reason: format!("interrupted during attempt {attempt}"),
                    attempts: attempt,
                    permanent: false,
                    interrupted: true,
                });
            }
            Attempt::Delivered(status) => {
                return Ok(Delivered {
                    status,
                    attempts: attempt,
                    warning: None,
                });
            }
            Attempt::Fail(reason) => {
                return Err(Undelivered {
                    reason,
                    attempts: attempt,
                    permanent: true,
                    interrupted: false,
                });
            }
            Attempt::Retry {
                reason,
                retry_after,
            } => {
                if attempt >= r.attempts {
                    return Err(Undelivered {
                        reason: format!(
                            "{reason}; gave up after {attempt} attempt{}",
                            if attempt == 1 { "" } else { "s" }
                        ),
                        attempts: attempt,
                        permanent: false,
                        interrupted: false,
                    });
                }
                let wait = match retry_after {
                    Some(ra) if ra > r.max_backoff => {
                        return Err(Undelivered {
                            reason: format!(
                                "{reason}; server asked to retry after {}s, longer than --max-backoff",
                                ra.as_secs()
                            ),
                            attempts: attempt,
                            permanent: false,
                            interrupted: false,
                        });
                    }
                    Some(ra) => ra,
                    None => backoff_for(r, attempt - 1),
                };
                if !d.quiet {
                    crate::output::progress(&format!(
                        "callback attempt {attempt}/{} to {} failed: {reason}; retrying in {} ms",
                        r.attempts,
                        p.target.url,
                        wait.as_millis()
                    ));
                }
                if !interrupt::sleep(wait) {
                    return Err(Undelivered {
                        reason: format!("{reason}; interrupted before attempt {}", attempt + 1),
                        attempts: attempt,
                        permanent: false,
                        interrupted: true,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Tue, 20 Apr 2021 02:07:55 GMT"),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let d = RetryOptions {
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..RetryOptions::default()
        };
        for retry in 0..8 {
            let full =
                Duration::from_millis(100 * (1u64 << retry)).min(Duration::from_millis(1000));
            let w = backoff_for(&d, retry);
            assert!(
                w >= full / 2 && w <= full,
                "retry {retry}: {w:?} not in [{:?}, {full:?}]",
                full / 2
            );
        }
    }
}
