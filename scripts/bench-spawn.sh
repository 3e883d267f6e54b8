#!/usr/bin/env bash
# Benchmark: one full elite `service` spawn (render, write, receipt, git
# commit) against our floor, `cp -r` of the same tree plus git init/add/commit,
# measured in the same hyperfine run. Prints the median ratio.
#
#   bash scripts/bench-spawn.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-50}"

command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; }
cargo build --release --quiet
bin="$PWD/target/release/spawn-elite"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export HOME="$work/home" XDG_DATA_HOME="$work/data" GIT_CONFIG_NOSYSTEM=1
mkdir -p "$HOME"
git config --global user.name bench && git config --global user.email bench@localhost

# The reference tree the floor copies: exactly what a spawn writes, minus .git.
"$bin" bench-svc --out-dir "$work/ref" --no-git --quiet

hyperfine --runs "$runs" --warmup 3 -N --export-json "$work/result.json" \
  --prepare "rm -rf $work/out" \
  -n "spawn-elite" "$bin bench-svc --out-dir $work/out --quiet" \
  -n "cp -r + git init/add/commit" \
  "sh -c 'mkdir -p $work/out && cp -r $work/ref/bench-svc $work/out/ && cd $work/out/bench-svc && git init -q && git add -A && git commit -qm scaffold'"

python3 - "$work/result.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
ours, floor = r["spawn-elite"]["median"], r["cp -r + git init/add/commit"]["median"]
print(f"median: spawn-elite {ours*1000:.1f} ms, floor {floor*1000:.1f} ms, ratio {ours/floor:.2f}x")
PY
