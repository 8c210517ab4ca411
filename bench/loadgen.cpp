// loadgen: WebSocket (RFC 6455) load generator for gateway.hpp's echo benchmark.
//
// One process, one thread, Linux epoll, raw non-blocking TCP sockets. It does
// the client opening handshake itself (and checks Sec-WebSocket-Accept), then:
//
//   loadgen echo [options]   N connections x P messages in flight x S bytes,
//                            text frames, for --seconds after --warmup; reports
//                            msgs/s, round-trip p50/p99, server CPU (with --pid)
//   loadgen idle [options]   opens N connections, handshakes them, and reports
//                            the server's RSS growth per connection (--pid)
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
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------- options

struct Options {
    std::string mode;
    std::string name = "unknown";
    std::string event;   // non-empty: send gateway envelopes {"event": event, "data": ...}
    std::string host = "127.0.0.1";
    std::string path = "/";
    int port = 0;
    int conns = -1;  // default depends on the mode
    int inflight = 10;
    std::size_t size = 64;
    double seconds = 5.0;
    double warmup = 1.0;
    double settle = 1.0;
    int pid = 0;
    int max_pending = 256;  // idle: connects/handshakes in progress at once
    double timeout = 60.0;  // idle: give up opening connections after this
};

[[noreturn]] void usage(int code) {
    std::fprintf(code == 0 ? stdout : stderr,
                 "usage: loadgen echo|idle --port N [--name NAME] [--host IP] [--path /]\n"
                 "         [--conns N] [--inflight P] [--size BYTES] [--seconds D] [--warmup W]\n"
                 "         [--pid PID] [--settle S] [--max-pending N] [--timeout S]\n"
                 "         [--event NAME]   (echo through a gateway: {\"event\":NAME,\"data\":\"...\"})\n"
                 "  echo: defaults conns=100 inflight=10 size=64 seconds=5 warmup=1\n"
                 "  idle: defaults conns=10000 settle=1; --pid needed for memory figures\n");
    std::exit(code);
}

Options parse_options(int argc, char** argv) {
    Options o;
    if (argc < 2) usage(2);
    o.mode = argv[1];
    if (o.mode == "-h" || o.mode == "--help") usage(0);
    if (o.mode != "echo" && o.mode != "idle") usage(2);
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
        else if (a == "--event") o.event = v;
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
        else {
            std::fprintf(stderr, "unknown option %s\n", argv[i - 1]);
            usage(2);
        }
    }
    if (o.conns < 0) o.conns = o.mode == "echo" ? 100 : 10000;
    if (o.port <= 0 || o.port > 65535 || o.conns <= 0 || o.inflight <= 0 || o.max_pending <= 0 ||
        o.seconds <= 0) {
        std::fprintf(stderr, "bad option value\n");
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

// ---------------------------------------------------------------- frames

constexpr std::uint8_t kMask[4] = {0x37, 0xfa, 0x21, 0x3d};

// A masked client text frame whose payload is printable ASCII; `variant`
// shifts the pattern so consecutive messages differ (checks ordering).
struct FrameSet {
    std::vector<std::string> wire;      // masked frames as sent
    std::vector<std::string> payload;   // the expected echoed payloads
    std::vector<std::string> expect_hdr;  // the expected server frame header
};

std::string server_header(std::size_t len) {
    std::string h;
    h.push_back(static_cast<char>(0x81));
    if (len < 126) {
        h.push_back(static_cast<char>(len));
    } else if (len <= 0xffff) {
        h.push_back(static_cast<char>(126));
        h.push_back(static_cast<char>(len >> 8));
        h.push_back(static_cast<char>(len & 0xff));
    } else {
        h.push_back(static_cast<char>(127));
        for (int i = 7; i >= 0; --i) h.push_back(static_cast<char>((static_cast<std::uint64_t>(len) >> (8 * i)) & 0xff));
    }
    return h;
}

// With an event name, each message is the gateway envelope {"event":"NAME","data":"<size chars>"}
// (letters and digits, so the JSON needs no escapes), and the echo must be the same bytes.
FrameSet build_frames(std::size_t size, int variants, const std::string& event) {
    static constexpr char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    FrameSet fs;
    for (int v = 0; v < variants; ++v) {
        std::string payload(size, ' ');
        for (std::size_t i = 0; i < size; ++i) {
            const std::size_t k = i + static_cast<std::size_t>(v) * 7;
            payload[i] = event.empty() ? static_cast<char>(33 + k % 94) : alnum[k % 62];
        }
        if (!event.empty()) payload = "{\"event\":\"" + event + "\",\"data\":\"" + payload + "\"}";
        size = payload.size();
        std::string hdr = server_header(size);
        std::string wire = hdr;
        wire[1] = static_cast<char>(static_cast<unsigned char>(wire[1]) | 0x80);
        wire.append(reinterpret_cast<const char*>(kMask), 4);
        const std::size_t start = wire.size();
        wire += payload;
        for (std::size_t i = 0; i < size; ++i) wire[start + i] = static_cast<char>(static_cast<std::uint8_t>(wire[start + i]) ^ kMask[i & 3]);
        fs.wire.push_back(std::move(wire));
        fs.payload.push_back(std::move(payload));
        fs.expect_hdr.push_back(std::move(hdr));
    }
    return fs;
}

// ---------------------------------------------------------------- connections

enum class State { Connecting, Handshaking, Open, Closed };

struct Conn {
    int fd = -1;
    State state = State::Connecting;
    std::string key;
    std::string out;          // pending bytes to write
    std::size_t out_off = 0;
    std::vector<std::uint8_t> in;  // read buffer
    std::size_t in_len = 0;
    bool want_out = false;    // EPOLLOUT registered
    // echo bookkeeping
    std::vector<Clock::time_point> sent;  // ring of send times (FIFO, size P)
    std::size_t sent_head = 0, sent_count = 0;
    std::uint64_t next_send = 0, next_recv = 0;
};

struct Stats {
    std::uint64_t errors = 0;
    std::uint64_t connect_errors = 0;
    std::uint64_t handshake_errors = 0;
    std::uint64_t closed_by_peer = 0;
    std::uint64_t frame_errors = 0;
};

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
    }

    int run() { return opt_.mode == "echo" ? run_echo() : run_idle(); }

private:
    [[noreturn]] static void die(const char* what) {
        std::fprintf(stderr, "loadgen: %s: %s\n", what, std::strerror(errno));
        std::exit(1);
    }

    static double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

    void ctl(int op, Conn& c, std::uint32_t events) {
        epoll_event ev{};
        ev.events = events;
        ev.data.ptr = &c;
        if (epoll_ctl(ep_, op, c.fd, &ev) != 0 && op != EPOLL_CTL_DEL) die("epoll_ctl");
    }

    // Start a non-blocking connect; returns false on immediate failure.
    bool start_connect(Conn& c, std::size_t index) {
        c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c.fd < 0) {
            ++stats_.connect_errors;
            if (errno == EMFILE || errno == ENFILE) {
                std::fprintf(stderr, "loadgen: socket: %s (RLIMIT_NOFILE=%ld)\n", std::strerror(errno), nofile_limit());
            }
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
        if (connect(c.fd, reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_) != 0 && errno != EINPROGRESS) {
            ++stats_.connect_errors;
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
        std::string req = "GET " + opt_.path + " HTTP/1.1\r\n"
                          "Host: " + opt_.host + ":" + std::to_string(opt_.port) + "\r\n"
                          "Upgrade: websocket\r\n"
                          "Connection: Upgrade\r\n"
                          "Sec-WebSocket-Key: " + c.key + "\r\n"
                          "Sec-WebSocket-Version: 13\r\n\r\n";
        c.out = std::move(req);
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

    // Handshake response parsing: true when complete (state becomes Open),
    // false if more bytes are needed; marks an error and closes on failure.
    bool parse_handshake(Conn& c) {
        std::string_view buf(reinterpret_cast<const char*>(c.in.data()), c.in_len);
        const auto end = buf.find("\r\n\r\n");
        if (end == std::string_view::npos) {
            if (c.in_len > 16384) fail_handshake(c, "response head too large");
            return false;
        }
        std::string head(buf.substr(0, end));
        if (head.rfind("HTTP/1.1 101", 0) != 0) {
            fail_handshake(c, head.substr(0, head.find('\r')).c_str());
            return false;
        }
        std::string lower = head;
        for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        const auto k = lower.find("\r\nsec-websocket-accept:");
        if (k == std::string::npos) {
            fail_handshake(c, "no Sec-WebSocket-Accept");
            return false;
        }
        auto v = k + std::strlen("\r\nsec-websocket-accept:");
        while (v < head.size() && (head[v] == ' ' || head[v] == '\t')) ++v;
        auto ve = head.find("\r\n", v);
        if (ve == std::string::npos) ve = head.size();
        while (ve > v && (head[ve - 1] == ' ' || head[ve - 1] == '\t')) --ve;
        if (head.substr(v, ve - v) != expected_accept(c.key)) {
            fail_handshake(c, "bad Sec-WebSocket-Accept");
            return false;
        }
        const std::size_t consumed = end + 4;
        std::memmove(c.in.data(), c.in.data() + consumed, c.in_len - consumed);
        c.in_len -= consumed;
        c.state = State::Open;
        ++open_;
        return true;
    }

    void fail_handshake(Conn& c, const char* why) {
        if (stats_.handshake_errors++ < 3) std::fprintf(stderr, "loadgen: handshake failed: %s\n", why);
        kill(c);
    }

    // Drive connects + handshakes for the given range, at most max_pending at
    // a time, until all are open/failed or the deadline passes. Frames that
    // arrive after the handshake stay in the buffer.
    void open_all(std::vector<Conn>& conns, std::size_t max_pending, double timeout_s) {
        std::size_t next = 0, pending = 0, done = 0;
        const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s));
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
                    if (c.state == State::Connecting || c.state == State::Handshaking) {
                        ++stats_.handshake_errors;
                        kill(c);
                    }
                return;
            }
            const int n = epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), 100);
            if (n < 0 && errno != EINTR) die("epoll_wait");
            for (int i = 0; i < n; ++i) {
                Conn& c = *static_cast<Conn*>(evs[static_cast<std::size_t>(i)].data.ptr);
                const auto ev = evs[static_cast<std::size_t>(i)].events;
                if (c.state == State::Closed) continue;
                if (c.state == State::Open) {  // idle: server closed or sent something
                    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) check_idle_conn(c);
                    continue;
                }
                if (c.state == State::Connecting) {
                    int err = 0;
                    socklen_t len = sizeof err;
                    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
                    if (err != 0) {
                        if (stats_.connect_errors++ < 3) std::fprintf(stderr, "loadgen: connect: %s\n", std::strerror(err));
                        kill(c);
                        --pending;
                        ++done;
                        continue;
                    }
                    if (!(ev & EPOLLOUT)) continue;
                    send_request(c);
                }
                if (c.state == State::Handshaking) {
                    if (!flush(c)) {
                        fail_handshake(c, "send failed");
                        --pending;
                        ++done;
                        continue;
                    }
                    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                        const ssize_t r = fill(c);
                        if (r == 0 || r == -1) {
                            fail_handshake(c, r == 0 ? "closed by server" : "recv failed");
                            --pending;
                            ++done;
                            continue;
                        }
                        if (parse_handshake(c)) {
                            --pending;
                            ++done;
                        } else if (c.state == State::Closed) {
                            --pending;
                            ++done;
                        }
                    }
                }
            }
        }
    }

    void check_idle_conn(Conn& c) {
        const ssize_t r = fill(c);
        if (r == 0 || r == -1) {
            ++stats_.closed_by_peer;
            kill(c);
            --open_;
        } else if (r > 0) {
            c.in_len = 0;  // ignore whatever the server sent (e.g. a ping)
        }
    }

    // ------------------------------------------------------------ echo mode

    int run_echo() {
        const auto P = static_cast<std::size_t>(opt_.inflight);
        // Distinct payload variants to catch reordering/mix-ups; bounded memory.
        int variants = 16;
        while (variants > 1 && static_cast<double>(variants) * static_cast<double>(opt_.size) > 64.0 * 1024 * 1024) variants /= 2;
        frames_ = build_frames(opt_.size, variants, opt_.event);
        variants_ = static_cast<std::uint64_t>(variants);

        std::vector<Conn> conns(static_cast<std::size_t>(opt_.conns));
        raise_nofile();
        open_all(conns, static_cast<std::size_t>(opt_.max_pending), 30.0);
        if (open_ == 0) {
            std::printf("result server=%s mode=echo conns=%d inflight=%d size=%zu seconds=0 msgs=0 msgs_per_s=0 "
                        "mb_per_s=0 p50_us=0 p99_us=0 max_us=0 server_cpu_s=0 msgs_per_cpu_s=0 client_cpu_s=0 "
                        "errors=%llu lost_conns=%d\n",
                        opt_.name.c_str(), opt_.conns, opt_.inflight, opt_.size,
                        static_cast<unsigned long long>(std::max<std::uint64_t>(total_errors(), 1)), opt_.conns);
            return 1;
        }

        // Prime: P messages in flight on every open connection.
        const auto t_start = Clock::now();
        for (auto& c : conns) {
            if (c.state != State::Open) continue;
            c.sent.assign(P, t_start);
            for (std::size_t i = 0; i < P; ++i) queue_send(c, t_start);
            if (!flush(c)) conn_error(c, "send failed");
            // Frames that arrived with the handshake response are processed on the next EPOLLIN;
            // with level-triggered epoll they would not trigger, so handle them now.
            if (c.in_len > 0) process_frames(c, t_start);
        }

        const auto warm_end = t_start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt_.warmup));
        const auto meas_end = warm_end + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt_.seconds));
        bool measuring = false;
        double cpu0 = 0, self0 = 0;
        Clock::time_point t0{};
        latencies_.reserve(1u << 22);
        std::vector<epoll_event> evs(1024);
        for (;;) {
            const auto now = Clock::now();
            if (!measuring && now >= warm_end) {
                measuring = true;
                recording_ = true;
                counted_ = 0;
                t0 = Clock::now();
                cpu0 = opt_.pid > 0 ? read_cpu_seconds(opt_.pid) : -1;
                self0 = self_cpu_seconds();
            }
            if (now >= meas_end) break;
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
                        process_frames(c, Clock::now());
                        if (c.state == State::Open && !flush(c)) conn_error(c, "send failed");
                    }
                }
            }
        }
        const auto t1 = Clock::now();
        recording_ = false;
        const double cpu1 = opt_.pid > 0 ? read_cpu_seconds(opt_.pid) : -1;
        const double self1 = self_cpu_seconds();
        const double window = measuring ? secs(t1 - t0) : 0.0;
        const std::uint64_t msgs = counted_;

        double p50 = 0, p99 = 0, pmax = 0;
        if (!latencies_.empty()) {
            auto pct = [&](double q) {
                auto idx = static_cast<std::size_t>(q * static_cast<double>(latencies_.size() - 1));
                std::nth_element(latencies_.begin(), latencies_.begin() + static_cast<std::ptrdiff_t>(idx), latencies_.end());
                return static_cast<double>(latencies_[idx]) / 1000.0;
            };
            p50 = pct(0.50);
            p99 = pct(0.99);
            pmax = static_cast<double>(*std::max_element(latencies_.begin(), latencies_.end())) / 1000.0;
        }
        const double rate = window > 0 ? static_cast<double>(msgs) / window : 0.0;
        const double server_cpu = (cpu0 >= 0 && cpu1 >= 0) ? cpu1 - cpu0 : -1;
        const double per_cpu = server_cpu > 0 ? static_cast<double>(msgs) / server_cpu : 0.0;
        const std::uint64_t lost = static_cast<std::uint64_t>(opt_.conns) - static_cast<std::uint64_t>(open_);

        std::printf("result server=%s mode=echo conns=%d inflight=%d size=%zu seconds=%.3f msgs=%llu msgs_per_s=%.0f "
                    "mb_per_s=%.2f p50_us=%.1f p99_us=%.1f max_us=%.1f server_cpu_s=%.3f msgs_per_cpu_s=%.0f "
                    "client_cpu_s=%.3f errors=%llu lost_conns=%llu\n",
                    opt_.name.c_str(), opt_.conns, opt_.inflight, opt_.size, window,
                    static_cast<unsigned long long>(msgs), rate, rate * static_cast<double>(opt_.size) / 1e6, p50, p99,
                    pmax, server_cpu, per_cpu, self1 - self0, static_cast<unsigned long long>(total_errors()),
                    static_cast<unsigned long long>(lost));
        std::fflush(stdout);
        for (auto& c : conns) kill(c);
        return total_errors() == 0 ? 0 : 1;
    }

    std::uint64_t total_errors() const {
        return stats_.connect_errors + stats_.handshake_errors + stats_.closed_by_peer + stats_.frame_errors;
    }

    void queue_send(Conn& c, Clock::time_point now) {
        const auto& f = frames_.wire[static_cast<std::size_t>(c.next_send % variants_)];
        c.out.append(f);
        ++c.next_send;
        const std::size_t P = c.sent.size();
        c.sent[(c.sent_head + c.sent_count) % P] = now;
        ++c.sent_count;
    }

    void conn_error(Conn& c, const char* why) {
        if (why && std::strcmp(why, "closed by server") == 0) ++stats_.closed_by_peer;
        else ++stats_.frame_errors;
        if (reported_++ < 5) std::fprintf(stderr, "loadgen: connection error: %s\n", why);
        kill(c);
        --open_;
    }

    void process_frames(Conn& c, Clock::time_point now) {
        std::size_t off = 0;
        const std::uint8_t* b = c.in.data();
        while (c.in_len - off >= 2) {
            const std::uint8_t b0 = b[off], b1 = b[off + 1];
            std::size_t hlen = 2;
            std::uint64_t len = b1 & 0x7f;
            if (len == 126) {
                hlen = 4;
                if (c.in_len - off < hlen) break;
                len = (std::uint64_t{b[off + 2]} << 8) | b[off + 3];
            } else if (len == 127) {
                hlen = 10;
                if (c.in_len - off < hlen) break;
                len = 0;
                for (int i = 0; i < 8; ++i) len = (len << 8) | b[off + 2 + static_cast<std::size_t>(i)];
            }
            if (b1 & 0x80) hlen += 4;  // server must not mask: flagged below
            if (c.in_len - off < hlen) break;
            if (len > (std::uint64_t{1} << 32)) { conn_error(c, "absurd frame length"); return; }
            if (c.in_len - off - hlen < len) {
                // Make sure the buffer can hold the whole frame.
                const std::size_t need = off + hlen + static_cast<std::size_t>(len);
                if (c.in.size() < need + 16384) c.in.resize(need + 16384), b = c.in.data();
                break;
            }
            const std::uint8_t opcode = b0 & 0x0f;
            if (opcode == 0x9 || opcode == 0xA) {  // ping/pong from server: not expected, but tolerated
                off += hlen + static_cast<std::size_t>(len);
                continue;
            }
            const auto vi = static_cast<std::size_t>(c.next_recv % variants_);
            const std::string& want = frames_.payload[vi];
            const std::string& whdr = frames_.expect_hdr[vi];
            bool ok = (b1 & 0x80) == 0 && b0 == 0x81 && len == want.size() &&
                      hlen == whdr.size() && std::memcmp(b + off, whdr.data(), hlen) == 0 &&
                      std::memcmp(b + off + hlen, want.data(), want.size()) == 0;
            if (!ok || c.sent_count == 0) {
                char why[112];
                const bool hdr_ok = (b1 & 0x80) == 0 && b0 == 0x81 && len == want.size();
                std::snprintf(why, sizeof why, "bad echo frame (byte0=0x%02x len=%llu, expected 0x81 len=%zu)%s", b0,
                              static_cast<unsigned long long>(len), want.size(),
                              c.sent_count == 0 ? ": unsolicited" : hdr_ok ? ": payload mismatch or reordered" : "");
                conn_error(c, opcode == 0x8 ? "close frame from server" : why);
                return;
            }
            const auto sent_at = c.sent[c.sent_head];
            c.sent_head = (c.sent_head + 1) % c.sent.size();
            --c.sent_count;
            ++c.next_recv;
            if (recording_) {
                latencies_.push_back(static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now - sent_at).count()));
                ++counted_;
            }
            off += hlen + static_cast<std::size_t>(len);
            queue_send(c, now);
        }
        if (off > 0) {
            std::memmove(c.in.data(), c.in.data() + off, c.in_len - off);
            c.in_len -= off;
        }
    }

    // ------------------------------------------------------------ idle mode

    int run_idle() {
        raise_nofile();
        const long limit = nofile_limit();
        if (limit < opt_.conns + 16)
            std::fprintf(stderr, "loadgen: warning: RLIMIT_NOFILE %ld < conns %d + 16\n", limit, opt_.conns);
        const Mem before = opt_.pid > 0 ? read_mem(opt_.pid) : Mem{};
        const double cpu0 = opt_.pid > 0 ? read_cpu_seconds(opt_.pid) : -1;
        std::vector<Conn> conns(static_cast<std::size_t>(opt_.conns));
        const auto t0 = Clock::now();
        open_all(conns, static_cast<std::size_t>(opt_.max_pending), opt_.timeout);
        const double open_s = secs(Clock::now() - t0);
        // Settle while still watching for connections the server drops.
        const auto settle_end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt_.settle));
        std::vector<epoll_event> evs(1024);
        while (Clock::now() < settle_end) {
            const int n = epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), 50);
            for (int i = 0; i < n; ++i) {
                Conn& c = *static_cast<Conn*>(evs[static_cast<std::size_t>(i)].data.ptr);
                if (c.state == State::Open) check_idle_conn(c);
            }
        }
        const Mem after = opt_.pid > 0 ? read_mem(opt_.pid) : Mem{};
        const double cpu1 = opt_.pid > 0 ? read_cpu_seconds(opt_.pid) : -1;
        const long n_open = open_;
        auto per_conn = [&](long a, long b) {
            return (a >= 0 && b >= 0 && n_open > 0) ? static_cast<double>(b - a) * 1024.0 / static_cast<double>(n_open) : 0.0;
        };
        std::printf("result server=%s mode=idle conns=%d open=%ld open_s=%.3f rss_before_kib=%ld rss_after_kib=%ld "
                    "bytes_per_conn=%.0f anon_before_kib=%ld anon_after_kib=%ld anon_bytes_per_conn=%.0f "
                    "server_cpu_s=%.3f errors=%llu\n",
                    opt_.name.c_str(), opt_.conns, n_open, open_s, before.rss_kib, after.rss_kib,
                    per_conn(before.rss_kib, after.rss_kib), before.anon_kib, after.anon_kib,
                    per_conn(before.anon_kib, after.anon_kib), (cpu0 >= 0 && cpu1 >= 0) ? cpu1 - cpu0 : -1.0,
                    static_cast<unsigned long long>(total_errors()));
        std::fflush(stdout);
        // Abortive close (RST): avoids leaving thousands of TIME_WAIT sockets
        // on the client side between benchmark runs.
        for (auto& c : conns) {
            if (c.fd >= 0) {
                linger lg{1, 0};
                setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            }
            kill(c);
        }
        return total_errors() == 0 && n_open == opt_.conns ? 0 : 1;
    }

    Options opt_;
    int ep_ = -1;
    sockaddr_in addr_{};
    Stats stats_;
    long open_ = 0;
    int reported_ = 0;
    FrameSet frames_;
    std::uint64_t variants_ = 1;
    bool recording_ = false;
    std::uint64_t counted_ = 0;
    std::vector<std::uint64_t> latencies_;
};

}  // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    Options o = parse_options(argc, argv);
    Runner r(std::move(o));
    return r.run();
}
