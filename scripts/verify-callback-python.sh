#!/usr/bin/env bash
# Cross-check: a callback sent by `spawn-elite callback send` verifies with an
# independent RFC 9421 implementation (Python `http-message-signatures`),
# over 127.0.0.1. Needs python3 with venv and access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export XDG_DATA_HOME="$work/data"

cargo build --quiet
bin="${CARGO_TARGET_DIR:-target}/debug/spawn-elite"

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check \
  'http-message-signatures==3.0.0' 'requests>=2.31'

id=$("$bin" keygen -o "$work/key.pem" | sed -n 's/^key id: *//p')
# A valid receipt (`callback send` sends nothing else), of a one-file tree.
mkdir -p "$work/tree" && printf 'cross-check\n' >"$work/tree/README.md"
"$bin" receipt "$work/tree" -o "$work/receipt.json" >/dev/null

"$work/venv/bin/python" scripts/verify-callback-python.py "$work/key.pem.pub" "$id" "$work/port" &
verifier=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port")

status=0
"$bin" callback send --receipt "$work/receipt.json" --url "http://127.0.0.1:$port/hooks/spawn?team=core" \
  --key "$work/key.pem" --attempts 1 || status=$?
wait "$verifier" || status=$?
if [ "$status" -eq 0 ]; then
  echo "cross-check passed"
else
  echo "cross-check FAILED" >&2
  exit 1
fi
