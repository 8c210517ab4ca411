#!/usr/bin/env bash
# Builds gateway.hpp twice (normal, and with AddressSanitizer + UndefinedBehaviorSanitizer) and runs
# every test in both; builds the tests that run several threads a third time with ThreadSanitizer and
# runs those; builds the libFuzzer targets with clang and runs each for FUZZ_SECONDS (20). Ends with a
# line "N passed, N failed". Set SETUP=0 to skip installing packages.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${SETUP:-1}" != 0 ]; then
  scripts/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }
fi

# Meson compiles through ccache when it is installed: with the checkout's root as its base and the
# build directory left out of the hash, an object compiled in another checkout of the same sources
# (an earlier run, a developer's) is found again.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1 CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-20G}"

passed=0
failed=0
threaded=(workers gateway)   # the tests whose servers run more than one thread
for config in normal sanitize thread; do
  dir="build-ci-$config"
  targets=()
  tests=()
  opts=(-Dbuildtype=release -Dbench=true -Dredis=enabled)   # -O3 as users build it; the benchmarks must keep building too
  # UBSan without its vptr, null and alignment checks: at -O0 they check every member access and
  # doubled the compile time of this build, CI's longest step (measured). ASan reports a null
  # dereference itself, nothing here is downcast, and multi-byte values are read with memcpy.
  # The arithmetic, shift, bounds, enum, bool and return checks stay.
  [ "$config" = sanitize ] && opts=(-Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false -Dredis=enabled
                                    "-Dcpp_args=-fno-sanitize=vptr,null,alignment")
  if [ "$config" = thread ]; then
    # GCC warns that TSan cannot see std::atomic_thread_fence (Asio's reference counts use it);
    # the fences stand beside atomics TSan does see.
    opts=(-Dbuildtype=debugoptimized -Db_sanitize=thread -Db_lundef=false -Dcpp_args=-Wno-tsan)
    for t in "${threaded[@]}"; do targets+=("tests/${t}_test"); done
    tests=("${threaded[@]}")
  fi
  echo "== $config build"
  if ! { [ -d "$dir" ] && meson setup --reconfigure "$dir" "${opts[@]}" >/dev/null ||
         meson setup "$dir" "${opts[@]}" >/dev/null; } || ! ninja -C "$dir" "${targets[@]}"; then
    echo "the $config build failed"
    failed=$((failed + 1))
    continue
  fi
  echo "== $config tests"
  # The suite 'build' (a consumer project, each header alone) does not depend on the configuration:
  # the normal one runs it.
  skip=()
  [ "$config" = sanitize ] && skip=(--no-suite build)
  run_tests() {
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
      "$@" meson test -C "$dir" --print-errorlogs --num-processes 2 --no-rebuild "${skip[@]}" "${tests[@]}"
  }
  run_tests
  # TSan cannot start on kernels that randomise mmap more than it expects; without ASLR it can.
  if [ "$config" = thread ] && grep -q "unexpected memory mapping" "$dir/meson-logs/testlog.txt" 2>/dev/null; then
    echo "== thread tests again without address randomisation"
    run_tests setarch "$(uname -m)" -R
  fi
  # Count from Meson's machine-readable log: one JSON object per test.
  read -r p f < <(python3 - "$dir/meson-logs/testlog.json" <<'PY'
import json, sys
p = f = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"):
        p += 1
    elif r != "SKIP":
        f += 1
print(p, f)
PY
)
  passed=$((passed + p))
  failed=$((failed + f))
done
# The fuzz targets (tests/fuzz), briefly: a line "fuzz NAME: ok" or "fuzz NAME: FAILED" each.
echo "== fuzz targets, ${FUZZ_SECONDS:-20} s each"
fuzz_log=$(mktemp)
tests/fuzz/run.sh "${FUZZ_SECONDS:-20}" build-ci-fuzz 2>&1 | tee "$fuzz_log"
fuzz_status=${PIPESTATUS[0]}
fuzz_ok=$(grep -c '^fuzz .*: ok$' "$fuzz_log")
fuzz_failed=$(grep -c '^fuzz .*: FAILED$' "$fuzz_log")
# A run that failed before reaching any target (clang missing, say) counts as one failure.
[ "$fuzz_status" -ne 0 ] && [ "$fuzz_failed" -eq 0 ] && fuzz_failed=1
rm -f "$fuzz_log"
passed=$((passed + fuzz_ok))
failed=$((failed + fuzz_failed))
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
