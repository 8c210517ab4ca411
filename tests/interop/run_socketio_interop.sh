#!/usr/bin/env bash
# run_socketio_interop.sh ENGINEIO_ECHO SOCKETIO_REFERENCE [PYTHON]
#
# Runs third-party Engine.IO and Socket.IO clients against our servers:
#   python-engineio's Client     (py_engineio_client.py)  -> ENGINEIO_ECHO
#   Node's engine.io-client      (engineio_clients.mjs)   -> ENGINEIO_ECHO
#   python-socketio's Client     (py_socketio_client.py)  -> SOCKETIO_REFERENCE
# each in the modes polling, websocket and upgrade (polling first, then WebSocket).
#
#   ENGINEIO_ECHO       `ENGINEIO_ECHO PORT`: an Engine.IO echo server at /engine.io/
#                       (tests/conformance/engineio_echo.cpp)
#   SOCKETIO_REFERENCE  `SOCKETIO_REFERENCE PORT`: the Socket.IO reference server
#                       (tests/conformance/socketio_reference.cpp)
#   PYTHON              the interpreter for the .py clients (default: python3); it needs
#                       python-socketio/-engineio with requests and websocket-client (Debian:
#                       python3-socketio python3-requests python3-websocket)
# Both servers print "listening on port N" once listening and must exit 0 on SIGTERM. They run
# with GW_TEST_PATIENT=1 (pingTimeout and connectTimeout 5 s instead of 200 ms and 1 s, which the
# clients check): these runs test the clients' interplay, and a sanitized server or a client
# thread stalled for 200 ms must not end a session mid-scenario.
#
# Environment: NODE (default: node), INTEROP_TIMEOUT_MS (per-scenario limit, passed on),
# INTEROP_DEBUG=1 (the clients log every packet to stderr).
#
# Exit status: 0 all good, 1 something failed, 2 usage, 77 (meson's "skip") when a client's
# runtime or library is missing.
set -u

usage() {
    echo "usage: $0 ENGINEIO_ECHO SOCKETIO_REFERENCE [PYTHON]" >&2
    exit 2
}
if [ "$#" -lt 2 ] || [ "$#" -gt 3 ]; then
    usage
fi
eio_bin=$1
sio_bin=$2
python=${3:-python3}

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd) || exit 1
root=$(cd -- "$script_dir/../.." && pwd) || exit 1

check_server() {
    local var=$1 bin=${!1}
    case $bin in
        */*) ;;
        *) bin=./$bin ;;  # a bare name means the current directory, not PATH
    esac
    if [ ! -x "$bin" ]; then
        echo "run_socketio_interop.sh: '${!1}' is not an executable file" >&2
        exit 1
    fi
    printf -v "$var" '%s' "$bin"
}
check_server eio_bin
check_server sio_bin

node=${NODE:-node}
missing=()
if ! command -v "$python" >/dev/null 2>&1; then
    missing+=("python interpreter '$python'")
else
    for module in engineio socketio requests websocket; do
        "$python" -c "import $module" >/dev/null 2>&1 || missing+=("$python: module '$module'")
    done
fi
command -v "$node" >/dev/null 2>&1 || missing+=("node")
[ -d "$root/node_modules/engine.io-client" ] || missing+=("$root/node_modules/engine.io-client (run 'npm ci')")
if [ "${#missing[@]}" -gt 0 ]; then
    printf 'SKIP: missing %s\n' "${missing[@]}" >&2
    echo "      (Debian: python3-socketio python3-requests python3-websocket, nodejs; then npm ci)" >&2
    exit 77
fi

# shellcheck source=tests/interop/lib.sh
. "$script_dir/lib.sh"
init_tmp socketio_interop
export GW_TEST_PATIENT=1

eio_pid='' eio_port='' sio_pid='' sio_port=''
if start_server engineio "$eio_bin" 0; then
    eio_pid=$server_pid eio_port=$server_port
else
    eio_pid=$server_pid
    fail "Engine.IO echo server did not print 'listening on port N' (cmd: $eio_bin 0)"
fi
if start_server socketio "$sio_bin" 0; then
    sio_pid=$server_pid sio_port=$server_port
else
    sio_pid=$server_pid
    fail "Socket.IO reference server did not print 'listening on port N' (cmd: $sio_bin 0)"
fi

n=0
# run_client LABEL INTERPRETER SCRIPT ARGS...
run_client() {
    local label=$1
    shift
    local out rc
    n=$((n + 1))
    out=$tmp/client$n.out
    echo "=== $label: $1 ${2##*/} ${*:3}"
    if command -v timeout >/dev/null 2>&1; then
        timeout -k 5 300 "$@" </dev/null >"$out" 2>&1
    else
        "$@" </dev/null >"$out" 2>&1
    fi
    rc=$?
    cat -- "$out"
    if [ "$rc" -ne 0 ]; then
        fail "$label exited with status $rc"
    fi
}

if [ -n "$eio_port" ]; then
    for mode in polling websocket upgrade; do
        run_client "python-engineio, $mode" "$python" "$script_dir/py_engineio_client.py" "http://127.0.0.1:$eio_port" "$mode"
    done
    for mode in polling websocket upgrade; do
        run_client "engine.io-client, $mode" "$node" "$script_dir/engineio_clients.mjs" "http://127.0.0.1:$eio_port" "$mode"
    done
fi
if [ -n "$sio_port" ]; then
    for mode in polling websocket upgrade; do
        run_client "python-socketio, $mode" "$python" "$script_dir/py_socketio_client.py" "http://127.0.0.1:$sio_port" "$mode"
    done
fi

to_stop=()
[ -n "$eio_pid" ] && to_stop+=("engineio=$eio_pid")
[ -n "$sio_pid" ] && to_stop+=("socketio=$sio_pid")
[ "${#to_stop[@]}" -gt 0 ] && stop_servers "${to_stop[@]}"

finish "Socket.IO / Engine.IO interop" engineio socketio
