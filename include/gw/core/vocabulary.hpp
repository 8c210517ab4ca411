
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

