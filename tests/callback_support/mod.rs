//! Helpers for the callback tests: an isolated environment, the real
//! `spawn-elite receive` started and stopped per test, and a scripted
//! misbehaving HTTP server. Everything listens on 127.0.0.1 only, and every
//! wait is bounded.

#![allow(dead_code)]

pub use spawn_elite::callback::httpsig;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_spawn-elite");

/// A private HOME / XDG_DATA_HOME, fast retry settings, and paths.
pub struct Env {
    pub dir: TempDir,
}

impl Env {
    pub fn new() -> Env {
        let env = Env {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        std::fs::create_dir_all(env.trust()).expect("trust dir");
        std::fs::create_dir_all(env.home()).expect("home");
        env
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn home(&self) -> PathBuf {
        self.path().join("home")
    }
    pub fn data(&self) -> PathBuf {
        self.path().join("data")
    }
    pub fn outbox(&self) -> PathBuf {
        self.data().join("spawn-elite/outbox")
    }
    pub fn trust(&self) -> PathBuf {
        self.path().join("trust")
    }
    pub fn log(&self) -> PathBuf {
        self.path().join("received.jsonl")
    }

    /// The binary with this environment and test-sized timeouts.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.path())
            .env("HOME", self.home())
            .env("XDG_DATA_HOME", self.data())
            .env_remove("SSL_CERT_FILE")
            .env("SPAWN_ELITE_CALLBACK_CONNECT_TIMEOUT", "2s")
            .env("SPAWN_ELITE_CALLBACK_TIMEOUT", "5s")
            .env("SPAWN_ELITE_CALLBACK_BACKOFF", "10ms")
            .env("SPAWN_ELITE_CALLBACK_MAX_BACKOFF", "200ms")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run spawn-elite")
    }

    /// `callback send --receipt RECEIPT --url URL --key KEY EXTRA...`.
    pub fn send(&self, receipt: &str, url: &str, key: &str, extra: &[&str]) -> Output {
        let mut args = send_args(receipt, url, key);
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// `keygen -o PATH`, returning (private key path, key id).
    pub fn keygen(&self, name: &str) -> (PathBuf, String) {
        let path = self.path().join(format!("{name}.pem"));
        let out = self.run(&["keygen", "-o", path.to_str().expect("utf8")]);
        assert!(out.status.success(), "keygen: {}", stderr(&out));
        let id = stdout(&out)
            .lines()
            .find_map(|l| l.strip_prefix("key id:").map(|s| s.trim().to_owned()))
            .expect("keygen prints the key id");
        (path, id)
    }

    /// keygen and trust the public key.
    pub fn trusted_key(&self, name: &str) -> (PathBuf, String) {
        let (path, id) = self.keygen(name);
        let mut public = path.clone().into_os_string();
        public.push(".pub");
        std::fs::copy(&public, self.trust().join(format!("{name}.pub"))).expect("copy pub");
        (path, id)
    }

    /// Write `receipt_json(seed)` to `name`.
    pub fn write_receipt(&self, name: &str, seed: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, receipt_json(seed)).expect("write receipt");
        p
    }

    pub fn outbox_files(&self) -> Vec<PathBuf> {
        match std::fs::read_dir(self.outbox()) {
            Ok(rd) => {
                let mut v: Vec<PathBuf> = rd
                    .map(|e| e.expect("dir entry").path())
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect();
                v.sort();
                v
            }
            Err(_) => Vec::new(),
        }
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
        // stderr (one line per request) goes to a file: an unread pipe
        // would fill up and block the receiver.
        let err_path = self.path().join(format!("receiver-{}.err", free_port()));
        let err_file = std::fs::File::create(&err_path).expect("stderr file");
        let mut child = self
            .cmd()
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

/// A valid `spawn-elite.receipt/v1` receipt of a one-file tree whose
/// `README.md` holds `seed`: distinct seeds give distinct roots. The root is
/// computed here from docs/RECEIPT.md (a one-leaf tree's root is its leaf).
pub fn receipt_json(seed: &str) -> String {
    let content = format!("{seed}\n");
    format!(
        "{{\n  \"format\": \"spawn-elite.receipt/v1\",\n  \"tool\": {{\"name\": \"spawn-elite\", \"version\": \"0.1.0\"}},\n  \"created\": \"2026-11-26T10:00:00Z\",\n  \"merkle_root\": \"{}\",\n  \"leaf_count\": 1,\n  \"files\": [{{\"path\": \"README.md\", \"size\": {}, \"mode\": \"100644\", \"blake3\": \"{}\"}}]\n}}\n",
        root_for(seed),
        content.len(),
        blake3::hash(content.as_bytes()).to_hex()
    )
}

/// The merkle_root of `receipt_json(seed)`.
pub fn root_for(seed: &str) -> String {
    let content = blake3::hash(format!("{seed}\n").as_bytes());
    let path = "README.md";
    let mut leaf = blake3::Hasher::new();
    leaf.update(&[0x00]);
    leaf.update(&(path.len() as u64).to_le_bytes());
    leaf.update(path.as_bytes());
    leaf.update(&0o100644u32.to_le_bytes());
    leaf.update(content.as_bytes());
    leaf.finalize().to_hex().to_string()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A running `spawn-elite receive`; stopped with SIGTERM on drop.
pub struct ReceiverProc {
    pub child: Child,
    pub addr: SocketAddr,
    err_path: PathBuf,
}

impl ReceiverProc {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
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

// ------------------------------------------------------------ flaky server

/// What the scripted server does with the n-th request.
#[derive(Clone, Debug)]
pub enum Step {
    /// Answer with this status and extra header lines.
    Status(u16, Vec<(String, String)>),
    /// Pass the request to this address and relay the answer.
    Forward(SocketAddr),
    /// Read the request and never answer (until the test ends).
    Hang,
}

/// One request as received: head lines and body.
#[derive(Clone, Debug)]
pub struct Seen {
    pub head: String,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// A one-connection-per-request HTTP server following a script; requests
/// past the end of the script get the last step again.
pub struct Flaky {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Flaky {
    pub fn start(script: Vec<Step>) -> Flaky {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (Arc::clone(&seen), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let Some((head, body)) = read_request(&mut conn) else {
                    continue;
                };
                let n = {
                    let mut s = seen2.lock().expect("lock");
                    s.push(Seen {
                        head: head.clone(),
                        body: body.clone(),
                    });
                    s.len()
                };
                let step = script
                    .get(n - 1)
                    .or(script.last())
                    .cloned()
                    .unwrap_or(Step::Hang);
                match step {
                    Step::Status(code, headers) => {
                        let mut resp = format!(
                            "HTTP/1.1 {code} Scripted\r\nConnection: close\r\nContent-Length: 9\r\n"
                        );
                        for (k, v) in headers {
                            resp.push_str(&format!("{k}: {v}\r\n"));
                        }
                        resp.push_str("\r\nscripted\n");
                        let _ = conn.write_all(resp.as_bytes());
                    }
                    Step::Forward(to) => {
                        if let Ok(mut up) = TcpStream::connect(to) {
                            let _ = up.set_read_timeout(Some(Duration::from_secs(5)));
                            let head = head.replacen("\r\n", "\r\nConnection: close\r\n", 1);
                            let _ = up.write_all(head.as_bytes());
                            let _ = up.write_all(&body);
                            let mut answer = Vec::new();
                            let _ = up.read_to_end(&mut answer);
                            let _ = conn.write_all(&answer);
                        }
                    }
                    Step::Hang => held.push(conn),
                }
            }
        });
        Flaky {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

impl Drop for Flaky {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Read one request head (up to the blank line) and its Content-Length body.
pub fn read_request(conn: &mut impl std::io::Read) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte).ok()? == 0 || buf.len() > 64 * 1024 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).ok()?;
    Some((head, body))
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
    let authority = addr.to_string();
    let headers = vec![
        ("Host".to_owned(), authority.clone()),
        ("Content-Type".to_owned(), "application/json".to_owned()),
        ("Content-Digest".to_owned(), httpsig::content_digest(body)),
        ("Idempotency-Key".to_owned(), merkle_root.to_owned()),
    ];
    let parts = httpsig::RequestParts {
        method: "POST".into(),
        authority,
        path: path.into(),
        query: None,
        headers: headers.clone(),
    };
    let params = httpsig::SignatureParams::spawn(created, nonce.into(), keyid.into(), false);
    let signed = httpsig::sign(&parts, &params, key, httpsig::LABEL).expect("sign");
    let mut headers = headers;
    headers.push(("Signature-Input".into(), signed.signature_input));
    headers.push(("Signature".into(), signed.signature));
    HandRequest {
        path: path.into(),
        headers,
        body: body.to_vec(),
    }
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

    /// Send over a fresh connection; returns (status, body).
    pub fn send(&self, addr: SocketAddr) -> (u16, String) {
        let mut conn = TcpStream::connect(addr).expect("connect");
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut head = format!("POST {} HTTP/1.1\r\n", self.path);
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.body.len()
        ));
        conn.write_all(head.as_bytes()).expect("write head");
        conn.write_all(&self.body).expect("write body");
        let mut answer = Vec::new();
        let _ = conn.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }
}

/// The arguments of `callback send` for one receipt, URL and key.
pub fn send_args<'a>(receipt: &'a str, url: &'a str, key: &'a str) -> Vec<&'a str> {
    vec![
        "callback",
        "send",
        "--receipt",
        receipt,
        "--url",
        url,
        "--key",
        key,
    ]
}
