"""Checks of our own that read a generated repository's files.

Each prints what it found and raises CheckFailed on any finding.
Standard library plus PyYAML.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import yaml

import posture_checks as posture
from support import Target, fail_if

# Every path a spawn must produce, per layer. `{name}` is the repo name.
EXPECTED = {
    # Written by the engine itself (not a template): the spawn's receipt.
    "engine": [".spawn-elite/receipt.json"],
    "base": [
        ".gitignore",
        ".yamllint",
        "LICENSE",
        "SECURITY.md",
        "docs/README.md",
        "README.md",
        "Makefile",
        "AGENTS.md",
        ".env.example",
        ".editorconfig",
        "CODEOWNERS",
        "catalog-info.yaml",
    ],
    "service": [
        "main.py",
        "requirements.txt",
        "requirements-dev.txt",
        "pyproject.toml",
        "tests/test_main.py",
        ".dockerignore",
        "requirements.lock",
        "requirements-dev.lock",
        ".pre-commit-config.yaml",
    ],
    "infra": ["main.tf", "variables.tf", "outputs.tf", "providers.tf", ".tflint.hcl",
              "terraform.tfvars.example", ".pre-commit-config.yaml"],
    "tool": ["bin/{name}", "lib/common.sh", "tests/{name}.bats", ".pre-commit-config.yaml"],
    "elite/service": [
        ".github/workflows/ci.yml",
        ".github/workflows/release.yml",
        ".github/dependabot.yml",
        "Dockerfile",
        "Dockerfile.elite",
        "docker-compose.yml",
        "monitoring/prometheus/prometheus.yml",
        "monitoring/grafana/provisioning/datasources/prometheus.yml",
        "monitoring/grafana/provisioning/dashboards/provider.yml",
        "monitoring/grafana/provisioning/dashboards/service.json",
        "deployments/kubernetes/base/deployment.yaml",
        "deployments/kubernetes/base/kustomization.yaml",
        "deployments/kubernetes/base/namespace.yaml",
        "deployments/kubernetes/base/serviceaccount.yaml",
        "deployments/kubernetes/base/networkpolicy.yaml",
        "deployments/kubernetes/base/poddisruptionbudget.yaml",
    ],
    # Every elite repository, whatever its type.
    "elite/common": [".github/workflows/spawn-elite-update.yml"],
    "elite/infra": [".github/workflows/ci.yml", ".github/dependabot.yml"],
    "elite/tool": [".github/workflows/ci.yml", ".github/dependabot.yml"],
}

TEMPLATE_VARS = (
    "name|type|description|org|python_version|port|version|year|date|elite|tool_version"
)
SKIP_DIRS = {".git", ".venv", ".terraform", "__pycache__", ".pytest_cache",
             ".mypy_cache", ".ruff_cache"}


def repo_files(repo: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(repo):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        for f in filenames:
            yield Path(dirpath, f).relative_to(repo)


def text_of(repo: Path, rel: Path) -> str:
    try:
        return (repo / rel).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return ""


def check_files(t: Target) -> None:
    """Every expected path exists; nothing else; no leftovers or placeholders."""
    repo, kind, elite, name = t.path, t.kind, t.elite, t.name
    layers = ["engine", "base", kind] + (["elite/common", f"elite/{kind}"] if elite else [])
    expected = {p.format(name=name) for layer in layers for p in EXPECTED[layer]}
    present = {str(p) for p in repo_files(repo)}
    findings = [f"missing: {p}" for p in sorted(expected - present)]
    findings += [f"unexpected (stray) file: {p}" for p in sorted(present - expected)]
    leftover = re.compile(r"\.(bak|orig|rej|swp|j2|tmp)$|~$")
    placeholder = re.compile(
        r"\{%|%\}|\{#|#\}|__name__|\{\{-?\s*(" + TEMPLATE_VARS + r")\b[^}]*\}\}"
    )
    for rel in sorted(present):
        if rel.endswith(".json"):
            try:
                json.loads((repo / rel).read_text(encoding="utf-8"))
            except ValueError as err:
                findings.append(f"invalid JSON: {rel}: {err}")
        if leftover.search(rel):
            findings.append(f"leftover file: {rel}")
        if (repo / rel).stat().st_size == 0:
            findings.append(f"empty file: {rel}")
        for n, line in enumerate(text_of(repo, Path(rel)).splitlines(), 1):
            if placeholder.search(line):
                findings.append(f"unrendered placeholder: {rel}:{n}: {line.strip()}")
            if line != line.rstrip():
                findings.append(f"trailing whitespace: {rel}:{n}")
    fail_if(findings, f"{len(present)} files, all expected, none stray")


SECRET_KEY = re.compile(
    r"(?i)(password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key)"
    r"[\w.-]*[\"']?\s*[:=]\s*(?P<value>.*)$"
)
SECRET_SHAPES = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----|\bAKIA[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{30,}"
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}|\bsk-[A-Za-z0-9]{20,}"
)
# `${GRAFANA_ADMIN_PASSWORD:-admin}` hides a literal behind a variable.
DEFAULTED_SECRET = re.compile(
    r"(?i)\$\{[A-Z0-9_]*(PASSWORD|PASSWD|SECRET|TOKEN|KEY)[A-Z0-9_]*:?[-=][^}]+\}"
)
# Workflow permission levels (`id-token: write`) and GitHub expressions
# (`${{ github.token }}`) are not literals either.
SAFE_VALUE = re.compile(
    r"""^(|["']{2}|\$\{\{[^}]*\}\}|read|write|none|\$\{[^}]*\}|\$\(.*\)|\$[A-Z_]+|true|false|null|~|[0-9]+|<[^>]*>|\.\.\.)$"""
)


def check_secrets(t: Target) -> None:
    """No password, token or key literal anywhere: values come from the env."""
    repo = t.path
    findings = []
    for rel in sorted(repo_files(repo)):
        for n, line in enumerate(text_of(repo, rel).splitlines(), 1):
            if DEFAULTED_SECRET.search(line):
                findings.append(f"secret with a default value: {rel}:{n}: {line.strip()}")
                continue
            if SECRET_SHAPES.search(line):
                findings.append(f"secret-shaped literal: {rel}:{n}: {line.strip()}")
                continue
            stripped = line.strip()
            if stripped.startswith(("#", "//")) or rel.suffix == ".md":
                continue
            m = SECRET_KEY.search(stripped)
            if m:
                value = m.group("value").split(" #")[0].strip().rstrip(",")
                if not SAFE_VALUE.match(value):
                    findings.append(f"secret literal: {rel}:{n}: {stripped}")
    fail_if(findings, "no secret literal found")


def makefile_targets(repo: Path) -> set[str]:
    text = text_of(repo, Path("Makefile"))
    return set(re.findall(r"^([A-Za-z0-9_-]+):", text, re.MULTILINE))


def dockerignore_patterns(repo: Path) -> list[str]:
    path = repo / ".dockerignore"
    if not path.exists():
        return []
    return [
        ln.strip().rstrip("/")
        for ln in path.read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]


def is_docker_ignored(rel: str, patterns: list[str]) -> bool:
    ignored = False
    for pat in patterns:
        negate = pat.startswith("!")
        pat = pat.lstrip("!")
        if fnmatch.fnmatch(rel, pat) or rel.startswith(pat + "/"):
            ignored = not negate
    return ignored


PATH_TOKEN = re.compile(
    r"^(?:\./)?[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*/?$"
)
FILE_LIKE = re.compile(r"/|\.(txt|py|sh|bats|tf|ya?ml|json|toml|cfg|ini)$")


def path_refs_in_command(cmd: str) -> Iterator[str]:
    """Repository paths a shell command reads (a heuristic, tuned to our files)."""
    if re.match(r"\s*(rm|find|install -d|ln|curl|docker (run|rm|logs))\b", cmd):
        return
    tokens = cmd.replace(";", " ").split()
    for i, tok in enumerate(tokens):
        tok = tok.strip("\"'")
        if "$" in tok or tok.startswith(("-", "http", "/", "~")) or "=" in tok:
            continue
        if tok.endswith(":app") and i > 0 and "uvicorn" in cmd:
            yield tok.split(":")[0] + ".py"
            continue
        if tok in {".", "./"}:
            continue
        if i > 0 and tokens[i - 1] in {"-o", "--out", "-out", "--tag", "-t"}:
            continue
        if PATH_TOKEN.match(tok) and FILE_LIKE.search(tok) and ":" not in tok:
            yield tok


def check_paths(t: Target) -> None:
    """Every path a Dockerfile, compose, workflow or Makefile refers to exists."""
    repo = t.path
    findings: list[str] = []
    checked: list[str] = []

    def need(rel: str, where: str, base: Path = repo) -> None:
        rel = rel.rstrip("/")
        checked.append(f"{where}: {rel}")
        if "*" in rel:
            if not list(base.glob(rel)):
                findings.append(f"{where}: no file matches {rel}")
        elif not (base / rel).exists():
            findings.append(f"{where}: missing {rel}")

    # Makefile recipes and the targets `make X` calls name.
    targets = makefile_targets(repo)
    mk = text_of(repo, Path("Makefile"))
    for n, line in enumerate(mk.splitlines(), 1):
        if line.startswith("\t"):
            for ref in path_refs_in_command(line.strip().lstrip("@")):
                need(ref, f"Makefile:{n}")
        if line.startswith("SHELL_FILES"):
            for pat in re.findall(r"\$\(wildcard ([^)]*)\)", line):
                for p in pat.split():
                    need(p, f"Makefile:{n} wildcard")

    # Dockerfiles: COPY/ADD sources exist and are not excluded by .dockerignore.
    ignore = dockerignore_patterns(repo)
    for df in sorted(repo.glob("Dockerfile*")):
        for n, line in enumerate(df.read_text().splitlines(), 1):
            m = re.match(r"\s*(COPY|ADD)\s+(.*)$", line)
            if not m or "--from=" in line:
                continue
            parts = [p for p in m.group(2).split() if not p.startswith("--")]
            for src in parts[:-1]:
                need(src, f"{df.name}:{n}")
                if is_docker_ignored(src.rstrip("/"), ignore):
                    findings.append(f"{df.name}:{n}: {src} is excluded by .dockerignore")

    # Compose: build contexts, dockerfiles and bind-mounted host paths.
    compose = repo / "docker-compose.yml"
    if compose.exists():
        doc = yaml.safe_load(compose.read_text())
        for svc_name, svc in (doc.get("services") or {}).items():
            build = svc.get("build")
            if isinstance(build, str):
                build = {"context": build}
            if build:
                ctx = repo / build.get("context", ".")
                if not ctx.is_dir():
                    findings.append(f"compose {svc_name}: build context missing")
                else:
                    need(build.get("dockerfile", "Dockerfile"),
                         f"compose {svc_name} build.dockerfile", ctx)
            for vol in svc.get("volumes", []):
                src = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
                if src.startswith("."):
                    need(src, f"compose {svc_name} volume")

    # Workflows: files passed to commands, `make` targets, dependency globs.
    for wf in sorted((repo / ".github" / "workflows").glob("*.yml")):
        doc = yaml.safe_load(wf.read_text())
        for job_name, job in (doc.get("jobs") or {}).items():
            for step in job.get("steps", []):
                where = f"{wf.name} job {job_name}"
                with_ = step.get("with") or {}
                if "cache-dependency-path" in with_:
                    need(with_["cache-dependency-path"], where)
                for cmd in str(step.get("run", "")).splitlines():
                    for tgt in re.findall(r"\bmake\s+([a-z][a-z0-9_-]*)", cmd):
                        checked.append(f"{where}: make {tgt}")
                        if tgt not in targets:
                            findings.append(f"{where}: make target {tgt} missing")
                    for flag_file in re.findall(r"(?:--file|-f|-r)\s+(\S+)", cmd):
                        need(flag_file, where)

    # Kustomize resources.
    for kz in sorted(repo.glob("deployments/**/kustomization.yaml")):
        doc = yaml.safe_load(kz.read_text())
        for res in doc.get("resources", []):
            need(res, f"{kz.relative_to(repo)}", kz.parent)

    for c in checked:
        print(f"checked {c}")
    fail_if(findings, f"all {len(checked)} referenced paths exist")


def check_dockerignore(t: Target) -> None:
    """.dockerignore keeps the venv, git metadata and env files out of images."""
    repo = t.path
    patterns = dockerignore_patterns(repo)
    if not patterns:
        fail_if(["no .dockerignore"], "")
    findings = [
        f"{p} is not excluded by .dockerignore"
        for p in (".venv", ".venv/bin/python", ".git", ".git/config", ".env", ".env.local")
        if not is_docker_ignored(p, patterns)
    ]
    fail_if(findings, ".venv, .git and .env are excluded from the build context")


def check_pins(t: Target) -> None:
    """Actions pinned by full commit SHA with the release in a comment, on the
    current release; images tagged (never :latest), tags lowercase."""
    repo = t.path
    findings = posture.check_pins(t)
    for wf in sorted((repo / ".github" / "workflows").glob("*.yml")):
        text = wf.read_text()
        for tag in re.findall(r"(?:--tag|-t)\s+((?:\$\{\{[^}]*\}\}|[^\s$])+)", text):
            if "github.repository" in tag or tag != tag.lower():
                findings.append(f"{wf.name}: image tag may be upper-case: {tag}")
    images: list[tuple[str, str]] = []
    for df in sorted(repo.glob("Dockerfile*")):
        images += [(df.name, m) for m in re.findall(r"^FROM\s+(\S+)", df.read_text(), re.M)]
    for yml in ["docker-compose.yml", *map(str, repo.glob("deployments/**/*.yaml"))]:
        path = repo / yml
        if path.exists():
            images += [(path.name, m.strip("\"'"))
                       for m in re.findall(r"image:\s*(\S+)", path.read_text())]
    for where, image in images:
        tag = image.rsplit("/", 1)[-1]
        if ":" not in tag or tag.endswith(":latest"):
            findings.append(f"{where}: image not pinned to a tag: {image}")
    compose = repo / "docker-compose.yml"
    if compose.exists() and "version" in (yaml.safe_load(compose.read_text()) or {}):
        findings.append("docker-compose.yml: obsolete top-level version key")
    fail_if(findings, f"{len(images)} images tagged; actions pinned")


