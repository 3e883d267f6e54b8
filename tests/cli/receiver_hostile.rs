//! The receiver under hostile or mistaken clients: slow and oversized
//! requests must not stall it or grow it, a request signed for another
//! receiver is refused, only POST, GET and HEAD are served. Every server is the real
//! `spawn-elite receive` on 127.0.0.1, stopped by the test that started it;
//! every client wait is bounded.

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;

use crate::support::{
    HandRequest, Sandbox, hand_signed, httpsig, load_key, parse_answer, receipt_json, root_for,
    sign_request, unix_now,
};

const MIB: u64 = 1024 * 1024;

/// A signed callback for `seed`, signed for `authority` and `path`,
/// sent with `content_type`; `tweak` changes the signature parameters.
fn signed_for(
    key: &SigningKey,
    id: &str,
    seed: &str,
    authority: &str,
    path: &str,
    content_type: &str,
    tweak: impl FnOnce(&mut httpsig::SignatureParams),
) -> HandRequest {
    let mut params =
        httpsig::SignatureParams::spawn(unix_now(), format!("n-{seed}"), id.into(), false);
    tweak(&mut params);
    sign_request(
        key,
        authority,
        path,
        content_type,
        receipt_json(seed).into_bytes(),
        &root_for(seed),
        &params,
    )
}

/// Send raw bytes, then read the whole answer (bounded by `timeout`):
/// (status, head, body, time to the answer). Status 0: no answer.
fn exchange(addr: SocketAddr, raw: &[u8], timeout: Duration) -> (u16, String, String, Duration) {
    let started = Instant::now();
    let Ok(mut conn) = TcpStream::connect_timeout(&addr, timeout) else {
        return (0, String::new(), String::new(), started.elapsed());
    };
    let _ = conn.set_read_timeout(Some(timeout));
    let _ = conn.set_write_timeout(Some(timeout));
    let _ = conn.write_all(raw);
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // Bounded: each read waits at most `timeout`, and the total is checked.
    while started.elapsed() < timeout {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let elapsed = started.elapsed();
    let (status, head, body) = parse_answer(&answer);
    (status, head, body, elapsed)
}

fn vm_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

// ------------------------------------------------------------------ item 8: slow and huge

#[test]
fn slow_clients_and_header_floods_neither_stall_nor_grow_the_receiver() {
    let sb = Sandbox::new();
    let (key_path, id) = sb.trusted_key("k");
    let key = load_key(&key_path);
    let rx = sb.receiver("127.0.0.1:0");
    let addr = rx.addr;
    let pid = rx.pid();

    let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (done, peak) = (Arc::clone(&done), Arc::clone(&peak));
        std::thread::spawn(move || {
            for _ in 0..3000 {
                if done.load(Ordering::Relaxed) {
                    return;
                }
                if let Some(rss) = vm_rss(pid) {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let good = |n: &str| {
        let req = hand_signed(
            addr,
            "/hook",
            &receipt_json(n).into_bytes(),
            &root_for(n),
            &key,
            &id,
            unix_now(),
            n,
        );
        let (status, _, body, took) = exchange(addr, &req.to_bytes(), Duration::from_secs(5));
        (status, body, took)
    };

    // 4 clients streaming header lines without end, for 6 seconds.
    let flood_until = Instant::now() + Duration::from_secs(6);
    let floods: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let chunk = vec![b'a'; 64 * 1024];
                let (mut sent, mut conns) = (0u64, 0u64);
                while Instant::now() < flood_until {
                    let Ok(mut c) = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
                    else {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    conns += 1;
                    let _ = c.set_write_timeout(Some(Duration::from_millis(200)));
                    let _ = c.write_all(b"POST /hook HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Flood: ");
                    while Instant::now() < flood_until {
                        match c.write(&chunk) {
                            Ok(n) => sent += n as u64,
                            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                            Err(e) if e.kind() == ErrorKind::TimedOut => {}
                            Err(_) => break,
                        }
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                (sent, conns)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let during_flood = good("during-header-flood");
    let (mut flooded, mut flood_conns) = (0, 0);
    for f in floods {
        let (sent, conns) = f.join().unwrap_or((0, 0));
        flooded += sent;
        flood_conns += conns;
    }

    // Then 200 clients that send a head at 1 byte/s, and 50 that announce
    // a 1 000 000-byte body and send it at 1 byte/s.
    let mut slow = Vec::new();
    for i in 0..250 {
        let Ok(mut c) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
            continue;
        };
        let head = if i < 200 {
            "POST /hook HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".to_owned()
        } else {
            "POST /hook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{".to_owned()
        };
        let _ = c.write_all(head.as_bytes());
        let _ = c.set_nonblocking(true);
        slow.push(c);
    }
    let attached = slow.len();
    let drip = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            // At most 60 rounds of one byte each, a second apart.
            for _ in 0..60 {
                for c in &mut slow {
                    let _ = c.write(b"a");
                }
                for _ in 0..20 {
                    if done.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(1500));
    let first = good("under-slow-clients");

    let stopping = Instant::now();
    let (clean, _) = rx.stop();
    let shutdown = stopping.elapsed();
    done.store(true, Ordering::Relaxed);
    let _ = drip.join();
    let _ = sampler.join();
    let peak = peak.load(Ordering::Relaxed);

    println!(
        "hostile: good request during a header flood ({} MiB pushed over {flood_conns} connections) {} in {:.2}s; with {attached} slow clients attached {} in {:.2}s; peak RSS {:.1} MiB; SIGTERM to exit {:.2}s (clean: {clean})",
        flooded / MIB,
        during_flood.0,
        during_flood.2.as_secs_f64(),
        first.0,
        first.2.as_secs_f64(),
        peak as f64 / MIB as f64,
        shutdown.as_secs_f64(),
    );
    assert_eq!(attached, 250, "all slow clients connected");
    assert_eq!(first.0, 204, "good request under slow clients: {first:?}");
    assert!(
        first.2 < Duration::from_secs(2),
        "answered in {:?}",
        first.2
    );
    assert_eq!(
        during_flood.0, 204,
        "good request during a flood: {during_flood:?}"
    );
    assert!(
        during_flood.2 < Duration::from_secs(2),
        "answered in {:?}",
        during_flood.2
    );
    assert!(peak < 64 * MIB, "peak RSS {peak} bytes");
    assert!(clean, "exited cleanly on SIGTERM");
    assert!(
        shutdown < Duration::from_secs(2),
        "SIGTERM took {shutdown:?}"
    );
    assert_eq!(sb.log_lines().len(), 2);
}

#[test]
fn a_head_over_16_kib_or_with_too_many_fields_is_refused_with_431() {
    let sb = Sandbox::new();
    let rx = sb.receiver("127.0.0.1:0");
    let long = format!(
        "POST /hook HTTP/1.1\r\nHost: {}\r\nX-Long: {}\r\nContent-Length: 0\r\n\r\n",
        rx.addr,
        "a".repeat(17 * 1024)
    );
    let (status, ..) = exchange(rx.addr, long.as_bytes(), Duration::from_secs(5));
    assert_eq!(status, 431, "16 KiB head");
    let mut many = format!("POST /hook HTTP/1.1\r\nHost: {}\r\n", rx.addr);
    for i in 0..100 {
        many.push_str(&format!("X-F{i}: v\r\n"));
    }
    many.push_str("Content-Length: 0\r\n\r\n");
    let (status, ..) = exchange(rx.addr, many.as_bytes(), Duration::from_secs(5));
    assert_eq!(status, 431, "100 header fields");
    let (clean, _) = rx.stop();
    assert!(clean);
}

#[test]
fn a_body_announced_over_max_body_is_refused_before_it_is_sent() {
    let sb = Sandbox::new();
    let rx = sb.receiver_with("127.0.0.1:0", &["--max-body", "4096"]);
    let head = format!(
        "POST /hook HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n",
        rx.addr
    );
    let (status, _, body, took) = exchange(rx.addr, head.as_bytes(), Duration::from_secs(5));
    assert_eq!(status, 413, "{body}");
    assert!(took < Duration::from_secs(2), "answered in {took:?}");
    // Chunked, so no length is announced: cut off at --max-body.
    let mut chunked = format!(
        "POST /hook HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        rx.addr
    );
    for _ in 0..3 {
        chunked.push_str(&format!("800\r\n{}\r\n", "x".repeat(0x800)));
    }
    let (status, _, body, _) = exchange(rx.addr, chunked.as_bytes(), Duration::from_secs(5));
    assert_eq!(status, 413, "{body}");
    let (clean, _) = rx.stop();
    assert!(clean);
}

#[test]
fn slow_or_silent_clients_are_cut_off_after_the_read_timeout() {
    let sb = Sandbox::new();
    let rx = sb.receiver_with("127.0.0.1:0", &["--read-timeout", "1"]);
    // A body that never completes: 408.
    let head = format!(
        "POST /hook HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
        rx.addr
    );
    let (status, _, body, took) = exchange(rx.addr, head.as_bytes(), Duration::from_secs(5));
    assert_eq!(status, 408, "{body}");
    assert!(took < Duration::from_secs(3), "cut off after {took:?}");
    // A connection that never sends its head: closed.
    let (status, _, _, took) =
        exchange(rx.addr, b"POST /hook HTTP/1.1\r\n", Duration::from_secs(5));
    assert!(status == 0 || status == 408, "status {status}");
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
    let (clean, _) = rx.stop();
    assert!(clean);
}

#[test]
fn connections_over_the_cap_wait_their_turn_instead_of_failing() {
    let sb = Sandbox::new();
    let (key_path, id) = sb.trusted_key("k");
    let key = load_key(&key_path);
    let rx = sb.receiver_with(
        "127.0.0.1:0",
        &["--max-connections", "1", "--read-timeout", "1"],
    );
    let mut holder = TcpStream::connect(rx.addr).expect("connect");
    holder.write_all(b"POST /").expect("write");
    std::thread::sleep(Duration::from_millis(200));
    let req = signed_for(
        &key,
        &id,
        "capped",
        &rx.addr.to_string(),
        "/hook",
        "application/json",
        |_| {},
    );
    let (status, _, body, took) = exchange(rx.addr, &req.to_bytes(), Duration::from_secs(5));
    assert_eq!(status, 204, "{body}");
    assert!(
        took >= Duration::from_millis(500),
        "did not wait for the slot: {took:?}"
    );
    drop(holder);
    let (clean, _) = rx.stop();
    assert!(clean);
}

// ------------------------------------------------------------------ item 9: signed for here

#[test]
fn a_request_signed_for_another_host_port_or_path_is_refused() {
    let sb = Sandbox::new();
    let (key_path, id) = sb.trusted_key("k");
    let key = load_key(&key_path);
    let rx = sb.receiver("127.0.0.1:0");
    let a = rx.addr;
    let json = "application/json";

    let other = signed_for(
        &key,
        &id,
        "other-host",
        "registry.example",
        "/hook",
        json,
        |_| {},
    );
    let (status, body) = other.send(a);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("signed for host registry.example"), "{body}");
    let port = format!("127.0.0.1:{}", a.port() + 1);
    let other = signed_for(&key, &id, "other-port", &port, "/hook", json, |_| {});
    assert_eq!(other.send(a).0, 401, "another port");
    // Its own names: the address, and localhost on loopback.
    let own = signed_for(&key, &id, "own", &a.to_string(), "/any/path", json, |_| {});
    assert_eq!(own.send(a).0, 204);
    let local = format!("localhost:{}", a.port());
    let own = signed_for(&key, &id, "localhost", &local, "/hook", json, |_| {});
    assert_eq!(own.send(a).0, 204);
    let (clean, _) = rx.stop();
    assert!(clean);
    assert_eq!(sb.log_lines().len(), 2);

    // Behind a proxy: only the public URL's host and path.
    let rx = sb.receiver_with(
        "127.0.0.1:0",
        &["--public-url", "https://registry.example/hooks/spawn"],
    );
    let a = rx.addr;
    let to = |seed: &str, authority: &str, path: &str| {
        signed_for(&key, &id, seed, authority, path, json, |_| {}).send(a)
    };
    let (status, body) = to("other-path", "registry.example", "/hooks/other");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("signed for path /hooks/other"), "{body}");
    let (status, body) = to("listen-addr", &a.to_string(), "/hooks/spawn");
    assert_eq!(
        status, 401,
        "the listen address is not the public one: {body}"
    );
    assert_eq!(to("public", "registry.example", "/hooks/spawn").0, 204);
    let (clean, _) = rx.stop();
    assert!(clean);
    assert_eq!(sb.log_lines().len(), 3);
}

#[test]
fn content_type_must_be_json_and_alg_must_be_ed25519() {
    let sb = Sandbox::new();
    let (key_path, id) = sb.trusted_key("k");
    let key = load_key(&key_path);
    let rx = sb.receiver("127.0.0.1:0");
    let a = rx.addr.to_string();

    let text = signed_for(&key, &id, "text", &a, "/hook", "text/plain", |_| {});
    let (status, body) = text.send(rx.addr);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("application/json"), "{body}");

    let no_alg = signed_for(&key, &id, "no-alg", &a, "/hook", "application/json", |p| {
        p.alg = None;
    });
    let (status, body) = no_alg.send(rx.addr);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("no alg"), "{body}");

    let rsa = signed_for(&key, &id, "rsa", &a, "/hook", "application/json", |p| {
        p.alg = Some("rsa-pss-sha512".into());
    });
    let (status, body) = rsa.send(rx.addr);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("rsa-pss-sha512"), "{body}");

    let charset = signed_for(
        &key,
        &id,
        "charset",
        &a,
        "/hook",
        "application/json; charset=utf-8",
        |_| {},
    );
    assert_eq!(charset.send(rx.addr).0, 204, "a charset parameter is fine");
    let (clean, _) = rx.stop();
    assert!(clean);
    assert_eq!(sb.log_lines().len(), 1);
}

#[test]
fn a_bad_public_url_is_refused_at_start() {
    let sb = Sandbox::new();
    let trust = sb.trust();
    let out = sb.run([
        "receive",
        "--listen",
        "127.0.0.1:0",
        "--trust",
        trust.to_str().expect("utf8"),
        "--public-url",
        "registry.example/hook",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--public-url"), "{}", out.stderr);
}

// ------------------------------------------------------------------ item 10: POST only

#[test]
fn methods_other_than_get_head_and_post_are_405_with_allow() {
    let sb = Sandbox::new();
    let rx = sb.receiver("127.0.0.1:0");
    for method in ["PUT", "DELETE", "PATCH", "OPTIONS"] {
        let req = format!(
            "{method} /hook HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            rx.addr
        );
        let (status, head, _, _) = exchange(rx.addr, req.as_bytes(), Duration::from_secs(5));
        assert_eq!(status, 405, "{method}: {head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("\r\nallow: get, head, post"),
            "{method}: {head}"
        );
    }
    // A GET of the callback path is a read of a page that does not exist.
    let req = format!(
        "GET /hook HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        rx.addr
    );
    let (status, head, _, _) = exchange(rx.addr, req.as_bytes(), Duration::from_secs(5));
    assert_eq!(status, 404, "{head}");
    let (clean, _) = rx.stop();
    assert!(clean);
}

#[test]
fn an_empty_trust_directory_is_warned_about_at_start() {
    let sb = Sandbox::new();
    let rx = sb.receiver("127.0.0.1:0");
    let (clean, err) = rx.stop();
    assert!(clean);
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("no *.pub keys"))
        .collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(
        warnings[0]
            .trim_start()
            .starts_with("WARN trust directory "),
        "{err}"
    );

    sb.trusted_key("k");
    let rx = sb.receiver("127.0.0.1:0");
    let (_, err) = rx.stop();
    assert!(!err.contains("no *.pub keys"), "{err}");
}
