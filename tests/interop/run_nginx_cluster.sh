#!/usr/bin/env bash
# run_nginx_cluster.sh VARIANT INSTANCE
#
# Two cluster instances behind nginx, configured from examples/cluster/nginx.conf, with a
# redis-server of the test's own: tests/interop/nginx_cluster.mjs chats across them through nginx.
#
#   VARIANT   ip_hash:   the example as it is (ip_hash); clients with socket.io-client's default
#                        transports (polling, then the upgrade) from 127.0.0.1 and 127.0.1.1;
#             websocket: the example without ip_hash (round-robin); WebSocket-only clients.
#             polling:   the example without ip_hash (round-robin, no stickiness at all);
#                        polling-only clients, whose requests land on either instance: the
#                        instance without the session forwards them to the other through Redis
#                        (gateway.hpp's cluster does; Node's adapter does not: `node` fails it).
#                        python-socketio clients chat through it too, when python3-socketio is there.
#   INSTANCE  the chat server (04_chat; contract: `INSTANCE PORT` with REDIS_URL in the
#             environment, "listening on port N", exit 0 on SIGTERM), or `node`: two
#             node_cluster_peer.mjs instances stand in (checks the harness and nginx alone).
#
# After the run, nginx's access log must show never a 4xx/5xx answer and, for ip_hash and
# websocket, each Socket.IO client served by one instance only (every request of it: the
# handshake, the polls, the upgrade), the two clients on different instances, and (ip_hash) each
# client's requests from its own address; for polling, each client's requests spread over both
# instances (so that some were forwarded).
#
# Environment: NODE (default: node), NGINX (default: nginx, else /usr/sbin/nginx), PYTHON (the
# polling variant's python-socketio clients; default: /usr/bin/python3), CLUSTER_TIMEOUT_MS
# (passed on to the clients).
# Exit status: 0 all good, 1 something failed, 2 usage, 77 (meson's "skip") when node, nginx,
# redis-server or the npm packages are missing.
set -u

usage() {
    echo "usage: $0 ip_hash|websocket|polling INSTANCE|node" >&2
    exit 2
}
[ "$#" -eq 2 ] || usage
variant=$1
case $variant in
    ip_hash | websocket | polling) ;;
    *) usage ;;
esac
instance=$2
protocol=chat
if [ "$instance" = node ]; then
    protocol=peer
else
    case $instance in
        /*) ;;
        *) instance=$PWD/$instance ;;   # a bare name means the current directory, not PATH
    esac
    if [ ! -x "$instance" ] || [ -d "$instance" ]; then
        echo "run_nginx_cluster.sh: '$2' is not an executable file" >&2
        exit 1
    fi
fi

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd) || exit 1
root=$(cd -- "$script_dir/../.." && pwd) || exit 1

node=${NODE:-node}
python=${PYTHON:-/usr/bin/python3}
nginx=${NGINX:-}
if [ -z "$nginx" ]; then
    nginx=$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; })
fi
for need in "$node" redis-server "$nginx"; do
    if [ -z "$need" ] || ! command -v "$need" >/dev/null 2>&1; then
        echo "SKIP: ${need:-nginx} not found (Debian: apt-get install nginx-light redis-server nodejs)" >&2
        exit 77
    fi
done
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
init_tmp nginx_cluster
label="nginx cluster ($variant, $protocol)"

if ! start_redis; then
    fail "redis-server did not start"
    show_file "redis-server output" "$tmp/redis3.out"
    finish "$label"
fi

# From the repository root: 04_chat finds socket.io-client's bundle there, node the packages.
cd -- "$root" || exit 1
ports=()
pids=()
for name in one two; do
    if [ "$instance" = node ]; then
        REDIS_URL=$redis_url start_server "$name" "$node" tests/interop/node_cluster_peer.mjs 0
    else
        REDIS_URL=$redis_url start_server "$name" "$instance" 0
    fi
    pids+=("$name=$server_pid")
    if [ -z "$server_port" ]; then
        fail "instance $name did not print 'listening on port N'"
        stop_servers "${pids[@]}"
        finish "$label" one two
    fi
    ports+=("$server_port")
done

# The example, with the test's ports (and without ip_hash for round-robin), inside a main
# configuration of the test's own: everything under $tmp/nginx, in the foreground.
conf=$tmp/nginx
mkdir -p "$conf/logs" "$conf/temp"
sed -e "s/server 127\.0\.0\.1:3001;/server 127.0.0.1:${ports[0]};/" \
    -e "s/server 127\.0\.0\.1:3002;/server 127.0.0.1:${ports[1]};/" \
    -e "s/^\(\s*\)listen 8080;/\1listen 127.0.0.1:@NGINX_PORT@;/" \
    "$root/examples/cluster/nginx.conf" >"$conf/site.conf.in"
if [ "$variant" != ip_hash ]; then
    sed -i -e '/^\s*ip_hash;/d' "$conf/site.conf.in"
fi
for want in "127.0.0.1:${ports[0]};" "127.0.0.1:${ports[1]};" "@NGINX_PORT@"; do
    grep -qF -- "$want" "$conf/site.conf.in" || fail "examples/cluster/nginx.conf: could not put $want in (did its upstream or listen lines change?)"
done
user_line=
if [ "$(id -u)" -eq 0 ]; then
    user_line="user $(id -un) $(id -gn);"   # workers as root can read the test's 0700 directory
fi
cat >"$conf/nginx.conf" <<EOF
$user_line
worker_processes 1;
pid $conf/nginx.pid;
error_log stderr notice;
events { worker_connections 256; }
http {
    log_format upstreams '\$remote_addr \$upstream_addr \$status "\$request_uri" \$request_method';
    access_log $conf/logs/access.log upstreams;
    client_body_temp_path $conf/temp/client;
    proxy_temp_path $conf/temp/proxy;
    fastcgi_temp_path $conf/temp/fastcgi;
    uwsgi_temp_path $conf/temp/uwsgi;
    scgi_temp_path $conf/temp/scgi;
    include $conf/site.conf;
}
EOF

nginx_pid=
if [ "$status" -eq 0 ]; then
    for attempt in 1 2 3; do
        nginx_port=$(free_port)
        sed "s/@NGINX_PORT@/$nginx_port/" "$conf/site.conf.in" >"$conf/site.conf"
        # -e: the error log before the configuration is read (Debian's default is under /var/log).
        if start_logged "nginx$attempt" 'start worker process|\[emerg\]' \
            "$nginx" -e stderr -p "$conf/" -c "$conf/nginx.conf" -g 'daemon off;' &&
            [[ $logged_line != *'[emerg]'* ]]; then
            nginx_pid=$logged_pid
            break
        fi
        wait "$logged_pid" 2>/dev/null
        grep -q 'Address already in use' "$tmp/nginx$attempt.out" || break
    done
    if [ -z "$nginx_pid" ]; then
        fail "nginx did not start"
        show_file "nginx output" "$tmp/nginx$attempt.out"
    fi
fi

if [ -n "$nginx_pid" ]; then
    echo "=== nginx_cluster.mjs $protocol $variant $nginx_port (instances ${ports[*]}, redis $redis_url)"
    timeout -k 5 120 "$node" tests/interop/nginx_cluster.mjs "$protocol" "$variant" "$nginx_port" \
        </dev/null >"$tmp/client.out" 2>&1
    rc=$?
    cat -- "$tmp/client.out"
    [ "$rc" -eq 0 ] || fail "nginx_cluster.mjs exited with status $rc"
    if [ "$variant" = polling ] && [ "$protocol" = chat ]; then
        # python-socketio over polling through the same nginx, when Debian's python3-socketio is there.
        echo "=== nginx_cluster_py.py $nginx_port"
        timeout -k 5 60 "$python" tests/interop/nginx_cluster_py.py "$nginx_port" </dev/null >"$tmp/py.out" 2>&1
        rc=$?
        cat -- "$tmp/py.out"
        if [ "$rc" -eq 2 ]; then
            echo "(python-socketio not available to $python: its part skipped)"
        else
            [ "$rc" -eq 0 ] || fail "nginx_cluster_py.py exited with status $rc"
            grep '^client ' "$tmp/py.out" >>"$tmp/client.out"
        fi
    fi

    # A graceful stop: nginx finishes (and logs) the connections the clients closed, then exits 0.
    kill -QUIT "$nginx_pid"
    ( sleep 15; kill -KILL "$nginx_pid" 2>/dev/null ) </dev/null >/dev/null 2>&1 &
    watchdog=$!
    wait "$nginx_pid"
    rc=$?
    kill "$watchdog" 2>/dev/null
    wait "$watchdog" 2>/dev/null
    [ "$rc" -eq 0 ] || fail "nginx exited with status $rc after SIGQUIT"

    # Who served whom, by the access log.
    declare -A served
    while read -r _ name address; do
        lines=$(grep -F "client=$name" "$conf/logs/access.log")
        if [ -z "$lines" ]; then
            fail "access log: no request of $name"
            continue
        fi
        upstreams=$(awk '{print $2}' <<<"$lines" | sort -u)
        if [ "$variant" = polling ] && [[ $name == carol || $name == erin ]] &&
            tail -n1 <<<"$lines" | grep -qE ' 400 .* GET$'; then
            # python-engineio 4.3.4 may send one more GET as it disconnects, racing its own close
            # packet: that GET reaches the owner through the other instance, after the close, and is
            # refused as unknown (with a sticky balancer it loses the same race, just more rarely).
            # Its client is gone by then: the last request may be that one.
            lines=$(sed '$d' <<<"$lines")
        fi
        if [ "$variant" = polling ]; then
            if [ "$(wc -l <<<"$upstreams")" -ne 2 ]; then
                fail "access log: $name's requests did not spread over both instances: $(tr '\n' ' ' <<<"$upstreams")"
            fi
        elif [ "$(wc -l <<<"$upstreams")" -ne 1 ]; then
            fail "access log: $name's requests went to more than one instance: $(tr '\n' ' ' <<<"$upstreams")"
        fi
        if awk '$3 >= 400 { bad = 1 } END { exit !bad }' <<<"$lines"; then
            fail "access log: $name got error answers: $(awk '$3 >= 400' <<<"$lines" | tr '\n' ' ')"
        fi
        if [ "$variant" = ip_hash ] && awk -v a="$address" '$1 != a { bad = 1 } END { exit !bad }' <<<"$lines"; then
            fail "access log: requests of $name from another address than $address"
        fi
        if [ "$variant" = polling ]; then
            echo "access log: $name ($address): $(wc -l <<<"$lines") requests, to $(tr '\n' ' ' <<<"$upstreams")"
            continue
        fi
        served[$name]=$(head -n1 <<<"$upstreams")
        echo "access log: $name ($address): $(wc -l <<<"$lines") requests, all to ${served[$name]}"
    done < <(grep '^client ' "$tmp/client.out")
    if [ "$variant" != polling ] && [ -n "${served[alice]:-}" ] && [ "${served[alice]}" = "${served[bob]:-}" ]; then
        fail "access log: alice and bob were both served by ${served[alice]}: the test crossed no instances"
    fi
fi

stop_servers "${pids[@]}"
stop_redis
[ -n "$nginx_pid" ] || show_file "nginx output" "$tmp/nginx1.out"
finish "$label" one two
