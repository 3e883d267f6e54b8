"""Fixtures and reporting for the conformance suite.

The tools come from install-tools.sh's cache (CONFORMANCE_CACHE, default
target/conformance-cache). The spawn-elite binary is SPAWN_ELITE_BIN, or built
once with `cargo build --release --locked`. Each variant is spawned once per
session into a work directory that is removed at the end (--keep keeps it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from repos import CACHE, ROOT, VARIANTS, Repos, make_target
from support import CheckFailed, Processes, Target


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--keep", action="store_true",
                     help="keep the work directory (spawned repos, logs, broken copies)")


def pytest_configure(config: pytest.Config) -> None:
    if not (CACHE / "bin" / "terraform").exists():
        pytest.exit(f"no tools in {CACHE}: run scripts/conformance/install-tools.sh", 2)
    os.environ["PATH"] = f"{CACHE / 'bin'}{os.pathsep}{os.environ['PATH']}"
    os.environ.update(TF_CLI_CONFIG_FILE=str(CACHE / "terraformrc"),
                      TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1")
    # compose-config proves there is no default for it: it must be unset.
    os.environ.pop("GRAFANA_ADMIN_PASSWORD", None)


# ------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def work(pytestconfig: pytest.Config) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="conformance."))
    yield path
    if pytestconfig.getoption("keep"):
        print(f"\nwork directory kept: {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def binary() -> Path:
    if os.environ.get("SPAWN_ELITE_BIN"):
        return Path(os.environ["SPAWN_ELITE_BIN"])
    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=ROOT,
                   check=True)
    built = ROOT / "target" / "release" / "spawn-elite"
    # For the checks that run it themselves (update-workflow).
    os.environ["SPAWN_ELITE_BIN"] = str(built)
    return built


@pytest.fixture(scope="session")
def repos(binary: Path, work: Path) -> Repos:
    return Repos(binary, work)


@pytest.fixture
def scratch(work: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A fresh directory for this test's logs, configs and copies; removed
    after the test unless --keep."""
    parent = work / "scratch"
    parent.mkdir(exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:80]
    path = Path(tempfile.mkdtemp(prefix=f"{slug}.", dir=parent))
    yield path
    if not request.config.getoption("keep"):
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def procs(scratch: Path) -> Iterator[Processes]:
    """Servers a check starts (uvicorn, prometheus); stopped at teardown."""
    running = Processes(scratch)
    yield running
    running.stop_all()


@pytest.fixture
def target(label: str, repos: Repos, scratch: Path, procs: Processes) -> Target:
    """The spawned repository `label` (the test's parameter)."""
    return make_target(repos.path(label), label, scratch, procs)


@pytest.fixture
def service_venv(label: str, target: Target, repos: Repos) -> None:
    """The repo's .venv, for checks that run its tools; skipped when the
    venv+pip check failed (that failure is reported by venv+pip itself)."""
    if target.kind == "service":
        try:
            repos.install_venv(label, target)
        except CheckFailed as err:
            pytest.skip(str(err))


# ------------------------------------------------------------ order and report

def params_of(item: pytest.Item) -> dict[str, Any]:
    callspec = getattr(item, "callspec", None)
    return dict(callspec.params) if callspec is not None else {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Breaks first (they copy pristine spawns), then the checks repo by repo
    in definition order, git-clean last (it inspects what the others left)."""
    order = {v.label: i for i, v in enumerate(VARIANTS)}

    def key(pair: tuple[int, pytest.Item]) -> tuple[int, int, int, int]:
        index, item = pair
        mark = item.get_closest_marker("check")
        if mark is None:
            return (0, 0, 0, index)
        last = 1 if mark.args[0] == "git-clean" else 0
        return (1, order[str(params_of(item)["label"])], last, index)

    items[:] = [item for _, item in sorted(enumerate(items), key=key)]
    # What the summary table shows: the check, and the repo or the break.
    for item in items:
        params = params_of(item)
        mark = item.get_closest_marker("check")
        brk = params.get("brk")
        if mark is not None:
            item.user_properties += [("row", mark.args[0]), ("subject", params["label"])]
        elif brk is not None:
            item.user_properties += [("row", brk.check),
                                     ("subject", brk.what)]


@dataclass
class Row:
    check: str
    subject: str  # the repo, or the break
    outcome: str = "passed"
    seconds: float = 0.0  # setup (spawn, venv) + call + teardown
    why: str = ""


_rows: dict[str, Row] = {}
WORDS = {"passed": "pass", "failed": "FAIL", "skipped": "skip"}
BREAK_WORDS = {"passed": "caught", "failed": "MISSED", "skipped": "skip"}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    props = dict(report.user_properties)
    if "row" not in props:
        return
    row = _rows.setdefault(report.nodeid, Row(str(props["row"]), str(props["subject"])))
    row.seconds += report.duration
    row.why = str(props.get("why", row.why))
    if report.outcome != "passed" and row.outcome == "passed":
        row.outcome = report.outcome


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """A table per suite: check, repo or break, result, seconds."""
    for title, words, header in (("checks", WORDS, "repo"), ("breaks", BREAK_WORDS, "break")):
        rows = [r for n, r in _rows.items() if f"test_{title}.py" in n]
        if not rows:
            continue
        terminalreporter.section(f"conformance {title}", sep="-")
        w1 = max(len(r.check) for r in rows) + 2
        w2 = max(len(r.subject) for r in rows) + 2
        line = terminalreporter.write_line
        line(f"{'check':<{w1}}{header:<{w2}}{'result':<8}{'seconds':>8}")
        for r in rows:
            why = f"  {r.why[:70]}" if r.why else ""
            line(f"{r.check:<{w1}}{r.subject:<{w2}}{words.get(r.outcome, r.outcome):<8}"
                 f"{r.seconds:>8.2f}{why}")
        counts = Counter(r.outcome for r in rows)
        line(f"{len(rows)} {title}: " + ", ".join(
            f"{counts[o]} {words[o]}" for o in ("passed", "failed", "skipped")
            if counts[o] or o == "passed"))
