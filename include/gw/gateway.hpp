// gateway.hpp: realtime servers for C++20. WebSocket (RFC 6455) over Asio coroutines.
// Version 0.1.0. MIT licence.
//
// One header. Needs standalone Asio 1.22+ and OpenSSL (SHA-1 and base64 for the handshake, TLS).
// Read top to bottom: vocabulary, protocol code without sockets, the connection, the server and
// the client.

#ifndef GATEWAY_HPP
#define GATEWAY_HPP

#include "detail/version.hpp"
#include "detail/requirements.hpp"
#include "detail/knobs.hpp"
#include "detail/includes.hpp"
#include "core/vocabulary.hpp"
#include "protocol/protocol.hpp"
#include "net/connection.hpp"
#include "net/tls.hpp"
#include "net/server.hpp"
#include "net/client.hpp"
#include "gateway/codec.hpp"
#include "gateway/socket.hpp"
#include "gateway/stages.hpp"
#include "gateway/handlers.hpp"
#include "gateway/facade.hpp"

} // namespace v0
} // namespace gw

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#endif // GATEWAY_HPP
