#!/usr/bin/env bash
# run_engineio_suite.sh SERVER [ARG...]
#
# Runs the Engine.IO v4 conformance suite (engineio_suite.mjs) against an echo server.
#
#   SERVER [ARG...]  started as `SERVER ARG... 0`, or `SERVER ARG... 0 PATH` when EIO_PATH is
#                    set. Contract: port 0 = pick a free port, print "listening on port N", serve
#                    Engine.IO at PATH (default /engine.io/) with pingInterval 300, pingTimeout
#                    200, maxPayload 1e6, CORS for any origin, echo every message unchanged, exit
#                    0 on SIGTERM. The reference server:
#                      run_engineio_suite.sh node tests/conformance/engineio_node_reference.mjs
#
# Environment: NODE (default: node); EIO_PATH (default /engine.io/; passed to the server and the
# suite when set); EIO_CHECK_TIMEOUT_MS (passed on to the suite: per-check limit, default 10000).
#
# Exit status: 0 all passed, 1 something failed, 2 usage, 77 (meson's "skip") when node or the
# `ws` package is missing.
set -u

if [ "$#" -lt 1 ]; then
    echo "usage: $0 SERVER [ARG...]" >&2
    exit 2
fi

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd) || exit 1
root=$(cd -- "$script_dir/../.." && pwd) || exit 1
path=${EIO_PATH:-/engine.io/}
server_cmd=("$@" 0)
[ -n "${EIO_PATH:-}" ] && server_cmd+=("$EIO_PATH")

node=${NODE:-node}
if ! command -v "$node" >/dev/null 2>&1; then
    echo "SKIP: node not found" >&2
    exit 77
fi
if [ ! -d "$root/node_modules/ws" ]; then
    echo "SKIP: $root/node_modules/ws missing (run 'npm ci' in the repository root)" >&2
    exit 77
fi

# shellcheck source=tests/interop/lib.sh
. "$script_dir/../interop/lib.sh"
init_tmp engineio_suite

if start_server engineio "${server_cmd[@]}"; then
    echo "=== engineio_suite.mjs against ${server_cmd[*]} (port $server_port, path $path)"
    if command -v timeout >/dev/null 2>&1; then
        timeout -k 5 120 "$node" "$script_dir/engineio_suite.mjs" "http://127.0.0.1:$server_port" "$path" </dev/null
    else
        "$node" "$script_dir/engineio_suite.mjs" "http://127.0.0.1:$server_port" "$path" </dev/null
    fi
    rc=$?
    if [ "$rc" -ne 0 ]; then
        fail "engineio_suite.mjs exited with status $rc"
    fi
else
    fail "server did not print 'listening on port N' (cmd: ${server_cmd[*]})"
fi

[ -n "$server_pid" ] && stop_servers "engineio=$server_pid"

finish "engineio conformance" engineio
