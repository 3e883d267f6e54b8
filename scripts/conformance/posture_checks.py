"""Checks of the security posture controls (docs/POSTURE.md).

Each reads the files of a generated repository (or runs a validator on
them), prints what it found and raises CheckFailed on any finding.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from support import CheckFailed, Target, fail_if, interpreter, run

# The release each action is pinned to, and its commit (see
# docs/POSTURE.md). Updating an action is one line here and one in the
# templates; an older major or a SHA that is not the release's fails `pins`.
ACTION_PINS = {
    "actions/checkout": ("v7.0.1", "3d3c42e5aac5ba805825da76410c181273ba90b1"),
    "actions/setup-python": ("v7.0.0", "5fda3b95a4ea91299a34e894583c3862153e4b97"),
    "hashicorp/setup-terraform": ("v4.0.1", "dfe3c3f87815947d99a8997f908cb6525fc44e9e"),
    "docker/setup-buildx-action": ("v4.3.0", "37fe631027851001ddb9b187196cc803df7f5f0e"),
    "docker/build-push-action": ("v7.3.0", "53b7df96c91f9c12dcc8a07bcb9ccacbed38856a"),
    "actions/attest-build-provenance": ("v4.1.0", "a2bbfa25375fe432b6a289bc6b6cd05ecd0c4c32"),
}
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<comment>\s+#.*)?$")


def action_pin_findings(wf: Path) -> list[str]:
    """Every `uses:` is ACTION@<40-hex SHA> # <release>, the known current one."""
    findings = []
    for n, line in enumerate(wf.read_text().splitlines(), 1):
        m = USES.match(line)
        if not m:
            continue
        action, _, ref = m["ref"].partition("@")
        comment = (m["comment"] or "").strip().lstrip("#").strip()
        where = f"{wf.name}:{n}: {m['ref']}"
        if not re.fullmatch(r"[0-9a-f]{40}", ref):
            findings.append(f"{where}: not pinned by full commit SHA")
            continue
        if not re.fullmatch(r"v\d+\.\d+\.\d+", comment):
            findings.append(f"{where}: no `# vX.Y.Z` release comment")
            continue
        known = ACTION_PINS.get(action)
        if known is None:
            findings.append(f"{where}: unknown action (add it to ACTION_PINS)")
        elif (comment, ref) != known:
            findings.append(f"{where} # {comment}: expected {known[1]} # {known[0]}"
                            " (the current release)")
    return findings


def workflow_docs(t: Target) -> list[tuple[Path, dict[str, Any]]]:
    return [(wf, yaml.safe_load(wf.read_text()))
            for wf in sorted((t.path / ".github" / "workflows").glob("*.yml"))]


def triggers(doc: dict[str, Any]) -> dict[str, Any]:
    # PyYAML reads the `on:` key as the boolean True.
    on = doc.get("on", doc.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return dict(on or {})


READ_ONLY = ({}, {"contents": "read"})
PUBLISH_PERMISSIONS = {"contents": "read", "packages": "write", "id-token": "write",
                       "attestations": "write"}
PR_ONLY_CANCEL = "${{ github.event_name == 'pull_request' }}"
# The spawn-elite update workflow: its one job pushes a branch and opens a
# pull request, so it may write exactly that, and only on a schedule or by hand.
UPDATE_WORKFLOW = "spawn-elite-update.yml"
UPDATE_PERMISSIONS = {"contents": "write", "pull-requests": "write"}
UPDATE_TRIGGERS = {"schedule", "workflow_dispatch"}


def check_workflow_policy(t: Target) -> None:
    """Least privilege and CI hygiene in every workflow (beyond zizmor):
    top-level permissions {} (or contents: read), every job states its own,
    write access only for the release job that publishes the image and the
    update workflow's one job (contents and pull-requests, on a schedule or
    by hand only); every checkout has persist-credentials: false; only
    pull-request runs are cancelled; CI runs `make lint` (or `make ci`), and
    `make lint` runs yamllint."""
    findings: list[str] = []
    docs = workflow_docs(t)
    if not docs:
        raise CheckFailed("no .github/workflows/*.yml")
    for wf, doc in docs:
        if doc.get("permissions") not in READ_ONLY:
            findings.append(f"{wf.name}: top-level permissions {doc.get('permissions')!r},"
                            " expected {} or contents: read")
        cancel = (doc.get("concurrency") or {}).get("cancel-in-progress")
        if cancel not in (False, PR_ONLY_CANCEL):
            findings.append(f"{wf.name}: cancel-in-progress {cancel!r} also cancels runs on "
                            f"main; use {PR_ONLY_CANCEL} (or false)")
        is_release = "tags" in (triggers(doc).get("push") or {})
        is_update = wf.name == UPDATE_WORKFLOW
        if is_update:
            if set(triggers(doc)) != UPDATE_TRIGGERS:
                findings.append(f"{wf.name}: triggers {sorted(triggers(doc))}, expected "
                                f"{sorted(UPDATE_TRIGGERS)}")
            if len(doc.get("jobs") or {}) != 1:
                findings.append(f"{wf.name}: {len(doc.get('jobs') or {})} jobs, expected one")
        commands = []
        for job_name, job in (doc.get("jobs") or {}).items():
            where = f"{wf.name} job {job_name}"
            perms = job.get("permissions")
            steps = job.get("steps", [])
            publishes = any("docker/build-push-action" in str(s.get("uses", "")) for s in steps)
            if perms is None:
                findings.append(f"{where}: no permissions of its own")
            elif perms not in READ_ONLY and not (is_release and publishes
                                                 and perms == PUBLISH_PERMISSIONS) \
                    and not (is_update and perms == UPDATE_PERMISSIONS):
                findings.append(f"{where}: permissions {perms!r} beyond contents: read")
            for step in steps:
                uses = str(step.get("uses", ""))
                if uses.startswith("actions/checkout@") and \
                        (step.get("with") or {}).get("persist-credentials") is not False:
                    findings.append(f"{where}: checkout without persist-credentials: false")
                commands.append(str(step.get("run", "")))
        if not (is_release or is_update) and \
                not re.search(r"\bmake (lint|ci)\b", "\n".join(commands)):
            findings.append(f"{wf.name}: does not run `make lint` or `make ci`")
    makefile = (t.path / "Makefile").read_text()
    lint = re.search(r"^lint:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    if not lint or "yamllint" not in lint.group(1):
        findings.append("Makefile: `make lint` does not run yamllint")
    fail_if(findings, f"{len(docs)} workflow(s): least privilege, no persisted credentials, "
                      "PR-only cancellation, make lint with yamllint")


def check_pins(t: Target) -> list[str]:
    """The action-pin findings for own_checks.check_pins."""
    return [f for wf in sorted((t.path / ".github" / "workflows").glob("*.yml"))
            for f in action_pin_findings(wf)]


def check_zizmor(t: Target) -> None:
    """zizmor, offline, every persona finding at every severity and
    confidence, ignore comments and config disregarded: none at all."""
    argv = ["zizmor", "--offline", "--persona", "auditor", "--min-severity", "informational",
            "--min-confidence", "low", "--no-config", "--no-ignores", "--no-progress",
            "--color", "never", "--collect=workflows,actions,dependabot,pre-commit", "."]
    try:
        out = run(argv, t.path)
    except CheckFailed as err:
        first = next((ln for ln in str(err).splitlines()
                      if re.match(r"^(error|warning|help|info|note)\[", ln)), None)
        raise CheckFailed(first or str(err)) from err
    if "No findings to report" not in out:
        raise CheckFailed("zizmor did not report `No findings to report`")


def step_using(steps: list[dict[str, Any]], action: str) -> dict[str, Any]:
    for step in steps:
        if str(step.get("uses", "")).startswith(f"{action}@"):
            return step
    raise CheckFailed(f"release.yml: no step uses {action}")


def check_release_workflow(t: Target) -> None:
    """On a version tag only: buildx builds Dockerfile.elite and pushes it to
    ghcr.io with an SBOM and max provenance, then a build-provenance
    attestation is pushed for that digest; only that job can write."""
    path = t.path / ".github/workflows/release.yml"
    if not path.is_file():
        raise CheckFailed("no .github/workflows/release.yml")
    doc = yaml.safe_load(path.read_text())
    findings = []
    on = triggers(doc)
    if set(on) != {"push"} or set(on["push"] or {}) != {"tags"}:
        findings.append(f"triggers {on!r}: expected push of tags only")
    elif not all(re.match(r"^v\[0-9\]", tag) for tag in on["push"]["tags"]):
        findings.append(f"tag filter {on['push']['tags']!r} is not a version pattern")
    jobs = doc.get("jobs") or {}
    if len(jobs) != 1:
        findings.append(f"{len(jobs)} jobs: expected the one that publishes")
    for name, job in jobs.items():
        steps = job.get("steps", [])
        if job.get("permissions") != PUBLISH_PERMISSIONS:
            findings.append(f"job {name}: permissions {job.get('permissions')!r}, expected "
                            f"{PUBLISH_PERMISSIONS!r}")
        step_using(steps, "docker/setup-buildx-action")
        build = step_using(steps, "docker/build-push-action")
        w = build.get("with") or {}
        expected = {"file": "Dockerfile.elite", "push": True, "sbom": True,
                    "provenance": "mode=max"}
        for key, value in expected.items():
            if w.get(key) != value:
                findings.append(f"build-push-action {key}: {w.get(key)!r}, expected {value!r}")
        image = str((job.get("env") or {}).get("IMAGE", ""))
        if not re.fullmatch(r"ghcr\.io/[a-z0-9-]+/[a-z0-9-]+", image):
            findings.append(f"IMAGE {image!r} is not a lowercase ghcr.io/ORG/NAME")
        if not str(w.get("tags", "")).startswith("${{ env.IMAGE }}:"):
            findings.append(f"build-push-action tags {w.get('tags')!r} is not the IMAGE")
        attest = step_using(steps, "actions/attest-build-provenance").get("with") or {}
        if attest.get("push-to-registry") is not True:
            findings.append("attest-build-provenance: push-to-registry is not true")
        if attest.get("subject-digest") != f"${{{{ steps.{build.get('id')}.outputs.digest }}}}":
            findings.append(f"attestation subject-digest {attest.get('subject-digest')!r} is "
                            "not the pushed build's digest")
        if attest.get("subject-name") != "${{ env.IMAGE }}":
            findings.append("attestation subject-name is not the IMAGE")
    fail_if(findings, "release: tag-triggered buildx push to ghcr.io with SBOM, provenance "
                      "and an attestation; publish permissions in that job only")


# ------------------------------------------------------------------ kubernetes


def kustomized(t: Target) -> list[dict[str, Any]]:
    base = t.path / "deployments/kubernetes/base"
    text = run(["kubectl", "kustomize", "."], base, merge_stderr=False)
    return [d for d in yaml.safe_load_all(text) if d]


def check_kubernetes_posture(t: Target) -> None:
    """The kustomize output: namespace, ServiceAccount without a token,
    NetworkPolicy (ingress to the app port, egress DNS only), PDB, spread,
    startup/readiness(/ready)/liveness(/health) probes, preStop pause within
    the grace period, HPA scale-down stabilization, image from `images:`."""
    base = t.path / "deployments/kubernetes/base"
    kz = yaml.safe_load((base / "kustomization.yaml").read_text())
    docs = kustomized(t)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    findings: list[str] = []

    def one(kind: str) -> dict[str, Any]:
        found = by_kind.get(kind, [])
        if len(found) != 1:
            findings.append(f"{len(found)} {kind} object(s), expected 1")
            return {}
        return found[0]

    namespace = kz.get("namespace")
    if not namespace:
        findings.append("kustomization.yaml sets no namespace")
    for d in docs:
        if d["kind"] != "Namespace" and d["metadata"].get("namespace") != namespace:
            findings.append(f"{d['kind']} {d['metadata']['name']} outside the namespace")
    images = kz.get("images") or []
    if not any(i.get("name") and (i.get("newTag") or i.get("digest")) for i in images):
        findings.append("kustomization.yaml has no images: entry with a tag or digest")

    dep, sa = one("Deployment"), one("ServiceAccount")
    pod = (dep.get("spec") or {}).get("template", {}).get("spec", {})
    containers = pod.get("containers") or [{}]
    app = containers[0]
    if sa and sa.get("automountServiceAccountToken") is not False:
        findings.append("ServiceAccount mounts its token (automountServiceAccountToken)")
    if sa and pod.get("serviceAccountName") != sa["metadata"]["name"]:
        findings.append("the Deployment does not use the dedicated ServiceAccount")
    if pod.get("automountServiceAccountToken") is not False:
        findings.append("the pod mounts a service account token")
    if images and not str(app.get("image", "")).startswith(
            str(images[0].get("newName", images[0].get("name")))):
        findings.append(f"container image {app.get('image')!r} is not the images: entry")
    spread = pod.get("topologySpreadConstraints") or []
    if not any(c.get("topologyKey") == "kubernetes.io/hostname" for c in spread):
        findings.append("no topologySpreadConstraints across nodes")

    def probe_path(name: str) -> str | None:
        probe = app.get(name) or {}
        return (probe.get("httpGet") or {}).get("path")

    for name, path in (("startupProbe", "/health"), ("livenessProbe", "/health"),
                       ("readinessProbe", "/ready")):
        if probe_path(name) != path:
            findings.append(f"{name} on {probe_path(name)!r}, expected {path}")
    pre_stop = ((app.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}
    pause = int(pre_stop.get("seconds", 0))
    grace = int(pod.get("terminationGracePeriodSeconds", 30))
    shutdown = graceful_shutdown_seconds(t)
    if pause <= 0:
        findings.append("no preStop sleep")
    if grace < pause + shutdown:
        findings.append(f"terminationGracePeriodSeconds {grace} < preStop {pause} s + "
                        f"uvicorn graceful shutdown {shutdown} s")

    policy = one("NetworkPolicy")
    spec = policy.get("spec") or {}
    if policy:
        if sorted(spec.get("policyTypes") or []) != ["Egress", "Ingress"]:
            findings.append("NetworkPolicy does not restrict both Ingress and Egress")
        labels = (dep.get("spec") or {}).get("selector", {}).get("matchLabels")
        if (spec.get("podSelector") or {}).get("matchLabels") != labels:
            findings.append("NetworkPolicy does not select the app's pods")
        port = next((p.get("containerPort") for p in app.get("ports", [])), None)
        ingress_ports = [p for rule in spec.get("ingress") or [] for p in rule.get("ports") or []]
        if not ingress_ports or any(p.get("port") not in (port, "http") for p in ingress_ports) \
                or any(not rule.get("ports") for rule in spec.get("ingress") or []):
            findings.append(f"NetworkPolicy ingress is not limited to the app port {port}")
        for rule in spec.get("egress") or []:
            ports = rule.get("ports") or []
            if not ports or any(p.get("port") != 53 for p in ports):
                findings.append(f"NetworkPolicy egress beyond DNS: {rule!r}")
    pdb = one("PodDisruptionBudget")
    if pdb and not (pdb.get("spec") or {}).get("selector"):
        findings.append("PodDisruptionBudget selects nothing")
    hpa = one("HorizontalPodAutoscaler")
    window = (((hpa.get("spec") or {}).get("behavior") or {}).get("scaleDown") or {}) \
        .get("stabilizationWindowSeconds")
    if not window:
        findings.append("HPA has no scale-down stabilization window")
    fail_if(findings, f"{len(docs)} objects in namespace {namespace}: posture controls present")


def dockerfile_cmd(path: Path) -> list[str]:
    m = re.search(r"^CMD\s+(\[.*\])\s*$", path.read_text(), re.MULTILINE)
    if not m:
        raise CheckFailed(f"{path.name}: no exec-form CMD")
    return list(yaml.safe_load(m.group(1)))


def graceful_shutdown_seconds(t: Target) -> int:
    cmd = dockerfile_cmd(t.path / "Dockerfile.elite")
    if "--timeout-graceful-shutdown" not in cmd:
        return 0
    return int(cmd[cmd.index("--timeout-graceful-shutdown") + 1])


# ------------------------------------------------------------------ containers


def check_dockerfile_posture(t: Target) -> None:
    """Both Dockerfiles: the BuildKit syntax line, the same hardened uvicorn
    command (--no-server-header; forwarded headers trusted only from
    FORWARDED_ALLOW_IPS), docs off, the hash-checked lock installed."""
    findings = []
    cmds = {}
    for name in ("Dockerfile", "Dockerfile.elite"):
        path = t.path / name
        text = path.read_text()
        if text.splitlines()[0] != "# syntax=docker/dockerfile:1":
            findings.append(f"{name}: first line is not `# syntax=docker/dockerfile:1`")
        cmds[name] = cmd = dockerfile_cmd(path)
        if "--no-server-header" not in cmd:
            findings.append(f"{name}: uvicorn without --no-server-header")
        if "--forwarded-allow-ips" in cmd or "*" in cmd:
            findings.append(f"{name}: forwarded headers trusted by a hard-coded flag")
        if not re.search(r"^\s*FORWARDED_ALLOW_IPS=127\.0\.0\.1\b", text, re.MULTILINE):
            findings.append(f"{name}: FORWARDED_ALLOW_IPS is not the loopback by default")
        if re.search(r"^(?!\s*#).*\bENABLE_DOCS=1", text, re.MULTILINE):
            findings.append(f"{name}: the image serves /docs (ENABLE_DOCS=1)")
        installs = re.findall(r"pip (?:install|wheel)[^\n]*", text)
        if not installs or any("--require-hashes" not in i or "-r requirements.lock" not in i
                               for i in installs):
            findings.append(f"{name}: a pip step does not install requirements.lock with "
                            "--require-hashes")
    if cmds["Dockerfile"] != cmds["Dockerfile.elite"]:
        findings.append(f"the Dockerfiles run different commands: {cmds}")
    fail_if(findings, "both Dockerfiles: syntax line, same hardened uvicorn command, "
                      "locked install")


HOST_PORT = re.compile(r"^(?:(?P<ip>[0-9.]+):)?(?P<host>[^:]+):(?P<container>\d+)(/\w+)?$")


def default_of(value: str) -> str:
    """`${VAR:-default}` -> default (what compose uses with VAR unset)."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value)


def check_compose_posture(t: Target) -> None:
    """Every compose service: read-only root with a tmpfs /tmp, all
    capabilities dropped, no-new-privileges, memory and CPU limits, a
    healthcheck, depends_on waiting for healthy; host ports on 127.0.0.1
    and all different."""
    doc = yaml.safe_load((t.path / "docker-compose.yml").read_text())
    findings = []
    host_ports: dict[str, str] = {}
    services = doc.get("services") or {}
    for name, svc in services.items():
        if svc.get("read_only") is not True:
            findings.append(f"{name}: read_only is not true")
        if "/tmp" not in (svc.get("tmpfs") or []):
            findings.append(f"{name}: no tmpfs for /tmp")
        if svc.get("cap_drop") != ["ALL"]:
            findings.append(f"{name}: cap_drop is not [ALL]")
        if "no-new-privileges:true" not in (svc.get("security_opt") or []):
            findings.append(f"{name}: no no-new-privileges:true")
        limits = (((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {})
        if not (limits.get("memory") and limits.get("cpus")):
            findings.append(f"{name}: no memory and CPU limits")
        health = svc.get("healthcheck") or {}
        if not health.get("test") or health.get("disable"):
            findings.append(f"{name}: no healthcheck")
        depends = svc.get("depends_on") or {}
        if isinstance(depends, list):
            findings.append(f"{name}: depends_on without condition: service_healthy")
        else:
            for dep, how in depends.items():
                if (how or {}).get("condition") != "service_healthy":
                    findings.append(f"{name}: depends_on {dep} does not wait for healthy")
        for port in svc.get("ports") or []:
            m = HOST_PORT.match(default_of(str(port)))
            if not m or m["ip"] != "127.0.0.1":
                findings.append(f"{name}: port {port!r} is not published on 127.0.0.1")
                continue
            if m["host"] in host_ports:
                findings.append(f"{name}: host port {m['host']} also used by "
                                f"{host_ports[m['host']]}")
            host_ports[m["host"]] = name
    fail_if(findings, f"{len(services)} services hardened; host ports "
                      f"{sorted(host_ports)} distinct")


# ------------------------------------------------------------------ python lock

# A pinned requirement; extras (`coverage[toml]==7.17.5`) are part of the line
# when the lock keeps them (`--no-strip-extras`).
REQ_LINE = re.compile(
    r"^(?P<name>[A-Za-z0-9_.-]+)(?:\[[A-Za-z0-9_.,-]+\])?==(?P<version>[^\s;\\]+)")


def pins_of(path: Path) -> dict[tuple[str, str], str]:
    """(normalized name, marker) -> version of a requirements file's pins."""
    out = {}
    for line in path.read_text().splitlines():
        m = REQ_LINE.match(line.strip())
        if m:
            marker = line.split(";", 1)[1].strip().rstrip("\\").strip() if ";" in line else ""
            out[(m["name"].lower().replace("_", "-"), marker)] = m["version"]
    return out


def lock_entries(path: Path) -> list[tuple[str, str, int]]:
    """(name, version, number of hashes) of every entry of a uv/pip lock."""
    entries: list[tuple[str, str, int]] = []
    for line in path.read_text().splitlines():
        m = REQ_LINE.match(line)
        if m:
            entries.append((m["name"].lower().replace("_", "-"), m["version"], 0))
        elif line.strip().startswith("--hash=sha256:") and entries:
            name, version, n = entries[-1]
            entries[-1] = (name, version, n + 1)
        elif line.strip() and not line.startswith((" ", "#")):
            entries.append((line.strip(), "?", 0))
    return entries


def check_lock(t: Target) -> None:
    """requirements*.lock: every entry pinned with hashes, every pin of
    requirements*.txt in it at the same version, compiled --universal from
    Python 3.10; and pip in --require-hashes mode resolves the dev lock on
    every Python the python_version key allows (3.10-3.14), with that
    interpreter when one is installed, else with --python-version."""
    findings = []
    for lock, source in (("requirements.lock", "requirements.txt"),
                         ("requirements-dev.lock", "requirements-dev.txt")):
        path = t.path / lock
        if not path.is_file():
            findings.append(f"no {lock}")
            continue
        header = path.read_text().split("\n", 3)[:3]
        if not re.search(r"--universal .*--python-version 3\.10 .*--generate-hashes",
                         " ".join(header)):
            findings.append(f"{lock}: not compiled with --universal --python-version 3.10 "
                            "--generate-hashes")
        entries = lock_entries(path)
        locked = {(n, v) for n, v, _ in entries}
        findings += [f"{lock}: {n}=={v} without a hash" for n, v, h in entries if h == 0]
        sources = [t.path / source]
        if source == "requirements-dev.txt":
            sources.append(t.path / "requirements.txt")
        for src in sources:
            for (name, _), version in pins_of(src).items():
                if (name, version) not in locked:
                    findings.append(f"{lock}: {src.name} pins {name}=={version}, not locked")
        print(f"{lock}: {len(entries)} entries, all pinned with hashes")
    fail_if(findings, "locks complete and hashed")
    for minor in range(10, 15):
        python = interpreter(minor)
        target_dir = t.scratch / f"lock-3.{minor}"
        argv: list[str | Path]
        if python:
            argv = [python, "-m", "pip"]
            extra: list[str] = []
        else:
            argv = [sys.executable, "-m", "pip"]
            extra = ["--python-version", f"3.{minor}", "--only-binary=:all:"]
            if minor == 10:
                # Markers are read from the running Python: 3.10's split
                # (python_full_version < '3.11') needs a real 3.10.
                print("no Python 3.10 here: its part of the lock is checked by structure only")
                continue
        print(f"Python 3.{minor}: {python or 'simulated with --python-version'}")
        run([*argv, "install", "--quiet", "--disable-pip-version-check", "--dry-run",
             "--ignore-installed", "--target", target_dir, "--require-hashes", *extra,
             "-r", "requirements-dev.lock"], t.path, env=t.env)
    print("pip resolves requirements-dev.lock with hashes on Python 3.10-3.14")


# ------------------------------------------------------------------ every repo


def check_catalog_info(t: Target) -> None:
    """catalog-info.yaml: a Backstage Component named after the repo, its
    type following the repo type, an owner, the GitHub project-slug."""
    path = t.path / "catalog-info.yaml"
    if not path.is_file():
        raise CheckFailed("no catalog-info.yaml")
    doc = yaml.safe_load(path.read_text())
    findings = []
    expected_type = {"service": "service", "infra": "infrastructure", "tool": "tool"}[t.kind]
    meta, spec = doc.get("metadata") or {}, doc.get("spec") or {}
    if doc.get("apiVersion") != "backstage.io/v1alpha1" or doc.get("kind") != "Component":
        findings.append(f"not a backstage.io/v1alpha1 Component: {doc.get('kind')!r}")
    if meta.get("name") != t.name:
        findings.append(f"metadata.name {meta.get('name')!r}, expected {t.name!r}")
    if not re.fullmatch(r"[a-z0-9A-Z]([-_.a-z0-9A-Z]{0,61}[a-z0-9A-Z])?", str(meta.get("name"))):
        findings.append("metadata.name is not a valid Backstage entity name")
    slug = (meta.get("annotations") or {}).get("github.com/project-slug", "")
    readme = (t.path / "README.md").read_text()
    m = re.search(r"github\.com/([^/\s]+)/([^/\s]+?)\.git", readme)
    if not m or slug != f"{m[1]}/{m[2]}":
        findings.append(f"github.com/project-slug {slug!r} is not the README's clone URL")
    if spec.get("type") != expected_type:
        findings.append(f"spec.type {spec.get('type')!r}, expected {expected_type!r}")
    for key in ("lifecycle", "owner"):
        if not spec.get(key):
            findings.append(f"spec.{key} missing")
    codeowners = t.path / "CODEOWNERS"
    team = re.search(r"^\*\s+@[^/\s]+/(\S+)", codeowners.read_text(), re.MULTILINE) \
        if codeowners.is_file() else None
    if not team or not str(spec.get("owner", "")).endswith(f"/{team[1]}"):
        findings.append(f"spec.owner {spec.get('owner')!r} is not the CODEOWNERS team")
    fail_if(findings, f"catalog-info.yaml: Component {t.name}, type {expected_type}, "
                      f"owner {spec.get('owner')}")


def check_codeowners_editorconfig(t: Target) -> None:
    """CODEOWNERS gives every path an owner; .editorconfig is the
    root config with LF line ends and a final newline."""
    findings = []
    codeowners = t.path / "CODEOWNERS"
    lines = [ln for ln in (codeowners.read_text().splitlines() if codeowners.is_file() else [])
             if ln.strip() and not ln.startswith("#")]
    if not any(re.fullmatch(r"\*\s+(@[A-Za-z0-9-]+(/[A-Za-z0-9_.-]+)?\s*)+", ln)
               for ln in lines):
        findings.append("CODEOWNERS has no `* @owner` rule for every path")
    editorconfig = t.path / ".editorconfig"
    text = editorconfig.read_text() if editorconfig.is_file() else ""
    for needed in ("root = true", "end_of_line = lf", "insert_final_newline = true"):
        if needed not in text:
            findings.append(f".editorconfig lacks `{needed}`")
    fail_if(findings, "CODEOWNERS and .editorconfig in place")


def check_dependabot(t: Target) -> None:
    """.github/dependabot.yml: valid, with a cooldown, covering every
    ecosystem the repository has."""
    path = t.path / ".github/dependabot.yml"
    if not path.is_file():
        raise CheckFailed("no .github/dependabot.yml")
    run(["check-jsonschema", "--builtin-schema", "vendor.dependabot", path], t.path)
    doc = yaml.safe_load(path.read_text())
    updates = doc.get("updates") or []
    have = {u.get("package-ecosystem") for u in updates}
    need = set()
    if (t.path / "requirements.txt").exists():
        need.add("pip")
    if list(t.path.glob(".github/workflows/*.yml")):
        need.add("github-actions")
    if list(t.path.glob("Dockerfile*")):
        need.add("docker")
    if (t.path / "docker-compose.yml").exists():
        need.add("docker-compose")
    if list(t.path.glob("*.tf")):
        need.add("terraform")
    findings = [f"no updates for {e}" for e in sorted(need - have)]
    findings += [f"{u.get('package-ecosystem')}: no cooldown" for u in updates
                 if not (u.get("cooldown") or {}).get("default-days")]
    fail_if(findings, f"dependabot covers {sorted(have)}")


def lint_commands(t: Target) -> str:
    makefile = (t.path / "Makefile").read_text()
    lint = re.search(r"^lint:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    return lint.group(1) if lint else ""


# (what `make lint` runs, the hook entry that must run it too)
LINT_HOOKS = [("ruff check", "ruff check"), ("ruff format --check", "ruff format --check"),
              ("mypy --strict", "mypy --strict"), ("yamllint", "yamllint --strict"),
              ("shellcheck", "shellcheck --external-sources"), ("shfmt -d", "shfmt -d"),
              ("fmt -check", "terraform fmt -check")]


def check_pre_commit(t: Target) -> None:
    """.pre-commit-config.yaml passes `pre-commit validate-config`, has a hook
    for every linter `make lint` runs, and pins what its hooks install
    (for a service, to the versions requirements-dev.txt pins)."""
    path = t.path / ".pre-commit-config.yaml"
    if not path.is_file():
        raise CheckFailed("no .pre-commit-config.yaml")
    run(["pre-commit", "validate-config", path], t.path)
    doc = yaml.safe_load(path.read_text())
    hooks = [h for repo in doc.get("repos") or [] for h in repo.get("hooks") or []]
    findings = []
    for repo in doc.get("repos") or []:
        if repo.get("repo") not in ("local", "meta") and \
                not re.fullmatch(r"[0-9a-f]{40}", str(repo.get("rev", ""))):
            findings.append(f"{repo.get('repo')}: rev {repo.get('rev')!r} is not a commit SHA")
    entries = " ".join(str(h.get("entry", "")) for h in hooks)
    lint = lint_commands(t)
    for in_lint, in_hooks in LINT_HOOKS:
        if in_lint in lint and in_hooks not in entries:
            findings.append(f"make lint runs {in_hooks}, no pre-commit hook does")
    dev_pins = {n: v for (n, _), v in pins_of(t.path / "requirements-dev.txt").items()} \
        if (t.path / "requirements-dev.txt").exists() else {}
    for h in hooks:
        for dep in h.get("additional_dependencies") or []:
            m = REQ_LINE.match(dep)
            if not m:
                findings.append(f"hook {h.get('id')}: {dep!r} is not pinned with ==")
            elif m["name"] in dev_pins and dev_pins[m["name"]] != m["version"]:
                findings.append(f"hook {h.get('id')}: {dep} but requirements-dev.txt pins "
                                f"{dev_pins[m['name']]}")
    fail_if(findings, f"{len(hooks)} hooks mirror make lint, pinned")


def check_terraform_posture(t: Target) -> None:
    """required_version bounded above (< 2.0), a .tflint.hcl with the
    terraform ruleset, *.tfvars ignored by git while the committed
    terraform.tfvars.example is not."""
    findings = []
    providers = (t.path / "providers.tf").read_text()
    m = re.search(r'required_version\s*=\s*"([^"]*)"', providers)
    if not m or not re.search(r">=\s*1\.6", m[1]) or not re.search(r"<\s*2\.0", m[1]):
        findings.append(f"required_version {m[1] if m else None!r}: expected >= 1.6, < 2.0")
    tflint = t.path / ".tflint.hcl"
    text = tflint.read_text() if tflint.is_file() else ""
    if not re.search(r'plugin "terraform" \{[^}]*enabled\s*=\s*true[^}]*preset\s*=\s*"recommended"',
                     text):
        findings.append(".tflint.hcl does not enable the terraform ruleset (recommended)")
    if not (t.path / "terraform.tfvars.example").is_file():
        findings.append("no terraform.tfvars.example")
    probe = t.scratch / "gitignore-probe"
    probe.mkdir(exist_ok=True)
    shutil.copy(t.path / ".gitignore", probe / ".gitignore")
    run(["git", "init", "-q"], probe)
    for rel, ignored in (("terraform.tfvars", True), ("prod.tfvars", True),
                         ("terraform.tfvars.json", True), ("terraform.tfvars.example", False)):
        code = subprocess.run(["git", "check-ignore", "-q", rel], cwd=probe,
                              timeout=30).returncode
        if (code == 0) != ignored:
            findings.append(f".gitignore {'does not ignore' if ignored else 'ignores'} {rel}")
    fail_if(findings, "required_version bounded, tflint configured, tfvars ignored")
