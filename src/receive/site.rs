//! Where this receiver is reached, and so what a callback's signature must
//! have been made for: the signed `@authority` (the `Host` header) and
//! `@path`. Without `--public-url`, the accepted authorities come from the
//! receiver's own side of each connection (the local address the kernel
//! reports, `localhost` for a loopback one, the host name given to
//! `--listen`), never from what the client sends; any path is accepted.
//! With `--public-url`, its authority is the only one accepted and, if the
//! URL has a path, that path is the only one accepted.

use std::net::{IpAddr, SocketAddr};

use anyhow::Result;
use hyper::Uri;

use crate::error::{ExitCode, fail};

#[derive(Debug, Clone)]
pub struct Site {
    public: Option<Public>,
    /// The host part of `--listen` when it is a name, not an address.
    listen_name: Option<String>,
}

#[derive(Debug, Clone)]
struct Public {
    /// Lowercase `host[:port]`, the scheme's default port left out.
    authority: String,
    /// `authority`, and with the default port spelled out if it has none.
    accepted: Vec<String>,
    /// The one accepted `@path`, if the URL has a path.
    path: Option<String>,
}

impl Site {
    /// From `--listen` (as given) and `--public-url`.
    pub fn new(listen: &str, public_url: Option<&str>) -> Result<Site> {
        let listen_name = listen
            .rsplit_once(':')
            .map(|(host, _)| host.trim_start_matches('[').trim_end_matches(']'))
            .filter(|host| !host.is_empty() && host.parse::<IpAddr>().is_err())
            .map(str::to_ascii_lowercase);
        let public = public_url.map(parse_public_url).transpose()?;
        Ok(Site {
            public,
            listen_name,
        })
    }

    /// The authorities a request arriving on local address `local` may
    /// have been signed for.
    fn authorities(&self, local: SocketAddr) -> Vec<String> {
        match &self.public {
            Some(p) => p.accepted.clone(),
            None => self.own_authorities(local),
        }
    }

    /// The receiver's own addresses (and `--listen`'s name) on `local`'s
    /// port, whatever `--public-url` says.
    fn own_authorities(&self, local: SocketAddr) -> Vec<String> {
        let port = local.port();
        let mut hosts = vec![host_of(local.ip())];
        if let IpAddr::V6(v6) = local.ip()
            && let Some(v4) = v6.to_ipv4_mapped()
        {
            hosts.push(v4.to_string());
        }
        if local.ip().is_loopback() || hosts.iter().any(|h| h.starts_with("127.")) {
            hosts.push("localhost".to_owned());
        }
        if let Some(name) = &self.listen_name {
            hosts.push(name.clone());
        }
        let mut out = Vec::new();
        for h in hosts {
            if port == 80 {
                out.push(h.clone());
            }
            out.push(format!("{h}:{port}"));
        }
        out
    }

    /// Whether a request signed for `authority` and `path` (both verified
    /// as signed) was made for this receiver; otherwise a one-line reason.
    pub fn check(&self, authority: &str, path: &str, local: SocketAddr) -> Result<(), String> {
        self.check_authority(authority, local)?;
        if let Some(Public {
            path: Some(want), ..
        }) = &self.public
            && path != want
        {
            return Err(format!(
                "signed for path {path}, but this receiver's path is {want} (--public-url); send it to the URL it was signed for"
            ));
        }
        Ok(())
    }

    /// Whether a read of the registry signed for `authority` was made for
    /// this receiver: its public name (`--public-url`) or, as reads also
    /// come from operators on the host, its own addresses; any path.
    pub fn check_read_authority(&self, authority: &str, local: SocketAddr) -> Result<(), String> {
        if self
            .own_authorities(local)
            .contains(&authority.to_ascii_lowercase())
        {
            return Ok(());
        }
        self.check_authority(authority, local)
    }

    /// Whether a request signed for `authority` was made for this
    /// receiver.
    pub fn check_authority(&self, authority: &str, local: SocketAddr) -> Result<(), String> {
        let authority = authority.to_ascii_lowercase();
        let ours = self.authorities(local);
        if !ours.contains(&authority) {
            return Err(match &self.public {
                Some(p) => format!(
                    "signed for host {authority}, but this receiver is {} (--public-url); send it to the receiver it was signed for",
                    p.authority
                ),
                None => format!(
                    "signed for host {authority}, but this receiver is {}; send it to the receiver it was signed for, or start this one with --public-url if it is reached by that name",
                    ours.last().map(String::as_str).unwrap_or("?")
                ),
            });
        }
        Ok(())
    }
}

fn host_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// `http(s)://HOST[:PORT][/PATH]`; nothing else (no user, query or
/// fragment) is meaningful for matching a signature.
fn parse_public_url(url: &str) -> Result<Public> {
    let usage = |why: &str| {
        fail(
            ExitCode::Usage,
            format!(
                "--public-url {url:?} {why}; give the URL senders use, as http(s)://HOST[:PORT][/PATH]"
            ),
        )
    };
    let uri: Uri = url.parse().map_err(|_| usage("is not a URL"))?;
    let default_port = match uri.scheme_str() {
        Some("http") => 80,
        Some("https") => 443,
        _ => return Err(usage("does not start with http:// or https://")),
    };
    let Some(authority) = uri.authority() else {
        return Err(usage("has no host"));
    };
    if authority.as_str().contains('@') {
        return Err(usage("has a user name"));
    }
    if uri.query().is_some() || url.contains('#') {
        return Err(usage("has a query or fragment"));
    }
    let host = authority.host().to_ascii_lowercase();
    let (authority, accepted) = match authority.port_u16() {
        Some(p) if p != default_port => {
            let a = format!("{host}:{p}");
            (a.clone(), vec![a])
        }
        _ => (
            host.clone(),
            vec![host.clone(), format!("{host}:{default_port}")],
        ),
    };
    // `Uri` reports `/` for a URL without a path: look at what was given.
    let after_scheme = url.split_once("://").map_or("", |(_, rest)| rest);
    let path = after_scheme.contains('/').then(|| uri.path().to_owned());
    Ok(Public {
        authority,
        accepted,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    #[test]
    fn default_accepts_only_the_receivers_own_names() {
        let site = Site::new("127.0.0.1:0", None).expect("site");
        let local = addr("127.0.0.1:8787");
        assert!(site.check("127.0.0.1:8787", "/any", local).is_ok());
        assert!(site.check("LOCALHOST:8787", "/", local).is_ok());
        assert!(site.check("127.0.0.1:8788", "/", local).is_err());
        assert!(site.check("registry.example", "/", local).is_err());
        let named = Site::new("box.internal:8787", None).expect("site");
        assert!(
            named
                .check("box.internal:8787", "/", addr("10.0.0.2:8787"))
                .is_ok()
        );
        assert!(
            named
                .check("10.0.0.2:8787", "/", addr("10.0.0.2:8787"))
                .is_ok()
        );
        assert!(
            named
                .check("localhost:8787", "/", addr("10.0.0.2:8787"))
                .is_err()
        );
        let v6 = Site::new("[::]:8787", None).expect("site");
        assert!(v6.check("[::1]:8787", "/", addr("[::1]:8787")).is_ok());
        assert!(
            v6.check("127.0.0.1:8787", "/", addr("[::ffff:127.0.0.1]:8787"))
                .is_ok()
        );
    }

    #[test]
    fn public_url_pins_the_authority_and_its_path() {
        let local = addr("127.0.0.1:8787");
        let site =
            Site::new("127.0.0.1:8787", Some("https://Reg.Example/hooks/spawn")).expect("site");
        assert!(site.check("reg.example", "/hooks/spawn", local).is_ok());
        assert!(site.check("reg.example:443", "/hooks/spawn", local).is_ok());
        assert!(site.check("reg.example", "/hooks/other", local).is_err());
        assert!(site.check("127.0.0.1:8787", "/hooks/spawn", local).is_err());
        let any_path = Site::new("127.0.0.1:8787", Some("http://reg.example:8080")).expect("site");
        assert!(any_path.check("reg.example:8080", "/x", local).is_ok());
        assert!(any_path.check("reg.example", "/x", local).is_err());
        for bad in [
            "ftp://x",
            "reg.example/x",
            "http://u@x/",
            "http://x/?q=1",
            "http:///",
        ] {
            assert!(Site::new("127.0.0.1:0", Some(bad)).is_err(), "{bad}");
        }
    }
}
