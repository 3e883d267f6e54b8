//! The `spawn-elite` binary: parse the command line, run it, exit with the
//! code the outcome deserves. Everything else is in the library.

use spawn_elite::error::{code_of, describe};

/// See Cargo.toml: musl's allocator is slow at many small allocations.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    restore_sigpipe();
    let cli = spawn_elite::commands::names::parse_or_exit();
    let code = spawn_elite::run(cli).unwrap_or_else(|err| {
        eprintln!("error: {}", describe(&err));
        code_of(&err)
    });
    std::process::exit(code.code());
}

/// Rust ignores SIGPIPE, so `spawn-elite man | head` would panic on a closed
/// pipe; like other Unix tools we just stop. Sockets are unaffected: the
/// standard library sends with MSG_NOSIGNAL / SO_NOSIGPIPE.
fn restore_sigpipe() {
    // SAFETY: called first thing in main, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
