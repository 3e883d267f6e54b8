//! Ctrl-C as a request, not a kill: long operations check it at safe points
//! so that they can clean up (a half-written spawn) or save their work (a
//! callback goes to the outbox) before exiting.
//!
//! SIGTERM (`kill`, a service manager) and SIGHUP (a closed terminal, a
//! dropped ssh session) are the same request and end the same way, with
//! exit code 130 ("interrupted") whichever of the three it was.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

fn flag() -> &'static Arc<AtomicBool> {
    FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// From now on SIGINT, SIGTERM and SIGHUP set the flag instead of ending
/// the process.
pub fn install() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    for signal in [SIGINT, SIGTERM, SIGHUP] {
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
