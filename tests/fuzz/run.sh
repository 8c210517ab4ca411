#!/usr/bin/env bash
# Builds the libFuzzer targets in tests/fuzz with clang (AddressSanitizer and
# UndefinedBehaviorSanitizer, every finding fatal) and runs each for a while.
#
#   tests/fuzz/run.sh [SECONDS_PER_TARGET] [BUILD_DIR]
#
# SECONDS_PER_TARGET defaults to 20; BUILD_DIR to build-fuzz in the repository. Each target fuzzes
# BUILD_DIR/NAME/corpus, which starts as a copy of tests/fuzz/corpus/NAME and keeps what later runs
# find (the repository's corpus is never written). Prints "fuzz NAME: ok" or "fuzz NAME: FAILED" per
# target and exits non-zero when any failed; a failure leaves its log and input in BUILD_DIR/NAME.
# Environment: CXX (default clang++), FUZZ_TARGETS (a subset, e.g. "frames envelope"), FUZZ_ARGS
# (more libFuzzer flags, e.g. "-jobs=2 -workers=2").
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/tests/fuzz"
seconds="${1:-20}"
build="${2:-$root/build-fuzz}"
cxx="${CXX:-clang++}"
read -r -a targets <<<"${FUZZ_TARGETS:-http_upgrade frames envelope socketio engineio}"
read -r -a extra <<<"${FUZZ_ARGS:-}"

case "$seconds" in '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET] [BUILD_DIR]" >&2; exit 2 ;; esac
command -v "$cxx" >/dev/null || { echo "$cxx not found (Debian: apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }
mkdir -p "$build" && build="$(cd "$build" && pwd)" || exit 2

# Without UBSan's function check: clang 14 cannot assemble its prologue on coroutines whose frame
# functions land in other sections ("Cannot represent a difference across sections").
# GATEWAY_DEFLATE: permessage-deflate's inflation is fuzzed too (the frames target's settings bit).
flags=(-std=c++20 -g -O1 "-fsanitize=fuzzer,address,undefined" -fno-sanitize=function -fno-sanitize-recover=all
       -Wall -Wextra -DGATEWAY_DEFLATE -I"$root")
libs=(-lssl -lcrypto -lz -pthread)

# Stack traces with file and line need llvm-symbolizer (Debian: llvm-14).
for s in "$(command -v llvm-symbolizer)" /usr/lib/llvm-14/bin/llvm-symbolizer; do
  [ -x "$s" ] && export ASAN_SYMBOLIZER_PATH="$s" && break
done
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

# Both cores compile: a target takes a while, gateway.hpp being all of it.
declare -A built
for t in "${targets[@]}"; do
  mkdir -p "$build/$t"
  "$cxx" "${flags[@]}" "$here/fuzz_$t.cpp" -o "$build/fuzz_$t" "${libs[@]}" >"$build/$t/build.log" 2>&1 &
  built[$t]=$!
done

failed=0
for t in "${targets[@]}"; do
  dir="$build/$t"
  if ! wait "${built[$t]}"; then
    cat "$dir/build.log"
    echo "fuzz $t: FAILED"
    failed=$((failed + 1))
    continue
  fi
  [ -s "$dir/build.log" ] && cat "$dir/build.log"   # warnings, which do not stop the run
  mkdir -p "$dir/corpus"
  for seed in "$here/corpus/$t"/*; do
    [ -e "$dir/corpus/${seed##*/}" ] || cp "$seed" "$dir/corpus/"
  done
  # Run inside the target's directory: crashing inputs and -jobs logs land there.
  (cd "$dir" && "$build/fuzz_$t" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
     -artifact_prefix="$dir/" "${extra[@]}" corpus >"$dir/fuzz.log" 2>&1)
  status=$?
  stats="$(grep -E '^#[0-9]+(:|[[:space:]]+DONE)' "$dir/fuzz.log" | tail -n 1)"   # the last, -fork's too
  [ -n "$stats" ] && echo "  $t: $stats"
  if [ "$status" -eq 0 ]; then
    echo "fuzz $t: ok"
  else
    tail -n 60 "$dir/fuzz.log"
    ls "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-* 2>/dev/null
    echo "fuzz $t: FAILED"
    failed=$((failed + 1))
  fi
done
[ "$failed" -eq 0 ]
