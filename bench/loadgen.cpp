// loadgen: WebSocket (RFC 6455) load generator for gateway.hpp's benchmarks (bench/PROTOCOL.md).
//
// One process, one thread, Linux epoll, raw non-blocking TCP sockets. It does the client opening
// handshake itself (and checks Sec-WebSocket-Accept; with Socket.IO also the Engine.IO open packet
// and the namespace connect), then runs one mode:
//
//   loadgen echo       N connections x P messages in flight x S bytes, for --seconds after
//                      --warmup; reports msgs/s, round-trip p50/p99, server CPU (with --pid)
//   loadgen idle       opens N connections, handshakes them, and reports the server's RSS
//                      growth per connection (--pid)
//   loadgen broadcast  K members join room "bench", one more connection publishes; reports
//                      broadcasts/s, deliveries/s and the latency of every delivery
//   loadgen cluster    broadcast over two nodes of a cluster (--port and --port-b): members
//                      alternate between them, publishers on A (--publishers 2: one on each);
//                      reports deliveries/s and latency per node (local and over the cluster),
//                      and the CPU of both servers and of Redis (--pid, --pid-b, --redis-pid)
//   loadgen connect    C concurrent loops of connect, upgrade, close handshake; reports
//                      connections/s and connect-to-upgraded latency
//   loadgen churn      R rounds of opening N connections as idle does and closing them with a
//                      close handshake; reports the server's RSS before, open and after each
//                      round (--pid), so memory that a closed connection keeps shows as growth
//
// --proto says what the frames carry: raw payloads, the events envelope {"event":E,"data":X},
// or Socket.IO packets 42["E",X] over the websocket transport (with --ack 1, echo asks for an
// acknowledgement, 42<id>["E",X], and expects 43<id>[X]; --nsp names the namespace).
//
// permessage-deflate (RFC 7692): --deflate 1 offers "permessage-deflate; client_max_window_bits",
// as browsers do, and records the server's answer. The generator never compresses what it sends.
// broadcast --payload json publishes a market-data object of about --size bytes (seeded, keys in
// sorted order and numbers in their shortest form, so that every JSON library sends it back byte
// for byte) and counts the bytes the members read from their sockets. Every --sample-th member
// inflates and checks each delivery (zlib, raw, with 00 00 ff ff appended, its history kept or
// dropped as the handshake agreed); the others take each frame as the next broadcast unread.
//
// Output: one line per result starting with "result ", key=value pairs.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#if defined(LOADGEN_ZLIB)
#include <zlib.h>
#endif

namespace {

using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------- options

enum class Proto { raw, events, socketio };

// What a broadcast carries: "<seq>:<ns>:<letters>" as a JSON string, or a market-data object.
enum class Payload { text, json };

const char* proto_name(Proto p) {
    switch (p) {
        case Proto::raw: return "raw";
        case Proto::events: return "events";
        case Proto::socketio: return "socketio";
    }
    return "?";
}

struct Options {
    std::string mode;
    std::string name = "unknown";
    Proto proto = Proto::raw;
    std::string event = "echo";  // echo: the event name sent (events and socketio)
    std::string room = "bench";  // broadcast: the room the members join
    std::string nsp = "/";       // socketio: the namespace connected to ("40" or "40/nsp,")
    bool ack = false;            // socketio echo: ask for an acknowledgement (an ack id) instead of an event back
    std::string host = "127.0.0.1";
    std::string path;            // default "/", or Socket.IO's path with --proto socketio
    int port = 0;
    int conns = -1;  // default depends on the mode
    int inflight = 10;
    std::size_t size = 64;
    double seconds = 5.0;
    double warmup = 1.0;
    double settle = 1.0;
    int pid = 0;
    int max_pending = 256;   // connects/handshakes in progress at once while opening connections
    double timeout = -1;     // default depends on the mode
    int members = 1000;      // broadcast: room members
    int window = 16;         // broadcast: outstanding broadcasts at most (without --rate)
    double rate = 0;         // broadcast: fixed broadcasts per second (0: as fast as --window allows)
    int rounds = 5;          // churn: open-and-close rounds
    int port_b = 0;          // cluster: the second node's port (members alternate A, B, A, ...)
    int pid_b = 0;           // cluster: the second node's pid, for its CPU time
    int redis_pid = 0;       // cluster: redis-server's pid, for its CPU time
    int publishers = 1;      // broadcast, cluster: 1 (on A) or 2 (one on each node, taking turns)
    bool deflate = false;    // offer permessage-deflate
    Payload payload = Payload::text;   // broadcast: what is published
    int sample = 50;         // broadcast: every sample-th member inflates and checks every delivery
    std::uint64_t seed = 7692;   // broadcast --payload json: the object's numbers
};

[[noreturn]] void usage(int code) {
    std::fprintf(code == 0 ? stdout : stderr,
                 "usage: loadgen echo|idle|broadcast|cluster|connect|churn --port N [options]\n"
                 "  common:    --name NAME  --host IP  --path P  --pid PID  --proto raw|events|socketio\n"
                 "             --seconds D  --warmup W  --size BYTES  --max-pending N  --timeout S\n"
                 "  echo:      --conns 100 --inflight 10 --size 64 --seconds 5 --warmup 1\n"
                 "             [--event NAME] (implies --proto events unless --proto is given; default echo)\n"
                 "             [--ack 1] (socketio: 42<id>[\"E\",X] acknowledged by 43<id>[X], ids counting from 0)\n"
                 "  idle:      --conns 10000 --settle 1 --timeout 60 (--pid for memory figures)\n"
                 "  broadcast: --members 1000 --window 16 | --rate R, --size 64, --timeout 10\n"
                 "             (--proto events or socketio; members join room \"bench\", --room NAME)\n"
                 "  cluster:   broadcast's options, and --port-b N (the second node), --pid-b PID,\n"
                 "             --redis-pid PID, --publishers 1|2 (1: on A; 2: one on A, one on B, in turn)\n"
                 "  connect:   --conns 50 --seconds 5 --warmup 1 --timeout 5\n"
                 "  churn:     --pid PID --conns 10000 --rounds 5 --settle 1 --timeout 60\n"
                 "  deflate:   --deflate 1 (idle, churn, connect, broadcast): offer permessage-deflate\n"
                 "             broadcast --payload json --size 2048 --sample 50 --seed 7692: a market-data\n"
                 "             object; every 50th member inflates and checks every delivery\n"
                 "  socketio:  the path defaults to /socket.io/?EIO=4&transport=websocket; --nsp /NAME (default /)\n");
    std::exit(code);
}

/// A 0-or-1 option's value; anything else is a usage error.
bool flag(std::string_view name, std::string_view value) {
    if (value != "0" && value != "1") {
        std::fprintf(stderr, "%.*s takes 0 or 1\n", static_cast<int>(name.size()), name.data());
        usage(2);
    }
    return value == "1";
}

Options parse_options(int argc, char** argv) {
    Options o;
    if (argc < 2) usage(2);
    o.mode = argv[1];
    if (o.mode == "-h" || o.mode == "--help") usage(0);
    if (o.mode != "echo" && o.mode != "idle" && o.mode != "broadcast" && o.mode != "cluster" && o.mode != "connect" &&
        o.mode != "churn")
        usage(2);
    bool proto_given = false, event_given = false;
    for (int i = 2; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "-h" || a == "--help") usage(0);
        if (i + 1 >= argc) {
            std::fprintf(stderr, "missing value for %s\n", argv[i]);
            usage(2);
        }
        const char* v = argv[++i];
        if (a == "--name") o.name = v;
        else if (a == "--host") o.host = v;
        else if (a == "--path") o.path = v;
        else if (a == "--event") o.event = v, event_given = true;
        else if (a == "--room") o.room = v;
        else if (a == "--nsp") o.nsp = v;
        else if (a == "--ack") o.ack = flag(a, v);
        else if (a == "--proto") {
            const std::string_view p = v;
            if (p == "raw") o.proto = Proto::raw;
            else if (p == "events") o.proto = Proto::events;
            else if (p == "socketio") o.proto = Proto::socketio;
            else {
                std::fprintf(stderr, "unknown --proto %s\n", v);
                usage(2);
            }
            proto_given = true;
        }
        else if (a == "--port") o.port = std::atoi(v);
        else if (a == "--conns") o.conns = std::atoi(v);
        else if (a == "--inflight") o.inflight = std::atoi(v);
        else if (a == "--size") o.size = static_cast<std::size_t>(std::strtoull(v, nullptr, 10));
        else if (a == "--seconds") o.seconds = std::atof(v);
        else if (a == "--warmup") o.warmup = std::atof(v);
        else if (a == "--settle") o.settle = std::atof(v);
        else if (a == "--pid") o.pid = std::atoi(v);
        else if (a == "--max-pending") o.max_pending = std::atoi(v);
        else if (a == "--timeout") o.timeout = std::atof(v);
        else if (a == "--members") o.members = std::atoi(v);
        else if (a == "--window") o.window = std::atoi(v);
        else if (a == "--rate") o.rate = std::atof(v);
        else if (a == "--rounds") o.rounds = std::atoi(v);
        else if (a == "--port-b") o.port_b = std::atoi(v);
        else if (a == "--pid-b") o.pid_b = std::atoi(v);
        else if (a == "--redis-pid") o.redis_pid = std::atoi(v);
        else if (a == "--publishers") o.publishers = std::atoi(v);
        else if (a == "--deflate") o.deflate = flag(a, v);
        else if (a == "--payload") {
            const std::string_view b = v;
            if (b == "text") o.payload = Payload::text;
            else if (b == "json") o.payload = Payload::json;
            else {
                std::fprintf(stderr, "--payload takes text or json\n");
                usage(2);
            }
        }
        else if (a == "--sample") o.sample = std::atoi(v);
        else if (a == "--seed") o.seed = std::strtoull(v, nullptr, 10);
        else {
            std::fprintf(stderr, "unknown option %s\n", argv[i - 1]);
            usage(2);
        }
    }
    // --event NAME alone keeps its old meaning: echo through the gateway's envelope.
    if (event_given && !proto_given) o.proto = Proto::events;
    const bool bcast = o.mode == "broadcast" || o.mode == "cluster";
    if (bcast && o.proto == Proto::raw) o.proto = Proto::events;
    if (o.path.empty()) o.path = o.proto == Proto::socketio ? "/socket.io/?EIO=4&transport=websocket" : "/";
    if (o.conns < 0) o.conns = o.mode == "echo" ? 100 : o.mode == "connect" ? 50 : 10000;
    if (o.timeout < 0) o.timeout = o.mode == "idle" || o.mode == "churn" ? 60 : bcast ? 10 : 5;
    const bool json_safe = std::all_of(o.event.begin(), o.event.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; }) &&
                           std::all_of(o.room.begin(), o.room.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; }) &&
                           o.nsp.starts_with('/') &&
                           std::all_of(o.nsp.begin(), o.nsp.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '/'; });
    if (o.port <= 0 || o.port > 65535 || o.conns <= 0 || o.inflight <= 0 || o.max_pending <= 0 || o.seconds <= 0 ||
        o.warmup < 0 || o.members <= 0 || o.window <= 0 || o.rate < 0 || o.timeout <= 0 || o.rounds <= 0 ||
        o.port_b < 0 || o.port_b > 65535 || o.publishers < 1 || o.publishers > 2 || !json_safe) {
        std::fprintf(stderr, "bad option value\n");
        usage(2);
    }
    if (o.ack && (o.mode != "echo" || o.proto != Proto::socketio)) {  // acknowledgements are Socket.IO's, and echo's
        std::fprintf(stderr, "--ack 1 needs echo --proto socketio\n");
        usage(2);
    }
    if (o.mode == "cluster" && o.port_b == 0) {  // the point is a room spread over two nodes
        std::fprintf(stderr, "cluster needs --port-b\n");
        usage(2);
    }
    if (o.mode != "cluster" && (o.port_b != 0 || o.pid_b != 0 || o.redis_pid != 0)) {
        std::fprintf(stderr, "--port-b, --pid-b and --redis-pid are for cluster\n");
        usage(2);
    }
    if (o.publishers != 1 && !bcast) {
        std::fprintf(stderr, "--publishers is for broadcast and cluster\n");
        usage(2);
    }
    // Echo compares each reply with what it sent, byte for byte: a compressed echo is not that.
    if (o.deflate && (o.mode == "echo" || o.mode == "cluster")) {
        std::fprintf(stderr, "--deflate 1 is for idle, churn, connect and broadcast\n");
        usage(2);
    }
#if !defined(LOADGEN_ZLIB)
    if (o.deflate) {
        std::fprintf(stderr, "--deflate 1 needs loadgen built with zlib\n");
        std::exit(2);
    }
#endif
    // One publisher: a member that does not inflate takes each frame as the next broadcast, which
    // holds only while broadcasts reach it in the order they were sent.
    if (o.payload == Payload::json && (o.mode != "broadcast" || o.publishers != 1)) {
        std::fprintf(stderr, "--payload json is for broadcast with one publisher\n");
        usage(2);
    }
    if (o.sample < 1) {
        std::fprintf(stderr, "--sample must be at least 1\n");
        usage(2);
    }
    if (o.mode == "churn" && o.pid <= 0) {  // its figures are all the server's memory
        std::fprintf(stderr, "churn needs --pid\n");
        usage(2);
    }
    return o;
}

// ---------------------------------------------------------------- SHA-1 / base64
// Only used to check Sec-WebSocket-Accept during the handshake.

std::array<std::uint8_t, 20> sha1(std::string_view msg) {
    std::uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
    std::string m(msg);
    const std::uint64_t bit_len = static_cast<std::uint64_t>(msg.size()) * 8u;
    m.push_back(static_cast<char>(0x80));
    while (m.size() % 64 != 56) m.push_back('\0');
    for (int i = 7; i >= 0; --i) m.push_back(static_cast<char>((bit_len >> (i * 8)) & 0xffu));
    auto rol = [](std::uint32_t x, int n) { return (x << n) | (x >> (32 - n)); };
    for (std::size_t off = 0; off < m.size(); off += 64) {
        std::uint32_t w[80];
        for (int i = 0; i < 16; ++i) {
            const auto* p = reinterpret_cast<const unsigned char*>(m.data() + off + 4 * i);
            w[i] = (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) |
                   (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
        }
        for (int i = 16; i < 80; ++i) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        std::uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; ++i) {
            std::uint32_t f, k;
            if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999u; }
            else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1u; }
            else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDCu; }
            else { f = b ^ c ^ d; k = 0xCA62C1D6u; }
            const std::uint32_t t = rol(a, 5) + f + e + k + w[i];
            e = d; d = c; c = rol(b, 30); b = a; a = t;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
    }
    std::array<std::uint8_t, 20> out{};
    for (int i = 0; i < 5; ++i)
        for (int j = 0; j < 4; ++j) out[static_cast<std::size_t>(i * 4 + j)] = static_cast<std::uint8_t>(h[i] >> (24 - 8 * j));
    return out;
}

std::string base64(const std::uint8_t* p, std::size_t n) {
    static constexpr char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    for (std::size_t i = 0; i < n; i += 3) {
        std::uint32_t v = std::uint32_t{p[i]} << 16;
        if (i + 1 < n) v |= std::uint32_t{p[i + 1]} << 8;
        if (i + 2 < n) v |= std::uint32_t{p[i + 2]};
        out.push_back(tbl[(v >> 18) & 63]);
        out.push_back(tbl[(v >> 12) & 63]);
        out.push_back(i + 1 < n ? tbl[(v >> 6) & 63] : '=');
        out.push_back(i + 2 < n ? tbl[v & 63] : '=');
    }
    return out;
}

std::string expected_accept(const std::string& key) {
    const auto d = sha1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    return base64(d.data(), d.size());
}

// ---------------------------------------------------------------- /proc readers

struct Mem {
    long rss_kib = -1;
    long anon_kib = -1;
};

Mem read_mem(int pid) {
    Mem m;
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("VmRSS:", 0) == 0) m.rss_kib = std::atol(line.c_str() + 6);
        else if (line.rfind("RssAnon:", 0) == 0) m.anon_kib = std::atol(line.c_str() + 8);
    }
    return m;
}

// utime + stime of the whole process (all threads), in seconds; -1 if unknown.
double read_cpu_seconds(int pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const auto rp = s.rfind(')');
    if (rp == std::string::npos) return -1;
    std::istringstream in(s.substr(rp + 2));
    // Fields after comm: 3=state ... 14=utime 15=stime.
    std::string tok;
    unsigned long long utime = 0, stime = 0;
    for (int field = 3; field <= 15 && (in >> tok); ++field) {
        if (field == 14) utime = std::strtoull(tok.c_str(), nullptr, 10);
        if (field == 15) stime = std::strtoull(tok.c_str(), nullptr, 10);
    }
    const long tck = sysconf(_SC_CLK_TCK);
    return static_cast<double>(utime + stime) / static_cast<double>(tck > 0 ? tck : 100);
}

double self_cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return tv(ru.ru_utime) + tv(ru.ru_stime);
}

void raise_nofile() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

long nofile_limit() {
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    return static_cast<long>(rl.rlim_cur);
}

// ---------------------------------------------------------------- frames and messages

constexpr std::uint8_t kMask[4] = {0x37, 0xfa, 0x21, 0x3d};
constexpr char kAlnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

// The header of an unfragmented frame (FIN set) with the given opcode and payload length.
std::string frame_header(std::uint8_t opcode, std::size_t len, bool masked) {
    std::string h;
    h.push_back(static_cast<char>(0x80 | opcode));
    const auto m = static_cast<std::uint8_t>(masked ? 0x80 : 0);
    if (len < 126) {
        h.push_back(static_cast<char>(m | len));
    } else if (len <= 0xffff) {
        h.push_back(static_cast<char>(m | 126));
        h.push_back(static_cast<char>(len >> 8));
        h.push_back(static_cast<char>(len & 0xff));
    } else {
        h.push_back(static_cast<char>(m | 127));
        for (int i = 7; i >= 0; --i) h.push_back(static_cast<char>((static_cast<std::uint64_t>(len) >> (8 * i)) & 0xff));
    }
    return h;
}

// The size of an unmasked server frame's header for a payload of len bytes (the shortest form).
std::size_t server_header_size(std::uint64_t len) { return len < 126 ? 2 : len <= 0xffff ? 4 : 10; }

// Appends a masked client frame to w; the mask key is fixed since the server is what is measured.
void append_client_frame(std::string& w, std::uint8_t opcode, std::string_view payload) {
    w += frame_header(opcode, payload.size(), true);
    w.append(reinterpret_cast<const char*>(kMask), 4);
    const std::size_t start = w.size();
    w.append(payload);
    for (std::size_t i = 0; i < payload.size(); ++i)
        w[start + i] = static_cast<char>(static_cast<std::uint8_t>(w[start + i]) ^ kMask[i & 3]);
}

std::string client_frame(std::uint8_t opcode, std::string_view payload) {
    std::string w;
    append_client_frame(w, opcode, payload);
    return w;
}

// What Socket.IO packets of namespace nsp carry between the type (and ack id) and the rest: nothing
// for "/", else the namespace and a comma.
std::string sio_nsp_prefix(std::string_view nsp) { return nsp == "/" ? std::string() : std::string(nsp) + ","; }

// What a text message carrying event E with string data X looks like in each protocol (Socket.IO:
// in the namespace whose sio_nsp_prefix is nsp). X must need no JSON escapes (the generator only
// uses letters, digits and ':').
std::string envelope(Proto p, std::string_view nsp, std::string_view event, std::string_view data) {
    std::string s;
    switch (p) {
        case Proto::raw: s.assign(data); break;
        case Proto::events:
            s.append("{\"event\":\"").append(event).append("\",\"data\":\"").append(data).append("\"}");
            break;
        case Proto::socketio: s.append("42").append(nsp).append("[\"").append(event).append("\",\"").append(data).append("\"]"); break;
    }
    return s;
}

// Echo frames, built once: `variants` different payloads sent in turn, so that a reordered or
// mixed-up echo is caught. Raw payloads are printable ASCII (valid UTF-8); event data is letters
// and digits, so the JSON needs no escapes and the echo must be the same bytes. With Socket.IO
// acknowledgements every message carries its own id, so only the parts around it are built here.
struct FrameSet {
    std::vector<std::string> wire;        // masked frames as sent
    std::vector<std::string> payload;     // the expected echoed payloads
    std::vector<std::string> expect_hdr;  // the expected server frame header
    std::vector<std::string> ack_args;    // --ack: what follows the id in the request, ["E","X"]
    std::vector<std::string> ack_reply;   // --ack: what follows the id in the acknowledgement, ["X"]
};

FrameSet build_frames(std::size_t size, int variants, Proto proto, std::string_view nsp, const std::string& event) {
    FrameSet fs;
    for (int v = 0; v < variants; ++v) {
        std::string data(size, ' ');
        for (std::size_t i = 0; i < size; ++i) {
            const std::size_t k = i + static_cast<std::size_t>(v) * 7;
            data[i] = proto == Proto::raw ? static_cast<char>(33 + k % 94) : kAlnum[k % 62];
        }
        fs.ack_args.push_back("[\"" + event + "\",\"" + data + "\"]");
        fs.ack_reply.push_back("[\"" + data + "\"]");
        std::string payload = envelope(proto, nsp, event, data);
        fs.wire.push_back(client_frame(0x1, payload));
        fs.expect_hdr.push_back(frame_header(0x1, payload.size(), false));
        fs.payload.push_back(std::move(payload));
    }
    return fs;
}

// A broadcast's data: "<seq>:<send ns>:" then letters up to `size` bytes, a pattern that depends
// on seq so that a delivery can be checked byte for byte from its own first two fields.
void broadcast_data(std::string& out, std::uint64_t seq, std::int64_t ns, std::size_t size) {
    char buf[48];
    out.clear();
    auto r = std::to_chars(buf, buf + sizeof buf, seq);
    out.append(buf, r.ptr);
    out.push_back(':');
    r = std::to_chars(buf, buf + sizeof buf, ns);
    out.append(buf, r.ptr);
    out.push_back(':');
    for (std::size_t i = out.size(); i < size; ++i) out.push_back(kAlnum[(seq + i) % 62]);
}

// What a text message carrying event E with the JSON value V (written as it is, not quoted)
// looks like in each protocol.
std::string envelope_json(Proto p, std::string_view nsp, std::string_view event, std::string_view value) {
    std::string s;
    switch (p) {
        case Proto::raw: s.assign(value); break;
        case Proto::events: s.append("{\"event\":\"").append(event).append("\",\"data\":").append(value).append("}"); break;
        case Proto::socketio: s.append("42").append(nsp).append("[\"").append(event).append("\",").append(value).append("]"); break;
    }
    return s;
}

// ---------------------------------------------------------------- the market-data payload
//
// A dashboard's update as a trading front end would push it: a header and one row per symbol, the
// same keys in every row, prices that move a little from one update to the next, growing volumes
// and millisecond timestamps. Everything is a function of (seed, seq, row), so a member can rebuild
// what it should have received from the object's own "seq" and "sent_ns". Keys are in sorted order
// and numbers in the form every JSON library writes back (JavaScript's JSON.stringify and
// nlohmann::json alike), so a server that parses and re-serializes it sends the same bytes.

std::uint64_t mix64(std::uint64_t x) {  // splitmix64's finalizer
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

constexpr std::string_view kSymbols[] = {
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "AVGO", "ORCL", "ADBE", "CRM",  "AMD",  "INTC", "CSCO",
    "QCOM", "TXN",  "IBM",  "NFLX", "PYPL",  "SHOP", "UBER", "ABNB", "SNOW", "PLTR", "ASML", "SAP",  "NOVO", "NESN",
    "ROG",  "SIE",  "AIR",  "MC",   "OR",    "TTE",  "SAN",  "BNP",  "ENI",  "ISP",  "UCG",  "ALV"};
constexpr std::int64_t kEpochMs = 1764374400000;  // 2025-11-29T00:00:00Z: timestamps of today's size

void append_int(std::string& out, std::int64_t v) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

// A price in cents as a JSON number with two decimals, the last one not 0: 101.3 or 101.0 would
// come back from a server as 101.3 and 101, not as sent.
void append_price(std::string& out, std::int64_t cents) {
    if (cents % 10 == 0) cents += cents < 0 ? -1 : 1;
    if (cents < 0) {
        out.push_back('-');
        cents = -cents;
    }
    append_int(out, cents / 100);
    out.push_back('.');
    out.push_back(static_cast<char>('0' + cents / 10 % 10));
    out.push_back(static_cast<char>('0' + cents % 10));
}

void market_data(std::string& out, std::uint64_t seed, std::uint64_t seq, std::int64_t sent_ns, int rows) {
    out.clear();
    const auto s = static_cast<std::int64_t>(seq);
    out.append("{\"asof\":");
    append_int(out, kEpochMs + s * 20);
    out.append(",\"board\":\"equities\",\"rows\":[");
    constexpr std::size_t nsym = std::size(kSymbols);
    for (int i = 0; i < rows; ++i) {
        const auto row = static_cast<std::uint64_t>(i);
        const std::uint64_t fixed = mix64(seed ^ (row * 0x100000001B3ull));   // the symbol's level
        const std::uint64_t r = mix64(fixed ^ (seq * 0x9E3779B97F4A7C15ull));  // this update's moves
        const auto base = static_cast<std::int64_t>(1000 + fixed % 90000);     // 10.00 to 910.00
        const std::int64_t last = base + static_cast<std::int64_t>(r % 401) - 200;
        if (i > 0) out.push_back(',');
        out.append("{\"ask\":");
        append_price(out, last + 1 + static_cast<std::int64_t>((r >> 16) % 5));
        out.append(",\"bid\":");
        append_price(out, last - 1 - static_cast<std::int64_t>((r >> 20) % 5));
        out.append(",\"chg\":");
        append_price(out, last - base);
        out.append(",\"high\":");
        append_price(out, base + 250 + static_cast<std::int64_t>((r >> 24) % 50));
        out.append(",\"last\":");
        append_price(out, last);
        out.append(",\"low\":");
        append_price(out, base - 250 - static_cast<std::int64_t>((r >> 32) % 50));
        out.append(",\"sym\":\"").append(kSymbols[row % nsym]);
        if (row >= nsym) {  // more rows than symbols: a second listing of each
            out.push_back('.');
            append_int(out, static_cast<std::int64_t>(row / nsym));
        }
        out.append("\",\"ts\":");
        append_int(out, kEpochMs + s * 20 + static_cast<std::int64_t>((r >> 40) % 20));
        out.append(",\"vol\":");
        append_int(out, static_cast<std::int64_t>(fixed >> 44) + s * (1 + i % 7) + static_cast<std::int64_t>((r >> 48) % 100));
        out.push_back('}');
    }
    out.append("],\"sent_ns\":");
    append_int(out, sent_ns);
    out.append(",\"seq\":");
    append_int(out, s);
    out.append(",\"status\":\"open\"}");
}

// The rows that make the object at least `size` bytes long.
int market_rows(std::uint64_t seed, std::size_t size) {
    std::string out;
    int rows = 1;
    for (market_data(out, seed, 0, 0, rows); out.size() < size; market_data(out, seed, 0, 0, ++rows)) {}
    return rows;
}

// The value after `"key":` in a market-data object, or false.
template <class T>
bool field_after(std::string_view text, std::string_view key, T& v) {
    const auto at = text.find(key);
    if (at == std::string_view::npos) return false;
    const char* p = text.data() + at + key.size();
    return std::from_chars(p, text.data() + text.size(), v).ec == std::errc{};
}

// ---------------------------------------------------------------- permessage-deflate

// What a server's Sec-WebSocket-Extensions answer agreed to.
// (Whatever window the server chose, an inflater with the largest one reads it.)
struct DeflateAnswer {
    bool agreed = false;
    bool server_no_context_takeover = false;
};

std::string_view trim_ows(std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v;
}

bool iequal(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

// Reads the answer to our offer ("permessage-deflate; client_max_window_bits"): one
// permessage-deflate element whose parameters are known, each at most once, with a window of 8
// to 15 bits where one is given. False (with why) when the answer breaks RFC 7692 section 7.1.
bool read_deflate_answer(std::string_view v, DeflateAnswer& a, std::string& why) {
    a = {};
    if (trim_ows(v).empty()) return true;
    if (v.find(',') != std::string_view::npos) {
        why = "more than one extension in the answer";
        return false;
    }
    std::size_t at = v.find(';');
    if (!iequal(trim_ows(v.substr(0, at)), "permessage-deflate")) {
        why = "an extension that was not offered";
        return false;
    }
    bool seen[4] = {false, false, false, false};
    while (at != std::string_view::npos) {
        const std::size_t next = v.find(';', at + 1);
        std::string_view param = trim_ows(v.substr(at + 1, next == std::string_view::npos ? std::string_view::npos : next - at - 1));
        at = next;
        std::string_view name = param, value;
        bool has_value = false;
        if (const auto eq = param.find('='); eq != std::string_view::npos) {
            name = trim_ows(param.substr(0, eq));
            value = trim_ows(param.substr(eq + 1));
            if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
            has_value = true;
        }
        const int which = iequal(name, "server_no_context_takeover")   ? 0
                          : iequal(name, "client_no_context_takeover") ? 1
                          : iequal(name, "server_max_window_bits")     ? 2
                          : iequal(name, "client_max_window_bits")     ? 3
                                                                       : -1;
        if (which < 0 || seen[which]) {
            why = which < 0 ? "an unknown parameter" : "a repeated parameter";
            return false;
        }
        seen[which] = true;
        if (which < 2) {
            if (has_value) {
                why = "a value on a parameter that takes none";
                return false;
            }
            if (which == 0) a.server_no_context_takeover = true;
            continue;
        }
        int bits = 0;
        const auto r = std::from_chars(value.data(), value.data() + value.size(), bits);
        if (!has_value || r.ec != std::errc{} || r.ptr != value.data() + value.size() || bits < 8 || bits > 15) {
            why = "a window size that is not 8 to 15";
            return false;
        }
    }
    a.agreed = true;
    return true;
}

#if defined(LOADGEN_ZLIB)
// One connection's decompressor: a raw DEFLATE stream with the largest window, which reads any
// smaller one. Made when the connection reads its first compressed message (handshake packets,
// join replies, and every delivery only on the members that check them).
class Inflater {
public:
    Inflater() {
        if (inflateInit2(&z_, -15) != Z_OK) std::abort();
    }
    Inflater(const Inflater&) = delete;
    Inflater& operator=(const Inflater&) = delete;
    ~Inflater() { inflateEnd(&z_); }

    // One message's payload inflated into out, with 00 00 ff ff appended (section 7.2.2); reset:
    // the server keeps no history (server_no_context_takeover), so neither may we. False when it
    // is not DEFLATE or inflates past 64 MiB.
    bool inflate(std::string_view in, bool reset, std::string& out) {
        static constexpr unsigned char tail[4] = {0x00, 0x00, 0xff, 0xff};
        out.clear();
        std::size_t used = 0;
        bool ok = true;
        for (std::string_view part : {in, std::string_view(reinterpret_cast<const char*>(tail), 4)}) {
            z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(part.data()));
            z_.avail_in = static_cast<uInt>(part.size());
            while (ok) {
                if (out.size() - used < 4096) out.resize(std::max<std::size_t>(out.size() * 2, 16384));
                z_.next_out = reinterpret_cast<Bytef*>(out.data() + used);
                z_.avail_out = static_cast<uInt>(out.size() - used);
                const int r = ::inflate(&z_, Z_SYNC_FLUSH);
                used = out.size() - z_.avail_out;
                if (r == Z_STREAM_END) {  // a final block: a new stream may follow (section 7.2.3.3)
                    inflateReset(&z_);
                    if (z_.avail_in == 0) break;
                } else if (r != Z_OK && !(r == Z_BUF_ERROR && z_.avail_in == 0)) {
                    ok = false;
                } else if (z_.avail_in == 0 && z_.avail_out != 0) {
                    break;
                }
                if (used > (std::size_t{64} << 20)) ok = false;
            }
        }
        out.resize(used);
        if (reset || !ok) inflateReset(&z_);
        return ok;
    }

private:
    z_stream z_{};
};
#else
class Inflater {
public:
    bool inflate(std::string_view, bool, std::string&) { return false; }
};
#endif

struct Frame {
    std::uint8_t b0 = 0;
    bool masked = false;
    std::size_t hlen = 0;
    std::uint64_t len = 0;
    std::uint8_t opcode() const { return b0 & 0x0f; }
};

// 1: a complete frame starts at b (header in f); 0: more bytes needed; -1: absurd length.
int peek_frame(const std::uint8_t* b, std::size_t n, Frame& f) {
    if (n < 2) return 0;
    f.b0 = b[0];
    f.masked = (b[1] & 0x80) != 0;  // a server must not mask: the callers reject it
    f.hlen = 2;
    f.len = b[1] & 0x7f;
    if (f.len == 126) {
        f.hlen = 4;
        if (n < 4) return 0;
        f.len = (std::uint64_t{b[2]} << 8) | b[3];
    } else if (f.len == 127) {
        f.hlen = 10;
        if (n < 10) return 0;
        f.len = 0;
        for (std::size_t i = 0; i < 8; ++i) f.len = (f.len << 8) | b[2 + i];
    }
    if (f.masked) f.hlen += 4;
    if (f.len > (std::uint64_t{1} << 32)) return -1;
    if (n < f.hlen || n - f.hlen < f.len) return 0;
    return 1;
}

struct Percentiles {
    double p50 = 0, p99 = 0, max = 0;  // microseconds
};

Percentiles percentiles(std::vector<std::uint64_t>& ns) {
    Percentiles p;
    if (ns.empty()) return p;
    auto at = [&](double q) {
        const auto idx = static_cast<std::size_t>(q * static_cast<double>(ns.size() - 1));
        std::nth_element(ns.begin(), ns.begin() + static_cast<std::ptrdiff_t>(idx), ns.end());
        return static_cast<double>(ns[idx]) / 1000.0;
    };
    p.p50 = at(0.50);
    p.p99 = at(0.99);
    p.max = static_cast<double>(*std::max_element(ns.begin(), ns.end())) / 1000.0;
    return p;
}

// ---------------------------------------------------------------- connections

enum class State {
    Connecting,   // TCP connect in progress
    Handshaking,  // upgrade request sent, waiting for 101
    SioOpen,      // Socket.IO: waiting for the Engine.IO open packet 0{...}
    SioConnect,   // Socket.IO: "40" sent, waiting for 40{...}
    Open,
    Closing,      // connect mode: close frame sent, waiting for the server's
    Draining,     // connect mode: close frames exchanged, waiting for the server's FIN
    Closed
};

enum class Step { Pending, Open, Failed };

struct Conn {
    int fd = -1;
    State state = State::Closed;
    std::string key;
    std::string out;  // pending bytes to write
    std::size_t out_off = 0;
    std::vector<std::uint8_t> in;  // read buffer
    std::size_t in_len = 0;
    bool want_out = false;  // EPOLLOUT registered
    Clock::time_point started{};   // connect() call
    Clock::time_point deadline{};  // connect mode: give up on this attempt
    // echo bookkeeping
    std::vector<Clock::time_point> sent;  // ring of send times (FIFO, size P)
    std::size_t sent_head = 0, sent_count = 0;
    std::uint64_t next_send = 0, next_recv = 0;
    // broadcast bookkeeping
    bool member = false;
    bool joined = false;
    int node = 0;  // cluster: 0 connects to --port (A), 1 to --port-b (B)
    // The next broadcast this member should receive from each publisher (publisher p sends the
    // sequence numbers s with s % publishers == p; one publisher's reach a member in order).
    std::array<std::uint64_t, 2> expect_seq{0, 1};
    // permessage-deflate, as the handshake agreed; the inflater only where messages are read
    DeflateAnswer deflate{};
    bool sampled = false;  // broadcast --payload json: inflates and checks every delivery
    std::unique_ptr<Inflater> inflater;
};

struct Stats {
    std::uint64_t connect_errors = 0;
    std::uint64_t handshake_errors = 0;
    std::uint64_t closed_by_peer = 0;
    std::uint64_t frame_errors = 0;
    std::uint64_t close_errors = 0;  // connect mode: close handshake not completed
    // broadcast deliveries
    std::uint64_t missing = 0, duplicate = 0, garbled = 0, unexpected = 0, join_errors = 0;
};

// A broadcast not yet received by every member.
struct Outstanding {
    std::int64_t send_ns;
    std::uint32_t remaining;
    std::string expect{};  // --payload json: the message every member should receive
};

// Drain-callback results.
constexpr int kContinue = 1, kStop = 0, kDropped = -1, kBadFrame = -2;

class Runner {
public:
    explicit Runner(Options o) : opt_(std::move(o)) {
        ep_ = epoll_create1(EPOLL_CLOEXEC);
        if (ep_ < 0) die("epoll_create1");
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<std::uint16_t>(opt_.port));
        if (inet_pton(AF_INET, opt_.host.c_str(), &a.sin_addr) != 1) {
            std::fprintf(stderr, "bad --host %s\n", opt_.host.c_str());
            std::exit(2);
        }
        addr_ = a;
        addr_b_ = a;
        addr_b_.sin_port = htons(static_cast<std::uint16_t>(opt_.port_b));
        origin_ = Clock::now();
        sio_pong_ = client_frame(0x1, "3");
        nsp_ = sio_nsp_prefix(opt_.nsp);
        sio_connect_frame_ = client_frame(0x1, "40" + nsp_);
        sio_connected_ = "40" + nsp_ + "{";
        sio_event_head_ = "42" + nsp_;
        sio_ack_head_ = "43" + nsp_;
        close_frame_ = client_frame(0x8, std::string_view("\x03\xe8", 2));  // 1000, normal closure
    }

    int run() {
        if (opt_.mode == "echo") return run_echo();
        if (opt_.mode == "idle") return run_idle();
        if (opt_.mode == "broadcast" || opt_.mode == "cluster") return run_broadcast();
        if (opt_.mode == "churn") return run_churn();
        return run_connect();
    }

private:
    [[noreturn]] static void die(const char* what) {
        std::fprintf(stderr, "loadgen: %s: %s\n", what, std::strerror(errno));
        std::exit(1);
    }

    static double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
    static Clock::duration dur(double s) { return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s)); }
    std::int64_t ns_since_origin(Clock::time_point t) const {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(t - origin_).count();
    }
    const char* proto() const { return proto_name(opt_.proto); }

    void ctl(int op, Conn& c, std::uint32_t events) {
        epoll_event ev{};
        ev.events = events;
        ev.data.ptr = &c;
        if (epoll_ctl(ep_, op, c.fd, &ev) != 0 && op != EPOLL_CTL_DEL) die("epoll_ctl");
    }

    // Start a non-blocking connect; returns false on immediate failure.
    bool start_connect(Conn& c, std::uint64_t index) {
        c.out.clear();
        c.out_off = 0;
        c.in_len = 0;
        c.want_out = false;
        c.started = Clock::now();
        c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c.fd < 0) {
            if (stats_.connect_errors++ < 3)
                std::fprintf(stderr, "loadgen: socket: %s (RLIMIT_NOFILE=%ld)\n", std::strerror(errno), nofile_limit());
            c.state = State::Closed;
            return false;
        }
        int one = 1;
        setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        // Key: 16 bytes derived from the index; the server only has to echo it back hashed.
        std::uint8_t raw[16];
        std::uint64_t x = 0x9E3779B97F4A7C15ull * (index + 1);
        for (int i = 0; i < 16; ++i) {
            x ^= x >> 29; x *= 0xBF58476D1CE4E5B9ull; x ^= x >> 32;
            raw[i] = static_cast<std::uint8_t>(x);
        }
        c.key = base64(raw, 16);
        c.state = State::Connecting;
        const sockaddr_in& to = c.node == 1 ? addr_b_ : addr_;
        if (connect(c.fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0 && errno != EINPROGRESS) {
            if (stats_.connect_errors++ < 3) std::fprintf(stderr, "loadgen: connect: %s\n", std::strerror(errno));
            close(c.fd);
            c.fd = -1;
            c.state = State::Closed;
            return false;
        }
        c.want_out = true;
        ctl(EPOLL_CTL_ADD, c, EPOLLIN | EPOLLOUT);
        return true;
    }

    void send_request(Conn& c) {
        c.out = "GET " + opt_.path + " HTTP/1.1\r\n"
                "Host: " + opt_.host + ":" + std::to_string(c.node == 1 ? opt_.port_b : opt_.port) + "\r\n"
                "Upgrade: websocket\r\n"
                "Connection: Upgrade\r\n"
                "Sec-WebSocket-Key: " + c.key + "\r\n"
                "Sec-WebSocket-Version: 13\r\n" +
                (opt_.deflate ? "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" : "") + "\r\n";
        c.out_off = 0;
        c.state = State::Handshaking;
    }

    // Returns false when the connection failed.
    bool flush(Conn& c) {
        while (c.out_off < c.out.size()) {
            const ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
            if (n > 0) {
                c.out_off += static_cast<std::size_t>(n);
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                break;
            } else {
                return false;
            }
        }
        if (c.out_off == c.out.size()) {
            c.out.clear();
            c.out_off = 0;
        } else if (c.out_off > (1u << 20)) {
            c.out.erase(0, c.out_off);
            c.out_off = 0;
        }
        const bool need = !c.out.empty();
        if (need != c.want_out) {
            c.want_out = need;
            ctl(EPOLL_CTL_MOD, c, EPOLLIN | (need ? EPOLLOUT : 0u));
        }
        return true;
    }

    // Read what is available into c.in; returns bytes read, 0 on EOF, -1 on
    // error, -2 when nothing was available.
    ssize_t fill(Conn& c) {
        ssize_t total = 0;
        for (;;) {
            if (c.in.size() - c.in_len < 16384) c.in.resize(std::max<std::size_t>(c.in.size() * 2, 65536));
            const ssize_t n = ::recv(c.fd, c.in.data() + c.in_len, c.in.size() - c.in_len, 0);
            if (n > 0) {
                c.in_len += static_cast<std::size_t>(n);
                total += n;
                if (c.in_len < c.in.size()) return total;  // short read: drained
                continue;
            }
            if (n == 0) return total > 0 ? total : 0;
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return total > 0 ? total : -2;
            return total > 0 ? total : -1;
        }
    }

    void kill(Conn& c) {
        if (c.fd >= 0) {
            ctl(EPOLL_CTL_DEL, c, 0);
            close(c.fd);
        }
        c.fd = -1;
        c.state = State::Closed;
    }

    // Close with RST: no TIME_WAIT left behind on the generator's side.
    void abort_conn(Conn& c) {
        if (c.fd >= 0) {
            linger lg{1, 0};
            setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        kill(c);
    }

    // Walks the complete frames in c.in and hands each data frame to on_msg(frame, head, payload),
    // which returns kContinue, kStop (this frame consumed, leave the rest) or kDropped (it dropped
    // the connection). Pings are answered here: WebSocket pings with a pong, and with Socket.IO the
    // Engine.IO ping "2" with "3" (queued in c.out; the caller flushes). Returns kContinue, kStop,
    // kDropped or kBadFrame (the caller drops the connection).
    template <class F>
    int drain_frames(Conn& c, F&& on_msg) {
        std::size_t off = 0;
        int result = kContinue;
        for (;;) {
            Frame f;
            const std::uint8_t* head = c.in.data() + off;
            const int r = peek_frame(head, c.in_len - off, f);
            if (r == 0) break;
            if (r < 0) {
                result = kBadFrame;
                break;
            }
            const std::string_view payload(reinterpret_cast<const char*>(head + f.hlen), static_cast<std::size_t>(f.len));
            off += f.hlen + static_cast<std::size_t>(f.len);
            if (!f.masked && f.b0 == 0x89) {
                c.out += client_frame(0xA, payload);
                continue;
            }
            if (!f.masked && f.b0 == 0x8A) continue;
            if (opt_.proto == Proto::socketio && !f.masked && f.b0 == 0x81 && payload == "2") {
                c.out += sio_pong_;
                continue;
            }
            const int v = on_msg(f, head, payload);
            if (v == kDropped) return kDropped;
            if (v == kStop) {
                result = kStop;
                break;
            }
        }
        if (off > 0) {
            std::memmove(c.in.data(), c.in.data() + off, c.in_len - off);
            c.in_len -= off;
        }
        return result;
    }

    // The 101 response: 1 when complete and valid, 0 when more bytes are needed, -1 on failure
    // (connection dropped).
    int parse_upgrade(Conn& c) {
        std::string_view buf(reinterpret_cast<const char*>(c.in.data()), c.in_len);
        const auto end = buf.find("\r\n\r\n");
        if (end == std::string_view::npos) {
            if (c.in_len > 16384) {
                fail_handshake(c, "response head too large");
                return -1;
            }
            return 0;
        }
        std::string head(buf.substr(0, end));
        if (head.rfind("HTTP/1.1 101", 0) != 0) {
            fail_handshake(c, head.substr(0, head.find('\r')).c_str());
            return -1;
        }
        std::string lower = head;
        for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        const auto k = lower.find("\r\nsec-websocket-accept:");
        if (k == std::string::npos) {
            fail_handshake(c, "no Sec-WebSocket-Accept");
            return -1;
        }
        auto v = k + std::strlen("\r\nsec-websocket-accept:");
        while (v < head.size() && (head[v] == ' ' || head[v] == '\t')) ++v;
        auto ve = head.find("\r\n", v);
        if (ve == std::string::npos) ve = head.size();
        while (ve > v && (head[ve - 1] == ' ' || head[ve - 1] == '\t')) --ve;
        if (head.substr(v, ve - v) != expected_accept(c.key)) {
            fail_handshake(c, "bad Sec-WebSocket-Accept");
            return -1;
        }
        // Sec-WebSocket-Extensions, every line of it joined as one list.
        std::string extensions;
        for (auto e = lower.find("\r\nsec-websocket-extensions:"); e != std::string::npos;
             e = lower.find("\r\nsec-websocket-extensions:", e + 1)) {
            const auto from = e + std::strlen("\r\nsec-websocket-extensions:");
            const auto to = head.find("\r\n", from);
            if (!extensions.empty()) extensions += ", ";
            extensions += trim_ows(std::string_view(head).substr(from, to == std::string::npos ? std::string::npos : to - from));
        }
        std::string why;
        if (!extensions.empty() && !opt_.deflate) {
            fail_handshake(c, "the server answered Sec-WebSocket-Extensions to a request that offered none");
            return -1;
        }
        if (!read_deflate_answer(extensions, c.deflate, why)) {
            why = "bad Sec-WebSocket-Extensions answer (" + why + "): " + extensions;
            fail_handshake(c, why.c_str());
            return -1;
        }
        note_extensions(extensions);
        const std::size_t consumed = end + 4;
        std::memmove(c.in.data(), c.in.data() + consumed, c.in_len - consumed);
        c.in_len -= consumed;
        return 1;
    }

    // The first answer is the one reported (without spaces, as one key=value word); answers that
    // differ between connections are counted.
    void note_extensions(const std::string& answer) {
        std::string word;
        for (char ch : answer)
            if (ch != ' ' && ch != '\t') word.push_back(ch);
        if (word.empty()) word = "none";
        if (extensions_.empty()) extensions_ = word;
        else if (word != extensions_) ++extensions_differ_;
        if (word != "none") ++deflate_conns_;
    }

    // A text message's content: its payload, or inflated into inflated_ when RSV1 marks it
    // compressed. False when it is compressed without the extension or does not inflate.
    bool message_text(Conn& c, const Frame& f, std::string_view payload, std::string_view& text) {
        if (!(f.b0 & 0x40)) {
            text = payload;
            return true;
        }
        if (!c.deflate.agreed) return false;
        if (!c.inflater) c.inflater = std::make_unique<Inflater>();
        if (!c.inflater->inflate(payload, c.deflate.server_no_context_takeover, inflated_)) return false;
        text = inflated_;
        return true;
    }

    void fail_handshake(Conn& c, const char* why) {
        if (stats_.handshake_errors++ < 3) std::fprintf(stderr, "loadgen: handshake failed: %s\n", why);
        abort_conn(c);
    }

    // Moves a connection through connect, upgrade and (Socket.IO) the Engine.IO open packet and,
    // when sio_namespace_ is set, the namespace connect. Bytes after the last handshake step stay
    // in c.in.
    Step step_handshake(Conn& c, std::uint32_t ev) {
        if (c.state == State::Connecting) {
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) {
                if (stats_.connect_errors++ < 3) std::fprintf(stderr, "loadgen: connect: %s\n", std::strerror(err));
                abort_conn(c);
                return Step::Failed;
            }
            if (!(ev & EPOLLOUT)) return Step::Pending;
            send_request(c);
        }
        if (!flush(c)) {
            fail_handshake(c, "send failed");
            return Step::Failed;
        }
        if (!(ev & (EPOLLIN | EPOLLERR | EPOLLHUP))) return Step::Pending;
        const ssize_t r = fill(c);
        if (r == 0 || r == -1) {
            fail_handshake(c, r == 0 ? "closed by server" : "recv failed");
            return Step::Failed;
        }
        if (c.state == State::Handshaking) {
            const int h = parse_upgrade(c);
            if (h < 0) return Step::Failed;
            if (h == 0) return Step::Pending;
            if (opt_.proto != Proto::socketio) {
                c.state = State::Open;
                return Step::Open;
            }
            c.state = State::SioOpen;
        }
        Step result = Step::Pending;
        const int d = drain_frames(c, [&](const Frame& f, const std::uint8_t*, std::string_view frame_payload) {
            std::string_view payload = frame_payload;
            if (!f.masked && (f.b0 & ~0x40) == 0x81 && message_text(c, f, frame_payload, payload)) {
                if (c.state == State::SioOpen && payload.starts_with("0{")) {
                    if (!sio_namespace_) {
                        c.state = State::Open;
                        result = Step::Open;
                        return kStop;
                    }
                    c.out += sio_connect_frame_;
                    c.state = State::SioConnect;
                    return kContinue;
                }
                if (c.state == State::SioConnect && payload.starts_with(sio_connected_)) {
                    c.state = State::Open;
                    result = Step::Open;
                    return kStop;
                }
            }
            char why[128];
            std::snprintf(why, sizeof why, "unexpected frame during the Socket.IO handshake (byte0=0x%02x, %.40s)",
                          f.b0, std::string(payload.substr(0, 40)).c_str());
            fail_handshake(c, why);
            result = Step::Failed;
            return kDropped;
        });
        if (d == kDropped) return Step::Failed;
        if (d == kBadFrame) {
            fail_handshake(c, "bad frame during the Socket.IO handshake");
            return Step::Failed;
        }
        if (!flush(c)) {
            fail_handshake(c, "send failed");
            return Step::Failed;
        }
        return result;
    }

    static bool handshaking(State s) {
        return s == State::Connecting || s == State::Handshaking || s == State::SioOpen || s == State::SioConnect;
    }

    // Drive connects + handshakes, at most max_pending at a time, until all are open/failed or
    // the deadline passes. Frames that arrive after the handshake stay in the buffer.
    void open_all(std::vector<Conn>& conns, std::size_t max_pending, double timeout_s) {
        std::size_t next = 0, pending = 0, done = 0;
        const auto deadline = Clock::now() + dur(timeout_s);
        std::vector<epoll_event> evs(1024);
        while (done < conns.size()) {
            while (next < conns.size() && pending < max_pending) {
                if (start_connect(conns[next], next)) ++pending;
                else ++done;
                ++next;
            }
            if (Clock::now() > deadline) {
                std::fprintf(stderr, "loadgen: timed out opening connections (%zu of %zu done)\n", done, conns.size());
                for (auto& c : conns)
                    if (handshaking(c.state)) {
                        ++stats_.handshake_errors;
                        abort_conn(c);
                    }
                return;
            }
            const int n = epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), 100);
            if (n < 0 && errno != EINTR) die("epoll_wait");
            for (int i = 0; i < n; ++i) {
                Conn& c = *static_cast<Conn*>(evs[static_cast<std::size_t>(i)].data.ptr);
                const auto ev = evs[static_cast<std::size_t>(i)].events;
                if (c.state == State::Closed) continue;
                if (c.state == State::Open) {  // the server closed or sent something
                    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) check_idle_conn(c);
                    continue;
                }
                const Step s = step_handshake(c, ev);
                if (s == Step::Open) ++open_;
                if (s != Step::Pending) {
                    --pending;
                    ++done;
                }
            }
        }
    }

    // An open connection with nothing expected: answer pings, ignore the rest, notice a close.
    void check_idle_conn(Conn& c) {
        const ssize_t r = fill(c);
        if (r == 0 || r == -1) {
            ++stats_.closed_by_peer;
            kill(c);
            --open_;
            return;
        }
        if (r < 0) return;
        if (drain_frames(c, [](const Frame&, const std::uint8_t*, std::string_view) { return kContinue; }) == kBadFrame)
            c.in_len = 0;
        if (!flush(c)) {
            ++stats_.closed_by_peer;
            kill(c);
            --open_;
        }
    }

    std::uint64_t total_errors() const {
        return stats_.connect_errors + stats_.handshake_errors + stats_.closed_by_peer + stats_.frame_errors +
               stats_.close_errors + stats_.missing + stats_.duplicate + stats_.garbled + stats_.unexpected +
               stats_.join_errors;
    }

    double server_cpu() const { return opt_.pid > 0 ? read_cpu_seconds(opt_.pid) : -1; }

    /// The measured part of a timed mode: it opens after the warm-up and lasts --seconds; the
    /// server's CPU and our own are read at both ends.
    struct Window {
        Clock::time_point warm_end, end, t0{}, t1{};
        bool measuring = false;
        double cpu0 = 0, cpu1 = 0, self0 = 0, self1 = 0;
        double cpu_b0 = -1, cpu_b1 = -1, redis0 = -1, redis1 = -1;  // cluster: --pid-b, --redis-pid
        double seconds() const { return measuring ? secs(t1 - t0) : 0.0; }
        /// -1 when unknown (no --pid) or nothing was measured.
        double server_cpu_s() const { return cpu0 >= 0 && cpu1 >= 0 && measuring ? cpu1 - cpu0 : -1; }
        double server_b_cpu_s() const { return cpu_b0 >= 0 && cpu_b1 >= 0 && measuring ? cpu_b1 - cpu_b0 : -1; }
        double redis_cpu_s() const { return redis0 >= 0 && redis1 >= 0 && measuring ? redis1 - redis0 : -1; }
        double client_cpu_s() const { return self1 - self0; }
    };
    Window window_from(Clock::time_point start) const {
        Window w;
        w.warm_end = start + dur(opt_.warmup);
        w.end = w.warm_end + dur(opt_.seconds);
        return w;
    }
    /// Opens the window once the warm-up is over (recording starts); false once it has ended.
    bool in_window(Window& w, Clock::time_point now) {
        if (!w.measuring && now >= w.warm_end) {
            w.measuring = true;
            recording_ = true;
            counted_ = 0;
            w.t0 = Clock::now();
            w.cpu0 = server_cpu();
            w.cpu_b0 = opt_.pid_b > 0 ? read_cpu_seconds(opt_.pid_b) : -1;
            w.redis0 = opt_.redis_pid > 0 ? read_cpu_seconds(opt_.redis_pid) : -1;
            w.self0 = self_cpu_seconds();
        }
        return now < w.end;
    }
    void close_window(Window& w) {
        w.t1 = Clock::now();
        recording_ = false;
        w.cpu1 = server_cpu();
        w.cpu_b1 = opt_.pid_b > 0 ? read_cpu_seconds(opt_.pid_b) : -1;
        w.redis1 = opt_.redis_pid > 0 ? read_cpu_seconds(opt_.redis_pid) : -1;
        w.self1 = self_cpu_seconds();
    }

    // ------------------------------------------------------------ echo mode

    int run_echo() {
        const auto P = static_cast<std::size_t>(opt_.inflight);
        // Distinct payload variants to catch reordering/mix-ups; bounded memory.
        int variants = 16;
        while (variants > 1 && static_cast<double>(variants) * static_cast<double>(opt_.size) > 64.0 * 1024 * 1024) variants /= 2;
        frames_ = build_frames(opt_.size, variants, opt_.proto, nsp_, opt_.event);
        variants_ = static_cast<std::uint64_t>(variants);

        std::vector<Conn> conns(static_cast<std::size_t>(opt_.conns));
        raise_nofile();
        open_all(conns, static_cast<std::size_t>(opt_.max_pending), 30.0);
        if (open_ == 0) {
            std::printf("result server=%s mode=echo proto=%s conns=%d inflight=%d size=%zu seconds=0 msgs=0 msgs_per_s=0 "
                        "mb_per_s=0 p50_us=0 p99_us=0 max_us=0 server_cpu_s=0 msgs_per_cpu_s=0 client_cpu_s=0 "
                        "errors=%llu lost_conns=%d\n",
                        opt_.name.c_str(), proto(), opt_.conns, opt_.inflight, opt_.size,
                        static_cast<unsigned long long>(std::max<std::uint64_t>(total_errors(), 1)), opt_.conns);
            return 1;
        }

        // Prime: P messages in flight on every open connection.
        const auto t_start = Clock::now();
        for (auto& c : conns) {
            if (c.state != State::Open) continue;
            c.sent.assign(P, t_start);
            for (std::size_t i = 0; i < P; ++i) queue_send(c, t_start);
            if (!flush(c)) {
                conn_error(c, "send failed");
                continue;
            }
            // Frames that arrived with the handshake are already buffered: with level-triggered
            // epoll they would not trigger, so handle them now.
            if (c.in_len > 0) process_echo(c, t_start);
        }

        Window win = window_from(t_start);
        latencies_.reserve(1u << 22);
        std::vector<epoll_event> evs(1024);
        for (;;) {
            const auto now = Clock::now();
            if (!in_window(win, now)) break;
            if (open_ == 0) break;
            const int n = epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), 5);
            if (n < 0 && errno != EINTR) die("epoll_wait");
            for (int i = 0; i < n; ++i) {
                Conn& c = *static_cast<Conn*>(evs[static_cast<std::size_t>(i)].data.ptr);
                const auto ev = evs[static_cast<std::size_t>(i)].events;
                if (c.state != State::Open) continue;
                if (ev & EPOLLOUT) {
                    if (!flush(c)) { conn_error(c, "send failed"); continue; }
                }
                if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                    const ssize_t r = fill(c);
                    if (r == 0 || r == -1) { conn_error(c, r == 0 ? "closed by server" : "recv failed"); continue; }
                    if (r > 0) {
                        process_echo(c, Clock::now());
                        if (c.state == State::Open && !flush(c)) conn_error(c, "send failed");
                    }
                }
            }
        }
        close_window(win);
        const double window = win.seconds();
        const std::uint64_t msgs = counted_;
        const Percentiles p = percentiles(latencies_);
        const double rate = window > 0 ? static_cast<double>(msgs) / window : 0.0;
        const double server_cpu_s = win.server_cpu_s();
        const double per_cpu = server_cpu_s > 0 ? static_cast<double>(msgs) / server_cpu_s : 0.0;
        const std::uint64_t lost = static_cast<std::uint64_t>(opt_.conns) - static_cast<std::uint64_t>(open_);

        std::printf("result server=%s mode=echo proto=%s conns=%d inflight=%d size=%zu seconds=%.3f msgs=%llu msgs_per_s=%.0f "
                    "mb_per_s=%.2f p50_us=%.1f p99_us=%.1f max_us=%.1f server_cpu_s=%.3f msgs_per_cpu_s=%.0f "
                    "client_cpu_s=%.3f errors=%llu lost_conns=%llu\n",
                    opt_.name.c_str(), proto(), opt_.conns, opt_.inflight, opt_.size, window,
                    static_cast<unsigned long long>(msgs), rate, rate * static_cast<double>(opt_.size) / 1e6, p.p50, p.p99,
                    p.max, server_cpu_s, per_cpu, win.client_cpu_s(), static_cast<unsigned long long>(total_errors()),
                    static_cast<unsigned long long>(lost));
        std::fflush(stdout);
        for (auto& c : conns) abort_conn(c);
        return total_errors() == 0 && msgs > 0 ? 0 : 1;  // a server that never answered fails too
    }

    // A Socket.IO packet with its ack id: head, the decimal id, then tail.
    static void build_sio_packet(std::string& out, const std::string& head, std::uint64_t id, const std::string& tail) {
        char digits[24];
        const auto r = std::to_chars(digits, digits + sizeof digits, id);
        out.assign(head).append(digits, r.ptr).append(tail);
    }

    void queue_send(Conn& c, Clock::time_point now) {
        const auto vi = static_cast<std::size_t>(c.next_send % variants_);
        if (opt_.ack) {  // each request carries its own id: the connection's message count
            build_sio_packet(ack_scratch_, sio_event_head_, c.next_send, frames_.ack_args[vi]);
            append_client_frame(c.out, 0x1, ack_scratch_);
        } else {
            c.out.append(frames_.wire[vi]);
        }
        ++c.next_send;
        const std::size_t P = c.sent.size();
        c.sent[(c.sent_head + c.sent_count) % P] = now;
        ++c.sent_count;
    }

    void conn_error(Conn& c, const char* why) {
        if (why && std::strcmp(why, "closed by server") == 0) ++stats_.closed_by_peer;
        else ++stats_.frame_errors;
        if (reported_++ < 5) std::fprintf(stderr, "loadgen: connection error: %s\n", why);
        abort_conn(c);
        --open_;
    }

    // Every reply must be the next expected payload, byte for byte, in an unmasked FIN text frame
    // (--ack: the acknowledgement of the oldest request, 43<its id>[X]).
    void process_echo(Conn& c, Clock::time_point now) {
        const int r = drain_frames(c, [&](const Frame& f, const std::uint8_t* head, std::string_view payload) {
            const auto vi = static_cast<std::size_t>(c.next_recv % variants_);
            if (opt_.ack) build_sio_packet(ack_scratch_, sio_ack_head_, c.next_recv, frames_.ack_reply[vi]);
            const std::string& want = opt_.ack ? ack_scratch_ : frames_.payload[vi];
            const bool hdr_ok = !f.masked && f.b0 == 0x81 && f.len == want.size();
            const bool exact_hdr = opt_.ack ? f.hlen == server_header_size(f.len)
                                            : f.hlen == frames_.expect_hdr[vi].size() &&
                                                  std::memcmp(head, frames_.expect_hdr[vi].data(), f.hlen) == 0;
            const bool ok = hdr_ok && exact_hdr && payload == want;
            if (!ok || c.sent_count == 0) {
                char why[112];
                std::snprintf(why, sizeof why, "bad echo frame (byte0=0x%02x len=%llu, expected 0x81 len=%zu)%s", f.b0,
                              static_cast<unsigned long long>(f.len), want.size(),
                              c.sent_count == 0 ? ": unsolicited" : hdr_ok ? ": payload mismatch or reordered" : "");
                conn_error(c, f.opcode() == 0x8 ? "close frame from server" : why);
                return kDropped;
            }
            const auto sent_at = c.sent[c.sent_head];
            c.sent_head = (c.sent_head + 1) % c.sent.size();
            --c.sent_count;
            ++c.next_recv;
            if (recording_) {
                latencies_.push_back(static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now - sent_at).count()));
                ++counted_;
            }
            queue_send(c, now);
            return kContinue;
        });
        if (r == kBadFrame) conn_error(c, "absurd frame length");
    }

    // ------------------------------------------------------------ idle mode

    // Shared by idle and churn: --conns connections held open at once.
    void raise_nofile_for_conns() const {
        raise_nofile();
        const long limit = nofile_limit();
        if (limit < opt_.conns + 16)
            std::fprintf(stderr, "loadgen: warning: RLIMIT_NOFILE %ld < conns %d + 16\n", limit, opt_.conns);
    }

    Mem server_mem() const { return opt_.pid > 0 ? read_mem(opt_.pid) : Mem{}; }

    // Opens every connection in conns and leaves it idle (at most --max-pending connecting or
    // handshaking at once; Socket.IO ones connected to the namespace), then waits --settle seconds
    // while answering pings and noticing connections the server drops. Returns the seconds spent
    // opening; open_ counts the connections open.
    double open_idle(std::vector<Conn>& conns) {
        const auto t0 = Clock::now();
        open_all(conns, static_cast<std::size_t>(opt_.max_pending), opt_.timeout);
        const double open_s = secs(Clock::now() - t0);
        const auto settle_end = Clock::now() + dur(opt_.settle);
        std::vector<epoll_event> evs(1024);
        while (Clock::now() < settle_end) {
            const int n = epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), 50);
            for (int i = 0; i < n; ++i) {
                Conn& c = *static_cast<Conn*>(evs[static_cast<std::size_t>(i)].data.ptr);
                if (c.state == State::Open) check_idle_conn(c);
            }
        }
        return open_s;
    }

    int run_idle() {
        raise_nofile_for_conns();
        const Mem before = server_mem();
        const double cpu0 = server_cpu();
        std::vector<Conn> conns(static_cast<std::size_t>(opt_.conns));
        const double open_s = open_idle(conns);
        const Mem after = server_mem();
        const double cpu1 = server_cpu();
        const long n_open = open_;
        auto per_conn = [&](long a, long b) {
            return (a >= 0 && b >= 0 && n_open > 0) ? static_cast<double>(b - a) * 1024.0 / static_cast<double>(n_open) : 0.0;
        };
        std::printf("result server=%s mode=idle proto=%s conns=%d open=%ld open_s=%.3f rss_before_kib=%ld rss_after_kib=%ld "
                    "bytes_per_conn=%.0f anon_before_kib=%ld anon_after_kib=%ld anon_bytes_per_conn=%.0f "
                    "server_cpu_s=%.3f deflate_offered=%d extensions=%s extensions_differ=%llu deflate_conns=%ld errors=%llu\n",
                    opt_.name.c_str(), proto(), opt_.conns, n_open, open_s, before.rss_kib, after.rss_kib,
                    per_conn(before.rss_kib, after.rss_kib), before.anon_kib, after.anon_kib,
                    per_conn(before.anon_kib, after.anon_kib), (cpu0 >= 0 && cpu1 >= 0) ? cpu1 - cpu0 : -1.0,
                    opt_.deflate ? 1 : 0, extensions_.empty() ? "none" : extensions_.c_str(),
                    static_cast<unsigned long long>(extensions_differ_), deflate_conns_,
                    static_cast<unsigned long long>(total_errors()));
        std::fflush(stdout);
        // Abortive close (RST): avoids leaving thousands of TIME_WAIT sockets
        // on the client side between benchmark runs.
        for (auto& c : conns) abort_conn(c);
        return total_errors() == 0 && n_open == opt_.conns ? 0 : 1;
    }

    // ------------------------------------------------------------ churn mode
    //
    // Rounds of: open --conns connections as the idle mode does, read the server's memory, close
    // every one with a close handshake, wait --settle seconds, read it again. Whatever the server
    // keeps of a closed connection (a leak, a cache, allocator slack it does not return) shows as
    // RSS after closing that grows from round to round.

    struct Round {
        long open = 0;
        Mem open_mem, after_mem;
        double open_s = 0, close_s = 0;
    };

    // A read that fails means the server is gone: every figure after it is meaningless.
    Mem churn_mem() {
        const Mem m = server_mem();
        if (m.rss_kib < 0 || m.anon_kib < 0) ++mem_unread_;
        return m;
    }

    // One step of a connection in the close handshake; true once it is closed. The wait ends when
    // the socket ends, with the server's close frame before (a clean close) or without one
    // (no_close_frame_); a bad frame drops the connection.
    bool close_step(Conn& c, std::uint32_t ev, Clock::time_point now) {
        const bool sent = flush(c);
        ssize_t r = -2;
        if (!sent || (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))) r = fill(c);
        if (c.in_len > 0) {
            const std::size_t keep = c.out.size();  // no pong may follow our close frame
            const int d = drain_frames(c, [&](const Frame& f, const std::uint8_t*, std::string_view) {
                if (f.opcode() == 0x8 && !f.masked && c.state == State::Closing) {
                    c.state = State::Draining;
                    c.deadline = now + std::chrono::seconds(1);
                }
                return kContinue;  // anything else before the close frame is ignored
            });
            c.out.resize(keep);
            if (d == kBadFrame) {
                if (stats_.frame_errors++ < 3) std::fprintf(stderr, "loadgen: churn: absurd frame length while closing\n");
                abort_conn(c);
                return true;
            }
        }
        if (r == 0 || r == -1 || (!sent && r == -2)) {
            if (c.state == State::Closing) ++no_close_frame_;
            else ++clean_closes_;
            kill(c);
            return true;
        }
        return false;
    }

    // Closes every open connection with the close handshake: our close frame (1000), the server's
    // close frame, then the server's FIN, so that TIME_WAIT stays on its side as in connect mode.
    // A server that sent its close frame but keeps TCP open 1 s later is reset (no_fin_); a
    // connection with neither close frame nor FIN within --timeout is a close error.
    void close_all(std::vector<Conn>& conns) {
        long closing = 0;
        const auto start = Clock::now();
        for (auto& c : conns) {
            if (c.state != State::Open) continue;
            c.out += close_frame_;
            c.state = State::Closing;
            ++closing;
            // Bytes already buffered (a partial frame, or frames that came with the handshake)
            // will not be signalled again by epoll: look at them now.
            if (close_step(c, 0, start)) --closing;
        }
        const auto deadline = start + dur(opt_.timeout);
        auto next_scan = start;
        std::vector<epoll_event> evs(1024);
        while (closing > 0) {
            const auto now = Clock::now();
            if (now >= next_scan) {
                next_scan = now + std::chrono::milliseconds(50);
                const bool late = now >= deadline;
                for (auto& c : conns) {
                    if (c.state == State::Draining && (late || now >= c.deadline)) {
                        ++no_fin_;
                        abort_conn(c);
                        --closing;
                    } else if (c.state == State::Closing && late) {
                        if (stats_.close_errors++ < 3)
                            std::fprintf(stderr, "loadgen: churn: neither a close frame nor a close within %.1f s\n", opt_.timeout);
                        abort_conn(c);
                        --closing;
                    }
                }
                if (closing == 0) break;
            }
            const int n = epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), 50);
            if (n < 0 && errno != EINTR) die("epoll_wait");
            const auto t = Clock::now();
            for (int i = 0; i < n; ++i) {
                Conn& c = *static_cast<Conn*>(evs[static_cast<std::size_t>(i)].data.ptr);
                if (c.state != State::Closing && c.state != State::Draining) continue;
                if (close_step(c, evs[static_cast<std::size_t>(i)].events, t)) --closing;
            }
        }
    }

    int run_churn() {
        raise_nofile_for_conns();
        const double cpu0 = server_cpu();
        const double self0 = self_cpu_seconds();
        const Mem base = churn_mem();
        std::vector<Conn> conns(static_cast<std::size_t>(opt_.conns));
        std::vector<Round> rounds;
        for (int i = 1; i <= opt_.rounds; ++i) {
            Round r;
            open_ = 0;
            r.open_s = open_idle(conns);
            r.open = open_;
            r.open_mem = churn_mem();
            const auto t = Clock::now();
            close_all(conns);
            r.close_s = secs(Clock::now() - t);
            std::this_thread::sleep_for(dur(opt_.settle));
            r.after_mem = churn_mem();
            std::printf("# churn round %d: open_kib=%ld after_kib=%ld open_anon_kib=%ld after_anon_kib=%ld open=%ld "
                        "open_s=%.3f close_s=%.3f\n",
                        i, r.open_mem.rss_kib, r.after_mem.rss_kib, r.open_mem.anon_kib, r.after_mem.anon_kib, r.open,
                        r.open_s, r.close_s);
            std::fflush(stdout);
            rounds.push_back(r);
        }
        const double cpu1 = server_cpu();
        const double self1 = self_cpu_seconds();

        long peak = -1, peak_anon = -1, open_min = opt_.conns;
        double open_s = 0, close_s = 0;
        for (const Round& r : rounds) {
            peak = std::max(peak, r.open_mem.rss_kib);
            peak_anon = std::max(peak_anon, r.open_mem.anon_kib);
            open_min = std::min(open_min, r.open);
            open_s += r.open_s / static_cast<double>(rounds.size());
            close_s += r.close_s / static_cast<double>(rounds.size());
        }
        const Mem after = rounds.back().after_mem;
        // Least-squares slope of the after-close figure over rounds 1..R: the first round's own
        // growth (pools and caches filled once) is in growth_kib, not in the slope.
        auto slope = [&](long Mem::*field) {
            if (rounds.size() < 2) return std::string("na");
            const double n = static_cast<double>(rounds.size());
            const double xm = (n + 1) / 2;
            double ym = 0;
            for (const Round& r : rounds) ym += static_cast<double>(r.after_mem.*field) / n;
            double sxy = 0, sxx = 0;
            for (std::size_t k = 0; k < rounds.size(); ++k) {
                const double dx = static_cast<double>(k + 1) - xm;
                sxy += dx * (static_cast<double>(rounds[k].after_mem.*field) - ym);
                sxx += dx * dx;
            }
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.1f", sxy / sxx);
            return std::string(buf);
        };
        const std::uint64_t errors = total_errors() + mem_unread_;
        std::printf("result server=%s mode=churn proto=%s conns=%d rounds=%d settle=%.1f open_min=%ld baseline_kib=%ld "
                    "peak_kib=%ld after_kib=%ld growth_kib=%ld growth_per_round_kib=%s baseline_anon_kib=%ld "
                    "peak_anon_kib=%ld after_anon_kib=%ld growth_anon_kib=%ld growth_anon_per_round_kib=%s open_s=%.3f "
                    "close_s=%.3f clean_closes=%llu no_close_frame=%llu no_fin=%llu server_cpu_s=%.3f client_cpu_s=%.3f "
                    "connect_errors=%llu handshake_errors=%llu closed_by_peer=%llu close_errors=%llu errors=%llu\n",
                    opt_.name.c_str(), proto(), opt_.conns, opt_.rounds, opt_.settle, open_min, base.rss_kib, peak,
                    after.rss_kib, after.rss_kib - base.rss_kib, slope(&Mem::rss_kib).c_str(), base.anon_kib, peak_anon,
                    after.anon_kib, after.anon_kib - base.anon_kib, slope(&Mem::anon_kib).c_str(), open_s, close_s,
                    static_cast<unsigned long long>(clean_closes_), static_cast<unsigned long long>(no_close_frame_),
                    static_cast<unsigned long long>(no_fin_), (cpu0 >= 0 && cpu1 >= 0) ? cpu1 - cpu0 : -1.0,
                    self1 - self0, static_cast<unsigned long long>(stats_.connect_errors),
                    static_cast<unsigned long long>(stats_.handshake_errors),
                    static_cast<unsigned long long>(stats_.closed_by_peer),
                    static_cast<unsigned long long>(stats_.close_errors), static_cast<unsigned long long>(errors));
        std::fflush(stdout);
        return errors == 0 ? 0 : 1;
    }

    // ------------------------------------------------------------ broadcast and cluster modes
    //
    // Members are conns[0..K-1], the publishers conns[K..K+P-1] (P = --publishers). Publisher p
    // sends the sequence numbers s with s % P == p, taking turns. Broadcast s is
    // outstanding_[s - first_seq_] until every member alive when it was sent has received it (or
    // missed it: a member that receives s+2P from publisher p after s has missed s+P, since one
    // publisher's broadcasts reach a member in order; two publishers' may interleave in any order).
    // In cluster mode member i connects to node i % 2 (A: --port, B: --port-b) and publisher p to
    // node p; a delivery is local when the member is on its publisher's node, else it came over
    // the cluster (Redis).

    std::uint64_t publishers() const { return static_cast<std::uint64_t>(opt_.publishers); }
    int publisher_node(std::uint64_t seq) const { return opt_.port_b > 0 ? static_cast<int>(seq % publishers()) : 0; }

    Outstanding* find_outstanding(std::uint64_t seq) {
        if (seq < first_seq_ || seq >= first_seq_ + outstanding_.size()) return nullptr;
        return &outstanding_[static_cast<std::size_t>(seq - first_seq_)];
    }

    // Counts publisher p's broadcasts from c.expect_seq[p] up to (not including) `upto` as missed
    // by c, the ones still outstanding.
    void count_missed(Conn& c, std::uint64_t p, std::uint64_t upto) {
        const std::uint64_t P = publishers();
        std::uint64_t q = c.expect_seq[p];
        if (q < first_seq_) q += (first_seq_ - q + P - 1) / P * P;
        for (; q < upto; q += P)
            if (Outstanding* o = find_outstanding(q)) {
                --o->remaining;
                ++stats_.missing;
            }
    }

    void retire_completed() {
        while (!outstanding_.empty() && outstanding_.front().remaining == 0) {
            if (recording_) ++completed_;
            outstanding_.pop_front();
            ++first_seq_;
        }
    }

    // Broadcasts still incomplete after --timeout: the members that did not get them missed them.
    void expire_stalled(Clock::time_point now) {
        const std::int64_t limit = ns_since_origin(now) - static_cast<std::int64_t>(opt_.timeout * 1e9);
        while (!outstanding_.empty() && outstanding_.front().send_ns < limit) {
            if (stalled_++ == 0)
                std::fprintf(stderr, "loadgen: broadcast %llu: %u members did not receive it within %.1f s\n",
                             static_cast<unsigned long long>(first_seq_), outstanding_.front().remaining, opt_.timeout);
            stats_.missing += outstanding_.front().remaining;
            outstanding_.pop_front();
            ++first_seq_;
        }
    }

    void drop_member(Conn& c, const char* why, bool by_server) {
        if (by_server) ++stats_.closed_by_peer;
        else ++stats_.frame_errors;
        if (reported_++ < 5) std::fprintf(stderr, "loadgen: member connection error: %s\n", why);
        if (c.joined) {
            for (std::uint64_t p = 0; p < publishers(); ++p) count_missed(c, p, next_pub_seq_);
            --members_alive_;
            retire_completed();
        } else {
            --pending_joins_;
        }
        abort_conn(c);
        --open_;
    }

    void publish(Conn* pubs, Clock::time_point now) {
        const std::int64_t ns = ns_since_origin(now);
        Conn& pub = pubs[next_pub_seq_ % publishers()];
        const auto members = static_cast<std::uint32_t>(members_alive_);
        if (opt_.payload == Payload::json) {
            market_data(scratch_, opt_.seed, next_pub_seq_, ns, market_rows_);
            std::string message = envelope_json(opt_.proto, nsp_, "broadcast", scratch_);
            pub.out += client_frame(0x1, message);
            outstanding_.push_back({ns, members, std::move(message)});
        } else {
            broadcast_data(scratch_, next_pub_seq_, ns, opt_.size);
            pub.out += client_frame(0x1, envelope(opt_.proto, nsp_, "broadcast", scratch_));
            outstanding_.push_back({ns, members});
        }
        ++next_pub_seq_;
        if (recording_) ++published_;
    }

    int garbled(const Frame& f, std::string_view payload, const char* why) {
        if (stats_.garbled++ < 3) {
            if (f.b0 & 0x40)
                std::fprintf(stderr, "loadgen: garbled delivery (%s, byte0=0x%02x, compressed, %zu bytes)\n", why, f.b0, payload.size());
            else
                std::fprintf(stderr, "loadgen: garbled delivery (%s, byte0=0x%02x): %.60s\n", why, f.b0,
                             std::string(payload.substr(0, 60)).c_str());
        }
        return kContinue;
    }

    // One message to a member: the join reply while joining, then deliveries.
    int on_member_msg(Conn& c, const Frame& f, std::string_view payload, Clock::time_point now) {
        if (!c.joined) {
            std::string_view text;
            if (!f.masked && (f.b0 & ~0x40) == 0x81 && message_text(c, f, payload, text) && text == join_reply_) {
                c.joined = true;
                ++members_alive_;
                --pending_joins_;
                return kContinue;
            }
            if (reported_++ < 5)
                std::fprintf(stderr, "loadgen: bad join reply (byte0=0x%02x): %.60s\n", f.b0, std::string(payload.substr(0, 60)).c_str());
            ++stats_.join_errors;
            drop_member(c, "no join reply", false);
            return kDropped;
        }
        if (opt_.payload == Payload::json) return on_market_data(c, f, payload, now);
        // Expect prefix + "<seq>:<ns>:<letters>" + suffix.
        std::string_view text;
        if (f.masked || (f.b0 & ~0x40) != 0x81) return garbled(f, payload, "not an unmasked text frame");
        if (!message_text(c, f, payload, text)) return garbled(f, payload, "compressed, and does not inflate");
        if (!text.starts_with(bcast_prefix_) || !text.ends_with(bcast_suffix_) ||
            text.size() < bcast_prefix_.size() + bcast_suffix_.size())
            return garbled(f, payload, "not a broadcast envelope");
        const std::string_view data = text.substr(bcast_prefix_.size(), text.size() - bcast_prefix_.size() - bcast_suffix_.size());
        std::uint64_t seq = 0;
        std::int64_t ns = 0;
        const char* p = data.data();
        const char* e = data.data() + data.size();
        auto r1 = std::from_chars(p, e, seq);
        if (r1.ec != std::errc{} || r1.ptr == e || *r1.ptr != ':') return garbled(f, payload, "no sequence number");
        auto r2 = std::from_chars(r1.ptr + 1, e, ns);
        if (r2.ec != std::errc{} || r2.ptr == e || *r2.ptr != ':') return garbled(f, payload, "no timestamp");
        broadcast_data(check_, seq, ns, opt_.size);
        if (data != check_) return garbled(f, payload, "data differs from what was sent");
        return delivered(c, f, payload, seq, ns, text.size(), now);
    }

    // A market-data delivery (--payload json). A sampled member inflates it when compressed and
    // checks it against the object rebuilt from its own "seq" and "sent_ns"; another member takes
    // it as the next broadcast, compares it with that one when it came uncompressed, and does not
    // read it when compressed (a server that sends garbage still fails on the sampled members, and
    // a missing or extra message leaves a broadcast incomplete or one never sent).
    int on_market_data(Conn& c, const Frame& f, std::string_view payload, Clock::time_point now) {
        const bool compressed = (f.b0 & 0x40) != 0;
        if (f.masked || (f.b0 & ~0x40) != 0x81 || (compressed && !c.deflate.agreed))
            return garbled(f, payload, "not an unmasked text frame, RSV1 only with permessage-deflate");
        if (!c.sampled) {
            const std::uint64_t seq = c.expect_seq[0];
            const Outstanding* o = find_outstanding(seq);
            if (o != nullptr && !compressed && payload != o->expect) return garbled(f, payload, "not the next broadcast");
            return delivered(c, f, payload, seq, o ? o->send_ns : 0, o ? o->expect.size() : payload.size(), now);
        }
        std::string_view text;
        if (!message_text(c, f, payload, text)) return garbled(f, payload, "compressed, and does not inflate");
        if (!text.starts_with(bcast_prefix_) || !text.ends_with(bcast_suffix_) ||
            text.size() < bcast_prefix_.size() + bcast_suffix_.size())
            return garbled(f, payload, "not a broadcast envelope");
        const std::string_view data = text.substr(bcast_prefix_.size(), text.size() - bcast_prefix_.size() - bcast_suffix_.size());
        std::uint64_t seq = 0;
        std::int64_t ns = 0;
        if (!field_after(data, "\"seq\":", seq) || !field_after(data, "\"sent_ns\":", ns))
            return garbled(f, payload, "no seq or sent_ns");
        market_data(check_, opt_.seed, seq, ns, market_rows_);
        if (data != check_) return garbled(f, payload, "data differs from what was sent");
        if (recording_) ++checked_deliveries_;
        return delivered(c, f, payload, seq, ns, text.size(), now);
    }

    // Broadcast seq, sent at ns, received by c (plain_len: its message uncompressed): duplicates,
    // the broadcasts it skipped, latency.
    int delivered(Conn& c, const Frame& f, std::string_view payload, std::uint64_t seq, std::int64_t ns, std::size_t plain_len,
                  Clock::time_point now) {
        if (seq >= next_pub_seq_) return garbled(f, payload, "never sent");
        const std::uint64_t pub = seq % publishers();
        if (seq < c.expect_seq[pub]) {
            ++stats_.duplicate;
            return kContinue;
        }
        count_missed(c, pub, seq);
        c.expect_seq[pub] = seq + publishers();
        Outstanding* o = find_outstanding(seq);
        if (o == nullptr) {  // expired: already counted as missing
            ++late_;
            return kContinue;
        }
        if (o->send_ns != ns) return garbled(f, payload, "timestamp differs from the one sent");
        --o->remaining;
        if (recording_) {
            const auto lat = static_cast<std::uint64_t>(std::max<std::int64_t>(0, ns_since_origin(now) - ns));
            ++deliveries_;
            ++node_deliveries_[c.node];
            latencies_.push_back(lat);
            if (opt_.port_b > 0) (c.node == publisher_node(seq) ? latencies_local_ : latencies_remote_).push_back(lat);
            if (f.b0 & 0x40) ++compressed_deliveries_;
            plain_bytes_ += server_header_size(plain_len) + plain_len;
        }
        return kContinue;
    }

    // Reads and handles what arrived on a connection; returns false when it was dropped.
    bool on_broadcast_readable(Conn& c) {
        const ssize_t r = fill(c);
        if (r == 0 || r == -1) {
            if (c.member) drop_member(c, r == 0 ? "closed by server" : "recv failed", r == 0);
            else publisher_lost(c, r == 0 ? "closed by server" : "recv failed");
            return false;
        }
        if (r < 0) return true;
        if (recording_ && c.member) wire_bytes_ += static_cast<std::uint64_t>(r);
        const auto now = Clock::now();
        int d;
        if (c.member) {
            d = drain_frames(c, [&](const Frame& f, const std::uint8_t*, std::string_view payload) {
                return on_member_msg(c, f, payload, now);
            });
            retire_completed();
        } else {
            d = drain_frames(c, [&](const Frame& f, const std::uint8_t*, std::string_view payload) {
                // The sender of a broadcast gets nothing back.
                if (stats_.unexpected++ < 3)
                    std::fprintf(stderr, "loadgen: a publisher received a message (byte0=0x%02x): %.60s\n", f.b0,
                                 std::string(payload.substr(0, 60)).c_str());
                return kContinue;
            });
        }
        if (d == kDropped) return false;
        if (d == kBadFrame) {
            if (c.member) drop_member(c, "absurd frame length", false);
            else publisher_lost(c, "absurd frame length");
            return false;
        }
        if (!flush(c)) {
            if (c.member) drop_member(c, "send failed", false);
            else publisher_lost(c, "send failed");
            return false;
        }
        return true;
    }

    void publisher_lost(Conn& c, const char* why) {
        ++stats_.frame_errors;
        std::fprintf(stderr, "loadgen: publisher connection error: %s\n", why);
        abort_conn(c);
        --open_;
    }

    void broadcast_events(std::vector<epoll_event>& evs, int timeout_ms) {
        const int n = epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), timeout_ms);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < n; ++i) {
            Conn& c = *static_cast<Conn*>(evs[static_cast<std::size_t>(i)].data.ptr);
            const auto ev = evs[static_cast<std::size_t>(i)].events;
            if (c.state != State::Open) continue;
            if ((ev & EPOLLOUT) && !flush(c)) {
                if (c.member) drop_member(c, "send failed", false);
                else publisher_lost(c, "send failed");
                continue;
            }
            if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_broadcast_readable(c);
        }
    }

    int run_broadcast() {
        const auto K = static_cast<std::size_t>(opt_.members);
        const auto P = static_cast<std::size_t>(opt_.publishers);
        const bool cluster = opt_.port_b > 0;
        std::vector<Conn> conns(K + P);
        for (std::size_t i = 0; i < K; ++i) {
            conns[i].member = true;
            conns[i].node = cluster ? static_cast<int>(i % 2) : 0;
        }
        Conn* pubs = &conns[K];
        for (std::size_t p = 0; p < P; ++p) pubs[p].node = cluster ? static_cast<int>(p) : 0;
        auto publishers_open = [&] {
            for (std::size_t p = 0; p < P; ++p)
                if (pubs[p].state != State::Open) return false;
            return true;
        };
        for (std::size_t i = 0; i < K; i += static_cast<std::size_t>(opt_.sample)) conns[i].sampled = true;
        if (opt_.payload == Payload::json) market_rows_ = market_rows(opt_.seed, opt_.size);
        join_reply_ = envelope(opt_.proto, nsp_, "join", opt_.room);
        const std::string join_frame = client_frame(0x1, envelope(opt_.proto, nsp_, "join", opt_.room));
        const std::string probe = opt_.payload == Payload::json ? envelope_json(opt_.proto, nsp_, "broadcast", "\x01")
                                                                : envelope(opt_.proto, nsp_, "broadcast", "\x01");
        const auto cut = probe.find('\x01');
        bcast_prefix_ = probe.substr(0, cut);
        bcast_suffix_ = probe.substr(cut + 1);

        raise_nofile();
        const auto t_open = Clock::now();
        open_all(conns, static_cast<std::size_t>(opt_.max_pending), std::max(30.0, opt_.timeout));

        // Join: every open member asks to join the room; wait for every reply.
        std::vector<epoll_event> evs(1024);
        for (std::size_t i = 0; i < K; ++i) {
            Conn& c = conns[i];
            if (c.state != State::Open) continue;
            ++pending_joins_;
            c.out += join_frame;
            if (!flush(c)) drop_member(c, "send failed", false);
            else if (c.in_len > 0) {  // arrived with the handshake
                drain_frames(c, [&](const Frame& f, const std::uint8_t*, std::string_view payload) {
                    return on_member_msg(c, f, payload, Clock::now());
                });
            }
        }
        const auto join_deadline = Clock::now() + dur(opt_.timeout);
        while (pending_joins_ > 0 && Clock::now() < join_deadline && publishers_open()) broadcast_events(evs, 50);
        for (std::size_t i = 0; i < K; ++i)
            if (conns[i].state == State::Open && !conns[i].joined) {
                ++stats_.join_errors;
                drop_member(conns[i], "no join reply in time", false);
            }
        const double join_s = secs(Clock::now() - t_open);
        long members_on[2] = {0, 0};
        for (std::size_t i = 0; i < K; ++i)
            if (conns[i].joined) ++members_on[conns[i].node];

        const auto t_start = Clock::now();
        Window win = window_from(t_start);
        const auto interval = opt_.rate > 0 ? std::max<Clock::duration>(dur(1.0 / opt_.rate), std::chrono::nanoseconds(1)) : Clock::duration{};
        auto next_due = t_start;
        latencies_.reserve(1u << 22);
        bool lost_publisher = false;
        for (;;) {
            const auto now = Clock::now();
            if (!in_window(win, now) || !publishers_open() || members_alive_ == 0) break;
            if (opt_.rate > 0) {
                for (; now >= next_due; next_due += interval) publish(pubs, now);
            } else {
                while (outstanding_.size() < static_cast<std::size_t>(opt_.window)) publish(pubs, now);
            }
            for (std::size_t p = 0; p < P; ++p)
                if (!pubs[p].out.empty() && pubs[p].want_out == false && !flush(pubs[p])) {
                    publisher_lost(pubs[p], "send failed");
                    lost_publisher = true;
                }
            if (lost_publisher) break;
            expire_stalled(now);
            int timeout_ms = 5;
            if (opt_.rate > 0) {
                const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_due - Clock::now()).count();
                timeout_ms = static_cast<int>(std::clamp<long long>(wait, 0, 5));
            }
            broadcast_events(evs, timeout_ms);
        }
        close_window(win);
        if (cluster) {
            // What is still on its way through Redis must arrive too (not recorded: the window is
            // closed): a pair of nodes that is not a cluster shows as missing deliveries here even
            // in a run shorter than --timeout, as the probe in bench/cluster.sh is.
            const auto drain_deadline = Clock::now() + dur(opt_.timeout);
            while (!outstanding_.empty() && members_alive_ > 0 && Clock::now() < drain_deadline) broadcast_events(evs, 5);
            if (!outstanding_.empty())
                std::fprintf(stderr, "loadgen: %zu broadcasts not received by every member within %.1f s after the window\n",
                             outstanding_.size(), opt_.timeout);
            for (const auto& o : outstanding_) stats_.missing += o.remaining;
            outstanding_.clear();
        }
        const double window = win.seconds();
        const Percentiles p = percentiles(latencies_);
        // Cluster: the servers' CPU is both nodes' (each also reported alone, with Redis').
        const double cpu_a = win.server_cpu_s(), cpu_b = win.server_b_cpu_s(), cpu_redis = win.redis_cpu_s();
        const double server_cpu_s = cluster ? (cpu_a >= 0 && cpu_b >= 0 ? cpu_a + cpu_b : -1) : cpu_a;
        const double per_s = window > 0 ? 1.0 / window : 0.0;
        const std::uint64_t lost = static_cast<std::uint64_t>(K + P) - static_cast<std::uint64_t>(std::max<long>(open_, 0));
        const long rss_kib = server_mem().rss_kib;
        std::printf("result server=%s mode=%s proto=%s members=%d joined=%ld size=%zu window=%d rate=%.1f join_s=%.3f "
                    "seconds=%.3f broadcasts=%llu sent=%llu bcasts_per_s=%.1f deliveries=%llu deliveries_per_s=%.0f "
                    "p50_us=%.1f p99_us=%.1f max_us=%.1f server_cpu_s=%.3f server_cpu_pct=%.1f deliveries_per_cpu_s=%.0f "
                    "client_cpu_s=%.3f missing=%llu duplicate=%llu garbled=%llu late=%llu unexpected=%llu join_errors=%llu "
                    "errors=%llu lost_conns=%llu",
                    opt_.name.c_str(), opt_.mode.c_str(), proto(), opt_.members, members_alive_, opt_.size,
                    opt_.rate > 0 ? 0 : opt_.window, opt_.rate, join_s, window, static_cast<unsigned long long>(completed_),
                    static_cast<unsigned long long>(published_), static_cast<double>(completed_) * per_s,
                    static_cast<unsigned long long>(deliveries_), static_cast<double>(deliveries_) * per_s, p.p50, p.p99,
                    p.max, server_cpu_s, window > 0 && server_cpu_s >= 0 ? 100.0 * server_cpu_s / window : -1.0,
                    server_cpu_s > 0 ? static_cast<double>(deliveries_) / server_cpu_s : 0.0, win.client_cpu_s(),
                    static_cast<unsigned long long>(stats_.missing), static_cast<unsigned long long>(stats_.duplicate),
                    static_cast<unsigned long long>(stats_.garbled), static_cast<unsigned long long>(late_),
                    static_cast<unsigned long long>(stats_.unexpected), static_cast<unsigned long long>(stats_.join_errors),
                    static_cast<unsigned long long>(total_errors()), static_cast<unsigned long long>(lost));
        if (opt_.mode == "broadcast" && P > 1) std::printf(" publishers=%zu", P);
        if (!cluster) {
            // Bytes the members read in the window (frame headers included) per delivery, and what
            // the same deliveries would have been as uncompressed frames.
            const double d = deliveries_ > 0 ? static_cast<double>(deliveries_) : 1.0;
            std::printf(" payload=%s rows=%d deflate_offered=%d extensions=%s extensions_differ=%llu deflate_conns=%ld "
                        "wire_bytes=%llu wire_bytes_per_delivery=%.1f plain_bytes_per_delivery=%.1f compressed_deliveries=%llu "
                        "sampled_members=%zu checked_deliveries=%llu server_rss_kib=%ld",
                        opt_.payload == Payload::json ? "json" : "text", market_rows_, opt_.deflate ? 1 : 0,
                        extensions_.empty() ? "none" : extensions_.c_str(), static_cast<unsigned long long>(extensions_differ_),
                        deflate_conns_, static_cast<unsigned long long>(wire_bytes_), static_cast<double>(wire_bytes_) / d,
                        static_cast<double>(plain_bytes_) / d, static_cast<unsigned long long>(compressed_deliveries_),
                        (K + static_cast<std::size_t>(opt_.sample) - 1) / static_cast<std::size_t>(opt_.sample),
                        static_cast<unsigned long long>(checked_deliveries_), rss_kib);
        }
        if (cluster) {
            const Percentiles local = percentiles(latencies_local_), remote = percentiles(latencies_remote_);
            const double all_cpu = server_cpu_s >= 0 && cpu_redis >= 0 ? server_cpu_s + cpu_redis : -1;
            auto pct = [&](double cpu) { return window > 0 && cpu >= 0 ? 100.0 * cpu / window : -1.0; };
            std::printf(" publishers=%zu members_a=%ld members_b=%ld deliveries_a=%llu deliveries_b=%llu "
                        "deliveries_per_s_a=%.0f deliveries_per_s_b=%.0f local_p50_us=%.1f local_p99_us=%.1f "
                        "remote_p50_us=%.1f remote_p99_us=%.1f server_a_cpu_s=%.3f server_b_cpu_s=%.3f redis_cpu_s=%.3f "
                        "server_a_cpu_pct=%.1f server_b_cpu_pct=%.1f redis_cpu_pct=%.1f server_us_per_delivery=%.3f "
                        "deliveries_per_cpu_s_with_redis=%.0f",
                        P, members_on[0], members_on[1], static_cast<unsigned long long>(node_deliveries_[0]),
                        static_cast<unsigned long long>(node_deliveries_[1]), static_cast<double>(node_deliveries_[0]) * per_s,
                        static_cast<double>(node_deliveries_[1]) * per_s, local.p50, local.p99, remote.p50, remote.p99,
                        cpu_a, cpu_b, cpu_redis, pct(cpu_a), pct(cpu_b), pct(cpu_redis),
                        deliveries_ > 0 && server_cpu_s >= 0 ? 1e6 * server_cpu_s / static_cast<double>(deliveries_) : -1.0,
                        all_cpu > 0 ? static_cast<double>(deliveries_) / all_cpu : 0.0);
        }
        std::printf("\n");
        std::fflush(stdout);
        for (auto& c : conns) abort_conn(c);
        return total_errors() == 0 && deliveries_ > 0 ? 0 : 1;
    }

    // ------------------------------------------------------------ connect mode
    //
    // Each of C slots loops: connect, upgrade (Socket.IO: until the Engine.IO open packet), send a
    // close frame, wait for the server's close frame, wait for the server to close TCP (so the
    // TIME_WAIT stays on its side), close.

    void begin_attempt(Conn& c, Clock::time_point now) {
        if (start_connect(c, attempts_++)) c.deadline = now + dur(opt_.timeout);
        else c.deadline = now + std::chrono::milliseconds(10);  // retry a failed socket()/connect() later
    }

    void attempt_failed(Conn& c, Clock::time_point now) {
        if (c.fd >= 0) abort_conn(c);
        c.deadline = now + std::chrono::milliseconds(1);
    }

    void upgraded(Conn& c, Clock::time_point now) {
        if (recording_)
            latencies_.push_back(static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now - c.started).count()));
        c.out += close_frame_;
        c.state = State::Closing;
        if (!flush(c)) {
            ++stats_.close_errors;
            attempt_failed(c, now);
        }
    }

    void closing_step(Conn& c, std::uint32_t ev, Clock::time_point now) {
        if ((ev & EPOLLOUT) && !flush(c)) {
            ++stats_.close_errors;
            attempt_failed(c, now);
            return;
        }
        if (!(ev & (EPOLLIN | EPOLLERR | EPOLLHUP))) return;
        const ssize_t r = fill(c);
        if (r == -1 || (r == 0 && c.state == State::Closing)) {
            if (stats_.close_errors++ < 3)
                std::fprintf(stderr, "loadgen: connect: %s before the server's close frame\n", r == 0 ? "EOF" : "recv error");
            attempt_failed(c, now);
            return;
        }
        if (r == 0) {  // Draining and the server closed: done
            kill(c);
            if (recording_) ++completed_;
            begin_attempt(c, now);
            return;
        }
        if (r < 0) return;
        const int d = drain_frames(c, [&](const Frame& f, const std::uint8_t*, std::string_view) {
            if (f.opcode() == 0x8 && !f.masked && c.state == State::Closing) {
                c.state = State::Draining;
                c.deadline = now + std::chrono::seconds(1);
            }
            return kContinue;  // anything else before the close frame is ignored
        });
        if (d == kBadFrame) {
            ++stats_.frame_errors;
            attempt_failed(c, now);
        }
    }

    int run_connect() {
        raise_nofile();
        sio_namespace_ = false;  // Socket.IO: the open packet is the end of the upgrade
        std::vector<Conn> slots(static_cast<std::size_t>(opt_.conns));
        const auto t_start = Clock::now();
        for (auto& c : slots) begin_attempt(c, t_start);
        Window win = window_from(t_start);
        latencies_.reserve(1u << 20);
        std::vector<epoll_event> evs(1024);
        for (;;) {
            auto now = Clock::now();
            if (!in_window(win, now)) break;
            for (auto& c : slots) {
                if (now < c.deadline) continue;
                if (c.state == State::Closed) {
                    begin_attempt(c, now);
                } else if (c.state == State::Draining) {  // close handshake done, the server kept TCP open
                    ++no_fin_;
                    abort_conn(c);
                    if (recording_) ++completed_;
                    begin_attempt(c, now);
                } else {
                    if (stats_.close_errors++ < 3) std::fprintf(stderr, "loadgen: connect: attempt timed out\n");
                    attempt_failed(c, now);
                }
            }
            const int n = epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), 2);
            if (n < 0 && errno != EINTR) die("epoll_wait");
            now = Clock::now();
            for (int i = 0; i < n; ++i) {
                Conn& c = *static_cast<Conn*>(evs[static_cast<std::size_t>(i)].data.ptr);
                const auto ev = evs[static_cast<std::size_t>(i)].events;
                if (handshaking(c.state)) {
                    const Step s = step_handshake(c, ev);
                    if (s == Step::Open) upgraded(c, now);
                    else if (s == Step::Failed) attempt_failed(c, now);
                } else if (c.state == State::Closing || c.state == State::Draining) {
                    closing_step(c, ev, now);
                }
            }
        }
        close_window(win);
        const double window = win.seconds();
        const Percentiles p = percentiles(latencies_);
        const double server_cpu_s = win.server_cpu_s();
        std::printf("result server=%s mode=connect proto=%s conns=%d seconds=%.3f connections=%llu conns_per_s=%.0f "
                    "p50_us=%.1f p99_us=%.1f max_us=%.1f server_cpu_s=%.3f server_cpu_pct=%.1f conns_per_cpu_s=%.0f "
                    "client_cpu_s=%.3f no_fin=%llu connect_errors=%llu handshake_errors=%llu close_errors=%llu errors=%llu\n",
                    opt_.name.c_str(), proto(), opt_.conns, window, static_cast<unsigned long long>(completed_),
                    window > 0 ? static_cast<double>(completed_) / window : 0.0, p.p50, p.p99, p.max, server_cpu_s,
                    window > 0 && server_cpu_s >= 0 ? 100.0 * server_cpu_s / window : -1.0,
                    server_cpu_s > 0 ? static_cast<double>(completed_) / server_cpu_s : 0.0, win.client_cpu_s(),
                    static_cast<unsigned long long>(no_fin_), static_cast<unsigned long long>(stats_.connect_errors),
                    static_cast<unsigned long long>(stats_.handshake_errors),
                    static_cast<unsigned long long>(stats_.close_errors), static_cast<unsigned long long>(total_errors()));
        std::fflush(stdout);
        for (auto& c : slots) abort_conn(c);
        return total_errors() == 0 && completed_ > 0 ? 0 : 1;
    }

    Options opt_;
    int ep_ = -1;
    sockaddr_in addr_{}, addr_b_{};
    Clock::time_point origin_;
    Stats stats_;
    long open_ = 0;
    int reported_ = 0;
    bool sio_namespace_ = true;  // Socket.IO: also connect to the main namespace ("40")
    std::string nsp_;  // Socket.IO: the namespace as packets carry it ("" for "/", else "/name,")
    std::string sio_pong_, sio_connect_frame_, sio_connected_, sio_event_head_, sio_ack_head_, close_frame_;
    bool recording_ = false;
    std::vector<std::uint64_t> latencies_;  // nanoseconds
    // echo
    FrameSet frames_;
    std::string ack_scratch_;  // --ack: a request or the expected acknowledgement, built per message
    std::uint64_t variants_ = 1;
    std::uint64_t counted_ = 0;
    // permessage-deflate
    std::string extensions_;                // the first connection's answer, without spaces ("none")
    std::uint64_t extensions_differ_ = 0;   // connections whose answer was another
    long deflate_conns_ = 0;                // connections that agreed permessage-deflate
    std::string inflated_;                  // the last message inflated
    // broadcast
    std::string join_reply_, bcast_prefix_, bcast_suffix_, scratch_, check_;
    int market_rows_ = 0;                   // --payload json: rows in each object
    std::uint64_t wire_bytes_ = 0, plain_bytes_ = 0, compressed_deliveries_ = 0, checked_deliveries_ = 0;
    std::deque<Outstanding> outstanding_;
    std::uint64_t first_seq_ = 0, next_pub_seq_ = 0;
    long members_alive_ = 0, pending_joins_ = 0;
    std::uint64_t published_ = 0, deliveries_ = 0, late_ = 0, stalled_ = 0;
    std::uint64_t node_deliveries_[2] = {0, 0};        // cluster: deliveries to the members on A, on B
    std::vector<std::uint64_t> latencies_local_, latencies_remote_;  // cluster: member on its publisher's node, or not
    // broadcast and connect
    std::uint64_t completed_ = 0;
    // connect
    std::uint64_t attempts_ = 0;
    // connect and churn
    std::uint64_t no_fin_ = 0;
    // churn
    std::uint64_t clean_closes_ = 0, no_close_frame_ = 0, mem_unread_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    Options o = parse_options(argc, argv);
    Runner r(std::move(o));
    return r.run();
}
