#!/usr/bin/env bash
# run_echo_interop.sh ECHO_BINARY CLIENT
#
# Runs a third-party WebSocket client against our echo example, over ws:// and
# over wss://.
#
#   ECHO_BINARY  the echo server; contract: `ECHO_BINARY PORT [CERT_PEM KEY_PEM]`
#                serves ws:// (wss:// when given a certificate and key), prints
#                "listening on port N" once listening, exits 0 on SIGTERM.
#   CLIENT       node   -> tests/interop/node_client.mjs (Node `ws`)
#                python -> tests/interop/py_client.py   (Python `websockets`)
#
# Environment: NODE (default: node), PYTHON (default: first of python3,
# /usr/bin/python3 that can import websockets), INTEROP_TIMEOUT_MS (passed on
# to the clients: per-scenario limit).
#
# Exit status: 0 all good, 1 something failed, 2 usage, 77 (meson's "skip")
# when the client's runtime or library is missing.
set -u

usage() {
    echo "usage: $0 ECHO_BINARY node|python" >&2
    exit 2
}
[ "$#" -eq 2 ] || usage
echo_bin=$1
client=$2

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd) || exit 1
root=$(cd -- "$script_dir/../.." && pwd) || exit 1

case $echo_bin in
    */*) ;;
    *) echo_bin=./$echo_bin ;;  # a bare name means the current directory, not PATH
esac
if [ ! -x "$echo_bin" ]; then
    echo "run_echo_interop.sh: echo server '$1' is not an executable file" >&2
    exit 1
fi

case $client in
    node)
        node=${NODE:-node}
        if ! command -v "$node" >/dev/null 2>&1; then
            echo "SKIP: node not found" >&2
            exit 77
        fi
        if [ ! -d "$root/node_modules/ws" ]; then
            echo "SKIP: $root/node_modules/ws missing (run 'npm ci' in the repository root)" >&2
            exit 77
        fi
        client_cmd=("$node" "$script_dir/node_client.mjs")
        ;;
    python)
        python=
        for cand in ${PYTHON:+"$PYTHON"} python3 /usr/bin/python3; do
            if command -v "$cand" >/dev/null 2>&1 &&
               "$cand" -c 'import websockets' >/dev/null 2>&1; then
                python=$cand
                break
            fi
        done
        if [ -z "$python" ]; then
            echo "SKIP: no python3 with the 'websockets' module found (set PYTHON)" >&2
            exit 77
        fi
        client_cmd=("$python" "$script_dir/py_client.py")
        ;;
    *) usage ;;
esac

# shellcheck source=tests/interop/lib.sh
. "$script_dir/lib.sh"
init_tmp echo_interop

if ! "$script_dir/make_cert.sh" "$tmp/tls"; then
    echo "run_echo_interop.sh: make_cert.sh failed" >&2
    exit 1
fi
cert=$tmp/tls/cert.pem
key=$tmp/tls/key.pem

if start_server plain "$echo_bin" 0; then
    plain_pid=$server_pid plain_port=$server_port
else
    plain_pid=$server_pid plain_port=
    fail "plain server did not print 'listening on port N' (cmd: $echo_bin 0)"
fi
if start_server tls "$echo_bin" 0 "$cert" "$key"; then
    tls_pid=$server_pid tls_port=$server_port
else
    tls_pid=$server_pid tls_port=
    fail "TLS server did not print 'listening on port N' (cmd: $echo_bin 0 CERT KEY)"
fi

run_client() {
    local name=$1
    shift
    local rc
    echo "=== $client client, $name: ${client_cmd[*]##*/} $*"
    if command -v timeout >/dev/null 2>&1; then
        timeout -k 5 600 "${client_cmd[@]}" "$@" </dev/null >"$tmp/$name.client" 2>&1
    else
        "${client_cmd[@]}" "$@" </dev/null >"$tmp/$name.client" 2>&1
    fi
    rc=$?
    cat -- "$tmp/$name.client"
    if [ "$rc" -ne 0 ]; then
        fail "$client client against the $name server exited with status $rc"
    fi
}

if [ -n "$plain_port" ]; then
    run_client plain "ws://127.0.0.1:$plain_port/"
fi
if [ -n "$tls_port" ]; then
    run_client tls "wss://localhost:$tls_port/" --ca "$cert"
fi

to_stop=()
[ -n "$plain_pid" ] && to_stop+=("plain=$plain_pid")
[ -n "$tls_pid" ] && to_stop+=("tls=$tls_pid")
[ "${#to_stop[@]}" -gt 0 ] && stop_servers "${to_stop[@]}"

finish "echo interop ($client)" plain tls
