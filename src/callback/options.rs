//! What one callback needs, resolved: where to send it (and whether that URL
//! may be used), the key, timeouts and retries, and whom to trust over TLS.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Result;
use ed25519_dalek::SigningKey;
use ureq::http::Uri;

use super::keys;
use crate::error::{ExitCode, fail};

/// Timeouts and retries in effect: flags, environment and defaults resolved.
#[derive(Debug, Clone)]
pub struct RetryOptions {
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryOptions {
    fn default() -> Self {
        RetryOptions {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            attempts: 4,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// How hard to try (timeouts, retries) and whom to trust (TLS).
#[derive(Debug, Clone, Default)]
pub struct DeliveryOptions {
    pub retry: RetryOptions,
    /// `--ca-cert`: CA certificates to trust instead of the platform's.
    pub ca_cert: Option<PathBuf>,
    /// Allow plain http:// to hosts other than loopback.
    pub allow_insecure_http: bool,
    /// Print no retry notices (`-q`); the final outcome is still reported.
    pub quiet: bool,
}

impl DeliveryOptions {
    /// The CA file to trust: `--ca-cert`, else a non-empty `SSL_CERT_FILE`.
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.ca_cert.clone().or_else(ssl_cert_file)
    }
}

fn ssl_cert_file() -> Option<PathBuf> {
    std::env::var_os("SSL_CERT_FILE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Everything needed to deliver one callback.
#[derive(Debug, Clone)]
pub struct CallbackOptions {
    pub url: String,
    pub key_path: PathBuf,
    /// Overrides the key's fingerprint as `keyid`.
    pub key_id: Option<String>,
    pub delivery: DeliveryOptions,
    /// The key, once loaded: `check` and the delivery after it read (and
    /// warn about) the key file once.
    key: OnceLock<SigningKey>,
}

impl CallbackOptions {
    pub fn new(
        url: String,
        key_path: PathBuf,
        key_id: Option<String>,
        delivery: DeliveryOptions,
    ) -> Self {
        CallbackOptions {
            url,
            key_path,
            key_id,
            delivery,
            key: OnceLock::new(),
        }
    }

    /// Check the URL, load the key and CA file. Errors here are the user's
    /// to fix (key errors exit with code 9); nothing is queued.
    pub fn check(&self) -> Result<()> {
        self.prepare().map(|_| ())
    }

    pub(super) fn signing_key(&self) -> Result<SigningKey> {
        if let Some(k) = self.key.get() {
            return Ok(k.clone());
        }
        let k = keys::load_signing_key(&self.key_path)?;
        Ok(self.key.get_or_init(|| k).clone())
    }
}

/// A callback (or registry) URL that passed the policy: https, or http to
/// loopback (or anywhere with `--allow-insecure-http`); no credentials.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    /// Lowercase host, with the port unless it is the scheme's default.
    pub authority: String,
    pub path: String,
    pub query: Option<String>,
}

impl Target {
    pub fn parse(url: &str, allow_insecure_http: bool) -> Result<Target> {
        Self::parse_for("callback", url, allow_insecure_http)
    }

    /// [`Target::parse`] for a URL of `what` (`callback`, `registry`): the
    /// word the errors use.
    pub fn parse_for(what: &str, url: &str, allow_insecure_http: bool) -> Result<Target> {
        let uri: Uri = url.parse().map_err(|e| {
            fail(
                ExitCode::Usage,
                format!("{what} URL {url:?} is not a valid URL ({e}); use https://host/path"),
            )
        })?;
        let scheme = uri.scheme_str().unwrap_or("");
        let auth = uri.authority().ok_or_else(|| {
            fail(
                ExitCode::Usage,
                format!("{what} URL {url:?} has no host; use https://host/path"),
            )
        })?;
        if auth.as_str().contains('@') {
            return Err(fail(
                ExitCode::Usage,
                format!("{what} URL {url:?} carries credentials; remove the user:password@ part"),
            ));
        }
        let host = auth.host().to_ascii_lowercase();
        let default_port = match scheme {
            "https" => 443,
            "http" => 80,
            _ => {
                return Err(fail(
                    ExitCode::Usage,
                    format!(
                        "{what} URL {url:?} must start with https:// (or http:// for loopback)"
                    ),
                ));
            }
        };
        if scheme == "http" && !allow_insecure_http && !is_loopback(&host) {
            return Err(fail(
                ExitCode::Usage,
                format!(
                    "refusing to send a {what} request over plain http:// to {host}: use https://, or pass --allow-insecure-http"
                ),
            ));
        }
        let authority = match auth.port_u16() {
            Some(p) if p != default_port => format!("{host}:{p}"),
            _ => host,
        };
        let path = if uri.path().is_empty() {
            "/".to_owned()
        } else {
            uri.path().to_owned()
        };
        Ok(Target {
            url: url.to_owned(),
            authority,
            path,
            query: uri.query().map(str::to_owned),
        })
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_normalise_the_authority_and_refuse_remote_plain_http() {
        let t = Target::parse("https://Registry.Example:443/a/b?x=1", false).expect("ok");
        assert_eq!(t.authority, "registry.example");
        assert_eq!(t.path, "/a/b");
        assert_eq!(t.query.as_deref(), Some("x=1"));
        let t = Target::parse("http://127.0.0.1:8080", false).expect("loopback");
        assert_eq!(
            (t.authority.as_str(), t.path.as_str()),
            ("127.0.0.1:8080", "/")
        );
        assert!(Target::parse("http://[::1]:9/x", false).is_ok());
        assert!(Target::parse("http://localhost/x", false).is_ok());
        assert!(Target::parse("http://registry.example/x", false).is_err());
        assert!(Target::parse("http://registry.example/x", true).is_ok());
        assert!(Target::parse("https://user:pw@registry.example/x", false).is_err());
        assert!(Target::parse("ftp://registry.example/x", false).is_err());
    }
}
