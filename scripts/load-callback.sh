#!/usr/bin/env bash
# Load test for signed callbacks against `spawn-elite receive` on 127.0.0.1:
#  1. 1 000 signed callbacks from 8 concurrent client threads (the ignored
#     Rust test tests/cli/load_callback.rs): receiver throughput;
#  2. 1 000 `spawn-elite callback send` processes, 8 at a time: the real
#     client end to end (key loading, signing, ureq).
# Both check that every receipt is logged exactly once.
#
#   scripts/load-callback.sh            # optimised build (the figures to quote)
#   PROFILE=dev scripts/load-callback.sh
#   BASELINE=/path/to/older/spawn-elite scripts/load-callback.sh
#                                       # 1. runs twice, alternating: that
#                                       # build as the receiver, then this one
set -euo pipefail
cd "$(dirname "$0")/.."
profile=(--release)
dir=release
if [ "${PROFILE:-release}" = dev ]; then profile=(); dir=debug; fi
# Optimised, but without the shipping profile's slow fat LTO.
export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16

echo "== 1. 8 client threads, 1000 callbacks (each a spawn receipt the registry indexes)"
load() {
  cargo test "${profile[@]}" --test cli load_callback:: -- --ignored --nocapture 2>&1 |
    grep -E '^load:|test result|panicked|FAILED'
}
if [ -n "${BASELINE:-}" ]; then
  for round in 1 2 3; do
    printf 'round %s, baseline %s: ' "$round" "$BASELINE"
    LOAD_RECEIVER_BIN="$BASELINE" load | grep '^load:'
    printf 'round %s, this build: ' "$round"
    load | grep '^load:'
  done
else
  load
fi

echo "== 2. 8 concurrent 'callback send' processes, 1000 callbacks"
cargo build --quiet "${profile[@]}"
bin="${CARGO_TARGET_DIR:-target}/$dir/spawn-elite"
work=$(mktemp -d)
receiver=
cleanup() {
  [ -n "$receiver" ] && kill -TERM "$receiver" 2>/dev/null && wait "$receiver" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
export XDG_DATA_HOME="$work/data"
mkdir -p "$work/trust" "$work/receipts"
"$bin" keygen -o "$work/key.pem" >/dev/null
cp "$work/key.pem.pub" "$work/trust/"
"$bin" receive --listen 127.0.0.1:0 --trust "$work/trust" --log "$work/log.jsonl" \
  >"$work/receiver.out" 2>/dev/null &
receiver=$!
for _ in $(seq 100); do grep -q listening "$work/receiver.out" 2>/dev/null && break; sleep 0.05; done
url="$(sed -n 's/^listening on \(http:[^ ]*\).*/\1/p' "$work/receiver.out")/hooks/spawn"
# 1000 distinct valid receipts: `callback send` and `receive` take nothing else.
for i in $(seq -w 1 1000); do
  mkdir -p "$work/trees/$i" && printf 'load %s\n' "$i" >"$work/trees/$i/README.md"
done
ls "$work/trees" | xargs -P 8 -I{} "$bin" receipt "$work/trees/{}" -o "$work/receipts/{}.json" >/dev/null
start=$(date +%s.%N)
ls "$work/receipts" | xargs -P 8 -I{} "$bin" callback send --receipt "$work/receipts/{}" \
  --url "$url" --key "$work/key.pem" --attempts 1 >/dev/null
end=$(date +%s.%N)
lines=$(wc -l <"$work/log.jsonl")
unique=$(grep -o '"idempotency_key":"[^"]*"' "$work/log.jsonl" | sort -u | wc -l)
queued=$( (ls "$XDG_DATA_HOME/spawn-elite/outbox" 2>/dev/null || true) | wc -l)
awk -v s="$start" -v e="$end" -v l="$lines" -v u="$unique" -v q="$queued" 'BEGIN {
  printf "load (cli): 1000 callback send processes, 8 at a time, in %.2fs = %.0f callbacks/s; %d logged, %d distinct, %d queued\n", e - s, 1000 / (e - s), l, u, q }'
[ "$lines" -eq 1000 ] && [ "$unique" -eq 1000 ] && [ "$queued" -eq 0 ]
