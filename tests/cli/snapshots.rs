//! The full generated output of every type, pinned with insta. A template
//! change shows up here as a reviewable diff of the files users get.
//!
//! Update after an intended change: `INSTA_UPDATE=always cargo test --test cli snapshots`,
//! then review `git diff tests/cli/snapshots/`.

use std::os::unix::fs::PermissionsExt;

use crate::support::{Sandbox, tree};

fn render_tree(args: &[&str]) -> String {
    let sb = Sandbox::new();
    let mut all = args.to_vec();
    all.push("--no-git");
    let repo = sb.spawn(&all);
    let mut out = String::new();
    for path in tree(&repo) {
        let full = repo.join(&path);
        if full.is_dir() {
            continue;
        }
        let mode = std::fs::metadata(&full).unwrap().permissions().mode() & 0o777;
        let text = std::fs::read_to_string(&full).unwrap_or_else(|_| "<binary>".into());
        out.push_str(&format!("===== {path} ({mode:o})\n{text}"));
        if !text.ends_with('\n') {
            out.push_str("\n<no newline at end of file>\n");
        }
    }
    out
}

#[test]
fn service_elite() {
    insta::assert_snapshot!(render_tree(&["demo-svc", "service"]));
}

#[test]
fn infra_elite() {
    insta::assert_snapshot!(render_tree(&["demo-infra", "infra"]));
}

#[test]
fn tool_elite() {
    insta::assert_snapshot!(render_tree(&["demo-tool", "tool"]));
}

#[test]
fn file_lists_without_elite() {
    let mut out = String::new();
    for kind in ["service", "infra", "tool"] {
        let sb = Sandbox::new();
        let name = format!("demo-{kind}");
        let repo = sb.spawn(&[&name, kind, "--no-elite", "--no-git"]);
        out.push_str(&format!("## {kind}\n"));
        for path in tree(&repo).into_iter().filter(|p| repo.join(p).is_file()) {
            out.push_str(&format!("{path}\n"));
        }
    }
    insta::assert_snapshot!(out);
}

#[test]
fn set_values_reach_the_files() {
    let text = render_tree(&[
        "pay",
        "service",
        "--set",
        "org=acme",
        "--set",
        "port=9090",
        "--set",
        "python_version=3.11",
        "--set",
        "version=2.3.4",
        "--set",
        "description=Payments \"gateway\"",
    ]);
    assert!(
        text.contains("https://github.com/acme/pay.git"),
        "org in clone URL"
    );
    assert!(
        text.contains("Copyright (c) 2026 acme"),
        "org as LICENSE holder"
    );
    assert!(text.contains("9090"), "port");
    assert!(text.contains("python:3.11"), "python version in images");
    assert!(
        text.contains("pay:2.3.4"),
        "image tag pinned to the repo version"
    );
    assert!(
        text.contains("Payments \"gateway\"") || text.contains("Payments \\\"gateway\\\""),
        "description"
    );
    assert!(
        !text.contains("8000"),
        "default port leaked despite --set port"
    );
}
