//! Item 1: a spawn that fails or is interrupted removes only what it alone
//! created and what is still empty, never another spawn's repository.

use std::ffi::OsStr;
use std::process::Stdio;

use super::{Held, quiet_into, signal, staging_dirs};
use crate::support::{Outcome, Sandbox};

/// The race from the issue: spawn `b` into a base directory that does not
/// exist yet, hold it in git, let spawn `a` finish into the same base, then
/// interrupt `b`. `a` must survive, and so must the base it lives in.
#[test]
fn an_interrupted_spawn_keeps_a_repository_another_spawn_finished_in_its_new_base() {
    let sb = Sandbox::new();
    let base = sb.path().join("new/base");
    let first = Held::spawn_b(&sb, &base);
    assert_eq!(staging_dirs(&base).len(), 1, "b is staging in the new base");

    let second = sb.run(quiet_into("a", &base, &[]));
    assert!(second.success(), "{}", second.stderr);

    signal(first.pid(), "INT");
    let out = first.finish();
    assert_eq!(out.status.code(), Some(130));

    let a = base.join("a");
    assert!(a.join(".spawn-elite/receipt.json").is_file(), "a is gone");
    let verify = sb.run([OsStr::new("verify"), a.as_os_str()]);
    assert!(verify.success(), "{}", verify.stderr);
    assert!(!base.join("b").exists());
    assert_eq!(staging_dirs(&base), Vec::<String>::new());
    // The ledger line of `a` still points at a repository.
    let list = sb.run(["ledger", "list"]);
    assert!(
        list.stdout.contains(&*a.to_string_lossy()),
        "{}",
        list.stdout
    );
}

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

/// Two spawns of the same name into a base that does not exist yet: one
/// wins, the other is refused, and the winner's repository is always there.
#[test]
fn two_racing_spawns_of_one_name_never_lose_the_winner() {
    let sb = Sandbox::new();
    const TRIALS: usize = 20;
    for trial in 0..TRIALS {
        let base = sb.path().join(format!("race-{trial}"));
        let start = || {
            sb.process()
                .args(["svc", "--no-git", "--no-ledger", "--quiet", "--out-dir"])
                .arg(&base)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (one, two) = (start(), start());
        let outcomes = [one, two].map(|c| Outcome::from(c.wait_with_output().unwrap()));
        let mut codes: Vec<i32> = outcomes.iter().map(|o| o.code).collect();
        codes.sort_unstable();
        assert_eq!(
            codes,
            [0, 3],
            "trial {trial}: {:?}",
            outcomes.iter().map(|o| &o.stderr).collect::<Vec<_>>()
        );
        let repo = base.join("svc");
        assert!(
            repo.join(".spawn-elite/receipt.json").is_file(),
            "trial {trial}: the winner's repository is gone"
        );
        let verify = sb.run([OsStr::new("verify"), repo.as_os_str()]);
        assert!(verify.success(), "trial {trial}: {}", verify.stderr);
        assert_eq!(staging_dirs(&base), Vec::<String>::new(), "trial {trial}");
    }
}
