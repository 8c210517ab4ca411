// The transport seam: what the gateway needs from a connection to a client, so that a socket never
// holds a WebSocket connection itself. A WebSocket connection is one (net/connection_impl.hpp, in
// place: a vtable pointer, no allocation); an Engine.IO session is another; the tests drive a
// namespace through one that lives in memory.
#pragma once
#include "../detail/asio.hpp"
#include "../core/vocabulary.hpp"
#include "http_request.hpp"
#include "../protocol/prepared.hpp"

namespace gw::inline v0 {

/// Where a transport hands what it reads: each message in order, then its end, once.
class transport_sink {
public:
    virtual void on_message(message&& m) = 0;
    /// Reading is over (the peer closed or failed, or the connection was lost); the transport
    /// expects settle() and release() next.
    virtual void on_end() = 0;
    /// The transport goes without an end (its server is destroyed with it open): let go of what is
    /// held, with no callbacks, so that nothing is kept alive by a cycle.
    virtual void abandon() {}

protected:
    ~transport_sink() = default;
};

/// A connection to one client as the gateway uses it. Every call but executor() and
/// on_own_thread() is made on the transport's own thread.
class transport {
public:
    virtual ~transport() = default;

    // Reading.
    /// Starts handing messages to sink, which it keeps until on_end() has run.
    virtual void start(std::shared_ptr<transport_sink> sink) = 0;

    // Sending.
    /// Queues one text message; throws std::system_error(gw::errc::closed) once closing. Beyond the
    /// transport's cap on unsent bytes, its overflow policy applies (drop, or close). compress:
    /// false keeps it uncompressed where permessage-deflate would compress it.
    virtual void send_text(std::string text, bool compress = true) = 0;
    /// Queues a message other recipients share (a broadcast), framed for this transport's kind;
    /// skipped once closing, and when droppable while above the high-water mark.
    virtual void send_prepared(const std::shared_ptr<const prepared>& p, bool droppable) = 0;
    /// Bytes queued and not yet taken by the peer, as far as this side knows.
    virtual std::size_t buffered() const noexcept = 0;
    virtual bool above_high_water() const noexcept = 0;
    /// Completes once the unsent bytes are below the high-water mark (or the transport closes).
    virtual asio::awaitable<void> drained() = 0;
    /// Called, on the transport's thread, when the unsent bytes fall below the high-water mark
    /// after being above it; nullptr to stop.
    virtual void on_drain(void (*callback)(void*), void* context) = 0;
    /// What a message meets beyond the cap on unsent bytes.
    virtual void set_overflow(overflow policy) = 0;

    // Closing.
    /// False once closing started or the connection failed: nothing more can be sent.
    virtual bool is_open() const noexcept = 0;
    /// Starts closing with code and reason and returns at once; the reader finishes the rest.
    virtual void close_soon(close_code code, std::string_view reason) = 0;
    /// Closes and completes once the closing handshake is over.
    virtual asio::awaitable<void> close(close_code code, std::string_view reason) = 0;
    /// After on_end(): completes once the closing handshake is over, with why the connection
    /// ended: "" for a normal close (whoever began it), else "transport close", "ping timeout",
    /// "server shutting down" or the error's message.
    virtual asio::awaitable<std::string> settle() = 0;
    /// The last step, after settle(): the underlying connection goes (TCP closed).
    virtual asio::awaitable<void> release() = 0;

    /// The gateway made a socket for this transport, with this id, and is about to run its
    /// on_connect hooks: Socket.IO answers the client's CONNECT here, before anything they send.
    virtual void opened(std::string_view socket_id) { (void)socket_id; }
    /// Socket.IO with connection-state recovery: the private session id under which the socket's
    /// state is kept when the transport drops; empty when it is not kept.
    virtual std::string_view session_pid() const noexcept { return {}; }

    // Where it runs and what it was opened with.
    virtual asio::any_io_executor executor() const = 0;
    /// True on the thread that runs executor() (false when it cannot tell).
    virtual bool on_own_thread() const noexcept = 0;
    /// The request the client opened it with: path, query, headers, cookies, address, attachment.
    virtual http_request& request() noexcept = 0;
};

} // namespace gw::v0
