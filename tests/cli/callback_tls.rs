//! HTTPS delivery on 127.0.0.1: a callback to a server whose certificate
//! comes from a private CA is delivered with `--ca-cert` (or SSL_CERT_FILE)
//! and refused, then queued, without it.

use std::io::Write as _;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::support::{Outcome, Sandbox, Seen, send_args};

struct TlsServer {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A private CA (PEM) and a TLS server for 127.0.0.1 with a certificate it
/// issued, answering 204 to `connections` connections, then stopping.
fn tls_server(connections: usize) -> (String, TlsServer) {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("leaf params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf cert");

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .expect("server config");
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    let thread = std::thread::spawn(move || {
        for _ in 0..connections {
            let Ok((tcp, _)) = listener.accept() else {
                return;
            };
            let _ = tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)));
            let Ok(conn) = rustls::ServerConnection::new(Arc::clone(&config)) else {
                return;
            };
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            if let Some((head, body)) = crate::support::read_request(&mut tls) {
                seen2.lock().expect("lock").push(Seen { head, body });
                let _ = tls.write_all(
                    b"HTTP/1.1 204 No Content\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                );
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        }
    });
    (
        ca_cert.pem(),
        TlsServer {
            port,
            seen,
            thread: Some(thread),
        },
    )
}

impl TlsServer {
    fn finish(mut self) -> Vec<Seen> {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.seen.lock().expect("lock").clone()
    }
}

#[test]
fn https_with_a_private_ca_is_delivered_and_without_it_is_queued() {
    let sb = Sandbox::new();
    let (key, _) = sb.keygen("k");
    let receipt = sb.write_receipt("receipt.json", "tls-root");
    let key = key.to_str().expect("utf8").to_owned();
    let receipt = receipt.to_str().expect("utf8").to_owned();

    // Trusted through --ca-cert: delivered, signed for the https authority.
    let (ca_pem, server) = tls_server(1);
    let ca = sb.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).expect("write ca");
    let url = format!("https://127.0.0.1:{}/hooks/spawn", server.port);
    let out = sb.send(
        &receipt,
        &url,
        &key,
        &["--ca-cert", ca.to_str().expect("utf8")],
    );
    assert!(out.success(), "{}", out.stderr);
    assert!(out.stdout.contains("HTTP 204"), "{}", out.stdout);
    let seen = server.finish();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].head.starts_with("POST /hooks/spawn HTTP/1.1\r\n"));
    assert!(
        seen[0]
            .header("signature-input")
            .is_some_and(|v| v.starts_with("spawn=(\"@method\" \"@authority\"")),
        "{}",
        seen[0].head
    );

    // The same through SSL_CERT_FILE.
    let (ca_pem, server) = tls_server(1);
    std::fs::write(&ca, ca_pem).expect("write ca");
    let url = format!("https://127.0.0.1:{}/hooks/spawn", server.port);
    let out = Outcome::of(
        sb.cmd()
            .env("SSL_CERT_FILE", &ca)
            .args(send_args(&receipt, &url, &key)),
    );
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(server.finish().len(), 1);

    // Not trusted (platform roots only): nothing is sent, the receipt is queued.
    let (_, server) = tls_server(1);
    let url = format!("https://127.0.0.1:{}/hooks/spawn", server.port);
    let out = sb.send(&receipt, &url, &key, &["--attempts", "1"]);
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(
        out.stderr.to_lowercase().contains("certificate"),
        "{}",
        out.stderr
    );
    assert!(server.finish().is_empty(), "no request got through");
    assert_eq!(sb.outbox_files().len(), 1);
}
