#!/usr/bin/env bash
# Benchmark: the registry over a large receiver log. Not a test: it prints
# figures, and checks them against the goals of docs/REGISTRY.md.
#
#   bash scripts/bench-registry.sh                 1 000 000 lines: 100 000 repositories x 10 events
#   REPOS=10000 EVENTS=10 bash scripts/bench-registry.sh   a smaller log
#   QUERIES=500 bash scripts/bench-registry.sh     queries timed (default 200)
#   BIN=/path/to/spawn-elite bash scripts/bench-registry.sh   that binary; builds nothing
#
# It measures, on one log of valid chained lines (scripts/registry-log.py):
#  1. start with no index: the chain walk and the index rebuild, until the
#     receiver listens (it listens only once its index is ready);
#  2. start again with the index in place: the walk and a catch-up of nothing;
#  3. GET /v1/repos?set=S&behind=V (a rollout's question, first page and
#     the total), QUERIES times over loopback with curl: median and p99;
#  4. the receiver's RSS (VmRSS, and its peak VmHWM) while it serves.
# The log is kept in target/bench-registry/ for the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
repos=${REPOS:-100000}
events=${EVENTS:-10}
queries=${QUERIES:-200}
if [ -z "${BIN:-}" ]; then
  cargo build --release --locked --quiet
  BIN="${CARGO_TARGET_DIR:-target}/release/spawn-elite"
fi
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool is needed" >&2; exit 1; }
done
store="target/bench-registry"
mkdir -p "$store"
log="$store/log-$repos-$events.jsonl"
if [ ! -s "$log" ]; then
  echo "== generating $((repos * events)) chained lines into $log"
  python3 scripts/registry-log.py "$log.tmp" --repos "$repos" --events "$events"
  mv "$log.tmp" "$log"
fi
lines=$(wc -l <"$log")
size=$(du -h "$log" | cut -f1)
work=$(mktemp -d)
receiver=
stop_receiver() {
  if [ -n "$receiver" ]; then
    kill -TERM "$receiver" 2>/dev/null || true
    wait "$receiver" 2>/dev/null || true
    receiver=
  fi
}
cleanup() { stop_receiver; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/trust"
export XDG_DATA_HOME="$work/data"

# Start the receiver on the log; sets $receiver, $addr and $took (seconds).
start_receiver() {
  : >"$work/out"
  local t0 t1
  t0=$(date +%s.%N)
  "$BIN" receive --listen 127.0.0.1:0 --trust "$work/trust" --log "$log" \
    >"$work/out" 2>"$work/err" &
  receiver=$!
  # Bounded: up to 10 minutes.
  for _ in $(seq 12000); do
    grep -q listening "$work/out" 2>/dev/null && break
    kill -0 "$receiver" 2>/dev/null || { cat "$work/err" >&2; exit 1; }
    sleep 0.05
  done
  t1=$(date +%s.%N)
  addr=$(sed -n 's/^listening on http:\/\/\([^ ]*\).*/\1/p' "$work/out")
  [ -n "$addr" ] || { echo "error: the receiver did not start" >&2; cat "$work/err" >&2; exit 1; }
  took=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
}

echo "== log: $lines lines ($size), $repos repositories x $events events"
rm -f "$log.index.sqlite" "$log.index.sqlite-wal" "$log.index.sqlite-shm"
start_receiver
rebuild=$took
ready=$(curl -s -o /dev/null -w '%{http_code}' "http://$addr/readyz")
echo "start without an index (walk + rebuild): ${rebuild}s, /readyz $ready"
stop_receiver
start_receiver
warm=$took
echo "start with the index in place (walk + catch-up): ${warm}s"

# The newest version in the log's sets, and a set to ask about.
sets=$(curl -s "http://$addr/v1/sets")
read -r set newest < <(python3 -c 'import json,sys; s=json.load(sys.stdin)["sets"][0]; print(s["name"], s["versions"][0]["version"])' <<<"$sets")
query="/v1/repos?set=$set&behind=$newest"
total=$(curl -s "http://$addr$query" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
echo "query: GET $query ($total repositories behind $newest)"
for _ in $(seq "$queries"); do
  curl -s -o /dev/null -w '%{time_total}\n' "http://$addr$query"
done >"$work/times"
sort -n "$work/times" | awk '{ t[NR] = $1 } END {
  printf "GET behind=: median %.1f ms, p99 %.1f ms over %d requests\n", t[int((NR + 1) / 2)] * 1000, t[int(NR * 0.99 + 0.999)] * 1000, NR }'
rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$receiver/status")
hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$receiver/status")
awk -v r="$rss" -v h="$hwm" 'BEGIN { printf "receiver RSS while serving: %.1f MiB (peak %.1f MiB)\n", r / 1024, h / 1024 }'
stop_receiver
sort -n "$work/times" | awk -v rb="$rebuild" -v hwm="$hwm" '{ t[NR] = $1 } END {
  med = t[int((NR + 1) / 2)] * 1000
  ok = (rb < 60) && (med < 50) && (hwm / 1024 < 128)
  printf "goals (rebuild < 60 s, median < 50 ms, peak RSS < 128 MiB): %s\n", ok ? "met" : "NOT met"
  exit ok ? 0 : 1 }'
