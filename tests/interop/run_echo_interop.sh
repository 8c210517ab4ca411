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
# to the clients: per-scenario limit), DEFLATE (permessage-deflate; unset:
# off): a space-separated list of modes, shared and dedicated. For each mode
# the server runs as `ECHO_BINARY PORT --deflate MODE [CERT_PEM KEY_PEM]`
# (tests/conformance/conformance_echo does, compressing every message) and the
# client offers the extension, demands it in every handshake and adds its own
# scenarios: the node client twice, with ws's default threshold (1024 bytes)
# and with threshold 0.
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

modes=(off)
if [ -n "${DEFLATE:-}" ]; then
    read -r -a modes <<<"$DEFLATE"
    [ "${#modes[@]}" -gt 0 ] || modes=(off)
    for mode in "${modes[@]}"; do
        case $mode in
            shared | dedicated) ;;
            *) echo "run_echo_interop.sh: DEFLATE has '$mode'; modes are shared and dedicated" >&2; exit 2 ;;
        esac
    done
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

# Each mode gets its own pair of servers, stopped before the next mode starts.
names=()
for mode in "${modes[@]}"; do
    # Client runs against this mode's servers: a name suffix and the client's options for each.
    server_args=() suffix='' variant_tags=("") variant_args=("")
    if [ "$mode" != off ]; then
        server_args=(--deflate "$mode")
        suffix=-$mode
        variant_args=("--deflate $mode")
        if [ "$client" = node ]; then
            variant_tags+=(-threshold0)
            variant_args+=("--deflate $mode --deflate-threshold 0")
        fi
    fi
    if start_server "plain$suffix" "$echo_bin" 0 "${server_args[@]}"; then
        plain_pid=$server_pid plain_port=$server_port
    else
        plain_pid=$server_pid plain_port=
        fail "plain server did not print 'listening on port N' (cmd: $echo_bin 0 ${server_args[*]})"
    fi
    if start_server "tls$suffix" "$echo_bin" 0 "${server_args[@]}" "$cert" "$key"; then
        tls_pid=$server_pid tls_port=$server_port
    else
        tls_pid=$server_pid tls_port=
        fail "TLS server did not print 'listening on port N' (cmd: $echo_bin 0 ${server_args[*]} CERT KEY)"
    fi
    names+=("plain$suffix" "tls$suffix")

    for i in "${!variant_tags[@]}"; do
        tag=${variant_tags[i]}
        read -r -a client_args <<<"${variant_args[i]}"
        if [ -n "$plain_port" ]; then
            run_client "plain$suffix$tag" "ws://127.0.0.1:$plain_port/" "${client_args[@]}"
        fi
        if [ -n "$tls_port" ]; then
            run_client "tls$suffix$tag" "wss://localhost:$tls_port/" --ca "$cert" "${client_args[@]}"
        fi
    done

    to_stop=()
    [ -n "$plain_pid" ] && to_stop+=("plain$suffix=$plain_pid")
    [ -n "$tls_pid" ] && to_stop+=("tls$suffix=$tls_pid")
    [ "${#to_stop[@]}" -gt 0 ] && stop_servers "${to_stop[@]}"
done

finish "echo interop ($client${DEFLATE:+, deflate: $DEFLATE})" "${names[@]}"
