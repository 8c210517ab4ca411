// A server's counters and gauges, and their Prometheus text.
#pragma once
#include "../detail/config.hpp"

namespace gw::inline v0 {

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
    // permessage-deflate, this process's (every server in it; zero without GATEWAY_DEFLATE):
    std::uint64_t deflate_connections = 0;     ///< gauge: connections that agreed permessage-deflate
    std::uint64_t deflate_streams = 0;         ///< gauge: zlib streams held (per connection, and each thread's shared ones)
    std::uint64_t deflate_memory_bytes = 0;    ///< gauge: bytes those streams hold
    // Engine.IO's (Socket.IO's connections; zero without it):
    std::uint64_t engineio_sessions = 0;       ///< gauge: sessions open
    std::uint64_t engineio_polling = 0;        ///< gauge: of those, on long-polling now (the rest: WebSocket)
    std::uint64_t engineio_upgrades = 0;       ///< sessions moved from polling to a WebSocket
    std::uint64_t engineio_ping_timeouts = 0;  ///< sessions ended for a late pong
    // The gateway's (zero for a plain server):
    std::uint64_t sockets = 0;                 ///< gauge: sockets in every namespace
    std::uint64_t socketio_sockets = 0;        ///< gauge: of those, Socket.IO clients' (the rest: WsAdapter's)
    std::uint64_t rooms = 0;                   ///< gauge: rooms with members, per worker and namespace, id-rooms aside
    /// Handler latency (guards, pipes and handler, until the reply is queued) per event.
    /// A cluster (gw::redis::cluster), when the gateway is in one.
    bool cluster = false;
    bool cluster_connected = false;            ///< gauge: both Redis links up
    std::uint64_t cluster_published = 0;       ///< messages published to Redis
    std::uint64_t cluster_received = 0;        ///< messages received from Redis
    std::uint64_t cluster_dropped = 0;         ///< publishes dropped while Redis was away (over the buffer)
    std::uint64_t cluster_reconnects = 0;      ///< Redis connections made again after a loss
    std::uint64_t cluster_timeouts = 0;        ///< cluster-wide requests that returned partial results
    std::uint64_t cluster_forwarded = 0;       ///< Engine.IO polling requests sent to their session's node
    std::uint64_t cluster_forwards_served = 0; ///< polling requests of other nodes run here
    std::uint64_t cluster_forwards_unanswered = 0;   ///< forwarded, no node had the session in time (400)
    std::uint64_t cluster_forwards_refused = 0;      ///< forwarded requests over max_forwarded (503)
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
    one("deflate_connections", "gauge", "Connections that agreed permessage-deflate (this process).", m.deflate_connections);
    one("deflate_streams", "gauge", "zlib streams held (this process).", m.deflate_streams);
    one("deflate_memory_bytes", "gauge", "Bytes zlib streams hold (this process).", m.deflate_memory_bytes);
    one("engineio_sessions", "gauge", "Engine.IO sessions open.", m.engineio_sessions);
    one("engineio_polling_sessions", "gauge", "Engine.IO sessions on long-polling.", m.engineio_polling);
    one("engineio_upgrades_total", "counter", "Engine.IO sessions upgraded from polling to WebSocket.", m.engineio_upgrades);
    one("engineio_ping_timeouts_total", "counter", "Engine.IO sessions ended for a late pong.", m.engineio_ping_timeouts);
    one("sockets", "gauge", "Gateway sockets in every namespace.", m.sockets);
    one("socketio_sockets", "gauge", "Gateway sockets of Socket.IO clients.", m.socketio_sockets);
    one("rooms", "gauge", "Gateway rooms with members (per worker and namespace; id-rooms aside).", m.rooms);
    if (m.cluster) {
        one("cluster_connected", "gauge", "1 when both Redis links of the cluster are up.", m.cluster_connected ? 1 : 0);
        one("cluster_published_total", "counter", "Messages published to the cluster.", m.cluster_published);
        one("cluster_received_total", "counter", "Messages received from the cluster.", m.cluster_received);
        one("cluster_dropped_total", "counter", "Publishes dropped while Redis was away.", m.cluster_dropped);
        one("cluster_reconnects_total", "counter", "Redis connections made again after a loss.", m.cluster_reconnects);
        one("cluster_timeouts_total", "counter", "Cluster-wide requests that returned partial results.", m.cluster_timeouts);
        one("cluster_forwarded_total", "counter", "Engine.IO polling requests forwarded to their session's node.", m.cluster_forwarded);
        one("cluster_forwards_served_total", "counter", "Engine.IO polling requests of other nodes served here.", m.cluster_forwards_served);
        one("cluster_forwards_unanswered_total", "counter", "Forwarded polling requests no node answered for (400).",
            m.cluster_forwards_unanswered);
        one("cluster_forwards_refused_total", "counter", "Forwarded polling requests over max_forwarded (503).", m.cluster_forwards_refused);
    }
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


} // namespace gw::v0
