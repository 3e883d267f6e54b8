//! The spawn command as a user meets it: files on disk, exit codes, messages.

use std::os::unix::fs::PermissionsExt;

use predicates::prelude::*;

use crate::support::{Outcome, Sandbox, git, tree};

#[test]
fn refuses_bad_names_with_exit_2_and_creates_nothing() {
    let sb = Sandbox::new();
    let repos = sb.repos();
    let long = "a".repeat(64);
    for bad in [
        "../x",
        "a b",
        "My_Svc",
        "",
        "-rf",
        long.as_str(),
        "ünï",
        "x/y",
        "svc-",
    ] {
        let o = sb.assert_error(
            [
                "new".as_ref(),
                bad.as_ref(),
                "--out-dir".as_ref(),
                repos.as_os_str(),
            ],
            2,
            "lowercase letters, digits and '-'",
        );
        assert!(o.stderr.starts_with("error: invalid name"), "{}", o.stderr);
        assert!(!sb.repos().exists(), "{bad:?} created the base directory");
    }
}

#[test]
fn a_dash_name_is_refused_as_a_name_not_as_an_unknown_flag() {
    let sb = Sandbox::new();
    sb.assert_error(
        ["-rf".as_ref(), "--out-dir".as_ref(), sb.repos().as_os_str()],
        2,
        "invalid name: \"-rf\"",
    );
}

#[test]
fn refuses_unknown_type_and_lists_valid_ones() {
    let sb = Sandbox::new();
    sb.cmd()
        .args(["svc", "lambda", "--out-dir"])
        .arg(sb.repos())
        .assert()
        .code(2)
        .stderr("error: unknown type 'lambda': choose one of service, infra, tool; a type of your own template set needs --templates DIR (or SPAWN_ELITE_TEMPLATES=DIR)\n");
    assert!(!sb.repos().exists());
}

#[test]
fn refuses_unknown_or_invalid_set_values() {
    let sb = Sandbox::new();
    let cases = [
        (
            "colour=red",
            "unknown --set key \"colour\": valid keys are description, org, python_version, port, version",
        ),
        ("port", "has no '='"),
        ("port=80", "invalid --set port=\"80\""),
        ("python_version=2.7", "invalid --set python_version=\"2.7\""),
        ("org=a/b", "invalid --set org=\"a/b\""),
        ("version=latest", "invalid --set version=\"latest\""),
    ];
    let repos = sb.repos();
    for (set, message) in cases {
        sb.assert_error(
            [
                "svc".as_ref(),
                "--set".as_ref(),
                set.as_ref(),
                "--out-dir".as_ref(),
                repos.as_os_str(),
            ],
            2,
            message,
        );
    }
    assert!(!sb.repos().exists());
}

#[test]
fn existing_target_is_refused_with_exit_3_and_left_untouched() {
    let sb = Sandbox::new();
    let target = sb.repos().join("svc");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("keep.txt"), "mine").unwrap();
    let o = sb.assert_error(
        ["svc".as_ref(), "--out-dir".as_ref(), sb.repos().as_os_str()],
        3,
        "already exists",
    );
    assert!(
        o.stderr.contains("choose another name or remove it"),
        "{}",
        o.stderr
    );
    assert_eq!(tree(&target), vec!["keep.txt"]);
    assert_eq!(
        std::fs::read_to_string(target.join("keep.txt")).unwrap(),
        "mine"
    );
    assert_eq!(
        tree(&sb.repos()),
        vec!["svc", "svc/keep.txt"],
        "no staging debris"
    );
}

#[test]
fn dry_run_lists_files_with_sizes_and_writes_nothing() {
    let sb = Sandbox::new();
    let out = sb.stdout(&["svc", "--dry-run"]);
    let text = out;
    assert!(text.contains("nothing was written"), "{text}");
    assert!(
        text.lines().any(|l| l.trim_end().ends_with(" main.py")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.trim_end().ends_with(" Dockerfile")),
        "{text}"
    );
    assert!(!sb.repos().exists());
}

#[test]
fn spawn_uses_vaultmesh_repos_then_home_repos() {
    let sb = Sandbox::new();
    let custom = sb.path().join("custom");
    sb.cmd()
        .args(["svc", "--quiet"])
        .env("VAULTMESH_REPOS", &custom)
        .assert()
        .success();
    assert!(custom.join("svc/main.py").is_file());
    sb.cmd().args(["other", "--quiet"]).assert().success();
    assert!(sb.home().join("repos/other/main.py").is_file());
}

#[test]
fn every_file_lands_in_one_commit_on_main() {
    let sb = Sandbox::new();
    for kind in ["service", "infra", "tool"] {
        let name = format!("x-{kind}");
        let repo = sb.spawn(&[&name, kind]);
        assert_eq!(git(&repo, &["rev-list", "--count", "HEAD"]).trim(), "1");
        assert_eq!(git(&repo, &["branch", "--show-current"]).trim(), "main");
        assert_eq!(
            git(&repo, &["status", "--porcelain"]),
            "",
            "{kind}: uncommitted files"
        );
        let committed: Vec<String> = git(&repo, &["ls-files"])
            .lines()
            .map(String::from)
            .collect();
        let on_disk: Vec<String> = tree(&repo)
            .into_iter()
            .filter(|p| repo.join(p).is_file())
            .collect();
        let mut committed_sorted = committed.clone();
        committed_sorted.sort();
        assert_eq!(committed_sorted, on_disk, "{kind}: every file is committed");
        let message = git(&repo, &["log", "-1", "--format=%B"]);
        assert!(
            message.starts_with("feat: initial repository scaffold\n"),
            "{message}"
        );
        assert!(message.contains(&format!("Type: {kind}")), "{message}");
        assert!(
            tree(&repo).iter().all(|p| !p.ends_with(".bak")),
            "no .bak leftovers"
        );
    }
}

#[test]
fn commits_as_spawn_elite_when_the_user_has_no_identity_without_touching_config() {
    let sb = Sandbox::new();
    let empty = sb.path().join("empty-gitconfig");
    std::fs::write(&empty, "").unwrap();
    sb.cmd()
        .args(["svc", "--quiet", "--out-dir"])
        .arg(sb.repos())
        .env("GIT_CONFIG_GLOBAL", &empty)
        .assert()
        .success();
    let repo = sb.repos().join("svc");
    assert_eq!(
        git(&repo, &["log", "-1", "--format=%an <%ae>"]).trim(),
        "spawn-elite <spawn-elite@localhost>"
    );
    assert_eq!(
        std::fs::read_to_string(&empty).unwrap(),
        "",
        "user config unchanged"
    );
    assert!(
        !std::fs::read_to_string(repo.join(".git/config"))
            .unwrap()
            .contains("[user]")
    );
}

#[test]
fn tool_executables_are_0755_and_data_files_0644() {
    let sb = Sandbox::new();
    let repo = sb.spawn(&["mytool", "tool"]);
    let mode = |p: &str| {
        std::fs::metadata(repo.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("bin/mytool"), 0o755);
    assert_eq!(mode("lib/common.sh"), 0o644);
    assert_eq!(mode("README.md"), 0o644);
    assert!(git(&repo, &["ls-files", "-s", "bin/mytool"]).starts_with("100755"));
}

#[test]
fn no_elite_writes_only_base_and_type_files() {
    let sb = Sandbox::new();
    let repo = sb.spawn(&["svc", "service", "--no-elite", "--no-git"]);
    let files = tree(&repo);
    assert!(files.contains(&"main.py".to_owned()));
    for elite in [
        "Dockerfile",
        "docker-compose.yml",
        ".github",
        "deployments",
        "monitoring",
    ] {
        assert!(
            !files.iter().any(|f| f.starts_with(elite)),
            "{elite} written with --no-elite"
        );
    }
    assert!(!repo.join(".git").exists(), "--no-git made a repository");
}

#[test]
fn json_summary_names_the_repository_and_its_files() {
    let sb = Sandbox::new();
    let out = sb.stdout(&["svc", "--json"]);
    let summary: serde_json::Value = serde_json::from_str(&out).expect("stdout is one JSON object");
    assert_eq!(summary["name"], "svc");
    assert_eq!(summary["type"], "service");
    assert_eq!(summary["path"], sb.repos().join("svc").to_str().unwrap());
    let repo = sb.repos().join("svc");
    let listed: Vec<&str> = summary["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    let mut on_disk: Vec<String> = tree(&repo)
        .into_iter()
        .filter(|p| repo.join(p).is_file() && p != ".spawn-elite/receipt.json")
        .collect();
    on_disk.sort();
    assert_eq!(
        listed, on_disk,
        "the files list is every generated file; the receipt is reported apart"
    );
    assert!(summary["commit"].as_str().unwrap().len() == 40);
}

#[test]
fn unwritable_base_fails_with_exit_4_and_leaves_nothing() {
    let sb = Sandbox::new();
    // A regular file where a directory is needed fails even for root,
    // which ignores permission bits.
    let blocker = sb.path().join("blocker");
    std::fs::write(&blocker, "").unwrap();
    let o = sb.assert_error(
        [
            "svc".as_ref(),
            "--out-dir".as_ref(),
            blocker.join("repos").as_os_str(),
        ],
        4,
        "cannot create",
    );
    assert!(
        o.stderr.contains("choose a writable --out-dir"),
        "{}",
        o.stderr
    );
    assert!(blocker.is_file());
}

/// A stand-in for git on PATH: passes every call to the real git except the
/// ones named, which fail (or sleep), so failures midway can be staged.
fn fake_git(sb: &Sandbox, script_body: &str) -> std::path::PathBuf {
    let bin = sb.path().join("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    let real = which_git();
    let script = format!("#!/bin/sh\n{script_body}\nexec {real} \"$@\"\n");
    let path = bin.join("git");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn which_git() -> String {
    let out = std::process::Command::new("sh")
        .args(["-c", "command -v git"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn path_with(dir: &std::path::Path) -> std::ffi::OsString {
    let mut paths = vec![dir.to_path_buf()];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).unwrap()
}

#[test]
fn git_failure_midway_undoes_the_whole_spawn() {
    let sb = Sandbox::new();
    let bin = fake_git(
        &sb,
        r#"for a in "$@"; do [ "$a" = commit ] && { echo "fatal: simulated failure" >&2; exit 128; }; done"#,
    );
    let o = Outcome::of(
        sb.cmd()
            .args(["svc", "--out-dir"])
            .arg(sb.repos())
            .env("PATH", path_with(&bin)),
    );
    o.assert_error(5, "git failed to commit: fatal: simulated failure");
    assert!(o.stderr.contains("nothing was created"), "{}", o.stderr);
    assert!(
        !sb.repos().exists(),
        "base created by the spawn is removed too: {:?}",
        tree(&sb.repos())
    );
}

/// A git on PATH that logs the subcommand of every call (what follows the
/// `-c KEY=VALUE` pairs) to `log`, then runs the real git.
fn logging_git(sb: &Sandbox, log: &std::path::Path) -> std::path::PathBuf {
    fake_git(
        sb,
        &format!(
            r#"skip=; for a in "$@"; do
  if [ -n "$skip" ]; then skip=; continue; fi
  case $a in -c) skip=1 ;; -*) ;; *) echo "$a" >> '{}'; break ;; esac
done"#,
            log.display()
        ),
    )
}

#[test]
fn a_spawn_runs_three_git_processes_and_no_maintenance() {
    let sb = Sandbox::new();
    let log = sb.path().join("git-calls");
    let trace = sb.path().join("git-trace");
    let bin = logging_git(&sb, &log);
    let out = sb
        .cmd()
        .args(["svc", "--json", "--no-ledger", "--out-dir"])
        .arg(sb.repos())
        .env("PATH", path_with(&bin))
        .env("GIT_TRACE", &trace)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "init\nadd\ncommit\n"
    );
    // git starts nothing of its own either (auto gc or maintenance, detached).
    let trace = std::fs::read_to_string(&trace).unwrap();
    assert!(!trace.contains("run_command"), "{trace}");
    // The commit id is read from the repository's files, and is HEAD's.
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let repo = sb.repos().join("svc");
    assert_eq!(
        summary["commit"].as_str(),
        Some(git(&repo, &["rev-parse", "HEAD"]).trim())
    );
}

#[test]
fn a_reftable_repository_still_reports_its_commit() {
    let sb = Sandbox::new();
    // Refs in reftable files (git >= 2.45; older ones ignore the setting):
    // no loose ref to read, so git is asked.
    let config = sb.path().join("reftable-gitconfig");
    std::fs::write(
        &config,
        "[user]\n\tname = Test User\n\temail = test@example.com\n[init]\n\tdefaultRefFormat = reftable\n",
    )
    .unwrap();
    let out = sb
        .cmd()
        .args(["svc", "--json", "--no-ledger", "--out-dir"])
        .arg(sb.repos())
        .env("GIT_CONFIG_GLOBAL", &config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let repo = sb.repos().join("svc");
    assert_eq!(
        summary["commit"].as_str(),
        Some(git(&repo, &["rev-parse", "HEAD"]).trim())
    );
}

#[test]
fn without_an_identity_the_commit_is_retried_as_spawn_elite() {
    let sb = Sandbox::new();
    let log = sb.path().join("git-calls");
    let bin = logging_git(&sb, &log);
    // A name but no email: git could guess one from the host; it must not.
    let name_only = sb.path().join("name-only-gitconfig");
    std::fs::write(&name_only, "[user]\n\tname = Only Name\n").unwrap();
    sb.cmd()
        .args(["svc", "--quiet", "--out-dir"])
        .arg(sb.repos())
        .env("PATH", path_with(&bin))
        .env("GIT_CONFIG_GLOBAL", &name_only)
        .env("EMAIL", "guessed@example.com")
        .assert()
        .success()
        .stderr("");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "init\nadd\ncommit\nconfig\ncommit\n"
    );
    let repo = sb.repos().join("svc");
    assert_eq!(
        git(&repo, &["log", "-1", "--format=%an <%ae> %cn <%ce>"]).trim(),
        "spawn-elite <spawn-elite@localhost> spawn-elite <spawn-elite@localhost>"
    );
    assert_eq!(
        std::fs::read_to_string(&name_only).unwrap(),
        "[user]\n\tname = Only Name\n"
    );
}

#[test]
fn failure_in_an_existing_base_leaves_it_exactly_as_it_was() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.repos()).unwrap();
    std::fs::write(sb.repos().join("other.txt"), "x").unwrap();
    let bin = fake_git(&sb, r#"for a in "$@"; do [ "$a" = add ] && exit 1; done"#);
    sb.cmd()
        .args(["svc", "--out-dir"])
        .arg(sb.repos())
        .env("PATH", path_with(&bin))
        .assert()
        .code(5);
    assert_eq!(tree(&sb.repos()), vec!["other.txt"]);
}

#[test]
fn missing_git_still_spawns_and_warns_once() {
    let sb = Sandbox::new();
    let empty_bin = sb.path().join("nogit");
    std::fs::create_dir_all(&empty_bin).unwrap();
    sb.cmd()
        .args(["svc", "--quiet", "--out-dir"])
        .arg(sb.repos())
        .env("PATH", &empty_bin)
        .assert()
        .success()
        .stderr(predicate::str::contains("git is not installed"))
        .stderr(predicate::str::contains("--no-git"))
        .stderr(predicate::function(|s: &str| s.lines().count() == 1));
    let repo = sb.repos().join("svc");
    assert!(repo.join("main.py").is_file());
    assert!(!repo.join(".git").exists());
}

#[test]
fn ctrl_c_during_spawn_leaves_nothing() {
    let sb = Sandbox::new();
    let marker = sb.path().join("git-started");
    let bin = fake_git(
        &sb,
        &format!(
            r#"for a in "$@"; do [ "$a" = commit ] && {{ touch '{}'; sleep 2; }}; done"#,
            marker.display()
        ),
    );
    let child = sb
        .process()
        .args(["svc", "--quiet", "--out-dir"])
        .arg(sb.repos())
        .env("PATH", path_with(&bin))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded wait for the spawn to reach git, then interrupt it.
    for _ in 0..200 {
        if marker.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert!(marker.exists(), "the spawn never reached git commit");
    send_sigint(child.id());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: interrupted: nothing was created\n"
    );
    assert!(!sb.repos().exists(), "left behind: {:?}", tree(&sb.repos()));
}

fn send_sigint(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn help_shows_both_spawn_forms() {
    let sb = Sandbox::new();
    sb.cmd()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("[NAME] [TYPE]"))
        .stdout(predicate::str::contains("new"))
        .stdout(predicate::str::contains(
            "spawn-elite new verify --type tool",
        ));
}

#[test]
fn without_arguments_a_short_usage_goes_to_stderr_with_exit_2() {
    let sb = Sandbox::new();
    let o = sb.run(Vec::<&str>::new());
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert_eq!(o.stdout, "");
    let lines: Vec<&str> = o.stderr.lines().collect();
    assert!(lines.len() <= 8, "{}", o.stderr);
    assert_eq!(
        lines[..3],
        [
            "Usage: spawn-elite NAME [TYPE] [OPTIONS]       spawn a repository; TYPE is service, infra or tool",
            "       spawn-elite new NAME [TYPE] [OPTIONS]   the same, for a NAME that is also a command",
            "       spawn-elite COMMAND [ARGS]              run a command",
        ],
        "{}",
        o.stderr
    );
    let commands: Vec<&str> = lines[4..lines.len() - 1]
        .iter()
        .flat_map(|l| l.trim_start_matches("Commands:").split(','))
        .map(str::trim)
        .collect();
    for command in ["verify", "ledger", "templates", "doctor", "completions"] {
        assert!(commands.contains(&command), "{commands:?}");
    }
    assert!(
        o.stderr.ends_with(
            "See 'spawn-elite --help' for the options and examples, 'spawn-elite COMMAND --help' for one command.\n"
        ),
        "{}",
        o.stderr
    );
    assert!(!sb.repos().exists());
}

/// The command of a step or README line: what comes before its `#` comment.
fn command_of(line: &str) -> &str {
    line.split('#').next().unwrap_or_default().trim()
}

#[test]
fn infra_next_steps_are_its_readmes_quick_start() {
    let sb = Sandbox::new();
    let out = sb.stdout(&["network", "infra", "--no-ledger"]);
    let steps: Vec<&str> = out
        .lines()
        .skip_while(|l| *l != "Next steps:")
        .skip(2)
        .collect();
    assert_eq!(
        steps,
        [
            "  cp .env.example .env   # then set TF_VAR_* values",
            "  make verify            # fmt check + init -backend=false + validate, offline",
            "  make init              # initialise providers and backend",
            "  make plan              # review the plan written to ./tfplan",
        ],
        "{out}"
    );
}

#[test]
fn next_steps_are_commands_the_generated_readme_gives_in_the_same_order() {
    let sb = Sandbox::new();
    for kind in ["service", "infra", "tool"] {
        let name = format!("steps-{kind}");
        let out = sb.stdout(&[&name, kind, "--no-ledger", "--no-git"]);
        let steps: Vec<&str> = out
            .lines()
            .skip_while(|l| *l != "Next steps:")
            .skip(2)
            .map(command_of)
            .collect();
        assert!(!steps.is_empty(), "{out}");
        let readme = std::fs::read_to_string(sb.repos().join(&name).join("README.md")).unwrap();
        let commands: Vec<&str> = readme.lines().map(command_of).collect();
        let mut from = 0;
        for step in steps {
            let at = commands[from..].iter().position(|c| *c == step);
            let Some(at) = at else {
                panic!(
                    "{kind}: next step {step:?} is not in README.md after line {from}:\n{readme}"
                );
            };
            from += at + 1;
        }
    }
}

#[test]
fn a_name_like_a_subcommand_works_through_new() {
    let sb = Sandbox::new();
    sb.cmd()
        .args(["new", "templates", "--type", "tool", "--quiet", "--out-dir"])
        .arg(sb.repos())
        .assert()
        .success();
    assert!(sb.repos().join("templates/bin/templates").is_file());
}

#[test]
fn templates_list_names_each_template_and_its_types() {
    let sb = Sandbox::new();
    let out = sb
        .cmd()
        .args(["templates", "list"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let row = |path: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(path))
            .map(str::to_owned)
    };
    assert!(
        row("LICENSE").unwrap().contains("service, infra, tool"),
        "{text}"
    );
    assert!(row("main.py").unwrap().ends_with("service"), "{text}");
    assert!(
        row("Dockerfile").unwrap().contains("service (elite)"),
        "{text}"
    );
    assert!(row("bin/__name__").unwrap().contains("tool"), "{text}");
}

#[test]
fn spawn_writes_a_committed_receipt_that_verifies_and_a_ledger_line() {
    let sb = Sandbox::new();
    let summary: serde_json::Value = serde_json::from_str(&sb.stdout(&["svc", "--json"])).unwrap();
    let repo = sb.repos().join("svc");
    let receipt: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo.join(".spawn-elite/receipt.json")).unwrap())
            .unwrap();
    assert_eq!(receipt["merkle_root"], summary["receipt"]["merkle_root"]);
    assert_eq!(receipt["spawn"]["name"], "svc");
    assert_eq!(receipt["spawn"]["options"]["port"], "8000");
    assert!(
        git(&repo, &["ls-files"])
            .lines()
            .any(|l| l == ".spawn-elite/receipt.json")
    );
    sb.cmd().arg("verify").arg(&repo).assert().success();

    let ledger = sb.home().join(".local/share/spawn-elite/ledger.jsonl");
    assert_eq!(summary["ledger"], ledger.to_str().unwrap());
    let text = std::fs::read_to_string(&ledger).unwrap();
    assert_eq!(text.lines().count(), 1);
    assert!(text.contains(receipt["merkle_root"].as_str().unwrap()));

    sb.stdout(&["svc2", "--no-ledger", "--quiet"]);
    assert_eq!(
        std::fs::read_to_string(&ledger).unwrap().lines().count(),
        1,
        "--no-ledger appended"
    );
}

#[test]
fn an_unwritable_ledger_warns_but_keeps_the_spawn() {
    let sb = Sandbox::new();
    let blocker = sb.path().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    sb.cmd()
        .args(["svc", "--quiet", "--out-dir"])
        .arg(sb.repos())
        .env("XDG_DATA_HOME", &blocker)
        .assert()
        .success()
        .stderr(predicate::str::starts_with("warning: "))
        .stderr(predicate::str::contains("--no-ledger"));
    assert!(sb.repos().join("svc/.spawn-elite/receipt.json").is_file());
}

#[test]
fn the_type_can_be_positional_or_an_option_in_both_forms() {
    let sb = Sandbox::new();
    sb.stdout(&["a1", "--type", "tool", "--quiet", "--no-git"]);
    assert!(sb.repos().join("a1/bin/a1").is_file());
    sb.stdout(&["new", "a2", "infra", "--quiet", "--no-git"]);
    assert!(sb.repos().join("a2/main.tf").is_file());
    sb.stdout(&["new", "a3", "--quiet", "--no-git"]);
    assert!(
        sb.repos().join("a3/main.py").is_file(),
        "service is the default"
    );
    sb.cmd()
        .args(["a4", "infra", "--type", "tool", "--out-dir"])
        .arg(sb.repos())
        .assert()
        .code(2)
        .stderr("error: the type is given twice, as 'infra' and as --type 'tool'; give it once\n");
    assert!(!sb.repos().join("a4").exists());
}

#[test]
fn repeated_or_irrelevant_set_keys_are_spawned_with_a_warning() {
    let sb = Sandbox::new();
    sb.cmd()
        .args([
            "t",
            "tool",
            "--quiet",
            "--no-git",
            "--set",
            "port=9000",
            "--set",
            "port=9001",
            "--set",
            "org=a",
            "--set",
            "org=b",
            "--out-dir",
        ])
        .arg(sb.repos())
        .assert()
        .success()
        .stderr(
            "warning: --set port has no effect on a tool repository\n\
             warning: --set port is given more than once; the last value, \"9001\", wins\n\
             warning: --set org is given more than once; the last value, \"b\", wins\n",
        );
    let license = std::fs::read_to_string(sb.repos().join("t/LICENSE")).unwrap();
    assert!(
        license.lines().any(|l| l == "Copyright (c) 2026 b"),
        "{license}"
    );
}

#[test]
fn values_in_errors_are_escaped_and_cut_to_one_line() {
    let sb = Sandbox::new();
    let description = format!("description=two\nlines{}", "x".repeat(300));
    let o = sb.assert_error(
        [
            "svc".as_ref(),
            "--set".as_ref(),
            description.as_ref(),
            "--out-dir".as_ref(),
            sb.repos().as_os_str(),
        ],
        2,
        "invalid --set description=\"two\\nlines",
    );
    assert!(o.stderr.contains("...:"), "{}", o.stderr);
    assert!(o.stderr.len() < 300, "{}", o.stderr);
}

#[test]
fn odd_out_dirs_are_named_for_what_they_are() {
    let sb = Sandbox::new();
    let file = sb.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    sb.cmd()
        .args(["svc", "--out-dir"])
        .arg(&file)
        .assert()
        .code(4)
        .stderr(format!(
            "error: --out-dir {} is a file, not a directory; choose a directory\n",
            file.display()
        ));
    let dangling = sb.path().join("dangling");
    std::os::unix::fs::symlink(sb.path().join("missing"), &dangling).unwrap();
    let o = sb.assert_error(
        ["svc".as_ref(), "--out-dir".as_ref(), dangling.as_os_str()],
        4,
        "is a symlink to",
    );
    assert!(o.stderr.contains("which does not exist"), "{}", o.stderr);
    sb.assert_error(
        ["svc", "--out-dir", "~/repos"],
        2,
        "starts with '~', which only a shell expands",
    );
    assert!(!sb.path().join("~").exists());
    assert!(!sb.path().join("missing").exists());
}

#[test]
fn exit_codes_are_in_the_long_help_and_the_man_page() {
    let sb = Sandbox::new();
    let help = sb
        .cmd()
        .arg("--help")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let help = String::from_utf8(help).unwrap();
    assert!(
        help.contains("Exit status:") && help.contains("130  interrupted"),
        "{help}"
    );
    let man = sb
        .cmd()
        .arg("man")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(String::from_utf8(man).unwrap().contains("Exit status:"));
}

#[test]
fn dry_run_json_uses_the_receipts_git_style_modes() {
    let sb = Sandbox::new();
    let plan: serde_json::Value =
        serde_json::from_str(&sb.stdout(&["t", "tool", "--dry-run", "--json"])).unwrap();
    let mode_of = |path: &str| {
        plan["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path)
            .map(|f| f["mode"].clone())
    };
    assert_eq!(mode_of("bin/t"), Some("100755".into()));
    assert_eq!(mode_of("README.md"), Some("100644".into()));
    assert!(!sb.repos().exists());
}

#[test]
fn a_closed_pipe_ends_output_quietly() {
    let sb = Sandbox::new();
    for args in [
        &["man"][..],
        &["new", "x", "--dry-run", "-o", "/nonexistent"][..],
    ] {
        // A pipe whose reader is already gone: the first write fails with EPIPE.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = sb.process().args(args).stdout(writer).output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "",
            "{args:?}: no panic, no message"
        );
    }
}

#[test]
fn a_repository_named_like_a_subcommand_gets_pointed_at_new() {
    let sb = Sandbox::new();
    sb.cmd()
        .args(["verify", "-o", "x"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "hint: to spawn a repository named 'verify', run `spawn-elite new verify [TYPE] [OPTIONS]`",
        ));
    // A type where a subcommand wants another value is a clash too.
    sb.cmd()
        .args(["completions", "tool"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "hint: to spawn a repository named 'completions', run `spawn-elite new completions [TYPE] [OPTIONS]`",
        ));
    sb.cmd()
        .args(["svc", "--bogus"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("hint:").not());
    // A subcommand's own bad value is only that: no hint about spawning.
    let o = sb.run(["completions", "tcsh"]);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr
            .starts_with("error: invalid value 'tcsh' for '<SHELL>'"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("hint: to spawn"), "{}", o.stderr);
    let o = sb.run(["receive", "--trust", "t", "--workers", "0"]);
    assert_eq!(o.code, 2);
    assert!(!o.stderr.contains("hint: to spawn"), "{}", o.stderr);
    sb.cmd()
        .args(["verify", "--help"])
        .assert()
        .success()
        .stderr("");
}
