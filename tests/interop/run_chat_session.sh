#!/usr/bin/env bash
# run_chat_session.sh CHAT_BINARY [SERVER_ARG...]
#
# Runs a scripted chat session (tests/interop/chat_session.mjs, Node's `ws`
# client) against our 04_chat example.
#
#   CHAT_BINARY  the chat server; contract: `CHAT_BINARY PORT [SERVER_ARG...]`
#                serves ws:// (path /chat), prints "listening on port N" once
#                listening, exits 0 on SIGTERM.
#   SERVER_ARG   passed on after the port (04_chat: the number of workers).
#
# Environment: NODE (default: node), CHAT_TIMEOUT_MS (passed on to the client:
# limit of every wait for a message).
#
# Exit status: 0 all good, 1 something failed, 2 usage, 77 (meson's "skip")
# when node or the `ws` package is missing.
set -u

usage() {
    echo "usage: $0 CHAT_BINARY [SERVER_ARG...]" >&2
    exit 2
}
[ "$#" -ge 1 ] || usage
chat_bin=$1
shift
server_args=("$@")

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd) || exit 1
root=$(cd -- "$script_dir/../.." && pwd) || exit 1

case $chat_bin in
    */*) ;;
    *) chat_bin=./$chat_bin ;;  # a bare name means the current directory, not PATH
esac
if [ ! -x "$chat_bin" ]; then
    echo "run_chat_session.sh: chat server '$1' is not an executable file" >&2
    exit 1
fi

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
. "$script_dir/lib.sh"
init_tmp chat_session

start_server chat "$chat_bin" 0 "${server_args[@]}"
port=$server_port
if [ -z "$port" ]; then
    fail "chat server did not print 'listening on port N' (cmd: $chat_bin 0 ${server_args[*]})"
else
    echo "=== node ws client: chat_session.mjs $port"
    # From the repository root, so that `import 'ws'` finds node_modules/ws.
    if command -v timeout >/dev/null 2>&1; then
        (cd -- "$root" && timeout -k 5 300 "$node" tests/interop/chat_session.mjs "$port") \
            </dev/null >"$tmp/client.out" 2>&1
    else
        (cd -- "$root" && "$node" tests/interop/chat_session.mjs "$port") \
            </dev/null >"$tmp/client.out" 2>&1
    fi
    rc=$?
    cat -- "$tmp/client.out"
    if [ "$rc" -ne 0 ]; then
        fail "chat session client exited with status $rc"
    fi
fi

stop_servers "chat=$server_pid"

finish "chat session" chat
