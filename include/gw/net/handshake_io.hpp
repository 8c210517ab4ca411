// The handshake's I/O, shared by the server and the client: reading an HTTP head, and answering
// a refused request without losing the answer to a reset.
#pragma once
#include "../detail/asio.hpp"
#include "../protocol/http.hpp"
#include "../core/metrics.hpp"
#include "connection_impl.hpp"

namespace gw::inline v0::detail {

/// Writes a plain HTTP answer, shuts the send side and reads until the peer closes (or the
/// handshake deadline closes the socket), so the answer is not lost to a reset.
inline asio::awaitable<void> refuse(connection_impl& c, const http_response& r) {
    const std::string text = format_response(r);
    co_await c.write_raw(text);
    co_await c.linger(true);
}

/// Writes a plain HTTP answer on a connection that stays open for the client's next request.
/// Returns false when the write failed (the peer went).
inline asio::awaitable<bool> respond(connection_impl& c, const http_response& r) {
    const std::string text = format_response(r, true);
    co_return !co_await c.write_raw(text);
}

/// Makes an accepted handshake's connection a WebSocket: the 101 goes first in its outbox (the
/// connection is handed over at once, and whatever is sent follows it on the wire), and frames
/// that came in the same read as the request are read.
inline void start_websocket(connection_impl& c, std::string switching, std::string_view rest) {
    out_frame f;
    f.payload = std::move(switching);
    c.push(std::move(f));   // before upgraded_: the 101 is not a message
    c.upgraded_ = true;
    if (c.server_) {
        c.ping_at_ = c.active_at_ = c.server_->loops[c.loop_].now;
        c.server_->handshakes.accepted.fetch_add(1, std::memory_order_relaxed);
    }
    c.consume_early(rest);
}

/// An HTTP endpoint mounted on a server under a path prefix, which takes the requests whose path
/// starts with it, keep-alive connections and upgrades included (Engine.IO's).
class http_mount {
public:
    virtual ~http_mount() = default;
    /// Answers the request in c.request_ (rest: bytes read after its head, which the mount may take
    /// as its body; what it leaves is the next request's). Returns true when the connection is to
    /// read another request, false when the mount kept it (an upgrade) or it is to close.
    /// full: 0, or the server's connection limits' refusal.
    virtual asio::awaitable<bool> serve(std::shared_ptr<connection_impl> c, std::string& rest, int full) = 0;
    /// The loop that owns what the request is about (an Engine.IO session), when that is known.
    virtual std::optional<std::uint32_t> home_of(const http_request& req) = 0;
    /// The server shuts down: what the mount keeps open (sessions between requests) closes.
    virtual void shut_down() = 0;
    /// The server is destroyed, its loops stopped: what the mount holds is let go (no callbacks).
    virtual void forget_all() = 0;
    /// Adds the mount's counters and gauges.
    virtual void read(gw::metrics& m) const = 0;
    /// Requests whose path starts with this are the mount's.
    std::string prefix;
};

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

} // namespace gw::v0::detail
