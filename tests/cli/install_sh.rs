//! install.sh end to end: a release served from 127.0.0.1, installed into
//! temporary directories, plus its failure cases. The checks live in
//! `tests/install_test.sh` (also run against real archives by
//! `scripts/test-install.sh`); here the release is a stand-in packed from the
//! binary under test, so no release build is needed.

#![cfg(unix)]

use std::path::Path;
use std::process::Command;

/// Needs python3 (the HTTP server) and curl or wget, which `cargo test` does
/// not assume: CI runs the same checks on real release archives through
/// `scripts/test-install.sh`; run this one with
/// `cargo test --test cli install_sh -- --ignored`.
#[test]
#[ignore = "needs python3 and curl; CI runs scripts/test-install.sh"]
fn install_sh_end_to_end() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("sh")
        .arg(root.join("tests/install_test.sh"))
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_spawn-elite"))
        .output()
        .expect("run sh tests/install_test.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "tests/install_test.sh failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}
