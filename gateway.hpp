// gateway.hpp: realtime servers for C++20. WebSocket (RFC 6455) over Asio coroutines.
// Version 0.1.0. MIT licence.
//
// One header. Needs standalone Asio 1.22+ and OpenSSL (SHA-1 and base64 for the handshake, TLS).
// Read top to bottom: vocabulary, protocol code without sockets, the connection, the server and
// the client.

#ifndef GATEWAY_HPP
#define GATEWAY_HPP

// ==== Version ====
#define GATEWAY_VERSION_MAJOR 0
#define GATEWAY_VERSION_MINOR 1
#define GATEWAY_VERSION_PATCH 0
#define GATEWAY_VERSION (GATEWAY_VERSION_MAJOR * 10000 + GATEWAY_VERSION_MINOR * 100 + GATEWAY_VERSION_PATCH)

// ==== Requirements ====
#if __cplusplus < 202002L
#error "gateway.hpp needs C++20 (-std=c++20)"
#endif
#if !__has_include(<asio.hpp>)
#error "gateway.hpp needs standalone Asio 1.22 or later (Debian: libasio-dev)"
#endif
// Asio 1.22 enables co_await under clang only where <experimental/coroutine> exists (libc++); with
// libstdc++, which has <coroutine> alone, asio::awaitable would be missing. Include gateway.hpp
// before Asio, or define ASIO_HAS_CO_AWAIT yourself.
#if defined(__clang__) && defined(__cpp_impl_coroutine) && __has_include(<coroutine>) && !defined(ASIO_HAS_CO_AWAIT) && \
    !defined(ASIO_DISABLE_CO_AWAIT)
#define ASIO_HAS_CO_AWAIT 1
#endif
#include <asio/version.hpp>
#if ASIO_VERSION < 102201
#error "gateway.hpp needs standalone Asio 1.22.1 or later"
#endif

// ==== Build-time knobs ====
// GATEWAY_NO_JSON: leave out the gateway (events, rooms, namespaces), which needs nlohmann/json
// (Debian: nlohmann-json3-dev); the WebSocket core above it needs only Asio and OpenSSL.

// ==== Includes ====
#include <asio.hpp>                              // sockets, timers, coroutines (awaitable, co_spawn)
#include <asio/experimental/as_tuple.hpp>        // errors as values where they are expected
#include <asio/ssl.hpp>                          // TLS streams for wss://
#include <openssl/evp.h>                         // base64 (EVP_EncodeBlock / EVP_DecodeBlock)
#include <openssl/rand.h>                        // masking keys and handshake nonces
#include <openssl/sha.h>                         // SHA-1 for Sec-WebSocket-Accept
#ifndef GATEWAY_NO_JSON
#include <nlohmann/json.hpp>                     // the gateway's payloads and wire format
#endif

#include <algorithm>      // std::min, std::find_if
#include <any>            // data an application attaches to a connection
#include <array>          // fixed frame headers
#include <atomic>         // state shared by worker threads
#include <charconv>       // numbers in and out of the envelope without locales
#include <chrono>         // timeouts
#include <coroutine>      // gw::stream
#include <cstdint>        // fixed-width integers of the wire format
#include <cstring>        // std::memcpy for word-wise masking
#include <deque>          // ready connections waiting for accept()
#include <exception>      // std::exception_ptr from co_spawn
#include <functional>     // std::function hooks in options
#include <memory>         // shared ownership of connection state
#include <mutex>          // a server's connection lists and per-address counts
#if defined(__GLIBC__)
#include <malloc.h>       // malloc_trim: a server whose last connection went gives memory back
#endif
#include <optional>       // receive() returns nothing on a clean close
#include <span>           // byte views
#include <stdexcept>      // gw::ws_exception, gw::http_refusal
#include <tuple>          // handler parameter lists
#include <type_traits>    // adapting handlers and hooks
#include <unordered_map>  // namespaces' handlers, sockets and rooms
#include <string>         // payloads
#include <string_view>    // parsing without copies
#include <system_error>   // gw::errc and its category
#include <thread>         // worker threads
#include <utility>        // std::move, std::pair
#include <vector>         // outbox, headers

// GCC 12 reports Asio's coroutine frame allocator (operator new/delete of awaitable_frame_base) as
// mismatched once it inlines both; the pair does match. Silenced for this header's code only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace gw {
inline namespace v0 {

// ==== Vocabulary ====

/// Errors reported by gateway.hpp, in the category gw::error_category().
enum class errc {
    closed = 1,            ///< the connection is closed or closing; nothing more can be sent
    protocol_error,        ///< the peer broke RFC 6455 (we closed with 1002)
    invalid_payload,       ///< text or close reason that is not UTF-8 (we closed with 1007)
    message_too_big,       ///< a message over max_message_bytes (we closed with 1009)
    connection_lost,       ///< the TCP connection ended without a closing handshake (1006)
    handshake_failed,      ///< the HTTP upgrade was refused or its answer was invalid
    handshake_timeout,     ///< the HTTP upgrade did not complete in time
    bad_url,               ///< connect() got a URL that is not ws:// or wss://
    receive_in_progress,   ///< receive() called while another receive() on it is pending
    ping_timeout,          ///< the peer did not answer the server's ping within ping_timeout
    policy_violation,      ///< the peer broke a limit of the server's (we closed with 1008)
    slow_consumer,         ///< the peer read too slowly: its outbox passed max_outbox_bytes (we closed with 1008)
};

} // namespace v0
} // namespace gw
template <> struct std::is_error_code_enum<gw::errc> : std::true_type {};
namespace gw {
inline namespace v0 {

/// The category of gw::errc.
inline const std::error_category& error_category() noexcept {
    struct category final : std::error_category {
        const char* name() const noexcept override { return "gateway"; }
        std::string message(int e) const override {
            switch (static_cast<errc>(e)) {
            case errc::closed: return "the WebSocket connection is closed";
            case errc::protocol_error: return "the peer violated the WebSocket protocol";
            case errc::invalid_payload: return "the peer sent text that is not valid UTF-8";
            case errc::message_too_big: return "the peer sent a message over the size limit";
            case errc::connection_lost: return "the connection ended without a closing handshake";
            case errc::handshake_failed: return "the WebSocket handshake failed";
            case errc::handshake_timeout: return "the WebSocket handshake timed out";
            case errc::bad_url: return "the URL is not a valid ws:// or wss:// URL";
            case errc::receive_in_progress: return "another receive() is already pending";
            case errc::ping_timeout: return "ping timeout";
            case errc::policy_violation: return "the peer broke a limit of the server's";
            case errc::slow_consumer: return "slow consumer";
            }
            return "unknown gateway error";
        }
    };
    static const category instance;
    return instance;
}

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), error_category()}; }

/// What happens to a message that would take a connection's outbox past max_outbox_bytes.
enum class overflow : std::uint8_t {
    close,   ///< the slow consumer is closed with 1008 "slow consumer"; what was queued for it is dropped
    drop,    ///< the message is dropped for that connection, which stays
};

/// Close status codes of RFC 6455 section 7.4.1.
enum class close_code : std::uint16_t {
    normal = 1000,
    going_away = 1001,
    protocol_error = 1002,
    unsupported_data = 1003,
    no_status = 1005,          ///< never sent: the peer's close frame carried no code
    abnormal = 1006,           ///< never sent: the TCP connection ended without a close frame
    invalid_payload = 1007,
    policy_violation = 1008,
    message_too_big = 1009,
    mandatory_extension = 1010,
    internal_error = 1011,
};

/// Frame opcodes of RFC 6455 section 5.2.
enum class opcode : std::uint8_t { continuation = 0, text = 1, binary = 2, close = 8, ping = 9, pong = 10 };

/// One complete WebSocket message: text (valid UTF-8) or binary.
struct message {
    std::string data;      ///< the payload, reassembled from all fragments
    bool binary = false;   ///< false: text frame(s); true: binary frame(s)
};

namespace detail { struct request_parser; }
class connection;

/// An HTTP request: the upgrade request a connection was opened with, or a plain HTTP request.
/// Owns its bytes; every view it returns lives as long as the request.
class http_request {
public:
    std::string_view method() const noexcept { return view(method_); }
    std::string_view target() const noexcept { return view(target_); }   ///< path and query as sent
    std::string_view path() const noexcept { return view(path_); }       ///< without the query
    std::string_view query() const noexcept { return view(query_); }     ///< after '?', not decoded
    int version_minor() const noexcept { return minor_; }                ///< HTTP/1.x
    const asio::ip::tcp::endpoint& remote_endpoint() const noexcept { return remote_; }

    /// The first value of a header, by case-insensitive name.
    std::optional<std::string_view> header(std::string_view name) const noexcept;
    /// Calls f(name, value) for every header line, in order.
    template <class F> void for_each_header(F&& f) const {
        for (const auto& h : fields_) f(view(h.name), view(h.value));
    }
    /// True when a comma-separated header (all its lines) holds token, case-insensitively.
    bool has_token(std::string_view name, std::string_view token) const noexcept;
    /// The subprotocols the client offered in Sec-WebSocket-Protocol, in order.
    std::vector<std::string_view> protocols() const;
    /// A query parameter, percent-decoded ('+' as space); nullopt when absent.
    std::optional<std::string> query_param(std::string_view name) const;
    /// A cookie from the Cookie header(s) (RFC 6265: "a=1; b=2", a quoted value unquoted); nullopt
    /// when absent.
    std::optional<std::string_view> cookie(std::string_view name) const noexcept;
    /// A bearer token (RFC 6750) from, in this order: "Authorization: Bearer T"; the subprotocol
    /// offered after "access_token" (browsers cannot set headers: new WebSocket(url, ["access_token",
    /// T])); the query parameter access_token. nullopt when none carries one.
    std::optional<std::string> bearer_token() const;

    /// What the application attaches while upgrading (the authenticated user, say); it stays with
    /// the connection as its request does.
    std::any attachment;

private:
    struct span_ { std::uint16_t off = 0, len = 0; };
    struct field { span_ name, value; };
    std::string_view view(span_ s) const noexcept { return std::string_view(raw_).substr(s.off, s.len); }
    template <class F> void for_each_value(std::string_view name, F&& f) const;

    std::string raw_;
    std::vector<field> fields_;
    span_ method_, target_, path_, query_;
    int minor_ = 1;
    asio::ip::tcp::endpoint remote_;
    friend struct detail::request_parser;
    friend class server;
};

/// A plain HTTP answer: a refused upgrade, or the application's answer to a plain GET.
struct http_response {
    int status = 200;
    std::string body;
    std::string content_type = "text/plain; charset=utf-8";
    std::vector<std::pair<std::string, std::string>> headers{};   ///< extra header lines
};

/// How much a log line matters (options.log).
enum class log_level : std::uint8_t { debug, info, warn, error };

/// A server's counters and gauges at one moment: server::metrics(), gateway::metrics(), and as
/// Prometheus text at GET options.metrics_path. Counters count since the server started.
struct metrics {
    std::uint64_t connections = 0;           ///< gauge: connections open or upgrading now
    std::uint64_t handshakes_accepted = 0;   ///< upgrades answered with 101
    /// Upgrades and plain requests refused, by HTTP status (0: no answer, the handshake timed out
    /// or its TLS failed), in increasing order of status.
    std::vector<std::pair<int, std::uint64_t>> handshakes_rejected;
    std::uint64_t messages_in = 0, messages_out = 0;   ///< WebSocket messages received and queued
    std::uint64_t bytes_in = 0, bytes_out = 0;         ///< bytes read and queued, frame headers included
    std::uint64_t dropped = 0;                 ///< messages dropped: volatile emits, gw::overflow::drop
    std::uint64_t slow_consumer_closes = 0;    ///< connections closed by gw::overflow::close
    std::uint64_t ping_timeouts = 0;           ///< connections dropped for a late pong
    // The gateway's (zero for a plain server):
    std::uint64_t sockets = 0;                 ///< gauge: sockets in every namespace
    std::uint64_t rooms = 0;                   ///< gauge: rooms with members, per worker and namespace, id-rooms aside
    /// Handler latency (guards, pipes and handler, until the reply is queued) per event.
    struct latency {
        std::string nsp, event;
        static constexpr std::array<double, 10> bounds{0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5};   ///< seconds
        std::array<std::uint64_t, bounds.size() + 1> buckets{};   ///< per bound, not cumulative; the last: above every bound
        std::uint64_t count = 0;
        double sum_seconds = 0;
    };
    std::vector<latency> handlers;
};

/// The metrics as Prometheus text exposition (version 0.0.4), names prefixed "gateway_".
inline std::string to_prometheus(const metrics& m) {
    std::string out;
    auto number = [](double v) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.17g", v);
        return std::string(buf);
    };
    auto label = [](std::string_view v) {   // a label value, escaped as the format asks
        std::string t;
        for (char c : v) {
            if (c == '\\' || c == '"') t += '\\';
            if (c == '\n') {
                t += "\\n";
                continue;
            }
            t += c;
        }
        return t;
    };
    auto one = [&](const char* name, const char* type, const char* help, std::uint64_t v) {
        out.append("# HELP gateway_").append(name).append(" ").append(help).append("\n");
        out.append("# TYPE gateway_").append(name).append(" ").append(type).append("\n");
        out.append("gateway_").append(name).append(" ").append(std::to_string(v)).append("\n");
    };
    one("connections", "gauge", "Connections open or upgrading.", m.connections);
    one("handshakes_accepted_total", "counter", "Upgrades answered with 101.", m.handshakes_accepted);
    out.append("# HELP gateway_handshakes_rejected_total Requests refused, by HTTP status (0: no answer).\n"
               "# TYPE gateway_handshakes_rejected_total counter\n");
    for (const auto& [status, n] : m.handshakes_rejected)
        out.append("gateway_handshakes_rejected_total{status=\"").append(std::to_string(status)).append("\"} ").append(std::to_string(n)).append("\n");
    one("messages_received_total", "counter", "WebSocket messages received.", m.messages_in);
    one("messages_sent_total", "counter", "WebSocket frames queued to send.", m.messages_out);
    one("bytes_received_total", "counter", "Bytes read after the handshake.", m.bytes_in);
    one("bytes_sent_total", "counter", "Bytes queued to send after the handshake.", m.bytes_out);
    one("messages_dropped_total", "counter", "Messages dropped: volatile emits and overflow::drop.", m.dropped);
    one("slow_consumer_closes_total", "counter", "Connections closed because their outbox passed its cap.", m.slow_consumer_closes);
    one("ping_timeouts_total", "counter", "Connections dropped for a late pong.", m.ping_timeouts);
    one("sockets", "gauge", "Gateway sockets in every namespace.", m.sockets);
    one("rooms", "gauge", "Gateway rooms with members (per worker and namespace; id-rooms aside).", m.rooms);
    out.append("# HELP gateway_handler_seconds Handler latency per event.\n# TYPE gateway_handler_seconds histogram\n");
    for (const auto& h : m.handlers) {
        const std::string labels = "nsp=\"" + label(h.nsp) + "\",event=\"" + label(h.event) + "\"";
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < h.buckets.size(); ++i) {
            cumulative += h.buckets[i];
            const std::string le = i < h.bounds.size() ? number(h.bounds[i]) : "+Inf";
            out.append("gateway_handler_seconds_bucket{").append(labels).append(",le=\"").append(le).append("\"} ")
                .append(std::to_string(cumulative)).append("\n");
        }
        out.append("gateway_handler_seconds_sum{").append(labels).append("} ").append(number(h.sum_seconds)).append("\n");
        out.append("gateway_handler_seconds_count{").append(labels).append("} ").append(std::to_string(h.count)).append("\n");
    }
    return out;
}

/// How a server listens and what it accepts. Every field has a default; set what you need with
/// designated initializers: gw::server srv{io, {.port = 8080}}.
struct options {
    std::string host{};                   ///< "": every interface, IPv6 and IPv4 (IPv4 only where there is no IPv6); "127.0.0.1" for local only
    std::uint16_t port = 0;               ///< 0 picks a free port; server::port() tells which
    int backlog = asio::socket_base::max_listen_connections;   ///< the system's maximum

    // Limits (README: "Limits and what bad input gets").
    std::size_t max_message_bytes = 1 << 20;   ///< 1 MiB, as Socket.IO: larger messages close with 1009
    std::size_t max_frame_bytes = 1 << 20;     ///< one frame's payload: larger closes with 1009
    std::size_t max_fragments = 1024;          ///< frames in one message: more closes with 1008
    std::size_t max_header_bytes = 8 << 10;    ///< 8 KiB upgrade request, as most HTTP servers: else 431
    std::size_t max_connections = 100'000;     ///< open or upgrading at once: more get 503 at the handshake
    /// Per remote address; more get 429 at the handshake. 0 (the default): no limit, because clients
    /// behind a proxy or NAT share one address.
    std::size_t max_connections_per_address = 0;
    /// Origins allowed to upgrade ("https://example.com"), compared without regard to case; others
    /// get 403. Empty (the default): any. A request without Origin passes: browsers always send one,
    /// so only non-browser clients omit it, and those can send any Origin they like anyway.
    std::vector<std::string> allowed_origins{};
    std::chrono::milliseconds handshake_timeout{10'000};   ///< a slow client cannot hold a slot longer
    std::chrono::milliseconds close_timeout{5'000};        ///< how long to wait for the peer's close

    // Backpressure: what a connection has queued and not yet handed to the kernel.
    /// co_await send() (and a gateway socket's co_await emit()) waits while a connection's unsent
    /// bytes are at or above this, so a streaming handler runs at its client's pace.
    std::size_t outbox_high_water = 64 << 10;
    /// What does not wait (broadcasts, replies, sends from other threads) may queue up to this; a
    /// message beyond it meets slow_consumer. A single message larger than the cap is still queued
    /// when nothing else is.
    std::size_t max_outbox_bytes = 4 << 20;
    overflow slow_consumer = overflow::close;   ///< what a message beyond max_outbox_bytes meets

    // Liveness: one timer per worker checks every connection, so none pays for a timer of its own.
    /// The server pings every connection this often (0: never) ...
    std::chrono::milliseconds ping_interval{25'000};
    /// ... and drops one whose pong has not come this long after (errc::ping_timeout; the gateway's
    /// reason is "ping timeout"). Socket.IO's defaults, both.
    std::chrono::milliseconds ping_timeout{20'000};
    /// A connection that sends no message for this long is closed with 1001 "idle timeout"; pongs
    /// do not count. 0 (the default): never.
    std::chrono::milliseconds idle_timeout{0};
    /// Event loops serving connections, one thread each. 1 serves everything on the io_context the
    /// server was given; N > 1 adds N - 1 threads of the server's own, connections are spread over
    /// the N loops in turn, and on_connection is required (accept() serves one loop). 0 means one
    /// per hardware thread. The default is 1 so that applications need no locks until they ask.
    std::size_t workers = 1;

    /// wss:// when set: a server context with certificate and key (see gw::tls_server_context).
    std::shared_ptr<asio::ssl::context> tls{};

    /// Sees every upgrade request before it is accepted; return a response to refuse it (401, 403, ...).
    /// It may set request.attachment, which the connection keeps.
    std::function<std::optional<http_response>(http_request&)> on_upgrade{};
    /// Answers requests that are not upgrades (health checks); nullopt gives 426 Upgrade Required.
    std::function<std::optional<http_response>(const http_request&)> on_http{};
    /// Picks one of request.protocols(), or returns "" for none. Unset: "access_token" when offered
    /// (it carries a bearer token, see http_request::bearer_token), else none.
    std::function<std::string(const http_request&)> select_subprotocol{};
    /// When set, receives each upgraded connection at once, on its thread, before any of its
    /// messages is read (and before another client is served), instead of accept().
    std::function<void(connection)> on_connection{};

    // The gateway's limits (a plain server ignores them).
    std::size_t max_rooms_per_socket = 1000;   ///< joining one more throws gw::ws_exception("Too many rooms")
    /// Events per second a socket may send (a token bucket refilled at this rate); 0 (the default):
    /// no limit. Over it, rate_policy decides.
    double message_rate = 0;
    double message_burst = 0;   ///< the bucket's size: events allowed at once; 0 means message_rate's worth (one second)
    /// Over the rate: true closes the socket with 1008 "rate limit"; false (the default) answers the
    /// event with an exception ("Too many messages") and drops it.
    bool close_over_rate = false;

    // Operating it.
    /// Receives the server's log lines: refused handshakes, protocol faults, timeouts, slow
    /// consumers, exceptions no one else saw. Unset (the default): silent. Called on the thread
    /// where it happened; keep it quick, and thread-safe with workers > 1.
    std::function<void(log_level, std::string_view)> log{};
    /// GET here answers the metrics as Prometheus text (version 0.0.4); "" turns it off. Put it
    /// behind your proxy's access rules if the counts are not for everyone.
    std::string metrics_path = "/metrics";
    /// GET here answers 200 "ok" while the server accepts connections, 503 once it stopped; "": off.
    std::string health_path = "/healthz";
};

/// How connect() opens a client connection.
struct client_options {
    std::vector<std::string> subprotocols{};                    ///< offered in Sec-WebSocket-Protocol
    std::vector<std::pair<std::string, std::string>> headers{}; ///< extra request headers
    std::size_t max_message_bytes = 1 << 20;                    ///< as the server's default
    std::size_t max_header_bytes = 8 << 10;                     ///< the server's answer
    std::chrono::milliseconds handshake_timeout{10'000};
    std::chrono::milliseconds close_timeout{5'000};
    /// For wss://: nullptr verifies the server against the system's CAs and its host name.
    std::shared_ptr<asio::ssl::context> tls{};
};

// ==== Protocol (no sockets) ====

namespace detail {

inline constexpr std::string_view websocket_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

inline bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        auto x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
        if (x >= 'A' && x <= 'Z') x |= 0x20;
        if (y >= 'A' && y <= 'Z') y |= 0x20;
        if (x != y) return false;
    }
    return true;
}

inline std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

/// Calls f(token) for each trimmed, non-empty element of a comma-separated list.
template <class F> void for_each_token(std::string_view list, F&& f) {
    while (!list.empty()) {
        auto comma = list.find(',');
        auto tok = trim(list.substr(0, comma));
        if (!tok.empty()) f(tok);
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
}

inline std::string base64_encode(std::span<const unsigned char> in) {
    std::string out(4 * ((in.size() + 2) / 3), '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), in.data(), static_cast<int>(in.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

/// True when key is the base64 encoding of exactly 16 bytes (RFC 6455 section 4.1).
inline bool is_valid_client_key(std::string_view key) noexcept {
    // 16 bytes encode as 22 alphabet characters and "==" (OpenSSL's decoder would take '=' anywhere).
    if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
    for (std::size_t i = 0; i < 22; ++i) {
        const char c = key[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/'))
            return false;
    }
    return true;
}

/// Sec-WebSocket-Accept for a client's Sec-WebSocket-Key.
inline std::string accept_key(std::string_view client_key) {
    std::string joined;
    joined.reserve(client_key.size() + websocket_guid.size());
    joined.append(client_key).append(websocket_guid);
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(joined.data()), joined.size(), digest);
    return base64_encode(digest);
}

/// Bytes from OpenSSL's CSPRNG, drawn in blocks so each masking key costs a copy, not a call.
inline void random_bytes(unsigned char* out, std::size_t n) {
    thread_local std::array<unsigned char, 256> pool;
    thread_local std::size_t used = pool.size();
    while (n > 0) {
        if (used == pool.size()) {
            if (RAND_bytes(pool.data(), static_cast<int>(pool.size())) != 1)
                throw std::system_error(std::make_error_code(std::errc::io_error), "RAND_bytes failed");
            used = 0;
        }
        std::size_t k = std::min(n, pool.size() - used);
        std::memcpy(out, pool.data() + used, k);
        used += k, out += k, n -= k;
    }
}

// ---- UTF-8 ----

/// Incremental UTF-8 validator (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF).
/// feed() fails at the first byte that no valid continuation could follow, so a text message is
/// rejected as soon as it goes wrong, even in the middle of a fragment.
class utf8_validator {
public:
    bool feed(std::span<const unsigned char> bytes) noexcept {
        const unsigned char* p = bytes.data();
        const unsigned char* end = p + bytes.size();
        while (p < end) {
            if (need_ == 0) {
                // ASCII runs a word at a time.
                while (end - p >= 8) {
                    std::uint64_t w;
                    std::memcpy(&w, p, 8);
                    if (w & 0x8080808080808080ull) break;
                    p += 8;
                }
                if (p == end) break;
                unsigned char b = *p++;
                if (b < 0x80) continue;
                if (b >= 0xC2 && b <= 0xDF) { need_ = 1; lo_ = 0x80; hi_ = 0xBF; }
                else if (b == 0xE0) { need_ = 2; lo_ = 0xA0; hi_ = 0xBF; }
                else if (b == 0xED) { need_ = 2; lo_ = 0x80; hi_ = 0x9F; }        // no surrogates
                else if (b >= 0xE1 && b <= 0xEF) { need_ = 2; lo_ = 0x80; hi_ = 0xBF; }
                else if (b == 0xF0) { need_ = 3; lo_ = 0x90; hi_ = 0xBF; }
                else if (b >= 0xF1 && b <= 0xF3) { need_ = 3; lo_ = 0x80; hi_ = 0xBF; }
                else if (b == 0xF4) { need_ = 3; lo_ = 0x80; hi_ = 0x8F; }        // up to U+10FFFF
                else return false;
            } else {
                unsigned char b = *p++;
                if (b < lo_ || b > hi_) return false;
                lo_ = 0x80, hi_ = 0xBF;
                --need_;
            }
        }
        return true;
    }
    bool feed(std::string_view s) noexcept {
        return feed({reinterpret_cast<const unsigned char*>(s.data()), s.size()});
    }
    /// True when the bytes so far end on a character boundary.
    bool complete() const noexcept { return need_ == 0; }
    void reset() noexcept { need_ = 0; }

private:
    std::uint8_t need_ = 0, lo_ = 0x80, hi_ = 0xBF;
};

inline bool is_valid_utf8(std::string_view s) noexcept {
    utf8_validator v;
    return v.feed(s) && v.complete();
}

// ---- Masking ----

/// XORs data with the 4-byte key, starting at key byte `phase` (0-3); returns the next phase.
/// Works a 64-bit word at a time.
inline std::size_t apply_mask(unsigned char* data, std::size_t n, std::array<unsigned char, 4> key,
                              std::size_t phase = 0) noexcept {
    phase &= 3;
    std::size_t i = 0;
    for (; i < n && ((phase + i) & 3) != 0; ++i) data[i] ^= key[(phase + i) & 3];
    // Now aligned to the key: key bytes 0..3 repeat from data + i.
    std::uint64_t word;
    unsigned char pattern[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
    std::memcpy(&word, pattern, 8);
    for (; i + 8 <= n; i += 8) {
        std::uint64_t v;
        std::memcpy(&v, data + i, 8);
        v ^= word;
        std::memcpy(data + i, &v, 8);
    }
    for (; i < n; ++i) data[i] ^= key[(phase + i) & 3];
    return (phase + n) & 3;
}

// ---- Frames ----

/// A decoded frame header (RFC 6455 section 5.2).
struct frame_header {
    bool fin = true;
    std::uint8_t rsv = 0;          ///< RSV1-3 as the top bits 0x70 of the first byte
    opcode op = opcode::text;
    bool masked = false;
    std::uint64_t length = 0;
    std::array<unsigned char, 4> mask{};
    std::size_t size = 0;          ///< bytes the header itself took
};

inline constexpr std::size_t max_frame_header = 14;

inline constexpr bool is_control(opcode op) noexcept { return (static_cast<std::uint8_t>(op) & 0x8) != 0; }
inline constexpr bool is_known_opcode(std::uint8_t op) noexcept { return op <= 2 || (op >= 8 && op <= 10); }

/// Header size announced by the first two bytes.
inline std::size_t header_size(unsigned char b1) noexcept {
    std::size_t n = 2;
    auto len7 = b1 & 0x7F;
    if (len7 == 126) n += 2;
    else if (len7 == 127) n += 8;
    if (b1 & 0x80) n += 4;
    return n;
}

enum class decode_status { ok, need_more, error };

/// Decodes a header from bytes. On error, *code says how to close.
/// Checks only what the header alone decides: reserved bits, opcodes, control frame rules, the
/// 64-bit length's top bit, and that frames from a client are masked (expect_masked) and frames
/// from a server are not.
inline decode_status decode_header(std::span<const unsigned char> in, bool expect_masked, frame_header& h,
                                   close_code& code) noexcept {
    if (in.size() < 2) return decode_status::need_more;
    const std::size_t size = header_size(in[1]);
    if (in.size() < size) return decode_status::need_more;
    const unsigned char b0 = in[0], b1 = in[1];
    h.fin = (b0 & 0x80) != 0;
    h.rsv = b0 & 0x70;
    h.masked = (b1 & 0x80) != 0;
    h.size = size;
    code = close_code::protocol_error;
    if (h.rsv != 0 || !is_known_opcode(b0 & 0x0F) || h.masked != expect_masked) return decode_status::error;
    h.op = static_cast<opcode>(b0 & 0x0F);
    std::size_t pos = 2;
    std::uint64_t len = b1 & 0x7F;
    if (len == 126) {
        len = (std::uint64_t{in[2]} << 8) | in[3];
        pos = 4;
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | in[2 + i];
        pos = 10;
        if (len >> 63) return decode_status::error;   // the most significant bit must be 0
    }
    h.length = len;
    if (is_control(h.op) && (!h.fin || len > 125)) return decode_status::error;
    if (h.masked) std::memcpy(h.mask.data(), in.data() + pos, 4);
    return decode_status::ok;
}

/// Writes a frame header to out (at least max_frame_header bytes); returns its size.
/// With a mask, the caller masks the payload with the same key.
inline std::size_t encode_header(unsigned char* out, opcode op, bool fin, std::uint64_t length,
                                 const std::array<unsigned char, 4>* mask = nullptr) noexcept {
    out[0] = static_cast<unsigned char>((fin ? 0x80 : 0) | static_cast<std::uint8_t>(op));
    const unsigned char m = mask ? 0x80 : 0;
    std::size_t n;
    if (length < 126) {
        out[1] = static_cast<unsigned char>(m | length);
        n = 2;
    } else if (length <= 0xFFFF) {
        out[1] = static_cast<unsigned char>(m | 126);
        out[2] = static_cast<unsigned char>(length >> 8);
        out[3] = static_cast<unsigned char>(length);
        n = 4;
    } else {
        out[1] = static_cast<unsigned char>(m | 127);
        for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<unsigned char>(length >> (56 - 8 * i));
        n = 10;
    }
    if (mask) {
        std::memcpy(out + n, mask->data(), 4);
        n += 4;
    }
    return n;
}

/// True for codes an endpoint may send in a close frame (RFC 6455 section 7.4).
inline constexpr bool is_valid_close_code(std::uint16_t c) noexcept {
    return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1011) || (c >= 3000 && c <= 4999);
}

/// Checks a received close frame's payload. Returns 0 when valid, else the code to fail with.
inline std::uint16_t check_close_payload(std::string_view payload) noexcept {
    if (payload.empty()) return 0;
    if (payload.size() == 1) return static_cast<std::uint16_t>(close_code::protocol_error);
    auto code = static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                           static_cast<unsigned char>(payload[1]));
    if (!is_valid_close_code(code)) return static_cast<std::uint16_t>(close_code::protocol_error);
    if (!is_valid_utf8(payload.substr(2))) return static_cast<std::uint16_t>(close_code::invalid_payload);
    return 0;
}

// ---- HTTP upgrade ----

inline bool is_token_char(unsigned char c) noexcept {
    if (c >= '0' && c <= '9') return true;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

inline int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') return (c | 0x20) - 'a' + 10;
    return -1;
}

/// Percent-decodes a query component ('+' is a space). Invalid escapes stay as they are.
inline std::string url_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') out += ' ';
        else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
        } else out += s[i];
    }
    return out;
}

/// Why a request cannot be upgraded: an HTTP status and a short reason for the body.
struct http_error {
    int status = 0;    ///< 0: no error
    std::string_view reason;
};

inline std::string_view status_text(int status) noexcept {
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return status < 400 ? "OK" : status < 500 ? "Bad Request" : "Internal Server Error";
    }
}

/// A complete plain-HTTP response that closes the connection.
inline std::string format_response(const http_response& r) {
    std::string out;
    out.reserve(128 + r.body.size());
    out.append("HTTP/1.1 ").append(std::to_string(r.status)).append(" ").append(status_text(r.status));
    out.append("\r\nContent-Type: ").append(r.content_type);
    out.append("\r\nContent-Length: ").append(std::to_string(r.body.size()));
    out.append("\r\nConnection: close\r\n");
    for (const auto& [k, v] : r.headers) out.append(k).append(": ").append(v).append("\r\n");
    out.append("\r\n").append(r.body);
    return out;
}

/// What check_upgrade() decided about a parsed request.
struct upgrade_decision {
    bool is_upgrade = false;    ///< false: a plain HTTP request
    http_error error;           ///< set when the upgrade must be refused
    std::string_view key;       ///< Sec-WebSocket-Key when accepted
};

inline upgrade_decision check_upgrade(const http_request& req) {
    upgrade_decision d;
    d.is_upgrade = req.has_token("Upgrade", "websocket") || req.header("Sec-WebSocket-Key").has_value();
    if (!d.is_upgrade) return d;
    if (req.method() != "GET") { d.error = {405, "a WebSocket upgrade must use GET"}; return d; }
    if (req.version_minor() < 1) { d.error = {400, "a WebSocket upgrade needs HTTP/1.1"}; return d; }
    if (!req.header("Host")) { d.error = {400, "missing Host header"}; return d; }
    if (!req.has_token("Upgrade", "websocket")) { d.error = {400, "missing Upgrade: websocket"}; return d; }
    if (!req.has_token("Connection", "upgrade")) { d.error = {400, "missing Connection: Upgrade"}; return d; }
    auto version = req.header("Sec-WebSocket-Version");
    if (!version || trim(*version) != "13") { d.error = {426, "unsupported Sec-WebSocket-Version"}; return d; }
    auto key = req.header("Sec-WebSocket-Key");
    if (!key || !is_valid_client_key(trim(*key))) {
        d.error = {400, "Sec-WebSocket-Key must be base64 of 16 bytes"};
        return d;
    }
    d.key = trim(*key);
    return d;
}

} // namespace detail

namespace detail {

/// Parses an HTTP/1.x request head (everything up to and including the blank line).
struct request_parser {
    /// Fills req from raw (which must end with "\r\n\r\n"); returns the error to answer, if any.
    static detail::http_error parse(std::string raw, http_request& req) {
        using detail::http_error;
        if (raw.size() > 0xFFFF) return {431, "request header too large"};
        req.raw_ = std::move(raw);
        req.raw_.shrink_to_fit();   // kept for the connection's life: no slack from the read
        req.fields_.clear();
        const std::string_view all = req.raw_;
        auto at = [&](std::string_view part) {
            return http_request::span_{static_cast<std::uint16_t>(part.data() - all.data()),
                                       static_cast<std::uint16_t>(part.size())};
        };
        std::size_t eol = all.find("\r\n");
        if (eol == std::string_view::npos) return {400, "malformed request line"};
        std::string_view line = all.substr(0, eol);
        // METHOD SP request-target SP HTTP/1.x
        auto sp1 = line.find(' ');
        if (sp1 == std::string_view::npos || sp1 == 0) return {400, "malformed request line"};
        auto method = line.substr(0, sp1);
        for (unsigned char c : method)
            if (!detail::is_token_char(c)) return {400, "malformed request line"};
        auto sp2 = line.find(' ', sp1 + 1);
        if (sp2 == std::string_view::npos || sp2 == sp1 + 1) return {400, "malformed request line"};
        auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
        auto version = line.substr(sp2 + 1);
        if (target.front() != '/') return {400, "request target must be a path"};
        for (unsigned char c : target)
            if (c <= 0x20 || c == 0x7F) return {400, "malformed request target"};
        if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' || version[5] < '0' ||
            version[5] > '9' || version[7] < '0' || version[7] > '9')
            return {400, "malformed HTTP version"};
        if (version[5] != '1') return {505, "only HTTP/1.x is supported"};
        req.minor_ = version[7] - '0';
        req.method_ = at(method);
        req.target_ = at(target);
        auto q = target.find('?');
        req.path_ = at(target.substr(0, q));
        req.query_ = q == std::string_view::npos ? at(target.substr(target.size())) : at(target.substr(q + 1));
        // Header lines until the empty line.
        std::size_t pos = eol + 2;
        for (;;) {
            eol = all.find("\r\n", pos);
            if (eol == std::string_view::npos) return {400, "header block not terminated"};
            line = all.substr(pos, eol - pos);
            pos = eol + 2;
            if (line.empty()) break;
            if (line.front() == ' ' || line.front() == '\t') return {400, "obsolete header folding"};
            auto colon = line.find(':');
            if (colon == std::string_view::npos || colon == 0) return {400, "malformed header line"};
            auto name = line.substr(0, colon);
            for (unsigned char c : name)
                if (!detail::is_token_char(c)) return {400, "malformed header name"};
            auto value = detail::trim(line.substr(colon + 1));
            for (unsigned char c : value)
                if ((c < 0x20 && c != '\t') || c == 0x7F) return {400, "malformed header value"};
            req.fields_.push_back({at(name), at(value)});
        }
        if (pos != all.size()) return {400, "bytes after the header block"};
        return {};
    }
};

} // namespace detail

template <class F> void http_request::for_each_value(std::string_view name, F&& f) const {
    for (const auto& h : fields_)
        if (detail::iequals(view(h.name), name)) f(view(h.value));
}

inline std::optional<std::string_view> http_request::header(std::string_view name) const noexcept {
    for (const auto& h : fields_)
        if (detail::iequals(view(h.name), name)) return view(h.value);
    return std::nullopt;
}

inline bool http_request::has_token(std::string_view name, std::string_view token) const noexcept {
    bool found = false;
    for_each_value(name, [&](std::string_view v) {
        detail::for_each_token(v, [&](std::string_view t) { found = found || detail::iequals(t, token); });
    });
    return found;
}

inline std::vector<std::string_view> http_request::protocols() const {
    std::vector<std::string_view> out;
    for_each_value("Sec-WebSocket-Protocol",
                   [&](std::string_view v) { detail::for_each_token(v, [&](std::string_view t) { out.push_back(t); }); });
    return out;
}

inline std::optional<std::string> http_request::query_param(std::string_view name) const {
    std::string_view q = query();
    while (!q.empty()) {
        auto amp = q.find('&');
        auto pair = q.substr(0, amp);
        auto eq = pair.find('=');
        if (detail::url_decode(pair.substr(0, eq)) == name)
            return eq == std::string_view::npos ? std::string() : detail::url_decode(pair.substr(eq + 1));
        if (amp == std::string_view::npos) break;
        q.remove_prefix(amp + 1);
    }
    return std::nullopt;
}

inline std::optional<std::string_view> http_request::cookie(std::string_view name) const noexcept {
    std::optional<std::string_view> found;
    for_each_value("Cookie", [&](std::string_view line) {
        while (!found && !line.empty()) {
            auto semi = line.find(';');
            auto pair = detail::trim(line.substr(0, semi));
            auto eq = pair.find('=');
            if (eq != std::string_view::npos && detail::trim(pair.substr(0, eq)) == name) {
                auto value = detail::trim(pair.substr(eq + 1));
                if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
                found = value;
            }
            if (semi == std::string_view::npos) break;
            line.remove_prefix(semi + 1);
        }
    });
    return found;
}

inline std::optional<std::string> http_request::bearer_token() const {
    if (auto auth = header("Authorization")) {
        auto v = detail::trim(*auth);
        if (v.size() > 7 && detail::iequals(v.substr(0, 7), "Bearer ")) {
            auto token = detail::trim(v.substr(7));
            if (!token.empty()) return std::string(token);
        }
    }
    auto offered = protocols();
    for (std::size_t i = 0; i + 1 < offered.size(); ++i)
        if (offered[i] == "access_token") return std::string(offered[i + 1]);
    if (auto q = query_param("access_token"); q && !q->empty()) return q;
    return std::nullopt;
}

// ==== Connection ====

class connection;
class server;
namespace detail { struct access; }
asio::awaitable<connection> connect(std::string_view url, client_options opts);

namespace detail {

using tcp = asio::ip::tcp;
using tls_stream = asio::ssl::stream<tcp::socket&>;

/// A frame waiting in an outbox: its header and its payload, owned or shared with other connections.
struct out_frame {
    std::array<unsigned char, max_frame_header> head{};
    std::uint8_t head_size = 0;
    std::string payload;
    std::shared_ptr<const std::string> shared;
    asio::const_buffer payload_buffer() const noexcept { return shared ? asio::buffer(*shared) : asio::buffer(payload); }
};

/// A batch of frames as one buffer sequence (header, payload, header, payload, ...) for one gathered
/// write, built on the fly: no vector of buffers to allocate or keep.
struct frame_buffers {
    const out_frame* first;
    const out_frame* last;

    class iterator {
    public:
        using iterator_category = std::bidirectional_iterator_tag;
        using value_type = asio::const_buffer;
        using difference_type = std::ptrdiff_t;
        using pointer = const asio::const_buffer*;
        using reference = asio::const_buffer;

        iterator() = default;
        iterator(const out_frame* f, bool body) : f_(f), body_(body) {}
        asio::const_buffer operator*() const noexcept {
            return body_ ? f_->payload_buffer() : asio::const_buffer(f_->head.data(), f_->head_size);
        }
        iterator& operator++() noexcept {
            if (body_) ++f_;
            body_ = !body_;
            return *this;
        }
        iterator operator++(int) noexcept {
            auto old = *this;
            ++*this;
            return old;
        }
        iterator& operator--() noexcept {
            if (!body_) --f_;
            body_ = !body_;
            return *this;
        }
        iterator operator--(int) noexcept {
            auto old = *this;
            --*this;
            return old;
        }
        bool operator==(const iterator&) const = default;

    private:
        const out_frame* f_ = nullptr;
        bool body_ = false;
    };
    iterator begin() const noexcept { return {first, false}; }
    iterator end() const noexcept { return {last, false}; }
};

/// The per-thread buffer plain-TCP reads land in: bytes leave it before the reader suspends, so an
/// idle connection holds no read buffer at all.
inline std::span<unsigned char> read_scratch() {
    constexpr std::size_t size = 64 << 10;
    thread_local std::unique_ptr<unsigned char[]> buf{new unsigned char[size]};
    return {buf.get(), size};
}

enum class role : std::uint8_t { server, client };

/// How large what a peer sends may be.
struct frame_limits {
    std::size_t message = 1 << 20;
    std::size_t frame = 1 << 20;
    std::size_t fragments = SIZE_MAX;
};

class connection_impl;

/// What a server shares with its connections, which keep it alive: the connections of each event
/// loop in a list (heartbeats and shutdown walk it), and the count the connection limits check.
struct hub {
    struct alignas(64) loop {
        std::mutex lock;   // a connection's last handle may go on another thread
        connection_impl* first = nullptr;
        std::uint32_t now = 0;   // milliseconds since the hub began, as of this loop's last sweep
        asio::steady_timer* sweep = nullptr;   // the loop's heartbeat timer, while it runs
        // Traffic, written by this loop's thread only (so a plain store), read by anyone.
        std::atomic<std::uint64_t> messages_in{0}, bytes_in{0}, messages_out{0}, bytes_out{0};
        std::atomic<std::uint64_t> dropped{0}, slow_closes{0}, ping_timeouts{0};
    };
    static void bump(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) noexcept {
        counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    /// Statuses counted apart; others count under 999.
    static constexpr std::array<int, 13> statuses{0, 400, 401, 403, 404, 405, 426, 429, 431, 500, 503, 505, 999};
    /// Counts a refused request; logs why, when it was answered.
    void rejected(int status, std::string_view why = {}, const http_request* about = nullptr) {
        std::size_t i = 0;
        while (i + 1 < statuses.size() && statuses[i] != status) ++i;
        refused[i].fetch_add(1, std::memory_order_relaxed);
        if (about) say(log_level::info, "refused a request: " + std::to_string(status) + " " + std::string(why), *about);
    }
    std::atomic<std::uint64_t> accepted{0};
    std::array<std::atomic<std::uint64_t>, statuses.size()> refused{};
    std::size_t loop_count = 0;
    hub(std::size_t loops, std::size_t max_total, std::size_t max_per_address)
        : loop_count(loops), lists(new loop[loops]), max_connections(max_total), max_per_address(max_per_address) {}

    /// Counts a new connection in, or says why it may not come in: 503 (the server is full) or 429
    /// (its address is). A connection counted in is counted out by release().
    int admit(const asio::ip::address& from) {
        if (live.fetch_add(1, std::memory_order_relaxed) >= max_connections) {
            live.fetch_sub(1, std::memory_order_relaxed);
            return 503;
        }
        if (max_per_address) {
            std::lock_guard hold(address_lock);
            auto& n = per_address[from];
            if (n >= max_per_address) {
                live.fetch_sub(1, std::memory_order_relaxed);
                return 429;
            }
            ++n;
        }
        return 0;
    }
    void release(const asio::ip::address& from) {
        if (live.fetch_sub(1, std::memory_order_acq_rel) == 1) {   // the last one: wake a stop() waiting for it
            give_back();
            std::function<void()> wake;
            {
                std::lock_guard hold(empty_lock);
                wake = on_empty;
            }
            if (wake) wake();
        }
        if (!max_per_address) return;
        std::lock_guard hold(address_lock);
        if (auto it = per_address.find(from); it != per_address.end() && --it->second == 0) per_address.erase(it);
    }
    /// With no connection left, hands the heap that connections freed back to the system (glibc
    /// keeps it otherwise), at most once a second: after a burst, a quiet server shrinks back.
    void give_back() noexcept {
#if defined(__GLIBC__)
        const std::uint32_t now = clock();
        std::uint32_t last = trimmed_at.load(std::memory_order_relaxed);
        if (now - last < 1000 || !trimmed_at.compare_exchange_strong(last, now, std::memory_order_relaxed)) return;
        ::malloc_trim(0);
#endif
    }
    std::uint32_t clock() const noexcept {
        return static_cast<std::uint32_t>(
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - epoch).count());
    }

    std::unique_ptr<loop[]> lists;
    const std::chrono::steady_clock::time_point epoch = std::chrono::steady_clock::now();
    std::atomic<std::size_t> live{0};   // counted in and not yet released
    std::atomic<bool> retired{false};   // the server is gone: its sweeps stop
    std::atomic<std::uint32_t> trimmed_at{0};   // clock() of the last give_back()
    std::mutex empty_lock;
    std::function<void()> on_empty;     // set while a stop() waits for the last connection
    std::function<void(log_level, std::string_view)> log;   // options.log

    /// A log line about a connection, with its remote address; nothing is built when no one listens.
    void say(log_level level, std::string_view what, const http_request& about) const {
        if (!log) return;
        std::error_code ec;
        const auto& ep = about.remote_endpoint();
        std::string line(what);
        line.append(" (").append(ep.address().to_string(ec)).append(":").append(std::to_string(ep.port())).append(")");
        try {
            log(level, line);
        } catch (...) {   // a logger that throws loses its line, not the connection
        }
    }
    const std::size_t max_connections, max_per_address;
    std::mutex address_lock;
    std::unordered_map<asio::ip::address, std::size_t> per_address;
};

/// Everything a connection is: the transport, the frame reader, the outbox and the close state.
/// Lives on one thread (its io_context's); the public handle gw::connection shares it.
class connection_impl : public std::enable_shared_from_this<connection_impl> {
public:
    connection_impl(tcp::socket sock, role r, frame_limits limits, std::chrono::milliseconds close_timeout)
        : sock_(std::move(sock)), limits_(limits), close_timeout_(close_timeout), role_(r) {}
    connection_impl(const connection_impl&) = delete;
    connection_impl& operator=(const connection_impl&) = delete;
    ~connection_impl() {
        if (!hub_) return;
        delist();
        hub_->release(request_.remote_endpoint().address());
    }

    // ---- the server's hub: limits, heartbeat, shutdown ----
    std::shared_ptr<hub> hub_;   // set once the server counted this connection in
    connection_impl *prev_ = nullptr, *next_ = nullptr;   // in hub_->lists[loop_] once upgraded
    std::uint32_t loop_ = 0;
    bool listed_ = false, upgraded_ = false, ping_outstanding_ = false;
    bool shutting_down_ = false;   // closed by the server's stop()
    std::uint32_t ping_at_ = 0, active_at_ = 0;   // hub clock: last ping sent, last message seen
    std::uint32_t messages_in_ = 0, seen_in_ = 0;   // messages received; as of the last sweep

    /// Joins its loop's list (on that loop's thread, once upgraded).
    void enlist(std::uint32_t loop) {
        auto& l = hub_->lists[loop];
        std::lock_guard hold(l.lock);
        loop_ = loop;
        ping_at_ = active_at_ = l.now;
        next_ = l.first;
        if (next_) next_->prev_ = this;
        l.first = this;
        listed_ = true;
    }
    void delist() {
        if (!listed_) return;
        auto& l = hub_->lists[loop_];
        std::lock_guard hold(l.lock);
        (prev_ ? prev_->next_ : l.first) = next_;
        if (next_) next_->prev_ = prev_;
        listed_ = false;
    }

    // ---- transport ----
    tcp::socket sock_;
    /// What only wss:// needs, so a plain connection does not carry it.
    struct tls_state {
        tls_state(tcp::socket& s, asio::ssl::context& ctx) : stream(s, ctx) {}
        tls_stream stream;
        std::unique_ptr<unsigned char[]> in;   // TLS reads need a buffer that outlives a suspension
        std::string out;                       // a batch coalesced: one record, one syscall
        static constexpr std::size_t in_size = 16 << 10;
    };
    std::unique_ptr<tls_state> tls_;
    frame_limits limits_;
    std::chrono::milliseconds close_timeout_;
    role role_;

    // ---- handshake ----
    http_request request_;
    std::string subprotocol_;

    /// Writes bytes outside the frame writer: the handshake's HTTP messages.
    asio::awaitable<std::error_code> write_raw(std::string_view bytes) {
        using asio::experimental::as_tuple;
        auto buf = asio::buffer(bytes);
        auto [ec, n] = tls_ ? co_await asio::async_write(tls_->stream, buf, as_tuple(asio::use_awaitable))
                            : co_await asio::async_write(sock_, buf, as_tuple(asio::use_awaitable));
        co_return ec;
    }

    /// True when called on the thread that runs this connection's event loop. An executor of
    /// another kind cannot tell, so the answer is no, and callers take the (correct, slower) hop.
    bool on_own_thread() noexcept {
        using plain = asio::io_context::executor_type;
        using tracked = decltype(asio::prefer(std::declval<plain>(), asio::execution::outstanding_work.tracked));
        auto ex = sock_.get_executor();
        if (auto* e = ex.target<plain>()) return e->running_in_this_thread();
        if (auto* e = ex.target<tracked>()) return e->running_in_this_thread();
        if (auto* e = ex.target<asio::strand<plain>>()) return e->running_in_this_thread();
        return false;
    }

    // ---- reading ----

    /// Waits for bytes and reads what is there. On success data_ points at them until the next suspension.
    asio::awaitable<std::error_code> read_some() {
        using asio::experimental::as_tuple;
        if (tls_) {
            if (!tls_->in) tls_->in.reset(new unsigned char[tls_state::in_size]);
            auto [ec, n] = co_await tls_->stream.async_read_some(asio::buffer(tls_->in.get(), tls_state::in_size),
                                                                 as_tuple(asio::use_awaitable));
            data_ = {tls_->in.get(), n};
            co_return ec;
        }
        auto [ec] = co_await sock_.async_wait(tcp::socket::wait_read, as_tuple(asio::use_awaitable));
        co_return ec ? ec : read_available();
    }

    /// Plain TCP, once the socket is readable: reads what is there into the per-thread buffer.
    std::error_code read_available() {
        auto buf = read_scratch();
        std::error_code ec;
        if (!non_blocking_) {   // once: a synchronous read must never wait
            sock_.non_blocking(true, ec);
            non_blocking_ = true;
        }
        std::size_t n = sock_.read_some(asio::buffer(buf.data(), buf.size()), ec);
        if (ec == asio::error::would_block || ec == asio::error::try_again) n = 0, ec = {};
        data_ = {buf.data(), n};
        return ec;
    }

    /// Parses bytes into frames; completed messages go to inbox_, pings are answered. Returns false
    /// when reading must stop: the peer's close frame arrived, or the peer broke the protocol
    /// (fail_code_ and error_ say how). Either way finish() sends our close frame later.
    bool consume(const unsigned char* p, std::size_t n) {
        if (hub_) hub::bump(hub_->lists[loop_].bytes_in, n);
        for (;;) {
            if (!frame_.active) {
                if (n == 0) return true;
                frame_header h;
                close_code code{};
                const bool masked = role_ == role::server;
                if (hdr_len_ == 0) {
                    auto st = decode_header({p, n}, masked, h, code);
                    if (st == decode_status::error) return fail(code);
                    if (st == decode_status::need_more) {
                        std::memcpy(hdr_buf_.data(), p, n);
                        hdr_len_ = static_cast<std::uint8_t>(n);
                        return true;
                    }
                    p += h.size, n -= h.size;
                } else {
                    const std::size_t take = std::min(n, max_frame_header - hdr_len_);
                    std::memcpy(hdr_buf_.data() + hdr_len_, p, take);
                    auto st = decode_header({hdr_buf_.data(), hdr_len_ + take}, masked, h, code);
                    if (st == decode_status::error) return fail(code);
                    if (st == decode_status::need_more) {
                        hdr_len_ = static_cast<std::uint8_t>(hdr_len_ + take);
                        return true;
                    }
                    const std::size_t used = h.size - hdr_len_;
                    p += used, n -= used;
                    hdr_len_ = 0;
                }
                if (!start_frame(h)) return false;
            }
            if (frame_.remaining > 0) {
                if (n == 0) return true;
                const auto k = static_cast<std::size_t>(std::min<std::uint64_t>(frame_.remaining, n));
                std::string& into = is_control(frame_.op) ? control_ : message_;
                const std::size_t old = into.size();
                into.append(reinterpret_cast<const char*>(p), k);
                auto* dst = reinterpret_cast<unsigned char*>(into.data()) + old;
                if (frame_.masked) frame_.phase = static_cast<std::uint8_t>(apply_mask(dst, k, frame_.mask, frame_.phase));
                if (&into == &message_ && !message_binary_ && !utf8_.feed({dst, k}))
                    return fail(close_code::invalid_payload);
                p += k, n -= k;
                frame_.remaining -= k;
                if (frame_.remaining > 0) return true;
            }
            frame_.active = false;
            if (!end_frame()) return false;
        }
    }

    bool start_frame(const frame_header& h) {
        if (is_control(h.op)) {
            control_.clear();
        } else if (h.op == opcode::continuation) {
            if (!in_message_) return fail(close_code::protocol_error);
            if (++fragments_ > limits_.fragments) return fail(close_code::policy_violation);
        } else {
            if (in_message_) return fail(close_code::protocol_error);
            in_message_ = true;
            message_binary_ = h.op == opcode::binary;
            message_.clear();
            utf8_.reset();
            fragments_ = 1;
        }
        if (!is_control(h.op)) {
            if (h.length > limits_.frame || h.length > limits_.message - message_.size())
                return fail(close_code::message_too_big);
            // Room for what the header announces, but no more than a read's worth before the bytes
            // are there: a peer cannot make the server allocate by announcing.
            if (h.fin && message_.empty()) message_.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(h.length, 64 << 10)));
        }
        frame_.active = true;
        frame_.op = h.op;
        frame_.fin = h.fin;
        frame_.masked = h.masked;
        frame_.mask = h.mask;
        frame_.phase = 0;
        frame_.remaining = h.length;
        return true;
    }

    bool end_frame() {
        switch (frame_.op) {
        case opcode::ping:
            if (!close_sent_) queue_frame(opcode::pong, std::move(control_));
            control_ = {};
            return true;
        case opcode::pong:
            ping_outstanding_ = false;
            return true;
        case opcode::close: {
            if (auto bad = check_close_payload(control_)) return fail(static_cast<close_code>(bad));
            close_received_ = true;
            // control_ keeps the payload: peer_reason() reads it, and no frame is parsed after it.
            peer_code_ = control_.size() >= 2 ? static_cast<std::uint16_t>((static_cast<unsigned char>(control_[0]) << 8) |
                                                                           static_cast<unsigned char>(control_[1]))
                                              : static_cast<std::uint16_t>(close_code::no_status);
            return false;
        }
        default:
            if (!frame_.fin) return true;
            if (!message_binary_ && !utf8_.complete()) return fail(close_code::invalid_payload);
            inbox_.push_back(message{std::move(message_), message_binary_});
            ++messages_in_;
            if (hub_) hub::bump(hub_->lists[loop_].messages_in);
            message_ = {};
            in_message_ = false;
            return true;
        }
    }

    /// Records why the peer failed. The close frame goes out from finish(), after the messages that
    /// arrived before the fault were handed over (and perhaps answered).
    bool fail(close_code code) {
        switch (code) {
        case close_code::invalid_payload: error_ = errc::invalid_payload; break;
        case close_code::message_too_big: error_ = errc::message_too_big; break;
        case close_code::policy_violation: error_ = errc::policy_violation; break;
        default: error_ = errc::protocol_error; break;
        }
        fail_code_ = code;
        return false;
    }

    /// Frames that arrived in the same read as the end of the handshake.
    void consume_early(std::string_view bytes) {
        if (!bytes.empty() && !consume(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()))
            stop_reading_ = true;
    }

    bool has_message() const noexcept { return inbox_head_ < inbox_.size(); }

    /// Reads on plain callbacks instead of a coroutine: while it waits, a connection read this way
    /// holds Asio's small wait operation and no coroutine frame. sink.message(message&&) receives
    /// every message in order; sink.end() runs once, when reading is over (the peer closed or
    /// failed, or the connection was lost), and the sink then owes the connection a finish().
    template <class Sink> void read_with(Sink sink);

    message pop_message() {
        message m = std::move(inbox_[inbox_head_++]);
        if (inbox_head_ == inbox_.size()) {
            inbox_.clear();
            inbox_head_ = 0;
            if (inbox_.capacity() > 4) inbox_ = {};   // a burst's slack is not kept while idle
        }
        return m;
    }

    struct frame_state {
        bool active = false, fin = true, masked = false;
        opcode op = opcode::text;
        std::uint8_t phase = 0;
        std::array<unsigned char, 4> mask{};
        std::uint64_t remaining = 0;
    } frame_;
    std::array<unsigned char, max_frame_header> hdr_buf_{};
    std::uint8_t hdr_len_ = 0;
    bool in_message_ = false, message_binary_ = false;
    std::size_t fragments_ = 0;   // frames of the message being read
    bool receiving_ = false;       // a receive() (or close()'s drain) owns the reader
    bool non_blocking_ = false;
    bool stop_reading_ = false;    // the peer's close arrived or the peer failed
    std::span<const unsigned char> data_;
    std::string control_, message_;
    utf8_validator utf8_;
    std::vector<message> inbox_;
    std::size_t inbox_head_ = 0;

    // ---- writing: one writer drains the outbox, everything queued goes out in one gathered write ----

    /// Queues a frame the application asked for; a closing or closed connection refuses it. A
    /// frame beyond max_outbox_bytes meets the overflow policy instead.
    void send_frame(opcode op, std::string payload) {
        if (close_sent_ || ended_ || broken_) throw std::system_error(errc::closed);
        if (!room_for(payload.size() + max_frame_header)) return;
        queue_frame(op, std::move(payload));
    }

    // ---- backpressure ----
    std::size_t high_water_ = SIZE_MAX, max_outbox_ = SIZE_MAX;   // a server's options set both
    bool drop_when_full_ = false;   // overflow::drop
    bool pressed_ = false;          // went above high_water_ and has not drained below it since
    std::uint32_t dropped_ = 0;     // messages dropped for this connection (volatile or overflow::drop)
    std::size_t inflight_bytes_ = 0;
    /// Called (on the connection's thread) when the outbox drains below high_water_ after being above.
    void (*on_drain_)(void*) = nullptr;
    void* drain_context_ = nullptr;

    /// Bytes queued or being written: what the peer has not taken yet, as far as this side knows.
    std::size_t buffered() const noexcept { return queued_bytes_ + inflight_bytes_; }
    bool above_high_water() const noexcept { return buffered() >= high_water_; }

    /// True when n more bytes fit under max_outbox_bytes (or nothing is queued: one large message
    /// always goes). Otherwise applies the overflow policy and says false.
    bool room_for(std::size_t n) {
        const std::size_t now = buffered();
        if (now == 0 || n <= max_outbox_ - std::min(now, max_outbox_)) return true;
        if (drop_when_full_) {
            ++dropped_;
            if (hub_) hub::bump(hub_->lists[loop_].dropped);
            return false;
        }
        if (hub_) {
            hub::bump(hub_->lists[loop_].slow_closes);
            hub_->say(log_level::warn, "closing a slow consumer: its outbox passed max_outbox_bytes", request_);
        }
        // Close the slow consumer: what waits for it is dropped, so its memory goes at once, and
        // the close frame goes alone; close_timeout bounds the wait for a peer that reads nothing.
        outbox_.clear();
        queued_bytes_ = 0;
        if (!error_) error_ = errc::slow_consumer;
        close_soon(close_code::policy_violation, "slow consumer");
        return false;
    }

    /// Waits while the outbox is above its high-water mark (and the connection is open).
    asio::awaitable<void> wait_drained() {
        auto self = shared_from_this();
        while (above_high_water() && !close_sent_ && !ended_ && !broken_) co_await wait_for_change();
    }

    /// After a write: the outbox may have drained below its mark.
    void check_drained() {
        if (!pressed_ || above_high_water()) return;
        pressed_ = false;
        wake();
        if (on_drain_) on_drain_(drain_context_);
    }

    void queue_frame(opcode op, std::string payload) {
        out_frame f;
        if (role_ == role::client) {
            std::array<unsigned char, 4> key;
            random_bytes(key.data(), 4);
            apply_mask(reinterpret_cast<unsigned char*>(payload.data()), payload.size(), key);
            f.head_size = static_cast<std::uint8_t>(encode_header(f.head.data(), op, true, payload.size(), &key));
        } else {
            f.head_size = static_cast<std::uint8_t>(encode_header(f.head.data(), op, true, payload.size()));
        }
        f.payload = std::move(payload);
        push(std::move(f));
    }

    void push(out_frame f) {
        const std::size_t size = f.head_size + f.payload_buffer().size();
        queued_bytes_ += size;
        if (hub_ && upgraded_) {
            auto& l = hub_->lists[loop_];
            hub::bump(l.messages_out);
            hub::bump(l.bytes_out, size);
        }
        if (buffered() >= high_water_) pressed_ = true;
        outbox_.push_back(std::move(f));
        if (!writing_) {
            writing_ = true;
            // Deferred to the end of this turn of the loop, so every frame queued meanwhile shares the write.
            asio::post(sock_.get_executor(), [self = shared_from_this()] { self->flush(); });
        }
    }

    /// Queues a complete frame whose bytes other connections share (a broadcast, framed once).
    /// A droppable one (volatile) skips a connection above its high-water mark.
    void send_shared(std::shared_ptr<const std::string> frame, bool droppable = false) {
        if (close_sent_ || ended_ || broken_) return;   // a broadcast skips sockets that are closing
        if (droppable && buffered() >= high_water_) {
            ++dropped_;
            if (hub_) hub::bump(hub_->lists[loop_].dropped);
            return;
        }
        if (!room_for(frame->size())) return;
        out_frame f;
        f.shared = std::move(frame);
        push(std::move(f));
    }

    void send_close(close_code code, std::string_view reason) {
        std::string payload;
        if (code != close_code::no_status) {
            auto c = static_cast<std::uint16_t>(code);
            payload.push_back(static_cast<char>(c >> 8));
            payload.push_back(static_cast<char>(c & 0xFF));
            payload.append(reason.substr(0, 123));
        }
        send_close_payload(std::move(payload));
    }

    void send_close_payload(std::string payload) {
        close_sent_ = true;
        queue_frame(opcode::close, std::move(payload));
    }

    void flush() {
        if (outbox_.empty() || broken_) {
            writing_ = false;
            outbox_.clear();
            queued_bytes_ = 0;
            wake();
            return;
        }
        inflight_.swap(outbox_);
        inflight_bytes_ = queued_bytes_;
        auto done = [self = shared_from_this()](std::error_code ec, std::size_t) {
            self->inflight_.clear();
            self->inflight_bytes_ = 0;
            if (self->inflight_.capacity() > 16) self->inflight_ = {};   // a burst's slack is not kept
            if (self->tls_) self->tls_->out.clear();
            if (ec) {
                self->write_failed(ec);
                return;
            }
            self->check_drained();
            self->flush();
        };
        if (tls_) {
            // OpenSSL writes one record per buffer: coalesce so the batch stays one record and one syscall.
            for (auto& f : inflight_) {
                tls_->out.append(reinterpret_cast<const char*>(f.head.data()), f.head_size);
                auto b = f.payload_buffer();
                tls_->out.append(static_cast<const char*>(b.data()), b.size());
            }
            queued_bytes_ = 0;
            asio::async_write(tls_->stream, asio::buffer(tls_->out), std::move(done));
            return;
        }
        queued_bytes_ = 0;
        // One write_some, so one sendmsg of up to 64 buffers (Asio's composed async_write would
        // split the batch into sendmsg calls of 16 buffers, 8 frames). What the kernel does not take
        // goes with the composed write from a list of the rest: a full send buffer, or over 32 frames.
        const frame_buffers batch{inflight_.data(), inflight_.data() + inflight_.size()};
        sock_.async_write_some(batch, [self = shared_from_this(), batch, done = std::move(done)](std::error_code ec,
                                                                                                 std::size_t n) mutable {
            if (ec || n == self->inflight_bytes_) {
                done(ec, n);
                return;
            }
            auto rest = std::make_shared<std::vector<asio::const_buffer>>();
            for (asio::const_buffer b : batch) {
                const std::size_t skip = std::min(n, b.size());
                n -= skip;
                if (b.size() > skip) rest->push_back(b + skip);
            }
            asio::async_write(self->sock_, *rest, [rest, done = std::move(done)](std::error_code e, std::size_t m) mutable {
                done(e, m);
            });
        });
    }

    void write_failed(std::error_code) {
        broken_ = true;
        writing_ = false;
        outbox_.clear();
        queued_bytes_ = 0;
        inflight_bytes_ = 0;
        if (!error_ && !close_received_) error_ = errc::connection_lost;
        std::error_code ignored;
        sock_.close(ignored);
        wake();
    }

    std::vector<out_frame> outbox_, inflight_;
    std::size_t queued_bytes_ = 0;
    bool writing_ = false, broken_ = false;

    // ---- closing ----

    /// Timers that exist only while a connection closes: an idle connection does not pay for them.
    struct closer {
        explicit closer(const tcp::socket::executor_type& ex) : wake(ex), deadline(ex) {
            wake.expires_at(asio::steady_timer::time_point::max());
        }
        asio::steady_timer wake;       // never expires; cancel() wakes whoever waits
        asio::steady_timer deadline;   // bounds the whole closing sequence
    };

    void wake() {
        if (closer_) closer_->wake.cancel();
    }

    asio::awaitable<void> wait_for_change() {
        co_await closing().wake.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    }

    closer& closing() {
        if (!closer_) closer_ = std::make_unique<closer>(sock_.get_executor());
        return *closer_;
    }

    /// Sends our close frame now and lets close_timeout bound what follows: for closes the server
    /// decides on its own (idle, slow consumer, rate limit), whoever reads the connection finishes it.
    void close_soon(close_code code, std::string_view reason) {
        send_close(code, reason);
        arm_deadline();
    }

    /// Starts the deadline after which the socket is closed whatever the peer does.
    void arm_deadline() {
        if (deadline_armed_) return;
        deadline_armed_ = true;
        closing().deadline.expires_after(close_timeout_);
        closer_->deadline.async_wait([self = weak_from_this()](std::error_code ec) {
            if (ec) return;
            if (auto s = self.lock()) {
                std::error_code ignored;
                s->sock_.close(ignored);
            }
        });
    }

    /// Ends the connection: the close frame goes out after what was queued before it; the peer's
    /// close frame is awaited if it has not come (and the peer did not fail); then a server shuts its
    /// send side first (RFC 6455 section 7.1.1) and both read until the peer closes, so nothing in
    /// flight is lost to a reset. close_timeout bounds it all. Runs once; other callers wait for it.
    asio::awaitable<void> finish() {
        co_await settle();
        co_await conclude();
    }

    /// finish()'s first half: the close frames exchanged (or the peer failed or vanished); after
    /// it, how the connection ended is known, and the socket is still open.
    asio::awaitable<void> settle() {
        auto self = shared_from_this();
        arm_deadline();
        if (settling_) {
            while (!settled_) co_await wait_for_change();
            co_return;
        }
        settling_ = true;
        if (!close_sent_ && !broken_) {
            if (close_received_)   // echo the peer's code and reason (RFC 6455 section 5.5.1); none for none
                send_close(peer_code_ == static_cast<std::uint16_t>(close_code::no_status) ? close_code::no_status
                                                                                             : static_cast<close_code>(peer_code_),
                           peer_reason());
            else if (fail_code_ != close_code{}) send_close(fail_code_, {});
            else if (!error_) send_close(close_code::normal, {});
        }
        while (writing_) co_await wait_for_change();
        while (!stop_reading_ && !error_ && sock_.is_open()) {
            if (co_await read_some()) break;
            if (!consume(data_.data(), data_.size())) stop_reading_ = true;
        }
        if (!close_received_ && !error_) error_ = errc::connection_lost;
        settled_ = true;
        wake();
    }

    /// finish()'s second half: the TCP close (see linger).
    asio::awaitable<void> conclude() {
        auto self = shared_from_this();
        if (concluding_) {
            while (!ended_) co_await wait_for_change();
            co_return;
        }
        concluding_ = true;
        co_await linger(role_ == role::server);
        closer_->deadline.cancel();
        ended_ = true;
        wake();
    }

    /// Closes the socket without losing what was sent to a reset: over plain TCP, optionally shuts
    /// the send side first, then reads until the peer closes (a deadline elsewhere bounds it).
    /// TLS sends no close_notify, so there is nothing to wait for.
    asio::awaitable<void> linger(bool shut_send_first) {
        std::error_code ec;
        if (!tls_ && sock_.is_open()) {
            if (shut_send_first) sock_.shutdown(tcp::socket::shutdown_send, ec);
            while (sock_.is_open() && !co_await read_some()) {
            }
        }
        sock_.close(ec);
    }

    bool close_sent_ = false, close_received_ = false;
    bool settling_ = false, settled_ = false, concluding_ = false, ended_ = false, deadline_armed_ = false;
    std::uint16_t peer_code_ = static_cast<std::uint16_t>(close_code::abnormal);
    close_code fail_code_{};   // set when the peer broke the protocol
    std::string_view peer_reason() const noexcept {
        return close_received_ && control_.size() > 2 ? std::string_view(control_).substr(2) : std::string_view();
    }
    std::error_code error_;
    std::unique_ptr<closer> closer_;
};

/// The reader of connection_impl::read_with, its own completion handler: each wake reads what is
/// there, hands over the complete messages and waits again.
template <class Sink> struct callback_reader {
    std::shared_ptr<connection_impl> c;
    Sink sink;

    void operator()(std::error_code ec) {   // plain TCP: the socket is readable
        if (!ec) ec = c->read_available();
        take(ec);
    }
    void operator()(std::error_code ec, std::size_t n) {   // TLS: n bytes decrypted into its buffer
        c->data_ = {c->tls_->in.get(), n};
        take(ec);
    }
    void take(std::error_code ec) {
        if (ec) {
            if (!c->close_received_ && !c->error_) c->error_ = errc::connection_lost;
            c->stop_reading_ = true;
        } else if (!c->consume(c->data_.data(), c->data_.size())) {
            c->stop_reading_ = true;
        }
        deliver();
    }
    void deliver() {
        while (c->has_message()) sink.message(c->pop_message());
        if (c->stop_reading_ || c->broken_ || c->ended_) {
            sink.end();
            return;
        }
        connection_impl& conn = *c;   // *this moves into the wait below
        if (auto& tls = conn.tls_) {
            if (!tls->in) tls->in.reset(new unsigned char[connection_impl::tls_state::in_size]);
            tls->stream.async_read_some(asio::buffer(tls->in.get(), connection_impl::tls_state::in_size), std::move(*this));
        } else {
            conn.sock_.async_wait(tcp::socket::wait_read, std::move(*this));
        }
    }
};

template <class Sink> void connection_impl::read_with(Sink sink) {
    receiving_ = true;   // until the sink's finish(): close() waits for it rather than reading itself
    callback_reader<Sink>{shared_from_this(), std::move(sink)}.deliver();
}

/// Clears a flag when a coroutine leaves its scope, also when it is destroyed while suspended.
struct flag_guard {
    bool& flag;
    explicit flag_guard(bool& f) : flag(f) { flag = true; }
    ~flag_guard() { flag = false; }
    flag_guard(const flag_guard&) = delete;
    flag_guard& operator=(const flag_guard&) = delete;
};

} // namespace detail

/// A WebSocket connection, server or client side. A cheap handle: moving it moves the connection.
/// Use it from the thread that runs its io_context; send() and close() hop there when called elsewhere.
class connection {
public:
    connection() = default;

    /// The next message; an empty optional once the closing handshake is done (whoever started it).
    /// Throws std::system_error (gw::errc) when the peer breaks the protocol (after closing with the
    /// code RFC 6455 asks for) or the connection is lost. One receive() at a time.
    asio::awaitable<std::optional<message>> receive() {
        auto s = impl();
        if (!s->on_own_thread()) throw std::system_error(errc::receive_in_progress, "receive() from another thread");
        if (s->receiving_) throw std::system_error(errc::receive_in_progress);
        detail::flag_guard busy(s->receiving_);
        for (;;) {
            if (s->has_message()) co_return s->pop_message();
            if (s->ended_) {
                if (s->error_) throw std::system_error(s->error_);
                co_return std::nullopt;
            }
            if (s->stop_reading_ || s->broken_) {
                co_await s->finish();
                continue;
            }
            // The idle state of a connection: waiting here holds no buffer and no extra coroutine frame.
            std::error_code ec;
            if (s->tls_) {
                ec = co_await s->read_some();
            } else {
                std::tie(ec) = co_await s->sock_.async_wait(asio::ip::tcp::socket::wait_read,
                                                            asio::experimental::as_tuple(asio::use_awaitable));
                if (!ec) ec = s->read_available();
            }
            if (ec) {
                if (!s->close_received_ && !s->error_) s->error_ = errc::connection_lost;
                s->stop_reading_ = true;
                continue;
            }
            if (!s->consume(s->data_.data(), s->data_.size())) s->stop_reading_ = true;
        }
    }

    /// Queues a message; text stays text, binary stays binary. Completes once queued and, on a
    /// server, once the connection's unsent bytes are below options.outbox_high_water: a sender
    /// goes at its peer's pace. Frames queued in one turn of the loop leave in one write. Throws
    /// gw::errc::closed once the connection closes.
    asio::awaitable<void> send(message m) {
        return queue(impl(), m.binary ? opcode::binary : opcode::text, std::move(m.data));
    }
    /// Sends text (which must be valid UTF-8).
    asio::awaitable<void> send(std::string_view text) { return send(message{std::string(text), false}); }
    /// Sends binary data.
    asio::awaitable<void> send_binary(std::string_view bytes) { return send(message{std::string(bytes), true}); }

    /// Sends a ping (payload up to 125 bytes); the peer's pong is absorbed by receive().
    asio::awaitable<void> ping(std::string_view payload = {}) {
        if (payload.size() > 125)
            throw std::system_error(std::make_error_code(std::errc::invalid_argument), "ping payload over 125 bytes");
        return queue(impl(), opcode::ping, std::string(payload));
    }

    /// Starts the closing handshake and completes when it is over: the peer answered, or
    /// close_timeout passed, and the socket is closed. Messages arriving meanwhile are dropped unless
    /// a receive() is running. Closing a closed connection does nothing.
    asio::awaitable<void> close(close_code code = close_code::normal, std::string_view reason = {}) {
        auto s = impl();
        if (!s->on_own_thread()) {
            auto hop = [s, code, why = std::string(reason)]() -> asio::awaitable<void> {
                connection self(s);
                co_await self.close(code, why);
            };
            co_await asio::co_spawn(s->sock_.get_executor(), std::move(hop), asio::use_awaitable);
            co_return;
        }
        if (s->ended_) co_return;
        if (!s->close_sent_ && !s->broken_) s->send_close(code, reason);
        s->arm_deadline();
        if (s->receiving_) {
            while (!s->ended_) co_await s->wait_for_change();
            co_return;
        }
        detail::flag_guard busy(s->receiving_);
        while (!s->stop_reading_ && !s->broken_) {
            if (co_await s->read_some()) break;
            if (!s->consume(s->data_.data(), s->data_.size())) s->stop_reading_ = true;
            s->inbox_.clear();
            s->inbox_head_ = 0;
        }
        co_await s->finish();
    }

    /// False once the closing handshake started or the connection failed.
    bool is_open() const noexcept { return impl_ && !impl_->close_sent_ && !impl_->ended_ && !impl_->broken_; }
    /// The code of the peer's close frame: 1005 when it had none, 1006 while none has come.
    std::uint16_t close_code() const noexcept { return impl_ ? impl_->peer_code_ : 1006; }
    /// The reason in the peer's close frame.
    std::string_view close_reason() const noexcept { return impl_ ? impl_->peer_reason() : std::string_view(); }
    /// Bytes queued or being written, not yet taken by the kernel: what the peer is behind by.
    std::size_t buffered_amount() const noexcept { return impl_ ? impl_->buffered() : 0; }
    /// Messages dropped for this connection: overflow::drop beyond max_outbox_bytes.
    std::size_t dropped() const noexcept { return impl_ ? impl_->dropped_ : 0; }
    /// The upgrade request (server side): path, query, headers, remote address.
    const http_request& request() const { return impl()->request_; }
    /// The subprotocol agreed in the handshake, or "".
    std::string_view subprotocol() const { return impl()->subprotocol_; }
    asio::ip::tcp::endpoint remote_endpoint() const {
        std::error_code ec;
        auto ep = impl()->sock_.remote_endpoint(ec);
        return ec ? impl()->request_.remote_endpoint() : ep;
    }
    asio::any_io_executor get_executor() const { return impl()->sock_.get_executor(); }
    explicit operator bool() const noexcept { return impl_ != nullptr; }

private:
    explicit connection(std::shared_ptr<detail::connection_impl> impl) : impl_(std::move(impl)) {}

    /// Queues a frame on the connection's thread, hopping there when called from another.
    static asio::awaitable<void> queue(std::shared_ptr<detail::connection_impl> s, opcode op, std::string payload) {
        if (s->on_own_thread()) {
            s->send_frame(op, std::move(payload));
            if (s->above_high_water()) co_await s->wait_drained();
            co_return;
        }
        // A named callable, never a temporary inside co_await: GCC 12 destroys those twice.
        auto hop = [s, op, p = std::move(payload)]() mutable -> asio::awaitable<void> {
            s->send_frame(op, std::move(p));
            if (s->above_high_water()) co_await s->wait_drained();
        };
        co_await asio::co_spawn(s->sock_.get_executor(), std::move(hop), asio::use_awaitable);
    }
    const std::shared_ptr<detail::connection_impl>& impl() const {
        if (!impl_) throw std::system_error(errc::closed, "empty gw::connection");
        return impl_;
    }
    std::shared_ptr<detail::connection_impl> impl_;
    friend class server;
    friend asio::awaitable<connection> connect(std::string_view, client_options);
    friend struct detail::access;
};

// ==== TLS contexts ====

/// A TLS 1.2+ server context from a PEM certificate chain and private key.
inline std::shared_ptr<asio::ssl::context> tls_server_context(const std::string& cert_chain_file,
                                                              const std::string& private_key_file) {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1 |
                     asio::ssl::context::single_dh_use);
    ctx->use_certificate_chain_file(cert_chain_file);
    ctx->use_private_key_file(private_key_file, asio::ssl::context::pem);
    return ctx;
}

/// A TLS 1.2+ client context that verifies servers: against ca_file when given, else the system's CAs.
inline std::shared_ptr<asio::ssl::context> tls_client_context(const std::string& ca_file = {}) {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    if (ca_file.empty()) ctx->set_default_verify_paths();
    else ctx->load_verify_file(ca_file);
    ctx->set_verify_mode(asio::ssl::verify_peer);
    return ctx;
}

// ==== Server ====

namespace detail {

/// Writes a plain HTTP answer, shuts the send side and reads until the peer closes (or the
/// handshake deadline closes the socket), so the answer is not lost to a reset.
inline asio::awaitable<void> refuse(connection_impl& c, const http_response& r) {
    const std::string text = format_response(r);
    co_await c.write_raw(text);
    co_await c.linger(true);
}

/// Reads an HTTP head (up to the blank line) into head, keeping what follows it in rest.
/// Returns false on a read error; sets too_big when max_bytes pass without a blank line.
inline asio::awaitable<bool> read_head(connection_impl& c, std::size_t max_bytes, std::string& head, std::string& rest,
                                       bool& too_big) {
    head.clear();
    too_big = false;
    std::size_t scanned = 0;   // the blank line cannot start before this
    for (;;) {
        if (auto end = head.find("\r\n\r\n", scanned); end != std::string::npos) {
            if (end + 4 > max_bytes) break;
            rest = head.substr(end + 4);
            head.resize(end + 4);
            co_return true;
        }
        if (head.size() >= max_bytes) break;
        // Reads land in a shared buffer and only what arrived is kept: a handshake in progress costs
        // its own bytes, not a fixed buffer.
        if (co_await c.read_some()) co_return false;
        scanned = head.size() < 3 ? 0 : head.size() - 3;
        head.append(reinterpret_cast<const char*>(c.data_.data()), c.data_.size());
    }
    too_big = true;
    co_return false;
}

} // namespace detail

/// A WebSocket server: listens when constructed, upgrades connections in the background (slow
/// clients never delay others), and hands out ready connections through accept() or on_connection.
/// With options.workers > 1 it runs that many event loops (the given io_context and threads of its
/// own) and gives each connection to the next loop in turn.
class server {
public:
    server(asio::io_context& io, options opts = {}) : st_(std::make_shared<state>(io, std::move(opts))) {
        auto& o = st_->opts;
        if (o.workers == 0) o.workers = std::max(1u, std::thread::hardware_concurrency());
        if (o.workers > 1 && !o.on_connection)
            throw std::invalid_argument("gw::server: options.workers > 1 needs options.on_connection (accept() serves one loop)");
        auto& acceptor = st_->acceptor;
        auto listen_on = [&](const asio::ip::tcp::endpoint& ep) {
            acceptor.open(ep.protocol());
            acceptor.set_option(asio::socket_base::reuse_address(true));
            if (ep.address().is_v6() && ep.address().is_unspecified()) acceptor.set_option(asio::ip::v6_only(false));
            acceptor.bind(ep);
            acceptor.listen(o.backlog);
        };
        if (o.host.empty()) {
            try {   // one dual-stack socket serves IPv6 and IPv4 clients ("localhost" may be either)
                listen_on({asio::ip::address_v6::any(), o.port});
            } catch (const std::system_error&) {
                std::error_code ignored;
                acceptor.close(ignored);
                listen_on({asio::ip::address_v4::any(), o.port});
            }
        } else {
            asio::ip::tcp::resolver resolver(io);
            auto endpoints = resolver.resolve(o.host, std::to_string(o.port),
                                              asio::ip::tcp::resolver::passive | asio::ip::tcp::resolver::numeric_service);
            listen_on(endpoints.begin()->endpoint());
        }
        st_->port = st_->acceptor.local_endpoint().port();
        st_->loops.push_back(&io);
        for (std::size_t i = 1; i < o.workers; ++i) {
            auto& w = st_->own.emplace_back(std::make_unique<worker>());
            st_->loops.push_back(&w->io);
        }
        st_->hub = std::make_shared<detail::hub>(st_->loops.size(), o.max_connections, o.max_connections_per_address);
        st_->hub->log = o.log;
        if (o.ping_interval.count() > 0 || o.idle_timeout.count() > 0)
            for (std::uint32_t i = 0; i < st_->loops.size(); ++i)
                asio::co_spawn(*st_->loops[i], state::sweep(st_->hub, i, o), [](std::exception_ptr) {});
        for (auto& w : st_->own)   // started once every loop exists: nothing reaches them before that
            w->thread = std::thread([&io = w->io] {
                for (;;) {
                    try {
                        io.run();
                        return;
                    } catch (...) {   // a handler let an exception out: the loop keeps serving the others
                    }
                }
            });
        asio::co_spawn(io, state::accept_loop(st_), [](std::exception_ptr) {});
    }
    server(const server&) = delete;
    server& operator=(const server&) = delete;
    /// Stops listening; the worker threads stop and what they served closes with them.
    ~server() {
        halt(true);
        // The sweeps end; connections left on the application's loop go on without heartbeats.
        st_->hub->retired = true;
        asio::post(st_->io, [hub = st_->hub] {
            if (auto* t = hub->lists[0].sweep) t->cancel();
        });
        for (auto& w : st_->own) {
            w->io.stop();
            w->thread.join();
        }
        // Destroying the loops destroys the coroutines suspended on them, and with them their
        // connections; the application's own io_context keeps what it serves.
        st_->own.clear();
    }

    /// The next upgraded connection. Throws asio::error::operation_aborted once the server stops.
    asio::awaitable<connection> accept() {
        auto s = st_;
        for (;;) {
            if (!s->ready.empty()) {
                connection c = std::move(s->ready.front());
                s->ready.pop_front();
                co_return c;
            }
            if (s->stopped) throw std::system_error(asio::error::operation_aborted);
            co_await s->wake.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
        }
    }

    /// Stops listening at once: pending and future accept() calls fail. co_await the result to
    /// shut down gracefully as well: every connection gets a close frame (1001 "server shutting
    /// down") behind what was queued for it, and the awaitable completes once every connection has
    /// gone (the gateway: once on_disconnect ran for each); connections still there after
    /// `deadline` are cut. Not awaited, open connections stay open. From any thread.
    asio::awaitable<void> stop(std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
        halt();
        return state::drain(st_, deadline);
    }
    /// Stops listening, and only that: accept() fails, open connections stay open.
    void stop_accepting() { halt(); }

    /// The counters and gauges now (any thread).
    gw::metrics metrics() const {
        gw::metrics m;
        state::read(*st_, m);
        return m;
    }

    /// The port it listens on (the one chosen when options.port was 0).
    std::uint16_t port() const noexcept { return st_->port; }
    const options& config() const noexcept { return st_->opts; }
    /// The event loops serving connections: loop 0 is the io_context given, the others are the
    /// server's (options.workers of them in all).
    const std::vector<asio::io_context*>& loops() const noexcept { return st_->loops; }

private:
    /// Stops accepting. The acceptor and accept()'s queue belong to the first loop: on its thread
    /// (or when it does not run, as in the destructor) they close at once, else on its next turn.
    void halt(bool here = false) {
        if (!st_ || st_->stopped.exchange(true)) return;
        auto close = [st = st_] {
            std::error_code ec;
            st->acceptor.close(ec);
            st->wake.cancel();
            st->ready.clear();
        };
        if (here || st_->io.get_executor().running_in_this_thread()) close();
        else asio::post(st_->io, std::move(close));
    }

    struct worker {
        asio::io_context io{1};
        asio::executor_work_guard<asio::io_context::executor_type> busy = asio::make_work_guard(io);
        std::thread thread;
    };
    struct state {
        state(asio::io_context& io_, options o) : io(io_), opts(std::move(o)), acceptor(io_), wake(io_) {
            wake.expires_at(asio::steady_timer::time_point::max());
        }
        asio::io_context& io;
        options opts;
        asio::ip::tcp::acceptor acceptor;
        asio::steady_timer wake;   // never expires; cancel() wakes accept()
        std::deque<connection> ready;
        std::atomic<bool> stopped{false};   // read by upgrades on every loop
        std::uint16_t port = 0;
        std::vector<std::unique_ptr<worker>> own;
        std::vector<asio::io_context*> loops;
        std::size_t next_loop = 0;
        std::shared_ptr<detail::hub> hub;
        std::function<void(gw::metrics&)> more_metrics;   // the gateway's part

        static void read(const state& st, gw::metrics& m) {
            const auto& h = *st.hub;
            m.connections = h.live.load(std::memory_order_relaxed);
            m.handshakes_accepted = h.accepted.load(std::memory_order_relaxed);
            for (std::size_t i = 0; i < h.statuses.size(); ++i)
                if (auto n = h.refused[i].load(std::memory_order_relaxed)) m.handshakes_rejected.emplace_back(h.statuses[i], n);
            for (std::size_t i = 0; i < h.loop_count; ++i) {
                const auto& l = h.lists[i];
                m.messages_in += l.messages_in.load(std::memory_order_relaxed);
                m.bytes_in += l.bytes_in.load(std::memory_order_relaxed);
                m.messages_out += l.messages_out.load(std::memory_order_relaxed);
                m.bytes_out += l.bytes_out.load(std::memory_order_relaxed);
                m.dropped += l.dropped.load(std::memory_order_relaxed);
                m.slow_consumer_closes += l.slow_closes.load(std::memory_order_relaxed);
                m.ping_timeouts += l.ping_timeouts.load(std::memory_order_relaxed);
            }
            if (st.more_metrics) st.more_metrics(m);
        }

        /// The answers the server itself gives to plain GETs: metrics and health.
        static std::optional<http_response> own_answer(const state& st, const http_request& req) {
            const auto& o = st.opts;
            if (req.method() != "GET") return std::nullopt;
            if (!o.metrics_path.empty() && req.path() == o.metrics_path) {
                gw::metrics m;
                read(st, m);
                return http_response{200, to_prometheus(m), "text/plain; version=0.0.4; charset=utf-8"};
            }
            if (!o.health_path.empty() && req.path() == o.health_path)
                return st.stopped ? http_response{503, "shutting down\n"} : http_response{200, "ok\n"};
            return std::nullopt;
        }

        /// Closes every connection of every loop (1001 after what was queued), waits until none
        /// is left, and cuts what remains at the deadline.
        static asio::awaitable<void> drain(std::shared_ptr<state> self, std::chrono::milliseconds deadline) {
            using asio::experimental::as_tuple;
            auto hub = self->hub;
            auto ex = co_await asio::this_coro::executor;
            auto timer = std::make_shared<asio::steady_timer>(ex, deadline);
            {
                std::lock_guard hold(hub->empty_lock);
                hub->on_empty = [ex, timer] { asio::post(ex, [timer] { timer->cancel(); }); };
            }
            auto each = [&](auto act) {   // act(connection_impl&) on every connection, on its own loop
                for (std::uint32_t i = 0; i < self->loops.size(); ++i)
                    asio::post(*self->loops[i], [hub, i, act] {
                        std::vector<std::shared_ptr<detail::connection_impl>> all;
                        {
                            auto& l = hub->lists[i];
                            std::lock_guard hold(l.lock);
                            for (auto* c = l.first; c; c = c->next_)
                                if (auto p = c->weak_from_this().lock()) all.push_back(std::move(p));
                        }
                        for (auto& c : all) act(c);
                    });
            };
            each([](const std::shared_ptr<detail::connection_impl>& c) {
                if (!c->upgraded_) {   // still in its handshake: nothing to say goodbye with
                    std::error_code ignored;
                    c->sock_.close(ignored);
                    return;
                }
                c->shutting_down_ = true;
                auto bye = [c]() -> asio::awaitable<void> {
                    connection handle(c);
                    co_await handle.close(close_code::going_away, "server shutting down");
                };
                asio::co_spawn(c->sock_.get_executor(), std::move(bye), [](std::exception_ptr) {});
            });
            if (hub->live.load(std::memory_order_acquire) > 0) co_await timer->async_wait(as_tuple(asio::use_awaitable));
            if (hub->live.load(std::memory_order_acquire) > 0) {   // the deadline passed: cut what is left
                each([](const std::shared_ptr<detail::connection_impl>& c) {
                    std::error_code ignored;
                    c->sock_.close(ignored);
                });
                // Their readers see the socket closed and finish at once; a last wait for that.
                timer->expires_after(std::chrono::seconds(1));
                if (hub->live.load(std::memory_order_acquire) > 0) co_await timer->async_wait(as_tuple(asio::use_awaitable));
            }
            std::lock_guard hold(hub->empty_lock);
            hub->on_empty = nullptr;
        }

        /// One worker's heartbeat: pings its connections every ping_interval, drops those whose pong
        /// is ping_timeout late, and closes those idle for idle_timeout. A single timer per loop.
        static asio::awaitable<void> sweep(std::shared_ptr<detail::hub> hub, std::uint32_t loop, options o) {
            using ms = std::chrono::milliseconds;
            ms tick{1000};
            for (ms t : {o.ping_interval, o.ping_timeout, o.idle_timeout})
                if (t.count() > 0) tick = std::min(tick, t / 4);
            tick = std::max(tick, ms{5});
            const auto interval = static_cast<std::uint32_t>(o.ping_interval.count());
            const auto patience = static_cast<std::uint32_t>(o.ping_timeout.count());
            const auto idle = static_cast<std::uint32_t>(o.idle_timeout.count());
            asio::steady_timer timer(co_await asio::this_coro::executor);
            hub->lists[loop].sweep = &timer;
            struct forget {
                asio::steady_timer*& slot;
                ~forget() { slot = nullptr; }
            } on_exit{hub->lists[loop].sweep};
            while (!hub->retired) {
                timer.expires_after(tick);
                co_await timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
                auto& l = hub->lists[loop];
                std::lock_guard hold(l.lock);
                const std::uint32_t now = l.now = hub->clock();
                for (auto* c = l.first; c; c = c->next_) {
                    if (!c->upgraded_ || c->close_sent_ || c->ended_ || c->broken_) continue;   // closing: close_timeout bounds it
                    if (interval) {
                        if (c->ping_outstanding_ && now - c->ping_at_ >= patience) {
                            if (!c->error_) c->error_ = errc::ping_timeout;
                            detail::hub::bump(l.ping_timeouts);
                            hub->say(log_level::info, "ping timeout", c->request_);
                            std::error_code ignored;
                            c->sock_.close(ignored);   // a peer that does not answer pings will not answer a close
                            continue;
                        }
                        if (!c->ping_outstanding_ && now - c->ping_at_ >= interval) {
                            c->queue_frame(opcode::ping, {});
                            c->ping_outstanding_ = true;
                            c->ping_at_ = now;
                        }
                    }
                    if (idle) {
                        if (c->messages_in_ != c->seen_in_) {
                            c->seen_in_ = c->messages_in_;
                            c->active_at_ = now;
                        } else if (now - c->active_at_ >= idle) {
                            c->close_soon(close_code::going_away, "idle timeout");
                        }
                    }
                }
            }
        }

        static asio::awaitable<void> accept_loop(std::shared_ptr<state> self) {
            using asio::experimental::as_tuple;
            while (!self->stopped) {
                asio::io_context& home = *self->loops[self->next_loop];
                self->next_loop = (self->next_loop + 1) % self->loops.size();
                const asio::any_io_executor home_ex = home.get_executor();
                auto [ec, sock] = co_await self->acceptor.async_accept(home_ex, as_tuple(asio::use_awaitable));
                if (self->stopped) break;
                if (ec) {
                    // Out of descriptors or memory: back off instead of spinning.
                    asio::steady_timer pause(self->io, std::chrono::milliseconds(50));
                    co_await pause.async_wait(as_tuple(asio::use_awaitable));
                    continue;
                }
                asio::co_spawn(home, upgrade(self, home, std::move(sock)), [](std::exception_ptr) {});
            }
        }

        /// True when options.allowed_origins is empty, lists the request's Origin, or there is none.
        static bool origin_allowed(const options& o, const http_request& req) {
            if (o.allowed_origins.empty()) return true;
            auto origin = req.header("Origin");
            if (!origin) return true;
            const auto have = detail::trim(*origin);
            return std::any_of(o.allowed_origins.begin(), o.allowed_origins.end(),
                               [&](const std::string& ok) { return detail::iequals(ok, have); });
        }

        static asio::awaitable<void> upgrade(std::shared_ptr<state> self, asio::io_context& home, asio::ip::tcp::socket sock) {
            using asio::experimental::as_tuple;
            const options& o = self->opts;
            std::error_code ec;
            auto remote = sock.remote_endpoint(ec);
            if (auto a = remote.address(); a.is_v6() && a.to_v6().is_v4_mapped())   // IPv4 client, dual-stack socket
                remote.address(asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()));
            sock.set_option(asio::ip::tcp::no_delay(true), ec);
            auto c = std::make_shared<detail::connection_impl>(
                std::move(sock), detail::role::server,
                detail::frame_limits{o.max_message_bytes, o.max_frame_bytes, std::max<std::size_t>(o.max_fragments, 1)},
                o.close_timeout);
            c->request_.remote_ = remote;
            // Over a connection limit, the request is still read, so that the refusal is an answer.
            const int full = self->hub->admit(remote.address());
            if (!full) {   // counted in: the connection counts itself out when it goes
                c->hub_ = self->hub;
                c->enlist(static_cast<std::uint32_t>(std::find(self->loops.begin(), self->loops.end(), &home) - self->loops.begin()));
            }
            c->high_water_ = std::max<std::size_t>(o.outbox_high_water, 1);
            c->max_outbox_ = std::max(o.max_outbox_bytes, c->high_water_);
            c->drop_when_full_ = o.slow_consumer == overflow::drop;
            asio::steady_timer deadline(c->sock_.get_executor(), o.handshake_timeout);
            deadline.async_wait([w = std::weak_ptr<detail::connection_impl>(c)](std::error_code e) {
                if (e) return;
                if (auto p = w.lock()) {
                    std::error_code ignored;
                    p->sock_.close(ignored);
                }
            });
            if (o.tls) {
                c->tls_ = std::make_unique<detail::connection_impl::tls_state>(c->sock_, *o.tls);
                auto [hec] = co_await c->tls_->stream.async_handshake(asio::ssl::stream_base::server, as_tuple(asio::use_awaitable));
                if (hec) {
                    self->hub->rejected(0);
                    co_return;
                }
            }
            std::string head, rest;
            bool too_big = false;
            if (!co_await detail::read_head(*c, o.max_header_bytes, head, rest, too_big)) {
                if (!too_big) self->hub->rejected(0);   // timed out, or the peer went
                if (too_big) {
                    self->hub->rejected(431, "request header too large", &c->request_);
                    // Named, not a temporary in the co_await: GCC 12 destroys such temporaries twice.
                    http_response r{431, "request header too large\n"};
                    co_await detail::refuse(*c, r);
                }
                co_return;
            }
            http_request& req = c->request_;
            if (auto err = detail::request_parser::parse(std::move(head), req); err.status) {
                self->hub->rejected(err.status, "malformed: " + std::string(err.reason), &req);
                http_response r{err.status, std::string(err.reason) + "\n"};
                co_await detail::refuse(*c, r);
                co_return;
            }
            auto d = detail::check_upgrade(req);
            std::optional<http_response> answer;
            try {
                if (d.is_upgrade && !d.error.status && full) {
                    answer = http_response{full, full == 503 ? "the server is at its connection limit\n"
                                                             : "too many connections from this address\n"};
                    if (full == 503) answer->headers.emplace_back("Retry-After", "1");
                } else if (d.is_upgrade && !d.error.status && !origin_allowed(o, req)) {
                    answer = http_response{403, "origin not allowed\n"};
                } else if (!d.is_upgrade) {
                    answer = own_answer(*self, req);
                    if (!answer && o.on_http) answer = o.on_http(req);
                    if (!answer) answer = http_response{426, "this is a WebSocket endpoint\n", "text/plain; charset=utf-8",
                                                        {{"Upgrade", "websocket"}}};
                } else if (d.error.status) {
                    answer = http_response{d.error.status, std::string(d.error.reason) + "\n"};
                    if (d.error.status == 426) answer->headers.emplace_back("Sec-WebSocket-Version", "13");
                    if (d.error.status == 405) answer->headers.emplace_back("Allow", "GET");
                } else if (o.on_upgrade) {
                    answer = o.on_upgrade(req);
                }
                if (!answer) {
                    auto offered = req.protocols();
                    std::string chosen;
                    if (o.select_subprotocol) chosen = o.select_subprotocol(req);
                    else if (std::find(offered.begin(), offered.end(), "access_token") != offered.end())
                        chosen = "access_token";   // a token offered as a subprotocol: browsers need one chosen
                    if (!chosen.empty() && std::find(offered.begin(), offered.end(), chosen) == offered.end())
                        answer = http_response{500, "the server chose a subprotocol the client did not offer\n"};
                    c->subprotocol_ = std::move(chosen);
                }
            } catch (const std::exception& e) {
                self->hub->say(log_level::error, std::string("an upgrade hook threw: ") + e.what(), req);
                answer = http_response{500, "internal server error\n"};
            }
            if (answer) {
                // RFC 7235: a 401 names the scheme that would be accepted. Bearer tokens are what
                // http_request::bearer_token() reads; an application may name another.
                auto& h = answer->headers;
                if (answer->status == 401 &&
                    std::none_of(h.begin(), h.end(), [](const auto& kv) { return detail::iequals(kv.first, "WWW-Authenticate"); }))
                    h.emplace_back("WWW-Authenticate", "Bearer");
                if (d.is_upgrade || answer->status >= 400) {
                    self->hub->rejected(answer->status, req.path(), &req);
                }
                co_await detail::refuse(*c, *answer);
                co_return;
            }
            // The 101 goes first in the outbox: the connection is handed over at once, and whatever
            // the application sends follows it on the wire.
            detail::out_frame switching;
            switching.payload = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                "Sec-WebSocket-Accept: ";
            switching.payload += detail::accept_key(d.key);
            if (!c->subprotocol_.empty()) switching.payload.append("\r\nSec-WebSocket-Protocol: ").append(c->subprotocol_);
            switching.payload += "\r\n\r\n";
            deadline.cancel();
            if (!c->sock_.is_open() || self->stopped) co_return;
            c->push(std::move(switching));   // before upgraded_: the 101 is not a message
            c->upgraded_ = true;
            c->ping_at_ = c->active_at_ = self->hub->lists[c->loop_].now;
            self->hub->accepted.fetch_add(1, std::memory_order_relaxed);
            c->consume_early(rest);
            if (o.on_connection) {
                o.on_connection(connection(std::move(c)));
                co_return;
            }
            self->ready.push_back(connection(std::move(c)));
            self->wake.cancel();
        }
    };
    std::shared_ptr<state> st_;
    friend class gateway;   // adds its own metrics to the server's
};

// ==== Client ====

namespace detail {

struct url_parts {
    bool tls = false;
    std::string host;      // without brackets
    std::string port;
    std::string target;    // path and query
    std::string host_header;
};

inline std::optional<url_parts> parse_url(std::string_view url) {
    url_parts u;
    auto scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) return std::nullopt;
    auto scheme = url.substr(0, scheme_end);
    if (iequals(scheme, "wss")) u.tls = true;
    else if (!iequals(scheme, "ws")) return std::nullopt;
    url.remove_prefix(scheme_end + 3);
    if (url.find('#') != std::string_view::npos) return std::nullopt;
    for (unsigned char c : url)   // nothing that could end the request line or inject a header
        if (c <= 0x20 || c == 0x7F) return std::nullopt;
    auto slash = url.find_first_of("/?");
    auto authority = url.substr(0, slash);
    std::string_view rest = slash == std::string_view::npos ? std::string_view() : url.substr(slash);
    if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
    std::string_view port;
    if (authority.front() == '[') {
        auto close = authority.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        u.host = std::string(authority.substr(1, close - 1));
        auto after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return std::nullopt;
            port = after.substr(1);
        }
    } else {
        auto colon = authority.find(':');
        u.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    }
    if (u.host.empty()) return std::nullopt;
    if (!port.empty()) {
        unsigned value = 0;
        for (char ch : port) {
            if (ch < '0' || ch > '9') return std::nullopt;
            value = value * 10 + static_cast<unsigned>(ch - '0');
            if (value > 65535) return std::nullopt;
        }
        if (value == 0) return std::nullopt;
        u.port = std::string(port);
    } else {
        u.port = u.tls ? "443" : "80";
    }
    // Appended rather than "/" + std::string(rest): GCC 12 at -O3 warns wrongly (-Wrestrict) on the latter.
    if (rest.empty() || rest.front() == '?') u.target = "/";
    u.target.append(rest);
    u.host_header = std::string(authority);
    return u;
}

inline std::shared_ptr<asio::ssl::context> default_client_tls() {
    static const std::shared_ptr<asio::ssl::context> ctx = tls_client_context();
    return ctx;
}

} // namespace detail

/// Opens a client connection to a ws:// or wss:// URL. Throws std::system_error: gw::errc::bad_url,
/// handshake_failed, handshake_timeout, or the transport's error.
inline asio::awaitable<connection> connect(std::string_view url, client_options opts = {}) {
    using asio::experimental::as_tuple;
    auto u = detail::parse_url(url);
    if (!u) throw std::system_error(errc::bad_url, std::string(url));
    auto ex = co_await asio::this_coro::executor;
    asio::ip::tcp::resolver resolver(ex);
    auto endpoints = co_await resolver.async_resolve(u->host, u->port, asio::use_awaitable);
    asio::ip::tcp::socket sock(ex);
    auto c = std::make_shared<detail::connection_impl>(std::move(sock), detail::role::client,
                                                       detail::frame_limits{opts.max_message_bytes, opts.max_message_bytes},
                                                       opts.close_timeout);
    bool timed_out = false;
    asio::steady_timer deadline(ex, opts.handshake_timeout);
    deadline.async_wait([w = std::weak_ptr<detail::connection_impl>(c), &timed_out](std::error_code e) {
        if (e) return;
        if (auto p = w.lock()) {
            timed_out = true;
            std::error_code ignored;
            p->sock_.close(ignored);
        }
    });
    struct cancel_on_exit {
        asio::steady_timer& t;
        ~cancel_on_exit() { t.cancel(); }
    } guard{deadline};
    auto fail = [&](std::error_code ec, const std::string& what) -> std::system_error {
        if (timed_out) return std::system_error(errc::handshake_timeout, std::string(url));
        return std::system_error(ec, what);
    };
    auto [cec, ep] = co_await asio::async_connect(c->sock_, endpoints, as_tuple(asio::use_awaitable));
    if (cec) throw fail(cec, "connect to " + std::string(url));
    std::error_code ec;
    c->sock_.set_option(asio::ip::tcp::no_delay(true), ec);
    if (u->tls) {
        auto ctx = opts.tls ? opts.tls : detail::default_client_tls();
        c->tls_ = std::make_unique<detail::connection_impl::tls_state>(c->sock_, *ctx);
        if (!SSL_set_tlsext_host_name(c->tls_->stream.native_handle(), u->host.c_str()))
            throw std::system_error(errc::handshake_failed, "cannot set TLS server name");
        c->tls_->stream.set_verify_callback(asio::ssl::host_name_verification(u->host));
        auto [hec] = co_await c->tls_->stream.async_handshake(asio::ssl::stream_base::client, as_tuple(asio::use_awaitable));
        if (hec) throw fail(hec, "TLS handshake with " + std::string(url));
    }
    std::array<unsigned char, 16> nonce;
    detail::random_bytes(nonce.data(), nonce.size());
    const std::string key = detail::base64_encode(nonce);
    std::string req = "GET " + u->target + " HTTP/1.1\r\nHost: " + u->host_header +
                      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
                      "\r\nSec-WebSocket-Version: 13\r\n";
    if (!opts.subprotocols.empty()) {
        req += "Sec-WebSocket-Protocol: ";
        for (std::size_t i = 0; i < opts.subprotocols.size(); ++i) req += (i ? ", " : "") + opts.subprotocols[i];
        req += "\r\n";
    }
    for (const auto& [k, v] : opts.headers) req.append(k).append(": ").append(v).append("\r\n");
    req += "\r\n";
    ec = co_await c->write_raw(req);
    if (ec) throw fail(ec, "send upgrade request");
    std::string head, rest;
    bool too_big = false;
    if (!co_await detail::read_head(*c, opts.max_header_bytes, head, rest, too_big))
        throw fail(too_big ? make_error_code(errc::handshake_failed) : make_error_code(errc::connection_lost),
                   too_big ? "upgrade response too large" : "read upgrade response");
    // The status line, then header lines parsed as a request's are.
    auto eol = head.find("\r\n");
    std::string_view status_line = std::string_view(head).substr(0, eol);
    if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || status_line.substr(8, 5) != " 101 ")
        throw std::system_error(errc::handshake_failed, "server answered: " + std::string(status_line));
    http_request resp;
    if (detail::request_parser::parse("GET / HTTP/1.1" + head.substr(eol), resp).status)
        throw std::system_error(errc::handshake_failed, "malformed upgrade response");
    if (!resp.has_token("Upgrade", "websocket") || !resp.has_token("Connection", "upgrade"))
        throw std::system_error(errc::handshake_failed, "response is not a WebSocket upgrade");
    auto accept = resp.header("Sec-WebSocket-Accept");
    if (!accept || *accept != detail::accept_key(key))
        throw std::system_error(errc::handshake_failed, "wrong Sec-WebSocket-Accept");
    if (resp.header("Sec-WebSocket-Extensions"))
        throw std::system_error(errc::handshake_failed, "server chose an extension that was not offered");
    if (auto proto = resp.header("Sec-WebSocket-Protocol")) {
        if (std::find(opts.subprotocols.begin(), opts.subprotocols.end(), *proto) == opts.subprotocols.end())
            throw std::system_error(errc::handshake_failed, "server chose a subprotocol that was not offered");
        c->subprotocol_ = std::string(*proto);
    }
    c->consume_early(rest);
    co_return connection(std::move(c));
}

#ifndef GATEWAY_NO_JSON

// ==== Gateway: wire format ====

using json = nlohmann::json;

namespace detail {

// The envelope costs more than the messages it carries when a general JSON library parses and
// prints it character by character, so the gateway reads and writes it itself: the parts it
// knows (strings without escapes, numbers, literals, the envelope's own keys) directly, anything
// else through nlohmann/json. Output is byte for byte what json::dump() would print.

/// How many bytes from i on need no attention inside a JSON string (no quote, backslash or control
/// character), a word at a time: text is mostly such bytes.
inline std::size_t plain_run(std::string_view s, std::size_t i) noexcept {
    constexpr std::uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    const std::size_t start = i;
    while (s.size() - i >= 8) {
        std::uint64_t w;
        std::memcpy(&w, s.data() + i, 8);
        const std::uint64_t quote = w ^ (ones * '"'), backslash = w ^ (ones * '\\');
        // A byte below 0x20 (bytes of 0x80 and above are masked out by ~w), or a zero byte in one of
        // the XORs: some byte of these eight needs a look.
        const std::uint64_t special = ((w - ones * 0x20) & ~w) | ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash);
        if (special & highs) break;
        i += 8;
    }
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == '"' || c == '\\') break;
        ++i;
    }
    return i - start;
}

/// Appends s as a JSON string; invalid UTF-8 goes through json::dump(), which substitutes U+FFFD as
/// it does everywhere else.
inline void write_json_string(std::string& out, std::string_view s) {
    if (!is_valid_utf8(s)) {
        out += json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
        return;
    }
    static constexpr char hex[] = "0123456789abcdef";
    out.reserve(out.size() + s.size() + 2);
    out.append(1, '"');
    std::size_t run = 0;   // start of the bytes not yet appended
    for (std::size_t i = 0; i < s.size(); ++i) {
        i += plain_run(s, i);
        if (i == s.size()) break;
        const auto c = static_cast<unsigned char>(s[i]);
        out.append(s.data() + run, i - run);
        run = i + 1;
        out += '\\';
        switch (c) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '\b': out += 'b'; break;
        case '\f': out += 'f'; break;
        case '\n': out += 'n'; break;
        case '\r': out += 'r'; break;
        case '\t': out += 't'; break;
        default: out.append("u00").append(1, hex[c >> 4]).append(1, hex[c & 0xF]);
        }
    }
    out.append(s.data() + run, s.size() - run);
    out.append(1, '"');
}

/// Appends j as json::dump() prints it (compact, U+FFFD for invalid UTF-8), without a temporary.
inline void write_json(std::string& out, const json& j) {
    switch (j.type()) {
    case json::value_t::null: out += "null"; return;
    case json::value_t::boolean: out += j.get<bool>() ? "true" : "false"; return;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: {
        char buf[24];
        auto r = j.is_number_unsigned() ? std::to_chars(buf, buf + sizeof buf, j.get<std::uint64_t>())
                                        : std::to_chars(buf, buf + sizeof buf, j.get<std::int64_t>());
        out.append(buf, r.ptr);
        return;
    }
    case json::value_t::string: write_json_string(out, j.get_ref<const std::string&>()); return;
    case json::value_t::array: {
        out += '[';
        bool first = true;
        for (const auto& v : j) {
            if (!first) out += ',';
            first = false;
            write_json(out, v);
        }
        out += ']';
        return;
    }
    case json::value_t::object: {
        out += '{';
        bool first = true;
        for (const auto& [k, v] : j.items()) {
            if (!first) out += ',';
            first = false;
            write_json_string(out, k);
            out += ':';
            write_json(out, v);
        }
        out += '}';
        return;
    }
    default: break;   // floating point (its shortest round-trip form) and binary: the library's printer
    }
    out += j.dump(-1, ' ', false, json::error_handler_t::replace);
}

/// A validating pass over JSON text that finds where values end without building them.
class json_scanner {
public:
    explicit json_scanner(std::string_view text) noexcept : s_(text) {}
    bool at_end() noexcept {
        skip_space();
        return i_ == s_.size();
    }
    /// True when c is next (after white space).
    bool next_is(char c) noexcept {
        skip_space();
        return i_ < s_.size() && s_[i_] == c;
    }
    /// Consumes c (after white space) if it is next.
    bool take(char c) noexcept {
        skip_space();
        if (i_ < s_.size() && s_[i_] == c) {
            ++i_;
            return true;
        }
        return false;
    }
    /// A string; raw is what stands between the quotes, escaped tells whether it holds a backslash.
    bool string(std::string_view& raw, bool& escaped) noexcept {
        skip_space();
        if (i_ >= s_.size() || s_[i_] != '"') return false;
        const std::size_t start = ++i_;
        escaped = false;
        while (i_ < s_.size()) {
            i_ += plain_run(s_, i_);
            if (i_ >= s_.size()) break;
            const auto c = static_cast<unsigned char>(s_[i_]);
            if (c == '"') {
                raw = s_.substr(start, i_ - start);
                ++i_;
                return true;
            }
            if (c < 0x20) return false;
            escaped = true;   // plain_run stops only at a quote, a control character or a backslash
            if (++i_ >= s_.size()) return false;
            const char e = s_[i_++];
            if (e == 'u') {
                unsigned cp = 0;
                if (!hex4(cp)) return false;
                if (cp >= 0xD800 && cp <= 0xDBFF) {   // a high surrogate must be followed by a low one
                    unsigned lo = 0;
                    if (i_ + 2 > s_.size() || s_[i_] != '\\' || s_[i_ + 1] != 'u') return false;
                    i_ += 2;
                    if (!hex4(lo) || lo < 0xDC00 || lo > 0xDFFF) return false;
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    return false;
                }
            } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
                return false;
            }
        }
        return false;
    }
    /// Any value; span is its text, without the white space around it.
    bool value(std::string_view& span) noexcept {
        skip_space();
        const std::size_t start = i_;
        if (!value()) return false;
        span = s_.substr(start, i_ - start);
        return true;
    }
    /// Any value, nested ones included (without recursion, so depth costs no stack).
    bool value() noexcept {
        std::string open;   // the brackets entered, innermost last
        for (;;) {
            skip_space();
            if (i_ >= s_.size()) return false;
            const char c = s_[i_];
            std::string_view raw;
            bool escaped = false;
            if (c == '{' || c == '[') {
                ++i_;
                open += c;
                if (take(c == '{' ? '}' : ']')) {
                    open.pop_back();
                } else {
                    if (c == '{' && !(string(raw, escaped) && take(':'))) return false;
                    continue;   // the first member's value, or the first element
                }
            } else if (c == '"') {
                if (!string(raw, escaped)) return false;
            } else if (c == 't' || c == 'f' || c == 'n') {
                if (!literal()) return false;
            } else if (!number()) {
                return false;
            }
            // A value is complete: close what ends here, or move to the next member or element.
            for (;;) {
                if (open.empty()) return true;
                const char close = open.back() == '{' ? '}' : ']';
                if (take(close)) {
                    open.pop_back();
                    continue;
                }
                if (!take(',')) return false;
                if (open.back() == '{' && !(string(raw, escaped) && take(':'))) return false;
                break;
            }
        }
    }

private:
    void skip_space() noexcept {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) ++i_;
    }
    bool hex4(unsigned& cp) noexcept {
        if (i_ + 4 > s_.size()) return false;
        for (int k = 0; k < 4; ++k) {
            const int h = hex_value(s_[i_++]);
            if (h < 0) return false;
            cp = cp << 4 | static_cast<unsigned>(h);
        }
        return true;
    }
    bool literal() noexcept {
        for (std::string_view w : {"true", "false", "null"})
            if (s_.substr(i_, w.size()) == w) {
                i_ += w.size();
                return true;
            }
        return false;
    }
    bool digits() noexcept {
        const std::size_t start = i_;
        while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
        return i_ > start;
    }
    bool number() noexcept {
        const std::size_t start = i_;
        if (i_ < s_.size() && s_[i_] == '-') ++i_;
        if (i_ < s_.size() && s_[i_] == '0') ++i_;
        else if (!digits()) return false;
        bool plain = true;
        if (i_ < s_.size() && s_[i_] == '.') {
            plain = false;
            if (++i_, !digits()) return false;
        }
        if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
            plain = false;
            ++i_;
            if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
            if (!digits()) return false;
        }
        // Like the library, refuse what no double can hold (1e999); what rounds to zero is fine.
        if (plain && i_ - start < 20) return true;
        const char* first = s_.data() + start + (s_[start] == '-');
        double v = 0;
        auto r = std::from_chars(first, s_.data() + i_, v);
        if (r.ec != std::errc::result_out_of_range) return true;
        return !overflows(std::string_view(first, static_cast<std::size_t>(s_.data() + i_ - first)));
    }
    /// Whether an out-of-range decimal is too large (not too small): its power of ten is positive.
    static bool overflows(std::string_view digits) noexcept {
        long long power = 0, exponent = 0;
        bool leading = true, fraction = false;
        std::size_t k = 0;
        for (; k < digits.size() && digits[k] != 'e' && digits[k] != 'E'; ++k) {
            if (digits[k] == '.') {
                fraction = true;
            } else if (leading && digits[k] == '0') {
                if (fraction) --power;
            } else {
                if (leading && fraction) --power;
                leading = false;
                if (!fraction) ++power;
            }
        }
        if (leading) return false;   // zero
        bool negative = false;
        if (++k < digits.size() && (digits[k] == '-' || digits[k] == '+')) negative = digits[k++] == '-';
        for (; k < digits.size() && exponent < 1'000'000'000; ++k) exponent = exponent * 10 + (digits[k] - '0');
        return power + (negative ? -exponent : exponent) > 0;
    }

    std::string_view s_;
    std::size_t i_ = 0;
};

/// The text of a JSON string the scanner found (raw: between its quotes, inside the scanned text).
inline std::string json_string_text(std::string_view raw, bool escaped) {
    if (!escaped) return std::string(raw);
    return json::parse(std::string_view(raw.data() - 1, raw.size() + 2)).get<std::string>();
}

/// The value of a JSON text known to be valid: simple strings and integers made directly, the
/// rest by the library's parser.
inline json json_value(std::string_view text) {
    if (text.size() >= 2 && text.front() == '"' && text.find('\\') == std::string_view::npos)
        return json(std::string(text.substr(1, text.size() - 2)));
    if (!text.empty() && (text.front() == '-' || (text.front() >= '0' && text.front() <= '9')) &&
        text.find_first_of(".eE") == std::string_view::npos) {
        std::int64_t v = 0;
        auto r = std::from_chars(text.data(), text.data() + text.size(), v);
        if (r.ec == std::errc() && r.ptr == text.data() + text.size()) return json(v);
    }
    return json::parse(text);
}

} // namespace detail

/// One event: what a client sent, or what the server emits.
struct event {
    std::string name;
    json data;
    json id;                ///< the client's request id (number or string), echoed in the reply; null when none
    std::int64_t ack = 0;   ///< in a client's "ack" event: the number of the server's emit_with_ack it answers
};

/// A wire format: turns messages into events and events into messages. The gateway's handlers never
/// see it, so one set of handlers can serve several formats.
class codec {
public:
    virtual ~codec() = default;
    /// Decodes a message; on failure returns nullopt and says what was wrong in error.
    virtual std::optional<event> decode(const message& m, std::string& error) const = 0;
    /// The text of a message carrying an event (its id too, unless null; ack, unless 0, asks the
    /// client to acknowledge).
    virtual std::string encode(std::string_view name, const json& data, const json& id, std::int64_t ack) const = 0;
};

/// NestJS WsAdapter's format: a text frame holding {"event": string, "data": any, "id"?: number|string}.
/// Acknowledgements the server asks for: it sends {"event", "data", "ack": n}; the client answers
/// {"event": "ack", "ack": n, "data": reply}.
class nest_codec final : public codec {
public:
    std::optional<event> decode(const message& m, std::string& error) const override {
        if (m.binary) {
            error = "expected a text message holding a JSON object";
            return std::nullopt;
        }
        try {   // the scan validates the text, so the library's parser agrees; a throw must still not escape
            return decode_text(m.data, error);
        } catch (const json::exception&) {
            error = "malformed JSON";
            return std::nullopt;
        }
    }

    /// {"event":...,"data":...} in NestJS's key order, written directly: no JSON tree is built or copied.
    std::string encode(std::string_view name, const json& data, const json& id, std::int64_t ack) const override {
        std::string out;
        out.reserve(64 + name.size() + (data.is_string() ? data.get_ref<const std::string&>().size() : 0));
        out += "{\"event\":";
        detail::write_json_string(out, name);
        out += ",\"data\":";
        detail::write_json(out, data);
        if (!id.is_null()) {
            out += ",\"id\":";
            detail::write_json(out, id);
        }
        if (ack > 0) out.append(",\"ack\":").append(std::to_string(ack));
        out += '}';
        return out;
    }

private:
    static std::optional<event> decode_text(std::string_view text, std::string& error) {
        // One validating pass finds the members; only "data", "id" and "ack" become JSON values.
        std::string_view name, data, id, ack;
        bool name_escaped = false, has_name = false;
        detail::json_scanner in(text);
        bool valid = in.take('{');
        if (valid && !in.take('}')) {
            do {
                std::string_view key;
                bool key_escaped = false;
                if (!(valid = in.string(key, key_escaped) && in.take(':'))) break;
                std::string key_text;
                if (key_escaped) key = key_text = detail::json_string_text(key, true);
                if (key == "event") {   // the last of repeated keys counts, as for the library's parser
                    has_name = in.next_is('"');
                    if (!(valid = has_name ? in.string(name, name_escaped) : in.value())) break;
                    continue;
                }
                std::string_view span;
                if (!(valid = in.value(span))) break;
                if (key == "data") data = span;
                else if (key == "id") id = span;
                else if (key == "ack") ack = span;
            } while (in.take(','));
            valid = valid && in.take('}');
        }
        valid = valid && in.at_end();
        static constexpr const char* shape = "expected {\"event\": string, \"data\": any}";
        if (!valid) {
            // Valid JSON of another shape says so. The scanner decides, not json::accept: that one
            // skips a byte-order mark and stops at a NUL, which JSON.parse (and the scan) refuse.
            detail::json_scanner whole(text);
            error = whole.value() && whole.at_end() ? shape : "malformed JSON";
            return std::nullopt;
        }
        if (!has_name) {
            error = shape;
            return std::nullopt;
        }
        event e;
        e.name = detail::json_string_text(name, name_escaped);
        if (!data.empty()) e.data = detail::json_value(data);
        json id_value = id.empty() ? json() : detail::json_value(id);
        if (!id_value.is_null() && !id_value.is_number() && !id_value.is_string()) {
            error = "\"id\" must be a number or a string";
            return std::nullopt;
        }
        e.id = std::move(id_value);
        if (!ack.empty()) {
            json ack_value = detail::json_value(ack);
            if (!ack_value.is_number_integer() || ack_value.get<std::int64_t>() <= 0) {
                error = "\"ack\" must be a positive integer";
                return std::nullopt;
            }
            e.ack = ack_value.get<std::int64_t>();
        }
        return e;
    }
};

/// Thrown by a handler to answer with an exception event: {"status": "error", "message": what} for a
/// string, or the given JSON as the event's data.
class ws_exception : public std::runtime_error {
public:
    explicit ws_exception(const std::string& message)
        : std::runtime_error(message), data_({{"status", "error"}, {"message", message}}) {}
    explicit ws_exception(const char* message) : ws_exception(std::string(message)) {}
    explicit ws_exception(json data) : std::runtime_error(data.dump()), data_(std::move(data)) {}
    const json& data() const noexcept { return data_; }

private:
    json data_;
};

/// A reply that names its own event: return gw::response{"pong", data} from a handler.
struct response {
    std::string event;
    json data;
};

/// Several replies from one handler: a coroutine that co_yields values, each sent to the client in
/// order as a reply to the request (same event, same id). When the client goes, the coroutine is
/// destroyed at its co_yield and runs no further.
template <class T = json> class stream {
public:
    struct promise_type {
        std::optional<T> current;
        std::exception_ptr error;
        stream get_return_object() { return stream(std::coroutine_handle<promise_type>::from_promise(*this)); }
        std::suspend_always initial_suspend() noexcept { return {}; }
        std::suspend_always final_suspend() noexcept { return {}; }
        template <class U> std::suspend_always yield_value(U&& value) {
            current.emplace(std::forward<U>(value));
            return {};
        }
        void return_void() noexcept {}
        void unhandled_exception() noexcept { error = std::current_exception(); }
    };

    stream(stream&& other) noexcept : h_(std::exchange(other.h_, {})) {}
    stream& operator=(stream other) noexcept {
        std::swap(h_, other.h_);
        return *this;
    }
    ~stream() {
        if (h_) h_.destroy();
    }

    /// Runs to the next co_yield: its value, or nullopt once the coroutine returned. Rethrows what it threw.
    std::optional<T> next() {
        if (!h_ || h_.done()) return std::nullopt;
        h_.promise().current.reset();
        h_.resume();
        if (h_.promise().error) std::rethrow_exception(std::exchange(h_.promise().error, nullptr));
        if (h_.done()) return std::nullopt;
        return std::move(h_.promise().current);
    }

private:
    explicit stream(std::coroutine_handle<promise_type> h) : h_(h) {}
    std::coroutine_handle<promise_type> h_;
};

// ==== Gateway: sockets and rooms ====

class socket;
class gateway;
class namespace_ref;
class target;

namespace detail {

/// Lets the gateway reach a connection's state; not for applications.
struct access {
    static const std::shared_ptr<connection_impl>& state(const connection& c) { return c.impl(); }
};

/// An awaitable that completes at once: what emit() returns after queueing.
inline asio::awaitable<void> done() { co_return; }

/// A socket id: 16 bytes from the CSPRNG, base64url without padding (22 characters).
inline std::string random_id() {
    std::array<unsigned char, 16> raw;
    random_bytes(raw.data(), raw.size());
    std::string id = base64_encode(raw);
    id.resize(22);
    for (char& c : id) c = c == '+' ? '-' : c == '/' ? '_' : c;
    return id;
}

struct namespace_state;
struct gateway_state;
struct outcome;
struct selection;

} // namespace detail

/// The recipients of an emit: a namespace (or every namespace), narrowed to rooms, minus rooms and
/// sockets. Built with to()/except() from a socket, a namespace or the gateway; emit() serializes and
/// frames the event once and queues the same bytes for every recipient, on every worker.
class target {
public:
    /// Adds a room: the target becomes the union of its rooms (each socket receives once).
    target to(std::string room) && {
        rooms_.push_back(std::move(room));
        return std::move(*this);
    }
    target except(std::string room) && {
        except_rooms_.push_back(std::move(room));
        return std::move(*this);
    }
    target except(const socket& s) &&;
    /// Makes the emit volatile (Socket.IO's word): a recipient whose outbox is above its high-water
    /// mark misses it instead of queueing it. For what is stale by the time a slow client would
    /// read it (positions, typing indicators).
    target volatile_() && {
        droppable_ = true;
        return std::move(*this);
    }

    /// Sends the event to every recipient: queued for those of this worker before emit() returns
    /// (so the target may be a temporary) and posted, once per worker, to the other workers; the
    /// awaitable completes at once.
    asio::awaitable<void> emit(std::string_view event, const json& data = nullptr) const;
    /// How many sockets emit() would reach now, on every worker.
    asio::awaitable<std::size_t> count() const;
    /// The ids of the sockets emit() would reach now, on every worker.
    asio::awaitable<std::vector<std::string>> ids() const;

private:
    friend class socket;
    friend class namespace_ref;
    friend class gateway;
    std::vector<detail::namespace_state*> spaces_;
    std::vector<std::string> rooms_, except_rooms_;
    std::vector<const socket*> except_sockets_;
    bool droppable_ = false;   // volatile_()
    template <class F> void for_each_recipient(std::size_t worker, F&& f) const;
    std::shared_ptr<detail::selection> select() const;
};

/// A client connected to a namespace: its id, its handshake, its data and its rooms.
class socket : public std::enable_shared_from_this<socket> {
public:
    /// Unguessable: 128 random bits. Each socket is also in a room named by its id.
    const std::string& id() const noexcept { return id_; }
    /// The upgrade request: path, query, headers, cookies, remote address.
    const http_request& handshake() const { return conn_.request(); }
    /// The namespace's path.
    const std::string& nsp() const noexcept;
    /// What handshake middleware attached (see namespace_ref::use), or anything the application keeps.
    std::any& data() noexcept { return data_; }
    /// data() as T; throws std::bad_any_cast when it holds something else.
    template <class T> T& data_as() { return std::any_cast<T&>(data_); }

    /// Sends an event to this socket only. On the socket's worker it is queued before emit()
    /// returns, the awaitable completes once the socket's unsent bytes are below
    /// options.outbox_high_water (a streaming handler goes at its client's pace), and it throws
    /// gw::errc::closed once the connection closes. From another thread it is posted to the
    /// socket's worker (dropped if the socket has gone by then) and does not wait.
    asio::awaitable<void> emit(std::string_view event, const json& data = nullptr) {
        send_event(event, data, nullptr);
        auto& c = conn_.state();
        if (c.on_own_thread() && c.above_high_water()) return c.wait_drained();
        return detail::done();
    }

    /// Bytes queued for this socket and not yet taken by the kernel.
    std::size_t buffered_amount() const noexcept { return conn_.handle.buffered_amount(); }

    /// Emits an event that asks the client to acknowledge it, and waits for its answer: the client's
    /// {"event": "ack", "ack": n, "data": reply} gives reply. Throws std::system_error with
    /// std::errc::timed_out when no answer comes within timeout (or the socket goes first).
    /// May be awaited on any thread; the wait itself runs on the socket's worker.
    asio::awaitable<json> emit_with_ack(std::string event, json data, std::chrono::milliseconds timeout) {
        auto self = shared_from_this();   // the socket outlives the wait even if the client leaves
        if (!conn_.state().on_own_thread()) {
            auto hop = [self, event = std::move(event), data = std::move(data), timeout]() mutable {
                return self->emit_with_ack(std::move(event), std::move(data), timeout);
            };
            co_return co_await asio::co_spawn(conn_.handle.get_executor(), std::move(hop), asio::use_awaitable);
        }
        const std::int64_t n = ++last_ack_;
        auto waiter = std::make_shared<pending_ack>(conn_.handle.get_executor(), timeout);
        if (!acks_) acks_ = std::make_unique<std::unordered_map<std::int64_t, std::shared_ptr<pending_ack>>>();
        acks_->emplace(n, waiter);
        send_event(event, data, nullptr, n);
        co_await waiter->timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
        acks_->erase(n);
        if (!waiter->reply) throw std::system_error(std::make_error_code(std::errc::timed_out), "no acknowledgement of " + event);
        co_return std::move(*waiter->reply);
    }

    // A socket's rooms belong to its worker: join, leave, rooms() and in() are for the handlers and
    // hooks of this socket's namespace, which run there (any thread when workers is 1).
    void join(const std::string& room);
    void join(std::initializer_list<std::string> rooms) {
        for (const auto& r : rooms) join(r);
    }
    void leave(const std::string& room);
    void leave(std::initializer_list<std::string> rooms) {
        for (const auto& r : rooms) leave(r);
    }
    /// The rooms this socket is in, its own id-room first.
    std::vector<std::string> rooms() const {
        std::vector<std::string> all;
        all.reserve(rooms_.size() + 1);
        if (in_own_room_) all.push_back(id_);
        all.insert(all.end(), rooms_.begin(), rooms_.end());
        return all;
    }
    bool in(std::string_view room) const noexcept {
        return (in_own_room_ && room == id_) || std::find(rooms_.begin(), rooms_.end(), room) != rooms_.end();
    }

    /// Everyone in room except this socket.
    target to(std::string room) const;
    /// Everyone in the namespace except this socket.
    target broadcast() const;

    /// Closes the connection (on_disconnect runs once it is over).
    asio::awaitable<void> disconnect(close_code code = close_code::normal, std::string_view reason = {}) {
        closed_by_server_ = true;
        gw::connection c = conn_.handle;
        co_await c.close(code, reason);
    }
    bool connected() const noexcept { return conn_.handle.is_open(); }

    socket(const socket&) = delete;
    socket& operator=(const socket&) = delete;

private:
    socket(detail::namespace_state& ns, std::size_t worker, connection c)
        : ns_(ns), worker_(worker), conn_{std::move(c)}, id_(detail::random_id()) {}
    friend class target;
    friend class gateway;
    friend struct detail::namespace_state;
    using detail_outcome = detail::outcome;
    struct conn_ref {
        connection handle;
        detail::connection_impl& state() const { return *detail::access::state(handle); }
        const http_request& request() const { return state().request_; }
    };
    void send_event(std::string_view event, const json& data, const json& id, std::int64_t ack = 0);
    /// A handler's reply, or an exception event; dropped when the socket has closed meanwhile.
    void answer(const event& request, detail_outcome&& out);
    void answer_exception(const json& data, const json& id);

    detail::namespace_state& ns_;
    std::size_t worker_;   // the event loop it lives on, and its shard of the namespace
    conn_ref conn_;
    std::string id_;
    std::any data_;
    std::vector<std::string> rooms_;   // joined by name; the id-room is kept apart, see in_own_room_
    /// In the room named by its id: reached through the shard's socket index, so that room costs
    /// no entry in the room map and no copy of the id.
    bool in_own_room_ = true;
    bool closed_by_server_ = false;
    bool gone_ = false;   // out of the namespace: rooms and lookups no longer know it
    // The message-rate bucket (options.message_rate): tokens left, as of when.
    double tokens_ = -1;   // -1: full, not yet used
    std::chrono::steady_clock::time_point tokens_at_{};

    struct pending_ack {
        pending_ack(const asio::any_io_executor& ex, std::chrono::milliseconds timeout) : timer(ex, timeout) {}
        asio::steady_timer timer;   // fires at the timeout; cancelled when the answer comes
        std::optional<json> reply;
    };
    std::int64_t last_ack_ = 0;
    /// Emits waiting for their acknowledgement, made on the first: most sockets never ask for one.
    std::unique_ptr<std::unordered_map<std::int64_t, std::shared_ptr<pending_ack>>> acks_;

    /// A client's "ack" event: true when it answered a pending emit_with_ack.
    bool acknowledge(event& e) {
        if (!acks_) return false;
        auto it = acks_->find(e.ack);
        if (it == acks_->end()) return false;
        it->second->reply = std::move(e.data);
        it->second->timer.cancel();
        return true;
    }
    /// The socket is gone: every wait for an acknowledgement ends now.
    void abandon_acks() {
        if (acks_)
            for (auto& [n, w] : *acks_) w->timer.cancel();
    }
};


// ==== Gateway: enhancer stages ====

/// Enhancers around handlers, as NestJS's: guards decide whether a handler runs, pipes validate and
/// transform its payload, interceptors see the request, the reply and the time taken, and exception
/// filters map what was thrown to what the client receives. Built by gw::guard, gw::validate,
/// gw::pipe, gw::intercept and gw::filter; `a | b` runs both (a's kind-mates first); `stages | handler`
/// attaches them to one handler; namespace_ref::apply and gateway::apply attach them to a namespace or
/// to everything. Each stage is a plain callable, testable alone.
struct stages {
    std::vector<std::function<bool(socket&, const event&)>> guards;
    std::vector<std::function<void(json&)>> pipes;
    std::vector<std::function<void(socket&, const event&, const json* reply, std::chrono::nanoseconds took)>> interceptors;
    std::vector<std::function<std::optional<response>(std::exception_ptr)>> filters;
};

template <class T> inline constexpr bool is_stages_v = std::is_same_v<std::remove_cvref_t<T>, stages>;

inline stages operator|(stages a, stages b) {
    auto append = [](auto& to, auto& from) { to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end())); };
    append(a.guards, b.guards);
    append(a.pipes, b.pipes);
    append(a.interceptors, b.interceptors);
    append(a.filters, b.filters);
    return a;
}

/// A handler with its own stages: what `stages | handler` makes.
template <class F> struct decorated {
    stages around;
    F handler;
};

template <class F>
    requires(!is_stages_v<F>)
decorated<F> operator|(stages s, F handler) {
    return {std::move(s), std::move(handler)};
}

/// A guard: pred(socket&, const json& data) or pred(socket&) returns false to deny; the client gets
/// the exception "Forbidden resource".
template <class P> stages guard(P pred) {
    static_assert(std::is_invocable_r_v<bool, P&, socket&, const json&> || std::is_invocable_r_v<bool, P&, socket&>,
                  "a guard must be callable as (gw::socket&, const gw::json&) or (gw::socket&) and return bool");
    stages s;
    s.guards.emplace_back([p = std::move(pred)](socket& so, const event& e) mutable -> bool {
        if constexpr (std::is_invocable_r_v<bool, P&, socket&, const json&>) return p(so, e.data);
        else return p(so);
    });
    return s;
}

/// A validating pipe: pred(const json& data) returns false to refuse the event with `message`.
template <class P> stages validate(P pred, std::string message = "Validation failed") {
    static_assert(std::is_invocable_r_v<bool, P&, const json&>, "a validator must be callable as (const gw::json&) and return bool");
    stages s;
    s.pipes.emplace_back([p = std::move(pred), m = std::move(message)](json& data) mutable {
        if (!p(static_cast<const json&>(data))) throw ws_exception(m);
    });
    return s;
}

/// A transforming pipe: f(json& data) rewrites the payload, or throws gw::ws_exception naming what
/// was wrong.
template <class F> stages pipe(F f) {
    static_assert(std::is_invocable_v<F&, json&>, "a pipe must be callable as (gw::json&)");
    stages s;
    s.pipes.emplace_back(std::move(f));
    return s;
}

/// An interceptor: f(socket&, const event& request, const json* reply, std::chrono::nanoseconds took)
/// after the handler (reply is null when it returned nothing or threw).
template <class F> stages intercept(F f) {
    static_assert(std::is_invocable_v<F&, socket&, const event&, const json*, std::chrono::nanoseconds>,
                  "an interceptor must be callable as (gw::socket&, const gw::event&, const gw::json* reply, "
                  "std::chrono::nanoseconds took)");
    stages s;
    s.interceptors.emplace_back(std::move(f));
    return s;
}

/// An exception filter for exceptions of type E: f(const E&) returns what the client receives (a
/// gw::response, or JSON for the data of an "exception" event). Others pass to the next filter.
template <class E, class F> stages filter(F f) {
    using R = std::invoke_result_t<F&, const E&>;
    static_assert(std::is_same_v<R, response> || std::is_constructible_v<json, R>,
                  "an exception filter must be callable as (const E&) and return gw::response or gw::json");
    stages s;
    s.filters.emplace_back([f = std::move(f)](std::exception_ptr p) mutable -> std::optional<response> {
        try {
            std::rethrow_exception(p);
        } catch (const E& e) {
            if constexpr (std::is_same_v<R, response>) return f(e);
            else return response{"exception", json(f(e))};
        } catch (...) {
            return std::nullopt;
        }
    });
    return s;
}

// ==== Gateway: handlers and hooks ====

namespace detail {

/// What a handler produced: a reply (under the request's event unless it names one), or nothing.
struct outcome {
    std::string event;   // empty: reply under the request's event name
    json data;
    std::function<std::optional<json>()> more{};   // a stream: each further reply, pulled one by one
};

/// A handler, adapted from whatever the application registered: synchronous ones run inline,
/// coroutines are spawned so a slow handler never holds up the socket's other messages.
/// A handler made callable on an event. The bool says the event's payload may be moved into the
/// handler: nothing reads it after the handler (no interceptor).
/// A handler's latency histogram (metrics::latency's buckets), updated from any worker.
struct latency_histogram {
    std::array<std::atomic<std::uint64_t>, metrics::latency::bounds.size() + 1> buckets{};
    std::atomic<std::uint64_t> nanoseconds{0};
    void record(std::chrono::nanoseconds took) noexcept {
        const double seconds = std::chrono::duration<double>(took).count();
        std::size_t i = 0;
        while (i < metrics::latency::bounds.size() && seconds > metrics::latency::bounds[i]) ++i;
        buckets[i].fetch_add(1, std::memory_order_relaxed);
        nanoseconds.fetch_add(static_cast<std::uint64_t>(took.count()), std::memory_order_relaxed);
    }
};

struct handler {
    std::shared_ptr<latency_histogram> latency = std::make_shared<latency_histogram>();
    std::function<std::optional<outcome>(socket&, event&, bool)> sync;
    std::function<asio::awaitable<std::optional<outcome>>(socket&, event&, bool)> async;
    stages around;   // this handler's own enhancers
    explicit operator bool() const noexcept { return sync || async; }
};

template <class T> struct is_awaitable : std::false_type {};
template <class T, class E> struct is_awaitable<asio::awaitable<T, E>> : std::true_type {};
template <class T> struct awaitable_value { using type = T; };
template <class T, class E> struct awaitable_value<asio::awaitable<T, E>> { using type = T; };

/// The parameter list of a non-generic callable.
template <class F, class = void> struct params { using type = void; };
template <class C, class R, class... A> struct params<R (C::*)(A...) const> { using type = std::tuple<A...>; };
template <class C, class R, class... A> struct params<R (C::*)(A...)> { using type = std::tuple<A...>; };
template <class F> struct params<F, std::void_t<decltype(&F::operator())>> : params<decltype(&F::operator())> {};

/// The payload type a handler takes second, or json when it cannot tell (a generic lambda).
template <class F> struct payload_of { using type = json; };
template <class F>
    requires requires { typename std::tuple_size<typename params<F>::type>::type; }
struct payload_of<F> {
    using args = typename params<F>::type;
    using type = std::remove_cvref_t<std::tuple_element_t<std::tuple_size_v<args> == 2 ? 1 : 0, args>>;
};

/// Calls a handler with the socket and the payload converted to what it takes (the whole event,
/// for a catch-all).
template <bool WholeEvent, class F> decltype(auto) call_handler(F& f, socket& s, event& e, bool take) {
    if constexpr (WholeEvent) {
        return f(s, e);
    } else if constexpr (std::is_invocable_v<F&, socket&, json&&> && std::is_invocable_v<F&, socket&, json&>) {
        // A payload by value: moved in rather than copied when nothing reads it afterwards.
        return take ? f(s, std::move(e.data)) : f(s, e.data);
    } else if constexpr (std::is_invocable_v<F&, socket&, json&>) {
        return f(s, e.data);
    } else if constexpr (std::is_invocable_v<F&, socket&>) {
        return f(s);
    } else {
        using P = typename payload_of<F>::type;
        return f(s, e.data.template get<P>());   // a failed conversion throws json::exception
    }
}

template <class T> struct is_stream : std::false_type {};
template <class T> struct is_stream<stream<T>> : std::true_type {};

template <class R> std::optional<outcome> to_outcome(R&& r) {
    if constexpr (is_stream<std::remove_cvref_t<R>>::value)
        return outcome{{}, nullptr, [st = std::make_shared<std::remove_cvref_t<R>>(std::move(r))]() -> std::optional<json> {
                           auto v = st->next();
                           if (!v) return std::nullopt;
                           return json(std::move(*v));
                       }};
    else if constexpr (std::is_same_v<std::remove_cvref_t<R>, response>)
        return outcome{std::move(r.event), std::move(r.data)};
    else
        return outcome{{}, json(std::forward<R>(r))};
}

template <bool WholeEvent = false, class F> handler make_handler(F f);

template <bool WholeEvent = false, class F> handler make_handler(decorated<F> d) {
    handler h = make_handler<WholeEvent>(std::move(d.handler));
    h.around = std::move(d.around) | std::move(h.around);
    return h;
}

template <bool WholeEvent, class F> handler make_handler(F f) {
    using P = typename payload_of<F>::type;
    static_assert(WholeEvent || std::is_invocable_v<F&, socket&, json&> || std::is_invocable_v<F&, socket&> ||
                      std::is_invocable_v<F&, socket&, P>,
                  "a gateway handler must be callable as (gw::socket&), (gw::socket&, gw::json) or "
                  "(gw::socket&, T) with T convertible from JSON, and return void, a value convertible to "
                  "gw::json, a gw::response, a gw::stream, or an asio::awaitable of one of those");
    using R = decltype(call_handler<WholeEvent>(f, std::declval<socket&>(), std::declval<event&>(), true));
    handler h;
    if constexpr (is_awaitable<R>::value) {
        using V = typename awaitable_value<R>::type;
        static_assert(std::is_void_v<V> || std::is_same_v<V, response> || std::is_constructible_v<json, V>,
                      "a gateway handler's awaitable must yield void, a gw::response or a value convertible to gw::json");
        h.async = [f = std::move(f)](socket& s, event& e, bool take) mutable -> asio::awaitable<std::optional<outcome>> {
            if constexpr (std::is_void_v<V>) {
                co_await call_handler<WholeEvent>(f, s, e, take);
                co_return std::nullopt;
            } else {
                co_return to_outcome(co_await call_handler<WholeEvent>(f, s, e, take));
            }
        };
    } else {
        static_assert(std::is_void_v<R> || std::is_same_v<std::remove_cvref_t<R>, response> ||
                          is_stream<std::remove_cvref_t<R>>::value || std::is_constructible_v<json, R>,
                      "a gateway handler must return void, a gw::response, a value convertible to gw::json, "
                      "or an asio::awaitable of one of those");
        h.sync = [f = std::move(f)](socket& s, event& e, bool take) mutable -> std::optional<outcome> {
            if constexpr (std::is_void_v<R>) {
                call_handler<WholeEvent>(f, s, e, take);
                return std::nullopt;
            } else {
                return to_outcome(call_handler<WholeEvent>(f, s, e, take));
            }
        };
    }
    return h;
}

/// A lifecycle hook: a plain callable returning void or asio::awaitable<void>.
template <class... A> using hook = std::function<asio::awaitable<void>(A...)>;

template <class... A, class F> hook<A...> make_hook(F f) {
    static_assert(std::is_invocable_v<F&, A...>, "a hook must be callable with the arguments of its event");
    using R = std::invoke_result_t<F&, A...>;
    static_assert(std::is_void_v<R> || std::is_same_v<R, asio::awaitable<void>>,
                  "a hook must return void or asio::awaitable<void>");
    if constexpr (std::is_void_v<R>)
        return [f = std::move(f)](A... a) mutable -> asio::awaitable<void> {
            f(a...);
            co_return;
        };
    else
        return f;
}

/// The exception event's data for what a handler threw: a ws_exception's own data, a conversion
/// failure named, anything else "Internal server error" (its text never reaches the client).
inline json exception_data(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const ws_exception& x) {
        return x.data();
    } catch (const json::exception& x) {
        std::string what = x.what();
        if (auto at = what.find("] "); at != std::string::npos) what.erase(0, at + 2);   // nlohmann's tag
        return {{"status", "error"}, {"message", "invalid payload: " + what}};
    } catch (...) {
        return {{"status", "error"}, {"message", "Internal server error"}};
    }
}

/// The enhancers of one call: the gateway's, the namespace's and the handler's own. Guards and
/// pipes run outermost first (as NestJS runs global, then controller, then route); interceptors and
/// filters innermost first.
struct call_stages {
    const stages* levels[3];

    /// Throws "Forbidden resource" when a guard denies.
    void guard(socket& s, const event& e) const {
        for (const auto* l : levels)
            for (const auto& g : l->guards)
                if (!g(s, e)) throw ws_exception("Forbidden resource");
    }
    void pipe(event& e) const {
        for (const auto* l : levels)
            for (const auto& p : l->pipes) p(e.data);
    }
    /// True when an interceptor will see the event after its handler.
    bool observed() const noexcept {
        return std::any_of(std::begin(levels), std::end(levels), [](const stages* l) { return !l->interceptors.empty(); });
    }
    void after(socket& s, const event& e, const json* reply, std::chrono::nanoseconds took) const {
        for (int i = 2; i >= 0; --i)
            for (const auto& f : levels[i]->interceptors) f(s, e, reply, took);
    }
    response failure(std::exception_ptr p) const {
        for (int i = 2; i >= 0; --i)
            for (const auto& f : levels[i]->filters)
                if (auto r = f(p)) return std::move(*r);
        return response{"exception", exception_data(p)};
    }
};

struct gateway_state;

/// One worker's part of a namespace: the sockets it serves and their rooms. Only that worker's
/// thread touches it, so joining, leaving and emitting take no lock; a cache line of its own keeps
/// workers from slowing each other down.
struct alignas(64) shard {
    std::unordered_map<std::string_view, socket*> sockets;   // by id
    std::unordered_map<std::string, std::vector<socket*>> rooms;
};

/// A namespace: its handlers, hooks and middleware (set up before the loops run, read-only after),
/// and per worker its sockets and rooms.
struct namespace_state {
    std::string path;
    gateway_state* owner = nullptr;
    std::unordered_map<std::string, handler> handlers;
    handler catch_all;   // events with no handler of their own
    stages around;       // enhancers of every handler in the namespace
    std::vector<std::function<std::optional<http_response>(http_request&)>> middleware;
    std::vector<hook<socket&>> on_connect;
    std::vector<hook<socket&, std::string_view>> on_disconnect;
    std::vector<hook<socket&>> on_drain;
    std::optional<overflow> slow_consumer;   // else the server's options.slow_consumer
    std::vector<shard> shards;   // one per worker
    std::atomic<std::size_t> connected{0};   // on every worker: changes per connection, not per message
    std::atomic<std::size_t> room_count{0};  // rooms with members, summed over workers

    void join(socket& s, const std::string& room);
    void leave(socket& s, const std::string& room);
};

struct gateway_state : std::enable_shared_from_this<gateway_state> {
    explicit gateway_state(asio::io_context& io_) : io(io_) {}
    asio::io_context& io;
    std::unique_ptr<server> srv;   // made once the routing hook can point back here
    std::vector<asio::io_context*> loops;   // the server's workers; loop 0 is io
    std::unique_ptr<codec> wire = std::make_unique<nest_codec>();
    std::vector<std::unique_ptr<namespace_state>> spaces;
    std::vector<hook<>> on_init;
    stages around;   // enhancers of every handler in every namespace
    std::size_t max_rooms = 1000;          // options.max_rooms_per_socket
    double rate = 0, burst = 0;            // options.message_rate and message_burst (resolved)
    bool close_over_rate = false;
    std::function<void(log_level, std::string_view)> log;

    /// The worker whose loop runs on this thread; with one worker, that one whatever the thread
    /// (an application with one loop may call from outside it before it runs).
    std::optional<std::size_t> current() const noexcept {
        if (loops.size() == 1) return 0;
        for (std::size_t w = 0; w < loops.size(); ++w)
            if (loops[w]->get_executor().running_in_this_thread()) return w;
        return std::nullopt;
    }

    /// The namespace for a request path: an exact path first, then patterns ending in '*'.
    namespace_state* find(std::string_view path) const {
        for (const auto& ns : spaces)
            if (ns->path == path) return ns.get();
        for (const auto& ns : spaces)
            if (ns->path.ends_with('*') && path.starts_with(std::string_view(ns->path).substr(0, ns->path.size() - 1)))
                return ns.get();
        return nullptr;
    }
};

} // namespace detail

inline const std::string& socket::nsp() const noexcept { return ns_.path; }
inline void socket::join(const std::string& room) { ns_.join(*this, room); }
inline void socket::leave(const std::string& room) { ns_.leave(*this, room); }

inline void detail::namespace_state::join(socket& s, const std::string& room) {
    if (s.gone_ || s.in(room)) return;   // a handler still running after its client left joins nothing
    if (room == s.id_) {
        s.in_own_room_ = true;
        return;
    }
    if (s.rooms_.size() >= owner->max_rooms) throw ws_exception("Too many rooms");
    s.rooms_.push_back(room);
    auto& members = shards[s.worker_].rooms[room];
    if (members.empty()) room_count.fetch_add(1, std::memory_order_relaxed);
    members.push_back(&s);
}

inline void detail::namespace_state::leave(socket& s, const std::string& room) {
    if (room == s.id_) {
        s.in_own_room_ = false;
        return;
    }
    auto it = std::find(s.rooms_.begin(), s.rooms_.end(), room);
    if (it == s.rooms_.end()) return;
    s.rooms_.erase(it);
    auto& rooms = shards[s.worker_].rooms;
    auto r = rooms.find(room);
    std::erase(r->second, &s);
    if (r->second.empty()) {
        rooms.erase(r);
        room_count.fetch_sub(1, std::memory_order_relaxed);
    }
}

inline void socket::send_event(std::string_view event, const json& data, const json& id, std::int64_t ack) {
    std::string text = ns_.owner->wire->encode(event, data, id, ack);
    if (conn_.state().on_own_thread()) {
        conn_.state().send_frame(opcode::text, std::move(text));
        return;
    }
    asio::post(conn_.handle.get_executor(), [c = detail::access::state(conn_.handle), text = std::move(text)]() mutable {
        if (c->close_sent_ || c->ended_ || c->broken_) return;   // gone meanwhile, as a broadcast would skip it
        c->send_frame(opcode::text, std::move(text));
    });
}

inline void socket::answer(const event& request, detail::outcome&& out) {
    if (!connected()) return;   // the client left while its handler ran
    send_event(out.event.empty() ? request.name : out.event, out.data, request.id);
}

inline void socket::answer_exception(const json& data, const json& id) {
    if (connected()) send_event("exception", data, id);
}

inline target socket::to(std::string room) const {
    target t;
    t.spaces_.push_back(&ns_);
    t.rooms_.push_back(std::move(room));
    t.except_sockets_.push_back(this);
    return t;
}

inline target socket::broadcast() const {
    target t;
    t.spaces_.push_back(&ns_);
    t.except_sockets_.push_back(this);
    return t;
}

inline target target::except(const socket& s) && {
    except_sockets_.push_back(&s);
    return std::move(*this);
}

namespace detail {

/// The sockets of one worker that a target names: the union of its rooms (every socket of the
/// namespaces when it names none), each reached once, less excepted rooms and what skip() says.
template <class Skip, class F>
void walk_recipients(const std::vector<namespace_state*>& spaces, const std::vector<std::string>& rooms,
                     const std::vector<std::string>& except_rooms, std::size_t worker, Skip&& skip, F&& f) {
    auto excluded = [&](const socket* s) {
        if (skip(s)) return true;
        for (const auto& r : except_rooms)
            if (s->in(r)) return true;
        return false;
    };
    for (auto* ns : spaces) {
        const shard& here = ns->shards[worker];
        if (rooms.empty()) {
            for (auto& entry : here.sockets)
                if (!excluded(entry.second)) f(*entry.second);
            continue;
        }
        // A socket in several of the rooms is reached once, from the first.
        for (std::size_t i = 0; i < rooms.size(); ++i) {
            auto reach = [&](socket* s) {
                bool earlier = false;
                for (std::size_t j = 0; j < i && !earlier; ++j) earlier = s->in(rooms[j]);
                if (!earlier && !excluded(s)) f(*s);
            };
            if (auto own = here.sockets.find(rooms[i]); own != here.sockets.end() && own->second->in(rooms[i]))
                reach(own->second);   // the room named by a socket's id
            if (auto r = here.rooms.find(rooms[i]); r != here.rooms.end())
                for (socket* s : r->second) reach(s);
        }
    }
}

/// A target as any thread may use it: excepted sockets by worker and id, since a pointer to
/// another worker's socket may dangle by the time that worker looks.
struct selection {
    std::vector<namespace_state*> spaces;
    std::vector<std::string> rooms, except_rooms;
    std::vector<std::pair<std::size_t, std::string>> except_ids;
    std::shared_ptr<const std::string> frame;   // what emit() sends
    bool droppable = false;                     // target::volatile_()
    std::shared_ptr<const gateway_state> keep;  // the namespaces outlive a delivery still queued

    template <class F> void for_each(std::size_t worker, F&& f) const {
        auto skip = [&](const socket* s) {
            for (const auto& [w, id] : except_ids)
                if (w == worker && s->id() == id) return true;
            return false;
        };
        walk_recipients(spaces, rooms, except_rooms, worker, skip, f);
    }
};

/// Runs visit(w) on every worker w: at once on this thread's, by a hop there and back for the others.
template <class F> asio::awaitable<void> visit_workers(const gateway_state& g, F visit) {
    const auto here = g.current();
    for (std::size_t w = 0; w < g.loops.size(); ++w) {
        if (here == w) {
            visit(w);
            continue;
        }
        auto hop = [&visit, w]() -> asio::awaitable<void> {
            visit(w);
            co_return;
        };
        co_await asio::co_spawn(*g.loops[w], std::move(hop), asio::use_awaitable);
    }
}

} // namespace detail

template <class F> void target::for_each_recipient(std::size_t worker, F&& f) const {
    auto skip = [&](const socket* s) {
        return std::find(except_sockets_.begin(), except_sockets_.end(), s) != except_sockets_.end();
    };
    detail::walk_recipients(spaces_, rooms_, except_rooms_, worker, skip, f);
}

inline std::shared_ptr<detail::selection> target::select() const {
    auto sel = std::make_shared<detail::selection>();
    sel->spaces = spaces_;
    sel->rooms = rooms_;
    sel->except_rooms = except_rooms_;
    for (const socket* s : except_sockets_) sel->except_ids.emplace_back(s->worker_, s->id_);
    if (!spaces_.empty()) sel->keep = spaces_.front()->owner->shared_from_this();
    return sel;
}

namespace detail {

inline asio::awaitable<std::size_t> count_selected(std::shared_ptr<const selection> sel) {
    std::size_t n = 0;
    auto visit = [&sel, &n](std::size_t w) { sel->for_each(w, [&n](socket&) { ++n; }); };
    if (!sel->spaces.empty()) co_await visit_workers(*sel->spaces.front()->owner, visit);
    co_return n;
}

inline asio::awaitable<std::vector<std::string>> ids_selected(std::shared_ptr<const selection> sel) {
    std::vector<std::string> out;
    auto visit = [&sel, &out](std::size_t w) { sel->for_each(w, [&out](socket& s) { out.push_back(s.id()); }); };
    if (!sel->spaces.empty()) co_await visit_workers(*sel->spaces.front()->owner, visit);
    co_return out;
}

} // namespace detail

// The selection is taken now, so the target may be a temporary gone before the awaitable runs.
inline asio::awaitable<std::size_t> target::count() const { return detail::count_selected(select()); }
inline asio::awaitable<std::vector<std::string>> target::ids() const { return detail::ids_selected(select()); }

inline asio::awaitable<void> target::emit(std::string_view event, const json& data) const {
    if (spaces_.empty()) return detail::done();
    const detail::gateway_state& g = *spaces_.front()->owner;
    // Serialized and framed once; every recipient's outbox, on every worker, shares these bytes.
    std::string text = g.wire->encode(event, data, nullptr, 0);
    auto frame = std::make_shared<std::string>();
    frame->resize(detail::max_frame_header);
    frame->resize(detail::encode_header(reinterpret_cast<unsigned char*>(frame->data()), opcode::text, true, text.size()));
    frame->append(text);
    std::shared_ptr<const std::string> shared = std::move(frame);
    const auto here = g.current();
    std::shared_ptr<const detail::selection> away;   // one copy of the target for all other workers
    for (std::size_t w = 0; w < g.loops.size(); ++w) {
        if (here == w) {
            for_each_recipient(w, [&](socket& s) { s.conn_.state().send_shared(shared, droppable_); });
            continue;
        }
        if (!away) {
            auto sel = select();
            sel->frame = shared;
            sel->droppable = droppable_;
            away = std::move(sel);
        }
        asio::post(*g.loops[w], [away, w] {
            away->for_each(w, [&](socket& s) { s.conn_.state().send_shared(away->frame, away->droppable); });
        });
    }
    return detail::done();
}

// ==== Gateway: namespaces and the facade ====

/// A namespace of a gateway (app.of("/chat")): register handlers, hooks and middleware; emit to its
/// sockets and rooms. A cheap handle; the gateway owns the namespace.
class namespace_ref {
public:
    /// Subscribes a handler to an event. Its return value is the reply: {"event": event, "data":
    /// value} plus the request's "id"; a gw::response names the reply's event; void sends nothing.
    template <class F> namespace_ref& on(std::string event, F handler) {
        ns_->handlers[std::move(event)] = detail::make_handler(std::move(handler));
        return *this;
    }
    /// Receives every event that has no handler of its own: (gw::socket&, const gw::event&).
    template <class F> namespace_ref& on_any(F handler) {
        static_assert(std::is_invocable_v<F&, socket&, event&>,
                      "a catch-all handler must be callable as (gw::socket&, gw::event&)");
        ns_->catch_all = detail::make_handler<true>(std::move(handler));
        return *this;
    }
    /// Runs on every upgrade request for this namespace, in order, before any WebSocket exists:
    /// (gw::http_request&) may read the path, query, headers, cookies and remote address, attach data
    /// with request.attachment (it becomes socket.data()), and refuse by returning a gw::http_response
    /// (std::optional) or throwing gw::http_refusal.
    template <class F> namespace_ref& use(F middleware) {
        static_assert(std::is_invocable_v<F&, http_request&>, "middleware must be callable as (gw::http_request&)");
        using R = std::invoke_result_t<F&, http_request&>;
        static_assert(std::is_void_v<R> || std::is_convertible_v<R, std::optional<http_response>>,
                      "middleware must return void or std::optional<gw::http_response>");
        if constexpr (std::is_void_v<R>)
            ns_->middleware.emplace_back([f = std::move(middleware)](http_request& r) mutable -> std::optional<http_response> {
                f(r);
                return std::nullopt;
            });
        else
            ns_->middleware.emplace_back(std::move(middleware));
        return *this;
    }
    /// After a socket connects: (gw::socket&), returning void or asio::awaitable<void>. It may
    /// refuse the socket with co_await socket.disconnect(code, reason).
    template <class F> namespace_ref& on_connect(F hook) {
        ns_->on_connect.push_back(detail::make_hook<socket&>(std::move(hook)));
        return *this;
    }
    /// Once per socket, when it has gone: (gw::socket&, std::string_view reason), with its rooms
    /// still visible (ns.count() no longer includes it).
    template <class F> namespace_ref& on_disconnect(F hook) {
        if constexpr (std::is_invocable_v<F&, socket&, std::string_view>)
            ns_->on_disconnect.push_back(detail::make_hook<socket&, std::string_view>(std::move(hook)));
        else
            ns_->on_disconnect.push_back(detail::make_hook<socket&, std::string_view>(
                [f = std::move(hook)](socket& s, std::string_view) mutable { return f(s); }));
        return *this;
    }

    /// When a socket's outbox, having passed options.outbox_high_water, drains below it:
    /// (gw::socket&), returning void or asio::awaitable<void>. Runs on the socket's worker.
    template <class F> namespace_ref& on_drain(F hook) {
        ns_->on_drain.push_back(detail::make_hook<socket&>(std::move(hook)));
        return *this;
    }
    /// What a message meets beyond options.max_outbox_bytes on this namespace's sockets, instead of
    /// options.slow_consumer: gw::overflow::close (1008 "slow consumer") or gw::overflow::drop.
    namespace_ref& slow_consumer(overflow policy) {
        ns_->slow_consumer = policy;
        return *this;
    }

    /// Enhancers for every handler of this namespace, registered or to come.
    namespace_ref& apply(stages around) {
        ns_->around = std::move(ns_->around) | std::move(around);
        return *this;
    }

    /// Everyone in the namespace.
    asio::awaitable<void> emit(std::string_view event, const json& data = nullptr) const { return all().emit(event, data); }
    /// Everyone in a room (add rooms and exceptions to the target).
    target to(std::string room) const { return all().to(std::move(room)); }
    /// The sockets connected now, on every worker. (A room's: co_await ns.to(room).count().)
    std::size_t count() const noexcept { return ns_->connected.load(std::memory_order_relaxed); }
    /// The socket with this id on the calling thread's worker (any socket when workers is 1), or
    /// nullptr. ns.to(id) reaches a socket on any worker.
    socket* find(std::string_view id) const {
        const auto w = ns_->owner->current();
        if (!w) return nullptr;
        auto& sockets = ns_->shards[*w].sockets;
        auto it = sockets.find(id);
        return it == sockets.end() ? nullptr : it->second;
    }
    const std::string& path() const noexcept { return ns_->path; }

private:
    friend class gateway;
    explicit namespace_ref(detail::namespace_state* ns) : ns_(ns) {}
    target all() const {
        target t;
        t.spaces_.push_back(ns_);
        return t;
    }
    detail::namespace_state* ns_;
};


/// Thrown by handshake middleware to refuse an upgrade with an HTTP status and body.
class http_refusal : public std::runtime_error {
public:
    explicit http_refusal(int status, std::string body = {})
        : std::runtime_error("upgrade refused with " + std::to_string(status)), response_{status, std::move(body)} {}
    const http_response& response() const noexcept { return response_; }

private:
    http_response response_;
};

/// A realtime gateway, as NestJS's: namespaces of event handlers, rooms, lifecycle hooks and
/// handshake middleware over gateway.hpp's WebSocket server. Listens when constructed; starts
/// serving (on_init first) once its io_context runs.
class gateway {
public:
    gateway(asio::io_context& io, options opts = {}) : st_(std::make_shared<detail::gateway_state>(io)) {
        if (opts.message_rate < 0 || opts.message_burst < 0)
            throw std::invalid_argument("gw::gateway: options.message_rate and message_burst must not be negative");
        st_->max_rooms = opts.max_rooms_per_socket;
        st_->rate = opts.message_rate;
        st_->burst = opts.message_burst > 0 ? std::max(opts.message_burst, 1.0) : std::max(opts.message_rate, 1.0);
        st_->close_over_rate = opts.close_over_rate;
        st_->log = opts.log;
        opts.on_upgrade = [w = std::weak_ptr<detail::gateway_state>(st_)](http_request& req) -> std::optional<http_response> {
            auto st = w.lock();
            if (!st) return http_response{503, "shutting down\n"};
            auto* ns = st->find(req.path());
            if (!ns) return http_response{404, "no namespace at this path\n"};
            try {
                for (auto& m : ns->middleware)
                    if (auto refused = m(req)) return refused;
            } catch (const http_refusal& r) {
                return r.response();
            }
            return std::nullopt;
        };
        // Each connection is served at once, on its worker, in the turn its upgrade completes: its
        // on_connect hooks have run (up to their first suspension) before another client is served.
        opts.on_connection = [w = std::weak_ptr<detail::gateway_state>(st_)](connection c) {
            auto st = w.lock();
            if (!st) return;
            detail::namespace_state* ns = st->find(c.request().path());
            const auto worker = st->current();
            if (!ns || !worker) return;
            const auto ex = c.get_executor();   // before c moves into the coroutine
            asio::co_spawn(ex, serve(st, ns, *worker, std::move(c)), [](std::exception_ptr) {});
        };
        st_->srv = std::make_unique<server>(io, std::move(opts));
        st_->loops = st_->srv->loops();
        st_->srv->st_->more_metrics = [w = std::weak_ptr<detail::gateway_state>(st_)](gw::metrics& m) {
            auto st = w.lock();
            if (!st) return;
            for (const auto& ns : st->spaces) {
                m.sockets += ns->connected.load(std::memory_order_relaxed);
                m.rooms += ns->room_count.load(std::memory_order_relaxed);
                auto add = [&](const std::string& event, const detail::handler& h) {
                    auto& l = m.handlers.emplace_back();
                    l.nsp = ns->path;
                    l.event = event;
                    for (std::size_t i = 0; i < l.buckets.size(); ++i) {
                        l.buckets[i] = h.latency->buckets[i].load(std::memory_order_relaxed);
                        l.count += l.buckets[i];
                    }
                    l.sum_seconds = static_cast<double>(h.latency->nanoseconds.load(std::memory_order_relaxed)) / 1e9;
                };
                for (const auto& [event, h] : ns->handlers) add(event, h);
                if (ns->catch_all) add("*", ns->catch_all);
            }
        };
        asio::co_spawn(io, init(st_), [](std::exception_ptr) {});
    }
    gateway(const gateway&) = delete;
    gateway& operator=(const gateway&) = delete;
    /// Stops listening and stops the worker threads; their sockets close with them.
    ~gateway() {
        if (!st_) return;
        st_->srv.reset();   // stops accepting
        // Sockets still on the application's loop go on with it alone; the others' loops are gone.
        st_->loops.resize(1);
    }

    /// The namespace at path ("/", "/chat", or a pattern such as "/tenant-*"), made on first use.
    namespace_ref of(std::string path) {
        if (path.empty() || path.front() != '/') path.insert(path.begin(), '/');
        for (auto& ns : st_->spaces)
            if (ns->path == path) return namespace_ref(ns.get());
        auto ns = std::make_unique<detail::namespace_state>();
        ns->path = std::move(path);
        ns->owner = st_.get();
        ns->shards = std::vector<detail::shard>(st_->loops.size());
        st_->spaces.push_back(std::move(ns));
        return namespace_ref(st_->spaces.back().get());
    }

    /// Once listening, before the first connection is served: () returning void or asio::awaitable<void>.
    template <class F> gateway& on_init(F hook) {
        st_->on_init.push_back(detail::make_hook<>(std::move(hook)));
        return *this;
    }

    /// The counters and gauges now, the server's and the gateway's (any thread).
    gw::metrics metrics() const { return st_->srv->metrics(); }

    /// Enhancers for every handler of every namespace.
    gateway& apply(stages around) {
        st_->around = std::move(st_->around) | std::move(around);
        return *this;
    }

    /// Everyone in every namespace.
    asio::awaitable<void> emit(std::string_view event, const json& data = nullptr) const { return all().emit(event, data); }
    /// A room in every namespace.
    target to(std::string room) const { return all().to(std::move(room)); }

    /// Serves another wire format instead of NestJS's WsAdapter format.
    void set_codec(std::unique_ptr<codec> c) { st_->wire = std::move(c); }
    std::uint16_t port() const noexcept { return st_->srv->port(); }
    /// How many event loops serve sockets (options.workers, 0 resolved to the hardware's threads).
    std::size_t workers() const noexcept { return st_->loops.size(); }
    /// Stops accepting connections at once. co_await the result to shut down gracefully: every
    /// socket is closed with 1001 "server shutting down" after what was queued for it, and the
    /// awaitable completes when on_disconnect has run for each; sockets still open after `deadline`
    /// are cut. Not awaited, connected sockets stay.
    asio::awaitable<void> stop(std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
        if (st_ && st_->srv) return st_->srv->stop(deadline);
        return detail::done();
    }
    /// Stops accepting connections, and only that: connected sockets stay.
    void stop_accepting() {
        if (st_ && st_->srv) st_->srv->stop_accepting();
    }

private:
    target all() const {
        target t;
        for (auto& ns : st_->spaces) t.spaces_.push_back(ns.get());
        return t;
    }

    static asio::awaitable<void> init(std::shared_ptr<detail::gateway_state> st) {
        for (auto& hook : st->on_init) co_await hook();
    }

    /// One socket's life: on_connect, its events in order, on_disconnect with its rooms still
    /// there, then out of every room. Between the hooks the socket is read on callbacks (see
    /// reader), so an idle socket holds no coroutine frame.
    static asio::awaitable<void> serve(std::shared_ptr<detail::gateway_state> st, detail::namespace_state* ns,
                                       std::size_t worker, connection c) {
        std::shared_ptr<socket> s = std::make_shared<made_socket>(*ns, worker, c);
        s->data_ = std::move(s->conn_.state().request_.attachment);
        ns->shards[worker].sockets.emplace(s->id(), s.get());   // which also puts it in its id-room
        ns->connected.fetch_add(1, std::memory_order_relaxed);
        auto& conn = s->conn_.state();
        if (ns->slow_consumer) conn.drop_when_full_ = *ns->slow_consumer == overflow::drop;
        if (!ns->on_drain.empty()) {
            conn.drain_context_ = s.get();
            conn.on_drain_ = [](void* p) {
                auto& sock = *static_cast<socket*>(p);
                asio::co_spawn(sock.conn_.handle.get_executor(), drained(sock.shared_from_this()), [](std::exception_ptr) {});
            };
        }
        bool hook_failed = false;
        try {
            for (auto& hook : ns->on_connect) co_await hook(*s);
        } catch (...) {
            hook_failed = true;   // an on_connect hook threw: the socket is refused with 1011
        }
        if (!hook_failed) {
            s->conn_.state().read_with(reader{st, s});
            co_return;
        }
        co_await s->disconnect(close_code::internal_error);
        co_await farewell(ns, s, "server error");
    }

    /// A socket and its control block in one allocation (the constructor is the gateway's to call).
    struct made_socket : socket {
        made_socket(detail::namespace_state& ns, std::size_t worker, const connection& c) : socket(ns, worker, c) {}
    };

    /// Hands a socket's messages to dispatch as they arrive, and its end to farewell.
    struct reader {
        std::shared_ptr<detail::gateway_state> st;
        std::shared_ptr<socket> s;
        void message(gw::message&& m) {
            if (st->rate > 0 && !within_rate(*st, *s)) return;
            dispatch(st, &s->ns_, s, std::move(m));
        }
        void end() {
            const auto ex = s->conn_.handle.get_executor();
            auto* ns = &s->ns_;
            asio::co_spawn(ex, farewell(ns, std::move(s)), [](std::exception_ptr) {});
        }
    };

    /// Takes a token from the socket's bucket; over the rate, answers or closes by policy.
    static bool within_rate(const detail::gateway_state& st, socket& s) {
        const auto now = std::chrono::steady_clock::now();
        if (s.tokens_ < 0) s.tokens_ = st.burst;
        else s.tokens_ = std::min(st.burst, s.tokens_ + std::chrono::duration<double>(now - s.tokens_at_).count() * st.rate);
        s.tokens_at_ = now;
        if (s.tokens_ >= 1) {
            s.tokens_ -= 1;
            return true;
        }
        if (st.close_over_rate) {
            if (s.connected()) {
                if (st.log) st.log(log_level::info, "closing a socket over the message rate: " + s.id());
                s.closed_by_server_ = true;
                s.conn_.state().close_soon(close_code::policy_violation, "rate limit");
            }
        } else {
            s.answer_exception({{"status", "error"}, {"message", "Too many messages"}}, nullptr);
        }
        return false;
    }

    /// Runs the namespace's on_drain hooks for a socket.
    static asio::awaitable<void> drained(std::shared_ptr<socket> s) {
        for (auto& hook : s->ns_.on_drain) {
            try {
                co_await hook(*s);
            } catch (...) {   // a failing hook does not stop the others
            }
        }
    }

    /// Finishes the connection (the closing handshake), then runs on_disconnect with the reason
    /// (computed from how it ended unless given) and takes the socket out of every room.
    static asio::awaitable<void> farewell(detail::namespace_state* ns, std::shared_ptr<socket> s, std::string reason = {}) {
        // The close frames are exchanged first and the TCP close comes after the hooks: a client
        // whose close() completed knows its on_disconnect has run (up to its first suspension).
        auto& c = s->conn_.state();
        co_await c.settle();
        c.on_drain_ = nullptr;   // the socket is leaving: no more drain hooks for it
        if (reason.empty())
            reason = c.error_ == errc::connection_lost ? "transport close"
                     : c.error_                        ? c.error_.message()
                     : c.shutting_down_                ? "server shutting down"
                     : s->closed_by_server_            ? "server disconnect"
                                                       : "client disconnect";
        s->abandon_acks();
        // No longer counted as connected (as in Socket.IO), though its rooms stay visible to the hooks.
        ns->connected.fetch_sub(1, std::memory_order_relaxed);
        for (auto& hook : ns->on_disconnect) {
            try {
                co_await hook(*s, reason);
            } catch (...) {   // a failing hook must not keep the socket in its rooms
            }
        }
        for (auto rooms = s->rooms_; const auto& room : rooms) ns->leave(*s, room);
        ns->shards[s->worker_].sockets.erase(s->id());
        s->gone_ = true;
        co_await c.conclude();
        c.receiving_ = false;
    }

    /// Decodes one message and runs its handler with the enhancers of every level. Never throws:
    /// whatever goes wrong becomes an exception event for this client.
    static void dispatch(const std::shared_ptr<detail::gateway_state>& st, detail::namespace_state* ns,
                         const std::shared_ptr<socket>& s, message m) {
        std::string error;
        auto ev = st->wire->decode(m, error);
        if (!ev) {
            s->answer_exception({{"status", "error"}, {"message", error}}, nullptr);
            return;
        }
        if (ev->ack > 0 && ev->name == "ack") {
            if (!s->acknowledge(*ev)) s->answer_exception({{"status", "error"}, {"message", "no emit waits for this ack"}}, ev->id);
            return;
        }
        auto it = ns->handlers.find(ev->name);
        const detail::handler* h = it != ns->handlers.end() ? &it->second : ns->catch_all ? &ns->catch_all : nullptr;
        if (!h) {
            s->answer_exception({{"status", "error"}, {"message", "There is no handler for event \"" + ev->name + "\""}}, ev->id);
            return;
        }
        detail::call_stages cs{{&st->around, &ns->around, &h->around}};
        if (h->async) {
            asio::co_spawn(s->conn_.handle.get_executor(), run(s, h->async, h->latency, cs, std::move(*ev)), [](std::exception_ptr) {});
            return;
        }
        const auto start = std::chrono::steady_clock::now();
        std::optional<detail::outcome> out;
        std::exception_ptr failure;
        bool admitted = false;
        try {
            cs.guard(*s, *ev);
            admitted = true;
            cs.pipe(*ev);
            out = h->sync(*s, *ev, !cs.observed());
        } catch (...) {
            failure = std::current_exception();
        }
        const auto took = std::chrono::steady_clock::now() - start;
        h->latency->record(took);
        finish(*s, cs, *ev, std::move(out), failure, admitted, took);
    }

    static asio::awaitable<void> run(std::shared_ptr<socket> s, decltype(detail::handler::async) fn,
                                     std::shared_ptr<detail::latency_histogram> latency, detail::call_stages cs, event ev) {
        const auto start = std::chrono::steady_clock::now();
        std::optional<detail::outcome> out;
        std::exception_ptr failure;
        bool admitted = false;
        try {
            cs.guard(*s, ev);
            admitted = true;
            cs.pipe(ev);
            out = co_await fn(*s, ev, !cs.observed());
        } catch (...) {
            failure = std::current_exception();
        }
        const auto took = std::chrono::steady_clock::now() - start;
        latency->record(took);
        finish(*s, cs, ev, std::move(out), failure, admitted, took);
    }

    /// Interceptors (around pipes and handler, so not when a guard denied) see the outcome; then the
    /// reply, or what the filters make of the failure, goes out.
    static void finish(socket& s, const detail::call_stages& cs, const event& ev, std::optional<detail::outcome> out,
                       std::exception_ptr failure, bool admitted, std::chrono::steady_clock::duration took) {
        try {
            if (admitted)
                cs.after(s, ev, out ? &out->data : nullptr, std::chrono::duration_cast<std::chrono::nanoseconds>(took));
        } catch (...) {
            if (!failure) failure = std::current_exception();
        }
        try {
            if (!failure && out && out->more) {
                asio::co_spawn(s.conn_.handle.get_executor(), pump(s.shared_from_this(), cs, ev, std::move(out->more)),
                               [](std::exception_ptr) {});
                return;
            }
            if (failure) answer_failure(s, cs, ev, failure);
            else if (out) s.answer(ev, std::move(*out));
        } catch (...) {   // the client left meanwhile: nothing more to tell it
        }
    }

    /// A stream's replies, one per turn of the loop, so other sockets are served meanwhile and a
    /// client that leaves is noticed: then the stream is destroyed where it stands.
    static asio::awaitable<void> pump(std::shared_ptr<socket> s, detail::call_stages cs, event ev,
                                      std::function<std::optional<json>()> more) {
        std::exception_ptr failure;
        try {
            while (s->connected()) {
                auto v = more();
                if (!v) break;
                s->answer(ev, detail::outcome{{}, std::move(*v), {}});
                co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
            }
        } catch (...) {
            failure = std::current_exception();
        }
        if (failure) {
            try {
                answer_failure(*s, cs, ev, failure);
            } catch (...) {   // the client left meanwhile
            }
        }
    }

    /// What the client receives for a failure: the filters' choice, else the exception event.
    static void answer_failure(socket& s, const detail::call_stages& cs, const event& ev, std::exception_ptr failure) {
        response r = cs.failure(failure);
        s.answer(ev, detail::outcome{std::move(r.event), std::move(r.data), {}});
    }

    std::shared_ptr<detail::gateway_state> st_;
};

#endif // GATEWAY_NO_JSON

} // namespace v0
} // namespace gw

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#endif // GATEWAY_HPP
