#!/usr/bin/env bash
# Benchmark: `spawn-elite update` of an untouched elite `service` repository
# against a fresh spawn of the same, in one hyperfine run. Prints both
# medians and their ratio.
#
#   bash scripts/bench-update.sh [RUNS]          RUNS defaults to 30
#   PROFILE=dist bash scripts/bench-update.sh    the binary users download
#   BIN=/path/to/spawn-elite bash scripts/bench-update.sh
#
# Set v1 is the embedded set exported; v2 is v1 with one template changed
# (so the update has something to merge). The arms, each from start to exit:
#
#   update  spawn-elite update OUT/bench-svc --templates v2 --quiet
#           on a copy of a repository spawned from v1 (copied before each
#           run, not timed): read the receipt, render, find the base,
#           build the pristine commit, git merge, append to the ledger.
#   spawn   spawn-elite bench-svc --templates v2 --out-dir OUT2 --quiet
#           the same repository spawned fresh from v2, git and ledger included.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-30}"
profile="${PROFILE:-release}"

command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; }
if [ -n "${BIN:-}" ]; then
  bin="$BIN"
  profile="given"
else
  cargo build --profile "$profile" --locked --quiet
  bin="${CARGO_TARGET_DIR:-$PWD/target}/$profile/spawn-elite"
fi
case $bin in
  /*) ;;
  *) bin="$PWD/$bin" ;;
esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export HOME="$work/home" XDG_DATA_HOME="$work/data" GIT_CONFIG_NOSYSTEM=1
mkdir -p "$HOME"
git config --global user.name bench && git config --global user.email bench@localhost

"$bin" templates export "$work/v1" >/dev/null
cp -a "$work/v1" "$work/v2"
sed -i 's/^version = "1.0.0"/version = "2.0.0"/' "$work/v2/spawn-elite.toml"
printf '\n# v2\n' >> "$work/v2/service/main.py.j2"
"$bin" bench-svc --templates "$work/v1" --out-dir "$work/ref" --quiet --no-ledger

update_arm="$bin update $work/out/bench-svc --templates $work/v2 --quiet"
spawn_arm="$bin bench-svc --templates $work/v2 --out-dir $work/out2 --quiet"

hyperfine --runs "$runs" --warmup 3 --shell=none --export-json "$work/result.json" \
  --prepare "sh -c 'rm -rf $work/out $work/out2 && mkdir -p $work/out && cp -a $work/ref/bench-svc $work/out/'" \
  -n "update" "$update_arm" \
  -n "spawn" "$spawn_arm"

python3 - "$work/result.json" "$profile" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
update, spawn = r["update"]["median"], r["spawn"]["median"]
print(f"median ({sys.argv[2]} binary): update {update*1000:.1f} ms, fresh spawn {spawn*1000:.1f} ms, ratio {update/spawn:.2f}x")
PY
