#!/usr/bin/env bash
# Builds gateway.hpp twice (normal, and with AddressSanitizer + UndefinedBehaviorSanitizer), runs every
# test in both, and ends with a line "N passed, N failed". Set SETUP=0 to skip installing packages.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${SETUP:-1}" != 0 ]; then
  scripts/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }
fi

passed=0
failed=0
for config in normal sanitize; do
  dir="build-ci-$config"
  opts=(-Dbuildtype=debugoptimized -Dbench=true)   # the benchmarks must keep building too
  [ "$config" = sanitize ] && opts=(-Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false)
  echo "== $config build"
  if ! { [ -d "$dir" ] && meson setup --reconfigure "$dir" "${opts[@]}" >/dev/null ||
         meson setup "$dir" "${opts[@]}" >/dev/null; } || ! ninja -C "$dir"; then
    echo "the $config build failed"
    failed=$((failed + 1))
    continue
  fi
  echo "== $config tests"
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 meson test -C "$dir" --print-errorlogs --num-processes 2
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
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
