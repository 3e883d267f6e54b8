//! Item 3: SIGHUP and SIGTERM are handled like Ctrl-C, and the staging
//! directory of a spawn that was killed outright is found and removed by the
//! next spawn into the same base, or by `doctor`.

use super::{Held, quiet_into, signal, staging_dirs};
use crate::support::Sandbox;

#[test]
fn sighup_and_sigterm_mid_spawn_leave_nothing_behind() {
    for sig in ["HUP", "TERM", "INT"] {
        let sb = Sandbox::new();
        let base = sb.repos();
        let held = Held::spawn_b(&sb, &base);
        signal(held.pid(), sig);
        let out = held.finish();
        assert_eq!(out.status.code(), Some(130), "SIG{sig}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with("error: interrupted") && stderr.lines().count() == 1,
            "SIG{sig}: {stderr}"
        );
        assert!(!base.exists(), "SIG{sig} left {:?}", staging_dirs(&base));
    }
}

/// A spawn killed with SIGKILL cannot clean up; the next spawn into the same
/// base removes what it left and says so.
fn killed_spawn_in(sb: &Sandbox) -> String {
    let base = sb.repos();
    std::fs::create_dir_all(&base).unwrap();
    let held = Held::spawn_b(sb, &base);
    let git = held.git_pid();
    signal(held.pid(), "KILL");
    // The stand-in git outlives the spawn it belonged to; stop it too.
    signal(git, "KILL");
    drop(held);
    let left = staging_dirs(&base);
    assert_eq!(
        left.len(),
        1,
        "SIGKILL leaves the staging directory: {left:?}"
    );
    left[0].clone()
}

#[test]
fn the_next_spawn_removes_the_staging_directory_of_a_killed_one() {
    let sb = Sandbox::new();
    let stale = killed_spawn_in(&sb);
    let base = sb.repos();
    let next = sb.run(quiet_into("a", &base, &["--no-git"]));
    assert!(next.success(), "{}", next.stderr);
    let said: Vec<&str> = next.stderr.lines().collect();
    assert_eq!(said.len(), 1, "{}", next.stderr);
    assert!(
        said[0].starts_with("warning: removed ") && said[0].contains(&stale),
        "{}",
        said[0]
    );
    assert!(said[0].contains("killed"), "{}", said[0]);
    assert_eq!(staging_dirs(&base), Vec::<String>::new());
    assert!(base.join("a/main.py").is_file());
}

#[test]
fn doctor_removes_the_staging_directory_of_a_killed_spawn() {
    let sb = Sandbox::new();
    let stale = killed_spawn_in(&sb);
    let out = sb
        .cmd()
        .arg("doctor")
        .env("VAULTMESH_REPOS", sb.repos())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("warning: removed ") && l.contains(&stale)),
        "{stderr}"
    );
    assert_eq!(staging_dirs(&sb.repos()), Vec::<String>::new());
}

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
