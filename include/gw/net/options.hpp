// How a server listens and what it accepts (gw::options), and how a client connects
// (gw::client_options). Every field has a default and says why.
#pragma once
#include "../detail/asio.hpp"
#include "../core/vocabulary.hpp"
#include "../protocol/http.hpp"
#include "../protocol/deflate.hpp"
#include "http_request.hpp"

namespace gw::inline v0 {

class connection;

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
    /// permessage-deflate (RFC 7692), off by default: see gw::deflate_mode and README's
    /// "Compression". Modes other than off need the GATEWAY_DEFLATE knob.
    deflate_options deflate{};

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
    /// permessage-deflate: off (the default) offers nothing; shared offers it without context
    /// takeover on our side, dedicated with it. Needs the GATEWAY_DEFLATE knob.
    deflate_options deflate{};
};


} // namespace gw::v0
