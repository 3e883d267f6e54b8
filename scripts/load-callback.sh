#!/usr/bin/env bash
# Load test for the callback receiver: 1 000 signed callbacks from 8
# concurrent clients against `spawn-elite receive` on 127.0.0.1, checking
# that each is logged exactly once, and printing the throughput.
#
#   scripts/load-callback.sh            # release build (the figure to quote)
#   PROFILE=dev scripts/load-callback.sh
set -euo pipefail
cd "$(dirname "$0")/.."
profile=(--release)
[ "${PROFILE:-release}" = dev ] && profile=()
# Optimised, but without the shipping profile's slow fat LTO.
export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
cargo test "${profile[@]}" --test load_callback -- --ignored --nocapture 2>&1 |
  grep -E '^load:|test result|panicked|FAILED' 
