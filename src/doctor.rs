//! `spawn-elite doctor`: which of the tools that spawned repositories use are
//! on this host, at what version, and what each one is for.
//!
//! spawn-elite itself needs none of them (git is optional: without it a spawn
//! is written uncommitted, with a warning), so a missing tool is information,
//! not an error: doctor exits 0 whenever it could look. Scripts that want to
//! insist on a tool read `--json`.

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long one `TOOL --version` may take before it counts as not answering.
const TIMEOUT: Duration = Duration::from_secs(5);

/// One tool a spawned repository uses.
pub struct Tool {
    /// What the report calls it.
    pub name: &'static str,
    /// The command that prints its version.
    pub argv: &'static [&'static str],
    /// The oldest version the spawned repositories work with, if any.
    pub minimum: Option<&'static str>,
    /// Which spawned repositories use it, and for what.
    pub needed_for: &'static str,
    /// A failing version command means the tool is absent: a plugin of a
    /// command that is itself present (`docker compose`).
    pub failure_means_missing: bool,
}

/// The tools checked, in the order reported.
pub const TOOLS: &[Tool] = &[
    Tool {
        name: "git",
        argv: &["git", "--version"],
        minimum: None,
        needed_for: "every type: spawn-elite commits the new repository (without git it is written uncommitted)",
        failure_means_missing: false,
    },
    Tool {
        // Not `python3`: the service's `make venv` runs `python$(PYTHON_VERSION)`
        // and insists on exactly that version, so this is the interpreter it
        // uses with the default python_version (a test ties the two).
        name: "python3.12",
        argv: &["python3.12", "--version"],
        minimum: Some("3.12"),
        needed_for: "service: make venv (python3.12 for the default python_version; a repo declaring 3.N needs python3.N), then make test, make dev",
        failure_means_missing: false,
    },
    Tool {
        name: "make",
        argv: &["make", "--version"],
        minimum: None,
        needed_for: "every type: the Makefile targets (test, lint, dev, plan, ...)",
        failure_means_missing: false,
    },
    Tool {
        name: "docker",
        argv: &["docker", "--version"],
        minimum: None,
        needed_for: "service: building the container image",
        failure_means_missing: false,
    },
    Tool {
        name: "docker compose",
        argv: &["docker", "compose", "version", "--short"],
        minimum: None,
        needed_for: "service: the local app + Prometheus + Grafana stack (docker-compose.yml)",
        failure_means_missing: true,
    },
    Tool {
        name: "terraform",
        argv: &["terraform", "version"],
        minimum: Some("1.6"),
        needed_for: "infra: make init, plan, apply, lint (terraform fmt), verify",
        failure_means_missing: false,
    },
    Tool {
        name: "bash",
        argv: &["bash", "--version"],
        minimum: Some("4.0"),
        needed_for: "tool: the command itself (Bash 4 or newer); every type: the Makefiles' shell",
        failure_means_missing: false,
    },
    Tool {
        name: "bats",
        argv: &["bats", "--version"],
        minimum: None,
        needed_for: "tool: make test",
        failure_means_missing: false,
    },
    Tool {
        name: "shellcheck",
        argv: &["shellcheck", "--version"],
        minimum: None,
        needed_for: "tool: make lint",
        failure_means_missing: false,
    },
    Tool {
        name: "shfmt",
        argv: &["shfmt", "--version"],
        minimum: None,
        needed_for: "tool: make lint (shfmt -d), make format",
        failure_means_missing: false,
    },
    Tool {
        name: "yamllint",
        argv: &["yamllint", "--version"],
        minimum: None,
        needed_for: "infra, tool: make lint, make verify (a service installs its own into .venv)",
        failure_means_missing: false,
    },
    Tool {
        name: "kubectl",
        argv: &["kubectl", "version", "--client"],
        minimum: None,
        needed_for: "service (elite), optional: applying the Kubernetes manifests (kubectl apply -k deployments/kubernetes/base)",
        failure_means_missing: false,
    },
    Tool {
        name: "tflint",
        argv: &["tflint", "--version"],
        minimum: None,
        needed_for: "infra, optional: linting with the generated .tflint.hcl",
        failure_means_missing: false,
    },
];

/// What looking for one tool found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Found, at this version (or "unknown" when its output had none).
    Found(String),
    /// Found, but older than the tool's minimum.
    TooOld(String),
    /// Not on PATH.
    Missing,
    /// On PATH, but it failed, hung or could not be run; the reason.
    Broken(String),
}

impl Status {
    pub fn word(&self) -> &'static str {
        match self {
            Status::Found(_) => "ok",
            Status::TooOld(_) => "too old",
            Status::Missing => "missing",
            Status::Broken(_) => "broken",
        }
    }

    pub fn version(&self) -> Option<&str> {
        match self {
            Status::Found(v) | Status::TooOld(v) => Some(v),
            Status::Missing | Status::Broken(_) => None,
        }
    }
}

/// Look for every tool, all at once so one slow tool does not add up.
pub fn check_all() -> Vec<(&'static Tool, Status)> {
    let handles: Vec<_> = TOOLS
        .iter()
        .map(|tool| thread::spawn(move || (tool, check(tool))))
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("a doctor check panicked"))
        .collect()
}

/// Run the tool's version command and judge what it printed.
pub fn check(tool: &Tool) -> Status {
    let output = match run(tool.argv, TIMEOUT) {
        Ok(output) => output,
        Err(RunError::NotFound) => return Status::Missing,
        Err(RunError::Other(reason)) => return Status::Broken(reason),
    };
    if !output.success {
        // 127 is the shell's "command not found": what a version manager's
        // shim (pyenv's python3.12) answers for a version not installed.
        if tool.failure_means_missing || output.code == Some(127) {
            return Status::Missing;
        }
        let first = output.text.lines().next().unwrap_or("").trim();
        return Status::Broken(if first.is_empty() {
            "its version command failed".to_string()
        } else {
            first.to_string()
        });
    }
    let Some(version) = parse_version(&output.text) else {
        return Status::Found("unknown".to_string());
    };
    match tool.minimum {
        Some(min) if older_than(&version, min) => Status::TooOld(version),
        _ => Status::Found(version),
    }
}

struct Output {
    success: bool,
    code: Option<i32>,
    /// stdout then stderr: some tools print their version on either.
    text: String,
}

enum RunError {
    NotFound,
    Other(String),
}

fn run(argv: &[&str], timeout: Duration) -> Result<Output, RunError> {
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| match err.kind() {
            std::io::ErrorKind::NotFound => RunError::NotFound,
            _ => RunError::Other(format!("cannot run {}: {err}", argv[0])),
        })?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RunError::Other(format!(
                    "`{}` did not answer within {timeout:?}",
                    argv.join(" ")
                )));
            }
            Err(err) => return Err(RunError::Other(format!("waiting for {}: {err}", argv[0]))),
        }
    };
    let mut bytes = out_reader.join().unwrap_or_default();
    bytes.extend(err_reader.join().unwrap_or_default());
    Ok(Output {
        success: status.success(),
        code: status.code(),
        text: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// The first dotted number in a version banner: "git version 2.47.3" →
/// "2.47.3", "Terraform v1.9.5" → "1.9.5", "GNU Make 4.3" → "4.3".
pub fn parse_version(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit()
            && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'v')
        {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            let candidate = text[start..i].trim_end_matches('.');
            if candidate.contains('.') {
                return Some(candidate.to_string());
            }
        } else {
            i += 1;
        }
    }
    None
}

/// Whether dotted version `version` is older than `minimum`, comparing
/// numerically part by part ("3.9.18" < "3.10").
pub fn older_than(version: &str, minimum: &str) -> bool {
    let parts = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    let (v, m) = (parts(version), parts(minimum));
    for i in 0..v.len().max(m.len()) {
        let (a, b) = (
            v.get(i).copied().unwrap_or(0),
            m.get(i).copied().unwrap_or(0),
        );
        if a != b {
            return a < b;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_real_banners() {
        let cases = [
            ("git version 2.47.3", "2.47.3"),
            ("Python 3.11.7", "3.11.7"),
            ("GNU Make 4.3\nBuilt for x86_64-pc-linux-gnu", "4.3"),
            ("Docker version 28.2.2, build e6534b4", "28.2.2"),
            ("Terraform v1.9.5\non linux_amd64", "1.9.5"),
            ("Bats 1.8.2", "1.8.2"),
            (
                "ShellCheck - shell script analysis tool\nversion: 0.9.0\nlicense: GNU GPL",
                "0.9.0",
            ),
            ("2.29.1", "2.29.1"),
        ];
        for (banner, want) in cases {
            assert_eq!(parse_version(banner).as_deref(), Some(want), "{banner}");
        }
        assert_eq!(parse_version("no digits here"), None);
        // A number glued to letters (x86_64) is not a version.
        assert_eq!(parse_version("built for x86_64 only"), None);
    }

    #[test]
    fn version_order_is_numeric() {
        assert!(older_than("3.9.18", "3.10"));
        assert!(!older_than("3.10.0", "3.10"));
        assert!(!older_than("3.12", "3.10"));
        assert!(older_than("1.5.7", "1.6"));
        assert!(!older_than("1.6", "1.6.0"));
    }

    /// `make venv` runs `python$(PYTHON_VERSION)`, so doctor checks the
    /// interpreter of the embedded set's default python_version, not `python3`.
    #[test]
    fn the_python_checked_is_the_one_make_venv_uses_by_default() {
        let set = crate::templates::TemplateSet::embedded().unwrap();
        let key = set
            .manifest
            .keys
            .iter()
            .find(|k| k.name == "python_version")
            .expect("the embedded set declares python_version");
        let makefile = crate::templates::embedded_files()
            .into_iter()
            .find(|(path, _)| path == "service/Makefile.j2")
            .map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned())
            .expect("the service Makefile is embedded");
        assert!(makefile.contains("PYTHON_BASE ?= python$(PYTHON_VERSION)"));
        let python: Vec<_> = TOOLS
            .iter()
            .filter(|t| t.name.starts_with("python"))
            .collect();
        assert_eq!(python.len(), 1);
        let want = format!("python{}", key.default);
        assert_eq!(python[0].name, want);
        assert_eq!(python[0].argv[0], want);
        assert_eq!(python[0].minimum, Some(key.default.as_str()));
    }

    #[test]
    fn a_missing_tool_is_reported_missing() {
        let tool = Tool {
            name: "nope",
            argv: &["spawn-elite-no-such-command-for-doctor"],
            minimum: None,
            needed_for: "nothing",
            failure_means_missing: false,
        };
        assert_eq!(check(&tool), Status::Missing);
    }

    #[test]
    fn a_tool_that_hangs_is_cut_off() {
        let started = Instant::now();
        let result = run(&["sleep", "5"], Duration::from_millis(200));
        assert!(matches!(result, Err(RunError::Other(ref m)) if m.contains("did not answer")));
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}
