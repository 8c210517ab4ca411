#!/usr/bin/env bash
# run_socketio_suite.sh SERVER_EXECUTABLE [ARGS...]
#
# Runs the Socket.IO v5 conformance suite (socketio_suite.mjs) against a server.
#
#   SERVER_EXECUTABLE [ARGS...] PORT  the server under test; ARGS come first, then the port (0).
#       Contract: serves Socket.IO at /socket.io/ as described in socketio_suite.mjs, prints
#       "listening on port N" once listening, exits 0 on SIGTERM.
#       Example: run_socketio_suite.sh node tests/conformance/socketio_node_reference.mjs
#
# Environment: NODE (default: node) runs the suite.
#
# Exit status: the suite's (0 all passed, 1 something failed), 1 when the server does not start or
# does not exit 0 on SIGTERM, 2 usage, 77 (meson's "skip") when node or node_modules/ws is missing.
set -u

if [ "$#" -lt 1 ]; then
    echo "usage: $0 SERVER_EXECUTABLE [ARGS...]" >&2
    exit 2
fi

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd) || exit 1
root=$(cd -- "$script_dir/../.." && pwd) || exit 1

server_cmd=("$@")
case ${server_cmd[0]} in
    */*) ;;
    *)
        # A bare name is a file in the current directory if there is one (a meson-built
        # executable), otherwise a command on PATH (node).
        if [ -f "${server_cmd[0]}" ]; then
            server_cmd[0]=./${server_cmd[0]}
        fi
        ;;
esac

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
. "$root/tests/interop/lib.sh"
init_tmp socketio_suite

if start_server sut "${server_cmd[@]}" 0; then
    echo "=== socketio_suite.mjs against ${server_cmd[*]} (port $server_port)"
    if command -v timeout >/dev/null 2>&1; then
        timeout -k 5 60 "$node" "$script_dir/socketio_suite.mjs" "http://127.0.0.1:$server_port" </dev/null
    else
        "$node" "$script_dir/socketio_suite.mjs" "http://127.0.0.1:$server_port" </dev/null
    fi
    rc=$?
    if [ "$rc" -ne 0 ]; then
        fail "socketio_suite.mjs exited with status $rc"
    fi
else
    fail "server did not print 'listening on port N' (cmd: ${server_cmd[*]} 0)"
fi

[ -n "$server_pid" ] && stop_servers "sut=$server_pid"

finish "socket.io conformance" sut
