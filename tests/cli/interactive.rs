//! `-i/--interactive`: refused without a terminal; under a real
//! pseudo-terminal it asks for each key not given, re-asks on a value its
//! rules refuse, takes defaults on an empty answer, and Ctrl-C at a prompt
//! exits 130 with nothing created.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::{Sandbox, unavailable};

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

#[test]
fn interactive_without_a_terminal_is_refused_and_creates_nothing() {
    let sb = Sandbox::new();
    let repos = sb.repos();
    for args in [vec!["demo", "-i"], vec!["new", "demo", "--interactive"]] {
        let mut args = args;
        args.extend(["-o", s(&repos), "--no-git", "--no-ledger"]);
        let out = sb.run(&args);
        out.assert_error(
            2,
            "-i needs a terminal; pass values with --set KEY=VALUE or --values FILE",
        );
        assert!(!repos.join("demo").exists(), "{args:?} created something");
    }
}

/// Runs the binary under a pseudo-terminal, answering each prompt
/// (`KEY (description) [default]: `) with the next answer queued for its
/// key, or Enter. Prints everything the terminal showed, then `EXIT=N`; or
/// `NO_PTY: reason` if no pseudo-terminal could be opened. Gives up (kills
/// the child) after 30 seconds.
const DRIVER: &str = r#"
import json, os, re, select, sys, time
try:
    import pty
    pid, fd = pty.fork()
except Exception as e:
    print("NO_PTY: %s" % e)
    sys.exit(0)
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
answers = json.loads(sys.argv[1])
prompt = re.compile(rb"(\w+) \([^\r\n]*\) \[[^\]\r\n]*\]: ")
buf, pos = b"", 0
deadline = time.time() + 30
while True:
    if time.time() > deadline:
        os.kill(pid, 9)
        buf += b"\nDRIVER: timed out\n"
        break
    ready, _, _ = select.select([fd], [], [], 0.2)
    if not ready:
        continue
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    buf += chunk
    while True:
        m = prompt.search(buf, pos)
        if not m:
            break
        pos = m.end()
        queue = answers.get(m.group(1).decode(), [])
        os.write(fd, (queue.pop(0) if queue else "").encode() + b"\r")
_, status = os.waitpid(pid, 0)
sys.stdout.write(buf.decode("utf-8", "replace"))
print("\nEXIT=%d" % os.waitstatus_to_exitcode(status))
"#;

/// The terminal's text and the exit code, or None (with the reason
/// printed) when no pseudo-terminal can be opened here.
fn under_pty(sb: &Sandbox, answers: &str, args: &[&str]) -> Option<(String, i32)> {
    let template = sb.process();
    let mut cmd = Command::new("python3");
    cmd.arg("-c")
        .arg(DRIVER)
        .arg(answers)
        .arg(template.get_program())
        .args(args);
    if let Some(dir) = template.get_current_dir() {
        cmd.current_dir(dir);
    }
    for (key, value) in template.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    let out = cmd
        .output()
        .expect("python3 runs (it drives the pseudo-terminal)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if let Some(reason) = text.strip_prefix("NO_PTY: ") {
        unavailable(&format!(
            "no pseudo-terminal can be opened: {}",
            reason.trim()
        ));
        return None;
    }
    assert!(
        out.status.success(),
        "the driver failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = text
        .rsplit_once("EXIT=")
        .and_then(|(_, c)| c.trim().parse().ok())
        .unwrap_or_else(|| panic!("no exit code in:\n{text}"));
    Some((text, code))
}

#[test]
fn interactive_reasks_a_bad_value_and_takes_defaults_for_the_rest() {
    let sb = Sandbox::new();
    let repos = sb.repos();
    let Some((screen, code)) = under_pty(
        &sb,
        r#"{"port": ["80", "8123"]}"#,
        &[
            "demo",
            "-i",
            "-o",
            s(&repos),
            "--no-git",
            "--no-ledger",
            "--set",
            "org=acme",
        ],
    ) else {
        return;
    };
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("invalid port=\"80\": use a port from 1024 to 65535"),
        "no re-ask message:\n{screen}"
    );
    assert!(
        screen.contains("port (the port the service listens on"),
        "{screen}"
    );
    // --set gave org: it is not asked.
    assert!(!screen.contains("org ("), "org was asked:\n{screen}");
    let repo = repos.join("demo");
    let receipt: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(repo.join(".spawn-elite/receipt.json")).expect("receipt"),
    )
    .expect("JSON");
    let options = &receipt["spawn"]["options"];
    assert_eq!(options["port"], "8123", "{receipt}");
    assert_eq!(options["org"], "acme", "{receipt}");
    assert_eq!(options["python_version"], "3.12", "{receipt}");
    assert_eq!(options["version"], "0.1.0", "{receipt}");
    let dockerfile = fs::read_to_string(repo.join("Dockerfile")).expect("Dockerfile");
    assert!(dockerfile.contains("8123"), "{dockerfile}");
    assert!(!dockerfile.contains("8000"), "{dockerfile}");
}

#[test]
fn interactive_ctrl_c_at_a_prompt_exits_130_and_creates_nothing() {
    let sb = Sandbox::new();
    let repos = sb.repos();
    let Some((screen, code)) = under_pty(
        &sb,
        r#"{"description": ["\u0003"]}"#,
        &[
            "new",
            "demo",
            "-i",
            "-o",
            s(&repos),
            "--no-git",
            "--no-ledger",
        ],
    ) else {
        return;
    };
    assert_eq!(code, 130, "{screen}");
    assert!(screen.contains("interrupted"), "{screen}");
    assert!(!repos.join("demo").exists(), "{screen}");
}
