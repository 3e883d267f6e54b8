# shellcheck shell=bash disable=SC2034,SC2154  # reads and sets variables of the script that sources it
# Sourced by the hyperfine benchmarks (bench-spawn.sh, bench-ledger.sh):
# the binaries they compare. Needs $profile, $runs, $rounds and $name set;
# sets $bin (BIN, else the $profile build, built here), $baseline (BASELINE,
# absolute, or empty) and $per_round; `round_args ROUND` sets $args, the
# hyperfine arguments of the arms in $arms (name, command pairs).

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

# The arms of round ROUND as hyperfine arguments in $args: odd rounds in the
# listed order, even rounds reversed, so no arm always runs first.
round_args() {
  local round=$1 n i j
  args=()
  n=$(( ${#arms[@]} / 2 ))
  for i in $(seq 0 $(( n - 1 ))); do
    if [ $(( round % 2 )) -eq 1 ]; then j=$i; else j=$(( n - 1 - i )); fi
    args+=(-n "${arms[$((2 * j))]}" "${arms[$((2 * j + 1))]}")
  done
}
