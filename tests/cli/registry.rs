//! The fleet registry: real callbacks from real spawns and updates reach a
//! real receiver, whose index answers the API, the `registry` CLI, the page
//! and the operational endpoints; bad reads get clear answers, and a
//! damaged index is rebuilt from the log.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::files::{copy_dir, s, set_version};
use crate::support::{Outcome, Sandbox, spawn_receipt_json};
use crate::support::{ReceiverProc, http_get};

/// The embedded set exported as `acme` 1.0.0, and the same files as 1.1.0.
fn sets(sb: &Sandbox) -> (PathBuf, PathBuf) {
    let v1 = sb.export_acme("acme-1.0.0");
    let v2 = sb.path().join("acme-1.1.0");
    copy_dir(&v1, &v2);
    set_version(&v2, "1.0.0", "1.1.0");
    (v1, v2)
}

/// Spawn `args` (name first) with a callback to `rx`, signed with `key`.
fn spawn_reporting(sb: &Sandbox, rx: &ReceiverProc, key: &Path, args: &[&str]) -> PathBuf {
    let url = rx.url("/");
    let mut all = args.to_vec();
    all.extend_from_slice(&["--no-ledger", "--callback", &url, "--key", s(key)]);
    sb.spawn(&all)
}

/// `registry ARGS --url (rx)`.
fn registry(sb: &Sandbox, rx: &ReceiverProc, args: &[&str]) -> Outcome {
    let url = rx.url("");
    let mut all = vec!["registry"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--url", &url]);
    sb.run(&all)
}

/// A `--readers` directory holding one reader's public key, and that
/// reader's private key.
fn readers_dir(sb: &Sandbox) -> (PathBuf, PathBuf) {
    let readers = sb.path().join("readers");
    std::fs::create_dir_all(&readers).expect("mkdir");
    let (reader, _) = sb.keygen("reader");
    std::fs::copy(
        format!("{}.pub", reader.display()),
        readers.join("reader.pub"),
    )
    .expect("copy");
    (readers, reader)
}

fn json_of(out: &Outcome) -> Value {
    assert!(
        out.success(),
        "exit {}: {}{}",
        out.code,
        out.stdout,
        out.stderr
    );
    serde_json::from_str(&out.stdout).expect("JSON on stdout")
}

fn names(repos: &Value) -> Vec<String> {
    repos["repos"]
        .as_array()
        .expect("repos")
        .iter()
        .map(|r| r["name"].as_str().expect("name").to_owned())
        .collect()
}

#[test]
fn spawned_repositories_are_listed_with_their_set_and_an_older_version_is_behind() {
    let sb = Sandbox::new();
    let (key, key_id) = sb.trusted_key("org");
    let rx = sb.receiver("127.0.0.1:0");
    let (v1, v2) = sets(&sb);
    spawn_reporting(
        &sb,
        &rx,
        &key,
        &["alpha", "--templates", s(&v1), "--no-git"],
    );
    spawn_reporting(&sb, &rx, &key, &["beta", "--templates", s(&v2), "--no-git"]);
    spawn_reporting(
        &sb,
        &rx,
        &key,
        &["gamma", "tool", "--templates", s(&v2), "--no-git"],
    );

    let all = json_of(&registry(&sb, &rx, &["list", "--json"]));
    assert_eq!(names(&all), ["alpha", "beta", "gamma"]);
    let alpha = &all["repos"][0];
    assert_eq!(alpha["type"], "service");
    assert_eq!(alpha["set"]["name"], "acme");
    assert_eq!(alpha["set"]["version"], "1.0.0");
    assert_eq!(alpha["last_event"], "spawn");
    assert_eq!(alpha["keyid"], key_id.as_str());
    assert_eq!(alpha["signed"], false);

    // A rollout's question: which repositories of acme are behind 1.1.0?
    let behind = registry(&sb, &rx, &["list", "--set", "acme", "--behind", "1.1.0"]);
    assert!(behind.success(), "{}", behind.stderr);
    let rows: Vec<&str> = behind.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{}", behind.stdout);
    assert!(rows[0].starts_with("alpha "), "{}", behind.stdout);
    assert!(behind.stdout.starts_with("NAME "), "{}", behind.stdout);

    let tools = json_of(&registry(&sb, &rx, &["list", "--type", "tool", "--json"]));
    assert_eq!(names(&tools), ["gamma"]);

    let sets = json_of(&registry(&sb, &rx, &["sets", "--json"]));
    assert_eq!(
        sets["sets"],
        serde_json::json!([{
            "name": "acme",
            "versions": [{"version": "1.1.0", "repos": 2}, {"version": "1.0.0", "repos": 1}],
            "repos": 3
        }])
    );
    let table = registry(&sb, &rx, &["sets"]);
    assert!(
        table.stdout.contains("acme") && table.stdout.contains("(newest)"),
        "{}",
        table.stdout
    );
    let (clean, _) = rx.stop();
    assert!(clean);
}

#[test]
fn an_update_is_the_latest_event_and_the_history_keeps_the_spawn() {
    let sb = Sandbox::new();
    let (key, _) = sb.trusted_key("org");
    let rx = sb.receiver("127.0.0.1:0");
    let (v1, v2) = sets(&sb);
    let repo = spawn_reporting(&sb, &rx, &key, &["alpha", "--templates", s(&v1)]);
    let url = rx.url("/");
    let up = sb.update(
        &repo,
        &["--templates", s(&v2), "--callback", &url, "--key", s(&key)],
    );
    assert!(up.success(), "{}{}", up.stdout, up.stderr);

    let shown = json_of(&registry(&sb, &rx, &["show", "alpha", "--json"]));
    assert_eq!(shown["repo"]["last_event"], "update");
    assert_eq!(shown["repo"]["set"]["version"], "1.1.0");
    assert_eq!(shown["repo"]["events"], 2);
    let history = shown["history"].as_array().expect("history");
    let events: Vec<(&str, &str)> = history
        .iter()
        .map(|h| {
            (
                h["event"].as_str().expect("event"),
                h["set"]["version"].as_str().expect("version"),
            )
        })
        .collect();
    assert_eq!(events, [("spawn", "1.0.0"), ("update", "1.1.0")]);
    // The history carries what was received: the receipts themselves.
    let receipt: Value = serde_json::from_str(&crate::support::files::read(
        &repo.join(".spawn-elite/receipt.json"),
    ))
    .expect("receipt");
    assert_eq!(history[1]["receipt"]["merkle_root"], receipt["merkle_root"]);

    // The name's segment may be percent-encoded.
    let (status, _, body) = http_get(rx.addr, "/v1/repos/al%70h%61");
    assert_eq!(status, 200, "{body}");
    let encoded: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(encoded["history"], shown["history"]);

    let table = registry(&sb, &rx, &["show", "alpha"]);
    assert!(table.success(), "{}", table.stderr);
    assert!(
        table.stdout.starts_with("alpha (service, elite), 2 events"),
        "{}",
        table.stdout
    );
    let (clean, _) = rx.stop();
    assert!(clean);
}

#[test]
fn bad_reads_get_400_404_and_a_cli_error_naming_the_fix() {
    let sb = Sandbox::new();
    let rx = sb.receiver("127.0.0.1:0");
    let (status, head, body) = http_get(rx.addr, "/v1/repos?colour=blue");
    assert_eq!(status, 400, "{head}{body}");
    assert!(body.contains("colour"), "{body}");
    let (status, _, body) = http_get(rx.addr, "/v1/repos?behind=1.0.0");
    assert_eq!(status, 400, "{body}");
    // A bound that is no version would find every repository behind.
    let (status, _, body) = http_get(rx.addr, "/v1/repos?set=acme&behind=v1.10.0");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("is not a version"), "{body}");
    let (status, _, body) = http_get(rx.addr, "/v1/repos/nobody");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("nobody"), "{body}");
    let (status, _, _) = http_get(rx.addr, "/v1/nothing");
    assert_eq!(status, 404);

    let out = registry(&sb, &rx, &["show", "nobody"]);
    assert_eq!(out.code, 19, "{}", out.stderr);
    assert!(
        out.stderr.contains("no repository named \"nobody\""),
        "{}",
        out.stderr
    );
    let out = registry(&sb, &rx, &["list", "--since", "yesterday"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("since"), "{}", out.stderr);
    // Nothing listens here any more: exit 19, naming the URL.
    let url = rx.url("");
    let (clean, _) = rx.stop();
    assert!(clean);
    let out = sb.run(["registry", "sets", "--url", &url, "--timeout", "5"]);
    assert_eq!(out.code, 19, "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot reach the registry"),
        "{}",
        out.stderr
    );
}

#[test]
fn signed_reads_are_required_when_asked_and_only_a_readers_key_passes() {
    let sb = Sandbox::new();
    let (readers, reader) = readers_dir(&sb);
    let (stranger, _) = sb.keygen("stranger");
    // Behind a proxy on the same host every read comes from loopback: this
    // flag makes the receiver ask loopback for signatures too.
    let rx = sb.receiver_with(
        "127.0.0.1:0",
        &["--readers", s(&readers), "--require-signed-reads"],
    );
    let unsigned = registry(&sb, &rx, &["list"]);
    assert_eq!(unsigned.code, 19, "{}", unsigned.stderr);
    assert!(
        unsigned.stderr.contains("401") && unsigned.stderr.contains("--key"),
        "{}",
        unsigned.stderr
    );
    let (status, _, _) = http_get(rx.addr, "/v1/sets");
    assert_eq!(status, 401);

    let signed = registry(&sb, &rx, &["list", "--json", "--key", s(&reader)]);
    assert_eq!(json_of(&signed)["repos"], serde_json::json!([]));
    let signed_query = registry(
        &sb,
        &rx,
        &[
            "list",
            "--set",
            "acme",
            "--behind",
            "2.0.0",
            "--key",
            s(&reader),
        ],
    );
    assert!(signed_query.success(), "{}", signed_query.stderr);

    let foreign = registry(&sb, &rx, &["sets", "--key", s(&stranger)]);
    assert_eq!(foreign.code, 19, "{}", foreign.stderr);
    assert!(
        foreign.stderr.contains("401") && foreign.stderr.contains("not a reader here"),
        "{}",
        foreign.stderr
    );

    // Probes and scrapers need no key.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let (status, _, body) = http_get(rx.addr, path);
        assert_eq!(status, 200, "{path}: {body}");
    }
    // The three refused reads are counted as reads, not as callbacks.
    let (_, _, metrics) = http_get(rx.addr, "/metrics");
    assert!(
        metrics.contains("spawn_elite_receiver_reads_refused_total{reason=\"signature\"} 3"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("spawn_elite_receiver_callbacks_refused_total{"),
        "{metrics}"
    );
    let (clean, _) = rx.stop();
    assert!(clean);

    // Where loopback reads are open, a signature is still checked: a key
    // that is no reader's never seems to work.
    let open = sb.receiver_with("127.0.0.1:0", &["--readers", s(&readers)]);
    assert!(registry(&sb, &open, &["sets"]).success());
    assert!(registry(&sb, &open, &["sets", "--key", s(&reader)]).success());
    let foreign = registry(&sb, &open, &["sets", "--key", s(&stranger)]);
    assert_eq!(foreign.code, 19, "{}", foreign.stderr);
    let (clean, _) = open.stop();
    assert!(clean);
}

#[test]
fn a_missing_key_directory_is_named_by_its_option() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.trust()).expect("mkdir");
    let missing = sb.path().join("no-readers");
    let log = sb.path().join("log.jsonl");
    for (option, dir, trust) in [
        ("--readers", s(&missing), s(&sb.trust())),
        ("--trust", s(&sb.trust()), s(&missing)),
    ] {
        let mut args = vec!["receive", "--listen", "127.0.0.1:0", "--log", s(&log)];
        args.extend(["--trust", trust, "--readers", dir]);
        sb.assert_error(
            &args,
            2,
            &format!("cannot read the {option} directory {}: ", missing.display()),
        );
    }
}

#[test]
fn health_readiness_and_metrics_report_the_log_and_the_requests() {
    let sb = Sandbox::new();
    let (key, _) = sb.trusted_key("org");
    let rx = sb.receiver("127.0.0.1:0");
    spawn_reporting(&sb, &rx, &key, &["alpha", "--no-git"]);
    let (status, _, body) = http_get(rx.addr, "/healthz");
    assert_eq!((status, body.trim()), (200, "ok"));
    let (status, _, body) = http_get(rx.addr, "/readyz");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("1 log lines"), "{body}");
    let _ = http_get(rx.addr, "/v1/repos?colour=blue");
    let (status, head, metrics) = http_get(rx.addr, "/metrics");
    assert_eq!(status, 200);
    assert!(head.contains("application/openmetrics-text"), "{head}");
    for want in [
        "spawn_elite_receiver_requests_total{route=\"callback\",status=\"204\"} 1",
        "spawn_elite_receiver_requests_total{route=\"repos\",status=\"400\"} 1",
        "spawn_elite_receiver_log_lines 1",
        "spawn_elite_receiver_index_lag_lines 0",
        "spawn_elite_receiver_request_duration_seconds_bucket{",
    ] {
        assert!(metrics.contains(want), "{want} missing:\n{metrics}");
    }
    let (clean, _) = rx.stop();
    assert!(clean);
}

#[test]
fn a_garbage_index_is_rebuilt_with_a_warning_and_answers_as_before() {
    let sb = Sandbox::new();
    let (key, _) = sb.trusted_key("org");
    let rx = sb.receiver("127.0.0.1:0");
    spawn_reporting(&sb, &rx, &key, &["alpha", "--no-git"]);
    spawn_reporting(&sb, &rx, &key, &["beta", "tool", "--no-git"]);
    let before = json_of(&registry(&sb, &rx, &["list", "--json"]));
    let (clean, _) = rx.stop();
    assert!(clean);

    let index = PathBuf::from(format!("{}.index.sqlite", sb.log().display()));
    assert!(index.is_file(), "the index lives beside the log");
    std::fs::write(
        &index,
        b"this is not an SQLite database, it was overwritten",
    )
    .expect("overwrite");
    let log_before = std::fs::read(sb.log()).expect("log");
    let rx = sb.receiver("127.0.0.1:0");
    let after = json_of(&registry(&sb, &rx, &["list", "--json"]));
    assert_eq!(after, before);
    let (clean, err) = rx.stop();
    assert!(clean);
    assert!(
        err.contains("rebuil"),
        "a warning says the index was rebuilt: {err}"
    );
    assert_eq!(
        std::fs::read(sb.log()).expect("log"),
        log_before,
        "the log is untouched"
    );
}

#[test]
fn a_receipt_that_names_no_repository_is_logged_but_left_out_of_the_index_with_a_warning() {
    let sb = Sandbox::new();
    let (key, _) = sb.trusted_key("org");
    let rx = sb.receiver("127.0.0.1:0");
    // `spawn-elite receipt DIR` makes receipts of any tree: no repository.
    let receipt = sb.write_receipt("any-tree.json", "any tree");
    let sent = sb.send(s(&receipt), &rx.url("/hook"), s(&key), &[]);
    assert!(sent.success(), "{}", sent.stderr);
    // A receipt made by hand with a name no spawn makes, meant to forge
    // rows in a terminal: logged (it is signed and valid), not indexed.
    let forged = sb.path().join("forged.json");
    std::fs::write(
        &forged,
        spawn_receipt_json("forged", "nu\nzzfake service acme 9.9.9 spawn"),
    )
    .expect("write");
    let sent = sb.send(s(&forged), &rx.url("/hook"), s(&key), &[]);
    assert!(sent.success(), "{}", sent.stderr);
    spawn_reporting(&sb, &rx, &key, &["alpha", "--no-git"]);
    assert_eq!(sb.log_lines().len(), 3, "all three are in the log");
    let listed = json_of(&registry(&sb, &rx, &["list", "--json"]));
    assert_eq!(names(&listed), ["alpha"]);
    let (status, _, body) = http_get(rx.addr, "/readyz");
    assert_eq!(status, 200, "a skipped line is still taken in: {body}");
    let (clean, err) = rx.stop();
    assert!(clean);
    assert!(
        err.contains("log line 1 is not in the registry index"),
        "{err}"
    );
    assert!(
        err.contains("log line 2 is not in the registry index")
            && err.contains("names no repository a spawn could make"),
        "{err}"
    );
}

#[test]
fn the_catalog_and_the_page_show_the_fleet() {
    let sb = Sandbox::new();
    let (key, _) = sb.trusted_key("org");
    let rx = sb.receiver("127.0.0.1:0");
    spawn_reporting(&sb, &rx, &key, &["alpha", "--no-git"]);
    let (status, head, yaml) = http_get(rx.addr, "/v1/catalog");
    assert_eq!(status, 200, "{yaml}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/yaml"),
        "{head}"
    );
    assert!(
        yaml.contains("kind") && yaml.contains("Component") && yaml.contains("alpha"),
        "{yaml}"
    );
    let (status, head, html) = http_get(rx.addr, "/");
    assert_eq!(status, 200, "{html}");
    assert!(head.to_ascii_lowercase().contains("text/html"), "{head}");
    assert!(html.contains("data-repo=\"alpha\""), "{html}");
    let (clean, _) = rx.stop();
    assert!(clean);
}

#[test]
fn a_read_signed_for_the_receivers_own_address_passes_under_a_public_url() {
    let sb = Sandbox::new();
    let (readers, reader) = readers_dir(&sb);
    let rx = sb.receiver_with(
        "127.0.0.1:0",
        &[
            "--readers",
            s(&readers),
            "--require-signed-reads",
            "--public-url",
            "https://registry.example/spawns",
        ],
    );
    // An operator on the host signs for the address it reads from.
    let out = registry(&sb, &rx, &["sets", "--json", "--key", s(&reader)]);
    assert_eq!(json_of(&out)["sets"], serde_json::json!([]));
    let (clean, _) = rx.stop();
    assert!(clean);
}
