#!/usr/bin/env bash
# Benchmark: one full elite `service` spawn against its floor, measured in the
# same hyperfine run. Prints both medians and their ratio.
#
#   bash scripts/bench-spawn.sh [RUNS]          RUNS defaults to 50
#   PROFILE=dist bash scripts/bench-spawn.sh    the binary users download
#                                               (default: PROFILE=release)
#   BIN=/path/to/spawn-elite bash scripts/bench-spawn.sh
#                                               that binary; builds nothing
#
# The two arms, each timed from start to exit:
#
#   spawn-elite  sh -c 'spawn-elite bench-svc --out-dir OUT --quiet'
#                render the templates, write the tree, write the receipt,
#                git init/add/commit it (three git processes, as the floor
#                runs), append to the ledger.
#   floor        sh -c 'mkdir -p OUT && cp -r REF/bench-svc OUT/ &&
#                       cd OUT/bench-svc && git init -q && git add -A &&
#                       git commit -qm scaffold'
#                copy the same tree (what a spawn writes, made once up front
#                with --no-git) and commit it with three git processes.
#
# Both arms run the same way: hyperfine with --shell=none starts one `sh -c`,
# which runs the arm's commands, so neither pays for a shell the other does
# not. Before every run OUT is removed (not timed). Both arms see the same
# environment: a throwaway HOME with a git identity, and no system git config.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-50}"
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

# The reference tree the floor copies: exactly what a spawn writes, minus .git.
"$bin" bench-svc --out-dir "$work/ref" --no-git --quiet

spawn_arm="$bin bench-svc --out-dir $work/out --quiet"
floor_arm="mkdir -p $work/out && cp -r $work/ref/bench-svc $work/out/ && cd $work/out/bench-svc && git init -q && git add -A && git commit -qm scaffold"

hyperfine --runs "$runs" --warmup 3 --shell=none --export-json "$work/result.json" \
  --prepare "rm -rf $work/out" \
  -n "spawn-elite" "sh -c '$spawn_arm'" \
  -n "floor" "sh -c '$floor_arm'"

python3 - "$work/result.json" "$profile" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
ours, floor = r["spawn-elite"]["median"], r["floor"]["median"]
print(f"median ({sys.argv[2]} binary): spawn-elite {ours*1000:.1f} ms, floor {floor*1000:.1f} ms, ratio {ours/floor:.2f}x")
PY
