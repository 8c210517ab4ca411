#!/usr/bin/env bash
# run_socketio_recovery.sh SERVER TRANSPORT: socket.io-client's connection-state recovery
# (tests/interop/socketio_recovery.mjs) against recovery_server over websocket or polling.
# Exit status: 0 all good, 1 something failed, 2 usage, 77 (meson's "skip") when node or
# socket.io-client is missing.
set -u
if [ "$#" -ne 2 ]; then
    echo "usage: $0 SERVER websocket|polling" >&2
    exit 2
fi
server_bin=$1
transport=$2
script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd) || exit 1
root=$(cd -- "$script_dir/../.." && pwd) || exit 1
case $server_bin in
    */*) ;;
    *) server_bin=./$server_bin ;;
esac
node=${NODE:-node}
if ! command -v "$node" >/dev/null 2>&1; then
    echo "SKIP: node not found" >&2
    exit 77
fi
if [ ! -d "$root/node_modules/socket.io-client" ]; then
    echo "SKIP: $root/node_modules/socket.io-client missing (run 'npm ci' in the repository root)" >&2
    exit 77
fi

# shellcheck source=tests/interop/lib.sh
. "$script_dir/lib.sh"
init_tmp socketio_recovery

start_server recovery "$server_bin" 0
if [ -z "$server_port" ]; then
    fail "recovery server did not print 'listening on port N'"
else
    (cd -- "$root" && timeout -k 5 60 "$node" tests/interop/socketio_recovery.mjs "$server_port" "$transport") \
        </dev/null >"$tmp/client.out" 2>&1
    rc=$?
    cat -- "$tmp/client.out"
    [ "$rc" -eq 0 ] || fail "socketio_recovery.mjs exited with status $rc"
fi
stop_servers "recovery=$server_pid"
finish "socket.io-client recovery ($transport)" recovery
