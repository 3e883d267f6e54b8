# shellcheck shell=bash disable=SC2034,SC2154  # reads and sets variables of the script that sources it
# Sourced by the hyperfine benchmarks (bench-spawn.sh, bench-ledger.sh):
# the binaries they compare. Needs $profile, $runs, $rounds and $name set;
# sets $bin (BIN, else the $profile build, built here), $baseline (BASELINE,
# absolute, or empty) and $per_round.

command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; }
absolute() {
  case $1 in
    /*) echo "$1" ;;
    *) echo "$PWD/$1" ;;
  esac
}
if [ -n "${BIN:-}" ]; then
  bin="$(absolute "$BIN")"
  profile="given"
else
  cargo build --profile "$profile" --locked --quiet
  bin="$(absolute "${CARGO_TARGET_DIR:-target}/$profile/spawn-elite")"
fi
baseline="${BASELINE:+$(absolute "$BASELINE")}"
per_round=$(( (runs + rounds - 1) / rounds ))
[ "$per_round" -ge 2 ] || { echo "$name: RUNS/ROUNDS must be at least 2" >&2; exit 2; }
