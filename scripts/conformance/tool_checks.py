"""Checks that run the real tools a user will point at a generated repository.

Each takes a Target, prints what it ran and raises CheckFailed when a command
fails (or, where a failure is the point, succeeds). Commands come from PATH,
which conftest.py puts the tools cache in front of.
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
import shutil
import sys
from pathlib import Path

from support import (
    CheckFailed,
    Target,
    copy_repo,
    expect_json,
    expect_prometheus_text,
    fail_if,
    free_port,
    http_get,
    http_status,
    interpreter,
    run,
    wait_for_200,
    wait_prometheus_up,
)

# ------------------------------------------------------------------ every type


def check_yamllint(t: Target) -> None:
    config = t.path / ".yamllint"
    if not config.is_file():
        raise CheckFailed("no .yamllint")
    # The committed config must keep real rules, not relax everything away.
    if re.search(r"disable|relaxed", config.read_text()):
        raise CheckFailed(".yamllint disables rules or extends the relaxed preset")
    run(["yamllint", "--strict", "--format", "parsable", "."], t.path)


def check_make_targets(t: Target) -> None:
    makefile = (t.path / "Makefile").read_text()
    for target in ("help", "lint", "test", "ci"):
        # A target named only in .PHONY "succeeds" doing nothing: require a rule.
        if not re.search(rf"^{target}:", makefile, re.MULTILINE):
            raise CheckFailed(f"Makefile has no rule for {target}")
        run(["make", "-C", t.path, "--no-print-directory", target], t.path)


# One lint error per type, appended to a copy: `make lint` must then fail.
LINT_ERRORS = {
    "service": ("main.py", "\nimport os\n"),
    "infra": ("main.tf", 'locals {\n    badly   = "formatted"\n}\n'),
    "tool": ("lib/common.sh", "\nbroken() {\n  echo $1\n}\n"),
}


def check_make_lint_fails(t: Target) -> None:
    copy = copy_repo(t.path, t.scratch / "lint-error" / t.name)
    rel, text = LINT_ERRORS[t.kind]
    with (copy / rel).open("a") as f:
        f.write(text)
    run(["make", "-C", copy, "--no-print-directory", "lint"], copy, expect_failure=True)
    print("make lint failed on the lint error, as it should")


def check_git_clean(t: Target) -> None:
    """After every other check, the spawn's single commit still describes the
    repo: everything the tools wrote (.venv, caches, .terraform) is ignored."""
    run(["git", "log", "--oneline"], t.path)
    count = run(["git", "rev-list", "--count", "HEAD"], t.path, merge_stderr=False).strip()
    if count != "1":
        raise CheckFailed(f"{count} commits, expected 1")
    dirty = run(["git", "status", "--porcelain", "--untracked-files=all"], t.path,
                merge_stderr=False)
    if dirty.strip():
        raise CheckFailed(f"not ignored or changed after the checks:\n{dirty}")
    print("working tree clean")


def check_actionlint(t: Target) -> None:
    run(["actionlint", "-color=false", *workflows(t)], t.path)


def check_workflow_schema(t: Target) -> None:
    run(["check-jsonschema", "--builtin-schema", "vendor.github-workflows",
         *workflows(t)], t.path)


def workflows(t: Target) -> list[str]:
    found = sorted(str(p.relative_to(t.path)) for p in t.path.glob(".github/workflows/*.yml"))
    if not found:
        raise CheckFailed("no .github/workflows/*.yml")
    return found


# --------------------------------------------------------------------- service


def declared_python(t: Target) -> str:
    m = re.search(r"^PYTHON_VERSION := (3\.[0-9]+)$", (t.path / "Makefile").read_text(),
                  re.MULTILINE)
    if not m:
        raise CheckFailed("the Makefile declares no PYTHON_VERSION")
    return m.group(1)


def check_venv_pip(t: Target) -> None:
    """`make venv` builds .venv on the declared Python with the hash-checked
    lock; where that Python is not installed it must fail saying so, and the
    venv is then made with python3 and the same lock (so the other checks
    still run). Then `pip check`."""
    venv = t.path / ".venv"
    if venv.is_symlink():
        venv.unlink()  # a broken copy's link to the original venv
    shutil.rmtree(venv, ignore_errors=True)
    version = declared_python(t)
    env = {**t.env, "PIP_ONLY_BINARY": ":all:", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           "PIP_QUIET": "1"}
    try:
        run(["make", "--no-print-directory", "venv"], t.path, env=env)
        made_by_make = True
    except CheckFailed as err:
        if f"Python {version} is required" not in str(err):
            raise
        print(f"make venv refused: no Python {version} here; python3 stands in")
        made_by_make = False
    if made_by_make:
        got = run([t.venv_bin("python"), "-c",
                   "import sys; print('%d.%d' % sys.version_info[:2])"], t.path).strip()
        if got != version:
            raise CheckFailed(f"make venv built .venv on Python {got}, the repo declares "
                              f"{version}")
    else:
        shutil.rmtree(venv, ignore_errors=True)
        run(["python3", "-m", "venv", ".venv"], t.path)
        run([t.venv_bin("pip"), "install", "--require-hashes", "-r", "requirements-dev.lock"],
            t.path, env=env)
    run([t.venv_bin("pip"), "check"], t.path)


# The pip that each Python the python_version key accepts (3.10-3.14) bundles
# in its first release (Lib/ensurepip), with the sha256 of that wheel on PyPI:
# the oldest pip a user's `python3.N -m venv` can seed. pip before 23.3 refuses
# under --require-hashes, on Python 3.11+, an extra that a dependency asks for
# (pytest-cov: coverage[toml]) when the lock spells only the bare package.
BUNDLED_PIP = {
    10: ("21.2.3", "895df6014c2f02f9d278a8ad6e31cdfd312952b4a93c3068d0556964f4490057"),
    11: ("22.3", "1daab4b8d3b97d1d763caeb01a4640a2250a0ea899e257b1e44b9eded91e15ab"),
    12: ("23.2.1", "7ccf472345f20d35bdc9d1841ff5f313260c2c33fe417f48c30ac46cccabf5be"),
    13: ("24.2", "2cd581cf58ab7fcfca4ce8efa6dcacd0de5bf8d0a3eb9ec927e07405f4d9e2a2"),
    14: ("25.2", "6d67a2b4e7f14d8b31b8b52648866fa717f45a1eb70e83002f4331d07e953717"),
}
# install-tools.sh provides these; a newer one missing here is simulated.
REQUIRED_MINORS = (10, 11, 12, 13)


def pip_pin(pip_version: str, sha256: str, where: Path) -> Path:
    """A requirements file pinning that pip by its hash."""
    where.mkdir(parents=True, exist_ok=True)
    pin = where / "pip.txt"
    pin.write_text(f"pip=={pip_version} --hash=sha256:{sha256}\n")
    return pin


def stock_python(python: str, pin: Path, where: Path) -> Path:
    """A stand-in for a CPython whose ensurepip bundles the pip of `pin`: the
    real interpreter, except that `-m venv DIR` seeds DIR with that pip."""
    wrapper = where / "python"
    wrapper.write_text(f"""#!/bin/sh
if [ "$1" = -m ] && [ "$2" = venv ]; then
  {shlex.quote(python)} -m venv "$3" || exit
  exec "$3/bin/python" -m pip install --quiet --disable-pip-version-check \\
    --require-hashes --no-deps -r {shlex.quote(str(pin))}
fi
exec {shlex.quote(python)} "$@"
""")
    wrapper.chmod(0o755)
    return wrapper


def check_venv_bundled_pip(t: Target) -> None:
    """`make venv` on every Python 3.10-3.14 with the pip its first release
    bundles (BUNDLED_PIP), --require-hashes as the Makefile has it: a user
    who never upgraded pip can install the lock. The venv must end up on that
    Python with that pip, then `pip check`. A newer Python missing here is
    checked by its pip resolving the lock with --python-version (dry run);
    3.10-3.13 must be installed (install-tools.sh)."""
    env = {**t.env, "PIP_ONLY_BINARY": ":all:", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           "PIP_QUIET": "1"}
    found = {minor: interpreter(minor) for minor in BUNDLED_PIP}
    newest = next((found[m] for m in sorted(found, reverse=True) if found[m]), None)
    findings = []
    for minor, (pip_version, sha256) in BUNDLED_PIP.items():
        work = t.scratch / f"bundled-pip-3.{minor}"
        python = found[minor]
        try:
            if python:
                print(f"--- Python 3.{minor} ({python}) with pip {pip_version}")
                venv = work / "venv"
                base = stock_python(python, pip_pin(pip_version, sha256, work), work)
                run(["make", "--no-print-directory", "venv", f"PYTHON_VERSION=3.{minor}",
                     f"PYTHON_BASE={base}", f"VENV={venv}"], t.path, env=env)
                got = run([venv / "bin" / "pip", "--version"], t.path, env=env)
                if not got.startswith(f"pip {pip_version} ") or f"(python 3.{minor})" not in got:
                    raise CheckFailed(f"make venv did not run pip {pip_version} on Python "
                                      f"3.{minor}: {got.strip()}")
                run([venv / "bin" / "pip", "check"], t.path, env=env)
                shutil.rmtree(venv)
            elif minor not in REQUIRED_MINORS and newest:
                print(f"--- no Python 3.{minor} here: pip {pip_version} resolves the lock "
                      f"for it with --python-version (dry run)")
                pin = pip_pin(pip_version, sha256, work)
                run([newest, "-m", "venv", work / "venv"], t.path, env=env)
                run([work / "venv" / "bin" / "python", "-m", "pip", "install",
                     "--require-hashes", "--no-deps", "-r", pin], t.path, env=env)
                got = run([work / "venv" / "bin" / "pip", "--version"], t.path, env=env)
                if not got.startswith(f"pip {pip_version} "):
                    raise CheckFailed(f"could not install pip {pip_version}: {got.strip()}")
                run([work / "venv" / "bin" / "pip", "install", "--dry-run", "--ignore-installed",
                     "--target", work / "target", "--python-version", f"3.{minor}",
                     "--require-hashes", "-r", "requirements-dev.lock"], t.path, env=env)
            else:
                raise CheckFailed(f"no Python 3.{minor}: run scripts/conformance/install-tools.sh")
        except CheckFailed as err:
            lines = str(err).strip().splitlines()
            why = next((ln for ln in lines if ln.startswith("ERROR")), lines[-1])
            findings.append(f"Python 3.{minor}, pip {pip_version}: {why}")
        shutil.rmtree(work, ignore_errors=True)
    fail_if(findings, "make venv installs the lock with the pip every accepted Python bundles")


def check_pytest(t: Target) -> None:
    out = run(["make", "--no-print-directory", "test"], t.path)
    # At least two tests, and no warning left in the summary.
    passed = re.findall(r"([0-9]+) passed", out)
    if int(passed[-1] if passed else 0) < 2:
        raise CheckFailed("fewer than 2 tests passed")
    if re.search(r"[0-9]+ warnings?", out, re.IGNORECASE):
        raise CheckFailed("the test summary reports warnings")


def check_ruff(t: Target) -> None:
    run([t.venv_bin("ruff"), "check", "."], t.path)
    run([t.venv_bin("ruff"), "format", "--check", "."], t.path)


def check_mypy(t: Target) -> None:
    run([t.venv_bin("mypy"), "--strict", "."], t.path)


def start_app(t: Target, name: str, python: Path, port: int) -> Path:
    """uvicorn main:app on loopback; stopped by the test's teardown."""
    log = t.procs.start(name, [python, "-m", "uvicorn", "main:app",
                               "--host", "127.0.0.1", "--port", str(port)], t.path)
    wait_for_200(f"http://127.0.0.1:{port}/health", 20, log)
    return log


def check_uvicorn_http(t: Target) -> None:
    """/health, /ready and /metrics answer; /docs and /openapi.json are off
    (as in the images) unless ENABLE_DOCS=1; an invented HTTP method is
    counted under method="other", never as a new label value."""
    port = free_port()
    start_app(t, "uvicorn", t.venv_bin("python"), port)
    base = f"http://127.0.0.1:{port}"
    expect_json(f"{base}/health", {"healthy": True})
    expect_json(f"{base}/ready", {"ready": True})
    expect_prometheus_text(f"{base}/metrics")
    for path in ("/docs", "/openapi.json"):
        status = http_status(f"{base}{path}")
        print(f"{path}: {status}")
        if status != 404:
            raise CheckFailed(f"{path} answers {status} without ENABLE_DOCS=1 (expected 404)")
    status = http_status(f"{base}/", method="FOO1")
    body = http_get(f"{base}/metrics")[2]
    counted = [ln for ln in body.splitlines() if ln.startswith("http_requests_total{")]
    print(f"FOO1 / -> {status}; " + "; ".join(counted))
    if 'method="FOO1"' in body or not any('method="other"' in ln for ln in counted):
        raise CheckFailed('an invented method is not counted as method="other"')
    docs_port = free_port()
    t.procs.start("uvicorn-docs", ["env", "ENABLE_DOCS=1", t.venv_bin("python"), "-m",
                                   "uvicorn", "main:app", "--host", "127.0.0.1",
                                   "--port", str(docs_port)], t.path)
    wait_for_200(f"http://127.0.0.1:{docs_port}/openapi.json", 20)
    print("ENABLE_DOCS=1 (make dev): /openapi.json answers 200")


def check_prometheus_up(t: Target) -> None:
    """Real Prometheus on loopback with the generated config, only the target
    address rewritten to the local app; its API must report the target up."""
    app_port, prom_port = free_port(), free_port()
    original = (t.path / "monitoring/prometheus/prometheus.yml").read_text()
    compose_target = re.search(r"app:[0-9]+", original)
    if not compose_target:
        raise CheckFailed("prometheus.yml has no app:PORT target")
    local = f"127.0.0.1:{app_port}"
    lines = [ln.replace(compose_target[0], local, 1) for ln in original.splitlines()]
    conf = t.scratch / "prometheus.yml"
    conf.write_text("\n".join(lines) + "\n")
    print(f"prometheus.yml with {compose_target[0]} -> {local}")
    jobs = re.findall(r'^ *- job_name: *"?([^"\n]*)"?$', conf.read_text(), re.MULTILINE)
    if not jobs:
        raise CheckFailed("prometheus.yml has no job_name")
    start_app(t, "uvicorn-prometheus", t.venv_bin("python"), app_port)
    log = t.procs.start("prometheus", [
        "prometheus", f"--config.file={conf}",
        f"--storage.tsdb.path={t.scratch / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{prom_port}",
    ], t.scratch)
    try:
        wait_prometheus_up(f"http://127.0.0.1:{prom_port}", jobs[0], 60)
    except CheckFailed as err:
        raise CheckFailed(f"{err}\nprometheus log:\n{log.read_text()[-2000:]}") from err


def check_hadolint(t: Target) -> None:
    # Any finding fails, style and info included.
    run(["hadolint", "--no-color", "--failure-threshold", "style",
         "Dockerfile", "Dockerfile.elite"], t.path)
    print("hadolint: no findings in Dockerfile, Dockerfile.elite")


def check_kubernetes_validate(t: Target) -> None:
    base = t.path / "deployments/kubernetes/base"
    run(["kubernetes-validate", "--strict", "deployment.yaml"], base)
    rendered = t.scratch / "kustomized.yaml"
    rendered.write_text(run(["kubectl", "kustomize", "."], base, merge_stderr=False))
    run(["kubernetes-validate", "--strict", rendered], base)


def check_kustomize(t: Target) -> None:
    run(["kubectl", "kustomize", t.path / "deployments/kubernetes/base"], t.path)


def check_promtool(t: Target) -> None:
    run(["promtool", "check", "config",
         t.path / "monitoring/prometheus/prometheus.yml"], t.path)


def check_compose_schema(t: Target) -> None:
    run(["check-jsonschema", "--builtin-schema", "vendor.compose-spec",
         t.path / "docker-compose.yml"], t.path)


def check_compose_config(t: Target) -> None:
    compose = ["docker-compose", "-f", "docker-compose.yml", "config", "-q"]
    run(compose, t.path, env={"GRAFANA_ADMIN_PASSWORD": secrets.token_urlsafe(18)})
    # No default secret: without the variable, compose must refuse.
    # (conftest.py removes GRAFANA_ADMIN_PASSWORD from the environment.)
    try:
        run(compose, t.path, expect_failure=True)
    except CheckFailed as err:
        raise CheckFailed("compose accepted a missing GRAFANA_ADMIN_PASSWORD: "
                          "a default secret?") from err


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def check_offline_image(t: Target) -> None:
    """Replays Dockerfile.elite without a Docker engine: its wheel stage's
    `pip wheel` into a temp wheelhouse, its final stage's offline
    `pip install --no-index` into a fresh venv, the app started from that
    venv, and its HEALTHCHECK command run with `python -S` (standard library
    only, no site-packages) against it."""
    steps = dockerfile_instructions(t.path / "Dockerfile.elite")
    runs = [args for instr, args in steps if instr == "RUN"]
    wheel_cmds = [r for r in runs if "pip wheel" in r]
    install_cmds = [r for r in runs if "pip install" in r]
    health = [args for instr, args in steps if instr == "HEALTHCHECK"]
    if not (wheel_cmds and install_cmds and health):
        raise CheckFailed("Dockerfile.elite lacks a pip wheel, pip install or HEALTHCHECK")
    work = t.scratch / "offline-image"
    wheels = work / "wheels"
    venv_python = work / "venv" / "bin" / "python"

    def pip(cmd: str, python: Path | str, env: dict[str, str]) -> None:
        words = [w for w in shlex.split(cmd.replace("/wheels", str(wheels)))
                 if not w.startswith("--mount=")]
        run([python, "-m", "pip", *words[words.index("pip") + 1:]], t.path, env=env)

    pip(wheel_cmds[0], sys.executable, t.env)
    run([sys.executable, "-m", "venv", work / "venv"], work)
    # From here on pip may use the wheelhouse only.
    pip(install_cmds[-1], venv_python, {**t.env, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": ""})
    # HEALTHCHECK [options] CMD ["python", "-c", "..."]
    argv = json.loads(health[0].split("CMD", 1)[1].strip())
    if argv[0] != "python":
        fail_if([f"HEALTHCHECK does not run python: {argv}"], "")
    port = free_port()
    try:
        start_app(t, "uvicorn-offline", venv_python, port)
    except CheckFailed as err:
        print(err)  # the HEALTHCHECK below decides
    code = argv[argv.index("-c") + 1]
    code = re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{port}", code)
    code = re.sub(r"localhost:\d+", f"127.0.0.1:{port}", code)
    try:
        run([venv_python, "-S", "-c", code], work, timeout=60)
    except CheckFailed as err:
        raise CheckFailed(f"HEALTHCHECK failed with the standard library only: {err}") from err
    print("offline install from the wheelhouse and stdlib HEALTHCHECK work")


# ------------------------------------------------------------------------ tool


def shell_files(t: Target) -> list[str]:
    """lib/*.sh, tests/*.bats and every bin/ file with a sh or bash shebang."""
    files = {str(p.relative_to(t.path)) for pat in ("lib/*.sh", "tests/*.bats")
             for p in t.path.glob(pat)}
    shebang = re.compile(r"^#!.*\b(ba)?sh\b", re.MULTILINE)
    for p in t.path.glob("bin/*"):
        if p.is_file() and shebang.search(p.read_text(errors="replace")):
            files.add(str(p.relative_to(t.path)))
    return sorted(files)


def check_bats(t: Target) -> None:
    run(["bats", "tests/"], t.path)


def check_shellcheck(t: Target) -> None:
    files = shell_files(t)
    if not files:
        raise CheckFailed("no shell files found")
    run(["shellcheck", "--external-sources", *files], t.path)


def check_shfmt(t: Target) -> None:
    """shfmt with exactly the flags AGENTS.md promises."""
    promise = re.search(r"shfmt -d( -[a-z]+( [0-9]+)?)+", (t.path / "AGENTS.md").read_text())
    if not promise:
        raise CheckFailed("AGENTS.md names no `shfmt -d ...` command")
    run(["shfmt", *promise[0].split()[1:], *shell_files(t)], t.path)


def check_cli(t: Target) -> None:
    name = t.name
    script = t.path / "bin" / name
    version = "\n".join(re.findall(r'^readonly VERSION="(.*)"$', script.read_text(), re.M))
    print(f"bin/{name}: executable?")
    if not script.is_file() or not script.stat().st_mode & 0o111:
        raise CheckFailed(f"bin/{name} is not executable")
    print("strict mode?")
    if "set -euo pipefail" not in "\n".join(script.read_text().splitlines()[:5]):
        raise CheckFailed(f"bin/{name} does not set -euo pipefail in its first 5 lines")
    print("--help prints usage?")
    usage = run([f"bin/{name}", "--help"], t.path, merge_stderr=False)
    if not any(line.startswith(f"Usage: {name}") for line in usage.splitlines()):
        raise CheckFailed(f"--help prints no 'Usage: {name}' line")
    got = run([f"bin/{name}", "--version"], t.path, merge_stderr=False).rstrip("\n")
    print(f"--version: '{got}', expected '{name} {version}'")
    if got != f"{name} {version}":
        raise CheckFailed(f"--version printed '{got}', expected '{name} {version}'")


# ----------------------------------------------------------------------- infra


def check_terraform_fmt(t: Target) -> None:
    run(["terraform", "fmt", "-check", "-recursive", "-diff"], t.path)


def check_terraform_validate(t: Target) -> None:
    copy = copy_repo(t.path, t.scratch / "terraform" / t.name)
    run(["terraform", "init", "-backend=false", "-input=false", "-no-color"], copy)
    run(["terraform", "validate", "-no-color"], copy)
