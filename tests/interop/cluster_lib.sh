# Shared by the cluster drivers (source it after lib.sh and init_tmp): free loopback ports, a
# redis-server of the test's own, a Redis Cluster of three masters, and waiting for a line on a
# background process's output.
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

cluster_pids=() redis_pid=""

# start_redis_cluster: a Redis Cluster of three masters (no replicas) on free loopback ports, each a
# redis-server without persistence whose cluster files go in $tmp, joined with `redis-cli --cluster
# create` and waited for (30 s at most) until every node says cluster_state:ok. Sets cluster_pids,
# cluster_ports and redis_url (the first node's; empty on failure). The bus ports are chosen too:
# Redis' default, port + 10000, may be taken or past 65535.
start_redis_cluster() {
    local i port bus deadline ok
    cluster_pids=() cluster_ports=() redis_url=''
    for i in 1 2 3; do
        port=$(free_port) || return 1
        bus=$(free_port) || return 1
        start_logged "redis-node$i" 'Ready to accept connections' \
            redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$tmp" \
            --cluster-enabled yes --cluster-config-file "$tmp/nodes-$port.conf" --cluster-port "$bus" \
            --cluster-node-timeout 2000
        local started=$?
        cluster_pids+=("$logged_pid")
        [ "$started" -eq 0 ] || return 1
        cluster_ports+=("$port")
    done
    local nodes=()
    for port in "${cluster_ports[@]}"; do
        nodes+=("127.0.0.1:$port")
    done
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes \
        </dev/null >"$tmp/cluster-create.out" 2>&1 || return 1
    # The nodes take a moment to agree after create; there is nothing to wait on but asking.
    deadline=$((SECONDS + 30))
    while :; do
        ok=1
        for port in "${cluster_ports[@]}"; do
            redis-cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || ok=0
        done
        [ "$ok" -eq 1 ] && break
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.05
    done
    redis_url=redis://127.0.0.1:${cluster_ports[0]}
}

# stop_redis_cluster: a clean shutdown of start_redis_cluster's servers.
stop_redis_cluster() {
    local pid
    for pid in "${cluster_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${cluster_pids[@]}"; do
        wait "$pid" 2>/dev/null
    done
    cluster_pids=()
}
