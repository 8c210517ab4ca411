// gw::gateway_options: what the gateway decides beside the server it runs on (gw::options).
#pragma once
#include "../detail/config.hpp"
#include "../core/vocabulary.hpp"
#include "../net/engineio.hpp"
#include "recovery.hpp"

#ifndef GATEWAY_NO_JSON
namespace gw::inline v0 {

/// Connection-state recovery (Socket.IO's connectionStateRecovery): a Socket.IO socket whose
/// transport drops keeps its id, rooms and data for a while, and a client that comes back in time
/// gets them back with the broadcasts it missed. Off unless enabled.
struct recovery_options {
    bool enabled = false;
    std::chrono::milliseconds max_disconnection{120'000};   ///< how long a dropped socket's state waits
    bool skip_middlewares = true;   ///< a recovered socket does not pass the handshake middleware again
    /// Where the state waits; null: a gw::memory_session_store of the gateway's (this process only).
    std::shared_ptr<session_store> store{};
};

/// The Socket.IO platform beside NestJS's WsAdapter one: Socket.IO clients connect to the same
/// namespaces, handlers, hooks and rooms. Every field has the reference server's default.
struct socketio_options {
    bool enabled = true;   ///< Socket.IO clients at engine.path (false: WebSocket clients only)
    /// Engine.IO under it: path, heartbeat, payload limit, transports, CORS, cookie, allow_request.
    engineio::options engine{.path = "/socket.io/"};
    /// A session that joins no namespace within this is closed.
    std::chrono::milliseconds connect_timeout{45'000};
    std::size_t max_attachments = 10;   ///< binary attachments of one packet: more close the connection
    recovery_options recovery{};
};

/// The gateway's own limits, given beside the server's options: gw::gateway app{io, {.port = 8080},
/// {.message_rate = 20}}. Every field has a default.
struct gateway_options {
    std::size_t max_rooms_per_socket = 1000;   ///< joining one more throws gw::ws_exception("Too many rooms")
    /// Events per second a socket may send (a token bucket refilled at this rate); 0 (the default):
    /// no limit, since what a client may send is the application's call. Over it, over_rate decides.
    double message_rate = 0;
    double message_burst = 0;   ///< the bucket's size: events allowed at once; 0 means message_rate's worth (one second)
    /// An event over the rate: overflow::drop (the default) drops it and answers with an exception
    /// ("Too many messages"), so a client learns why; overflow::close closes the socket with 1008
    /// "rate limit".
    overflow over_rate = overflow::drop;
    socketio_options socketio{};   ///< the Socket.IO platform (on by default, at /socket.io/)
};

} // namespace gw::v0
#endif
