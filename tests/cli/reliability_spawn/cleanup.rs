//! Item 1: a spawn that fails or is interrupted removes only what it alone
//! created and what is still empty. The races with other spawns (a sibling
//! finishing in the new base, two spawns of one name) are run many times
//! against the release binary by scripts/faults.sh (docs/RELIABILITY.md).

use super::{Held, signal};
use crate::support::Sandbox;

/// A failed spawn into new nested directories removes each of them, bottom
/// up, and nothing above what it created.
#[test]
fn a_failed_spawn_removes_only_the_empty_directories_it_created() {
    let sb = Sandbox::new();
    let keep = sb.path().join("kept");
    std::fs::create_dir(&keep).unwrap();
    std::fs::write(keep.join("note"), "mine").unwrap();
    let base = keep.join("x/y/z");
    let held = Held::spawn_b(&sb, &base);
    signal(held.pid(), "INT");
    let out = held.finish();
    assert_eq!(out.status.code(), Some(130));
    assert!(!keep.join("x").exists(), "x/y/z were created by the spawn");
    assert_eq!(std::fs::read_to_string(keep.join("note")).unwrap(), "mine");
}
