#!/usr/bin/env bash
# Benchmark: one full elite `service` spawn against its floor. Prints both
# medians and their ratio.
#
#   bash scripts/bench-spawn.sh [RUNS]          RUNS per arm, default 60
#   PROFILE=dist bash scripts/bench-spawn.sh    the binary users download
#                                               (default: PROFILE=release)
#   BIN=/path/to/spawn-elite bash scripts/bench-spawn.sh
#                                               that binary; builds nothing
#   BASELINE=/path/to/older/spawn-elite bash scripts/bench-spawn.sh
#                                               adds a third arm: that binary,
#                                               spawning the same way
#   ROUNDS=6 bash scripts/bench-spawn.sh        rounds the runs are split in
#   BENCH_DIR=/dev/shm bash scripts/bench-spawn.sh
#                                               where both arms write (default:
#                                               a temporary directory in TMPDIR)
#   LOAD=1 bash scripts/bench-spawn.sh          every round twice: idle, and
#                                               with a background writer busy
#                                               on the same filesystem (below)
#   GIT=0 bash scripts/bench-spawn.sh           a `--no-git` spawn against a
#                                               bare `cp -r` of the same tree
#
# The two arms, each timed from start to exit:
#
#   spawn-elite  sh -c 'spawn-elite bench-svc --out-dir OUT --quiet'
#                render the templates, write the tree, write the receipt,
#                git init/add/commit it (three git processes, as the floor
#                runs), flush it to disk, append to the ledger.
#   floor        sh -c 'mkdir -p OUT && cp -r REF/bench-svc OUT/ &&
#                       cd OUT/bench-svc && git init -q && git add -A &&
#                       git commit -qm scaffold'
#                copy the same tree (what a spawn writes, made once up front
#                with --no-git) and commit it with three git processes.
#                The floor does not flush to disk: a spawn does, and pays it.
#
# Both arms run the same way: hyperfine with --shell=none starts one `sh -c`,
# which runs the arm's commands, so neither pays for a shell the other does
# not. Before every run OUT and the ledger are removed (not timed), so every
# spawn appends to an empty ledger, as the floor keeps none (an append checks
# only the ledger's last two lines, so its length hardly matters:
# scripts/bench-ledger.sh measures that). Both arms see the same
# environment: a throwaway HOME with a git identity, and no system git config.
#
# The runs are split into ROUNDS hyperfine commands, the arms' order
# reversed every round, so that a machine that slows down or speeds up
# mid-benchmark (shared or virtual hosts) weighs on every arm alike. The
# medians are over all runs of an arm; each round's ratio is printed too.
#
# With GIT=0 neither arm runs git: the spawn gets `--no-git` and the floor
# is `mkdir -p OUT && cp -r REF/bench-svc OUT/` alone.
#
# Busy disk (LOAD=1): every round is measured twice, once idle and once while
# one background process rewrites a 300 MB file on the filesystem the arms
# write to, in a loop (`dd if=/dev/zero of=WORK/load/big bs=1M count=300`, at
# most LOAD_LOOPS times, default 1000). That is a build, a CI runner or a
# file sync next to the spawn: whatever flushes more than its own files waits
# for the writer's data. The writer starts a second before the round's runs
# (so its dirty pages are there), runs in its own process group, and is
# stopped with that group when the round's runs end, and by the EXIT trap if
# the script stops early; a `sync` then lets its data reach the disk before
# the next idle round. Idle and busy rounds alternate in order, like the arms.
# Each condition prints its per-round ratios and medians, then the means and
# the share of each arm's runs that took over twice the floor's median (next
# to the writer a run either keeps pace or waits on the device queue, so the
# median may land in either group; the share and the mean are steadier); the
# load average is printed at the end (the busy rounds raise it by about one).
#
# Where the arms write matters. On a disk, every run's writes reach the
# device sooner or later, and a host that limits a virtual machine's disk
# (as CI and cloud hosts do) slows whichever run meets the limit: figures
# drift by a factor of 3 or more within minutes. A tmpfs (BENCH_DIR=/dev/shm)
# measures the processes and their work alone, steadily, but a flush to it
# costs nothing, so it leaves out the durability a spawn pays for on disk.
# Report which one a figure comes from.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-60}"
rounds="${ROUNDS:-6}"
profile="${PROFILE:-release}"
load="${LOAD:-0}"
load_loops="${LOAD_LOOPS:-1000}"
with_git="${GIT:-1}"

name=bench-spawn
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

work="$(mktemp -d ${BENCH_DIR:+-p "$BENCH_DIR"})"
writer=""
# The background writer is a process group of its own (setsid), so stopping
# it stops the `dd` it is running too, and nothing else.
stop_writer() {
  if [ -n "$writer" ]; then
    kill -- "-$writer" 2>/dev/null || true
    wait "$writer" 2>/dev/null || true
    writer=""
    rm -rf "$work/load"
    sync
  fi
}
start_writer() {
  mkdir -p "$work/load"
  setsid bash -c 'for _ in $(seq 1 "$1"); do dd if=/dev/zero of="$2/big" bs=1M count=300 status=none || exit 1; done' \
    writer "$load_loops" "$work/load" &
  writer=$!
  sleep 1
}
trap 'stop_writer; rm -rf "$work"' EXIT
export HOME="$work/home" XDG_DATA_HOME="$work/data" GIT_CONFIG_NOSYSTEM=1
mkdir -p "$HOME"
git config --global user.name bench && git config --global user.email bench@localhost

# The reference tree the floor copies: exactly what a spawn writes, minus .git.
"$bin" bench-svc --out-dir "$work/ref" --no-git --quiet

if [ "$with_git" = 0 ]; then
  spawn_args="--no-git"
  floor="mkdir -p $work/out && cp -r $work/ref/bench-svc $work/out/"
else
  spawn_args=""
  floor="mkdir -p $work/out && cp -r $work/ref/bench-svc $work/out/ && cd $work/out/bench-svc && git init -q && git add -A && git commit -qm scaffold"
fi
arms=(
  "spawn-elite" "sh -c '$bin bench-svc --out-dir $work/out --quiet $spawn_args'"
  "floor" "sh -c '$floor'"
)
if [ -n "$baseline" ]; then
  arms+=("baseline" "sh -c '$baseline bench-svc --out-dir $work/out --quiet $spawn_args'")
fi

if [ "$load" = 1 ]; then conditions=(idle busy); else conditions=(idle); fi
for round in $(seq 1 "$rounds"); do
  order=("${conditions[@]}")
  if [ $(( round % 2 )) -eq 0 ] && [ "${#order[@]}" -eq 2 ]; then order=(busy idle); fi
  for condition in "${order[@]}"; do
    if [ "$condition" = busy ]; then start_writer; fi
    round_args "$round"
    echo "round $round/$rounds ($condition) ..." >&2
    hyperfine --runs "$per_round" --warmup 2 --shell=none --style none \
      --export-json "$work/$condition-round-$round.json" \
      --prepare "rm -rf $work/out $work/data" "${args[@]}" >/dev/null
    if [ "$condition" = busy ]; then stop_writer; fi
  done
done

what="$profile binary"
if [ "$with_git" = 0 ]; then what="$what, --no-git against cp -r"; fi
python3 - "$what" "$work" "${conditions[@]}" <<'PY'
import glob, json, statistics, sys
what, work, conditions = sys.argv[1], sys.argv[2], sys.argv[3:]
for condition in conditions:
    files = glob.glob(f"{work}/{condition}-round-*.json")
    times, per_round = {}, []
    for f in sorted(files, key=lambda p: int(p.rsplit("-", 1)[1].split(".")[0])):
        r = {x["command"]: x["times"] for x in json.load(open(f))["results"]}
        for arm, t in r.items():
            times.setdefault(arm, []).extend(t)
        per_round.append(statistics.median(r["spawn-elite"]) / statistics.median(r["floor"]))
    med = {arm: statistics.median(t) * 1000 for arm, t in times.items()}
    label = f"{condition}: " if len(conditions) > 1 else ""
    print(f"{label}per-round ratio spawn-elite/floor: " + " ".join(f"{x:.2f}" for x in per_round))
    line = (f"{label}median ({what}, {len(times['floor'])} runs per arm, in {work.rsplit('/', 1)[0]}): "
            f"spawn-elite {med['spawn-elite']:.1f} ms, floor {med['floor']:.1f} ms, "
            f"ratio {med['spawn-elite'] / med['floor']:.2f}x")
    if "baseline" in med:
        line += (f"; baseline {med['baseline']:.1f} ms, ratio {med['baseline'] / med['floor']:.2f}x, "
                 f"spawn-elite/baseline {med['spawn-elite'] / med['baseline']:.2f}x")
    print(line)
    # Next to a writer the runs fall in two groups (even with the floor, or
    # waiting on the device queue), so the median can land in either: the
    # mean and the share of slow runs are steadier.
    slow = 2 * statistics.median(times["floor"])
    shares = ", ".join(f"{arm} {sum(t > slow for t in v) / len(v):.0%}" for arm, v in times.items())
    means = {arm: statistics.mean(v) * 1000 for arm, v in times.items()}
    print(f"{label}mean: " + ", ".join(f"{arm} {m:.1f} ms" for arm, m in means.items())
          + f", ratio {means['spawn-elite'] / means['floor']:.2f}x; "
          + f"runs over twice the floor's median ({slow * 1000:.1f} ms): {shares}")
PY
echo "load average at the end (1, 5, 15 min): $(cut -d' ' -f1-3 /proc/loadavg)"
