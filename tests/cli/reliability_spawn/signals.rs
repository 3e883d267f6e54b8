//! Item 3: a sweep for the staging directories of killed spawns never
//! touches a running spawn's. The signals themselves (SIGHUP, SIGTERM and
//! SIGINT mid-spawn; SIGKILL at random instants, then the next spawn and
//! `doctor`) are run many times against the release binary by
//! scripts/faults.sh (docs/RELIABILITY.md).

use super::{Held, quiet_into};
use crate::support::Sandbox;

/// The staging directory of a spawn that is still running is never touched.
#[test]
fn a_running_spawn_keeps_its_staging_directory() {
    let sb = Sandbox::new();
    let base = sb.repos();
    let held = Held::spawn_b(&sb, &base);
    let other = sb.run(quiet_into("a", &base, &["--no-git"]));
    assert!(other.success(), "{}", other.stderr);
    assert_eq!(other.stderr, "", "nothing was stale");
    let doctor = sb
        .cmd()
        .arg("doctor")
        .env("VAULTMESH_REPOS", &base)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&doctor.stderr).contains("removed"));
    let out = held.finish();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(base.join("b/.git").is_dir());
}
