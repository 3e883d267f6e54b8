#!/usr/bin/env bash
# Benchmark: what --sign adds to a spawn. Both arms spawn the same elite
# service with --no-git --no-ledger into BENCH_DIR (default /dev/shm, where
# writing costs least, so the difference is the signing itself: SHA-256 of
# every file, the statement, one Ed25519 signature, one more file). Prints
# both medians and the difference.
#
#   bash scripts/bench-sign.sh [RUNS]        RUNS per arm, default 100
#   BIN=/path/to/spawn-elite bash scripts/bench-sign.sh   builds nothing
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-100}"
bin="${BIN:-}"
if [ -z "$bin" ]; then
  cargo build --release --quiet --locked
  bin="$PWD/target/release/spawn-elite"
fi
command -v hyperfine >/dev/null || { echo "bench-sign: hyperfine is needed (apt-get install hyperfine)" >&2; exit 2; }
work=$(mktemp -d "${BENCH_DIR:-/dev/shm}/bench-sign.XXXXXX")
trap 'rm -rf "$work"' EXIT
export HOME="$work/home" XDG_DATA_HOME="$work/data"
mkdir -p "$HOME"
"$bin" keygen -o "$work/key.pem" >/dev/null
plain="$bin b --no-git --no-ledger -q --out-dir $work/out"
signed="$plain --sign --key $work/key.pem"
hyperfine --shell=none --warmup 10 --runs "$runs" \
  --prepare "rm -rf $work/out" \
  --export-json "$work/result.json" \
  -n plain "$plain" -n signed "$signed" >/dev/null
python3 - "$work/result.json" <<'PY'
import json, statistics, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
p, s = statistics.median(r["plain"]["times"]), statistics.median(r["signed"]["times"])
print(f"spawn {p*1000:.2f} ms, spawn --sign {s*1000:.2f} ms: --sign adds {(s-p)*1000:.2f} ms (ratio {s/p:.2f})")
PY
