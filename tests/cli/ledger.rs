//! `ledger verify` and `ledger list` on ledgers as a user's machine holds them.

use std::fs;
use std::path::PathBuf;

use crate::support::{Outcome, Sandbox};

const ZERO: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn ledger_path(sb: &Sandbox) -> PathBuf {
    sb.home().join(".local/share/spawn-elite/ledger.jsonl")
}

/// Lines chained as docs/RECEIPT.md describes, built here independently.
fn chained(names: &[&str]) -> String {
    let mut prev = ZERO.to_owned();
    let mut out = String::new();
    for (i, name) in names.iter().enumerate() {
        let line = format!(
            r#"{{"seq":{},"prev":"{prev}","created":"2026-01-02T03:04:05Z","repo":"/r/{name}","name":"{name}","type":"service","merkle_root":"{ZERO}","leaf_count":3,"receipt_blake3":"{ZERO}"}}"#,
            i + 1
        );
        prev = blake3::hash(line.as_bytes()).to_hex().to_string();
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn write_ledger(sb: &Sandbox, text: &str) {
    let path = ledger_path(sb);
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, text).expect("write");
}

#[test]
fn an_absent_ledger_verifies_and_lists_nothing() {
    let sb = Sandbox::new();
    let out = sb.run(["ledger", "verify"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("nothing to check"));
    let out = sb.run(["ledger", "list"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.is_empty());
    assert!(out.stderr.contains("no spawns recorded yet"));
}

#[test]
fn an_intact_chain_verifies_and_lists_every_spawn() {
    let sb = Sandbox::new();
    write_ledger(&sb, &chained(&["alpha", "beta", "gamma"]));
    let out = sb.run(["ledger", "verify"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("3 entries"));
    let out = sb.run(["ledger", "list"]);
    let text = &out.stdout;
    assert_eq!(text.lines().count(), 4, "a header and 3 rows: {text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..3],
        [
            " SEQ  CREATED               TYPE     NAME                     ROOT              REPOSITORY",
            "   1  2026-01-02T03:04:05Z  service  alpha                    0000000000000000  /r/alpha",
            "   2  2026-01-02T03:04:05Z  service  beta                     0000000000000000  /r/beta",
        ],
        "{text}"
    );
}

#[test]
fn list_json_prints_each_entry_as_one_json_line() {
    let sb = Sandbox::new();
    let ledger = chained(&["alpha", "beta", "gamma"]);
    write_ledger(&sb, &ledger);
    let out = sb.run(["ledger", "list", "--json"]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    // JSON Lines: no header, one object per spawn, the fields the ledger
    // holds, in its order.
    assert_eq!(out.stdout, ledger);
    let second: serde_json::Value =
        serde_json::from_str(out.stdout.lines().nth(1).expect("line 2")).expect("json");
    assert_eq!(
        (
            &second["seq"],
            &second["name"],
            &second["type"],
            &second["repo"]
        ),
        (
            &2.into(),
            &"beta".into(),
            &"service".into(),
            &"/r/beta".into()
        )
    );

    // Before a break, the entries that are intact, then the error.
    write_ledger(&sb, &ledger.replacen("/r/beta", "/r/evil", 1));
    let out = sb.assert_error(["ledger", "list", "--json"], 1, "is broken at line 3:");
    // Then, as for every error under --json, the error as a JSON line.
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    let error: serde_json::Value = serde_json::from_str(lines[2]).expect("json");
    assert_eq!(
        (&error["error"]["code"], &error["error"]["kind"]),
        (&1.into(), &"drift".into())
    );

    // No spawns: nothing on stdout, the reason on stderr.
    fs::remove_file(ledger_path(&sb)).expect("remove");
    let out = sb.run(["ledger", "list", "--json"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, ""));
    assert!(
        out.stderr.contains("no spawns recorded yet"),
        "{}",
        out.stderr
    );
}

fn verify_fails_at(sb: &Sandbox, text: &str, line: usize) {
    write_ledger(sb, text);
    sb.assert_error(
        ["ledger", "verify"],
        1,
        &format!("is broken at line {line}:"),
    );
}

#[test]
fn the_first_broken_line_is_reported() {
    let sb = Sandbox::new();
    let good = chained(&["alpha", "beta", "gamma", "delta"]);
    // Editing line 2 breaks the link that line 3 holds.
    verify_fails_at(&sb, &good.replacen("/r/beta", "/r/evil", 1), 3);
    let lines: Vec<&str> = good.lines().collect();
    verify_fails_at(&sb, &format!("{}\n{}\n", lines[0], lines[2]), 2);
    verify_fails_at(&sb, &format!("{}\n{}\n", lines[1], lines[0]), 1);
    verify_fails_at(&sb, &good[..good.len() - 3], 4);
    verify_fails_at(
        &sb,
        &good.replacen("{\"seq\":2", "{\"seq\":2,\"x\":1", 1),
        2,
    );
}

#[test]
fn list_shows_the_entries_before_a_break_then_the_error() {
    let sb = Sandbox::new();
    let good = chained(&["alpha", "beta", "gamma", "delta"]);
    write_ledger(&sb, &good.replacen("/r/beta", "/r/evil", 1));
    let out = sb.assert_error(["ledger", "list"], 1, "is broken at line 3:");
    let text = &out.stdout;
    let err = &out.stderr;
    // Line 2 was edited, which line 3 reveals: lines 1 and 2 are listed.
    assert_eq!(text.lines().count(), 3, "a header and 2 rows: {text}");
    assert!(text.starts_with(" SEQ  CREATED "), "{text}");
    assert!(text.contains("alpha") && text.contains("/r/evil"), "{text}");
    assert!(!text.contains("gamma"), "{text}");
    assert!(
        err.contains("move it aside") && err.contains("the next spawn starts a new chain"),
        "{err}"
    );

    // Broken at line 1: nothing to list, only the error.
    write_ledger(&sb, "garbage\n");
    let out = sb.assert_error(["ledger", "list"], 1, "is broken at line 1:");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_spawn_with_a_broken_ledger_warns_how_to_recover_and_moving_it_aside_works() {
    let sb = Sandbox::new();
    let good = chained(&["alpha", "beta"]);
    // Edited, not cut off: a cut-off line is for `ledger repair`
    // (reliability_store.rs).
    let edited = good.replacen("/r/alpha", "/r/evil", 1);
    write_ledger(&sb, &edited);
    let out = Outcome::of(
        sb.cmd()
            .args(["svc", "--quiet", "--out-dir"])
            .arg(sb.repos()),
    );
    let err = &out.stderr;
    assert_eq!(out.code, 0, "{err}");
    assert!(err.starts_with("warning: "), "{err}");
    assert!(err.contains("is broken at line 2:"), "{err}");
    assert!(err.contains("move it aside"), "{err}");
    // The ledger's own message (what comes before the spawn's suffix) does
    // not mention --no-ledger: the spawn says that once, at the end.
    let own = err
        .split("; the spawn is complete")
        .next()
        .unwrap_or_default();
    assert!(own.contains("the next spawn starts a new chain"), "{err}");
    assert!(!own.contains("--no-ledger"), "{err}");
    assert!(err.matches("--no-ledger").count() <= 1, "{err}");
    assert_eq!(fs::read_to_string(ledger_path(&sb)).expect("read"), edited);

    // The documented recovery: move it aside; the next spawn starts afresh.
    fs::rename(ledger_path(&sb), ledger_path(&sb).with_extension("broken")).expect("mv");
    sb.cmd()
        .args(["svc2", "--quiet", "--out-dir"])
        .arg(sb.repos())
        .assert()
        .success();
    let out = sb.run(["ledger", "verify"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("holds 1 entries"));
}

/// `chained`, with every line's fields given: the rest of a line after
/// `"seq":N,"prev":"…",`.
fn chain_of(bodies: &[String]) -> String {
    let mut prev = ZERO.to_owned();
    let mut out = String::new();
    for (i, body) in bodies.iter().enumerate() {
        let line = format!(r#"{{"seq":{},"prev":"{prev}",{body}}}"#, i + 1);
        prev = blake3::hash(line.as_bytes()).to_hex().to_string();
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[test]
fn ledger_verify_and_list_read_a_copied_ledger_given_with_file() {
    let sb = Sandbox::new();
    let copy = sb.path().join("from-ci/ledger.jsonl");
    fs::create_dir_all(copy.parent().expect("parent")).expect("mkdir");
    let text = chained(&["alpha", "beta"]);
    fs::write(&copy, &text).expect("write");
    let file = copy.to_str().expect("utf-8");

    let out = sb.run(["ledger", "verify", "--file", file]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    assert_eq!(
        out.stdout,
        format!("ok: ledger {file} holds 2 entries and its chain is intact (last root {ZERO})\n")
    );
    let out = sb.run(["ledger", "list", "--file", file]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with(" SEQ  CREATED "), "{}", out.stdout);
    assert!(out.stdout.contains("/r/beta"), "{}", out.stdout);
    let out = sb.run(["ledger", "list", "--json", "--file", file]);
    assert_eq!(out.stdout, text);
    // The user's own ledger was not read: it does not exist.
    assert!(!ledger_path(&sb).exists());

    // Checked like the ledger itself, and the advice names the file.
    fs::write(&copy, text.replacen("/r/alpha", "/r/evil", 1)).expect("write");
    let out = sb.assert_error(
        ["ledger", "verify", "--file", file],
        1,
        "is broken at line 2:",
    );
    assert!(
        out.stderr.contains(&format!("ledger {file}")),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("next spawn"), "{}", out.stderr);
    fs::write(&copy, &text[..text.len() - 4]).expect("write");
    sb.assert_error(
        ["ledger", "list", "--file", file],
        1,
        &format!("run `spawn-elite ledger repair --file {file}`"),
    );
    let gone = sb.path().join("nope.jsonl");
    sb.assert_error(
        ["ledger", "verify", "--file", gone.to_str().expect("utf-8")],
        2,
        "nope.jsonl does not exist",
    );
}

#[test]
fn ledger_verify_and_list_read_the_receivers_log_given_with_file() {
    let sb = Sandbox::new();
    let log = sb.path().join("received.jsonl");
    let line = |at: &str, name: &str, root: char| {
        let root: String = std::iter::repeat_n(root, 64).collect();
        format!(
            r#""received_at":"{at}","keyid":"ci-key","idempotency_key":"k-{name}","content_digest":"sha-256=:x:","receipt":{{"spawn":{{"name":"{name}","type":"tool"}},"merkle_root":"{root}"}}"#
        )
    };
    let text = chain_of(&[
        line("2026-12-01T10:00:00Z", "first", 'a'),
        line("2026-12-02T10:00:00Z", "second", 'b'),
    ]);
    fs::write(&log, &text).expect("write");
    let file = log.to_str().expect("utf-8");

    let out = sb.run(["ledger", "verify", "--file", file]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    assert_eq!(
        out.stdout,
        format!(
            "ok: log {file} holds 2 entries and its chain is intact (last root {})\n",
            "b".repeat(64)
        )
    );
    let out = sb.run(["ledger", "list", "--file", file]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            " SEQ  RECEIVED              TYPE     NAME                     ROOT              KEYID",
            "   1  2026-12-01T10:00:00Z  tool     first                    aaaaaaaaaaaaaaaa  ci-key",
            "   2  2026-12-02T10:00:00Z  tool     second                   bbbbbbbbbbbbbbbb  ci-key",
        ]
    );
    let out = sb.run(["ledger", "list", "--json", "--file", file]);
    assert_eq!(out.stdout, text, "each line as the receiver wrote it");

    fs::write(&log, text.replacen("k-first", "k-forged", 1)).expect("write");
    let out = sb.assert_error(
        ["ledger", "verify", "--file", file],
        1,
        "is broken at line 2:",
    );
    assert!(
        out.stderr.contains(&format!("log {file}")),
        "{}",
        out.stderr
    );
}

#[test]
fn update_rows_in_ledger_list_show_when_the_update_ran() {
    let sb = Sandbox::new();
    let templates =
        r#"{"source":"embedded","name":"spawn-elite-default","version":"1","digest":"d"}"#;
    let spawn = format!(
        r#""created":"2026-01-02T03:04:05Z","repo":"/r/svc","name":"svc","type":"service","merkle_root":"{ZERO}","leaf_count":3,"receipt_blake3":"{ZERO}""#
    );
    // The update's receipt carries the spawn's `created` over.
    let update = format!(
        r#"{spawn},"event":"update","update":{{"old_merkle_root":"{ZERO}","old_templates":{templates},"new_templates":{templates},"conflicts":0,"updated":"2026-11-30T12:00:00Z"}}"#
    );
    write_ledger(&sb, &chain_of(&[spawn, update]));
    let out = sb.run(["ledger", "list"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows: Vec<&str> = out.stdout.lines().skip(1).collect();
    assert!(
        rows[0].starts_with("   1  2026-01-02T03:04:05Z  service"),
        "{}",
        out.stdout
    );
    assert!(
        rows[1].starts_with("   2  2026-11-30T12:00:00Z  service"),
        "{}",
        out.stdout
    );
    assert!(rows[1].ends_with("(update spawn-elite-default 1 -> spawn-elite-default 1)"));
}

#[test]
fn ledger_add_without_a_receipt_gives_advice_that_works() {
    let sb = Sandbox::new();
    let tree = sb.path().join("handmade");
    fs::create_dir_all(&tree).expect("mkdir");
    fs::write(tree.join("notes.txt"), "by hand\n").expect("write");
    let dir = tree.to_str().expect("utf-8");
    let out = sb.assert_error(["ledger", "add", dir], 4, "no receipt at");
    assert!(!out.stderr.contains("--receipt"), "{}", out.stderr);
    // Follow the advice as written: every `spawn-elite …` it quotes.
    let quoted: Vec<&str> = out
        .stderr
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|cmd| cmd.starts_with("spawn-elite "))
        .collect();
    assert_eq!(quoted.len(), 2, "{}", out.stderr);
    for cmd in quoted {
        let words: Vec<&str> = cmd.split(' ').skip(1).collect();
        let run = sb.run(&words);
        assert_eq!(run.code, 0, "`{cmd}`: {}", run.stderr);
    }
    let out = sb.run(["ledger", "list"]);
    assert!(out.stdout.contains("handmade"), "{}", out.stdout);
}
