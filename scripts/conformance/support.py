"""What every check uses: the repository under test, commands, servers, probes.

A check is a function `check(t: Target) -> None` that prints what it did and
raises `CheckFailed` on any finding. Loopback only; every wait is bounded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

# The longest any single command may run (pip install of a service's tools).
COMMAND_TIMEOUT = 900


class CheckFailed(AssertionError):
    """A check found something wrong (as opposed to a bug in the check)."""


def fail_if(findings: list[str], ok_message: str) -> None:
    for finding in findings:
        print(f"FINDING: {finding}")
    if findings:
        raise CheckFailed(f"{len(findings)} finding(s); first: {findings[0]}")
    print(ok_message)


def tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run(
    argv: Sequence[str | Path],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    expect_failure: bool = False,
    timeout: float = COMMAND_TIMEOUT,
    merge_stderr: bool = True,
) -> str:
    """Runs a command, prints its output and returns it (stdout and stderr
    together, or with merge_stderr=False stdout alone, stderr only printed).

    Raises CheckFailed when it exits non-zero, or, with expect_failure, when
    it exits zero.
    """
    words = [str(a) for a in argv]
    print(f"$ {' '.join(words)}  (in {cwd})", flush=True)
    try:
        proc = subprocess.run(
            words,
            cwd=cwd,
            env=None if env is None else {**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            text=True,
            errors="replace",
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as err:
        raise CheckFailed(f"{words[0]} did not finish within {timeout} s") from err
    for text in (proc.stdout, proc.stderr or ""):
        if text:
            print(text, end="" if text.endswith("\n") else "\n", flush=True)
    if expect_failure and proc.returncode == 0:
        raise CheckFailed(f"{' '.join(words)} exited 0, expected a failure")
    if not expect_failure and proc.returncode != 0:
        raise CheckFailed(
            f"{' '.join(words)} exited {proc.returncode}:\n"
            f"{tail(proc.stdout + (proc.stderr or ''))}"
        )
    return proc.stdout


def interpreter(minor: int) -> str | None:
    """A working python3.MINOR: on PATH (install-tools.sh links one into the
    cache's bin, which conftest.py puts first), or a pyenv install."""
    candidates = [shutil.which(f"python3.{minor}") or ""]
    candidates += sorted(map(str, Path.home().glob(f".pyenv/versions/3.{minor}.*/bin/python3")))
    for c in candidates:
        if c and subprocess.run([c, "-c", "pass"], capture_output=True, timeout=30).returncode == 0:
            return c
    return None


def copy_repo(src: Path, dest: Path) -> Path:
    """A throwaway copy; the (large) .venv is linked, not copied."""

    def top_venv(directory: str, names: list[str]) -> list[str]:
        return [".venv"] if Path(directory) == src and ".venv" in names else []

    shutil.copytree(src, dest, symlinks=True, ignore=top_venv)
    if (src / ".venv").is_dir():
        (dest / ".venv").symlink_to(src / ".venv")
    return dest


class Processes:
    """Background servers of one test; `stop_all` runs in the fixture teardown."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._running: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []

    def start(self, name: str, argv: Sequence[str | Path], cwd: Path) -> Path:
        """Starts argv in the background; returns its log file."""
        log = self.log_dir / f"{name}.log"
        out = log.open("wb")
        words = [str(a) for a in argv]
        print(f"$ {' '.join(words)} &  (log: {log})", flush=True)
        proc = subprocess.Popen(
            words, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        self._running.append((proc, out))
        return log

    def stop_all(self) -> None:
        for proc, out in reversed(self._running):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
            out.close()
        self._running.clear()


@dataclass
class Target:
    """A generated repository (or a broken copy of one) and a place to work."""

    path: Path
    kind: str  # service | infra | tool
    elite: bool
    scratch: Path  # temp dir for logs, configs and copies; removed afterwards
    procs: Processes
    cache: Path  # the tools cache (pip downloads are shared through it)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    def venv_bin(self, tool: str) -> Path:
        return self.path / ".venv" / "bin" / tool


# ------------------------------------------------------------ loopback HTTP


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _loopback_only(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname
    if host not in {"127.0.0.1", "localhost", "::1"}:
        raise ValueError(f"refusing non-loopback URL {url}")


def http_get(url: str) -> tuple[int, str, str]:
    """(status, content type, body); raises CheckFailed on an HTTP error."""
    _loopback_only(url)
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 (loopback)
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as err:
        raise CheckFailed(f"{url}: HTTP {err.code}") from err


def http_status(url: str, method: str = "GET") -> int:
    """The status code of a request (any method), errors included."""
    _loopback_only(url)
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 (loopback)
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def wait_for_200(url: str, seconds: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if http_get(url)[0] == 200:
                return
        except (CheckFailed, OSError):
            pass
        time.sleep(0.25)
    server_log = f"\nserver log:\n{tail(log.read_text(errors='replace'))}" if log else ""
    raise CheckFailed(f"{url} did not answer 200 within {seconds} s{server_log}")


def expect_json(url: str, expected: object) -> None:
    status, ctype, body = http_get(url)
    print(f"{status} {ctype} {body}")
    if status != 200 or json.loads(body) != expected:
        raise CheckFailed(f"{url}: expected 200 {json.dumps(expected)}, got {status} {body}")


def expect_prometheus_text(url: str) -> None:
    status, ctype, body = http_get(url)
    types = [ln for ln in body.splitlines() if ln.startswith("# TYPE ")]
    print(f"{status} {ctype}; {len(types)} metric families")
    print("\n".join(types[:8]))
    if not (status == 200 and ctype.startswith("text/plain") and types):
        raise CheckFailed(f"{url}: not Prometheus text ({status} {ctype})")


def wait_prometheus_up(prom_url: str, job: str, seconds: float) -> None:
    """Prometheus's API reports up == 1 for every target of job."""
    query = urllib.parse.urlencode({"query": f'up{{job="{job}"}}'})
    deadline = time.monotonic() + seconds
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            results = json.loads(http_get(f"{prom_url}/api/v1/query?{query}")[2])
            results = results["data"]["result"]
            last = json.dumps(results)
            if results and all(r["value"][1] == "1" for r in results):
                print(f"up == 1: {last}")
                return
        except (CheckFailed, OSError, KeyError, ValueError):
            pass
        time.sleep(1)
    raise CheckFailed(f"target not up within {seconds} s; last answer: {last}")
