//! Issue 14, items 4 and 5: a callback is never lost, whatever happens to
//! the process sending it, and `callback flush` is safe to run several times
//! at once. Kills at random instants (of a spawn with a callback, of
//! `callback flush`) are run many times against the release binary by
//! scripts/faults.sh instead (docs/RELIABILITY.md). Every server listens on
//! 127.0.0.1 and is stopped by its test; every wait and every loop is bounded.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Flaky, Sandbox, Step, free_port, root_for};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

/// Spawn arguments: `name` into `repos/`, no git, no ledger (this file is
/// about the callback), plus `extra`.
fn spawn_args<'a>(sb: &'a Sandbox, name: &'a str, extra: &[&'a str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        name.into(),
        "--out-dir".into(),
        s(&sb.repos()).into(),
        "--no-git".into(),
        "--no-ledger".into(),
    ];
    v.extend(extra.iter().map(|a| (*a).to_owned()));
    v
}

/// The merkle_root of a spawned repository's receipt, if it exists.
fn spawned_root(repo: &Path) -> Option<String> {
    let bytes = std::fs::read(repo.join(".spawn-elite/receipt.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v["merkle_root"].as_str().map(str::to_owned)
}

/// The idempotency keys of the queued entries.
fn queued_roots(sb: &Sandbox) -> BTreeSet<String> {
    sb.outbox_files()
        .iter()
        .filter_map(|f| {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(f).ok()?).ok()?;
            v["idempotency_key"].as_str().map(str::to_owned)
        })
        .collect()
}

/// The idempotency keys in the receiver's log. Tolerant of a line being
/// written right now (the receiver may still be logging a request whose
/// sender was killed).
fn logged_roots(sb: &Sandbox) -> BTreeSet<String> {
    std::fs::read_to_string(sb.log())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["idempotency_key"].as_str().map(str::to_owned))
        .collect()
}

/// Wait (bounded) for `child` to end; `None` if it was still running at
/// the deadline, in which case it is killed.
fn wait_for(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(ok.success(), "kill -{name}");
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut err, &mut text);
    }
    text
}

/// Wait (bounded) until the scripted server has received `n` requests.
fn await_requests(flaky: &Flaky, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while flaky.requests().len() < n {
        assert!(Instant::now() < deadline, "no request reached the server");
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ------------------------------------------------------------------ item 4

/// How the interrupted command is started.
#[derive(Clone, Copy, Debug)]
enum Sender {
    Spawn,
    Send,
}

/// One interrupted in-flight callback: the server accepts the request and
/// never answers; `sig` arrives mid-request. Returns the repo's root.
fn interrupt_in_flight(sender: Sender, sig: &str) {
    let sb = Sandbox::new();
    let (key, _) = sb.trusted_key("k");
    // The first request hangs; the next one (the flush) reaches the
    // receiver, which stands behind the scripted server like behind a proxy:
    // requests are signed for the proxy's address, the receiver's --public-url.
    let port = free_port();
    let flaky = Flaky::start(vec![
        Step::Hang,
        Step::Forward(([127, 0, 0, 1], port).into()),
    ]);
    let rx = sb.receiver_with(
        &format!("127.0.0.1:{port}"),
        &["--public-url", &flaky.url("")],
    );
    let url = flaky.url("/hook");
    let cb = ["--callback-timeout", "60s", "--attempts", "1"];
    let (args, root) = match sender {
        Sender::Spawn => {
            let mut extra = vec!["--callback", &url, "--key", s(&key)];
            extra.extend_from_slice(&cb);
            (spawn_args(&sb, "svc", &extra), None)
        }
        Sender::Send => {
            let receipt = sb.write_receipt("receipt.json", "interrupted");
            let mut v: Vec<String> = crate::support::send_args(s(&receipt), &url, s(&key))
                .into_iter()
                .map(str::to_owned)
                .collect();
            v.extend(cb.iter().map(|a| (*a).to_owned()));
            (v, Some(root_for("interrupted")))
        }
    };
    let mut child = sb
        .process()
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start spawn-elite");
    await_requests(&flaky, 1);
    let started = Instant::now();
    signal(&child, sig);
    let status = wait_for(&mut child, Duration::from_secs(5));
    let took = started.elapsed();
    let err = stderr_of(&mut child);
    let case = format!("{sender:?} + SIG{sig}");
    let status = status.unwrap_or_else(|| panic!("{case}: still running 5 s after SIG{sig}"));
    assert!(
        took < Duration::from_secs(1),
        "{case}: took {took:?} to act"
    );
    assert_eq!(status.code(), Some(130), "{case}: {err}");
    assert!(
        err.contains("interrupted") && err.contains("queued in") && err.contains("callback flush"),
        "{case}: {err}"
    );
    let root = root.unwrap_or_else(|| spawned_root(&sb.repos().join("svc")).expect("spawned"));
    assert_eq!(
        queued_roots(&sb),
        BTreeSet::from([root.clone()]),
        "{case}: the callback waits in the outbox"
    );

    let out = sb.run(["callback", "flush"]);
    assert!(out.success(), "{case}: {}", out.stderr);
    assert!(sb.outbox_files().is_empty(), "{case}");
    drop(flaky);
    rx.stop();
    assert_eq!(logged_roots(&sb), BTreeSet::from([root]), "{case}");
}

#[test]
fn sigint_during_an_in_flight_spawn_callback_exits_at_once_and_keeps_it_queued() {
    interrupt_in_flight(Sender::Spawn, "INT");
}

#[test]
fn sigterm_during_an_in_flight_spawn_callback_exits_at_once_and_keeps_it_queued() {
    interrupt_in_flight(Sender::Spawn, "TERM");
}

#[test]
fn sigint_and_sigterm_during_callback_send_exit_at_once_and_keep_it_queued() {
    interrupt_in_flight(Sender::Send, "INT");
    interrupt_in_flight(Sender::Send, "TERM");
}

#[test]
fn an_unwritable_outbox_is_exit_4_when_undelivered_and_a_warning_when_delivered() {
    let sb = Sandbox::new();
    let (key, _) = sb.trusted_key("k");
    // The outbox path is a regular file: no entry can be written there.
    std::fs::create_dir_all(sb.outbox().parent().expect("parent")).expect("data dir");
    std::fs::write(sb.outbox(), "not a directory\n").expect("block the outbox");
    let down = format!("http://127.0.0.1:{}/hook", free_port());

    let out = sb.run(spawn_args(
        &sb,
        "svc",
        &["--callback", &down, "--key", s(&key)],
    ));
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr.contains("nothing was queued") && out.stderr.contains("callback send"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("queued in"), "{}", out.stderr);
    assert!(spawned_root(&sb.repos().join("svc")).is_some(), "spawned");

    let receipt = sb.write_receipt("receipt.json", "unqueued");
    let out = sb.send(s(&receipt), &down, s(&key), &["--attempts", "1"]);
    out.assert_error(4, "nothing was queued");
    assert!(out.stderr.contains("is not a directory"), "{}", out.stderr);

    let rx = sb.receiver("127.0.0.1:0");
    let out = sb.run(spawn_args(
        &sb,
        "svc2",
        &["--callback", &rx.url("/hook"), "--key", s(&key)],
    ));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("warning: ")
            && out.stderr.contains("outbox")
            && out.stderr.contains("callback delivered"),
        "{}",
        out.stderr
    );
    rx.stop();
    let root = spawned_root(&sb.repos().join("svc2")).expect("spawned");
    assert_eq!(logged_roots(&sb), BTreeSet::from([root]));
    assert!(sb.outbox().is_file(), "left as it was");

    // The outbox on a full filesystem: nothing can be queued there either.
    let Some(full) = crate::reliability_store::Tmpfs::mount(&sb.path().join("full"), "16k") else {
        return;
    };
    std::fs::create_dir_all(full.dir.join("spawn-elite/outbox")).expect("outbox");
    full.fill();
    let out =
        crate::support::Outcome::of(sb.cmd().env("XDG_DATA_HOME", &full.dir).args(spawn_args(
            &sb,
            "svc3",
            &["--callback", &down, "--key", s(&key), "--attempts", "1"],
        )));
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr.contains("nothing was queued") && out.stderr.contains("callback send"),
        "{}",
        out.stderr
    );
    assert!(spawned_root(&sb.repos().join("svc3")).is_some(), "spawned");
}

// ------------------------------------------------------------------ item 5

const ENTRIES: usize = 50;
const FLUSHERS: usize = 4;
const ROUNDS: usize = 3;

/// Queue `ENTRIES` callbacks: each first attempt gets a 503 (`--attempts 1`),
/// later requests are relayed to the receiver at `rx`.
fn queue_entries(sb: &Sandbox, key: &Path, flaky: &Flaky, round: usize) -> BTreeSet<String> {
    let url = flaky.url("/hook");
    let receipts: Vec<(PathBuf, String)> = (0..ENTRIES)
        .map(|i| {
            let seed = format!("flush-{round}-{i}");
            (
                sb.write_receipt(&format!("r{i}.json"), &seed),
                root_for(&seed),
            )
        })
        .collect();
    for batch in receipts.chunks(10) {
        let children: Vec<Child> = batch
            .iter()
            .map(|(receipt, _)| {
                sb.process()
                    .args(crate::support::send_args(s(receipt), &url, s(key)))
                    .args(["--attempts", "1"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("start callback send")
            })
            .collect();
        for mut child in children {
            let status = wait_for(&mut child, Duration::from_secs(30)).expect("send ended");
            let err = stderr_of(&mut child);
            assert_eq!(status.code(), Some(7), "queued: {err}");
        }
    }
    receipts.into_iter().map(|(_, root)| root).collect()
}

#[test]
fn four_concurrent_flushes_deliver_each_entry_exactly_once() {
    for round in 0..ROUNDS {
        let sb = Sandbox::new();
        let (key, _) = sb.trusted_key("k");
        // The receiver stands behind the scripted server like behind a proxy
        // (requests are signed for the proxy's address, its --public-url).
        let port = free_port();
        let mut script = vec![Step::Status(503, vec![]); ENTRIES];
        script.push(Step::Forward(([127, 0, 0, 1], port).into()));
        let flaky = Flaky::start(script);
        let rx = sb.receiver_with(
            &format!("127.0.0.1:{port}"),
            &["--public-url", &flaky.url("")],
        );
        let roots = queue_entries(&sb, &key, &flaky, round);
        assert_eq!(sb.outbox_files().len(), ENTRIES);

        let mut flushers: Vec<Child> = (0..FLUSHERS)
            .map(|_| {
                sb.process()
                    .args(["callback", "flush", "--attempts", "1"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("start callback flush")
            })
            .collect();
        for (n, child) in flushers.iter_mut().enumerate() {
            let status = wait_for(child, Duration::from_secs(60));
            let err = stderr_of(child);
            assert_eq!(
                status.and_then(|s| s.code()),
                Some(0),
                "round {round}, flusher {n}: {err}"
            );
        }

        let deliveries: Vec<String> = flaky.requests()[ENTRIES..]
            .iter()
            .map(|r| r.header("idempotency-key").expect("key"))
            .collect();
        let sent: BTreeSet<String> = deliveries.iter().cloned().collect();
        assert_eq!(
            deliveries.len(),
            ENTRIES,
            "round {round}: each entry is sent exactly once, not {} times in all",
            deliveries.len()
        );
        assert_eq!(sent, roots, "round {round}");
        let left: Vec<_> = std::fs::read_dir(sb.outbox())
            .expect("outbox")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert!(left.is_empty(), "round {round}: outbox left {left:?}");
        drop(flaky);
        rx.stop();
        assert_eq!(sb.log_lines().len(), ENTRIES, "round {round}");
        assert_eq!(logged_roots(&sb), roots, "round {round}");
    }
}
