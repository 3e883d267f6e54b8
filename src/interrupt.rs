//! Ctrl-C as a request, not a kill: long operations check it at safe points
//! so that they can clean up (a half-written spawn) or save their work (a
//! callback goes to the outbox) before exiting.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

fn flag() -> &'static Arc<AtomicBool> {
    FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// From now on SIGINT and SIGTERM set the flag instead of ending the process.
pub fn install() {
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(signal, Arc::clone(flag()));
    }
}

pub fn requested() -> bool {
    flag().load(Ordering::SeqCst)
}

/// Sleep for `total`, waking early on Ctrl-C; false if interrupted.
pub fn sleep(total: Duration) -> bool {
    let until = Instant::now() + total;
    while !requested() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
    false
}
