// gw::gateway_options: what the gateway decides beside the server it runs on (gw::options).
#pragma once
#include "../detail/config.hpp"
#include "../core/vocabulary.hpp"

namespace gw::inline v0 {

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
};

} // namespace gw::v0
