# Shared by the cluster drivers (source it after lib.sh and init_tmp): free loopback ports, a
# redis-server of the test's own, and waiting for a line on a background process's output.
# shellcheck shell=bash disable=SC2034  # the variables set here are read by the drivers

# free_port: prints a loopback TCP port nobody listens on (bound once and released; the caller
# retries if someone takes it meanwhile).
free_port() {
    "${NODE:-node}" -e '
        const s = require("node:net").createServer();
        s.listen(0, "127.0.0.1", () => { process.stdout.write(String(s.address().port)); s.close(); });'
}

# start_logged NAME PATTERN COMMAND...: starts COMMAND in the background with stdout and stderr
# through a fifo, reads lines until one matches the extended regex PATTERN (30 s at most), then
# leaves a background cat draining the rest into $tmp/NAME.out. Sets logged_pid, and logged_line to
# the matching line (empty when the command ended or the deadline passed first).
start_logged() {
    local name=$1 pattern=$2
    shift 2
    local fifo=$tmp/$name.fifo line fd deadline left
    logged_pid=
    logged_line=
    rm -f -- "$fifo"
    mkfifo "$fifo" || return 1
    "$@" </dev/null >"$fifo" 2>&1 &
    logged_pid=$!
    exec {fd}<"$fifo"
    deadline=$((SECONDS + 30))
    while left=$((deadline - SECONDS)); [ "$left" -gt 0 ]; do
        IFS= read -r -t "$left" -u "$fd" line || break
        printf '%s\n' "$line" >>"$tmp/$name.out"
        if [[ $line =~ $pattern ]]; then
            logged_line=$line
            break
        fi
    done
    cat <&"$fd" >>"$tmp/$name.out" &
    exec {fd}<&-
    [ -n "$logged_line" ]
}

# start_redis: redis-server on a free loopback port, without persistence, ready to accept
# connections. Sets redis_pid, redis_port and redis_url (empty on failure). A port taken between
# free_port and the bind is retried.
start_redis() {
    local attempt port
    redis_pid='' redis_port='' redis_url=''
    for attempt in 1 2 3; do
        port=$(free_port) || return 1
        if start_logged "redis$attempt" 'Ready to accept connections' \
            redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$tmp"; then
            redis_pid=$logged_pid redis_port=$port redis_url=redis://127.0.0.1:$port
            return 0
        fi
        kill -KILL "$logged_pid" 2>/dev/null
        wait "$logged_pid" 2>/dev/null
    done
    return 1
}

# stop_redis: a clean shutdown of start_redis's server.
stop_redis() {
    if [ -n "$redis_pid" ]; then
        kill -TERM "$redis_pid" 2>/dev/null
        wait "$redis_pid" 2>/dev/null
        redis_pid=
    fi
}
