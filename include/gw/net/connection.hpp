// gw::connection: the public handle of a WebSocket connection, server or client side, with the
// awaitables receive, send, ping and close.
#pragma once
#include "../detail/asio.hpp"
#include "../core/errors.hpp"
#include "../core/vocabulary.hpp"
#include "connection_impl.hpp"
#include "http_request.hpp"
#include "options.hpp"

namespace gw::inline v0 {

class server;
namespace detail { struct access; }
asio::awaitable<connection> connect(std::string_view url, client_options opts);


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
            if (s->ended()) {
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
            s->take(ec);
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
        co_await s->close(code, reason);
    }

    /// False once the closing handshake started or the connection failed.
    bool is_open() const noexcept { return impl_ && impl_->can_send(); }
    /// The code of the peer's close frame: 1005 when it had none, 1006 while none has come.
    std::uint16_t peer_close_code() const noexcept { return impl_ ? impl_->peer_code_ : 1006; }
    /// The reason in the peer's close frame.
    std::string_view peer_close_reason() const noexcept { return impl_ ? impl_->peer_reason() : std::string_view(); }
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


namespace detail {
/// Lets the gateway reach a connection as its transport; not for applications.
struct access {
    static std::shared_ptr<transport> transport_of(const connection& c) { return c.impl(); }
};
} // namespace detail

} // namespace gw::v0
