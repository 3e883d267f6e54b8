#!/usr/bin/env bash
# Benchmark: a spawn that appends to a long ledger against the same spawn
# with `--no-ledger`. Prints both medians and their ratio (goal: within
# 1.2x, i.e. an append costs about the same at 100 000 lines as at none).
#
#   bash scripts/bench-ledger.sh [RUNS]          RUNS per arm, default 30
#   LINES=1000000 bash scripts/bench-ledger.sh   the ledger's length
#                                               (default 100 000)
#   PROFILE=dist bash scripts/bench-ledger.sh    the binary users download
#                                               (default: PROFILE=release)
#   BIN=/path/to/spawn-elite bash scripts/bench-ledger.sh
#                                               that binary; builds nothing
#   BASELINE=/path/to/older/spawn-elite bash scripts/bench-ledger.sh
#                                               adds a third arm: that binary,
#                                               appending to the same ledger
#   ROUNDS=4 bash scripts/bench-ledger.sh       rounds the runs are split in
#   BENCH_DIR=/dev/shm bash scripts/bench-ledger.sh
#                                               where the arms write (default:
#                                               a temporary directory in TMPDIR)
#
# Both arms spawn `--no-git` (git is the same in both and would only add
# noise to what is measured here: the ledger step), each timed from start
# to exit:
#
#   ledger     spawn-elite bench-svc --out-dir OUT --quiet --no-git
#              with a ledger of LINES valid, chained lines: render, write
#              the tree and receipt, flush, append one line to the ledger
#              (lock it, check it, write and flush the line).
#   no-ledger  the same spawn with --no-ledger: everything but the ledger.
#
# The ledger is made once up front by a small Python script (needs the
# `blake3` package: pip install blake3) writing lines exactly as
# docs/RECEIPT.md describes them, each `prev` the BLAKE3 of the line before;
# `ledger verify` must accept it before anything is timed. Before every run
# (not timed) OUT is removed and the ledger is cut back to its LINES lines,
# so every run appends to the same ledger.
#
# hyperfine runs each arm with --shell=none; the runs are split into ROUNDS
# hyperfine commands with the arms' order reversed every round, so that a
# shared machine slowing down mid-benchmark weighs on both arms alike. As in
# bench-spawn.sh, a tmpfs (BENCH_DIR=/dev/shm) measures the processes alone
# and a flush to it costs nothing; report which one a figure comes from.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-30}"
rounds="${ROUNDS:-4}"
lines="${LINES:-100000}"
profile="${PROFILE:-release}"

python3 -c 'import blake3' 2>/dev/null || { echo "bench-ledger: needs the Python blake3 package: pip install blake3" >&2; exit 2; }
name=bench-ledger
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

work="$(mktemp -d ${BENCH_DIR:+-p "$BENCH_DIR"})"
trap 'rm -rf "$work"' EXIT
export HOME="$work/home" XDG_DATA_HOME="$work/data" GIT_CONFIG_NOSYSTEM=1
mkdir -p "$HOME" "$XDG_DATA_HOME/spawn-elite"
ledger="$XDG_DATA_HOME/spawn-elite/ledger.jsonl"

# LINES ledger lines, each member as docs/RECEIPT.md lists it, in that order.
python3 - "$ledger" "$lines" <<'PY'
import sys
from blake3 import blake3
path, n = sys.argv[1], int(sys.argv[2])
zero = "0" * 64
prev = zero
with open(path, "wb") as f:
    for seq in range(1, n + 1):
        line = (
            f'{{"seq":{seq},"prev":"{prev}","created":"2026-12-04T00:00:00Z",'
            f'"repo":"/bench/repos/svc-{seq}","name":"svc-{seq}","type":"service",'
            f'"merkle_root":"{blake3(str(seq).encode()).hexdigest()}","leaf_count":12,'
            f'"receipt_blake3":"{zero}"}}'
        ).encode()
        prev = blake3(line).hexdigest()
        f.write(line + b"\n")
PY
"$bin" ledger verify >/dev/null || { echo "bench-ledger: the generated ledger does not verify" >&2; exit 1; }
size="$(stat -c %s "$ledger")"
echo "ledger: $lines lines, $size bytes; verified" >&2

arms=(
  "ledger" "$bin bench-svc --out-dir $work/out --quiet --no-git"
  "no-ledger" "$bin bench-svc --out-dir $work/out --quiet --no-git --no-ledger"
)
if [ -n "$baseline" ]; then
  arms+=("baseline" "$baseline bench-svc --out-dir $work/out --quiet --no-git")
fi

for round in $(seq 1 "$rounds"); do
  round_args "$round"
  echo "round $round/$rounds ..." >&2
  hyperfine --runs "$per_round" --warmup 2 --shell=none --style none \
    --export-json "$work/round-$round.json" \
    --prepare "sh -c 'rm -rf $work/out && truncate -s $size $ledger'" "${args[@]}" >/dev/null
done
"$bin" ledger verify >/dev/null || { echo "bench-ledger: the ledger no longer verifies after the runs" >&2; exit 1; }

python3 - "$profile binary, --no-git" "$work" "$lines" <<'PY'
import glob, json, statistics, sys
what, work, lines = sys.argv[1], sys.argv[2], int(sys.argv[3])
times, per_round = {}, []
for f in sorted(glob.glob(f"{work}/round-*.json"), key=lambda p: int(p.rsplit("-", 1)[1].split(".")[0])):
    r = {x["command"]: x["times"] for x in json.load(open(f))["results"]}
    for arm, t in r.items():
        times.setdefault(arm, []).extend(t)
    per_round.append(statistics.median(r["ledger"]) / statistics.median(r["no-ledger"]))
med = {arm: statistics.median(t) * 1000 for arm, t in times.items()}
print("per-round ratio ledger/no-ledger: " + " ".join(f"{x:.2f}" for x in per_round))
line = (f"median ({what}, {lines} ledger lines, {len(times['ledger'])} runs per arm, in {work.rsplit('/', 1)[0]}): "
        f"ledger {med['ledger']:.1f} ms, no-ledger {med['no-ledger']:.1f} ms, "
        f"ratio {med['ledger'] / med['no-ledger']:.2f}x (goal 1.20x)")
if "baseline" in med:
    line += f"; baseline {med['baseline']:.1f} ms, ratio {med['baseline'] / med['no-ledger']:.2f}x"
print(line)
PY
echo "load average at the end (1, 5, 15 min): $(cut -d' ' -f1-3 /proc/loadavg)"
