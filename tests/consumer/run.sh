#!/usr/bin/env bash
# Builds tests/consumer/consumer.cpp as a project outside this repository would, three ways, and runs
# it each time:
#   1. a Meson project with this repository as subprojects/gateway (a symlink) and
#      dependency('gateway'): the subproject must configure and build nothing of its own (no example,
#      test or benchmark), only the consumer;
#   2. README.md's way without Meson: gateway.hpp copied next to the source,
#      g++ -std=c++20 consumer.cpp -lssl -lcrypto -pthread;
#   3. meson install of this repository into a temporary prefix: the header and gateway.pc must be
#      there, and pkg-config --cflags --libs gateway must compile the consumer.
# Usage: run.sh [REPO_ROOT] (default: this script's ../..). CXX overrides the compiler (g++). Prints a
# line per check, removes its temporary directory, and exits 1 if any check failed.
set -uo pipefail
repo=$(cd "${1:-$(dirname "$0")/../..}" && pwd) || exit 1
src=$repo/tests/consumer/consumer.cpp
cxx=${CXX:-g++}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gateway-consumer.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
failed=0
ok() { echo "ok: $*"; }
fail() { echo "FAILED: $*"; failed=$((failed + 1)); }
# Runs a command with its output in a log, shown only when it fails.
quiet() {
  local log=$tmp/last.log
  "$@" >"$log" 2>&1 && return 0
  local status=$?
  echo "\$ $*"
  tail -n 40 "$log"
  return "$status"
}
# Runs the consumer; it prints one line and exits 0 once its server echoed to its client.
run_consumer() {
  local out
  if out=$(timeout 60 "$1" 2>&1); then ok "$2 runs: $out"; else fail "$2 does not run: $out"; fi
}

echo "== 1. Meson subproject (subprojects/gateway -> $repo)"
proj=$tmp/subproject
mkdir -p "$proj/subprojects"
ln -s "$repo" "$proj/subprojects/gateway"
cp "$src" "$proj/"
cat >"$proj/meson.build" <<'EOF'
project('consumer', 'cpp', default_options : ['cpp_std=c++20'])
executable('consumer', 'consumer.cpp', dependencies : dependency('gateway'))
EOF
# --force-fallback-for: the subproject even where a gateway.pc is installed.
if quiet meson setup "$proj/build" "$proj" --force-fallback-for=gateway; then
  ok "meson setup of the consumer project"
  targets=$(meson introspect "$proj/build" --targets |
    python3 -c 'import json, sys; print(" ".join(sorted(t["name"] for t in json.load(sys.stdin))))')
  if [ "$targets" = consumer ]; then
    ok "configured targets: consumer alone"
  else
    fail "configured targets: '$targets', expected 'consumer' alone"
  fi
  tests=$(meson introspect "$proj/build" --tests |
    python3 -c 'import json, sys; print(" ".join(t["name"] for t in json.load(sys.stdin)))')
  if [ -z "$tests" ]; then ok "registered tests: none"; else fail "registered tests: $tests"; fi
  # Build edges of the subproject's own targets live under subprojects/gateway/ in the build tree.
  ours=$(ninja -C "$proj/build" -t targets all |
    grep -E '^subprojects/gateway/|(^|/)([0-9][0-9]_[a-z_]+|[a-z0-9_]+_test|loadgen|gateway_echo|alloc_count):')
  if [ -z "$ours" ]; then
    ok "ninja -t targets all: no example, test or benchmark of gateway.hpp"
  else
    fail "ninja -t targets all lists gateway.hpp's own targets:"
    echo "$ours" | head -n 20
  fi
  if quiet ninja -C "$proj/build"; then
    ok "ninja built the consumer"
    built=$(find "$proj/build/subprojects" -type f \( -name '*.o' -o -perm -u+x \) 2>/dev/null)
    if [ -z "$built" ]; then ok "nothing built under subprojects/gateway"; else fail "built in the subproject: $built"; fi
    run_consumer "$proj/build/consumer" "the subproject build"
  else
    fail "ninja could not build the consumer project"
  fi
else
  fail "meson setup of the consumer project"
fi

echo "== 2. README's compiler line, gateway.hpp next to the source"
plain=$tmp/plain
mkdir -p "$plain"
cp "$src" "$repo/gateway.hpp" "$plain/"
if (cd "$plain" && quiet "$cxx" -std=c++20 consumer.cpp -lssl -lcrypto -pthread -o consumer); then
  ok "$cxx -std=c++20 consumer.cpp -lssl -lcrypto -pthread"
  run_consumer "$plain/consumer" "the plain build"
else
  fail "$cxx -std=c++20 consumer.cpp -lssl -lcrypto -pthread"
fi

echo "== 3. meson install into a temporary prefix, then pkg-config"
prefix=$tmp/prefix
if quiet meson setup "$tmp/install-build" "$repo" --prefix="$prefix" -Dexamples=false -Dtests=false &&
   quiet meson install -C "$tmp/install-build"; then
  ok "meson install --prefix $prefix (examples and tests off)"
  if cmp -s "$prefix/include/gateway.hpp" "$repo/gateway.hpp"; then
    ok "installed include/gateway.hpp"
  else
    fail "include/gateway.hpp not installed (or not the repository's)"
  fi
  pc=$(find "$prefix" -name gateway.pc)
  if [ -n "$pc" ] && [ "$(echo "$pc" | wc -l)" = 1 ]; then
    ok "installed ${pc#"$prefix"/}"
    flags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs gateway)
    if [ -n "$flags" ]; then
      ok "pkg-config --cflags --libs gateway: $flags"
      case " $flags " in
        *" -I$prefix/include "*) ok "the flags name the installed include directory" ;;
        *) fail "the flags do not name $prefix/include" ;;
      esac
      viapc=$tmp/pkgconfig
      mkdir -p "$viapc"
      cp "$src" "$viapc/"   # alone: the header must come from the installed copy
      # shellcheck disable=SC2086 # pkg-config's output is a list of words
      if (cd "$viapc" && quiet "$cxx" -std=c++20 consumer.cpp $flags -o consumer); then
        ok "$cxx -std=c++20 consumer.cpp \$(pkg-config --cflags --libs gateway)"
        run_consumer "$viapc/consumer" "the pkg-config build"
      else
        fail "$cxx -std=c++20 consumer.cpp \$(pkg-config --cflags --libs gateway)"
      fi
    else
      fail "pkg-config --cflags --libs gateway failed"
    fi
  else
    fail "gateway.pc not installed once under $prefix: '$pc'"
  fi
else
  fail "meson install of the repository"
fi

if [ "$failed" -eq 0 ]; then echo "consumer: all checks passed"; else echo "consumer: $failed check(s) failed"; fi
[ "$failed" -eq 0 ]
