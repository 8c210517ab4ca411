// Standalone Asio: sockets, timers, coroutines and TLS, for net/ and gateway/ (never protocol/).
#pragma once
#include "config.hpp"

#if !__has_include(<asio.hpp>)
#error "gateway.hpp needs standalone Asio 1.22 or later (Debian: libasio-dev)"
#endif
// Asio 1.22 enables co_await under clang only where <experimental/coroutine> exists (libc++); with
// libstdc++, which has <coroutine> alone, asio::awaitable would be missing. Include gateway.hpp
// before Asio, or define ASIO_HAS_CO_AWAIT yourself.
#if defined(__clang__) && defined(__cpp_impl_coroutine) && __has_include(<coroutine>) && !defined(ASIO_HAS_CO_AWAIT) && \
    !defined(ASIO_DISABLE_CO_AWAIT)
#define ASIO_HAS_CO_AWAIT 1
#endif
#include <asio/version.hpp>
#if ASIO_VERSION < 102201
#error "gateway.hpp needs standalone Asio 1.22.1 or later"
#endif

#include <asio.hpp>                        // sockets, timers, coroutines (awaitable, co_spawn)
#include <asio/experimental/as_tuple.hpp>  // errors as values where they are expected
#include <asio/ssl.hpp>                    // TLS streams for wss://
