"""Every check on every generated repository it applies to.

One test per check, parametrized over repo labels (see repos.VARIANTS); the
check's name (the `check` marker) is the one in README.md's table. Order:
repo by repo as written here, git-clean last (see conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest

import own_checks as own
import posture_checks as posture
import tool_checks as tools
import update_workflow
from repos import Repos, labels
from support import Target

F = TypeVar("F", bound=Callable[..., None])

ALL = labels()
ELITE = labels(elite=True)
WITH_GIT = labels(git=True)
SERVICE = labels("service")
SERVICE_ELITE = labels("service", elite=True)
INFRA = labels("infra")
TOOL = labels("tool")


def check(name: str, repos: list[str], venv: bool = False) -> Callable[[F], F]:
    """Marks a test as check `name`, run on `repos`; with venv, service repos
    get their .venv first (the venv+pip check)."""

    def mark(fn: F) -> F:
        fn = pytest.mark.parametrize("label", repos)(fn)
        if venv:
            fn = pytest.mark.usefixtures("service_venv")(fn)
        return pytest.mark.check(name)(fn)

    return mark


@check("files", ALL)
def test_files(target: Target) -> None:
    own.check_files(target)


@check("no-secrets", ALL)
def test_no_secrets(target: Target) -> None:
    own.check_secrets(target)


@check("paths-exist", ALL)
def test_paths_exist(target: Target) -> None:
    own.check_paths(target)


@check("pins", ALL)
def test_pins(target: Target) -> None:
    own.check_pins(target)


@check("yamllint", ALL)
def test_yamllint(target: Target) -> None:
    tools.check_yamllint(target)


@check("codeowners+editorconfig", ALL)
def test_codeowners_editorconfig(target: Target) -> None:
    posture.check_codeowners_editorconfig(target)


@check("catalog-info", ALL)
def test_catalog_info(target: Target) -> None:
    posture.check_catalog_info(target)


@check("dependabot", ELITE)
def test_dependabot(target: Target) -> None:
    posture.check_dependabot(target)


@check("pre-commit", ALL)
def test_pre_commit(target: Target) -> None:
    posture.check_pre_commit(target)


@check("zizmor", ALL)
def test_zizmor(target: Target) -> None:
    posture.check_zizmor(target)


@check("workflow-policy", ELITE)
def test_workflow_policy(target: Target) -> None:
    posture.check_workflow_policy(target)


# Runs the workflow's steps against a local origin (see update_workflow.py).
@check("update-workflow", labels(elite=True, git=True))
def test_update_workflow(target: Target) -> None:
    update_workflow.check_update_workflow(target)


@check("release-workflow", SERVICE_ELITE)
def test_release_workflow(target: Target) -> None:
    posture.check_release_workflow(target)


@check("lock", SERVICE)
def test_lock(target: Target) -> None:
    posture.check_lock(target)


@check("dockerignore", SERVICE)
def test_dockerignore(target: Target) -> None:
    own.check_dockerignore(target)


@check("venv+pip", SERVICE)
def test_venv_pip(label: str, target: Target, repos: Repos) -> None:
    repos.install_venv(label, target)


# The lock is the same file in every service repo (not a template), and the
# check makes five venvs: one repo is enough.
@check("venv+bundled-pip", ["service"])
def test_venv_bundled_pip(target: Target) -> None:
    tools.check_venv_bundled_pip(target)


@check("pytest", SERVICE, venv=True)
def test_pytest(target: Target) -> None:
    tools.check_pytest(target)


@check("ruff", SERVICE, venv=True)
def test_ruff(target: Target) -> None:
    tools.check_ruff(target)


@check("mypy-strict", SERVICE, venv=True)
def test_mypy_strict(target: Target) -> None:
    tools.check_mypy(target)


@check("uvicorn-http", SERVICE, venv=True)
def test_uvicorn_http(target: Target) -> None:
    tools.check_uvicorn_http(target)


@check("prometheus-up", SERVICE_ELITE, venv=True)
def test_prometheus_up(target: Target) -> None:
    tools.check_prometheus_up(target)


@check("bats", TOOL)
def test_bats(target: Target) -> None:
    tools.check_bats(target)


@check("shellcheck", TOOL)
def test_shellcheck(target: Target) -> None:
    tools.check_shellcheck(target)


@check("shfmt", TOOL)
def test_shfmt(target: Target) -> None:
    tools.check_shfmt(target)


@check("cli", TOOL)
def test_cli(target: Target) -> None:
    tools.check_cli(target)


@check("terraform-fmt", INFRA)
def test_terraform_fmt(target: Target) -> None:
    tools.check_terraform_fmt(target)


@check("terraform-validate", INFRA)
def test_terraform_validate(target: Target) -> None:
    tools.check_terraform_validate(target)


@check("make-targets", ALL, venv=True)
def test_make_targets(target: Target) -> None:
    tools.check_make_targets(target)


@check("make-lint-fails", ALL, venv=True)
def test_make_lint_fails(target: Target) -> None:
    tools.check_make_lint_fails(target)


@check("actionlint", ELITE)
def test_actionlint(target: Target) -> None:
    tools.check_actionlint(target)


@check("workflow-schema", ELITE)
def test_workflow_schema(target: Target) -> None:
    tools.check_workflow_schema(target)


@check("offline-image", SERVICE_ELITE)
def test_offline_image(target: Target) -> None:
    tools.check_offline_image(target)


@check("hadolint", SERVICE_ELITE)
def test_hadolint(target: Target) -> None:
    tools.check_hadolint(target)


@check("kubernetes-validate", SERVICE_ELITE)
def test_kubernetes_validate(target: Target) -> None:
    tools.check_kubernetes_validate(target)


@check("kustomize", SERVICE_ELITE)
def test_kustomize(target: Target) -> None:
    tools.check_kustomize(target)


@check("promtool", SERVICE_ELITE)
def test_promtool(target: Target) -> None:
    tools.check_promtool(target)


@check("compose-schema", SERVICE_ELITE)
def test_compose_schema(target: Target) -> None:
    tools.check_compose_schema(target)


@check("kubernetes-posture", SERVICE_ELITE)
def test_kubernetes_posture(target: Target) -> None:
    posture.check_kubernetes_posture(target)


@check("dockerfile-posture", SERVICE_ELITE)
def test_dockerfile_posture(target: Target) -> None:
    posture.check_dockerfile_posture(target)


@check("compose-posture", SERVICE_ELITE)
def test_compose_posture(target: Target) -> None:
    posture.check_compose_posture(target)


@check("terraform-posture", INFRA)
def test_terraform_posture(target: Target) -> None:
    posture.check_terraform_posture(target)


@check("compose-config", SERVICE_ELITE)
def test_compose_config(target: Target) -> None:
    tools.check_compose_config(target)


@check("git-clean", WITH_GIT)
def test_git_clean(target: Target) -> None:
    tools.check_git_clean(target)
