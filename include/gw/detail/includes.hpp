#include <asio.hpp>                              // sockets, timers, coroutines (awaitable, co_spawn)
#include <asio/experimental/as_tuple.hpp>        // errors as values where they are expected
#include <asio/ssl.hpp>                          // TLS streams for wss://
#include <openssl/evp.h>                         // base64 (EVP_EncodeBlock / EVP_DecodeBlock)
#include <openssl/rand.h>                        // masking keys and handshake nonces
#include <openssl/sha.h>                         // SHA-1 for Sec-WebSocket-Accept
#ifndef GATEWAY_NO_JSON
#include <nlohmann/json.hpp>                     // the gateway's payloads and wire format
#endif

#include <algorithm>      // std::min, std::find_if
#include <any>            // data an application attaches to a connection
#include <array>          // fixed frame headers
#include <atomic>         // state shared by worker threads
#include <charconv>       // numbers in and out of the envelope without locales
#include <chrono>         // timeouts
#include <coroutine>      // gw::stream
#include <cstdint>        // fixed-width integers of the wire format
#include <cstring>        // std::memcpy for word-wise masking
#include <deque>          // ready connections waiting for accept()
#include <exception>      // std::exception_ptr from co_spawn
#include <functional>     // std::function hooks in options
#include <memory>         // shared ownership of connection state
#include <mutex>          // a server's connection lists and per-address counts
#if defined(__GLIBC__)
#include <malloc.h>       // malloc_trim: a server whose last connection went gives memory back
#endif
#include <optional>       // receive() returns nothing on a clean close
#include <span>           // byte views
#include <stdexcept>      // gw::ws_exception, gw::http_refusal
#include <tuple>          // handler parameter lists
#include <type_traits>    // adapting handlers and hooks
#include <unordered_map>  // namespaces' handlers, sockets and rooms
#include <string>         // payloads
#include <string_view>    // parsing without copies
#include <system_error>   // gw::errc and its category
#include <thread>         // worker threads
#include <utility>        // std::move, std::pair
#include <vector>         // outbox, headers

// GCC 12 reports Asio's coroutine frame allocator (operator new/delete of awaitable_frame_base) as
// mismatched once it inlines both; the pair does match. Silenced for this header's code only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace gw {
inline namespace v0 {

