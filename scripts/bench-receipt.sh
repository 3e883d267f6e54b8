#!/usr/bin/env bash
# Throughput of `spawn-elite receipt` against b3sum on the same ~1 GiB tree
# (about 20 000 files of mixed sizes), with the same thread count, plus peak
# memory for the tree and for single files of growing size.
#
#   scripts/bench-receipt.sh            # THREADS defaults to nproc
#   THREADS=1 RUNS=3 scripts/bench-receipt.sh
#
# Installs hyperfine (apt) and b3sum (cargo) when they are missing. Everything
# it generates lives in one temp dir, removed on exit.
set -euo pipefail

THREADS="${THREADS:-$(nproc)}"
RUNS="${RUNS:-5}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

if ! command -v hyperfine >/dev/null; then
    apt-get update -qq && apt-get install -y -qq hyperfine
fi
if [ ! -x /usr/bin/time ]; then
    apt-get update -qq && apt-get install -y -qq time
fi
if ! command -v b3sum >/dev/null; then
    cargo install b3sum --locked
fi

(cd "$ROOT" && cargo build --release --quiet)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/spawn-elite"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
TREE="$WORK/tree"

echo "generating the tree in $WORK ..."
python3 - "$TREE" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(42)
# 19 000 small (1 B..32 KiB), 980 medium (32 KiB..1 MiB), 20 large (8..26 MiB)
sizes = ([rng.randint(1, 32 << 10) for _ in range(19000)]
         + [rng.randint(32 << 10, 1 << 20) for _ in range(980)]
         + [rng.randint(8 << 20, 26 << 20) for _ in range(20)])
rng.shuffle(sizes)
block = os.urandom(32 << 20)
for i, size in enumerate(sizes):
    d = os.path.join(root, f"d{i // 100:03d}")
    os.makedirs(d, exist_ok=True)
    start = rng.randrange(0, len(block) - size)
    with open(os.path.join(d, f"f{i:05d}.bin"), "wb") as f:
        f.write(block[start:start + size])
print(f"{len(sizes)} files, {sum(sizes) / (1 << 30):.2f} GiB")
PY

find "$TREE" -type f -print0 >"$WORK/files"
BYTES="$(du -sb "$TREE" | cut -f1)"

echo "threads: $THREADS, runs: $RUNS"
hyperfine --warmup 1 --runs "$RUNS" --export-json "$WORK/h.json" \
    -n b3sum "xargs -0 -a '$WORK/files' b3sum --num-threads $THREADS >/dev/null" \
    -n spawn-elite "RAYON_NUM_THREADS=$THREADS '$BIN' receipt '$TREE' >/dev/null"

python3 - "$WORK/h.json" "$BYTES" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
gib = int(sys.argv[2]) / (1 << 30)
for name, r in results.items():
    print(f"{name:12} mean {r['mean']:.3f} s  ({gib / r['mean']:.2f} GiB/s)")
ratio = results["b3sum"]["mean"] / results["spawn-elite"]["mean"]
print(f"throughput ratio spawn-elite / b3sum: {ratio:.2f}x (target >= 0.9x)")
PY

peak_rss() { # prints the peak RSS in MiB of the command given as arguments
    /usr/bin/time -v "$@" 2>&1 >/dev/null | awk '/Maximum resident set size/ {printf "%.1f", $6 / 1024}'
}
echo "peak RSS, whole tree: spawn-elite $(RAYON_NUM_THREADS=$THREADS peak_rss "$BIN" receipt "$TREE") MiB," \
    "b3sum $(peak_rss xargs -0 -a "$WORK/files" b3sum --num-threads "$THREADS") MiB"

# Peak memory must not grow with file size: one file of 64 MiB, then 1 GiB.
for size in 64M 1G; do
    single="$WORK/single-$size"
    mkdir -p "$single"
    head -c "$size" /dev/urandom >"$single/blob"
    echo "peak RSS, one $size file: spawn-elite $(RAYON_NUM_THREADS=$THREADS peak_rss "$BIN" receipt "$single") MiB," \
        "b3sum $(peak_rss b3sum --num-threads "$THREADS" "$single/blob") MiB"
    rm -rf "$single"
done
