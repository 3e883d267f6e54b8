#!/usr/bin/env bash
# Shared helpers for the scripts in bin/. Source it; do not run it.
# Every message goes to stderr, so stdout stays clean for a command's output.

# Colours only when stderr is a terminal and NO_COLOR is unset.
if [[ -t 2 && -z "${NO_COLOR:-}" ]]; then
  _c_red=$'\033[31m'
  _c_yellow=$'\033[33m'
  _c_blue=$'\033[34m'
  _c_reset=$'\033[0m'
else
  _c_red=''
  _c_yellow=''
  _c_blue=''
  _c_reset=''
fi

log_info() {
  printf '%sinfo:%s %s\n' "${_c_blue}" "${_c_reset}" "$*" >&2
}

log_warn() {
  printf '%swarn:%s %s\n' "${_c_yellow}" "${_c_reset}" "$*" >&2
}

log_error() {
  printf '%serror:%s %s\n' "${_c_red}" "${_c_reset}" "$*" >&2
}

# die MESSAGE [CODE]: log an error and exit (default code 1).
die() {
  log_error "$1"
  exit "${2:-1}"
}

# require_command NAME...: fail early when a needed program is missing.
require_command() {
  local cmd
  for cmd in "$@"; do
    command -v "${cmd}" >/dev/null 2>&1 || die "required command not found: ${cmd}"
  done
}
