#!/usr/bin/env bash
# Cross-check: a signed spawn's attestation verifies with third-party tools
# only (scripts/verify-provenance-python.py: securesystemslib for DSSE,
# in-toto-attestation's models for the Statement and SLSA predicate,
# sha256sum for the subjects), and each deliberate break is caught.
# Needs python3 with venv and access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export XDG_DATA_HOME="$work/data" HOME="$work/home"
mkdir -p "$HOME"
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL="$work/gitconfig"
printf '[user]\n\tname = Cross Check\n\temail = check@example.com\n' >"$GIT_CONFIG_GLOBAL"

bin="${SPAWN_ELITE_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --quiet
  bin="${CARGO_TARGET_DIR:-target}/debug/spawn-elite"
fi

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check \
  'securesystemslib==1.6.0' 'cryptography==50.0.2' 'in-toto-attestation==0.9.3' 'protobuf==7.36.2'

"$bin" keygen -o "$work/key.pem" >/dev/null
check() { "$work/venv/bin/python" scripts/verify-provenance-python.py "$1" "$work/key.pem.pub"; }

# A signed spawn, and an unsigned one signed afterwards with `attest`.
"$bin" signed --sign --key "$work/key.pem" --out-dir "$work" -q
check "$work/signed"
"$bin" later tool --no-git --out-dir "$work" -q
"$bin" attest "$work/later" --key "$work/key.pem" >/dev/null
check "$work/later"

# Each break must be caught by the third-party check.
fails() {
  if check "$1" >/dev/null 2>&1; then
    echo "cross-check FAILED: $2 was not caught" >&2
    exit 1
  fi
  echo "caught: $2"
}
cp -r "$work/signed" "$work/edited"
printf '# edited\n' >>"$work/edited/main.py"
fails "$work/edited" "a file changed after signing"
cp -r "$work/signed" "$work/tampered"
python3 - "$work/tampered/.spawn-elite/attestation.intoto.json" <<'PY'
import base64, json, sys
path = sys.argv[1]
env = json.load(open(path))
statement = json.loads(base64.b64decode(env["payload"]))
statement["subject"] = statement["subject"][1:]
env["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
json.dump(env, open(path, "w"))
PY
fails "$work/tampered" "a payload changed after signing"
"$bin" keygen -o "$work/other.pem" >/dev/null
cp -r "$work/signed" "$work/foreign"
"$bin" attest "$work/foreign" --key "$work/other.pem" >/dev/null
fails "$work/foreign" "an envelope signed by another key"
echo "provenance cross-check passed"
