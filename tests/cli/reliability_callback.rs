//! Issue 14, items 4 and 5: a callback is never lost, whatever happens to
//! the process sending it, and `callback flush` is safe to run several times
//! at once. Every server listens on 127.0.0.1 and is stopped by its test;
//! every wait and every loop is bounded.

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
        took < Duration::from_millis(1500),
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

/// SIGHUP (a closed terminal): whether the process ends at once by the
/// signal or handles it like Ctrl-C (exit 130), the callback is queued.
#[test]
fn sighup_during_an_in_flight_spawn_callback_leaves_it_queued() {
    use std::os::unix::process::ExitStatusExt as _;
    let sb = Sandbox::new();
    let (key, _) = sb.trusted_key("k");
    let flaky = Flaky::start(vec![Step::Hang]);
    let url = flaky.url("/hook");
    let args = spawn_args(
        &sb,
        "svc",
        &[
            "--callback",
            &url,
            "--key",
            s(&key),
            "--callback-timeout",
            "60s",
        ],
    );
    let mut child = sb
        .process()
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start spawn-elite");
    await_requests(&flaky, 1);
    signal(&child, "HUP");
    let status = wait_for(&mut child, Duration::from_secs(5)).expect("ended by SIGHUP");
    assert!(
        status.code() == Some(130) || status.signal() == Some(libc::SIGHUP),
        "{status:?}"
    );
    let root = spawned_root(&sb.repos().join("svc")).expect("spawned");
    assert_eq!(queued_roots(&sb), BTreeSet::from([root]));
}

/// A tiny deterministic generator: the seed is printed, so a failing run
/// can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn sigkill_at_random_instants_of_a_spawn_never_loses_its_callback() {
    const TRIALS: usize = 40;
    let sb = Sandbox::new();
    let (key, _) = sb.trusted_key("k");
    let rx = sb.receiver("127.0.0.1:0");
    let url = rx.url("/hooks/spawn");
    let cb = ["--callback", url.as_str(), "--key", s(&key), "-q"];

    // How long one spawn with its callback takes here, start to end, and
    // when its repository appears (from then on a callback is due).
    let started = Instant::now();
    let mut warm = sb
        .process()
        .args(spawn_args(&sb, "warm", &cb))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start spawn-elite");
    let receipt = sb.repos().join("warm/.spawn-elite/receipt.json");
    let mut appeared = None;
    let status = loop {
        if appeared.is_none() && receipt.exists() {
            appeared = Some(started.elapsed());
        }
        match warm.try_wait().expect("wait") {
            Some(status) => break status,
            None if started.elapsed() > Duration::from_secs(30) => {
                let _ = warm.kill();
                let _ = warm.wait();
                panic!("the warm-up spawn took over 30 s");
            }
            None => std::thread::sleep(Duration::from_micros(200)),
        }
    };
    assert!(status.success(), "warm-up spawn: {status:?}");
    let full = started.elapsed();
    let appeared = appeared.unwrap_or(full);

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 | 1)
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    let mut rng = Rng(seed);
    let (mut not_spawned, mut delivered, mut queued) = (0, 0, 0);
    for i in 0..TRIALS {
        let name = format!("k{i}");
        // Even trials: anywhere in the run (and a little beyond); odd ones:
        // from shortly before the repository appears to the end.
        let delay = if i % 2 == 0 {
            full.mul_f64((rng.next() % 1200) as f64 / 1000.0)
        } else {
            let from = appeared.mul_f64(0.8);
            from + (full.mul_f64(1.2).saturating_sub(from))
                .mul_f64((rng.next() % 1000) as f64 / 1000.0)
        };
        let mut child = sb
            .process()
            .args(spawn_args(&sb, &name, &cb))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start spawn-elite");
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        let Some(root) = spawned_root(&sb.repos().join(&name)) else {
            not_spawned += 1;
            continue;
        };
        let (logged, waiting) = (logged_roots(&sb), queued_roots(&sb));
        assert!(
            logged.contains(&root) || waiting.contains(&root),
            "trial {i} (seed {seed}, killed after {delay:?} of {full:?}, repository at {appeared:?}): {name} was spawned but its callback is neither logged nor queued"
        );
        if waiting.contains(&root) {
            queued += 1;
        } else {
            delivered += 1;
        }
    }
    eprintln!(
        "{TRIALS} SIGKILLs over {full:?}, repository at {appeared:?} (seed {seed}): {not_spawned} before the repository existed, {delivered} delivered, {queued} queued"
    );

    // One flush delivers everything queued and drops what was queued for
    // spawns that never completed.
    let out = sb.run(["callback", "flush"]);
    assert!(out.success(), "{}\n{}", out.stdout, out.stderr);
    assert!(sb.outbox_files().is_empty(), "{:?}", sb.outbox_files());
    rx.stop();
    let mut spawned: BTreeSet<String> = (0..TRIALS)
        .filter_map(|i| spawned_root(&sb.repos().join(format!("k{i}"))))
        .collect();
    spawned.extend(spawned_root(&sb.repos().join("warm")));
    assert_eq!(
        logged_roots(&sb),
        spawned,
        "every spawned repository's receipt was delivered, and only those"
    );
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
