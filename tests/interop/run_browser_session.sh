#!/usr/bin/env bash
# run_browser_session.sh ECHO_BINARY CHAT_BINARY
#
# Runs tests/interop/browser_session.mjs: headless Chromium, driven by
# playwright-core, whose pages use the browser's own WebSocket against our
# echo server (ws:// and wss://; and ws:// with permessage-deflate, which
# Chromium offers by default, in each of our modes) and our chat example.
#
#   ECHO_BINARY  contract: `ECHO_BINARY PORT [CERT_PEM KEY_PEM]` serves ws://
#                (wss:// with a certificate and key) on any path and echoes
#                messages just over 1 MiB: tests/conformance/conformance_echo
#                (examples/01_echo keeps the default 1 MiB limit); also
#                `ECHO_BINARY PORT --deflate shared|dedicated` (permessage-deflate
#                on, in that mode)
#   CHAT_BINARY  contract: `CHAT_BINARY PORT` serves the chat on ws://.../chat
#   Both print "listening on port N" once listening and exit 0 on SIGTERM.
#
# Environment: NODE (default: node), CHROMIUM (default: chromium on PATH, else
# /usr/bin/chromium), BROWSER_TIMEOUT_MS (passed on: limit of every wait).
#
# Exit status: 0 all good, 1 something failed, 2 usage, 77 (meson's "skip")
# when node, Chromium or the playwright-core package is missing.
set -u

usage() {
    echo "usage: $0 ECHO_BINARY CHAT_BINARY" >&2
    exit 2
}
[ "$#" -eq 2 ] || usage

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd) || exit 1
root=$(cd -- "$script_dir/../.." && pwd) || exit 1

bins=()
for bin in "$1" "$2"; do
    case $bin in
        */*) ;;
        *) bin=./$bin ;;  # a bare name means the current directory, not PATH
    esac
    if [ ! -x "$bin" ]; then
        echo "run_browser_session.sh: '$bin' is not an executable file" >&2
        exit 1
    fi
    bins+=("$bin")
done
echo_bin=${bins[0]} chat_bin=${bins[1]}

node=${NODE:-node}
if ! command -v "$node" >/dev/null 2>&1; then
    echo "SKIP: node not found" >&2
    exit 77
fi
if [ ! -d "$root/node_modules/playwright-core" ]; then
    echo "SKIP: $root/node_modules/playwright-core missing (run 'npm ci' in the repository root)" >&2
    exit 77
fi
chromium=${CHROMIUM:-$(command -v chromium || echo /usr/bin/chromium)}
if [ ! -x "$chromium" ]; then
    echo "SKIP: Chromium not found at '$chromium' (Debian: apt-get install chromium; or set CHROMIUM)" >&2
    exit 77
fi

# shellcheck source=tests/interop/lib.sh
. "$script_dir/lib.sh"
init_tmp browser_session

if ! "$script_dir/make_cert.sh" "$tmp/tls"; then
    echo "run_browser_session.sh: make_cert.sh failed" >&2
    exit 1
fi

# Each server that starts adds its URL to the browser's list; one that does not is a failure,
# and the browser still tries the others.
targets=() to_stop=()
if start_server plain "$echo_bin" 0; then
    targets+=(--echo "ws://127.0.0.1:$server_port/")
else
    fail "echo server did not print 'listening on port N' (cmd: $echo_bin 0)"
fi
[ -n "$server_pid" ] && to_stop+=("plain=$server_pid")
if start_server tls "$echo_bin" 0 "$tmp/tls/cert.pem" "$tmp/tls/key.pem"; then
    targets+=(--echo "wss://127.0.0.1:$server_port/")
else
    fail "TLS echo server did not print 'listening on port N' (cmd: $echo_bin 0 CERT KEY)"
fi
[ -n "$server_pid" ] && to_stop+=("tls=$server_pid")
# The mode is the URL's path (the server takes any), which tells the page what it answers.
for mode in shared dedicated; do
    if start_server "deflate-$mode" "$echo_bin" 0 --deflate "$mode"; then
        targets+=(--deflate-echo "ws://127.0.0.1:$server_port/$mode")
    else
        fail "echo server did not print 'listening on port N' (cmd: $echo_bin 0 --deflate $mode)"
    fi
    [ -n "$server_pid" ] && to_stop+=("deflate-$mode=$server_pid")
done
if start_server chat "$chat_bin" 0; then
    targets+=(--chat "ws://127.0.0.1:$server_port/chat")
else
    fail "chat server did not print 'listening on port N' (cmd: $chat_bin 0)"
fi
[ -n "$server_pid" ] && to_stop+=("chat=$server_pid")

if [ "${#targets[@]}" -gt 0 ]; then
    echo "=== Chromium ($chromium): browser_session.mjs ${targets[*]}"
    # From the repository root, so that `import 'playwright-core'` finds node_modules. TMPDIR puts
    # the browser's throwaway profile in our temporary directory, which goes even if the browser
    # is killed. Playwright closes the browser when timeout's SIGTERM reaches node.
    cmd=(env CHROMIUM="$chromium" TMPDIR="$tmp" "$node" tests/interop/browser_session.mjs "${targets[@]}")
    if command -v timeout >/dev/null 2>&1; then
        cmd=(timeout -k 5 150 "${cmd[@]}")
    fi
    (cd -- "$root" && "${cmd[@]}") </dev/null >"$tmp/browser.out" 2>&1
    rc=$?
    cat -- "$tmp/browser.out"
    if [ "$rc" -ne 0 ]; then
        fail "browser session exited with status $rc"
    fi
fi

[ "${#to_stop[@]}" -gt 0 ] && stop_servers "${to_stop[@]}"

finish "browser session" plain tls deflate-shared deflate-dedicated chat
