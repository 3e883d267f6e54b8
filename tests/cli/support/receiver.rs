//! The real `spawn-elite receive`, started and stopped per test, and
//! requests signed by hand to send it, tampered with or not. It listens on
//! 127.0.0.1 only, and every wait is bounded.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::DecodePrivateKey;

use super::Sandbox;
use super::httpsig;

impl Sandbox {
    /// The receiver's `--log`.
    pub fn log(&self) -> PathBuf {
        self.path().join("received.jsonl")
    }

    pub fn log_lines(&self) -> Vec<serde_json::Value> {
        match std::fs::read_to_string(self.log()) {
            Ok(s) => s
                .lines()
                .map(|l| serde_json::from_str(l).expect("log line is JSON"))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Start `spawn-elite receive` on `listen` (port 0: any free port).
    pub fn receiver(&self, listen: &str) -> ReceiverProc {
        self.receiver_with(listen, &[])
    }

    pub fn receiver_with(&self, listen: &str, extra: &[&str]) -> ReceiverProc {
        self.receiver_of(Path::new(env!("CARGO_BIN_EXE_spawn-elite")), listen, extra)
    }

    /// [`Sandbox::receiver_with`] running the binary at `bin` (a baseline).
    pub fn receiver_of(&self, bin: &Path, listen: &str, extra: &[&str]) -> ReceiverProc {
        // stderr (one line per request) goes to a file: an unread pipe
        // would fill up and block the receiver.
        let err_path = self.path().join(format!("receiver-{}.err", free_port()));
        let err_file = std::fs::File::create(&err_path).expect("stderr file");
        let mut child = self
            .process_of(bin)
            .args([
                "receive",
                "--listen",
                listen,
                "--trust",
                self.trust().to_str().expect("utf8"),
                "--log",
                self.log().to_str().expect("utf8"),
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(err_file)
            .spawn()
            .expect("start receiver");
        let stdout = child.stdout.take().expect("stdout");
        let mut first = String::new();
        BufReader::new(stdout)
            .read_line(&mut first)
            .expect("read receiver banner");
        let addr = first
            .strip_prefix("listening on http://")
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_else(|| {
                let _ = child.kill();
                let _ = child.wait();
                let err = std::fs::read_to_string(&err_path).unwrap_or_default();
                panic!("receiver did not start: {first:?} {err}")
            })
            .parse()
            .expect("address");
        ReceiverProc {
            child,
            addr,
            err_path,
        }
    }
}

/// A running `spawn-elite receive`; stopped with SIGTERM on drop.
pub struct ReceiverProc {
    child: Child,
    pub addr: SocketAddr,
    err_path: PathBuf,
}

impl ReceiverProc {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The receiver's process id (for /proc and signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then wait (bounded) for a clean exit; returns its stderr.
    pub fn stop(mut self) -> (bool, String) {
        let clean = terminate(&mut self.child);
        let err = std::fs::read_to_string(&self.err_path).unwrap_or_default();
        (clean, err)
    }
}

impl Drop for ReceiverProc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            terminate(&mut self.child);
        }
    }
}

fn terminate(child: &mut Child) -> bool {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

// ------------------------------------------------------------ hand-made requests

pub fn load_key(path: &Path) -> SigningKey {
    let pem = std::fs::read_to_string(path).expect("read key");
    SigningKey::from_pkcs8_pem(&pem).expect("parse key")
}

/// A signed callback request built by hand, to tamper with before sending.
#[derive(Clone, Debug)]
pub struct HandRequest {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// Sign like spawn-elite does, with a chosen `created` and nonce.
#[allow(clippy::too_many_arguments)]
pub fn hand_signed(
    addr: SocketAddr,
    path: &str,
    body: &[u8],
    merkle_root: &str,
    key: &SigningKey,
    keyid: &str,
    created: i64,
    nonce: &str,
) -> HandRequest {
    let params = httpsig::SignatureParams::spawn(created, nonce.into(), keyid.into(), false);
    sign_request(
        key,
        &addr.to_string(),
        path,
        "application/json",
        body.to_vec(),
        merkle_root,
        &params,
    )
}

/// A POST of `body` to `path`, signed with `params` for `authority` (which
/// is also its Host), sent as `content_type` with `idempotency_key`.
pub fn sign_request(
    key: &SigningKey,
    authority: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
    idempotency_key: &str,
    params: &httpsig::SignatureParams,
) -> HandRequest {
    let headers = vec![
        ("Host".to_owned(), authority.to_owned()),
        ("Content-Type".to_owned(), content_type.to_owned()),
        ("Content-Digest".to_owned(), httpsig::content_digest(&body)),
        ("Idempotency-Key".to_owned(), idempotency_key.to_owned()),
    ];
    let parts = httpsig::RequestParts {
        method: "POST".into(),
        authority: authority.to_owned(),
        path: path.into(),
        query: None,
        headers: headers.clone(),
    };
    let signed = httpsig::sign(&parts, params, key, httpsig::LABEL).expect("sign");
    let mut headers = headers;
    headers.push(("Signature-Input".into(), signed.signature_input));
    headers.push(("Signature".into(), signed.signature));
    HandRequest {
        path: path.into(),
        headers,
        body,
    }
}

/// An HTTP answer as text: (status, head, body). Status 0 if there is
/// none; without a blank line, all of it is the head.
pub fn parse_answer(answer: &[u8]) -> (u16, String, String) {
    let text = String::from_utf8_lossy(answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .map(|(h, b)| (h.to_owned(), b.to_owned()))
        .unwrap_or((text.clone(), String::new()));
    (status, head, body)
}

impl HandRequest {
    pub fn set_header(&mut self, name: &str, value: &str) {
        for (k, v) in &mut self.headers {
            if k.eq_ignore_ascii_case(name) {
                *v = value.to_owned();
            }
        }
    }

    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    }

    /// The request as it goes on the wire, with `Connection: close`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!("POST {} HTTP/1.1\r\n", self.path);
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.body.len()
        ));
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }

    /// Send over a fresh connection; returns (status, body).
    pub fn send(&self, addr: SocketAddr) -> (u16, String) {
        let mut conn = TcpStream::connect(addr).expect("connect");
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        conn.write_all(&self.to_bytes()).expect("write request");
        let mut answer = Vec::new();
        let _ = conn.read_to_end(&mut answer);
        let (status, _, body) = parse_answer(&answer);
        (status, body)
    }
}

/// `GET path` over a fresh loopback connection (HTTP/1.1, close); returns
/// (status, head, body).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut conn = TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    conn.write_all(req.as_bytes()).expect("write request");
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    parse_answer(&answer)
}
