//! Load test, ignored by default (run `scripts/load-callback.sh`):
//! 1 000 signed callbacks from 8 concurrent clients against
//! `spawn-elite receive` on 127.0.0.1; every one must be logged exactly once
//! and, as each is a spawn of its own repository, indexed by the registry.
//! `LOAD_RECEIVER_BIN=PATH` runs that binary as the receiver (a baseline of
//! an earlier build, in the same command).

use std::collections::HashMap;
use std::time::Instant;

use crate::support::{Sandbox, hand_signed, load_key, root_for, spawn_receipt_json, unix_now};

const CLIENTS: usize = 8;
const PER_CLIENT: usize = 125;

#[test]
#[ignore = "load test: run scripts/load-callback.sh"]
fn a_thousand_callbacks_from_eight_clients_are_each_logged_once() {
    let sb = Sandbox::new();
    let (key_path, id) = sb.trusted_key("load");
    let key = load_key(&key_path);
    let rx = match std::env::var_os("LOAD_RECEIVER_BIN") {
        Some(bin) => sb.receiver_of(
            std::path::Path::new(&bin),
            "127.0.0.1:0",
            &["--workers", "8"],
        ),
        None => sb.receiver_with("127.0.0.1:0", &["--workers", "8"]),
    };
    let addr = rx.addr;

    let started = Instant::now();
    let handles: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let key = key.clone();
            let id = id.clone();
            std::thread::spawn(move || {
                let mut statuses = HashMap::<u16, usize>::new();
                for i in 0..PER_CLIENT {
                    let seed = format!("load-{c}-{i}");
                    let root = root_for(&seed);
                    let body = spawn_receipt_json(&seed, &format!("svc-{c}-{i}")).into_bytes();
                    let req = hand_signed(
                        addr,
                        "/hooks/spawn",
                        &body,
                        &root,
                        &key,
                        &id,
                        unix_now(),
                        &format!("load-{c}-{i}"),
                    );
                    *statuses.entry(req.send(addr).0).or_default() += 1;
                }
                statuses
            })
        })
        .collect();
    let mut statuses = HashMap::<u16, usize>::new();
    for h in handles {
        for (k, v) in h.join().expect("client thread") {
            *statuses.entry(k).or_default() += v;
        }
    }
    let elapsed = started.elapsed();
    let (clean, _) = rx.stop();
    assert!(clean, "receiver stopped cleanly");

    let total = CLIENTS * PER_CLIENT;
    assert_eq!(statuses.get(&204), Some(&total), "statuses: {statuses:?}");
    let lines = sb.log_lines();
    let mut count = HashMap::<String, usize>::new();
    for l in &lines {
        *count
            .entry(l["idempotency_key"].as_str().expect("key").to_owned())
            .or_default() += 1;
    }
    assert_eq!(lines.len(), total, "one log line per callback");
    assert_eq!(count.len(), total, "every callback logged");
    assert!(count.values().all(|&n| n == 1), "none logged twice");
    println!(
        "load: {total} signed callbacks from {CLIENTS} clients in {:.2}s = {:.0} callbacks/s; {} logged, each exactly once",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        lines.len()
    );
}
