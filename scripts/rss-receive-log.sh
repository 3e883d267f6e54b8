#!/usr/bin/env bash
# Memory: the resident set of `spawn-elite receive` once it has opened a long
# log (checked its chain and collected its Idempotency-Keys), against the
# same receiver on an empty log. Prints both VmRSS figures, VmHWM (the peak
# while opening) and the log's size.
#
#   bash scripts/rss-receive-log.sh [LINES]      LINES defaults to 300 000
#   BIN=/path/to/spawn-elite bash scripts/rss-receive-log.sh
#                                               that binary; builds nothing
#   PROFILE=dist bash scripts/rss-receive-log.sh
#
# The log is made by a small Python script (needs the `blake3` package:
# pip install blake3): lines shaped as the receiver writes them
# (docs/CALLBACK.md), each with a distinct 64-hex `idempotency_key` and a
# small receipt, about 700 bytes a line, chained as the receiver chains
# them. Each receiver listens on 127.0.0.1 (a free port); once it prints
# that it is listening, /proc/PID/status is read and the receiver is
# stopped (by its process id; the EXIT trap stops it if the script fails).
set -euo pipefail
cd "$(dirname "$0")/.."
lines="${1:-300000}"
profile="${PROFILE:-release}"
python3 -c 'import blake3' 2>/dev/null || { echo "rss-receive-log: needs the Python blake3 package: pip install blake3" >&2; exit 2; }
if [ -n "${BIN:-}" ]; then
  bin="$BIN"
else
  cargo build --profile "$profile" --locked --quiet
  bin="${CARGO_TARGET_DIR:-target}/$profile/spawn-elite"
fi
work="$(mktemp -d)"
rx=""
stop_rx() {
  if [ -n "$rx" ]; then
    kill "$rx" 2>/dev/null || true
    wait "$rx" 2>/dev/null || true
    rx=""
  fi
}
trap 'stop_rx; rm -rf "$work"' EXIT
export HOME="$work/home" XDG_DATA_HOME="$work/data"
mkdir -p "$HOME" "$work/trust"
"$bin" keygen -o "$work/k.pem" >/dev/null
cp "$work/k.pem.pub" "$work/trust/k.pub"

python3 - "$work/big.jsonl" "$lines" <<'PY'
import json, sys
from blake3 import blake3
path, n = sys.argv[1], int(sys.argv[2])
prev = "0" * 64
with open(path, "wb") as f:
    for seq in range(1, n + 1):
        root = blake3(b"receipt %d" % seq).hexdigest()
        receipt = {
            "schema": "spawn-elite.receipt/v2",
            "created": "2026-12-04T00:00:00Z",
            "merkle_root": root,
            "leaf_count": 2,
            "files": [
                {"path": "README.md", "size": 120, "mode": "100644", "blake3": blake3(b"a%d" % seq).hexdigest()},
                {"path": "main.py", "size": 300, "mode": "100644", "blake3": blake3(b"b%d" % seq).hexdigest()},
            ],
        }
        line = json.dumps({
            "seq": seq,
            "received_at": "2026-12-04T00:00:00.000000000Z",
            "keyid": "9ED6sKuj_iSi2XtkbsZ2GA",
            "idempotency_key": root,
            "content_digest": "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:",
            "receipt": receipt,
            "prev": prev,
        }, separators=(",", ":")).encode()
        prev = blake3(line).hexdigest()
        f.write(line + b"\n")
PY

# Start a receiver on LOG, wait (at most 600 s) until it listens, print its
# memory figures, stop it.
measure() {
  local log=$1 label=$2
  "$bin" receive --listen 127.0.0.1:0 --trust "$work/trust" --log "$log" >"$work/out" 2>&1 &
  rx=$!
  local start=$SECONDS
  until grep -q "listening" "$work/out" 2>/dev/null; do
    if ! kill -0 "$rx" 2>/dev/null; then cat "$work/out" >&2; echo "rss-receive-log: the receiver stopped" >&2; exit 1; fi
    if [ $(( SECONDS - start )) -ge 600 ]; then echo "rss-receive-log: not listening after 600 s" >&2; exit 1; fi
    sleep 0.2
  done
  local took=$(( SECONDS - start ))
  local rss hwm
  rss="$(awk '/^VmRSS/ {print $2, $3}' "/proc/$rx/status")"
  hwm="$(awk '/^VmHWM/ {print $2, $3}' "/proc/$rx/status")"
  echo "$label: VmRSS $rss, VmHWM $hwm (listening after ~${took} s)"
  stop_rx
}
: > "$work/empty.jsonl"
measure "$work/empty.jsonl" "empty log"
measure "$work/big.jsonl" "$lines-line log ($(stat -c %s "$work/big.jsonl") bytes)"
