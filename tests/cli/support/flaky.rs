//! A scripted, misbehaving HTTP server for delivery tests: it answers each
//! request as its script says (a status, a relay to the real receiver, or
//! silence) and records what it was sent. 127.0.0.1 only.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

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
    seen: Arc<Mutex<Vec<Seen>>>,
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
