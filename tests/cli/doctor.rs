//! `spawn-elite doctor` against a PATH of stand-in tools, so the result does
//! not depend on what this machine has installed.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value;

use crate::support::{Outcome, Sandbox};

fn fake_tool(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn doctor(path: &Path, args: &[&str]) -> Outcome {
    let sb = Sandbox::new();
    Outcome::of(sb.cmd().arg("doctor").args(args).env("PATH", path))
}

fn stand_ins() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fake_tool(dir.path(), "git", "echo 'git version 2.40.1'");
    // A stock python3 that is not the python3.12 `make venv` runs; python3.12
    // itself is absent, as on a host with only the distribution's Python.
    fake_tool(dir.path(), "python3", "echo 'Python 3.11.7'");
    fake_tool(dir.path(), "make", "echo 'make: it broke' >&2; exit 2");
    // docker without the compose plugin.
    fake_tool(
        dir.path(),
        "docker",
        "if [ \"$1\" = compose ]; then echo \"docker: 'compose' is not a docker command.\" >&2; exit 1; fi\necho 'Docker version 27.1.0, build abc'",
    );
    fake_tool(
        dir.path(),
        "terraform",
        "echo 'Terraform v1.5.7'; echo 'on linux_amd64'",
    );
    fake_tool(
        dir.path(),
        "bash",
        "echo 'GNU bash, version 3.2.57(1)-release (arm64-apple-darwin23)'",
    );
    fake_tool(
        dir.path(),
        "shellcheck",
        "printf 'ShellCheck\\nversion: 0.10.0\\n'",
    );
    fake_tool(dir.path(), "shfmt", "echo 'v3.8.0'");
    fake_tool(dir.path(), "yamllint", "echo 'yamllint 1.35.1'");
    fake_tool(
        dir.path(),
        "kubectl",
        "echo 'Client Version: v1.31.2'; echo 'Kustomize Version: v5.4.2'",
    );
    fake_tool(dir.path(), "tflint", "echo 'TFLint version 0.53.0'");
    // bats is absent.
    dir
}

fn names(report: &Value, list: &str) -> Vec<String> {
    report[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} list in {report}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn json_report_tells_found_old_broken_and_missing_apart() {
    let dir = stand_ins();
    let out = doctor(dir.path(), &["--json"]);
    assert!(out.success(), "doctor exits 0 with tools missing");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let status = |name: &str| {
        let tool = report["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("{name} not reported"));
        (
            tool["status"].as_str().unwrap().to_string(),
            tool["version"].as_str().map(str::to_string),
        )
    };
    assert_eq!(status("git"), ("ok".into(), Some("2.40.1".into())));
    assert_eq!(status("make").0, "broken");
    assert_eq!(status("docker"), ("ok".into(), Some("27.1.0".into())));
    assert_eq!(status("docker compose"), ("missing".into(), None));
    assert_eq!(
        status("terraform"),
        ("too old".into(), Some("1.5.7".into()))
    );
    assert_eq!(status("bash"), ("too old".into(), Some("3.2.57".into())));
    assert_eq!(status("bats"), ("missing".into(), None));
    assert_eq!(status("shellcheck"), ("ok".into(), Some("0.10.0".into())));
    assert_eq!(
        names(&report, "missing"),
        ["python3.12", "docker compose", "bats"]
    );
    assert_eq!(names(&report, "too_old"), ["terraform", "bash"]);
    assert_eq!(names(&report, "broken"), ["make"]);
}

#[test]
fn doctor_checks_the_python_make_venv_runs_not_python3() {
    let dir = stand_ins();
    let report: Value = serde_json::from_str(&doctor(dir.path(), &["--json"]).stdout).unwrap();
    let tools = report["tools"].as_array().unwrap();
    assert!(tools.iter().all(|t| t["name"] != "python3"), "{report}");
    let python = tools.iter().find(|t| t["name"] == "python3.12").unwrap();
    assert_eq!(python["status"], "missing", "{report}");
    // A version manager's shim for a version that is not installed (pyenv
    // answers so, with exit 127) is missing too, not broken.
    fake_tool(
        dir.path(),
        "python3.12",
        "echo 'pyenv: python3.12: command not found' >&2; exit 127",
    );
    let report: Value = serde_json::from_str(&doctor(dir.path(), &["--json"]).stdout).unwrap();
    assert_eq!(names(&report, "missing")[0], "python3.12", "{report}");
    assert!(!names(&report, "broken").contains(&"python3.12".to_string()));
    // Present at the right version, it is ok.
    fake_tool(dir.path(), "python3.12", "echo 'Python 3.12.1'");
    let report: Value = serde_json::from_str(&doctor(dir.path(), &["--json"]).stdout).unwrap();
    let python = report["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "python3.12")
        .cloned()
        .unwrap();
    assert_eq!(python["status"], "ok", "{report}");
    assert_eq!(python["version"], "3.12.1");
}

#[test]
fn doctor_checks_yamllint_and_shfmt_the_lint_targets_run() {
    let dir = stand_ins();
    let text = doctor(dir.path(), &[]).stdout;
    assert!(text.contains("yamllint"), "{text}");
    assert!(text.contains("1.35.1"), "{text}");
    assert!(text.contains("shfmt"), "{text}");
    assert!(text.contains("3.8.0"), "{text}");
    std::fs::remove_file(dir.path().join("yamllint")).unwrap();
    std::fs::remove_file(dir.path().join("shfmt")).unwrap();
    let report: Value = serde_json::from_str(&doctor(dir.path(), &["--json"]).stdout).unwrap();
    assert_eq!(
        names(&report, "missing"),
        ["python3.12", "docker compose", "bats", "shfmt", "yamllint"]
    );
}

#[test]
fn doctor_checks_the_optional_tools_the_readmes_list() {
    let dir = stand_ins();
    let text = doctor(dir.path(), &[]).stdout;
    assert!(
        text.contains("kubectl") && text.contains("1.31.2"),
        "{text}"
    );
    assert!(text.contains("tflint") && text.contains("0.53.0"), "{text}");
    std::fs::remove_file(dir.path().join("tflint")).unwrap();
    let report: Value = serde_json::from_str(&doctor(dir.path(), &["--json"]).stdout).unwrap();
    assert!(
        names(&report, "missing").contains(&"tflint".to_owned()),
        "{report}"
    );
}

#[test]
fn text_report_says_what_each_tool_is_for() {
    let dir = stand_ins();
    let out = doctor(dir.path(), &[]);
    assert!(out.success());
    let text = out.stdout;
    assert!(text.contains("1.5.7 (needs >= 1.6)"), "{text}");
    assert!(text.contains("make: it broke"), "{text}");
    assert!(text.contains("tool: make test"), "{text}");
    assert!(
        text.contains("Missing here: python3.12, docker compose, bats."),
        "{text}"
    );
    assert!(text.contains("Too old here: terraform, bash."), "{text}");
    assert!(text.contains("Broken here: make."), "{text}");
}

#[test]
fn an_empty_path_reports_everything_missing_and_still_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let out = doctor(dir.path(), &["--json"]);
    assert!(out.success());
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(
        report["tools"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "missing"),
        "{report}"
    );
}

#[test]
fn completions_and_man_are_printed() {
    let sb = Sandbox::new();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = sb.run(["completions", shell]);
        assert!(out.success(), "{shell}");
        assert!(!out.stdout.is_empty(), "{shell}");
    }
    let out = sb.run(["man"]);
    assert!(out.success());
    assert!(out.stdout.contains(".TH spawn-elite 1"));
    let bad = sb.run(["completions", "tcsh"]);
    assert_eq!(bad.code, 2, "an unknown shell is a usage error");
}

/// What bash offers at the end of `line` with the script `completions bash`
/// prints, sourced into a real bash, as if TAB was pressed.
fn bash_completes(script: &str, line: &str) -> String {
    let program = format!(
        r#"{script}
COMP_LINE={line:?}
read -ra COMP_WORDS <<< "$COMP_LINE"
[[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))
COMP_POINT=${{#COMP_LINE}}
_spawn__elite spawn-elite "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}" 2>/dev/null
echo "${{COMPREPLY[*]}}"
"#
    );
    let out = std::process::Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .expect("run bash");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn completions_offer_the_types_and_set_keys_after_every_spawn_form() {
    let sb = Sandbox::new();
    let script = sb.run(["completions", "bash"]).stdout;
    for (line, offered) in [
        ("spawn-elite my-svc --type ", "service infra tool"),
        ("spawn-elite my-svc -t i", "infra"),
        (
            "spawn-elite my-svc --set ",
            "description= org= python_version= port= version=",
        ),
        ("spawn-elite my-svc --set po", "port="),
        ("spawn-elite new verify --type ", "service infra tool"),
        ("spawn-elite new verify --set py", "python_version="),
        ("spawn-elite update . --set po", "port="),
        // Subcommands complete too (the bin name's hyphen once broke them).
        ("spawn-elite ledger list --", "--json --file --help"),
        ("spawn-elite verify --no-", "--no-ignore"),
    ] {
        assert_eq!(bash_completes(&script, line), offered, "{line:?}");
    }
    let zsh = sb.run(["completions", "zsh"]).stdout;
    assert!(
        zsh.contains(r#"port=\:"the port the service listens on"#),
        "{zsh}"
    );
    assert!(zsh.contains(r#"infra\:"a Terraform repository""#), "{zsh}");
    let fish = sb.run(["completions", "fish"]).stdout;
    assert!(fish.contains("-l set -d"), "{fish}");
    assert!(fish.contains(r"tool\t'a Bash command-line tool'"), "{fish}");
}
