//! What the command line says when something is off: hints only where they
//! fit, errors that name the real problem, JSON errors for JSON readers,
//! and a `--help` and man page that read cleanly.

use serde_json::Value;

use crate::support::Sandbox;

#[test]
fn a_subcommand_error_hints_at_new_only_where_the_words_could_be_a_name() {
    let sb = Sandbox::new();
    for args in [
        // A missing value of the subcommand's own option.
        &["ledger", "verify", "--file"][..],
        // `verify` is no type, so `new ledger verify ...` is no spawn.
        &["ledger", "verify", "--bogus"],
        &["ledger", "verify", "--json"],
        &["ledger", "list", "--json", "extra"],
    ] {
        let out = sb.run(args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("error: "),
            "{args:?}: {}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("hint: to spawn"),
            "{args:?}: {}",
            out.stderr
        );
    }
    // Words that make a spawn still get it.
    for (args, name) in [
        (&["verify", "-o", "x"][..], "verify"),
        (&["ledger", "--json"], "ledger"),
        (&["receipt", "tool", "--no-git"], "receipt"),
    ] {
        let out = sb.run(args);
        assert_eq!(out.code, 2, "{args:?}");
        assert!(
            out.stderr
                .contains(&format!("hint: to spawn a repository named '{name}'")),
            "{args:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn verify_of_a_directory_that_does_not_exist_says_so() {
    let sb = Sandbox::new();
    let out = sb.assert_error(["verify", "/no/such/dir"], 4, "/no/such/dir does not exist");
    assert!(!out.stderr.contains("no receipt"), "{}", out.stderr);
    sb.assert_error(
        ["prove", "/no/such/dir", "a.txt"],
        4,
        "/no/such/dir does not exist",
    );
    let file = sb.path().join("plain.txt");
    std::fs::write(&file, "x").expect("write");
    sb.assert_error(
        ["verify".as_ref(), file.as_os_str()],
        4,
        "plain.txt is not a directory",
    );
}

/// stdout of a run that failed with `--json`: one JSON error object.
fn json_error(stdout: &str) -> Value {
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn with_json_an_error_is_also_a_json_object_on_stdout() {
    let sb = Sandbox::new();
    let out = sb.assert_error(["verify", "/no/such/dir", "--json"], 4, "does not exist");
    let value = json_error(&out.stdout);
    assert_eq!(value["error"]["code"], 4);
    assert_eq!(value["error"]["kind"], "io");
    let message = out
        .stderr
        .trim_end()
        .strip_prefix("error: ")
        .unwrap_or_default();
    assert_eq!(
        value["error"]["message"], message,
        "the same text as stderr"
    );

    // A spawn with a bad name, a usage error.
    let out = sb.run(["Bad_Name", "--json", "--out-dir", "r"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let value = json_error(&out.stdout);
    assert_eq!(
        (
            value["error"]["code"].as_i64(),
            value["error"]["kind"].as_str()
        ),
        (Some(2), Some("usage"))
    );
    assert!(!sb.path().join("r").exists());

    // A command line clap refuses, with --json among its words.
    let out = sb.run(["ledger", "list", "--json", "--bogus"]);
    assert_eq!(out.code, 2);
    let value = json_error(&out.stdout);
    assert_eq!(value["error"]["kind"], "usage");
    assert!(
        value["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("--bogus"),
        "{value}"
    );

    // Without --json, stdout stays empty.
    let out = sb.run(["verify", "/no/such/dir"]);
    assert_eq!((out.code, out.stdout.as_str()), (4, ""));
    // --help names the kinds and the object.
    let help = sb.run(["--help"]).stdout;
    assert!(help.contains("10   proof-mismatch"), "{help}");
    assert!(
        help.contains(r#"{"error": {"code": N, "kind": NAME, "message": TEXT}}"#),
        "{help}"
    );
}

#[test]
fn dry_run_says_whether_the_elite_files_are_in() {
    let sb = Sandbox::new();
    let json = |extra: &[&str]| -> Value {
        let mut args = vec!["svc", "--dry-run", "--json"];
        args.extend_from_slice(extra);
        serde_json::from_str(&sb.stdout(&args)).expect("json")
    };
    assert_eq!(json(&[])["elite"], true);
    assert_eq!(json(&["--no-elite"])["elite"], false);
    let text = sb.stdout(&["svc", "--dry-run", "--no-elite"]);
    let first = text.lines().next().unwrap_or_default();
    assert!(
        first.contains("--no-elite: the base files only); nothing was written:"),
        "{first}"
    );
    let text = sb.stdout(&["svc", "--dry-run"]);
    assert!(!text.contains("--no-elite"), "{text}");
}

#[test]
fn verify_exclude_of_a_path_the_receipt_lists_warns_it_has_no_effect() {
    let sb = Sandbox::new();
    let repo = sb.spawn(&["svc", "--no-elite", "--no-ledger"]);
    let dir = repo.to_str().expect("utf-8");
    let out = sb.run([
        "verify",
        dir,
        "--exclude",
        "README.md",
        "--exclude",
        "tests",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let warnings: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(warnings.len(), 2, "{}", out.stderr);
    assert!(
        warnings[0].starts_with(
            "warning: --exclude \"README.md\" has no effect on 1 file(s) the receipt lists (README.md): they are still checked"
        ),
        "{}",
        out.stderr
    );
    assert!(
        warnings[1].starts_with("warning: --exclude \"tests\" has no effect on "),
        "{}",
        out.stderr
    );
    // Still checked: a change to README.md is drift, excluded or not.
    let readme = std::fs::read(repo.join("README.md")).expect("read");
    std::fs::write(repo.join("README.md"), "edited\n").expect("write");
    let out = sb.run(["verify", dir, "--exclude", "README.md"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("modified      README.md"),
        "{}",
        out.stdout
    );
    // A pattern for what the receipt does not list is quiet.
    std::fs::write(repo.join("README.md"), readme).expect("restore");
    let out = sb.run(["verify", dir, "--exclude", ".venv/**"]);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
}

#[test]
fn help_environment_names_stand_apart_from_their_descriptions() {
    let sb = Sandbox::new();
    let help = sb.run(["--help"]).stdout;
    let section = help
        .split("\nEnvironment:\n")
        .nth(1)
        .expect("an Environment section");
    let names: Vec<&str> = section
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        [
            "VAULTMESH_REPOS",
            "XDG_DATA_HOME",
            "SOURCE_DATE_EPOCH",
            "SPAWN_ELITE_TEMPLATES"
        ],
        "{section}"
    );
}

#[test]
fn the_man_page_synopsis_shows_each_options_value() {
    let sb = Sandbox::new();
    let man = sb.run(["man"]).stdout;
    let synopsis = man
        .split(".SH SYNOPSIS\n")
        .nth(1)
        .and_then(|s| s.split("\n.SH ").next())
        .expect("a SYNOPSIS");
    for wanted in [
        r"[\fB\-t\fR|\fB\-\-type\fR \fITYPE\fR]",
        r"[\fB\-\-set\fR \fIKEY=VALUE\fR...]",
        r"[\fB\-o\fR|\fB\-\-out\-dir\fR \fIDIR\fR]",
        r"[\fB\-\-no\-git\fR]",
        r"[\fINAME\fR] [\fITYPE\fR]",
    ] {
        assert!(synopsis.contains(wanted), "{wanted} in {synopsis}");
    }
}
