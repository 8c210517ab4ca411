# Shared by the interop drivers (source it): a temporary directory cleaned up on exit with every
# background job of ours, failure bookkeeping, and starting and stopping servers that print
# "listening on port N" and must exit 0 on SIGTERM.
# shellcheck shell=bash disable=SC2034  # the variables set here are read by the drivers

# init_tmp NAME: makes $tmp and arranges for cleanup on exit.
init_tmp() {
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX") || exit 1
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM HUP
}

# On exit, whatever background jobs of ours are still around (servers, stdout drainers, a
# watchdog) are killed; `jobs -p` lists only our children. Only the main shell cleans up: a
# signal reaching a freshly forked subshell before bash has reset its traps would otherwise run
# this there, with a stale job list and the temporary directory still in use.
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

status=0
fail() {
    echo "FAIL: $*"
    status=1
}

# start_server NAME COMMAND...  -> sets server_pid and server_port (empty on failure).
# The server's stdout goes through a fifo; lines are read until "listening on port N" (bounded by
# a deadline), then a background cat drains the rest into $tmp/NAME.out so the server never
# blocks on stdout.
start_server() {
    local name=$1
    shift
    local fifo=$tmp/$name.fifo line fd deadline left
    server_pid=
    server_port=
    mkfifo "$fifo" || return 1
    "$@" </dev/null >"$fifo" 2>"$tmp/$name.err" &
    server_pid=$!
    exec {fd}<"$fifo"  # returns once the server side has the fifo open
    deadline=$((SECONDS + 30))
    while left=$((deadline - SECONDS)); [ "$left" -gt 0 ]; do
        IFS= read -r -t "$left" -u "$fd" line || break
        printf '%s\n' "$line" >>"$tmp/$name.out"
        if [[ $line =~ ^listening\ on\ port\ ([0-9]+) ]]; then
            server_port=${BASH_REMATCH[1]}
            break
        fi
    done
    cat <&"$fd" >>"$tmp/$name.out" &
    exec {fd}<&-
    [ -n "$server_port" ]
}

# stop_servers NAME=PID...: SIGTERM to all, then wait (at most 15 s in total) and demand exit
# status 0 from each.
stop_servers() {
    local entry name pid rc watchdog pids=()
    for entry in "$@"; do
        pids+=("${entry#*=}")
    done
    # Watchdog: only kills servers that ignore SIGTERM.
    (
        trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
        sleep 15 &
        sleeper=$!
        wait "$sleeper"
        kill -KILL "${pids[@]}" 2>/dev/null
    ) </dev/null >/dev/null 2>&1 &
    watchdog=$!
    for entry in "$@"; do
        kill -TERM "${entry#*=}" 2>/dev/null
    done
    for entry in "$@"; do
        name=${entry%%=*} pid=${entry#*=}
        wait "$pid" 2>/dev/null
        rc=$?
        if [ "$rc" -ne 0 ]; then
            fail "$name server exited with status $rc (want 0 after SIGTERM)"
        fi
    done
    kill -TERM "$watchdog" 2>/dev/null
    wait "$watchdog" 2>/dev/null
}

show_file() {
    local title=$1 file=$2
    if [ -s "$file" ]; then
        echo "--- $title ---"
        cat -- "$file"
    fi
}

# finish LABEL NAME...: shows each named server's stderr (and its stdout when something failed),
# prints "LABEL: all passed" or "LABEL: FAILED", and exits with the status.
finish() {
    local label=$1 name
    shift
    for name in "$@"; do
        show_file "$name server stderr" "$tmp/$name.err"
        if [ "$status" -ne 0 ]; then
            show_file "$name server stdout" "$tmp/$name.out"
        fi
    done
    if [ "$status" -eq 0 ]; then
        echo "$label: all passed"
    else
        echo "$label: FAILED"
    fi
    exit "$status"
}
