"""The `update-workflow` check: the generated spawn-elite update workflow's
own scripts, run step by step as GitHub's runner runs them (bash -eo
pipefail, the job's and the step's env, GITHUB_OUTPUT), against a local
clone of a bare origin, with stand-ins for what is not local: `curl` serves a
release archive of the binary under test from a folder, `gh` logs its calls.

What passing means, in order: the install step installs the release and
refuses an archive whose SHA-256 is not in SHA256SUMS; the check step says
"not behind" for the release that spawned the repository and "behind" for a
newer set; the update step merges it on spawn-elite/update-VERSION and its
signed callback reaches a `spawn-elite receive` on loopback; the push step
pushes that branch to origin and creates a pull request whose description
lists the changed file; a second run edits that pull request instead; a
repository without a receipt fails the check step instead of counting as
behind.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import yaml

from support import CheckFailed, Target, run

WORKFLOW = ".github/workflows/spawn-elite-update.yml"
TARGET = "x86_64-unknown-linux-musl"
EXPRESSION = re.compile(r"^\$\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}$")
STEP_TIMEOUT = 300

# `curl ... --output FILE URL`: copies the URL's file name from $FAKE_RELEASE.
FAKE_CURL = """#!/bin/sh
out= url=
while [ $# -gt 0 ]; do
  case $1 in
    --output) out=$2; shift 2 ;;
    http*) url=$1; shift ;;
    *) shift ;;
  esac
done
echo "curl $url" >>"$FAKE_LOG"
cp "$FAKE_RELEASE/${url##*/}" "$out"
"""
# `gh pr list` prints the open pull request's number (none until one is
# created); `gh pr create|edit` keep the description they were given.
FAKE_GH = """#!/bin/sh
echo "gh $*" >>"$FAKE_LOG"
body=
prev=
for arg in "$@"; do
  [ "$prev" = --body-file ] && body=$arg
  prev=$arg
done
case "$1 $2" in
  "pr list") cat "$FAKE_PR" 2>/dev/null || true ;;
  "pr create") echo 7 >"$FAKE_PR"; cp "$body" "$FAKE_BODY" ;;
  "pr edit") cp "$body" "$FAKE_BODY" ;;
  *) echo "gh: unexpected call: $*" >&2; exit 1 ;;
esac
"""


class Runner:
    """Runs the steps of the workflow's one job in a clone of an origin."""

    def __init__(self, t: Target, binary: Path) -> None:
        self.t = t
        self.root = t.scratch / "update-workflow"
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)
        doc = yaml.safe_load((t.path / WORKFLOW).read_text())
        jobs = doc.get("jobs") or {}
        if len(jobs) != 1:
            raise CheckFailed(f"{WORKFLOW}: {len(jobs)} jobs, expected one")
        self.job: dict[str, Any] = next(iter(jobs.values()))
        self.version = subprocess.run([str(binary), "--version"], capture_output=True,
                                      text=True, check=True).stdout.split()[-1]
        # The origin: a bare copy of the spawned repository's history.
        self.origin = self.root / "origin.git"
        run(["git", "clone", "--quiet", "--bare", t.path, self.origin], self.root)
        self.release = self.root / "release"
        self.release.mkdir()
        archive = self.release / f"spawn-elite-{TARGET}.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(binary, arcname=f"spawn-elite-{TARGET}/spawn-elite")
        self.write_sums()
        fake = self.root / "fake-bin"
        fake.mkdir()
        for name, text in (("curl", FAKE_CURL), ("gh", FAKE_GH)):
            (fake / name).write_text(text)
            (fake / name).chmod(0o755)
        self.log = self.root / "fake.log"
        self.body = self.root / "body.md"
        self.env = {
            "PATH": f"{fake}:{os.environ['PATH']}",
            "HOME": str(self.root / "home"),
            "XDG_DATA_HOME": str(self.root / "xdg"),
            "RUNNER_TEMP": str(self.root / "runner-temp"),
            "GITHUB_REF_NAME": "main",
            "GITHUB_REF_TYPE": "branch",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_STEP_SUMMARY": str(self.root / "summary.md"),
            "FAKE_RELEASE": str(self.release),
            "FAKE_LOG": str(self.log),
            "FAKE_PR": str(self.root / "pr-number"),
            "FAKE_BODY": str(self.body),
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        (self.root / "home").mkdir()
        (self.root / "runner-temp").mkdir()
        self.work = self.root / "work"

    def write_sums(self, digest: str | None = None) -> None:
        archive = self.release / f"spawn-elite-{TARGET}.tar.gz"
        digest = digest or subprocess.run(["sha256sum", str(archive)], capture_output=True,
                                          text=True, check=True).stdout.split()[0]
        (self.release / "SHA256SUMS").write_text(f"{digest}  {archive.name}\n")

    def checkout(self) -> None:
        """A fresh clone of the origin with its whole history, as the job's
        checkout makes it (fetch-depth: 0, no credentials kept)."""
        shutil.rmtree(self.work, ignore_errors=True)
        run(["git", "clone", "--quiet", self.origin, self.work], self.root, env=self.env)

    def step(self, step_id: str, values: dict[str, str] | None = None,
             extra: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
        """Runs step `step_id` as the runner would; returns its exit code and
        the outputs it wrote. `values` gives the expressions of its env."""
        values = {"github.token": "ghs_conformance", "github.repository": "acme/repo",
                  **(values or {})}
        steps = [s for s in self.job.get("steps", []) if s.get("id") == step_id]
        if len(steps) != 1 or "run" not in steps[0]:
            raise CheckFailed(f"{WORKFLOW}: no step with id {step_id!r} and a run: script")
        step = steps[0]
        env = {**os.environ, **self.env, **(extra or {})}
        for scope in (self.job.get("env") or {}, step.get("env") or {}):
            for key, value in scope.items():
                m = EXPRESSION.match(str(value))
                if m and m[1] not in values and not m[1].startswith(("vars.", "secrets.")):
                    raise CheckFailed(f"{WORKFLOW} step {step_id}: env {key} uses {value}, "
                                      "which this check does not know")
                env[key] = values.get(m[1], "") if m else str(value)
        output = self.root / f"output-{step_id}"
        output.write_text("")
        env["GITHUB_OUTPUT"] = str(output)
        print(f"$ step {step_id}  (in {self.work})", flush=True)
        started = time.monotonic()
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
                               step["run"]], cwd=self.work, env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace", timeout=STEP_TIMEOUT)
        print(proc.stdout, end="")
        print(f"  -> exit {proc.returncode} ({time.monotonic() - started:.1f} s)", flush=True)
        outputs = dict(line.split("=", 1) for line in output.read_text().splitlines()
                       if "=" in line)
        return proc.returncode, outputs


def expect(findings: list[str], ok: bool, what: str) -> None:
    print(("ok: " if ok else "FINDING: ") + what, flush=True)
    if not ok:
        findings.append(what)


def newer_set(t: Target, binary: Path, root: Path) -> Path:
    """The embedded set, exported, one version on, with SECURITY.md changed."""
    v2 = root / "set-v2"
    run([binary, "templates", "export", v2], root)
    manifest = v2 / "spawn-elite.toml"
    manifest.write_text(manifest.read_text().replace('version = "1.0.0"', 'version = "1.0.1"', 1))
    with (v2 / "base" / "SECURITY.md.j2").open("a") as f:
        f.write("\nReported by the conformance update-workflow check.\n")
    return v2


def start_registry(t: Target, binary: Path, root: Path) -> tuple[str, Path, Path]:
    """A `spawn-elite receive` on loopback trusting a fresh key: its callback
    URL, the key and its log of accepted receipts."""
    key = root / "keys" / "callback.pem"
    run([binary, "keygen", "--output", key], root)
    trust = root / "trust"
    trust.mkdir()
    shutil.copy(f"{key}.pub", trust)
    received = root / "received.jsonl"
    log = t.procs.start("registry", [binary, "receive", "--listen", "127.0.0.1:0",
                                     "--trust", trust, "--log", received], root)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", log.read_text())
        if m:
            return f"{m[1]}/callback", key, received
        time.sleep(0.1)
    raise CheckFailed(f"spawn-elite receive did not say where it listens:\n{log.read_text()}")


def check_update_workflow(t: Target) -> None:
    binary = Path(os.environ["SPAWN_ELITE_BIN"])
    r = Runner(t, binary)
    findings: list[str] = []
    branch = f"spawn-elite/update-{r.version}"
    installed = Path(r.env["RUNNER_TEMP"]) / "spawn-elite" / "bin" / "spawn-elite"

    # Install: a tampered SHA256SUMS is refused, the real one installs.
    r.checkout()
    r.write_sums("0" * 64)
    code, _ = r.step("install")
    expect(findings, code != 0 and not installed.exists(),
           f"install refuses an archive not in SHA256SUMS (exit {code})")
    r.write_sums()
    code, _ = r.step("install")
    expect(findings, code == 0 and installed.is_file(), f"install installs (exit {code})")
    if findings:
        raise CheckFailed(f"{len(findings)} finding(s); first: {findings[0]}")

    # The release that spawned the repository: current.
    code, out = r.step("check")
    expect(findings, (code, out.get("behind")) == (0, "false"),
           f"check with the spawning release: exit {code}, behind={out.get('behind')}")

    # A newer set: behind; the update, its callback, the push and the pull request.
    newer = {"SPAWN_ELITE_TEMPLATES": str(newer_set(t, binary, r.root))}
    code, out = r.step("check", extra=newer)
    expect(findings, (code, out.get("behind")) == (0, "true"),
           f"check with a newer set: exit {code}, behind={out.get('behind')}")
    url, key, received = start_registry(t, binary, r.root)
    callback = {"secrets.SPAWN_ELITE_CALLBACK_KEY": key.read_text(),
                "vars.SPAWN_ELITE_REGISTRY_URL": url}
    code, out = r.step("update", callback, extra=newer)
    expect(findings, code == 0 and "callback-pending" not in out, f"update: exit {code}")
    lines = received.read_text().splitlines() if received.exists() else []
    expect(findings, len(lines) == 1, f"the registry logged {len(lines)} callback(s), expected 1")
    code, _ = r.step("pr", extra=newer)
    expect(findings, code == 0, f"push and pull request: exit {code}")
    security = subprocess.run(["git", "show", f"refs/heads/{branch}:SECURITY.md"],
                              cwd=r.origin, capture_output=True, text=True)
    expect(findings, "conformance update-workflow check" in security.stdout,
           f"origin's {branch} holds the updated SECURITY.md")
    calls = r.log.read_text() if r.log.exists() else ""
    expect(findings, f"gh pr create --head {branch} --base main" in calls,
           "a pull request is created from the branch to main")
    body = r.body.read_text() if r.body.exists() else ""
    expect(findings, "| `SECURITY.md` | updated |" in body and "delivered" in body,
           "its description lists SECURITY.md as updated and the delivered callback")

    # The next run finds the open pull request and edits it.
    r.checkout()
    for step_id in ("check", "update", "pr"):
        code, _ = r.step(step_id, extra=newer)
        expect(findings, code == 0, f"second run, step {step_id}: exit {code}")
    calls = r.log.read_text()
    expect(findings, "gh pr edit 7 " in calls and calls.count("gh pr create") == 1,
           "the second run edits the open pull request")

    # No receipt: an error, never "behind".
    r.checkout()
    run(["git", "rm", "--quiet", ".spawn-elite/receipt.json"], r.work, env=r.env)
    code, out = r.step("check")
    expect(findings, code != 0 and out.get("behind") is None,
           f"without a receipt the check step fails (exit {code}, behind={out.get('behind')})")

    if findings:
        raise CheckFailed(f"{len(findings)} finding(s); first: {findings[0]}")
    print("the update workflow's steps install, check, update, call back, push and open "
          "or refresh the pull request")
