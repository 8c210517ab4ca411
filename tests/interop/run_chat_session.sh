#!/usr/bin/env bash
# run_chat_session.sh CHAT_BINARY
#
# Runs a scripted chat session (tests/interop/chat_session.mjs, Node's `ws`
# client) against our 03_chat example.
#
#   CHAT_BINARY  the chat server; contract: `CHAT_BINARY PORT` serves ws://
#                (path /chat), prints "listening on port N" once listening,
#                exits 0 on SIGTERM.
#
# Environment: NODE (default: node), CHAT_TIMEOUT_MS (passed on to the client:
# limit of every wait for a message).
#
# Exit status: 0 all good, 1 something failed, 2 usage, 77 (meson's "skip")
# when node or the `ws` package is missing.
set -u

usage() {
    echo "usage: $0 CHAT_BINARY" >&2
    exit 2
}
[ "$#" -eq 1 ] || usage
chat_bin=$1

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

tmp=$(mktemp -d "${TMPDIR:-/tmp}/chat_session.XXXXXX") || exit 1
# On exit, whatever background jobs of ours are still around (the server, the
# stdout drainer, a watchdog) are killed; `jobs -p` lists only our children.
# Only in this shell: a signal that reaches a freshly forked subshell (the
# watchdog) before bash has reset its traps runs our TERM trap and then this
# EXIT trap there, with a stale job list and the temporary directory in use.
# shellcheck disable=SC2317  # invoked via trap
cleanup() {
    { [ "$BASHPID" -eq "$$" ]; } 2>/dev/null || return
    local pids
    pids=$(jobs -p)
    if [ -n "$pids" ]; then
        # shellcheck disable=SC2086  # word splitting intended
        kill -KILL $pids 2>/dev/null
    fi
    wait 2>/dev/null
    rm -rf -- "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

status=0
fail() {
    echo "FAIL: $*"
    status=1
}

# The server's stdout goes through a fifo; we read lines until the
# "listening on port N" line (bounded by a deadline), then a background cat
# drains the rest into $tmp/server.out so the server never blocks on stdout.
fifo=$tmp/server.fifo
mkfifo "$fifo" || exit 1
"$chat_bin" 0 </dev/null >"$fifo" 2>"$tmp/server.err" &
server_pid=$!
exec {fd}<"$fifo"  # returns once the server side has the fifo open
port=
deadline=$((SECONDS + 30))
while left=$((deadline - SECONDS)); [ "$left" -gt 0 ]; do
    IFS= read -r -t "$left" -u "$fd" line || break
    printf '%s\n' "$line" >>"$tmp/server.out"
    if [[ $line =~ ^listening\ on\ port\ ([0-9]+) ]]; then
        port=${BASH_REMATCH[1]}
        break
    fi
done
cat <&"$fd" >>"$tmp/server.out" &
exec {fd}<&-

if [ -z "$port" ]; then
    fail "chat server did not print 'listening on port N' (cmd: $chat_bin 0)"
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

# SIGTERM, then wait (a watchdog kills a server that ignores it after 15 s)
# and demand exit status 0.
(
    trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
    sleep 15 &
    sleeper=$!
    wait "$sleeper"
    kill -KILL "$server_pid" 2>/dev/null
) </dev/null >/dev/null 2>&1 &
watchdog=$!
kill -TERM "$server_pid" 2>/dev/null
wait "$server_pid" 2>/dev/null
rc=$?
if [ "$rc" -ne 0 ]; then
    fail "chat server exited with status $rc (want 0 after SIGTERM)"
fi
kill -TERM "$watchdog" 2>/dev/null
wait "$watchdog" 2>/dev/null

show_file() {
    local title=$1 file=$2
    if [ -s "$file" ]; then
        echo "--- $title ---"
        cat -- "$file"
    fi
}
show_file "chat server stderr" "$tmp/server.err"
if [ "$status" -ne 0 ]; then
    show_file "chat server stdout" "$tmp/server.out"
fi

if [ "$status" -eq 0 ]; then
    echo "chat session: all passed"
else
    echo "chat session: FAILED"
fi
exit "$status"
