//! Item 6: a file that shrinks or is rewritten while `receipt` or `verify`
//! hashes it is reported as changed, never a crash by SIGBUS.

use std::ffi::OsStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{receipt_of, tree_with, verify_args};
use crate::support::{Outcome, Sandbox};

const BIG: u64 = 24 << 20;

#[test]
fn a_file_rewritten_during_hashing_is_an_error_not_a_signal() {
    let sb = Sandbox::new();
    let tree = tree_with(
        &sb,
        &[("small", b"x"), ("big.bin", &vec![7u8; BIG as usize])],
    );
    let big = tree.join("big.bin");
    let receipt = receipt_of(&sb, &tree);

    // Truncate and regrow the file as fast as possible, for a bounded time.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, big) = (Arc::clone(&stop), big.clone());
        std::thread::spawn(move || {
            let file = std::fs::OpenOptions::new().write(true).open(&big).unwrap();
            let until = Instant::now() + Duration::from_secs(60);
            let mut flips = 0u64;
            while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                file.set_len(0).unwrap();
                std::thread::sleep(Duration::from_micros(300));
                file.set_len(BIG).unwrap();
                std::thread::sleep(Duration::from_micros(300));
                flips += 1;
            }
            flips
        })
    };
    const RUNS: usize = 30;
    let mut changed = 0;
    let mut failures = Vec::new();
    for run in 0..RUNS {
        let args: Vec<&OsStr> = if run % 2 == 0 {
            vec![OsStr::new("receipt"), tree.as_os_str()]
        } else {
            verify_args(&tree, &receipt, &[])
        };
        let o = Outcome::of(sb.cmd().args(&args));
        match o.code {
            11 => {
                o.assert_error(
                    11,
                    "changed while it was being hashed; run again when nothing writes to the tree",
                );
                assert!(o.stderr.contains("big.bin"), "{}", o.stderr);
                changed += 1;
            }
            0 | 1 => {}
            _ => failures.push(format!("run {run}: exit {} {}", o.code, o.stderr)),
        }
    }
    stop.store(true, Ordering::SeqCst);
    let flips = writer.join().unwrap();
    assert!(
        flips > 0,
        "the file was never truncated; nothing was tested"
    );
    assert!(failures.is_empty(), "{failures:#?}");
    eprintln!("{RUNS} runs over {flips} truncations, {changed} reported the file as changed");
}
