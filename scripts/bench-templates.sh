#!/usr/bin/env bash
# Benchmark: an elite `service` spawn from an on-disk export of the embedded
# template set against the same spawn from the embedded set, in one hyperfine
# run, both with --no-git --no-ledger. Prints the median ratio (target: at
# most 1.3x).
#
#   bash scripts/bench-templates.sh [RUNS]
#   BIN=path/to/spawn-elite bash scripts/bench-templates.sh   # skip the build
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-50}"

command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; }
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/spawn-elite"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export HOME="$work/home" XDG_DATA_HOME="$work/data"
unset SPAWN_ELITE_TEMPLATES
mkdir -p "$HOME"
"$BIN" templates export "$work/set" >/dev/null

hyperfine --runs "$runs" --warmup 3 -N --export-json "$work/result.json" \
  --prepare "rm -rf $work/out" \
  -n "embedded" "$BIN bench-svc --out-dir $work/out --no-git --no-ledger --quiet" \
  -n "on disk" "$BIN bench-svc --out-dir $work/out --no-git --no-ledger --quiet --templates $work/set"

python3 - "$work/result.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
emb, disk = r["embedded"]["median"], r["on disk"]["median"]
print(f"median: embedded {emb*1000:.2f} ms, on disk {disk*1000:.2f} ms, ratio {disk/emb:.2f}x (target <= 1.3x)")
PY
