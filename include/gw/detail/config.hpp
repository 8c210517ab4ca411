// What every part needs first: the version, the language check, the build-time knobs and the
// standard and OpenSSL headers. No Asio here: protocol/ builds on this file alone.
#pragma once

#define GATEWAY_VERSION_MAJOR 0
#define GATEWAY_VERSION_MINOR 1
#define GATEWAY_VERSION_PATCH 0
#define GATEWAY_VERSION (GATEWAY_VERSION_MAJOR * 10000 + GATEWAY_VERSION_MINOR * 100 + GATEWAY_VERSION_PATCH)

#if __cplusplus < 202002L
#error "gateway.hpp needs C++20 (-std=c++20)"
#endif

// Build-time knobs, for optional parts only (runtime limits live in the options structs):
// GATEWAY_NO_JSON: leave out the gateway (events, rooms, namespaces), which needs nlohmann/json
// (Debian: nlohmann-json3-dev); the WebSocket core needs only Asio and OpenSSL.
// GATEWAY_REDIS: add the Redis client (gw::redis::client, gw::redis::subscriber), which needs
// hiredis for RESP (Debian: libhiredis-dev; link with -lhiredis).
// GATEWAY_DEFLATE: permessage-deflate (RFC 7692) and compressed Engine.IO polling responses, which
// need zlib (Debian: zlib1g-dev; link with -lz). Without it, gw::deflate_mode::off is the only mode.

#include <openssl/evp.h>  // base64 (EVP_EncodeBlock / EVP_DecodeBlock)
#include <openssl/rand.h> // masking keys, handshake nonces and socket ids
#include <openssl/sha.h>  // SHA-1 for Sec-WebSocket-Accept
#include <unistd.h>       // close(), for an accepted descriptor no loop could take
#if defined(GATEWAY_DEFLATE)
#include <zlib.h>         // permessage-deflate and gzip: raw DEFLATE streams
#endif

#include <algorithm>      // std::min, std::find_if
#include <any>            // data an application attaches to a connection
#include <array>          // fixed frame headers
#include <bit>            // std::bit_cast: msgpack floats
#include <atomic>         // state shared by worker threads
#include <charconv>       // numbers in and out of the envelope without locales
#include <cmath>          // std::isfinite, for numbers written as JavaScript writes them
#include <chrono>         // timeouts
#include <climits>        // SIZE_MAX
#include <coroutine>      // gw::stream
#include <cstddef>        // std::size_t, std::ptrdiff_t
#include <cstdint>        // fixed-width integers of the wire format
#include <cstdio>         // std::snprintf for metrics' numbers
#include <cstdlib>        // std::malloc for zlib's counted allocator, std::strtod for q-values
#include <cstring>        // std::memcpy for word-wise masking
#include <deque>          // ready connections waiting for accept()
#include <exception>      // std::exception_ptr from co_spawn
#include <functional>     // std::function hooks in options
#include <initializer_list> // join({...}) and leave({...})
#include <iterator>       // the outbox's buffer-sequence iterator
#include <memory>         // shared ownership of connection state
#include <mutex>          // a server's connection lists and per-address counts
#include <map>            // recovery's broadcasts per namespace, found by name
#if defined(__GLIBC__)
#include <malloc.h>       // malloc_trim: a server whose last connection went gives memory back
#endif
#include <set>            // a cluster's rooms, gathered from every worker
#include <optional>       // receive() returns nothing on a clean close
#include <span>           // byte views
#include <stdexcept>      // gw::ws_exception, gw::http_refusal
#include <string>         // payloads
#include <string_view>    // parsing without copies
#include <system_error>   // gw::errc and its category
#include <thread>         // worker threads
#include <tuple>          // handler parameter lists
#include <type_traits>    // adapting handlers and hooks
#include <unordered_map>  // namespaces' handlers, sockets and rooms
#include <utility>        // std::move, std::pair
#include <vector>         // outbox, headers

// GCC 12 reports Asio's coroutine frame allocator (operator new/delete of awaitable_frame_base) as
// mismatched once it inlines both; the pair does match. Silenced for this header's code only (the
// epilogue pops it).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
