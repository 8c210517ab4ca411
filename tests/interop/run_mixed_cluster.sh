#!/usr/bin/env bash
# run_mixed_cluster.sh KIND_A KIND_B [CLUSTER_SERVER]
#
# Two nodes of one Socket.IO cluster over a redis-server of the test's own (a free loopback port),
# checked by tests/interop/mixed_cluster.mjs with socket.io-client (and WsAdapter) clients on each.
#
#   KIND_A, KIND_B  node: tests/interop/node_cluster_peer.mjs (@socket.io/redis-adapter 8);
#                   cpp:  CLUSTER_SERVER (tests/interop/cluster_server.cpp: gw::redis::cluster).
#                   `node node` is the baseline that proves the script; `node cpp` mixes them.
#   CLUSTER_SERVER  required when a KIND is cpp; contract: `CLUSTER_SERVER PORT` with REDIS_URL in
#                   the environment, "listening on port N" once listening and subscribed, exit 0
#                   on SIGTERM.
#
# Environment: NODE (default: node), CLUSTER_TIMEOUT_MS (passed on to the client), CLUSTER_MODE
# (sharded: both kinds use the sharded adapter), REDIS_CLUSTER=1 (a Redis Cluster of three masters
# instead of one redis-server; node A is given the first node's URL, node B the second's; with
# CLUSTER_MODE=sharded).
# Exit status: 0 all good, 1 something failed, 2 usage, 77 (meson's "skip") when node,
# redis-server (and for REDIS_CLUSTER redis-cli) or the npm packages are missing.
set -u

usage() {
    echo "usage: $0 node|cpp node|cpp [CLUSTER_SERVER]" >&2
    exit 2
}
if [ "$#" -lt 2 ] || [ "$#" -gt 3 ]; then
    usage
fi
kinds=("$1" "$2")
cluster_bin=${3:-}
for kind in "${kinds[@]}"; do
    case $kind in
        node) ;;
        cpp) [ -n "$cluster_bin" ] || usage ;;
        *) usage ;;
    esac
done
if [ -n "$cluster_bin" ]; then
    case $cluster_bin in
        */*) ;;
        *) cluster_bin=./$cluster_bin ;;
    esac
    if [ ! -x "$cluster_bin" ]; then
        echo "run_mixed_cluster.sh: '$3' is not an executable file" >&2
        exit 1
    fi
fi

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd) || exit 1
root=$(cd -- "$script_dir/../.." && pwd) || exit 1

node=${NODE:-node}
if ! command -v "$node" >/dev/null 2>&1; then
    echo "SKIP: node not found" >&2
    exit 77
fi
if ! command -v redis-server >/dev/null 2>&1; then
    echo "SKIP: redis-server not found (Debian: apt-get install redis-server)" >&2
    exit 77
fi
redis_cluster=${REDIS_CLUSTER:-}
if [ "$redis_cluster" = 1 ] && ! command -v redis-cli >/dev/null 2>&1; then
    echo "SKIP: redis-cli not found (Debian: apt-get install redis-tools)" >&2
    exit 77
fi
for package in socket.io socket.io-client @socket.io/redis-adapter redis ws; do
    if [ ! -d "$root/node_modules/$package" ]; then
        echo "SKIP: $root/node_modules/$package missing (run 'npm ci' in the repository root)" >&2
        exit 77
    fi
done

# shellcheck source=tests/interop/lib.sh
. "$script_dir/lib.sh"
# shellcheck source=tests/interop/cluster_lib.sh
. "$script_dir/cluster_lib.sh"
init_tmp mixed_cluster
label="mixed cluster (${kinds[0]} + ${kinds[1]})"

if [ "$redis_cluster" = 1 ]; then
    label="$label over a Redis Cluster"
    if ! start_redis_cluster; then
        fail "the Redis Cluster did not start"
        for i in 1 2 3; do
            show_file "redis node $i output" "$tmp/redis-node$i.out"
        done
        show_file "redis-cli --cluster create" "$tmp/cluster-create.out"
        stop_redis_cluster
        finish "$label"
    fi
    redis_urls=("redis://127.0.0.1:${cluster_ports[0]}" "redis://127.0.0.1:${cluster_ports[1]}")
else
    if ! start_redis; then
        fail "redis-server did not start"
        show_file "redis-server output" "$tmp/redis3.out"
        finish "$label"
    fi
    redis_urls=("$redis_url" "$redis_url")
fi

# The nodes, A and B (a node peer resolves its imports from its own path, under the repository root).
names=(a b)
ports=()
pids=()
for i in 0 1; do
    name=${names[$i]}
    if [ "${kinds[$i]}" = node ]; then
        REDIS_URL=${redis_urls[$i]} start_server "$name" "$node" "$root/tests/interop/node_cluster_peer.mjs" 0
    else
        REDIS_URL=${redis_urls[$i]} start_server "$name" "$cluster_bin" 0
    fi
    if [ -z "$server_port" ]; then
        fail "node ${name^^} (${kinds[$i]}) did not print 'listening on port N'"
        pids+=("$name=$server_pid")
        stop_servers "${pids[@]}"
        stop_redis
        stop_redis_cluster
        finish "$label" "${names[@]:0:$((i + 1))}"
    fi
    ports+=("$server_port")
    pids+=("$name=$server_pid")
done

echo "=== mixed_cluster.mjs ${kinds[0]} ${ports[0]} ${kinds[1]} ${ports[1]} (redis $redis_url)"
(cd -- "$root" && timeout -k 5 300 "$node" tests/interop/mixed_cluster.mjs \
    "${kinds[0]}" "${ports[0]}" "${kinds[1]}" "${ports[1]}") </dev/null >"$tmp/client.out" 2>&1
rc=$?
cat -- "$tmp/client.out"
if [ "$rc" -ne 0 ]; then
    fail "mixed_cluster.mjs exited with status $rc"
fi

stop_servers "${pids[@]}"
stop_redis
stop_redis_cluster

# serverSideEmit: node A's peer sent it; node B's peer must have printed it.
token=$(sed -n 's/^server-event-token //p' "$tmp/client.out")
if [ -n "$token" ]; then
    if grep -q "\"serverSideEvent\":\"ping-servers\".*\"$token\"" "$tmp/b.out"; then
        echo "PASS serverSideEmit: node B printed the event with $token"
    else
        fail "serverSideEmit: node B did not print the event with $token"
    fi
fi
back=$(sed -n 's/^server-event-token-back //p' "$tmp/client.out")
if [ -n "$back" ]; then
    if grep -q "\"serverSideEvent\":\"ping-servers\".*\"$back\"" "$tmp/a.out"; then
        echo "PASS serverSideEmit: node A printed the event node B sent, with $back"
    else
        fail "serverSideEmit: node A did not print the event with $back"
    fi
else
    fail "serverSideEmit: the client did not send the second event"
fi

finish "$label" "${names[@]}"
