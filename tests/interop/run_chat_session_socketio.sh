#!/usr/bin/env bash
# run_chat_session_socketio.sh CHAT_BINARY [WORKERS] [TRANSPORTS]
#
# Runs the scripted chat session replayed with socket.io-client
# (tests/interop/chat_session_socketio.mjs) against our 04_chat example.
#
#   CHAT_BINARY  the chat server; contract: `CHAT_BINARY PORT [WORKERS]` serves
#                Socket.IO at /socket.io/ (namespace /chat) and ws:// (path
#                /chat) on one port, prints "listening on port N" once
#                listening, exits 0 on SIGTERM.
#   WORKERS      passed on after the port (default: none, i.e. the server's).
#   TRANSPORTS   polling | websocket | upgrade (default upgrade: polling, then
#                the upgrade to websocket, as socket.io-client does by default).
#
# Environment: NODE (default: node), CHAT_TIMEOUT_MS (passed on to the client:
# limit of every wait).
#
# Exit status: 0 all good, 1 something failed, 2 usage, 77 (meson's "skip")
# when node, `socket.io-client` or `ws` is missing.
set -u

usage() {
    echo "usage: $0 CHAT_BINARY [WORKERS] [polling|websocket|upgrade]" >&2
    exit 2
}
if [ "$#" -lt 1 ] || [ "$#" -gt 3 ]; then
    usage
fi
chat_bin=$1
server_args=()
if [ "$#" -ge 2 ] && [ -n "$2" ]; then
    [[ $2 =~ ^[0-9]+$ ]] || usage
    server_args=("$2")
fi
transports=${3:-upgrade}
case $transports in
    polling | websocket | upgrade) ;;
    *) usage ;;
esac

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd) || exit 1
root=$(cd -- "$script_dir/../.." && pwd) || exit 1

case $chat_bin in
    */*) ;;
    *) chat_bin=./$chat_bin ;;  # a bare name means the current directory, not PATH
esac
if [ ! -x "$chat_bin" ]; then
    echo "run_chat_session_socketio.sh: chat server '$1' is not an executable file" >&2
    exit 1
fi

node=${NODE:-node}
if ! command -v "$node" >/dev/null 2>&1; then
    echo "SKIP: node not found" >&2
    exit 77
fi
for package in socket.io-client ws; do
    if [ ! -d "$root/node_modules/$package" ]; then
        echo "SKIP: $root/node_modules/$package missing (run 'npm ci' in the repository root)" >&2
        exit 77
    fi
done

# shellcheck source=tests/interop/lib.sh
. "$script_dir/lib.sh"
init_tmp chat_session_socketio

start_server chat "$chat_bin" 0 "${server_args[@]}"
port=$server_port
if [ -z "$port" ]; then
    fail "chat server did not print 'listening on port N' (cmd: $chat_bin 0 ${server_args[*]})"
else
    echo "=== socket.io-client: chat_session_socketio.mjs $port $transports (workers: ${server_args[*]:-default})"
    # From the repository root, so that `import 'socket.io-client'` finds node_modules.
    if command -v timeout >/dev/null 2>&1; then
        (cd -- "$root" && timeout -k 5 300 "$node" tests/interop/chat_session_socketio.mjs "$port" "$transports") \
            </dev/null >"$tmp/client.out" 2>&1
    else
        (cd -- "$root" && "$node" tests/interop/chat_session_socketio.mjs "$port" "$transports") \
            </dev/null >"$tmp/client.out" 2>&1
    fi
    rc=$?
    cat -- "$tmp/client.out"
    if [ "$rc" -ne 0 ]; then
        fail "chat session client exited with status $rc"
    fi
fi

stop_servers "chat=$server_pid"

finish "chat session (Socket.IO, $transports)" chat
