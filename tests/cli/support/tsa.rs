//! A real RFC 3161 Time-Stamping Authority for tests: OpenSSL. It makes a
//! CA and a TSA certificate (critical extendedKeyUsage timeStamping) with
//! the `openssl` binary, serves HTTP on 127.0.0.1 from a thread, and
//! answers each request by running `openssl ts -reply`. Its [`Mode`]
//! makes it misbehave on purpose. Stopped when dropped.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::flaky::read_request;

/// Whether `openssl` can run here. Missing, a test that needs it is skipped
/// on a developer's machine and fails in CI (`CI=true`): CI must run it.
pub fn have_openssl() -> bool {
    let ok = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "CI is set and there is no openssl binary: the timestamp tests need it"
        );
        eprintln!("skipped: no openssl binary on PATH");
    }
    ok
}

fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A CA and a TSA it certified, with the `openssl ts` configuration.
pub struct Pki {
    pub dir: PathBuf,
    /// The CA certificate (PEM): what `--tsa-cert` names.
    pub ca: PathBuf,
    /// The TSA's own certificate (PEM).
    pub tsa_cert: PathBuf,
    pub config: PathBuf,
}

impl Pki {
    /// In `dir` (created): RSA keys, or with `ec` ECDSA P-256 keys.
    pub fn new(dir: &Path, name: &str, ec: bool) -> Pki {
        std::fs::create_dir_all(dir).expect("pki dir");
        let newkey: &[&str] = if ec {
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        } else {
            &["-newkey", "rsa:2048"]
        };
        let ca_subj = format!("/CN={name} Test CA");
        let mut args = vec!["req", "-x509", "-nodes", "-days", "30"];
        args.extend(newkey);
        args.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            &ca_subj,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(dir, &args);
        let tsa_subj = format!("/CN={name} Test TSA");
        let mut args = vec!["req", "-nodes"];
        args.extend(newkey);
        args.extend(["-keyout", "tsa.key", "-out", "tsa.csr", "-subj", &tsa_subj]);
        openssl(dir, &args);
        std::fs::write(
            dir.join("ext.cnf"),
            "[v3]\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping\n",
        )
        .expect("ext");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "tsa.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "30",
                "-out",
                "tsa.pem",
                "-extfile",
                "ext.cnf",
                "-extensions",
                "v3",
            ],
        );
        std::fs::write(dir.join("serial"), "01\n").expect("serial");
        let d = dir.display();
        std::fs::write(
            dir.join("ts.cnf"),
            format!(
                "[ tsa ]\ndefault_tsa = tsa_config\n[ tsa_config ]\nserial = {d}/serial\ncrypto_device = builtin\nsigner_cert = {d}/tsa.pem\ncerts = {d}/ca.pem\nsigner_key = {d}/tsa.key\nsigner_digest = sha256\ndefault_policy = 1.2.3.4.1\nother_policies = 1.2.3.4.5\ndigests = sha256, sha384, sha512\naccuracy = secs:1\nordering = no\ntsa_name = yes\ness_cert_id_chain = no\ness_cert_id_alg = sha256\n"
            ),
        )
        .expect("ts.cnf");
        Pki {
            dir: dir.to_path_buf(),
            ca: dir.join("ca.pem"),
            tsa_cert: dir.join("tsa.pem"),
            config: dir.join("ts.cnf"),
        }
    }

    /// `openssl ts -reply` to the DER query `query`.
    pub fn reply(&self, query: &[u8], n: usize) -> Vec<u8> {
        let q = self.dir.join(format!("q{n}.tsq"));
        let r = self.dir.join(format!("r{n}.tsr"));
        std::fs::write(&q, query).expect("query");
        openssl(
            &self.dir,
            &[
                "ts",
                "-reply",
                "-config",
                self.config.to_str().expect("utf8"),
                "-queryfile",
                q.to_str().expect("utf8"),
                "-out",
                r.to_str().expect("utf8"),
            ],
        );
        std::fs::read(&r).expect("reply")
    }

    /// `openssl ts -query` over `data`, with extra arguments.
    pub fn query(&self, data: &[u8], extra: &[&str], n: usize) -> Vec<u8> {
        let d = self.dir.join(format!("d{n}"));
        std::fs::write(&d, data).expect("data");
        let mut args = vec![
            "ts",
            "-query",
            "-data",
            d.to_str().expect("utf8"),
            "-sha256",
            "-cert",
        ];
        args.extend(extra);
        openssl(&self.dir, &args)
    }
}

/// How the test TSA answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `openssl ts -reply` to the request.
    Good,
    /// A rejection: the answer to a request for a policy it does not have.
    Reject,
    /// 200 with bytes that are no TimeStampResp.
    Garbage,
    /// HTTP 500.
    ServerError,
    /// Read the request, never answer (until stopped).
    Hang,
    /// A good token, from another TSA (another CA).
    Foreign,
    /// A good token for another request (another imprint and nonce).
    OtherRequest,
}

/// The running test TSA.
pub struct TestTsa {
    pub addr: SocketAddr,
    pub pki: Arc<Pki>,
    pub other: Arc<Pki>,
    mode: Arc<Mutex<Mode>>,
    served: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestTsa {
    /// A TSA with its PKI (and a second, foreign one) under `dir`.
    pub fn start(dir: &Path, ec: bool) -> TestTsa {
        let pki = Arc::new(Pki::new(&dir.join("tsa"), "Loopback", ec));
        let other = Arc::new(Pki::new(&dir.join("other"), "Foreign", false));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mode = Arc::new(Mutex::new(Mode::Good));
        let served = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, o, m, sv, st) = (
            Arc::clone(&pki),
            Arc::clone(&other),
            Arc::clone(&mode),
            Arc::clone(&served),
            Arc::clone(&stop),
        );
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let Some((_head, body)) = read_request(&mut conn) else {
                    continue;
                };
                let n = sv.fetch_add(1, Ordering::SeqCst);
                let mode = *m.lock().expect("lock");
                let (status, answer) = match mode {
                    Mode::Good => (200, p.reply(&body, n)),
                    Mode::Foreign => (200, o.reply(&body, n)),
                    Mode::Reject => {
                        let q = p.query(b"anything", &["-tspolicy", "1.2.3.4.99"], n);
                        (200, p.reply(&q, n))
                    }
                    Mode::OtherRequest => {
                        let q = p.query(b"something else", &[], n);
                        (200, p.reply(&q, n))
                    }
                    Mode::Garbage => (200, b"this is not DER at all".to_vec()),
                    Mode::ServerError => (500, b"down for maintenance".to_vec()),
                    Mode::Hang => {
                        held.push(conn);
                        continue;
                    }
                };
                let head = format!(
                    "HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Type: application/timestamp-reply\r\nContent-Length: {}\r\n\r\n",
                    answer.len()
                );
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(&answer);
            }
        });
        TestTsa {
            addr,
            pki,
            other,
            mode,
            served,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/tsa", self.addr)
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().expect("lock") = mode;
    }

    /// Requests received so far.
    pub fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

impl Drop for TestTsa {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
