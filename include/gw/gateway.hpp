// gateway.hpp: realtime servers for C++20. WebSocket (RFC 6455) over Asio coroutines, and a
// NestJS-style gateway of namespaces, events, rooms, hooks and enhancer stages on top.
// Version 0.1.0. MIT licence.
//
// Needs standalone Asio 1.22+ and OpenSSL (SHA-1 and base64 for the handshake, TLS); the gateway
// also needs nlohmann/json (or define GATEWAY_NO_JSON for the WebSocket core alone).
//
// This umbrella's include order is the reading order, the data path read downward once:
// the vocabulary; the protocol without sockets; one connection (reader, writer, close), the server
// and the client; then the gateway: its words and codec, sockets and targets, stages and
// handlers, its state, broadcast, the per-socket event loop, and the facade.

#ifndef GATEWAY_HPP
#define GATEWAY_HPP

#include "detail/config.hpp"

#include "core/errors.hpp"
#include "core/vocabulary.hpp"
#include "core/metrics.hpp"

#include "protocol/text.hpp"
#include "protocol/utf8.hpp"
#include "protocol/ws_frame.hpp"
#include "protocol/http.hpp"
#include "protocol/ws_handshake.hpp"
#include "protocol/deflate.hpp"
#include "protocol/json_fast.hpp"
#include "protocol/prepared.hpp"
#include "protocol/engineio.hpp"

#include "detail/asio.hpp"
#include "net/http_request.hpp"
#include "net/options.hpp"
#include "net/outbox.hpp"
#include "net/server_context.hpp"
#include "net/transport.hpp"
#include "net/connection_impl.hpp"
#include "net/connection.hpp"
#include "net/handshake_io.hpp"
#include "net/tls.hpp"
#include "net/server.hpp"
#include "net/client.hpp"
#include "net/engineio.hpp"

#include "detail/json.hpp"
#include "protocol/socketio_redis.hpp"
#include "gateway/options.hpp"
#include "gateway/vocabulary.hpp"
#include "gateway/codec.hpp"
#include "gateway/adapter.hpp"
#include "gateway/target.hpp"
#include "gateway/socket.hpp"
#include "gateway/stages.hpp"
#include "gateway/handlers.hpp"
#include "gateway/state.hpp"
#include "gateway/local_adapter.hpp"
#include "gateway/recovery.hpp"
#include "gateway/dispatch.hpp"
#include "gateway/socketio.hpp"
#include "gateway/facade.hpp"

// Opt-in parts that need another library.
#if defined(GATEWAY_REDIS)
#include "protocol/redis.hpp"
#include "redis/client.hpp"
#include "redis/shards.hpp"
#include "redis/forward.hpp"
#include "redis/adapter.hpp"
#include "redis/emitter.hpp"
#endif

#include "detail/epilogue.hpp"

#endif // GATEWAY_HPP
