"""The repositories under test: which variants are spawned, and how."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from support import CheckFailed, Processes, Target
from tool_checks import check_venv_pip

ROOT = Path(__file__).resolve().parent.parent.parent
# Where install-tools.sh put the tools (and the shared pip download cache).
CACHE = Path(os.environ.get("CONFORMANCE_CACHE", ROOT / "target" / "conformance-cache"))

# Awkward on purpose: quotes, $, backticks, <>, & and a literal backslash-n.
SET_DESC = 'Payments "gateway" <v2> & friends: it\'s $HOME, `uname` \\n done'
SET_COMMON = ("--no-git", "--set", "org=Acme-Labs")


@dataclass(frozen=True)
class Variant:
    label: str
    name: str
    kind: str  # service | infra | tool
    flags: tuple[str, ...]

    @property
    def elite(self) -> bool:
        return "--no-elite" not in self.flags

    @property
    def git(self) -> bool:
        return "--no-git" not in self.flags


# service-set's port is Prometheus's own default host port (9090), so the
# compose-posture check proves the host ports never collide.
VARIANTS = [
    Variant("service", "svc-demo", "service", ()),
    Variant("service-noelite", "svc-plain", "service", ("--no-elite", "--no-git")),
    Variant("service-set", "payments-api", "service", (
        *SET_COMMON, "--set", "python_version=3.11", "--set", "port=9090",
        "--set", "version=2.3.4", "--set", f"description={SET_DESC}")),
    Variant("infra", "infra-demo", "infra", ()),
    Variant("infra-noelite", "infra-plain", "infra", ("--no-elite", "--no-git")),
    Variant("infra-set", "net-stack", "infra", (
        *SET_COMMON, "--set", "version=2.3.4", "--set", f"description={SET_DESC}")),
    Variant("tool", "tool-demo", "tool", ()),
    Variant("tool-noelite", "tool-plain", "tool", ("--no-elite", "--no-git")),
    Variant("tool-set", "log-pruner", "tool", (
        *SET_COMMON, "--set", "version=2.3.4", "--set", f"description={SET_DESC}")),
]
BY_LABEL = {v.label: v for v in VARIANTS}


def labels(kind: str | None = None, elite: bool | None = None,
           git: bool | None = None) -> list[str]:
    """Labels of the variants of this kind / eliteness / with git (None: any)."""
    return [v.label for v in VARIANTS
            if kind in (None, v.kind) and elite in (None, v.elite) and git in (None, v.git)]


def make_target(path: Path, label: str, scratch: Path, procs: Processes) -> Target:
    """A Target for the repo of variant `label` at path (or a copy of it)."""
    v = BY_LABEL[label]
    return Target(path=path, kind=v.kind, elite=v.elite, scratch=scratch, procs=procs,
                  cache=CACHE, env={"PIP_CACHE_DIR": str(CACHE / "pip")})


class Repos:
    """Spawns each variant once per session, on first use; remembers whether
    the service venvs (the venv+pip check) installed."""

    def __init__(self, binary: Path, work: Path) -> None:
        self.binary = binary
        self.work = work
        self._paths: dict[str, Path] = {}
        self._venvs: dict[str, CheckFailed | None] = {}

    def path(self, label: str) -> Path:
        if label not in self._paths:
            v = BY_LABEL[label]
            out = self.work / "repos" / label
            out.mkdir(parents=True)
            argv = [str(self.binary), v.name, v.kind, "--out-dir", str(out), "--quiet",
                    *v.flags]
            # The spawn's ledger line goes to the work dir, not the user's data dir.
            env = {**os.environ, "XDG_DATA_HOME": str(self.work / "xdg-data")}
            subprocess.run(argv, env=env, check=True, stdin=subprocess.DEVNULL, timeout=120)
            self._paths[label] = out / v.name
        return self._paths[label]

    def install_venv(self, label: str, target: Target) -> None:
        """Runs the venv+pip check once per repo; later calls repeat its result."""
        if label not in self._venvs:
            try:
                check_venv_pip(target)
                self._venvs[label] = None
            except CheckFailed as err:
                self._venvs[label] = err
        if self._venvs[label] is not None:
            raise CheckFailed(f"venv+pip failed on {label}: {self._venvs[label]}")
