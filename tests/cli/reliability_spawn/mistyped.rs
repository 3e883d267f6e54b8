//! Item 14: a mistyped subcommand, or a word the command line reserves, is
//! refused as a repository name (exit 2), with the command that spawns it
//! anyway; `new NAME` does.

use std::ffi::OsStr;

use crate::support::Sandbox;

fn refused(sb: &Sandbox, args: &[&str], message: &str) {
    let mut all: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    let repos = sb.repos();
    all.extend([OsStr::new("--out-dir"), repos.as_os_str()]);
    let o = sb.assert_error(all, 2, message);
    assert_eq!(o.stderr, format!("error: {message}\n"));
    assert!(!repos.exists(), "{args:?} created a repository");
    assert!(!sb.data().join("spawn-elite/ledger.jsonl").exists());
}

#[test]
fn a_near_miss_of_a_subcommand_is_refused_with_a_suggestion() {
    let sb = Sandbox::new();
    refused(
        &sb,
        &["verfy"],
        "did you mean `verify`? To spawn a repository with this name use `spawn-elite new verfy`",
    );
    refused(
        &sb,
        &["doctr"],
        "did you mean `doctor`? To spawn a repository with this name use `spawn-elite new doctr`",
    );
    refused(
        &sb,
        &["recieve", "--no-git"],
        "did you mean `receive`? To spawn a repository with this name use `spawn-elite new recieve`",
    );
    refused(
        &sb,
        &["updte", "--no-git"],
        "did you mean `update`? To spawn a repository with this name use `spawn-elite new updte`",
    );
}

/// `update` is a subcommand of its own: on a directory that is not a
/// spawned repository it fails and creates nothing.
#[test]
fn update_of_a_directory_that_is_not_there_creates_nothing() {
    let sb = Sandbox::new();
    let target = sb.repos().join("svc");
    let o = sb.run([OsStr::new("update"), target.as_os_str()]);
    assert_ne!(o.code, 0, "{}", o.stderr);
    assert!(!sb.repos().exists(), "update created {}", target.display());
    assert!(!sb.data().join("spawn-elite/ledger.jsonl").exists());
}

#[test]
fn templats_list_suggests_templates_not_an_unknown_type() {
    let sb = Sandbox::new();
    refused(
        &sb,
        &["templats", "list"],
        "did you mean `templates`? To spawn a repository with this name use `spawn-elite new templats`",
    );
}

#[test]
fn a_reserved_word_is_refused() {
    let sb = Sandbox::new();
    refused(
        &sb,
        &["status"],
        "To spawn a repository with this name use `spawn-elite new status`",
    );
}

#[test]
fn new_spawns_a_near_miss_name_anyway() {
    let sb = Sandbox::new();
    for name in ["verfy", "status"] {
        let o = sb.run([
            OsStr::new("new"),
            OsStr::new(name),
            OsStr::new("--no-git"),
            OsStr::new("--quiet"),
            OsStr::new("--out-dir"),
            sb.repos().as_os_str(),
        ]);
        assert!(o.success(), "{}", o.stderr);
        assert!(sb.repos().join(name).join("main.py").is_file());
    }
}

#[test]
fn ordinary_names_are_not_refused() {
    let sb = Sandbox::new();
    for name in ["my-svc", "web", "api", "billing"] {
        let o = sb.run([
            OsStr::new(name),
            OsStr::new("--no-git"),
            OsStr::new("--quiet"),
            OsStr::new("--out-dir"),
            sb.repos().as_os_str(),
        ]);
        assert!(o.success(), "{name}: {}", o.stderr);
    }
}
