#!/usr/bin/env bash
# The benchmark matrix: gateway.hpp against peer servers in every workload, all measured in the same
# run on the same machine by bench/loadgen. bench/PROTOCOL.md says what every server answers;
# bench/README.md describes the workloads, the knobs and how to read the table.
#
# usage: bench/run.sh [BUILD_DIR]          run the matrix (BUILD_DIR or $BUILD, default build-bench;
#                                          configured with -Dbuildtype=release -Dbench=true if missing)
#        bench/run.sh --table RESULTS_FILE print the table of an earlier run again
#
# Knobs (environment variables, defaults in brackets):
#   SERVERS   ["gateway gateway-events websocketpp beast ws socketio nestjs"]
#   WORKLOADS ["echo-raw-64 echo-events-64 broadcast-window broadcast-rate idle churn connect
#              echo-raw-1k echo-raw-16k workers allocs echo-sio-64 echo-sio-ack-64
#              broadcast-sio-window broadcast-sio-rate idle-sio broadcast-deflate
#              broadcast-sio-deflate idle-deflate idle-sio-deflate"]
#   REPS [3]  DURATION [5]  WARMUP [1]       repetitions and seconds of every timed workload
#   CONNS [100]  INFLIGHT [10]               echo shape
#   MEMBERS [1000]  WINDOW [16]  BCAST_RATE [50]   broadcast room size, window, fixed rate
#   IDLE_CONNS [10000]  IDLE_REPS [1]        idle connections, fresh servers measured
#   CHURN_CONNS [10000]  CHURN_ROUNDS [5]    churn: connections opened and closed per round, rounds
#   CHURN_REPS [1]                           churn: fresh servers measured
#   CONNECT_CONNS [50]                       concurrent connect loops
#   DEFLATE_GW ["off shared dedicated"]      the deflate workloads: gateway-events' permessage-deflate
#                                            modes (the peers: on, and for idle also off)
#   DEFLATE_SIZE [2048]  DEFLATE_SAMPLE [50] the market-data object's size; every Nth member
#                                            inflates and checks every delivery
#   DEFLATE_WINDOW [4]  DEFLATE_DURATION [10]  DEFLATE_WARMUP [3]   broadcast-*deflate's
#                                            outstanding broadcasts and seconds measured (servers
#                                            that compress per socket take 0.1-0.2 s per broadcast),
#                                            and warm-up (at least WARMUP: per-socket compressors
#                                            are made before the window)
#   WORKERS_LIST ["1 2"]                     gateway_echo worker counts in the workers section
#   SERVER_CPU [0]  CLIENT_CPU [1]           CPUs to pin to (taskset)
#   CHECK [1]                                1: a server failing its protocol check is not measured;
#                                            warn: measured anyway, marked "!" in the table; 0: no checks
#   BASE []                                  a build directory of another commit (release, -Dbench=true):
#                                            its 01_echo and gateway_echo run as the servers "base" and
#                                            "base-events" (add them to SERVERS), so a change is
#                                            measured against what it changed, in the same run
#   QUICK [0]                                1: a smoke run (REPS=1 DURATION=1 WARMUP=0.5
#                                            IDLE_CONNS=2000 CHURN_CONNS=2000 CHURN_ROUNDS=3
#                                            DEFLATE_WARMUP=1 DEFLATE_DURATION=2 unless set)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

note() { printf '== %s\n' "$*" >&2; }

# ================================================================ the table
# Reads result lines ("result workload=W key=value ...") and "# workload W DESCRIPTION" /
# "# skip W SERVER REASON" comments from a results file; prints one table per workload: median
# (min-max) over the repetitions, and gateway.hpp's ratio to each peer.
print_table() {
    awk '
function kv(   i, p) { delete F; for (i = 2; i <= NF; i++) { p = index($i, "="); if (p) F[substr($i, 1, p - 1)] = substr($i, p + 1) } }
function add(r, k, v) { if (v == "" || v + 0 < 0) return; n = ++N[r, k]; V[r, k, n] = v + 0 }
function addsigned(r, k, v) { if (v !~ /^-?[0-9]+(\.[0-9]*)?$/) return; n = ++N[r, k]; V[r, k, n] = v + 0 }
function sortk(r, k,   i, j, t, n) { n = N[r, k]
    for (i = 2; i <= n; i++) for (j = i; j > 1 && V[r, k, j - 1] > V[r, k, j]; j--) { t = V[r, k, j]; V[r, k, j] = V[r, k, j - 1]; V[r, k, j - 1] = t } }
function med(r, k,   n) { n = N[r, k]; if (!n) return ""; sortk(r, k)
    return (n % 2) ? V[r, k, (n + 1) / 2] : (V[r, k, n / 2] + V[r, k, n / 2 + 1]) / 2 }
function num(x, dec) { return sprintf("%." dec "f", x) }
function cell(r, k, dec,   n) { n = N[r, k]; if (!n) return "-"; med(r, k)
    if (n == 1 || V[r, k, 1] == V[r, k, n]) return num(med(r, k), dec)
    return num(med(r, k), dec) " (" num(V[r, k, 1], dec) "-" num(V[r, k, n], dec) ")" }
function ratio(w, s, k,   ref, a, b) { ref = REF[w, s]; if (ref == s) return "ref"
    if (!((w, ref) in SEEN)) return "-"
    a = med(w SUBSEP ref, k); b = med(w SUBSEP s, k); if (a == "" || b == "" || b == 0) return "-"
    return "x" sprintf("%.2f", a / b) }
function flush_table(   r, i, wd, line, sep) {
    for (i = 1; i <= C[1]; i++) wd[i] = 0
    for (r = 1; r <= R; r++) for (i = 1; i <= C[1]; i++) if (length(T[r, i]) > wd[i]) wd[i] = length(T[r, i])
    for (r = 1; r <= R; r++) { line = "|"; for (i = 1; i <= C[1]; i++) line = line sprintf(" %-" wd[i] "s |", T[r, i]); print line
        if (r == 1) { sep = "|"; for (i = 1; i <= C[1]; i++) { sep = sep "-"; for (j = 0; j < wd[i]; j++) sep = sep "-"; sep = sep "-|" } print sep } }
    R = 0
}
# The deflate workloads: what the handshake agreed, from the recorded Sec-WebSocket-Extensions answer.
function agreed(w, s,   e, d, bits) { e = EXT[w, s]
    if (e == "" || e == "none") return (VAR[w, s] == "off") ? "no (off)" : "NO: NOT NEGOTIATED"
    d = (VAR[w, s] == "off") ? "YES, though off" : "yes"
    d = d ((e ~ /server_no_context_takeover/) ? ", no context takeover" : ", context takeover")
    if (match(e, /server_max_window_bits=[0-9]+/)) { bits = substr(e, RSTART, RLENGTH); sub(/.*=/, "", bits); d = d ", window " bits }
    if (EXTD[w, s] > 0) d = d " (ANSWERS DIFFER)"
    return d }
# med(a) / med(b) of key k for two rows of workload w, as "x1.23".
function pair(w, a, b, k,   x, y) { x = med(w SUBSEP a, k); y = med(w SUBSEP b, k); if (x == "" || y == "" || y == 0) return "-"
    return "x" sprintf("%.2f", x / y) }
function is_gw(w, s) { return SNAME[w, s] == "gateway-events" || SNAME[w, s] == "base-events" }
# Below a deflate table: every answer as recorded, then gateway.hpp against the others.
function deflate_notes(w,   i, j, a, b, e) {
    print ""; print "Sec-WebSocket-Extensions answers (the first connection'"'"'s; spaces dropped on the result lines):"
    for (i = 1; i <= NR_[w]; i++) { a = ROWS[w, i]; e = EXT[w, a]; gsub(/;/, "; ", e); print "  " a ": " (e == "" ? "none" : e) }
    if (w ~ /^idle/) return
    print ""
    print "gateway.hpp / other, medians: below 1 is better for wire bytes and CPU per delivery, above 1 for deliveries/s."
    R = 1; C[1] = 5; split("gateway.hpp|other|wire B/delivery|server CPU per delivery|deliveries/s", H, "|"); for (j = 1; j <= 5; j++) T[1, j] = H[j]
    for (i = 1; i <= NR_[w]; i++) { a = ROWS[w, i]; if (!is_gw(w, a)) continue
        for (j = 1; j <= NR_[w]; j++) { b = ROWS[w, j]
            if (a == b || (is_gw(w, b) && !(SNAME[w, b] == SNAME[w, a] && VAR[w, b] == "off"))) continue
            R++; C[R] = 5; T[R, 1] = a; T[R, 2] = b; T[R, 3] = pair(w, a, b, "wire"); T[R, 4] = pair(w, a, b, "cpd"); T[R, 5] = pair(w, a, b, "rate") } }
    if (R > 1) flush_table(); else R = 0 }
function header(w,   i) { R = 0
    if (w ~ /^broadcast.*deflate$/) n = split("server|proto|deflate|agreed|deliveries/s|wire B/delivery|uncompressed B/delivery|wire/uncompressed|compressed %|server CPU ms per 1000 deliveries|server CPU %|gen CPU %|server RSS MiB|p50 us|p99 us|errors", H, "|")
    else if (w ~ /^idle.*deflate$/) n = split("server|proto|deflate|agreed|B/conn (RSS)|anon B/conn|+B/conn over off (RSS)|+anon B/conn over off|errors", H, "|")
    else if (w ~ /^echo/)               n = split("server|proto|msgs/s|msgs per server CPU-s|p50 us|p99 us|server CPU %|gen CPU %|errors|gw/peer msgs/s|gw/peer per CPU-s", H, "|")
    else if (w ~ /^broadcast.*window$/) n = split("server|proto|deliveries/s|deliveries per server CPU-s|broadcasts/s|p50 us|p99 us|server CPU %|gen CPU %|errors|gw/peer deliveries/s|gw/peer per CPU-s", H, "|")
    else if (w ~ /^broadcast/)     n = split("server|proto|broadcasts/s|p50 us|p99 us|server CPU %|deliveries per server CPU-s|errors|gw/peer per CPU-s|gw/peer p99", H, "|")
    else if (w ~ /^idle/)          n = split("server|proto|B/conn (RSS)|anon B/conn|errors|gw/peer B/conn", H, "|")
    else if (w == "churn")         n = split("server|proto|baseline KiB|peak KiB|after KiB|growth KiB|growth/round KiB|errors", H, "|")
    else if (w == "connect")       n = split("server|proto|conns/s|conns per server CPU-s|p50 us|p99 us|server CPU %|gen CPU %|errors|gw/peer conns/s|gw/peer per CPU-s", H, "|")
    else if (w == "workers")       n = split("workers|msgs/s|msgs per server CPU-s|p50 us|p99 us|server CPU %|gen CPU %|errors", H, "|")
    else if (w == "allocs")        n = split("case|proto|heap allocations|per", H, "|")
    else                           n = split("server|proto|errors", H, "|")
    R = 1; C[1] = n; for (i = 1; i <= n; i++) T[1, i] = H[i]
}
function body(w, s,   r, c, off) { r = w SUBSEP s; R++; C[R] = C[1]; c = 0
    if (w ~ /deflate$/) {
        T[R, ++c] = SNAME[w, s] (((SNAME[w, s], PROTO[w, s]) in CF) ? " !" : ""); T[R, ++c] = PROTO[w, s]; T[R, ++c] = VAR[w, s]; T[R, ++c] = agreed(w, s) }
    else if (w != "workers") { T[R, ++c] = s (((s, PROTO[w, s]) in CF) ? " !" : ""); T[R, ++c] = PROTO[w, s] }
    if (w ~ /^broadcast.*deflate$/) {
        T[R, ++c] = cell(r, "rate", 0); T[R, ++c] = cell(r, "wire", 1); T[R, ++c] = cell(r, "plain", 1)
        T[R, ++c] = (med(r, "plain") > 0) ? sprintf("%.1f %%", 100 * med(r, "wire") / med(r, "plain")) : "-"
        T[R, ++c] = cell(r, "comp", 1); T[R, ++c] = cell(r, "cpd", 3); T[R, ++c] = cell(r, "cpu", 0); T[R, ++c] = cell(r, "gen", 0)
        T[R, ++c] = cell(r, "rss", 0); T[R, ++c] = cell(r, "p50", 0); T[R, ++c] = cell(r, "p99", 0); T[R, ++c] = ERR[w, s] + 0 }
    else if (w ~ /^idle.*deflate$/) {
        off = SNAME[w, s] " off"
        T[R, ++c] = cell(r, "mem", 0); T[R, ++c] = cell(r, "anon", 0)
        if (VAR[w, s] != "off" && ((w, off) in SEEN)) {
            T[R, ++c] = sprintf("%+.0f", med(r, "mem") - med(w SUBSEP off, "mem")); T[R, ++c] = sprintf("%+.0f", med(r, "anon") - med(w SUBSEP off, "anon")) }
        else { T[R, ++c] = "-"; T[R, ++c] = "-" }
        T[R, ++c] = ERR[w, s] + 0 }
    else if (w ~ /^echo/ || w == "connect") {
        T[R, ++c] = cell(r, "rate", 0); T[R, ++c] = cell(r, "eff", 0); T[R, ++c] = cell(r, "p50", 0); T[R, ++c] = cell(r, "p99", 0)
        T[R, ++c] = cell(r, "cpu", 0); T[R, ++c] = cell(r, "gen", 0); T[R, ++c] = ERR[w, s] + 0; T[R, ++c] = ratio(w, s, "rate"); T[R, ++c] = ratio(w, s, "eff") }
    else if (w ~ /^broadcast.*window$/) {
        T[R, ++c] = cell(r, "rate", 0); T[R, ++c] = cell(r, "eff", 0); T[R, ++c] = cell(r, "bps", 0); T[R, ++c] = cell(r, "p50", 0)
        T[R, ++c] = cell(r, "p99", 0); T[R, ++c] = cell(r, "cpu", 0); T[R, ++c] = cell(r, "gen", 0); T[R, ++c] = ERR[w, s] + 0; T[R, ++c] = ratio(w, s, "rate"); T[R, ++c] = ratio(w, s, "eff") }
    else if (w ~ /^broadcast/) {
        T[R, ++c] = cell(r, "bps", 1); T[R, ++c] = cell(r, "p50", 0); T[R, ++c] = cell(r, "p99", 0); T[R, ++c] = cell(r, "cpu", 1)
        T[R, ++c] = cell(r, "eff", 0); T[R, ++c] = ERR[w, s] + 0; T[R, ++c] = ratio(w, s, "eff"); T[R, ++c] = ratio(w, s, "p99") }
    else if (w ~ /^idle/) {
        T[R, ++c] = cell(r, "mem", 0); T[R, ++c] = cell(r, "anon", 0); T[R, ++c] = ERR[w, s] + 0; T[R, ++c] = ratio(w, s, "mem") }
    else if (w == "churn") {
        T[R, ++c] = cell(r, "base", 0); T[R, ++c] = cell(r, "peak", 0); T[R, ++c] = cell(r, "after", 0); T[R, ++c] = cell(r, "growth", 0)
        T[R, ++c] = cell(r, "slope", 1); T[R, ++c] = ERR[w, s] + 0 }
    else if (w == "allocs") { T[R, ++c] = cell(r, "apm", 2); T[R, ++c] = UNIT[w, s] }
    else if (w == "workers") {
        T[R, ++c] = s; T[R, ++c] = cell(r, "rate", 0); T[R, ++c] = cell(r, "eff", 0); T[R, ++c] = cell(r, "p50", 0); T[R, ++c] = cell(r, "p99", 0)
        T[R, ++c] = cell(r, "cpu", 0); T[R, ++c] = cell(r, "gen", 0); T[R, ++c] = ERR[w, s] + 0 }
    else T[R, ++c] = ERR[w, s] + 0
}
/^# workload / { w = $3; if (w ~ /deflate$/) HAS_DEFLATE = 1; if (!(w in DESC)) { ORDER[++NW] = w }; DESC[w] = substr($0, length("# workload " w) + 2); next }
/^# skip / { w = $3; SKIPS[w] = SKIPS[w] "\n  not measured: " substr($0, length("# skip " w) + 2); if (!(w in DESC)) { ORDER[++NW] = w; DESC[w] = "" } next }
/^# check-failed / { p = $4; gsub(/[():]/, "", p); CF[$3, p] = 1; CFNOTES = CFNOTES "\n! " substr($0, 16); next }
/^# / { print "  " substr($0, 3); next }
$1 == "result" { kv(); w = F["workload"]; if (w == "") next
    s = (w == "workers") ? F["workers"] : F["server"]
    if (F["deflate"] != "") s = s " " F["deflate"]   # a deflate workload: one row per server and setting
    if (!(w in DESC)) { ORDER[++NW] = w; DESC[w] = "" }
    if (!((w, s) in SEEN)) { SEEN[w, s] = 1; ROWS[w, ++NR_[w]] = s; PROTO[w, s] = F["proto"]
        REF[w, s] = (F["proto"] == "raw") ? "gateway" : "gateway-events"
        SNAME[w, s] = F["server"]; VAR[w, s] = F["deflate"]; EXT[w, s] = F["extensions"] }
    r = w SUBSEP s; m = F["mode"]
    if (F["extensions"] != "" && F["extensions"] != EXT[w, s]) EXTD[w, s]++   # another answer in another repetition
    EXTD[w, s] += F["extensions_differ"]
    if (m == "broadcast" && F["payload"] == "json") {
        add(r, "wire", F["wire_bytes_per_delivery"]); add(r, "plain", F["plain_bytes_per_delivery"])
        if (F["deliveries"] > 0) { add(r, "comp", 100 * F["compressed_deliveries"] / F["deliveries"])
            if (F["server_cpu_s"] >= 0) add(r, "cpd", 1e6 * F["server_cpu_s"] / F["deliveries"]) }
        if (F["server_rss_kib"] > 0) add(r, "rss", F["server_rss_kib"] / 1024) }
    if (F["seconds"] > 0 && F["client_cpu_s"] != "") add(r, "gen", 100 * F["client_cpu_s"] / F["seconds"])
    if (m == "echo") { add(r, "rate", F["msgs_per_s"]); add(r, "eff", F["msgs_per_cpu_s"]); add(r, "p50", F["p50_us"]); add(r, "p99", F["p99_us"])
        if (F["seconds"] > 0 && F["server_cpu_s"] >= 0) add(r, "cpu", 100 * F["server_cpu_s"] / F["seconds"]); ERR[w, s] += F["errors"] + F["lost_conns"] }
    else if (m == "broadcast") { add(r, "rate", F["deliveries_per_s"]); add(r, "eff", F["deliveries_per_cpu_s"]); add(r, "bps", F["bcasts_per_s"])
        add(r, "p50", F["p50_us"]); add(r, "p99", F["p99_us"]); add(r, "cpu", F["server_cpu_pct"]); ERR[w, s] += F["errors"] }
    else if (m == "idle") { add(r, "mem", F["bytes_per_conn"]); add(r, "anon", F["anon_bytes_per_conn"]); ERR[w, s] += F["errors"] + F["conns"] - F["open"] }
    else if (m == "churn") { add(r, "base", F["baseline_kib"]); add(r, "peak", F["peak_kib"]); add(r, "after", F["after_kib"])
        addsigned(r, "growth", F["growth_kib"]); addsigned(r, "slope", F["growth_per_round_kib"]); ERR[w, s] += F["errors"] }
    else if (m == "allocs") { add(r, "apm", F["per_unit"]); UNIT[w, s] = F["unit"] }
    else if (m == "connect") { add(r, "rate", F["conns_per_s"]); add(r, "eff", F["conns_per_cpu_s"]); add(r, "p50", F["p50_us"]); add(r, "p99", F["p99_us"])
        add(r, "cpu", F["server_cpu_pct"]); ERR[w, s] += F["errors"] }
}
END {
    for (k = 1; k <= NW; k++) { w = ORDER[k]
        print ""; print "## " w (DESC[w] != "" ? ": " DESC[w] : "")
        if (NR_[w] > 0) { header(w); for (i = 1; i <= NR_[w]; i++) body(w, ROWS[w, i]); flush_table()
            if (w ~ /deflate$/) deflate_notes(w) }
        if (w == "workers" && NR_[w] >= 2) { a = med(w SUBSEP ROWS[w, 1], "rate"); b = med(w SUBSEP ROWS[w, NR_[w]], "rate")
            if (a > 0) printf "  %s workers / %s worker msgs/s: x%.2f\n", ROWS[w, NR_[w]], ROWS[w, 1], b / a }
        if (SKIPS[w] != "") print substr(SKIPS[w], 2)
    }
    if (CFNOTES != "") { print ""; print "Measured although they failed the protocol check (CHECK=warn):" CFNOTES }
    print ""
    print "Cells: median (min-max) over the repetitions. gw/peer = gateway.hpp / that server, medians, where gateway.hpp is"
    print "gateway for raw rows and gateway-events for events and socketio rows: above 1 is better for rates and per-CPU-s"
    print "figures, below 1 is better for B/conn and latency. server CPU % = server CPU time / window (100 = one core busy);"
    print "well under 100 while the server is the bottleneck means something else took its CPU: compare the per-CPU-s columns."
    print "gen CPU % = the generator'"'"'s own CPU time / window: near 100 means the generator, not the server, set the rate."
    if (HAS_DEFLATE) {
        print "Deflate tables: wire B/delivery = bytes the members read from their sockets in the window (frame headers included) /"
        print "deliveries; uncompressed B/delivery = the same deliveries as uncompressed frames; server CPU ms per 1000 deliveries"
        print "= microseconds of server CPU per delivery; agreed = the server'"'"'s Sec-WebSocket-Extensions answer to"
        print "\"permessage-deflate; client_max_window_bits\" (NOT NEGOTIATED: the server was asked to compress and did not agree)."
    }
}' "$1"
}

if [ "${1:-}" = "--table" ]; then
    [ -f "${2:-}" ] || { echo "usage: bench/run.sh --table RESULTS_FILE" >&2; exit 2; }
    print_table "$2"
    exit 0
fi

# ================================================================ knobs
# gateway_echo and the socketio peer join a Redis cluster when REDIS_URL is set (bench/cluster.sh
# measures that): the matrix measures single servers.
unset REDIS_URL
BUILD=${1:-${BUILD:-build-bench}}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac

if [ "${QUICK:-0}" = 1 ]; then
    : "${REPS:=1}" "${DURATION:=1}" "${WARMUP:=0.5}" "${IDLE_CONNS:=2000}" "${CHURN_CONNS:=2000}" "${CHURN_ROUNDS:=3}" "${DEFLATE_WARMUP:=1}" "${DEFLATE_DURATION:=2}"
fi
SERVERS=${SERVERS:-"gateway gateway-events websocketpp beast ws socketio nestjs"}
WORKLOADS=${WORKLOADS:-"echo-raw-64 echo-events-64 broadcast-window broadcast-rate idle churn connect echo-raw-1k echo-raw-16k workers allocs echo-sio-64 echo-sio-ack-64 broadcast-sio-window broadcast-sio-rate idle-sio broadcast-deflate broadcast-sio-deflate idle-deflate idle-sio-deflate"}
REPS=${REPS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CONNS=${CONNS:-100}
INFLIGHT=${INFLIGHT:-10}
MEMBERS=${MEMBERS:-1000}
WINDOW=${WINDOW:-16}
BCAST_RATE=${BCAST_RATE:-50}
IDLE_CONNS=${IDLE_CONNS:-10000}
IDLE_REPS=${IDLE_REPS:-1}
CHURN_CONNS=${CHURN_CONNS:-10000}
CHURN_ROUNDS=${CHURN_ROUNDS:-5}
CHURN_REPS=${CHURN_REPS:-1}
CONNECT_CONNS=${CONNECT_CONNS:-50}
DEFLATE_GW=${DEFLATE_GW:-"off shared dedicated"}
DEFLATE_SIZE=${DEFLATE_SIZE:-2048}
DEFLATE_SAMPLE=${DEFLATE_SAMPLE:-50}
DEFLATE_WARMUP=${DEFLATE_WARMUP:-3}
DEFLATE_WINDOW=${DEFLATE_WINDOW:-4}
DEFLATE_DURATION=${DEFLATE_DURATION:-10}
WORKERS_LIST=${WORKERS_LIST:-"1 2"}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
CHECK=${CHECK:-1}

# ================================================================ build
# Only the benchmark's own targets, and of those the ones the selected servers and workloads run: a
# broken test elsewhere in the tree must not stop a benchmark, and a machine with 2 cores has no
# time to spare for a peer nobody asked for. At low priority, beside whatever else the machine does.
if [ ! -d "$BUILD" ]; then
    note "configuring $BUILD"
    meson setup "$BUILD" -Dbuildtype=release -Dbench=true >&2 || { note "meson setup failed"; exit 1; }
fi
wanted="loadgen"
for s in $SERVERS; do
    case "$s" in
        gateway) wanted+=" 01_echo" ;;
        gateway-events) wanted+=" gateway_echo" ;;
        websocketpp | beast) wanted+=" ${s}_echo" ;;
    esac
done
case " $WORKLOADS " in *" allocs "*) wanted+=" alloc_count" ;; esac
targets=()
known=$(meson introspect --targets "$BUILD" 2>/dev/null | python3 -c 'import json, sys; print(" ".join(t["name"] for t in json.load(sys.stdin)))' 2>/dev/null)
for t in $wanted; do
    case " $known " in *" $t "*) targets+=("$t") ;; esac
done
note "building ${targets[*]:-everything} in $BUILD"
if ! nice meson compile -C "$BUILD" "${targets[@]}" >&2; then
    note "building them together failed; trying one by one"
    for t in "${targets[@]}"; do nice meson compile -C "$BUILD" "$t" >&2 || note "$t did not build"; done
fi
LOADGEN="$BUILD/bench/loadgen"
[ -x "$LOADGEN" ] || { note "no $LOADGEN: was the build configured with -Dbench=true?"; exit 1; }

# ================================================================ limits, pinning, output
# idle and churn hold their connections open at once, each in its own run: the larger one counts.
most_conns=$(( IDLE_CONNS > CHURN_CONNS ? IDLE_CONNS : CHURN_CONNS ))
need_fds=$((most_conns + MEMBERS + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need_fds" ]; then
    ulimit -n "$need_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
if [ "$(ulimit -n)" != unlimited ]; then
    new=$(( $(ulimit -n) - 1024 ))
    [ "$new" -lt 0 ] && new=0
    if [ "$IDLE_CONNS" -gt "$new" ]; then
        note "open-file limit $(ulimit -n) is too low for $IDLE_CONNS idle connections; using $new"
        IDLE_CONNS=$new
    fi
    if [ "$CHURN_CONNS" -gt "$new" ]; then
        note "open-file limit $(ulimit -n) is too low for $CHURN_CONNS churn connections; using $new"
        CHURN_CONNS=$new
    fi
fi

SRV_PIN=() CLI_PIN=() BOTH_PIN=() PINNING="unpinned"
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    SRV_PIN=(taskset -c "$SERVER_CPU")
    CLI_PIN=(taskset -c "$CLIENT_CPU")
    BOTH_PIN=(taskset -c "$SERVER_CPU,$CLIENT_CPU")
    PINNING="server on CPU $SERVER_CPU, generator on CPU $CLIENT_CPU"
else
    note "taskset missing or fewer than 2 CPUs: running unpinned (figures are less meaningful)"
fi

load1=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load1" 'BEGIN { exit !(l > 0.5) }'; then
    note "load average is $load1: other work on this machine skews rates and latency (see the server CPU % column)"
fi

OUT="$BUILD/bench/results"
mkdir -p "$OUT"
STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS="$OUT/results-$STAMP.txt"
LOG="$OUT/loadgen-$STAMP.log"

# Versions of everything measured, for the results file and the table's header.
pkg_version() { node -p "require('$ROOT/node_modules/$1/package.json').version" 2>/dev/null || echo none; }
deb_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo none; }
compiler=$(meson introspect --targets "$BUILD" 2>/dev/null |
    python3 -c 'import json, sys
for t in json.load(sys.stdin):
    for s in t.get("target_sources", []):
        if s.get("language") == "cpp": print(s["compiler"][0]); sys.exit()' 2>/dev/null)
opts=$(meson introspect --buildoptions "$BUILD" 2>/dev/null |
    python3 -c 'import json, sys; o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
print("buildtype=%s optimization=%s cpp_std=%s b_ndebug=%s" % (o["buildtype"], o["optimization"], o["cpp_std"], o.get("b_ndebug")))' 2>/dev/null)
gw_version=$(sed -n 's/^#define GATEWAY_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\).*/\2/p' "$ROOT/gateway.hpp" | paste -sd.)
asio_version=$(sed -n 's/^#define ASIO_VERSION [0-9]* \/\/ //p' /usr/include/asio/version.hpp 2>/dev/null)
{
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -srm) cpus=$(nproc) $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
    echo "# commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (dirty)') gateway.hpp ${gw_version:-?}"
    echo "# compiler: $( ${compiler:-c++} --version 2>/dev/null | head -n1) [$opts]; peers built with warning_level=0, WebSocket++ as C++17"
    echo "# libraries: Asio ${asio_version:-?} (libasio-dev $(deb_version libasio-dev)), Boost $(deb_version libboost-dev), WebSocket++ $(deb_version libwebsocketpp-dev), nlohmann/json $(deb_version nlohmann-json3-dev)"
    echo "# node $(node --version 2>/dev/null || echo none): ws $(pkg_version ws), socket.io $(pkg_version socket.io) (engine.io $(pkg_version engine.io)), @nestjs/core $(pkg_version @nestjs/core), @nestjs/websockets $(pkg_version @nestjs/websockets), @nestjs/platform-ws $(pkg_version @nestjs/platform-ws), @nestjs/platform-socket.io $(pkg_version @nestjs/platform-socket.io) (its socket.io $(pkg_version @nestjs/platform-socket.io/node_modules/socket.io))"
    echo "# $PINNING; REPS=$REPS DURATION=$DURATION WARMUP=$WARMUP$(case " $WORKLOADS " in *deflate" "*)
        echo " DEFLATE_GW=\"$DEFLATE_GW\" DEFLATE_SIZE=$DEFLATE_SIZE DEFLATE_WINDOW=$DEFLATE_WINDOW DEFLATE_DURATION=$DEFLATE_DURATION DEFLATE_WARMUP=$DEFLATE_WARMUP DEFLATE_SAMPLE=$DEFLATE_SAMPLE" ;; esac)"
    echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$RESULTS"

# ================================================================ servers
# modes_of NAME: the modes a server has (bench/PROTOCOL.md), the first one its default.
# gateway_echo serves NestJS's envelope and Socket.IO at once: its mode only says how it is driven.
modes_of() {
    case "$1" in
        gateway | base) echo raw ;;
        gateway-events | base-events) echo "events socketio" ;;
        websocketpp | beast | ws) echo "raw events" ;;
        socketio) echo socketio ;;
        nestjs) echo "events socketio" ;;
    esac
}

# mode_for NAME KIND: the mode NAME runs in for a raw, events, socketio or any workload ("" if none);
# json: events where the server has it, else socketio (the deflate workloads' JSON broadcasts).
mode_for() {
    local m=" $(modes_of "$1") "
    case "$2" in
        raw | events | socketio) [[ $m == *" $2 "* ]] && echo "$2" ;;
        any) set -- $m; echo "${1:-}" ;;
        json) if [[ $m == *" events "* ]]; then echo events; elif [[ $m == *" socketio "* ]]; then echo socketio; fi ;;
    esac
    return 0
}

# deflate_variants NAME WORKLOAD: the permessage-deflate settings NAME is measured with in a deflate
# workload ("" if it has none here). gateway_echo: gw::deflate_mode's off, shared, dedicated; the
# Node peers: on (perMessageDeflate, threshold 1024), and for the idle ones also off, so that each
# server's cost of a negotiated extension shows beside its own figure without.
deflate_variants() {
    case "$1" in
        gateway-events | base-events) echo "$DEFLATE_GW" ;;
        ws | socketio | nestjs) case "$2" in idle*) echo "off on" ;; *) echo on ;; esac ;;
    esac
}

# server_cmd NAME MODE [DEFLATE]: sets CMD (the command before the port) and ARGS (after it); on
# failure returns 1 with the reason in WHY. DEFLATE is one of deflate_variants' settings.
server_cmd() {
    CMD=() ARGS=() WHY=""
    local js="" on=""
    [ "${3:-}" = on ] && on=deflate
    case "$1" in
        gateway) CMD=("$BUILD/examples/01_echo") ;;
        gateway-events) CMD=("$BUILD/bench/gateway_echo"); [ -n "${3:-}" ] && ARGS=(1 "$3") ;;
        base | base-events)
            [ -n "${BASE:-}" ] || { WHY="BASE (another build directory) not set"; return 1; }
            if [ "$1" = base ]; then CMD=("$BASE/examples/01_echo"); else CMD=("$BASE/bench/gateway_echo"); fi
            [ "$1" = base-events ] && [ -n "${3:-}" ] && ARGS=(1 "$3") ;;
        websocketpp | beast) CMD=("$BUILD/bench/${1}_echo"); [ "$2" = raw ] || ARGS=("$2") ;;
        ws) js=ws_echo.mjs; if [ -n "$on" ]; then ARGS=("$2" "$on"); elif [ "$2" != raw ]; then ARGS=("$2"); fi ;;
        socketio) js=socketio_server.mjs; [ -n "$on" ] && ARGS=("$on") ;;
        nestjs) js=nest_server.mjs; ARGS=("$2" ${on:+"$on"}) ;;
        *) WHY="unknown server"; return 1 ;;
    esac
    if [ -n "$js" ]; then
        local pkg
        case "$1:$2" in
            ws:*) pkg=ws ;;
            socketio:*) pkg=socket.io ;;
            nestjs:socketio) pkg=@nestjs/platform-socket.io ;;
            nestjs:*) pkg=@nestjs/platform-ws ;;
        esac
        command -v node >/dev/null || { WHY="node missing"; return 1; }
        [ -f "$ROOT/bench/peers/$js" ] || { WHY="bench/peers/$js missing"; return 1; }
        [ -d "$ROOT/node_modules/$pkg" ] || { WHY="node_modules/$pkg missing (run npm ci)"; return 1; }
        CMD=(node "$ROOT/bench/peers/$js")
    elif [ ! -x "${CMD[0]}" ]; then
        case "$1" in
            gateway-events) WHY="${CMD[0]} not built (nlohmann-json3-dev missing?)" ;;
            websocketpp) WHY="${CMD[0]} not built (libwebsocketpp-dev missing?)" ;;
            beast) WHY="${CMD[0]} not built (libboost-dev missing?)" ;;
            *) WHY="${CMD[0]} not built" ;;
        esac
        return 1
    fi
}

SPID="" PORT=""
start_server() {  # LABEL PIN... -- (uses CMD and ARGS); sets SPID and PORT
    local label=$1 log="$OUT/$1.server.log" skip
    shift
    echo "== $(date +%H:%M:%S) $* ${CMD[*]} 0 ${ARGS[*]}" >> "$log"
    skip=$(wc -l < "$log")  # earlier runs' lines stay in the log: read only this run's
    ( cd "$ROOT" && exec "$@" "${CMD[@]}" 0 "${ARGS[@]}" ) >> "$log" 2>&1 &
    SPID=$!
    PORT=""
    for _ in $(seq 1 200); do
        PORT=$(tail -n +"$((skip + 1))" "$log" | sed -n 's/^listening on port \([0-9][0-9]*\).*/\1/p' | head -n1)
        [ -n "$PORT" ] && return 0
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.1
    done
    note "$label did not start (see $log)"
    kill -TERM "$SPID" 2>/dev/null
    wait "$SPID" 2>/dev/null
    SPID=""
    return 1
}

stop_server() {  # LABEL
    local rc
    [ -n "$SPID" ] || return 0
    kill -TERM "$SPID" 2>/dev/null
    for _ in $(seq 1 50); do
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SPID" 2>/dev/null; then
        note "$1 ignored SIGTERM for 5 s: killing it"
        kill -KILL "$SPID" 2>/dev/null
    fi
    wait "$SPID" 2>/dev/null
    rc=$?
    [ "$rc" -eq 0 ] || note "$1 exited with status $rc on SIGTERM (expected 0)"
    SPID=""
}
trap '[ -n "$SPID" ] && kill -TERM "$SPID" 2>/dev/null' EXIT

# run_loadgen WORKLOAD EXTRA_KEYS PIN... -- LOADGEN_ARGS...: records the result line with the workload.
run_loadgen() {
    local w=$1 extra=$2 pin=() out line
    shift 2
    while [ "$1" != -- ]; do pin+=("$1"); shift; done
    shift
    echo "# $w: loadgen $*" >> "$LOG"
    out=$(timeout 300 "${pin[@]}" "$LOADGEN" "$@" 2>>"$LOG")
    # "# " lines (churn's rounds) go to the log and the terminal, not into the results file.
    if grep -q '^# ' <<< "$out"; then
        grep '^# ' <<< "$out" >> "$LOG"
        grep '^# ' <<< "$out" | sed 's/^/   /' >&2
    fi
    line=$(grep '^result ' <<< "$out")
    if [ -n "$line" ]; then
        line="result workload=$w${extra:+ $extra} ${line#result }"
        printf '%s\n' "$line" >> "$RESULTS"
        printf '   %s\n' "$line" >&2
    else
        note "loadgen $1 produced no result (see $LOG)"
    fi
}

# ================================================================ workloads
# workload NAME: sets KIND (raw, events, socketio, json, any, workers, allocs), LG (loadgen
# arguments), DESC, and DEFLATE (1: every server is measured with each of its deflate_variants).
workload() {
    local timed=(--seconds "$DURATION" --warmup "$WARMUP")
    DEFLATE=0
    case "$1" in
        echo-raw-64 | echo-raw-1k | echo-raw-16k | echo-events-64)
            local size=64
            case "$1" in *-1k) size=1024 ;; *-16k) size=16384 ;; esac
            KIND=raw; [ "$1" = echo-events-64 ] && KIND=events
            LG=(echo --conns "$CONNS" --inflight "$INFLIGHT" --size "$size" "${timed[@]}")
            DESC="echo, $CONNS conns x $INFLIGHT in flight x $size B, $([ $KIND = raw ] && echo 'raw text frames' || echo 'event "echo" in the events envelope')" ;;
        echo-sio-64)
            KIND=socketio
            LG=(echo --conns "$CONNS" --inflight "$INFLIGHT" --size 64 "${timed[@]}")
            DESC="Socket.IO echo, $CONNS conns x $INFLIGHT in flight x 64 B, 42[\"echo\",X] answered by the event 42[\"echo\",X]" ;;
        echo-sio-ack-64)
            KIND=socketio
            LG=(echo --conns "$CONNS" --inflight "$INFLIGHT" --size 64 --ack 1 "${timed[@]}")
            DESC="Socket.IO echo with acknowledgements, $CONNS conns x $INFLIGHT in flight x 64 B, 42<id>[\"echo\",X] answered by the ack 43<id>[X]" ;;
        broadcast-window | broadcast-sio-window)
            KIND=events; [ "$1" = broadcast-sio-window ] && KIND=socketio
            LG=(broadcast --members "$MEMBERS" --window "$WINDOW" --size 64 "${timed[@]}")
            DESC="$([ $KIND = socketio ] && echo 'Socket.IO, ')1 publisher -> $MEMBERS room members, 64 B, at most $WINDOW broadcasts outstanding" ;;
        broadcast-rate | broadcast-sio-rate)
            KIND=events; [ "$1" = broadcast-sio-rate ] && KIND=socketio
            LG=(broadcast --members "$MEMBERS" --rate "$BCAST_RATE" --size 64 "${timed[@]}")
            DESC="$([ $KIND = socketio ] && echo 'Socket.IO, ')1 publisher -> $MEMBERS room members, 64 B, $BCAST_RATE broadcasts/s (equal load: latency and CPU)" ;;
        idle)
            KIND=any
            LG=(idle --conns "$IDLE_CONNS")
            DESC="$IDLE_CONNS idle connections (Socket.IO: connected to the namespace), server memory growth per connection, fresh server" ;;
        idle-sio)
            KIND=socketio
            LG=(idle --conns "$IDLE_CONNS")
            DESC="$IDLE_CONNS idle Socket.IO sessions (websocket transport, connected to namespace /), server memory growth per session, fresh server" ;;
        broadcast-deflate | broadcast-sio-deflate)
            KIND=json; [ "$1" = broadcast-sio-deflate ] && KIND=socketio
            DEFLATE=1
            # A compressor per socket (dedicated, and the peers' context takeover) is made with the
            # socket's first compressed message: with 1000 members, a second's work or more, which
            # the warm-up takes rather than the window. Such a server needs 0.1-0.2 s of CPU per
            # broadcast, and the gateway delivers the broadcasts it read at once together: a small
            # window and a long measurement keep the count from moving in steps of WINDOW broadcasts.
            local warm=$DEFLATE_WARMUP
            awk -v a="$WARMUP" -v b="$warm" 'BEGIN { exit !(a > b) }' && warm=$WARMUP
            LG=(broadcast --members "$MEMBERS" --window "$DEFLATE_WINDOW" --payload json --size "$DEFLATE_SIZE" --deflate 1 --sample "$DEFLATE_SAMPLE"
                --seconds "$DEFLATE_DURATION" --warmup "$warm")
            DESC="permessage-deflate offered as browsers do; 1 publisher -> $MEMBERS room members, $([ $KIND = socketio ] && echo 'Socket.IO' || echo 'events (Socket.IO where a server has no events mode)'), a ${DEFLATE_SIZE} B market-data JSON object, at most $DEFLATE_WINDOW broadcasts outstanding, ${DEFLATE_DURATION} s measured; every ${DEFLATE_SAMPLE}th member inflates and checks every delivery" ;;
        idle-deflate | idle-sio-deflate)
            KIND=json; [ "$1" = idle-sio-deflate ] && KIND=socketio
            DEFLATE=1
            LG=(idle --conns "$IDLE_CONNS" --deflate 1)
            DESC="$IDLE_CONNS idle connections offering permessage-deflate as browsers do ($([ $KIND = socketio ] && echo 'Socket.IO sessions' || echo 'events mode, Socket.IO where a server has no events mode')), server memory growth per connection, fresh server" ;;
        churn)
            KIND=any
            LG=(churn --conns "$CHURN_CONNS" --rounds "$CHURN_ROUNDS")
            DESC="$CHURN_ROUNDS rounds of opening $CHURN_CONNS idle connections (Socket.IO: connected to the namespace) and closing them with a close handshake, server RSS, fresh server" ;;
        connect)
            KIND=any
            LG=(connect --conns "$CONNECT_CONNS" "${timed[@]}")
            DESC="$CONNECT_CONNS loops of connect, upgrade (Socket.IO: to the open packet), close handshake" ;;
        workers)
            KIND=workers
            LG=(echo --conns "$CONNS" --inflight "$INFLIGHT" --size 64 "${timed[@]}" --proto events)
            DESC="gateway-events (bench/gateway_echo PORT WORKERS) with WORKERS = $WORKERS_LIST, echo-events-64; server and generator both on CPUs $SERVER_CPU,$CLIENT_CPU (the generator competes for the same 2 cores)" ;;
        allocs)
            KIND=allocs
            DESC="heap allocations on the server's thread per message in steady state (bench/alloc_count; gateway.hpp only, its own clients)" ;;
        *) return 1 ;;
    esac
    # Not the status of the last assignment: DESC="$([ $KIND = socketio ] && ...)" is 1 for events.
    return 0
}

# ================================================================ protocol checks
# Once per server and mode used (and deflate setting, in the deflate workloads):
# bench/check_protocol.mjs (when present), then a short probe with the generator itself (echo, and
# for events also join + broadcast, which a raw echo cannot fake; with a deflate setting also the
# market-data broadcast with permessage-deflate offered, every delivery inflated and checked, so a
# server whose compressed frames do not inflate to what was sent fails here).
declare -A STATUS=()
check_server() {  # NAME MODE [DEFLATE]; sets STATUS[NAME:MODE[:DEFLATE]] to ok or the reason
    local s=$1 m=$2 v=${3:-} key="$1:$2${3:+:$3}" label="$1-$2${3:+-$3}"
    local clog="$OUT/check-$label.log"
    [ -n "${STATUS[$key]:-}" ] && return 0
    if ! server_cmd "$s" "$m" "$v"; then STATUS[$key]="skipped: $WHY"; return 0; fi
    if ! start_server "$label" "${SRV_PIN[@]}"; then STATUS[$key]="failed: did not start in mode $m${v:+ with deflate $v} (see $OUT/$label.server.log)"; return 0; fi
    : > "$clog"
    local why=""
    if [ "$CHECK" != 0 ]; then
        if [ -f "$ROOT/bench/check_protocol.mjs" ] && command -v node >/dev/null; then
            ( cd "$ROOT" && timeout 120 node bench/check_protocol.mjs "$PORT" "$m" ) >> "$clog" 2>&1 ||
                why="bench/check_protocol.mjs $m: $(grep -c '^FAIL' "$clog") failed, first: $(grep -m1 '^FAIL' "$clog" | cut -c1-140 || tail -n1 "$clog")"
        else
            note "bench/check_protocol.mjs missing (or no node): $s $m checked by the generator's probe only"
        fi
        if [ -z "$why" ]; then
            "$LOADGEN" echo --name probe --port "$PORT" --proto "$m" --conns 2 --inflight 2 --seconds 0.3 --warmup 0 >> "$clog" 2>&1 ||
                why="loadgen echo probe failed (see $clog)"
        fi
        if [ -z "$why" ] && [ "$m" = socketio ]; then
            "$LOADGEN" echo --name probe --port "$PORT" --proto "$m" --ack 1 --conns 2 --inflight 2 --seconds 0.3 --warmup 0 >> "$clog" 2>&1 ||
                why="loadgen echo probe with acknowledgements failed (see $clog)"
        fi
        if [ -z "$why" ] && [ "$m" != raw ]; then
            "$LOADGEN" broadcast --name probe --port "$PORT" --proto "$m" --members 3 --window 2 --seconds 0.3 --warmup 0 --timeout 2 >> "$clog" 2>&1 ||
                why="loadgen broadcast probe failed (see $clog)"
        fi
        if [ -z "$why" ] && [ -n "$v" ] && [ "$m" != raw ]; then
            "$LOADGEN" broadcast --name probe --port "$PORT" --proto "$m" --members 3 --window 2 --seconds 0.3 --warmup 0 --timeout 2 \
                --payload json --size "$DEFLATE_SIZE" --deflate 1 --sample 1 >> "$clog" 2>&1 ||
                why="loadgen permessage-deflate broadcast probe failed (see $clog)"
        fi
    fi
    stop_server "$label"
    if [ -z "$why" ]; then
        STATUS[$key]=ok
        [ "$CHECK" != 0 ] && note "$s $m: protocol check passed"
    elif [ "$CHECK" = warn ]; then
        STATUS[$key]=ok
        note "$s $m: FAILED the protocol check, measured anyway (CHECK=warn): $why"
        echo "# check-failed $s ($m): $why (see $clog)" >> "$RESULTS"
    else
        STATUS[$key]="failed the protocol check: $why (see $clog)"
        note "$s $m: ${STATUS[$key]}"
    fi
}

for w in $WORKLOADS; do
    workload "$w" || { note "unknown workload $w"; continue; }
    for s in $SERVERS; do
        if [ "$KIND" = workers ]; then [ "$s" = gateway-events ] && check_server gateway-events events; continue; fi
        [ "$KIND" = allocs ] && continue
        m=$(mode_for "$s" "$KIND")
        [ -n "$m" ] || continue
        if [ "$DEFLATE" = 1 ]; then
            for v in $(deflate_variants "$s" "$w"); do check_server "$s" "$m" "$v"; done
        else
            check_server "$s" "$m"
        fi
    done
done

# ================================================================ measurements
# measure_deflate WORKLOAD: every server in each of its deflate settings, the setting recorded as
# deflate=SETTING on its result lines; idle ones on a fresh server per repetition.
measure_deflate() {
    local w=$1 s m v label
    for s in $SERVERS; do
        m=$(mode_for "$s" "$KIND")
        [ -n "$m" ] || continue
        v=$(deflate_variants "$s" "$w")
        if [ -z "$v" ]; then
            echo "# skip $w $s: no permessage-deflate setting here (bench/run.sh deflate_variants)" >> "$RESULTS"
            continue
        fi
        for v in $v; do
            label="$s-$m-$v"
            if [ "${STATUS[$s:$m:$v]:-}" != ok ]; then
                echo "# skip $w $s ($m, deflate $v): ${STATUS[$s:$m:$v]:-not checked}" >> "$RESULTS"
                continue
            fi
            server_cmd "$s" "$m" "$v"
            case "$w" in
                idle*)
                    for _ in $(seq 1 "$IDLE_REPS"); do
                        start_server "$label" "${SRV_PIN[@]}" || break
                        run_loadgen "$w" "deflate=$v" "${CLI_PIN[@]}" -- "${LG[@]}" --name "$s" --port "$PORT" --pid "$SPID" --proto "$m"
                        stop_server "$label"
                    done ;;
                *)
                    start_server "$label" "${SRV_PIN[@]}" || { echo "# skip $w $s ($m, deflate $v): did not start" >> "$RESULTS"; continue; }
                    for _ in $(seq 1 "$REPS"); do
                        run_loadgen "$w" "deflate=$v" "${CLI_PIN[@]}" -- "${LG[@]}" --name "$s" --port "$PORT" --pid "$SPID" --proto "$m"
                        sleep 0.2
                    done
                    stop_server "$label" ;;
            esac
        done
    done
}

t_begin=$(date +%s)
for w in $WORKLOADS; do
    workload "$w" || continue
    echo "# workload $w $DESC" >> "$RESULTS"
    note "workload $w: $DESC"
    if [ "$KIND" = allocs ]; then
        "$BUILD/bench/alloc_count" >> "$RESULTS" 2>&1 || echo "# skip $w gateway: bench/alloc_count failed" >> "$RESULTS"
        continue
    fi
    if [ "$KIND" = workers ]; then
        case " $SERVERS " in *" gateway-events "*) ;; *) continue ;; esac
        if [ "${STATUS[gateway-events:events]:-}" != ok ]; then
            echo "# skip $w gateway-events: ${STATUS[gateway-events:events]:-not checked}" >> "$RESULTS"
            continue
        fi
        for n in $WORKERS_LIST; do
            server_cmd gateway-events events
            ARGS=("$n")
            start_server "gateway-events-w$n" "${BOTH_PIN[@]}" || { echo "# skip $w $n workers: did not start" >> "$RESULTS"; continue; }
            for _ in $(seq 1 "$REPS"); do
                run_loadgen "$w" "workers=$n" "${BOTH_PIN[@]}" -- "${LG[@]}" --name gateway-events --port "$PORT" --pid "$SPID"
            done
            stop_server "gateway-events-w$n"
        done
        continue
    fi
    if [ "$DEFLATE" = 1 ]; then
        measure_deflate "$w"
        continue
    fi
    for s in $SERVERS; do
        m=$(mode_for "$s" "$KIND")
        [ -n "$m" ] || continue
        if [ "${STATUS[$s:$m]:-}" != ok ]; then
            echo "# skip $w $s ($m): ${STATUS[$s:$m]:-not checked}" >> "$RESULTS"
            continue
        fi
        server_cmd "$s" "$m"
        reps=$REPS
        [ "$w" = idle ] || [ "$w" = idle-sio ] && reps=$IDLE_REPS
        [ "$w" = churn ] && reps=$CHURN_REPS
        if [ "$w" = idle ] || [ "$w" = idle-sio ] || [ "$w" = churn ]; then  # a fresh server per repetition: memory growth from a clean start
            for _ in $(seq 1 "$reps"); do
                start_server "$s-$m" "${SRV_PIN[@]}" || break
                run_loadgen "$w" "" "${CLI_PIN[@]}" -- "${LG[@]}" --name "$s" --port "$PORT" --pid "$SPID" --proto "$m"
                stop_server "$s-$m"
            done
            continue
        fi
        start_server "$s-$m" "${SRV_PIN[@]}" || { echo "# skip $w $s ($m): did not start" >> "$RESULTS"; continue; }
        for _ in $(seq 1 "$reps"); do
            run_loadgen "$w" "" "${CLI_PIN[@]}" -- "${LG[@]}" --name "$s" --port "$PORT" --pid "$SPID" --proto "$m"
            sleep 0.2
        done
        stop_server "$s-$m"
    done
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg); measurements took $(( $(date +%s) - t_begin )) s" >> "$RESULTS"

# ================================================================ table
echo
echo "gateway.hpp benchmark matrix. Raw lines: $RESULTS (bench/run.sh --table FILE prints this table again)"
print_table "$RESULTS" | tee "$OUT/table-$STAMP.md"
