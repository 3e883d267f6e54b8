//! What the tool stores outside a spawn survives full disks, crashes and
//! concurrent writers: the ledger, the receiver's log, keys and receipt
//! files (issue 14, items 2, 7 and 15; docs/RELIABILITY.md).
//!
//! Full disks are real: a tiny tmpfs, mounted when the tests run as root
//! and `mount` is permitted; otherwise those tests say why and skip, except
//! under `CI=true`, where they fail (the same failures are injected by unit
//! tests in src/chain.rs and src/callback/keys.rs, which always run).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use sha2::Digest as _;

use crate::support::{Outcome, Sandbox, receipt_json, send_args, unavailable};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

fn ledger_path(sb: &Sandbox) -> PathBuf {
    sb.data().join("spawn-elite/ledger.jsonl")
}

/// A small tmpfs, unmounted on drop (also used by reliability_callback.rs).
pub struct Tmpfs {
    pub dir: PathBuf,
}

impl Tmpfs {
    /// Mount a `size` tmpfs at `dir`, or say why not and return None.
    pub fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        fs::create_dir_all(dir).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs {
                dir: dir.to_path_buf(),
            }),
            Ok(o) => {
                unavailable(&format!(
                    "cannot mount a tmpfs to fill up (needs root and mount permission): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
                None
            }
            Err(e) => {
                unavailable(&format!("cannot run mount: {e}"));
                None
            }
        }
    }

    /// Fill every free byte with one file, and return its path.
    pub fn fill(&self) -> PathBuf {
        let path = self.dir.join("filler");
        let mut f = fs::File::create(&path).expect("filler");
        let chunk = [b'x'; 4096];
        // Bounded: the tmpfs is at most a few hundred KiB.
        for _ in 0..10_000 {
            if f.write_all(&chunk).is_err() {
                break;
            }
        }
        for _ in 0..4096 {
            if f.write_all(b"x").is_err() {
                break;
            }
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Spawn NAME --no-git into `repos/` with XDG_DATA_HOME at `data`.
fn spawn_into(sb: &Sandbox, name: &str, data: &Path) -> Outcome {
    Outcome::of(
        sb.cmd()
            .env("XDG_DATA_HOME", data)
            .args([name, "--no-git", "--quiet", "--out-dir"])
            .arg(sb.repos()),
    )
}

fn ledger_with(sb: &Sandbox, data: &Path, args: &[&str]) -> Outcome {
    Outcome::of(sb.cmd().env("XDG_DATA_HOME", data).arg("ledger").args(args))
}

/// The lines of a hash-chained file and whether its chain is intact.
fn walk(path: &Path) -> (usize, bool) {
    let text = fs::read(path).expect("read chain");
    let w = spawn_elite::chain::walk::<serde_json::Value>(&text);
    (w.entries.len(), w.broken.is_none())
}

// ------------------------------------------------------------ item 2

#[test]
fn a_full_disk_leaves_the_ledger_intact_and_ledger_add_records_the_spawn_later() {
    let sb = Sandbox::new();
    let Some(fs_) = Tmpfs::mount(&sb.path().join("full"), "64k") else {
        return;
    };
    let data = fs_.dir.clone();
    let ledger = data.join("spawn-elite/ledger.jsonl");
    assert!(spawn_into(&sb, "first", &data).success());
    let filler = fs_.fill();

    // Each spawn adds a line until one no longer fits: that spawn still
    // succeeds, warns, and leaves the ledger as it was.
    let mut failed = None;
    for i in 1..=40 {
        let name = format!("s{i}");
        let out = spawn_into(&sb, &name, &data);
        assert_eq!(out.code, 0, "{}", out.stderr);
        if !out.stderr.is_empty() {
            failed = Some((i, name, out.stderr));
            break;
        }
    }
    let (i, name, err) = failed.expect("the ledger filled the tmpfs within 40 spawns");
    assert_eq!(walk(&ledger), (i, true), "no partial line was left: {err}");
    eprintln!(
        "ledger: the tmpfs was full after {i} lines; spawn {} was refused and undone",
        i + 1
    );
    assert!(err.starts_with("warning: cannot update ledger"), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(
        err.contains("the ledger is unchanged: free some space"),
        "{err}"
    );
    let repo = fs::canonicalize(sb.repos().join(&name)).expect("repo");
    assert!(
        err.contains(&format!("`spawn-elite ledger add {}`", repo.display())),
        "{err}"
    );
    let out = ledger_with(&sb, &data, &["verify"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!("holds {i} entries")),
        "{}",
        out.stdout
    );

    // Space again: the command the warning named records the spawn.
    fs::remove_file(filler).expect("free space");
    let out = ledger_with(&sb, &data, &["add", s(&repo)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with(&format!("added: {}", repo.display())),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!("as entry {}", i + 1)),
        "{}",
        out.stdout
    );
    assert_eq!(walk(&ledger), (i + 1, true));
    // And the next spawn chains on without a word.
    let out = spawn_into(&sb, "after", &data);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "", "the ledger is not reported broken");
    assert_eq!(walk(&ledger), (i + 2, true));
}

#[test]
fn a_full_disk_leaves_the_receiver_log_intact_and_it_restarts() {
    let sb = Sandbox::new();
    let Some(fs_) = Tmpfs::mount(&sb.path().join("full"), "64k") else {
        return;
    };
    let real_log = fs_.dir.join("received.jsonl");
    std::os::unix::fs::symlink(&real_log, sb.log()).expect("log on the tmpfs");
    let (key, _) = sb.trusted_key("k");
    let rx = sb.receiver("127.0.0.1:0");
    let url = rx.url("/hook");
    let send = |seed: &str| {
        let receipt = sb.write_receipt(&format!("{seed}.json"), seed);
        sb.run(send_args(s(&receipt), &url, s(&key)))
    };
    assert!(send("r0").success());
    let filler = fs_.fill();

    let mut failed = None;
    for i in 1..=40 {
        let out = send(&format!("r{i}"));
        if !out.success() {
            failed = Some((i, out));
            break;
        }
    }
    let (i, out) = failed.expect("the log filled the tmpfs within 40 requests");
    assert_eq!(out.code, 7, "queued for later: {}", out.stderr);
    assert_eq!(walk(&real_log), (i, true), "no partial line was left");
    eprintln!(
        "receiver log: the tmpfs was full after {i} lines; request {} got 500 and was undone",
        i + 1
    );

    // Space again: the queued callback is delivered and chained on.
    fs::remove_file(filler).expect("free space");
    let out = sb.run(["callback", "flush"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(walk(&real_log), (i + 1, true));
    let (clean, _) = rx.stop();
    assert!(clean, "stopped cleanly");
    // It starts again on its own log (it refused to, before).
    let rx = sb.receiver("127.0.0.1:0");
    drop(rx);
}

/// Two spawns' lines, then a third cut off mid-write (a crash).
fn torn_ledger(sb: &Sandbox) -> (String, &'static str) {
    sb.spawn(&["alpha", "--no-git"]);
    sb.spawn(&["beta", "--no-git"]);
    let cut = "{\"seq\":3,\"prev\":\"0a1b";
    let mut text = fs::read_to_string(ledger_path(sb)).expect("ledger");
    text.push_str(cut);
    fs::write(ledger_path(sb), &text).expect("tear");
    (text, cut)
}

#[test]
fn a_torn_ledger_names_the_repair_command_and_repair_keeps_every_entry() {
    let sb = Sandbox::new();
    let (torn, cut) = torn_ledger(&sb);
    let out = sb.assert_error(
        ["ledger", "verify"],
        1,
        "is broken at line 3: it has no final newline, so it was cut off while written; run `spawn-elite ledger repair` to set it aside and keep the 2 complete entries before it",
    );
    assert!(out.stdout.is_empty());
    let out = sb.assert_error(["ledger", "list"], 1, "`spawn-elite ledger repair`");
    assert_eq!(out.stdout.lines().count(), 3, "{}", out.stdout);
    let out = Outcome::of(
        sb.cmd()
            .args(["gamma", "--no-git", "--quiet", "--out-dir"])
            .arg(sb.repos()),
    );
    assert_eq!(out.code, 0);
    assert!(
        out.stderr.contains("`spawn-elite ledger repair`"),
        "{}",
        out.stderr
    );
    assert_eq!(fs::read_to_string(ledger_path(&sb)).expect("ledger"), torn);

    let out = sb.run(["ledger", "repair"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let prefix = format!(
        "repaired: ledger {} keeps its 2 complete entries; the cut-off last line ({} bytes) was moved to {}.torn-",
        ledger_path(&sb).display(),
        cut.len(),
        ledger_path(&sb).display()
    );
    assert!(out.stdout.starts_with(&prefix), "{}", out.stdout);
    let saved = out
        .stdout
        .split_once("was moved to ")
        .map(|(_, p)| p.trim_end().to_owned())
        .unwrap_or_default();
    assert_eq!(fs::read_to_string(&saved).expect("saved aside"), cut);
    assert_eq!(
        fs::read_to_string(ledger_path(&sb)).expect("ledger"),
        &torn[..torn.len() - cut.len()]
    );
    let out = sb.run(["ledger", "verify"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("holds 2 entries"));
    sb.spawn(&["delta", "--no-git"]);
    assert!(
        sb.run(["ledger", "verify"])
            .stdout
            .contains("holds 3 entries")
    );

    let out = sb.run(["ledger", "repair"]);
    assert_eq!(out.code, 0);
    assert!(
        out.stdout
            .ends_with("holds 3 entries and its chain is intact; nothing to repair\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn repair_leaves_an_otherwise_broken_or_absent_ledger_alone() {
    let sb = Sandbox::new();
    let out = sb.run(["ledger", "repair"]);
    assert_eq!(out.code, 0);
    assert!(
        out.stdout.ends_with("is absent; nothing to repair\n"),
        "{}",
        out.stdout
    );
    assert!(!ledger_path(&sb).exists());

    sb.spawn(&["alpha", "--no-git"]);
    sb.spawn(&["beta", "--no-git"]);
    let text = fs::read_to_string(ledger_path(&sb)).expect("ledger");
    let edited = text.replacen("alpha", "evil", 1) + "{\"cut";
    fs::write(ledger_path(&sb), &edited).expect("edit");
    sb.assert_error(["ledger", "repair"], 1, "is broken at line 2: its prev")
        .assert_error(
            1,
            "repair only sets aside a cut-off last line, so the file was left unchanged",
        );
    assert_eq!(
        fs::read_to_string(ledger_path(&sb)).expect("ledger"),
        edited
    );
    let dir: Vec<_> = fs::read_dir(ledger_path(&sb).parent().expect("dir"))
        .expect("ls")
        .collect();
    assert_eq!(dir.len(), 1, "nothing was saved aside");
}

#[test]
fn a_torn_receiver_log_names_the_repair_command_and_then_starts() {
    let sb = Sandbox::new();
    let (key, _) = sb.trusted_key("k");
    {
        let rx = sb.receiver("127.0.0.1:0");
        let receipt = sb.write_receipt("a.json", "a");
        assert!(
            sb.run(send_args(s(&receipt), &rx.url("/hook"), s(&key)))
                .success()
        );
    }
    let mut text = fs::read_to_string(sb.log()).expect("log");
    text.push_str("{\"seq\":2,\"recei");
    fs::write(sb.log(), &text).expect("tear");
    let out = Outcome::of(
        sb.cmd()
            .args(["receive", "--listen", "127.0.0.1:0", "--trust"])
            .arg(sb.trust())
            .arg("--log")
            .arg(sb.log())
            .timeout(Duration::from_secs(30)),
    );
    out.assert_error(
        1,
        &format!(
            "ends in a partial line (cut off while written); run `spawn-elite ledger repair --file {}` to set it aside and keep the 1 complete entries before it",
            sb.log().display()
        ),
    );
    let out = sb.run(["ledger", "repair", "--file", s(&sb.log())]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with(&format!(
            "repaired: log {} keeps its 1 complete entries",
            sb.log().display()
        )),
        "{}",
        out.stdout
    );
    let rx = sb.receiver("127.0.0.1:0");
    let receipt = sb.write_receipt("b.json", "b");
    assert!(
        sb.run(send_args(s(&receipt), &rx.url("/hook"), s(&key)))
            .success()
    );
    drop(rx);
    assert_eq!(walk(&sb.log()), (2, true));
}

#[test]
fn concurrent_spawns_from_8_processes_make_one_chain_of_200() {
    let sb = Sandbox::new();
    let start = std::time::Instant::now();
    std::thread::scope(|scope| {
        for w in 0..8 {
            let sb = &sb;
            scope.spawn(move || {
                for j in 0..25 {
                    let out = spawn_into(sb, &format!("w{w}-{j}"), &sb.data());
                    assert!(out.success() && out.stderr.is_empty(), "{}", out.stderr);
                }
            });
        }
    });
    let out = sb.run(["ledger", "verify"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("holds 200 entries"), "{}", out.stdout);
    eprintln!(
        "8 x 25 concurrent spawns: 200 entries, chain intact, in {:?}",
        start.elapsed()
    );
    let list = sb.run(["ledger", "list"]).stdout;
    let mut names: Vec<&str> = list
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(3))
        .collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 200);
}

// ------------------------------------------------------------ item 7

#[test]
fn receipt_output_never_writes_through_a_planted_temporary_name() {
    let sb = Sandbox::new();
    let tree = sb.path().join("tree");
    fs::create_dir_all(&tree).expect("tree");
    fs::write(tree.join("a.txt"), "a\n").expect("file");
    let out_dir = sb.path().join("out");
    fs::create_dir_all(&out_dir).expect("out");
    let victim = sb.path().join("victim");
    fs::write(&victim, "keep\n").expect("victim");
    let planted = [
        "r.json.tmp",
        ".r.json.tmp",
        ".r.json.000000000000.tmp",
        "r.json.new",
    ];
    for name in planted {
        std::os::unix::fs::symlink(&victim, out_dir.join(name)).expect("plant");
    }
    let target = out_dir.join("r.json");
    for force in [false, true] {
        let mut args = vec!["receipt", s(&tree), "-o", s(&target)];
        if force {
            args.push("--force");
        }
        let out = sb.run(&args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let meta = fs::symlink_metadata(&target).expect("written");
        assert!(meta.file_type().is_file());
        assert!(
            fs::read_to_string(&target)
                .expect("r")
                .contains("\"a.txt\"")
        );
        assert_eq!(fs::read_to_string(&victim).expect("victim"), "keep\n");
        let verify = sb.run(["verify", s(&tree), "--receipt", s(&target)]);
        assert_eq!(
            verify.code, 0,
            "the receipt written verifies: {}",
            verify.stderr
        );
        let mut left: Vec<String> = fs::read_dir(&out_dir)
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut expected: Vec<String> = planted.iter().map(|s| (*s).to_owned()).collect();
        expected.push("r.json".into());
        expected.sort();
        assert_eq!(left, expected, "no temporary file is left");
    }
}

#[test]
fn keygen_on_a_full_disk_leaves_no_key_file_and_the_retry_works() {
    let sb = Sandbox::new();
    let Some(fs_) = Tmpfs::mount(&sb.path().join("full"), "16k") else {
        return;
    };
    let key = fs_.dir.join("k.pem");
    let filler = fs_.fill();
    let out = sb.assert_error(["keygen", "-o", s(&key)], 4, "No space left on device");
    assert!(
        out.stderr.contains(
            "neither key file was created: free some space and run `spawn-elite keygen` again"
        ),
        "{}",
        out.stderr
    );
    let left: Vec<_> = fs::read_dir(&fs_.dir).expect("ls").collect();
    assert_eq!(left.len(), 1, "only the filler: {left:?}");

    fs::remove_file(filler).expect("free space");
    let out = sb.run(["keygen", "-o", s(&key)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(key.exists() && fs_.dir.join("k.pem.pub").exists());
}

#[test]
fn ledger_add_checks_the_tree_and_refuses_a_duplicate() {
    let sb = Sandbox::new();
    let repo = sb.repos().join("svc");
    let out = Outcome::of(
        sb.cmd()
            .args(["svc", "--no-git", "--quiet", "--no-ledger", "--out-dir"])
            .arg(sb.repos()),
    );
    assert!(out.success(), "{}", out.stderr);
    assert!(!ledger_path(&sb).exists());
    let canonical = fs::canonicalize(&repo).expect("repo");

    let out = sb.run(["ledger", "add", s(&repo)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("as entry 1 (root "), "{}", out.stdout);
    let list = sb.run(["ledger", "list"]).stdout;
    assert!(
        list.contains("service")
            && list.contains("svc")
            && list.contains(&*canonical.to_string_lossy()),
        "{list}"
    );
    let receipt: serde_json::Value =
        serde_json::from_slice(&fs::read(repo.join(".spawn-elite/receipt.json")).expect("receipt"))
            .expect("json");
    let root = receipt["merkle_root"].as_str().expect("root");
    assert!(list.contains(&root[..16]), "{list}");

    sb.assert_error(
        ["ledger", "add", s(&repo)],
        2,
        &format!("{} is already in ledger", canonical.display()),
    )
    .assert_error(2, "as entry 1 with the same merkle root");

    fs::write(repo.join("README.md"), "changed\n").expect("edit");
    sb.assert_error(["ledger", "add", s(&repo)], 1, "does not match its receipt")
        .assert_error(1, "`spawn-elite verify ");
    let bare = sb.path().join("bare");
    fs::create_dir_all(&bare).expect("bare");
    sb.assert_error(["ledger", "add", s(&bare)], 4, "no receipt at");
    assert_eq!(walk(&ledger_path(&sb)), (1, true));
}

// ------------------------------------------------------------ item 15

fn openssl(args: &[&str]) -> Option<std::process::Output> {
    Command::new("openssl").args(args).output().ok()
}

#[test]
fn keys_round_trip_with_the_openssl_binary() {
    if openssl(&["version"]).is_none_or(|o| !o.status.success()) {
        unavailable("no openssl binary on PATH");
        return;
    }
    let sb = Sandbox::new();
    let (key, id) = sb.keygen("k");
    let public = sb.path().join("k.pem.pub");
    let ok = |args: &[&str]| {
        let out = openssl(args).expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    ok(&["pkey", "-in", s(&key), "-noout"]);
    ok(&["pkey", "-pubin", "-in", s(&public), "-noout"]);
    let derived = ok(&["pkey", "-in", s(&key), "-pubout"]);
    assert_eq!(
        derived,
        fs::read(&public).expect("pub"),
        "the same public key"
    );

    // A key openssl made is loaded, and signs with the key id of its public
    // key, computed here from openssl's own output.
    let theirs = sb.path().join("o.pem");
    ok(&["genpkey", "-algorithm", "ed25519", "-out", s(&theirs)]);
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(&theirs, fs::Permissions::from_mode(0o600)).expect("chmod");
    let der = ok(&["pkey", "-in", s(&theirs), "-pubout", "-outform", "DER"]);
    let raw = &der[der.len() - 32..];
    let expected_id =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&sha2::Sha256::digest(raw)[..16]);
    let receipt = sb.path().join("r.json");
    fs::write(&receipt, receipt_json("x")).expect("receipt");
    let mut args = send_args(s(&receipt), "https://registry.example/hook", s(&theirs));
    args.push("--dry-run");
    let out = sb.run(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!(";keyid=\"{expected_id}\";")),
        "{}",
        out.stdout
    );

    // Ours, by the same independent computation.
    let der = ok(&["pkey", "-pubin", "-in", s(&public), "-outform", "DER"]);
    let raw = &der[der.len() - 32..];
    let ours =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&sha2::Sha256::digest(raw)[..16]);
    assert_eq!(ours, id);
}
