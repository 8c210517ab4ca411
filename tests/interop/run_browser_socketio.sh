#!/usr/bin/env bash
# run_browser_socketio.sh CHAT_EXECUTABLE
#
# Runs tests/interop/browser_socketio.mjs: headless Chromium, driven by
# playwright-core, opens the chat page that CHAT_EXECUTABLE serves and drives
# socket.io-client's own browser bundle (from npm, served by the chat too)
# against it.
#
#   CHAT_EXECUTABLE  contract: `CHAT_EXECUTABLE PORT` serves the chat on /chat
#                    for Socket.IO clients, the page at / and the file
#                    $SOCKET_IO_CLIENT at /socket.io.min.js (examples/04_chat);
#                    prints "listening on port N" once listening and exits 0
#                    on SIGTERM.
#
# Environment: NODE (default: node), CHROMIUM (default: chromium on PATH, else
# /usr/bin/chromium), BROWSER_TIMEOUT_MS (passed on: limit of every wait).
# SOCKET_IO_CLIENT is set for both to this repository's
# node_modules/socket.io-client/dist/socket.io.min.js.
#
# Exit status: 0 all good, 1 something failed, 2 usage, 77 (meson's "skip")
# when node, Chromium, playwright-core or socket.io-client is missing.
set -u

[ "$#" -eq 1 ] || { echo "usage: $0 CHAT_EXECUTABLE" >&2; exit 2; }

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd) || exit 1
root=$(cd -- "$script_dir/../.." && pwd) || exit 1

chat_bin=$1
case $chat_bin in
    */*) ;;
    *) chat_bin=./$chat_bin ;;  # a bare name means the current directory, not PATH
esac
if [ ! -x "$chat_bin" ]; then
    echo "run_browser_socketio.sh: '$chat_bin' is not an executable file" >&2
    exit 1
fi
# The server starts from the repository root: make the path absolute first.
chat_bin=$(cd -- "$(dirname -- "$chat_bin")" && pwd)/$(basename -- "$chat_bin") || exit 1

node=${NODE:-node}
if ! command -v "$node" >/dev/null 2>&1; then
    echo "SKIP: node not found" >&2
    exit 77
fi
if [ ! -d "$root/node_modules/playwright-core" ]; then
    echo "SKIP: $root/node_modules/playwright-core missing (run 'npm ci' in the repository root)" >&2
    exit 77
fi
bundle=$root/node_modules/socket.io-client/dist/socket.io.min.js
if [ ! -f "$bundle" ]; then
    echo "SKIP: $bundle missing (run 'npm ci' in the repository root)" >&2
    exit 77
fi
chromium=${CHROMIUM:-$(command -v chromium || echo /usr/bin/chromium)}
if [ ! -x "$chromium" ]; then
    echo "SKIP: Chromium not found at '$chromium' (Debian: apt-get install chromium; or set CHROMIUM)" >&2
    exit 77
fi

# shellcheck source=tests/interop/lib.sh
. "$script_dir/lib.sh"
init_tmp browser_socketio

# From the repository root, where the default bundle path resolves; SOCKET_IO_CLIENT names it
# anyway, so that the server and the session compare the same file.
export SOCKET_IO_CLIENT=$bundle
cd -- "$root" || exit 1
if start_server chat "$chat_bin" 0; then
    echo "=== Chromium ($chromium): browser_socketio.mjs http://127.0.0.1:$server_port/"
    # TMPDIR puts the browser's throwaway profile in our temporary directory, which goes even if
    # the browser is killed. Playwright closes the browser when timeout's SIGTERM reaches node.
    cmd=(env CHROMIUM="$chromium" TMPDIR="$tmp" "$node" tests/interop/browser_socketio.mjs "http://127.0.0.1:$server_port/")
    if command -v timeout >/dev/null 2>&1; then
        cmd=(timeout -k 5 150 "${cmd[@]}")
    fi
    "${cmd[@]}" </dev/null >"$tmp/browser.out" 2>&1
    rc=$?
    cat -- "$tmp/browser.out"
    if [ "$rc" -ne 0 ]; then
        fail "browser session exited with status $rc"
    fi
else
    fail "chat server did not print 'listening on port N' (cmd: $chat_bin 0)"
fi
[ -n "$server_pid" ] && stop_servers "chat=$server_pid"

finish "browser Socket.IO session" chat
