#!/usr/bin/env bash
# The cluster benchmark (issue 12, item 9): two instances of a server joined through one Redis, a
# room spread over both, broadcasts measured end to end by bench/loadgen's cluster mode. gateway.hpp
# (bench/gateway_echo with gw::redis::cluster) against Node Socket.IO with @socket.io/redis-adapter
# (bench/peers/socketio_server.mjs), both on the same redis-server, in the same run. bench/README.md
# ("Cluster") describes the workload and how to read the table.
#
# usage: bench/cluster.sh [BUILD_DIR]          run it (BUILD_DIR or $BUILD, default build-bench;
#                                              configured with -Dbuildtype=release -Dbench=true
#                                              -Dredis=enabled if missing)
#        bench/cluster.sh --table RESULTS_FILE print the table of an earlier run again
#
# Knobs (environment variables, defaults in brackets):
#   SERVERS ["gateway socketio"]                 gateway: bench/gateway_echo; socketio: the Node peer
#   WORKLOADS ["cluster-sio-window cluster-sio-rate"]
#   REPS [3]  DURATION [5]  WARMUP [1]           repetitions and seconds of every measurement
#   MEMBERS [1000]                               room members, half on each node
#   PUBLISHERS [1]                               1: the publisher on node A; 2: one on each node
#   WINDOW [16]  BCAST_RATE [50]                 the window workload's outstanding broadcasts, the
#                                                rate workload's broadcasts per second
#   SERVER_A_CPU SERVER_B_CPU REDIS_CPU CLIENT_CPU   CPUs to pin to (taskset); with 4 CPUs or more
#                                                0 1 2 3, else 0 0 0 1 (the servers and Redis share
#                                                one core, the generator has the other)
#   CHECK [1]                                    1: a server whose probe (4 members, 2 per node,
#                                                must all get every broadcast) fails is not measured
#   QUICK [0]                                    1: REPS=1 DURATION=2 WARMUP=0.5 MEMBERS=200 unless set
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

note() { printf '== %s\n' "$*" >&2; }

# ================================================================ the table
# One table per workload: median (min-max) over the repetitions; gateway's ratio to each peer.
print_table() {
    awk '
function kv(   i, p) { delete F; for (i = 2; i <= NF; i++) { p = index($i, "="); if (p) F[substr($i, 1, p - 1)] = substr($i, p + 1) } }
function add(r, k, v) { if (v == "" || v + 0 < 0) return; n = ++N[r, k]; V[r, k, n] = v + 0 }
function sortk(r, k,   i, j, t, n) { n = N[r, k]
    for (i = 2; i <= n; i++) for (j = i; j > 1 && V[r, k, j - 1] > V[r, k, j]; j--) { t = V[r, k, j]; V[r, k, j] = V[r, k, j - 1]; V[r, k, j - 1] = t } }
function med(r, k,   n) { n = N[r, k]; if (!n) return ""; sortk(r, k)
    return (n % 2) ? V[r, k, (n + 1) / 2] : (V[r, k, n / 2] + V[r, k, n / 2 + 1]) / 2 }
function num(x, dec) { return sprintf("%." dec "f", x) }
function cell(r, k, dec,   n) { n = N[r, k]; if (!n) return "-"; med(r, k)
    if (n == 1 || V[r, k, 1] == V[r, k, n]) return num(med(r, k), dec)
    return num(med(r, k), dec) " (" num(V[r, k, 1], dec) "-" num(V[r, k, n], dec) ")" }
# gateway / peer: above 1 is better for rates, below 1 for latency and CPU per delivery.
function ratio(w, s, k,   a, b) { if (s == "gateway") return "ref"
    if (!((w, "gateway") in SEEN)) return "-"
    a = med(w SUBSEP "gateway", k); b = med(w SUBSEP s, k); if (a == "" || b == "" || b == 0) return "-"
    return "x" sprintf("%.2f", a / b) }
function flush_table(   r, i, j, wd, line, sep) {
    for (i = 1; i <= C; i++) wd[i] = 0
    for (r = 1; r <= R; r++) for (i = 1; i <= C; i++) if (length(T[r, i]) > wd[i]) wd[i] = length(T[r, i])
    for (r = 1; r <= R; r++) { line = "|"; for (i = 1; i <= C; i++) line = line sprintf(" %-" wd[i] "s |", T[r, i]); print line
        if (r == 1) { sep = "|"; for (i = 1; i <= C; i++) { sep = sep "-"; for (j = 0; j < wd[i]; j++) sep = sep "-"; sep = sep "-|" } print sep } }
    R = 0
}
function row(   i) { R++; for (i = 1; i <= C; i++) T[R, i] = ""; c = 0 }
/^# workload / { w = $3; if (!(w in DESC)) ORDER[++NW] = w; DESC[w] = substr($0, length("# workload " w) + 2); next }
/^# skip / { w = $3; SKIPS[w] = SKIPS[w] "\n  not measured: " substr($0, length("# skip " w) + 2); if (!(w in DESC)) { ORDER[++NW] = w; DESC[w] = "" } next }
/^# / { print "  " substr($0, 3); next }
$1 == "result" { kv(); w = F["workload"]; s = F["server"]; if (w == "" || s == "") next
    if (!(w in DESC)) { ORDER[++NW] = w; DESC[w] = "" }
    if (!((w, s) in SEEN)) { SEEN[w, s] = 1; ROWS[w, ++NR_[w]] = s }
    r = w SUBSEP s
    add(r, "rate", F["deliveries_per_s"]); add(r, "rate_a", F["deliveries_per_s_a"]); add(r, "rate_b", F["deliveries_per_s_b"])
    add(r, "bps", F["bcasts_per_s"]); add(r, "eff", F["deliveries_per_cpu_s"]); add(r, "effr", F["deliveries_per_cpu_s_with_redis"])
    add(r, "usd", F["server_us_per_delivery"])
    add(r, "cpu_a", F["server_a_cpu_pct"]); add(r, "cpu_b", F["server_b_cpu_pct"]); add(r, "cpu_r", F["redis_cpu_pct"])
    if (F["seconds"] > 0 && F["client_cpu_s"] != "") add(r, "gen", 100 * F["client_cpu_s"] / F["seconds"])
    add(r, "p50", F["p50_us"]); add(r, "p99", F["p99_us"]); add(r, "lp50", F["local_p50_us"]); add(r, "lp99", F["local_p99_us"])
    add(r, "rp50", F["remote_p50_us"]); add(r, "rp99", F["remote_p99_us"])
    ERR[w, s] += F["errors"] + F["lost_conns"]
}
END {
    for (k = 1; k <= NW; k++) { w = ORDER[k]
        print ""; print "## " w (DESC[w] != "" ? ": " DESC[w] : "")
        if (NR_[w] > 0) {
            # Throughput and CPU.
            C = split("server|deliveries/s|at A|at B|broadcasts/s|deliveries per server CPU-s|with Redis|server us/delivery|CPU % A|CPU % B|CPU % Redis|gen CPU %|errors|gw/peer deliveries/s|gw/peer per server CPU-s", H, "|")
            R = 1; for (i = 1; i <= C; i++) T[1, i] = H[i]
            for (i = 1; i <= NR_[w]; i++) { s = ROWS[w, i]; r = w SUBSEP s; row()
                T[R, ++c] = s; T[R, ++c] = cell(r, "rate", 0); T[R, ++c] = cell(r, "rate_a", 0); T[R, ++c] = cell(r, "rate_b", 0)
                T[R, ++c] = cell(r, "bps", 1); T[R, ++c] = cell(r, "eff", 0); T[R, ++c] = cell(r, "effr", 0); T[R, ++c] = cell(r, "usd", 2)
                T[R, ++c] = cell(r, "cpu_a", 1); T[R, ++c] = cell(r, "cpu_b", 1); T[R, ++c] = cell(r, "cpu_r", 1); T[R, ++c] = cell(r, "gen", 0)
                T[R, ++c] = ERR[w, s] + 0; T[R, ++c] = ratio(w, s, "rate"); T[R, ++c] = ratio(w, s, "eff") }
            flush_table()
            print ""
            # Latency, end to end (send timestamp in the payload to arrival at the member).
            C = split("server|p50 us|p99 us|local p50 us|local p99 us|over Redis p50 us|over Redis p99 us|gw/peer p50|gw/peer p99|gw/peer over Redis p99", H, "|")
            R = 1; for (i = 1; i <= C; i++) T[1, i] = H[i]
            for (i = 1; i <= NR_[w]; i++) { s = ROWS[w, i]; r = w SUBSEP s; row()
                T[R, ++c] = s; T[R, ++c] = cell(r, "p50", 0); T[R, ++c] = cell(r, "p99", 0); T[R, ++c] = cell(r, "lp50", 0)
                T[R, ++c] = cell(r, "lp99", 0); T[R, ++c] = cell(r, "rp50", 0); T[R, ++c] = cell(r, "rp99", 0)
                T[R, ++c] = ratio(w, s, "p50"); T[R, ++c] = ratio(w, s, "p99"); T[R, ++c] = ratio(w, s, "rp99") }
            flush_table()
        }
        if (SKIPS[w] != "") print substr(SKIPS[w], 2)
    }
    print ""
    print "Cells: median (min-max) over the repetitions. gw/peer = gateway / that server, medians: above 1 is better for"
    print "deliveries/s and per server CPU-s, below 1 is better for latency. Server CPU = both nodes'"'"' CPU time (from"
    print "/proc), Redis'"'"' is reported apart (\"with Redis\" adds it). CPU % = CPU time / window (100 = one core busy)."
    print "local = members on their publisher'"'"'s node; over Redis = members on the other node."
}' "$1"
}

if [ "${1:-}" = "--table" ]; then
    [ -f "${2:-}" ] || { echo "usage: bench/cluster.sh --table RESULTS_FILE" >&2; exit 2; }
    print_table "$2"
    exit 0
fi

# ================================================================ knobs
BUILD=${1:-${BUILD:-build-bench}}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac

if [ "${QUICK:-0}" = 1 ]; then
    : "${REPS:=1}" "${DURATION:=2}" "${WARMUP:=0.5}" "${MEMBERS:=200}"
fi
SERVERS=${SERVERS:-"gateway socketio"}
WORKLOADS=${WORKLOADS:-"cluster-sio-window cluster-sio-rate"}
REPS=${REPS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
MEMBERS=${MEMBERS:-1000}
PUBLISHERS=${PUBLISHERS:-1}
WINDOW=${WINDOW:-16}
BCAST_RATE=${BCAST_RATE:-50}
CHECK=${CHECK:-1}
if [ "$(nproc)" -ge 4 ]; then
    : "${SERVER_A_CPU:=0}" "${SERVER_B_CPU:=1}" "${REDIS_CPU:=2}" "${CLIENT_CPU:=3}"
else
    : "${SERVER_A_CPU:=0}" "${SERVER_B_CPU:=0}" "${REDIS_CPU:=0}" "${CLIENT_CPU:=1}"
fi

command -v redis-server >/dev/null || { note "redis-server missing (Debian: redis-server)"; exit 1; }

# ================================================================ build
if [ ! -d "$BUILD" ]; then
    note "configuring $BUILD"
    meson setup "$BUILD" -Dbuildtype=release -Dbench=true -Dredis=enabled >&2 || { note "meson setup failed"; exit 1; }
fi
note "building loadgen gateway_echo in $BUILD"
meson compile -C "$BUILD" loadgen gateway_echo >&2 || note "the build failed: what was built before is measured"
LOADGEN="$BUILD/bench/loadgen"
[ -x "$LOADGEN" ] || { note "no $LOADGEN: was the build configured with -Dbench=true?"; exit 1; }

# ================================================================ pinning, output
PIN_A=() PIN_B=() PIN_R=() PIN_C=() PINNING="unpinned"
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    PIN_A=(taskset -c "$SERVER_A_CPU") PIN_B=(taskset -c "$SERVER_B_CPU") PIN_R=(taskset -c "$REDIS_CPU") PIN_C=(taskset -c "$CLIENT_CPU")
    PINNING="node A on CPU $SERVER_A_CPU, node B on CPU $SERVER_B_CPU, redis-server on CPU $REDIS_CPU, generator on CPU $CLIENT_CPU"
else
    note "taskset missing or fewer than 2 CPUs: running unpinned (figures are less meaningful)"
fi
need_fds=$((MEMBERS + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need_fds" ]; then
    ulimit -n "$need_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
load1=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load1" 'BEGIN { exit !(l > 0.5) }'; then
    note "load average is $load1: other work on this machine skews rates and latency"
fi

OUT="$BUILD/bench/results"
mkdir -p "$OUT"
STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS="$OUT/cluster-$STAMP.txt"
LOG="$OUT/cluster-loadgen-$STAMP.log"

pkg_version() { node -p "require('$ROOT/node_modules/$1/package.json').version" 2>/dev/null || echo none; }
deb_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo none; }
compiler=$(meson introspect --targets "$BUILD" 2>/dev/null |
    python3 -c 'import json, sys
for t in json.load(sys.stdin):
    for s in t.get("target_sources", []):
        if s.get("language") == "cpp": print(s["compiler"][0]); sys.exit()' 2>/dev/null)
opts=$(meson introspect --buildoptions "$BUILD" 2>/dev/null |
    python3 -c 'import json, sys; o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
print("buildtype=%s optimization=%s cpp_std=%s b_ndebug=%s redis=%s" % (o["buildtype"], o["optimization"], o["cpp_std"], o.get("b_ndebug"), o.get("redis")))' 2>/dev/null)
gw_version=$(sed -n 's/^#define GATEWAY_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\).*/\2/p' "$ROOT/gateway.hpp" | paste -sd.)
asio_version=$(sed -n 's/^#define ASIO_VERSION [0-9]* \/\/ //p' /usr/include/asio/version.hpp 2>/dev/null)
{
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -srm) cpus=$(nproc) $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
    echo "# commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (dirty)') gateway.hpp ${gw_version:-?}"
    echo "# compiler: $( ${compiler:-c++} --version 2>/dev/null | head -n1) [$opts]"
    echo "# libraries: Asio ${asio_version:-?} (libasio-dev $(deb_version libasio-dev)), hiredis $(deb_version libhiredis-dev), nlohmann/json $(deb_version nlohmann-json3-dev)"
    echo "# $(redis-server --version | cut -d' ' -f1-3); node $(node --version 2>/dev/null || echo none): socket.io $(pkg_version socket.io), @socket.io/redis-adapter $(pkg_version @socket.io/redis-adapter), redis (node-redis) $(pkg_version redis)"
    echo "# $PINNING; REPS=$REPS DURATION=$DURATION WARMUP=$WARMUP MEMBERS=$MEMBERS PUBLISHERS=$PUBLISHERS"
    echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$RESULTS"

# ================================================================ processes
# Every process this script starts is in PIDS until it is stopped; the EXIT trap stops the rest.
declare -A PIDS=()
stop_pid() {  # PID LABEL: SIGTERM, SIGKILL after 5 s; notes a non-zero status
    local pid=$1 rc
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        note "$2 ignored SIGTERM for 5 s: killing it"
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    rc=$?
    unset "PIDS[$pid]"
    [ "$rc" -eq 0 ] || note "$2 exited with status $rc on SIGTERM (expected 0)"
}
cleanup() {
    local pid
    for pid in "${!PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${!PIDS[@]}"; do
        for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

redis_ping() {  # PORT: true when Redis answers PING
    if command -v redis-cli >/dev/null; then
        [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]
    else
        local line
        { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
        printf 'PING\r\n' >&3
        read -r -t 1 line <&3
        exec 3>&-
        [ "${line%$'\r'}" = "+PONG" ]
    fi
}

# Redis: our own, on a free loopback port, no persistence; a few tries in case the port is taken
# between choosing it and binding it.
RPID="" RPORT=""
start_redis() {
    local log="$OUT/cluster-redis.log"
    for _ in 1 2 3 4 5; do
        RPORT=$(free_port)
        echo "== $(date +%H:%M:%S) port $RPORT" >> "$log"
        "${PIN_R[@]}" redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --protected-mode yes \
            --daemonize no --loglevel warning >> "$log" 2>&1 &
        RPID=$!
        PIDS[$RPID]=redis
        for _ in $(seq 1 50); do
            redis_ping "$RPORT" && return 0
            kill -0 "$RPID" 2>/dev/null || break
            sleep 0.1
        done
        stop_pid "$RPID" redis-server 2>/dev/null
    done
    note "redis-server did not start (see $log)"
    return 1
}

# server_cmd NAME: sets CMD, or WHY and returns 1.
server_cmd() {
    CMD=() WHY=""
    case "$1" in
        gateway)
            CMD=("$BUILD/bench/gateway_echo")
            [ -x "${CMD[0]}" ] || { WHY="${CMD[0]} not built"; return 1; } ;;
        socketio)
            command -v node >/dev/null || { WHY="node missing"; return 1; }
            for p in socket.io @socket.io/redis-adapter redis; do
                [ -d "$ROOT/node_modules/$p" ] || { WHY="node_modules/$p missing (run npm ci)"; return 1; }
            done
            CMD=(node "$ROOT/bench/peers/socketio_server.mjs") ;;
        *) WHY="unknown server"; return 1 ;;
    esac
}

# start_node LABEL PIN...: starts CMD with REDIS_URL on port 0; sets NPID and NPORT.
start_node() {
    local label=$1 log="$OUT/cluster-$1.server.log" skip
    shift
    echo "== $(date +%H:%M:%S) REDIS_URL=redis://127.0.0.1:$RPORT $* ${CMD[*]} 0" >> "$log"
    skip=$(wc -l < "$log")
    ( cd "$ROOT" && REDIS_URL="redis://127.0.0.1:$RPORT" exec "$@" "${CMD[@]}" 0 ) >> "$log" 2>&1 &
    NPID=$!
    PIDS[$NPID]=$label
    NPORT=""
    for _ in $(seq 1 200); do
        NPORT=$(tail -n +"$((skip + 1))" "$log" | sed -n 's/^listening on port \([0-9][0-9]*\).*/\1/p' | head -n1)
        [ -n "$NPORT" ] && break
        kill -0 "$NPID" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$NPORT" ]; then
        note "$label did not start (see $log)"
        stop_pid "$NPID" "$label"
        return 1
    fi
    # A gateway_echo built without the Redis parts ignores REDIS_URL: that is not a cluster.
    if tail -n +"$((skip + 1))" "$log" | grep -q 'REDIS_URL ignored'; then
        note "$label was built without the Redis parts (hiredis missing? configure with -Dredis=enabled)"
        stop_pid "$NPID" "$label"
        return 1
    fi
}

# start_pair NAME: nodes A and B; sets APID APORT BPID BPORT.
start_pair() {
    start_node "$1-A" "${PIN_A[@]}" || return 1
    APID=$NPID APORT=$NPORT
    if ! start_node "$1-B" "${PIN_B[@]}"; then stop_pid "$APID" "$1-A"; return 1; fi
    BPID=$NPID BPORT=$NPORT
}
stop_pair() { stop_pid "$APID" "$1-A"; stop_pid "$BPID" "$1-B"; }

run_loadgen() {  # WORKLOAD SERVER LOADGEN_ARGS...
    local w=$1 s=$2 out line
    shift 2
    echo "# $w: loadgen $*" >> "$LOG"
    out=$(timeout 300 "${PIN_C[@]}" "$LOADGEN" "$@" 2>>"$LOG")
    line=$(grep '^result ' <<< "$out")
    if [ -n "$line" ]; then
        line="result workload=$w ${line#result }"
        printf '%s\n' "$line" >> "$RESULTS"
        printf '   %s\n' "$line" | cut -c1-240 >&2
    else
        note "loadgen for $s produced no result (see $LOG)"
    fi
}

workload() {  # NAME: sets LG and DESC
    local who="$PUBLISHERS publisher$([ "$PUBLISHERS" = 1 ] && echo ' on A' || echo 's, one on each node')"
    case "$1" in
        cluster-sio-window)
            LG=(--window "$WINDOW")
            DESC="Socket.IO, 2 nodes + Redis, $MEMBERS room members (half on each node), $who, 64 B, at most $WINDOW broadcasts outstanding (one is outstanding until every member on both nodes has it)" ;;
        cluster-sio-rate)
            LG=(--rate "$BCAST_RATE")
            DESC="Socket.IO, 2 nodes + Redis, $MEMBERS room members (half on each node), $who, 64 B, $BCAST_RATE broadcasts/s (equal load: latency and CPU)" ;;
        *) return 1 ;;
    esac
}

# ================================================================ run
start_redis || exit 1
note "redis-server on port $RPORT (pid $RPID)"
echo "# redis-server on 127.0.0.1:$RPORT, shared by every server in this run" >> "$RESULTS"

t_begin=$(date +%s)
for s in $SERVERS; do
    if ! server_cmd "$s"; then
        note "$s: $WHY"
        for w in $WORKLOADS; do echo "# skip $w $s: $WHY" >> "$RESULTS"; done
        continue
    fi
    # One pair per workload, fresh; the probe first.
    for w in $WORKLOADS; do
        workload "$w" || { note "unknown workload $w"; continue; }
        grep -q "^# workload $w " "$RESULTS" || echo "# workload $w $DESC" >> "$RESULTS"
        note "$w: $s"
        if ! start_pair "$s"; then echo "# skip $w $s: did not start (see $OUT/cluster-$s-*.server.log)" >> "$RESULTS"; continue; fi
        common=(cluster --proto socketio --port "$APORT" --port-b "$BPORT" --publishers "$PUBLISHERS")
        if [ "$CHECK" != 0 ] && ! "$LOADGEN" "${common[@]}" --name probe --members 4 --window 2 --seconds 0.3 --warmup 0 --timeout 2 >> "$LOG" 2>&1; then
            note "$s: the cluster probe failed (see $LOG)"
            echo "# skip $w $s: the cluster probe failed, a broadcast did not reach every member on both nodes (see $LOG)" >> "$RESULTS"
            stop_pair "$s"
            continue
        fi
        for _ in $(seq 1 "$REPS"); do
            run_loadgen "$w" "$s" "${common[@]}" "${LG[@]}" --name "$s" --members "$MEMBERS" --size 64 \
                --seconds "$DURATION" --warmup "$WARMUP" --pid "$APID" --pid-b "$BPID" --redis-pid "$RPID"
            sleep 0.2
        done
        stop_pair "$s"
    done
done
stop_pid "$RPID" redis-server
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg); measurements took $(( $(date +%s) - t_begin )) s" >> "$RESULTS"

echo
echo "gateway.hpp cluster benchmark. Raw lines: $RESULTS (bench/cluster.sh --table FILE prints this table again)"
print_table "$RESULTS" | tee "$OUT/cluster-table-$STAMP.md"
