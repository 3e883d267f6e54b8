//! Template sets as an organisation uses them: export the embedded set,
//! change it, check it, spawn from it, pin it; sets that extend the
//! embedded one; broken sets, each reported with file:line; values from a
//! file or a replayed receipt; and key rules that hold for any manifest.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{Outcome, Sandbox, tree};

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).expect("JSON")
}

fn receipt_of(repo: &Path) -> Value {
    json_of(&fs::read_to_string(repo.join(".spawn-elite/receipt.json")).expect("receipt"))
}

/// `templates list --json` of a set (None: the embedded one).
fn listing(sb: &Sandbox, dir: Option<&Path>) -> Value {
    let mut args = vec!["templates", "list", "--json"];
    if let Some(dir) = dir {
        args.extend(["--templates", s(dir)]);
    }
    let out = sb.run(&args);
    assert!(out.success(), "{}", out.stderr);
    json_of(&out.stdout)
}

fn export(sb: &Sandbox, name: &str) -> PathBuf {
    let dir = sb.path().join(name);
    let out = sb.run(["templates", "export", s(&dir)]);
    assert!(out.success(), "{}", out.stderr);
    dir
}

fn spawn_from(sb: &Sandbox, set: &Path, args: &[&str]) -> PathBuf {
    let mut all = args.to_vec();
    all.extend(["--templates", s(set), "--no-git", "--no-ledger"]);
    sb.spawn(&all)
}

/// Append `text` to the file at `path`.
fn append(path: &Path, text: &str) {
    let mut old = fs::read_to_string(path).expect("read");
    old.push_str(text);
    fs::write(path, old).expect("write");
}

const WORKER_TYPE: &str = r#"
[[types]]
name = "worker"
description = "a queue worker"
layers = ["base", "worker"]
elite = ["elite/worker"]
next_steps = ["make run   # start the worker"]

[[keys]]
name = "queue"
description = "the queue the worker reads"
default = "jobs"
types = ["worker"]
rules = [{ pattern = '[a-z][a-z0-9-]{0,30}', message = "a queue name is a lowercase letter, then up to 30 lowercase letters, digits or '-'" }]
"#;

fn add_worker(set: &Path) {
    append(&set.join("spawn-elite.toml"), WORKER_TYPE);
    fs::create_dir_all(set.join("worker")).unwrap();
    fs::write(
        set.join("worker/worker.py.j2"),
        "QUEUE = {{ queue | tojson }}\nNAME = {{ name | tojson }}\n",
    )
    .unwrap();
    fs::create_dir_all(set.join("elite/worker/.github/workflows")).unwrap();
    fs::write(
        set.join("elite/worker/.github/workflows/ci.yml"),
        "name: ci\n",
    )
    .unwrap();
}

#[test]
fn an_exported_set_edited_checked_and_spawned_shows_every_change() {
    let sb = Sandbox::new();
    let set = export(&sb, "acme-set");
    // The export is the embedded set, byte for byte: same digest, and the
    // digest is the Merkle root a receipt of the folder gives.
    let embedded = listing(&sb, None);
    assert_eq!(listing(&sb, Some(&set))["digest"], embedded["digest"]);
    let receipt = json_of(&sb.run(["receipt", s(&set)]).stdout);
    assert_eq!(receipt["merkle_root"], embedded["digest"]);

    // Edit a file, remove a file, rename the set, add a type and a key.
    append(
        &set.join("base/SECURITY.md.j2"),
        "\nAcme: security@acme.test\n",
    );
    fs::remove_file(set.join("base/.yamllint")).unwrap();
    let manifest = set.join("spawn-elite.toml");
    let text = fs::read_to_string(&manifest)
        .unwrap()
        .replace("name = \"spawn-elite\"", "name = \"acme\"")
        .replace("version = \"1.0.0\"", "version = \"2.1.0\"");
    fs::write(&manifest, text).unwrap();
    add_worker(&set);

    let check = sb.run(["templates", "check", s(&set)]);
    assert!(check.success(), "{}", check.stderr);
    assert!(
        check.stdout.starts_with("ok: template set acme 2.1.0"),
        "{}",
        check.stdout
    );
    let listed = listing(&sb, Some(&set));
    let digest = listed["digest"].as_str().unwrap().to_owned();
    assert_ne!(listed["digest"], embedded["digest"]);
    assert_eq!(listed["types"][3]["name"], "worker");
    assert_eq!(listed["keys"][5]["name"], "queue");

    for kind in ["service", "infra", "tool", "worker"] {
        let name = format!("x-{kind}");
        let repo = spawn_from(&sb, &set, &[&name, kind]);
        let security = fs::read_to_string(repo.join("SECURITY.md")).unwrap();
        assert!(security.contains("Acme: security@acme.test"), "{kind}");
        assert!(!repo.join(".yamllint").exists(), "{kind}");
        let r = receipt_of(&repo);
        assert_eq!(r["format"], "spawn-elite.receipt/v2");
        assert_eq!(r["spawn"]["type"], kind);
        let t = &r["spawn"]["templates"];
        assert_eq!(t["source"], "dir");
        assert_eq!(t["name"], "acme");
        assert_eq!(t["version"], "2.1.0");
        assert_eq!(t["digest"], digest.as_str());
        // queue is a worker key: only a worker's receipt records it.
        let queue = if kind == "worker" {
            Value::from("jobs")
        } else {
            Value::Null
        };
        assert_eq!(r["spawn"]["options"]["queue"], queue, "{kind}");
        assert_eq!(r["spawn"]["options"]["org"], "vaultmesh");
        let verify = sb.run(["verify", s(&repo)]);
        assert!(verify.success(), "{}", verify.stderr);
    }
    let worker = sb.repos().join("x-worker");
    assert_eq!(
        fs::read_to_string(worker.join("worker.py")).unwrap(),
        "QUEUE = \"jobs\"\nNAME = \"x-worker\"\n"
    );
    assert!(worker.join(".github/workflows/ci.yml").is_file());
    let files = tree(&worker);
    assert!(!files.iter().any(|f| f == "main.py"), "{files:?}");

    // The new key's rule is enforced, naming the key.
    let repo = spawn_from(&sb, &set, &["y-worker", "worker", "--set", "queue=emails"]);
    assert!(
        fs::read_to_string(repo.join("worker.py"))
            .unwrap()
            .contains("\"emails\"")
    );
    sb.assert_error(
        [
            "z-worker",
            "worker",
            "--templates",
            s(&set),
            "--set",
            "queue=Emails!",
        ],
        2,
        "invalid --set queue=\"Emails!\": a queue name is a lowercase letter",
    );
}

#[test]
fn a_set_that_extends_the_embedded_one_is_a_small_directory() {
    let sb = Sandbox::new();
    let set = sb.path().join("ours");
    fs::create_dir_all(set.join("base")).unwrap();
    fs::write(
        set.join("spawn-elite.toml"),
        format!(
            "[set]\nname = \"ours\"\nversion = \"3\"\nextends = \"embedded\"\nremove = [\"base/.yamllint\"]\n{WORKER_TYPE}"
        ),
    )
    .unwrap();
    fs::write(set.join("base/CODEOWNERS.j2"), "* @{{ org }}/platform\n").unwrap();
    fs::write(set.join("base/LICENSE.j2"), "Ours, {{ year }}.\n").unwrap();
    fs::create_dir_all(set.join("worker")).unwrap();
    fs::write(
        set.join("worker/worker.py.j2"),
        "QUEUE = {{ queue | tojson }}\n",
    )
    .unwrap();
    fs::create_dir_all(set.join("elite/worker")).unwrap();
    fs::write(set.join("elite/worker/Dockerfile"), "FROM scratch\n").unwrap();

    let check = sb.run(["templates", "check", s(&set)]);
    assert!(check.success(), "{}", check.stderr);

    let repo = spawn_from(&sb, &set, &["svc", "--set", "org=acme"]);
    assert_eq!(
        fs::read_to_string(repo.join("CODEOWNERS")).unwrap(),
        "* @acme/platform\n"
    );
    assert_eq!(
        fs::read_to_string(repo.join("LICENSE")).unwrap(),
        "Ours, 2026.\n"
    );
    assert!(!repo.join(".yamllint").exists());
    assert!(
        repo.join("main.py").is_file(),
        "embedded service files stay"
    );
    let worker = spawn_from(&sb, &set, &["wrk", "worker"]);
    assert!(worker.join("Dockerfile").is_file());
    assert!(worker.join("CODEOWNERS").is_file());

    // The digest: H(0x02 || embedded digest || Merkle root of this folder).
    let embedded = listing(&sb, None)["digest"].as_str().unwrap().to_owned();
    let own = json_of(&sb.run(["receipt", s(&set)]).stdout)["merkle_root"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut input = vec![2u8];
    input.extend(hex_bytes(&embedded));
    input.extend(hex_bytes(&own));
    let expected = blake3::hash(&input).to_hex().to_string();
    assert_eq!(
        receipt_of(&repo)["spawn"]["templates"]["digest"],
        expected.as_str()
    );
    assert_eq!(listing(&sb, Some(&set))["digest"], expected.as_str());
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn a_pinned_digest_that_differs_refuses_and_creates_nothing() {
    let sb = Sandbox::new();
    let set = export(&sb, "set");
    let digest = listing(&sb, Some(&set))["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let wrong = format!("{}0", &digest[..63]);
    let wrong = if wrong == digest {
        format!("{}1", &digest[..63])
    } else {
        wrong
    };
    sb.assert_error(
        [
            "pinned",
            "--templates",
            s(&set),
            "--templates-digest",
            &wrong,
            "--out-dir",
            s(&sb.repos()),
        ],
        2,
        &format!("has digest {digest}, not {wrong}"),
    );
    assert!(!sb.repos().join("pinned").exists());
    assert!(!sb.repos().exists(), "not even the parent directory");
    // The right digest (in any case) spawns; the embedded set pins too.
    spawn_from(
        &sb,
        &set,
        &["pinned", "--templates-digest", &digest.to_uppercase()],
    );
    sb.assert_error(
        [
            "other",
            "--templates-digest",
            &wrong,
            "--out-dir",
            s(&sb.repos()),
        ],
        2,
        "template set embedded has digest",
    );
    sb.assert_error(
        ["other", "--templates-digest", "abc"],
        2,
        "is not 64 hex digits",
    );
}

#[test]
fn export_refuses_a_non_empty_directory_unless_forced() {
    let sb = Sandbox::new();
    let dir = sb.path().join("busy");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("notes.txt"), "mine\n").unwrap();
    sb.assert_error(
        ["templates", "export", s(&dir)],
        2,
        "is not empty; export into a new or empty directory, or pass --force",
    );
    assert_eq!(tree(&dir), ["notes.txt"]);
    let out = sb.run(["templates", "export", s(&dir), "--force"]);
    assert!(out.success(), "{}", out.stderr);
    assert!(dir.join("spawn-elite.toml").is_file());
    assert_eq!(fs::read_to_string(dir.join("notes.txt")).unwrap(), "mine\n");
}

// ------------------------------------------------------------ broken sets

const MINI_MANIFEST: &str = r#"[set]
name = "mini"
version = "1"

[[types]]
name = "app"
description = "an app"
layers = ["app"]
elite = ["extra"]

[[keys]]
name = "owner"
description = "who owns it"
default = "team"
rules = [{ pattern = '[a-z]+', message = "an owner is lowercase letters" }]
"#;

/// A small valid set: one type of two layers, one key.
fn mini_set(dir: &Path) {
    fs::create_dir_all(dir.join("app")).unwrap();
    fs::create_dir_all(dir.join("extra")).unwrap();
    fs::write(dir.join("spawn-elite.toml"), MINI_MANIFEST).unwrap();
    fs::write(
        dir.join("app/README.md.j2"),
        "# {{ name }}\n\nOwned by {{ owner }}.\n",
    )
    .unwrap();
    fs::write(dir.join("extra/CI.md"), "ci\n").unwrap();
}

fn replace_in(path: &Path, from: &str, to: &str) {
    let text = fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from:?} not in {}", path.display());
    fs::write(path, text.replace(from, to)).unwrap();
}

type Breakage = fn(&Path);

#[test]
fn each_broken_set_is_reported_with_file_and_line_and_never_spawned() {
    // (what is wrong, how to break the set, file:line expected in the error)
    let cases: Vec<(&str, Breakage, &str)> = vec![
        (
            "unknown variable",
            |d| fs::write(d.join("app/README.md.j2"), "# {{ name }}\n\n{{ ownr }}\n").unwrap(),
            "app/README.md.j2:3: unknown variable `ownr`",
        ),
        (
            "template syntax error",
            |d| fs::write(d.join("app/README.md.j2"), "# {{ name }}\n{% if %}\n").unwrap(),
            "app/README.md.j2:2: syntax error",
        ),
        (
            "syntax error in an included partial",
            |d| {
                fs::create_dir_all(d.join("partials")).unwrap();
                fs::write(d.join("partials/foot.j2"), "ok\n{{ name }\n").unwrap();
                fs::write(
                    d.join("app/README.md.j2"),
                    "# {{ name }}\n{% include \"partials/foot.j2\" %}\n",
                )
                .unwrap();
            },
            "partials/foot.j2:2: syntax error",
        ),
        (
            "include out of the set",
            |d| {
                fs::write(
                    d.join("app/README.md.j2"),
                    "# {{ name }}\n\n{% include \"../secret\" %}\n",
                )
                .unwrap()
            },
            "app/README.md.j2:3: invalid operation: \"../secret\" cannot be included: absolute names and '..' are not allowed",
        ),
        (
            "an absolute include",
            |d| {
                fs::write(
                    d.join("app/README.md.j2"),
                    "# {{ name }}\n{% include \"/etc/hostname\" %}\n",
                )
                .unwrap()
            },
            "app/README.md.j2:2: invalid operation: \"/etc/hostname\" cannot be included: absolute names and '..' are not allowed (it is absolute)",
        ),
        (
            "an output file named .spawn-elite",
            |d| fs::write(d.join("app/.spawn-elite"), "x\n").unwrap(),
            "app/.spawn-elite: would be written to \".spawn-elite\", where spawn-elite keeps its receipt",
        ),
        (
            "a file in one layer where another has a folder",
            |d| {
                fs::write(d.join("app/a"), "file\n").unwrap();
                fs::create_dir_all(d.join("extra/a")).unwrap();
                fs::write(d.join("extra/a/b"), "inside\n").unwrap();
            },
            "extra/a/b: would be written to a/b, inside a, which",
        ),
        (
            "a nested .git",
            |d| {
                fs::create_dir_all(d.join("app/sub/.git")).unwrap();
                fs::write(d.join("app/sub/.git/config"), "[core]\n").unwrap();
            },
            "app/sub/.git/config: would be written to \"sub/.git/config\", where git owns every .git directory",
        ),
        (
            "a generated .gitignore that ignores a generated file",
            |d| {
                fs::write(d.join("app/.gitignore"), "# logs\n*.log\n").unwrap();
                fs::write(d.join("app/keep.log"), "x\n").unwrap();
            },
            "app/.gitignore:2: the pattern `*.log` ignores keep.log, which the spawn writes",
        ),
        (
            "a .gitignore of *",
            |d| fs::write(d.join("app/.gitignore"), "*\n").unwrap(),
            "app/.gitignore:1: the pattern `*` ignores .gitignore, ",
        ),
        (
            "a backslash in a file name",
            |d| {
                fs::write(d.join("app/a\\b"), "one\n").unwrap();
                fs::create_dir_all(d.join("app/a")).unwrap();
                fs::write(d.join("app/a/b"), "two\n").unwrap();
            },
            "app/a\\b: has a backslash in its name",
        ),
        (
            "a default that fails its own rule",
            |d| {
                replace_in(
                    &d.join("spawn-elite.toml"),
                    "default = \"team\"",
                    "default = \"Team\"",
                )
            },
            "spawn-elite.toml:14: the default of key owner for type app is \"Team\", which breaks its own rule: an owner is lowercase letters",
        ),
        (
            "a layer that climbs out of the set",
            |d| {
                replace_in(
                    &d.join("spawn-elite.toml"),
                    "layers = [\"app\"]",
                    "layers = [\"../app\"]",
                )
            },
            "spawn-elite.toml:8: type app: layer \"../app\" is not a folder inside the set",
        ),
        (
            "an absolute layer",
            |d| {
                replace_in(
                    &d.join("spawn-elite.toml"),
                    "elite = [\"extra\"]",
                    "elite = [\"/etc\"]",
                )
            },
            "spawn-elite.toml:9: type app: layer \"/etc\" is not a folder inside the set: it is absolute",
        ),
        (
            "a symlink out of the set",
            |d| {
                std::os::unix::fs::symlink("../../../etc/hostname", d.join("app/hostname")).unwrap()
            },
            "app/hostname: is a symlink to ../../../etc/hostname, which points out of the set",
        ),
        (
            "two layers writing one path",
            |d| fs::write(d.join("extra/README.md"), "other\n").unwrap(),
            "spawn-elite.toml:9: type app: layers app and extra both write README.md",
        ),
        (
            "a TOML error",
            |d| {
                replace_in(
                    &d.join("spawn-elite.toml"),
                    "version = \"1\"",
                    "version = 1",
                )
            },
            "spawn-elite.toml:3: invalid type",
        ),
        (
            "an unknown manifest field",
            |d| {
                replace_in(
                    &d.join("spawn-elite.toml"),
                    "description = \"an app\"",
                    "descripton = \"an app\"",
                )
            },
            "spawn-elite.toml:7: unknown field `descripton`",
        ),
        (
            "a pattern that is not a regular expression",
            |d| replace_in(&d.join("spawn-elite.toml"), "'[a-z]+'", "'[a-z+'"),
            "spawn-elite.toml:15: key owner: pattern \"[a-z+\" is not a valid regular expression",
        ),
        (
            "a pattern too large to compile",
            |d| {
                replace_in(
                    &d.join("spawn-elite.toml"),
                    "'[a-z]+'",
                    "'(?:[a-z]{1000}){1000}'",
                )
            },
            "spawn-elite.toml:11: key owner: pattern \"(?:[a-z]{1000}){1000}\" cannot be used: Compiled regex exceeds size limit of 10485760 bytes; simplify it",
        ),
        (
            "a layer with no files",
            |d| {
                replace_in(
                    &d.join("spawn-elite.toml"),
                    "elite = [\"extra\"]",
                    "elite = [\"extras\"]",
                )
            },
            "spawn-elite.toml:9: type app: layer \"extras\" has no files",
        ),
        (
            "no manifest",
            |d| fs::remove_file(d.join("spawn-elite.toml")).unwrap(),
            "spawn-elite.toml: is missing",
        ),
    ];
    let sb = Sandbox::new();
    let good = sb.path().join("good");
    mini_set(&good);
    let ok = sb.run(["templates", "check", s(&good)]);
    assert!(ok.success(), "the unbroken set checks clean: {}", ok.stderr);

    for (i, (what, breakage, needle)) in cases.into_iter().enumerate() {
        let dir = sb.path().join(format!("broken-{i}"));
        mini_set(&dir);
        breakage(&dir);
        let expected = format!("{}/{needle}", dir.display());
        let check = sb.run(["templates", "check", s(&dir)]);
        assert_eq!(check.code, 2, "{what}: {}", check.stderr);
        assert!(
            !check.stderr.contains("panicked"),
            "{what}: {}",
            check.stderr
        );
        assert!(
            check
                .stderr
                .lines()
                .any(|l| l.starts_with("error: ") && l.contains(&expected)),
            "{what}: wanted {expected:?} in\n{}",
            check.stderr
        );
        // Given to a spawn: one line naming the same place, nothing created.
        let name = format!("b{i}");
        let spawn = sb.run([
            name.as_str(),
            "app",
            "--templates",
            s(&dir),
            "--no-git",
            "--out-dir",
            s(&sb.repos()),
        ]);
        spawn.assert_error(2, &expected);
        assert!(!sb.repos().join(&name).exists(), "{what}");
    }
}

#[test]
fn a_variable_in_a_branch_no_default_takes_is_still_caught() {
    let sb = Sandbox::new();
    let dir = sb.path().join("set");
    mini_set(&dir);
    fs::write(
        dir.join("app/README.md.j2"),
        "# {{ name }}\n{% if owner == \"nobody\" %}\n{{ contact }}\n{% endif %}\n",
    )
    .unwrap();
    sb.run(["templates", "check", s(&dir)]).assert_error(
        2,
        &format!(
            "{}/app/README.md.j2:3: unknown variable `contact`",
            dir.display()
        ),
    );
}

// ------------------------------------------------------ values and replays

#[test]
fn values_come_from_a_toml_or_json_file_and_set_wins() {
    let sb = Sandbox::new();
    let toml = sb.path().join("values.toml");
    fs::write(&toml, "port = 9090\norg = \"acme\"\nversion = \"1.2.3\"\n").unwrap();
    let repo = sb.spawn(&[
        "svc",
        "--values",
        s(&toml),
        "--set",
        "org=beta",
        "--no-git",
        "--no-ledger",
    ]);
    let options = &receipt_of(&repo)["spawn"]["options"];
    assert_eq!(options["port"], "9090");
    assert_eq!(options["org"], "beta");
    assert_eq!(options["version"], "1.2.3");

    let json = sb.path().join("values.json");
    fs::write(&json, r#"{"port": "80"}"#).unwrap();
    sb.assert_error(
        ["svc2", "--values", s(&json)],
        2,
        &format!(
            "invalid port=\"80\" in --values {}: use a port from 1024 to 65535",
            json.display()
        ),
    );
    fs::write(&json, r#"{"prot": "8080"}"#).unwrap();
    sb.assert_error(
        ["svc2", "--values", s(&json)],
        2,
        "unknown key \"prot\" in --values",
    );
    fs::write(&toml, "port = \n").unwrap();
    sb.assert_error(
        ["svc2", "--values", s(&toml)],
        2,
        &format!("{}:1: --values is not valid TOML", toml.display()),
    );
}

#[test]
fn a_receipt_replays_its_type_elite_flag_set_and_values() {
    let sb = Sandbox::new();
    let set = export(&sb, "set");
    add_worker(&set);
    let first = spawn_from(
        &sb,
        &set,
        &[
            "first",
            "worker",
            "--no-elite",
            "--set",
            "queue=mail",
            "--set",
            "org=acme",
        ],
    );
    let receipt = first.join(".spawn-elite/receipt.json");
    let again = spawn_from(&sb, &set, &["again", "--from-receipt", s(&receipt)]);
    let (a, b) = (
        receipt_of(&first)["spawn"].clone(),
        receipt_of(&again)["spawn"].clone(),
    );
    assert_eq!(b["name"], "again");
    for field in ["type", "options", "templates", "elite"] {
        assert_eq!(a[field], b[field], "{field}");
    }
    assert_eq!(b["elite"], false);
    // The set it came from is needed, and must be the same set.
    sb.assert_error(
        ["third", "--from-receipt", s(&receipt)],
        2,
        "was spawned from template set spawn-elite 1.0.0 on disk",
    );
    append(&set.join("worker/worker.py.j2"), "# changed\n");
    sb.assert_error(
        [
            "third",
            "--from-receipt",
            s(&receipt),
            "--templates",
            s(&set),
        ],
        2,
        "as receipt",
    );
    // A receipt of a plain tree records no spawn.
    let plain = sb.path().join("plain.json");
    let out = sb.run(["receipt", s(&set), "-o", s(&plain)]);
    assert!(out.success(), "{}", out.stderr);
    sb.assert_error(
        ["fourth", "--from-receipt", s(&plain)],
        2,
        "records no spawn",
    );
}

#[test]
fn receipts_written_before_template_sets_still_verify() {
    let sb = Sandbox::new();
    let repo = sb.spawn(&["old", "tool", "--no-git", "--no-ledger"]);
    let path = repo.join(".spawn-elite/receipt.json");
    let mut r = receipt_of(&repo);
    r["format"] = "spawn-elite.receipt/v1".into();
    let spawn = r["spawn"].as_object_mut().unwrap();
    spawn.remove("templates");
    spawn.insert(
        "template_digest".into(),
        "f53135e5e5ff9d771a2d8bc4e09deffe9e4266e6eb6c947180607b24264b7ab9".into(),
    );
    fs::write(&path, serde_json::to_string_pretty(&r).unwrap()).unwrap();
    let out = sb.run(["verify", s(&repo)]);
    assert!(out.success(), "{}", out.stderr);
    // v1 with v2's field (or the reverse) is refused.
    let mut mixed = r.clone();
    mixed["format"] = "spawn-elite.receipt/v2".into();
    fs::write(&path, serde_json::to_string_pretty(&mixed).unwrap()).unwrap();
    sb.run(["verify", s(&repo)])
        .assert_error(6, "a v2 spawn section has templates");
}

// ------------------------------------------------------- key rules, any

mod rules {
    use std::path::Path;

    use proptest::prelude::*;
    use spawn_elite::spawn::config::{Request, SpawnConfig};

    /// A rule as the manifest writes it, a value it accepts (the default),
    /// and values it refuses.
    #[derive(Debug, Clone)]
    struct Case {
        rule: String,
        default: String,
        outside: Vec<String>,
    }

    fn range_case() -> impl Strategy<Value = Case> {
        (-5000i64..5000, 0i64..5000, any::<prop::sample::Index>()).prop_map(|(lo, width, pick)| {
            let hi = lo + width;
            let default = lo + pick.index((width + 1) as usize) as i64;
            let mut outside = vec![
                (lo - 1).to_string(),
                (hi + 1).to_string(),
                "x".into(),
                String::new(),
            ];
            outside.push(format!("+{default}"));
            if default > 0 {
                outside.push(format!("0{default}"));
            }
            Case {
                rule: format!("range = [{lo}, {hi}]"),
                default: default.to_string(),
                outside,
            }
        })
    }

    fn choices_case() -> impl Strategy<Value = Case> {
        (
            prop::collection::btree_set("[a-z0-9.-]{1,8}", 1..5),
            any::<prop::sample::Index>(),
        )
            .prop_map(|(set, pick)| {
                let choices: Vec<String> = set.into_iter().collect();
                let default = choices[pick.index(choices.len())].clone();
                let quoted: Vec<String> = choices.iter().map(|c| format!("{c:?}")).collect();
                Case {
                    rule: format!("choices = [{}]", quoted.join(", ")),
                    outside: vec![
                        format!("{default}!"),
                        default.to_uppercase() + "Z",
                        String::new(),
                    ],
                    default,
                }
            })
    }

    fn pattern_case() -> impl Strategy<Value = Case> {
        (1usize..6, 0usize..6, "[a-z]{12}").prop_map(|(min, extra, letters)| {
            let max = min + extra;
            let default = letters[..min].to_owned();
            Case {
                rule: format!("pattern = '[a-z]{{{min},{max}}}'"),
                outside: vec![
                    letters[..max + 1].to_owned(),
                    format!("{default}-"),
                    format!("A{default}"),
                ],
                default,
            }
        })
    }

    fn write_set(dir: &Path, case: &Case) {
        std::fs::create_dir_all(dir.join("app")).unwrap();
        std::fs::write(dir.join("app/out.txt.j2"), "{{ knob }}\n").unwrap();
        std::fs::write(
            dir.join("spawn-elite.toml"),
            format!(
                "[set]\nname = \"p\"\nversion = \"1\"\n\n[[types]]\nname = \"app\"\ndescription = \"d\"\nlayers = [\"app\"]\n\n[[keys]]\nname = \"knob\"\ndescription = \"k\"\ndefault = {:?}\nrules = [{{ {}, message = \"knob rule\" }}]\n",
                case.default, case.rule
            ),
        )
        .unwrap();
    }

    fn request(dir: &Path, out: &Path, set: Vec<String>) -> Request {
        Request {
            name: "prop".into(),
            out_dir: Some(out.to_path_buf()),
            templates: Some(dir.to_path_buf()),
            set,
            ..Request::default()
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(96)
        ))]

        #[test]
        fn any_valid_key_rule_round_trips(case in prop_oneof![range_case(), choices_case(), pattern_case()]) {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("set");
            write_set(&dir, &case);
            // The default passes: the set loads and a spawn takes it.
            let config = SpawnConfig::from_request(&request(&dir, tmp.path(), vec![]), spawn_elite::clock::Clock::system());
            let config = config.map_err(|e| format!("{e:#}"));
            prop_assert!(config.is_ok(), "{:?}", config.err());
            let config = config.unwrap();
            prop_assert_eq!(config.values.get("knob"), Some(&case.default));
            // The default given back with --set passes too.
            let again = SpawnConfig::from_request(&request(&dir, tmp.path(), vec![format!("knob={}", case.default)]), spawn_elite::clock::Clock::system());
            prop_assert!(again.is_ok());
            // Values outside the rule are refused, naming the key and the rule.
            for bad in &case.outside {
                let err = SpawnConfig::from_request(&request(&dir, tmp.path(), vec![format!("knob={bad}")]), spawn_elite::clock::Clock::system());
                let message = err.err().map(|e| spawn_elite::error::describe(&e)).unwrap_or_default();
                prop_assert!(message.starts_with("invalid --set knob="), "{bad:?}: {message}");
                prop_assert!(message.ends_with(": knob rule"), "{bad:?}: {message}");
            }
        }
    }
}

/// docs/TEMPLATES.md's test vector, computed there by
/// `python3 scripts/templates_digest.py --vector`.
#[test]
fn the_digest_test_vector_matches_the_independent_script() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let sb = Sandbox::new();
    let dir = sb.path().join("vector");
    fs::create_dir_all(dir.join("app/bin")).unwrap();
    fs::write(
        dir.join("spawn-elite.toml"),
        "[set]\nname = \"v\"\nversion = \"1\"\n\n[[types]]\nname = \"app\"\ndescription = \"d\"\nlayers = [\"app\"]\n",
    )
    .unwrap();
    fs::write(dir.join("app/README.md.j2"), "# {{ name }}\n").unwrap();
    let bin = dir.join("app/bin/__name__");
    fs::write(&bin, "#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    symlink("README.md.j2", dir.join("app/LICENSE")).unwrap();
    assert_eq!(
        listing(&sb, Some(&dir))["digest"],
        "b6df0d9c9da3ca83367e28b3d5e0818b3f4f3c15561563f8ed60a1c8fde327ea"
    );
    // Spawning follows the link inside the set; without `.j2` in its own
    // name, the file it names is copied as is.
    let repo = spawn_from(&sb, &dir, &["vec"]);
    assert_eq!(
        fs::read_to_string(repo.join("README.md")).unwrap(),
        "# vec\n"
    );
    assert_eq!(
        fs::read_to_string(repo.join("LICENSE")).unwrap(),
        "# {{ name }}\n"
    );
}

/// A template that fails only for some values fails the spawn while it is
/// rendered, after the staging directory is made and `git init` started in
/// it: the spawn names the template and leaves nothing, not even the
/// `--out-dir` directories it made.
#[test]
fn a_template_failing_at_render_time_leaves_nothing_behind() {
    let sb = Sandbox::new();
    let dir = sb.path().join("set");
    mini_set(&dir);
    fs::write(
        dir.join("app/README.md.j2"),
        "# {{ name }}\n{% if owner == \"boom\" %}{{ 1 // 0 }}{% endif %}\n",
    )
    .unwrap();
    let base = sb.path().join("new/base");
    let spawn = sb.run([
        "zz",
        "app",
        "--templates",
        s(&dir),
        "--set",
        "owner=boom",
        "--out-dir",
        s(&base),
    ]);
    spawn.assert_error(
        2,
        "app/README.md.j2:2: invalid operation: unable to calculate 1 // 0",
    );
    assert!(
        !sb.path().join("new").exists(),
        "the spawn made new/base and left it"
    );

    // The same set spawns for other values.
    let ok = sb.run(["zz", "app", "--templates", s(&dir), "--out-dir", s(&base)]);
    assert!(ok.success(), "{}", ok.stderr);
    assert_eq!(
        fs::read_to_string(base.join("zz/README.md")).unwrap(),
        "# zz\n"
    );
}

/// The indented shell block of docs/TEMPLATES.md's worked example, as a
/// script.
fn worked_example() -> String {
    let doc = include_str!("../../docs/TEMPLATES.md");
    let section = doc
        .split("## Worked example: a `worker` type")
        .nth(1)
        .expect("the worked example section");
    let mut script = String::new();
    let mut started = false;
    for line in section.lines() {
        if let Some(code) = line.strip_prefix("    ") {
            started = true;
            script.push_str(code);
            script.push('\n');
        } else if line.is_empty() {
            if started {
                script.push('\n');
            }
        } else if started {
            break;
        }
    }
    assert!(
        script.contains("spawn-elite templates check acme"),
        "{script}"
    );
    script
}

#[test]
fn the_worked_example_of_templates_md_runs_as_written() {
    let sb = Sandbox::new();
    let bin = Path::new(env!("CARGO_BIN_EXE_spawn-elite"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // bash, in the sandbox's environment (HOME, git config, the clock).
    let mut bash = std::process::Command::new("bash");
    for (key, value) in sb.process().get_envs() {
        match value {
            Some(v) => bash.env(key, v),
            None => bash.env_remove(key),
        };
    }
    let out = bash
        .args(["-euo", "pipefail", "-c", &worked_example()])
        .current_dir(sb.path())
        .env("PATH", path)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("worker reading emails"), "{stdout}");
    // The set was renamed, so check has nothing to warn about.
    assert!(!stderr.contains("warning"), "{stderr}");
    let repo = sb.path().join("my-worker");
    for file in [
        "README.md",
        "Makefile",
        "worker.py",
        "Dockerfile",
        "LICENSE",
    ] {
        assert!(repo.join(file).is_file(), "{file} is missing");
    }
    assert_eq!(
        receipt_of(&repo)["spawn"]["templates"]["name"],
        "acme",
        "the receipt names the renamed set"
    );
}

#[test]
fn check_warns_when_a_changed_set_keeps_the_embedded_name_and_version() {
    let sb = Sandbox::new();
    let set = export(&sb, "same-name");
    let check = sb.run(["templates", "check", s(&set)]);
    assert!(check.success(), "{}", check.stderr);
    assert!(
        check.stderr.is_empty(),
        "an unchanged export: {}",
        check.stderr
    );
    append(&set.join("base/.editorconfig"), "\n# ours\n");
    let check = sb.run(["templates", "check", s(&set)]);
    assert!(check.success(), "{}", check.stderr);
    assert!(
        check
            .stderr
            .contains("keeps its name and version (spawn-elite 1.0.0)")
            && check.stderr.contains("change name and version under [set]"),
        "{}",
        check.stderr
    );
}

#[test]
fn an_extending_sets_plain_file_replaces_the_embedded_template_of_the_same_output() {
    let sb = Sandbox::new();
    let set = sb.path().join("owners");
    fs::create_dir_all(set.join("base")).unwrap();
    fs::write(
        set.join("spawn-elite.toml"),
        "[set]\nname = \"owners\"\nversion = \"1\"\nextends = \"embedded\"\n",
    )
    .unwrap();
    fs::write(set.join("base/CODEOWNERS"), "* @acme/owners\n").unwrap();
    let check = sb.run(["templates", "check", s(&set)]);
    assert!(check.success(), "{}", check.stderr);
    let repo = spawn_from(&sb, &set, &["own", "tool"]);
    assert_eq!(
        fs::read_to_string(repo.join("CODEOWNERS")).unwrap(),
        "* @acme/owners\n"
    );
    // Both spellings in the set itself is the set's own collision, and the
    // error names its files.
    fs::write(set.join("base/CODEOWNERS.j2"), "* @{{ org }}\n").unwrap();
    let check = sb.run(["templates", "check", s(&set)]);
    assert_eq!(check.code, 2, "{}", check.stderr);
    assert!(
        check.stderr.contains("base/CODEOWNERS") && !check.stderr.contains("embedded:"),
        "{}",
        check.stderr
    );
}

#[test]
fn templates_list_sources_shows_the_set_path_that_remove_takes() {
    let sb = Sandbox::new();
    let out = sb.run(["templates", "list", "--sources"]);
    assert!(out.success(), "{}", out.stderr);
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("base/CODEOWNERS.j2"))
        .expect("a line for base/CODEOWNERS.j2");
    assert!(line.trim_end().ends_with(" CODEOWNERS"), "{line}");
    let json = listing(&sb, None);
    let row = json["files"]
        .as_array()
        .expect("files")
        .iter()
        .find(|r| r["path"] == "CODEOWNERS")
        .expect("CODEOWNERS row");
    assert_eq!(row["sources"], serde_json::json!(["base/CODEOWNERS.j2"]));
}

#[test]
fn an_unknown_type_or_pin_without_templates_points_at_templates_dir() {
    let sb = Sandbox::new();
    sb.assert_error(
        ["w2", "worker"],
        2,
        "a type of your own template set needs --templates DIR (or SPAWN_ELITE_TEMPLATES=DIR)",
    );
    let pin = "a".repeat(64);
    sb.assert_error(
        ["w2", "--templates-digest", pin.as_str()],
        2,
        "no --templates was given, so that is the set built into spawn-elite",
    );
}

// ------------------------------------------------------------ bounded work

/// A set of one type, `app`, whose one layer holds `files`.
fn set_of(dir: &Path, files: &[(String, String)]) {
    fs::create_dir_all(dir.join("app")).unwrap();
    fs::write(
        dir.join("spawn-elite.toml"),
        "[set]\nname = \"b\"\nversion = \"1\"\n\n[[types]]\nname = \"app\"\ndescription = \"d\"\nlayers = [\"app\"]\n",
    )
    .unwrap();
    for (path, text) in files {
        fs::write(dir.join("app").join(path), text).unwrap();
    }
}

/// Run with a time limit: a run that outlives it is killed (code -1).
fn run_within(sb: &Sandbox, args: &[&str], secs: u64) -> Outcome {
    Outcome::of(
        sb.cmd()
            .args(args)
            .timeout(std::time::Duration::from_secs(secs)),
    )
}

/// `check` of the set in `dir` and a spawn from it both fail at once with
/// `needle` (which names the file), and the spawn leaves nothing behind:
/// no repository, no staging directory, not the `--out-dir` it made.
fn refused_by_check_and_spawn(sb: &Sandbox, dir: &Path, needle: &str) {
    let check = run_within(sb, &["templates", "check", s(dir)], 120);
    check.assert_error(2, needle);
    let base = sb.path().join("fresh/base");
    let spawn = run_within(
        sb,
        &["zz", "app", "--templates", s(dir), "--out-dir", s(&base)],
        120,
    );
    spawn.assert_error(2, needle);
    assert!(
        !sb.path().join("fresh").exists(),
        "the spawn left {:?}",
        tree(&sb.path().join("fresh"))
    );
}

/// A template set is code: one that loops for hours or renders gigabytes
/// is stopped at a limit, named with its file, in `check` and in a spawn.
#[test]
fn a_set_that_loops_or_floods_is_stopped_naming_the_file() {
    let sb = Sandbox::new();
    // Nested loops: 10^10 steps, hours before the limits.
    let dir = sb.path().join("loops");
    set_of(
        &dir,
        &[(
            "x.j2".into(),
            "a\n{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}\n"
                .into(),
        )],
    );
    refused_by_check_and_spawn(
        &sb,
        &dir,
        &format!(
            "{}/app/x.j2:2: takes more than 1000000 steps to render, the limit for one file",
            dir.display()
        ),
    );
    // 10 GB of output from one file (before the limits: killed by an
    // allocation failure, with its staging directory left behind).
    let dir = sb.path().join("flood");
    set_of(
        &dir,
        &[(
            "x.j2".into(),
            "{% for i in range(100000) %}{{ \"x\" * 100000 }}{% endfor %}\n".into(),
        )],
    );
    refused_by_check_and_spawn(
        &sb,
        &dir,
        &format!(
            "{}/app/x.j2: renders more than 4 MiB, the limit for one file",
            dir.display()
        ),
    );
    // Twelve files of 3 MB each: each within its limit, too much together.
    let dir = sb.path().join("many");
    let files: Vec<(String, String)> = (10..22)
        .map(|i| (format!("f{i}.j2"), "{{ \"x\" * 3000000 }}\n".to_owned()))
        .collect();
    set_of(&dir, &files);
    refused_by_check_and_spawn(
        &sb,
        &dir,
        "the templates of one spawn render more than 32 MiB together, the limit for a spawn",
    );
    // Twelve files of three long loops each: each within its limit, too
    // many steps together.
    let dir = sb.path().join("busy");
    let loops = "{% for i in range(100000) %}{% endfor %}\n".repeat(3);
    let files: Vec<(String, String)> = (10..22)
        .map(|i| (format!("f{i}.j2"), loops.clone()))
        .collect();
    set_of(&dir, &files);
    refused_by_check_and_spawn(
        &sb,
        &dir,
        "the templates of one spawn take more than 10000000 steps to render together, the limit for a spawn",
    );
}

/// `--values` is read only from a regular file of at most 1 MiB: a device,
/// a FIFO with no writer, a folder or a large file is refused at once.
#[test]
fn values_that_are_not_a_small_regular_file_are_refused_at_once() {
    let sb = Sandbox::new();
    let fifo = sb.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let big = sb.path().join("big.toml");
    fs::write(&big, format!("# {}\n", "x".repeat(2 << 20))).unwrap();
    for (file, why) in [
        (Path::new("/dev/zero"), "it is a device, not a regular file"),
        (fifo.as_path(), "it is a FIFO, not a regular file"),
        (sb.path(), "it is a directory, not a regular file"),
        (
            big.as_path(),
            "it is 2097155 bytes, more than the 1048576 a file of values may hold",
        ),
    ] {
        let out = run_within(&sb, &["svc", "--values", s(file), "--no-git"], 60);
        out.assert_error(
            2,
            &format!("cannot read --values {}: {why}", file.display()),
        );
        assert!(!sb.repos().exists());
    }
}

#[test]
fn export_into_a_dangling_symlink_says_what_it_is() {
    let sb = Sandbox::new();
    let link = sb.path().join("set");
    let gone = sb.path().join("gone");
    std::os::unix::fs::symlink(&gone, &link).unwrap();
    sb.assert_error(
        ["templates", "export", s(&link)],
        2,
        &format!(
            "{} is a symlink to {}, which does not exist",
            link.display(),
            gone.display()
        ),
    );
    assert!(!gone.exists());
}

/// The embedded `.gitignore` ignores `tfplan` anywhere: a tool named so
/// would get a `bin/tfplan` that git leaves out of the initial commit.
#[test]
fn a_name_the_generated_gitignore_would_ignore_is_refused() {
    let sb = Sandbox::new();
    sb.assert_error(
        ["tfplan", "tool", "--out-dir", s(&sb.repos())],
        2,
        "cannot spawn tfplan from the embedded set: embedded:base/.gitignore:25: the pattern `tfplan` ignores bin/tfplan",
    );
    assert!(!sb.repos().exists());
    // Another name is fine, and its script is committed.
    let repo = sb.spawn(&["tfplans", "tool"]);
    assert!(
        crate::support::git(&repo, &["ls-files", "bin/tfplans"]).contains("bin/tfplans"),
        "bin/tfplans is committed"
    );
}
