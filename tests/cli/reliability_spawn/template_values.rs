//! Item 12: no value a user passes with `--set` changes the structure of a
//! generated file. Every type is rendered with adversarial descriptions;
//! each file that has a parser here must still parse, the shell script must
//! still run, and the description must come back exactly where it belongs.

use std::path::Path;
use std::process::Command;

use proptest::prelude::*;
use spawn_elite::clock::Clock;
use spawn_elite::fsutil;
use spawn_elite::spawn::config::{Request, SpawnConfig};

use crate::support::Sandbox;

/// Pieces that mean something to one of the generated formats.
const PIECES: &[&str] = &[
    "'",
    "\"",
    "\\",
    "$(touch pwned)",
    "`touch pwned`",
    "${HOME}",
    "$1",
    "DESCRIPTION_TEXT",
    "USAGE",
    "EOF",
    "{{ name }}",
    "{% raw %}",
    "#",
    "---",
    "...",
    "- ",
    ": ",
    "[[",
    "]]",
    "{",
    "}",
    "\"\"\"",
    "'''",
    "<!--",
    "|",
    ">",
    "&",
    "*",
    ";",
    "!",
    "%",
    "é",
    "日本語",
    "🦀",
    "\u{a0}",
    "\u{2028}",
    " ",
    "word",
];

fn description() -> impl Strategy<Value = String> {
    prop_oneof![
        // A delimiter alone is what ended the heredoc: try it often.
        1 => prop::sample::select(&["DESCRIPTION_TEXT", "USAGE", "EOF", "'", "---"][..])
            .prop_map(str::to_owned),
        4 => prop::collection::vec(prop::sample::select(PIECES), 1..12)
            .prop_map(|parts| parts.concat()),
    ]
    .prop_filter("1-200 characters, not blank", |s| {
        s.chars().count() <= 200 && !s.trim().is_empty()
    })
}

fn render(root: &Path, kind: &str, name: &str, description: &str) -> std::path::PathBuf {
    let request = Request {
        name: name.to_owned(),
        kind: Some(kind.to_owned()),
        out_dir: Some(root.to_path_buf()),
        set: vec![
            format!("description={description}"),
            "org=Acme-9".to_owned(),
        ],
        ..Request::default()
    };
    let config = SpawnConfig::from_request(&request, Clock::system()).expect("valid request");
    let dir = root.join(name);
    for file in config.set.render_type(&config.render()).expect("render") {
        fsutil::write_planned(&dir, &file).expect("write");
    }
    dir
}

fn run(cmd: &mut Command) -> std::process::Output {
    cmd.stdin(std::process::Stdio::null())
        .output()
        .expect("run")
}

/// Reads what Python, TOML and YAML make of the service's files.
const PY_CHECK: &str = r#"
import ast, json, pathlib, sys, tomllib
root = pathlib.Path(sys.argv[1])
out = {}
for node in ast.parse((root / "main.py").read_text()).body:
    if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "DESCRIPTION":
        out["py"] = ast.literal_eval(node.value)
out["toml"] = tomllib.loads((root / "pyproject.toml").read_text())["project"]["description"]
try:
    import yaml
except ImportError:
    yaml = None
out["yaml"] = 0
if yaml:
    for p in sorted(root.rglob("*.y*ml")):
        list(yaml.safe_load_all(p.read_text()))
        out["yaml"] += 1
print(json.dumps(out))
"#;

fn python_ok() -> bool {
    static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OK.get_or_init(|| {
        Command::new("python3")
            .args(["-c", "import tomllib"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn line(path: &Path, n: usize) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .nth(n)
        .unwrap_or_default()
        .to_owned()
}

/// `full` also runs the tool without options (the property leaves that out
/// to keep the test fast: it does not read the description).
fn check_all(d: &str, full: bool) -> Result<(), TestCaseError> {
    let tmp = tempfile::tempdir().unwrap();
    // Tool: the script parses, runs, and prints the description as given.
    let tool = render(tmp.path(), "tool", "t", d);
    let script = tool.join("bin/t");
    let syntax = run(Command::new("bash").arg("-n").arg(&script));
    prop_assert!(
        syntax.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    let help = run(Command::new(&script).arg("--help").env("NO_COLOR", "1"));
    prop_assert_eq!(
        help.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&help.stderr)
    );
    let text = String::from_utf8_lossy(&help.stdout);
    prop_assert_eq!(text.lines().nth(2), Some(d), "{}", text);
    prop_assert!(!tmp.path().join("pwned").exists() && !tool.join("pwned").exists());
    if full && Command::new("shellcheck").arg("--version").output().is_ok() {
        let lint = run(Command::new("shellcheck")
            .arg("--external-sources")
            .arg(&script)
            .current_dir(&tool));
        prop_assert!(
            lint.status.success(),
            "{}",
            String::from_utf8_lossy(&lint.stdout)
        );
    }
    if full {
        let hello = run(Command::new(&script).arg("Ada"));
        prop_assert_eq!(String::from_utf8_lossy(&hello.stdout), "Hello, Ada!\n");
    }

    for (kind, name) in [("service", "s"), ("infra", "i"), ("tool", "t")] {
        let repo = if kind == "tool" {
            tool.clone()
        } else {
            render(tmp.path(), kind, name, d)
        };
        prop_assert_eq!(line(&repo.join("README.md"), 2), d);
        prop_assert_eq!(line(&repo.join("docs/README.md"), 2), d);
        prop_assert_eq!(line(&repo.join("AGENTS.md"), 2), d);
        let license = std::fs::read_to_string(repo.join("LICENSE")).unwrap();
        prop_assert!(license.contains(" Acme-9\n"), "{}", license);
        for entry in walkdir::WalkDir::new(&repo) {
            let entry = entry.unwrap();
            if entry.path().extension().is_some_and(|e| e == "json") {
                let bytes = std::fs::read(entry.path()).unwrap();
                prop_assert!(
                    serde_json::from_slice::<serde_json::Value>(&bytes).is_ok(),
                    "{}",
                    entry.path().display()
                );
            }
        }
    }
    prop_assert_eq!(line(&tmp.path().join("i/main.tf"), 0), format!("# i: {d}"));

    if python_ok() {
        let out = run(Command::new("python3")
            .args(["-c", PY_CHECK])
            .arg(tmp.path().join("s")));
        prop_assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        prop_assert_eq!(v["py"].as_str(), Some(d));
        prop_assert_eq!(v["toml"].as_str(), Some(d));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64)
    ))]

    #[test]
    fn adversarial_descriptions_never_change_a_generated_file(d in description()) {
        check_all(&d, false)?;
    }
}

/// The heredoc delimiter from the issue, alone on its line and inside text.
#[test]
fn the_heredoc_delimiter_is_just_text() {
    for d in [
        "DESCRIPTION_TEXT",
        "a\u{2028}DESCRIPTION_TEXT",
        "it's $(id) `id` EOF",
    ] {
        check_all(d, true).unwrap();
    }
    if !python_ok() {
        eprintln!("python3 with tomllib is missing: Python, TOML and YAML were not parsed");
    }
}

/// A fixed list of descriptions that mean something to a shell, a heredoc or
/// the template engine, each checked like the property test's.
#[test]
fn shell_and_template_syntax_in_a_description_is_just_text() {
    for d in [
        "'DESCRIPTION_TEXT'",
        "USAGE",
        "EOF",
        "it's \"quoted\" and 'single'",
        "runs $(touch pwned) and ${HOME} and $1",
        "runs `touch pwned`",
        "{{ name }} {% if true %}x{% endif %} {# c #}",
        "# not a comment",
        "---",
        "back\\slash \\n \\t and a trailing backslash\\",
        "; exit 3; echo",
    ] {
        check_all(d, false).unwrap();
    }
}

/// Values that could break a file are refused before anything is written.
#[test]
fn values_with_markup_are_refused_where_they_cannot_be_quoted() {
    let sb = Sandbox::new();
    let repos = sb.repos();
    for (set, key) in [
        ("org=a'b", "org"),
        ("org=$(id)", "org"),
        ("org=a b", "org"),
        ("description=two\nlines", "description"),
        ("description=tab\there", "description"),
    ] {
        sb.assert_error(
            [
                std::ffi::OsStr::new("t"),
                "tool".as_ref(),
                "--set".as_ref(),
                set.as_ref(),
                "--out-dir".as_ref(),
                repos.as_os_str(),
            ],
            2,
            &format!("invalid --set {key}="),
        );
        assert!(!repos.exists());
    }
}
