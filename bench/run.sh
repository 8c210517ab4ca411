#!/usr/bin/env bash
# Echo benchmark: gateway.hpp's examples/01_echo against peer servers, all
# measured in the same run on the same machine. See bench/README.md.
#
# usage: bench/run.sh [BUILD_DIR]
#   BUILD_DIR (or $BUILD) defaults to build-bench; it is configured with
#   `meson setup BUILD_DIR -Dbuildtype=release -Dbench=true` if missing.
# Environment knobs (defaults in brackets):
#   SERVERS="gateway gateway-events websocketpp beast ws"   which servers to try
#                (gateway-events: the same echo as JSON events through the gateway)
#   REPS [3]  DURATION [5]  WARMUP [1]       echo repetitions and seconds
#   CONNS [100]  INFLIGHT [10]  SIZE [64]    echo load shape
#   IDLE_CONNS [10000]                       idle-memory connections (0 skips)
#   SERVER_CPU [0]  CLIENT_CPU [1]           CPUs to pin to (taskset)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-${BUILD:-build-bench}}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac

SERVERS=${SERVERS:-"gateway gateway-events websocketpp beast ws"}
REPS=${REPS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CONNS=${CONNS:-100}
INFLIGHT=${INFLIGHT:-10}
SIZE=${SIZE:-64}
IDLE_CONNS=${IDLE_CONNS:-10000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

note() { printf '== %s\n' "$*" >&2; }

# ---------------------------------------------------------------- build
if [ ! -d "$BUILD" ]; then
    note "configuring $BUILD"
    meson setup "$BUILD" -Dbuildtype=release -Dbench=true >&2 || { note "meson setup failed"; exit 1; }
fi
note "building in $BUILD"
meson compile -C "$BUILD" >&2 || { note "build failed"; exit 1; }

LOADGEN="$BUILD/bench/loadgen"
[ -x "$LOADGEN" ] || { note "no $LOADGEN: was the build configured with -Dbench=true?"; exit 1; }

# ---------------------------------------------------------------- limits and pinning
# Each idle connection costs one fd in the generator and one in the server.
need_fds=$((IDLE_CONNS + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need_fds" ]; then
    ulimit -n "$need_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need_fds" ]; then
    new=$(( $(ulimit -n) - 1024 ))
    [ "$new" -lt 0 ] && new=0
    note "open-file limit $(ulimit -n) is too low for $IDLE_CONNS idle connections; using $new"
    IDLE_CONNS=$new
fi

SRV_PIN=() CLI_PIN=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    SRV_PIN=(taskset -c "$SERVER_CPU")
    CLI_PIN=(taskset -c "$CLIENT_CPU")
else
    note "taskset missing or fewer than 2 CPUs: running unpinned (figures are less meaningful)"
fi

load1=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load1" 'BEGIN { exit !(l > 0.5) }'; then
    note "load average is $load1: other work on this machine skews msgs/s and latency (see the server CPU % column)"
fi

OUT="$BUILD/bench/results"
mkdir -p "$OUT"
STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS="$OUT/results-$STAMP.txt"
{
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -srm) cpus=$(nproc) $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
    echo "# commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (dirty)')"
    echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$RESULTS"

# ---------------------------------------------------------------- servers
server_cmd() {  # prints nothing and returns 1 when the server is unavailable
    case "$1" in
        gateway)     [ -x "$BUILD/examples/01_echo" ] && CMD=("$BUILD/examples/01_echo") ;;
        gateway-events) [ -x "$BUILD/bench/gateway_echo" ] && CMD=("$BUILD/bench/gateway_echo") && EXTRA=(--event echo) ;;
        websocketpp) [ -x "$BUILD/bench/websocketpp_echo" ] && CMD=("$BUILD/bench/websocketpp_echo") ;;
        beast)       [ -x "$BUILD/bench/beast_echo" ] && CMD=("$BUILD/bench/beast_echo") ;;
        ws)          command -v node >/dev/null && [ -d "$ROOT/node_modules/ws" ] &&
                         CMD=(node "$ROOT/bench/peers/ws_echo.mjs") ;;
        *) return 1 ;;
    esac
}

why_missing() {
    case "$1" in
        gateway)     echo "$BUILD/examples/01_echo not built" ;;
        gateway-events) echo "$BUILD/bench/gateway_echo not built (nlohmann-json3-dev missing?)" ;;
        websocketpp) echo "$BUILD/bench/websocketpp_echo not built (libwebsocketpp-dev missing?)" ;;
        beast)       echo "$BUILD/bench/beast_echo not built (libboost-dev missing?)" ;;
        ws)          echo "node or $ROOT/node_modules/ws missing (run npm ci)" ;;
        *)           echo "unknown server" ;;
    esac
}

SPID=""
start_server() {  # name; sets SPID and PORT
    local name=$1 log="$OUT/$1.server.log"
    ( cd "$ROOT" && exec "${SRV_PIN[@]}" "${CMD[@]}" 0 ) > "$log" 2>&1 &
    SPID=$!
    PORT=""
    for _ in $(seq 1 150); do
        PORT=$(sed -n 's/^listening on port \([0-9][0-9]*\).*/\1/p' "$log" | head -n1)
        [ -n "$PORT" ] && return 0
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.1
    done
    note "$name did not start (see $log)"
    kill -TERM "$SPID" 2>/dev/null
    wait "$SPID" 2>/dev/null
    SPID=""
    return 1
}

stop_server() {  # name
    local name=$1 rc
    [ -n "$SPID" ] || return 0
    kill -TERM "$SPID" 2>/dev/null
    for _ in $(seq 1 50); do
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SPID" 2>/dev/null; then
        note "$name ignored SIGTERM for 5 s: killing it"
        kill -KILL "$SPID" 2>/dev/null
    fi
    wait "$SPID" 2>/dev/null
    rc=$?
    [ "$rc" -eq 0 ] || note "$name exited with status $rc on SIGTERM (expected 0)"
    SPID=""
}
trap '[ -n "$SPID" ] && kill -TERM "$SPID" 2>/dev/null' EXIT

run_loadgen() {  # args...; appends the result line, echoes it to stderr
    local line
    line=$("${CLI_PIN[@]}" "$LOADGEN" "$@" 2>>"$OUT/loadgen.log" | grep '^result ')
    if [ -n "$line" ]; then
        printf '%s\n' "$line" >> "$RESULTS"
        printf '   %s\n' "$line" >&2
    else
        note "loadgen $1 produced no result (see $OUT/loadgen.log)"
    fi
}

SKIPPED=()
for name in $SERVERS; do
    CMD=()
    EXTRA=()
    if ! server_cmd "$name"; then
        note "skipping $name: $(why_missing "$name")"
        SKIPPED+=("$name")
        continue
    fi
    note "$name: ${CMD[*]}"
    start_server "$name" || { SKIPPED+=("$name (failed to start)"); continue; }
    # Idle memory first, on a fresh process, then the echo repetitions.
    if [ "$IDLE_CONNS" -gt 0 ]; then
        run_loadgen idle --name "$name" --port "$PORT" --pid "$SPID" --conns "$IDLE_CONNS"
        sleep 0.5
    fi
    for _ in $(seq 1 "$REPS"); do
        run_loadgen echo --name "$name" --port "$PORT" --pid "$SPID" --conns "$CONNS" \
            --inflight "$INFLIGHT" --size "$SIZE" --seconds "$DURATION" --warmup "$WARMUP" "${EXTRA[@]}"
    done
    stop_server "$name"
done

# ---------------------------------------------------------------- table
echo
echo "Echo: $CONNS conns x $INFLIGHT in flight x $SIZE B text, ${DURATION}s after ${WARMUP}s warm-up, $REPS reps; idle: $IDLE_CONNS conns"
echo "Server pinned to CPU $SERVER_CPU, load generator to CPU $CLIENT_CPU; median (min-max) over reps. Raw lines: $RESULTS"
sed -n 's/^# /  /p' "$RESULTS"
echo
awk -v order="$SERVERS" '
function kv(   i, p) { delete F; for (i = 2; i <= NF; i++) { p = index($i, "="); F[substr($i, 1, p - 1)] = substr($i, p + 1) } }
function add(s, k, v) { n = ++N[s, k]; V[s, k, n] = v + 0 }
function sortk(s, k,   i, j, t, n) {
    n = N[s, k]
    for (i = 2; i <= n; i++) for (j = i; j > 1 && V[s, k, j - 1] > V[s, k, j]; j--) {
        t = V[s, k, j]; V[s, k, j] = V[s, k, j - 1]; V[s, k, j - 1] = t }
}
function med(s, k,   n) { n = N[s, k]; if (!n) return ""; sortk(s, k)
    return (n % 2) ? V[s, k, (n + 1) / 2] : (V[s, k, n / 2] + V[s, k, n / 2 + 1]) / 2 }
function fmt(s, k, dec,   n, f) { n = N[s, k]; if (!n) return "-"; f = "%." dec "f"
    if (n == 1) return sprintf(f, med(s, k))
    return sprintf(f " (" f "-" f ")", med(s, k), V[s, k, 1], V[s, k, n]) }
$1 == "result" { kv(); s = F["server"]; seen[s] = 1
    if (F["mode"] == "echo") { add(s, "rate", F["msgs_per_s"]); add(s, "p50", F["p50_us"]); add(s, "p99", F["p99_us"])
        add(s, "eff", F["msgs_per_cpu_s"]); if (F["seconds"] > 0) add(s, "util", 100 * F["server_cpu_s"] / F["seconds"])
        err[s] += F["errors"] }
    else if (F["mode"] == "idle") { add(s, "mem", F["bytes_per_conn"]); add(s, "anon", F["anon_bytes_per_conn"])
        err[s] += F["errors"]; if (F["open"] != F["conns"]) err[s] += F["conns"] - F["open"] } }
END {
    printf "| %-14s | %-26s | %-22s | %-22s | %-26s | %-14s | %-13s | %-6s |\n", "server", "msgs/s", "p50 us", "p99 us", "msgs per server CPU-s", "idle B/conn", "server CPU %", "errors"
    printf "|-------------|----------------------------|------------------------|------------------------|----------------------------|----------------|---------------|--------|\n"
    ns = split(order, names, " ")
    for (i = 1; i <= ns; i++) { s = names[i]; if (!(s in seen)) continue
        printf "| %-14s | %-26s | %-22s | %-22s | %-26s | %-14s | %-13s | %-6d |\n", s, fmt(s, "rate", 0), fmt(s, "p50", 0), fmt(s, "p99", 0), fmt(s, "eff", 0), fmt(s, "mem", 0), fmt(s, "util", 0), err[s] }
    print ""
    print "server CPU % = server CPU time / measured window; well under 100 with 1000 messages in flight usually"
    print "means something else ran on the server CPU (msgs/s suffers; msgs per server CPU-s much less so)."
    if (!("gateway" in seen)) { print ""; print "(no gateway results: no ratios)"; exit }
    print ""
    print "gateway relative to each peer (medians): CPU efficiency = gateway msgs/CPU-s / peer (>1: gateway better);"
    print "memory = gateway idle B/conn / peer (<1: gateway better)"
    ge = med("gateway", "eff"); gm = med("gateway", "mem")
    for (i = 1; i <= ns; i++) { s = names[i]; if (s == "gateway" || !(s in seen)) continue
        pe = med(s, "eff"); pm = med(s, "mem")
        printf "  vs %-14s  CPU efficiency x%s   memory x%s\n", s,
            (pe > 0 && ge != "") ? sprintf("%.2f", ge / pe) : "-", (pm > 0 && gm != "") ? sprintf("%.2f", gm / pm) : "-" }
}' "$RESULTS"

if [ "${#SKIPPED[@]}" -gt 0 ]; then
    echo
    echo "Skipped: ${SKIPPED[*]}"
fi
