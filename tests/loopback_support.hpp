// Loopback test support: a local server's options and URL, a raw TCP client for what our own client
// will not send, hand-made client frames, and an echo server that counts its finished connections.
// Shared by the loopback, limits, heartbeat and shutdown tests.
#pragma once

#include "support.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace test::loopback {

inline gw::options local(gw::options o = {}) {
    o.host = "127.0.0.1";
    o.port = 0;
    return o;
}

inline std::string url(const gw::server& srv, std::string_view path = "/", bool tls = false) {
    return std::string(tls ? "wss://localhost:" : "ws://127.0.0.1:") + std::to_string(srv.port()) + std::string(path);
}

/// True when connect() throws.
inline asio::awaitable<bool> connect_fails(std::string to, gw::client_options opts) {
    try {
        co_await gw::connect(to, std::move(opts));
    } catch (const std::system_error&) {
        co_return true;
    }
    co_return false;
}

/// A raw TCP client for what our own client will not send.
struct raw_client {
    asio::ip::tcp::socket sock;
    explicit raw_client(asio::io_context& io) : sock(io) {}

    asio::awaitable<void> open(std::uint16_t port) {
        co_await sock.async_connect({asio::ip::make_address("127.0.0.1"), port}, asio::use_awaitable);
    }
    asio::awaitable<void> write(std::string_view bytes) {
        co_await asio::async_write(sock, asio::buffer(bytes), asio::use_awaitable);
    }
    /// Reads until the end of an HTTP head (or the connection's end): the head and what followed it.
    asio::awaitable<std::string> read_head() {
        std::string got;
        char buf[4096];
        while (got.find("\r\n\r\n") == std::string::npos) {
            auto [ec, n] = co_await sock.async_read_some(asio::buffer(buf), asio::experimental::as_tuple(asio::use_awaitable));
            got.append(buf, n);
            if (ec) break;
        }
        co_return got;
    }
    /// Sends a request on a new connection and returns everything until the server closes it.
    asio::awaitable<std::string> exchange(std::uint16_t port, std::string_view request) {
        co_await open(port);
        co_await write(request);
        co_return co_await read_all();
    }
    /// Everything until the server closes the connection.
    asio::awaitable<std::string> read_all() {
        std::string out;
        char buf[4096];
        for (;;) {
            auto [ec, n] = co_await sock.async_read_some(asio::buffer(buf), asio::experimental::as_tuple(asio::use_awaitable));
            out.append(buf, n);
            if (ec) co_return out;
        }
    }
};

inline const std::string upgrade_request =
    "GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// What follows the HTTP head of a reply.
inline std::string after_head(const std::string& reply) {
    auto at = reply.find("\r\n\r\n");
    if (at == std::string::npos) {
        ADD_FAILURE() << "no HTTP head in: " << reply;
        return {};
    }
    return reply.substr(at + 4);
}

/// A masked client frame.
inline std::string client_frame(gw::opcode op, std::string_view payload, bool fin = true, bool mask = true) {
    unsigned char head[gw::detail::max_frame_header];
    std::array<unsigned char, 4> key{0x12, 0x34, 0x56, 0x78};
    auto n = gw::detail::encode_header(head, op, fin, payload.size(), mask ? &key : nullptr);
    std::string out(reinterpret_cast<char*>(head), n);
    std::string body(payload);
    if (mask) gw::detail::apply_mask(reinterpret_cast<unsigned char*>(body.data()), body.size(), key);
    return out + body;
}

/// Reads one server frame from a raw client (after the 101's head was consumed into `buffered`):
/// returns {opcode, payload}; opcode 0xFF when the server closed the connection first.
inline asio::awaitable<std::pair<int, std::string>> read_frame(raw_client& rc, std::string& buffered) {
    char buf[4096];
    for (;;) {
        if (buffered.size() >= 2) {
            const std::size_t len = static_cast<unsigned char>(buffered[1]) & 0x7Fu;   // server frames here are short
            if (len < 126 && buffered.size() >= 2 + len) {
                std::pair<int, std::string> f{static_cast<unsigned char>(buffered[0]) & 0x0F, buffered.substr(2, len)};
                buffered.erase(0, 2 + len);
                co_return f;
            }
        }
        auto [ec, n] = co_await rc.sock.async_read_some(asio::buffer(buf), asio::experimental::as_tuple(asio::use_awaitable));
        if (ec) co_return std::pair<int, std::string>{0xFF, {}};
        buffered.append(buf, n);
    }
}

/// Opens a raw client and completes its upgrade (optionally with extra header lines); the bytes
/// after the 101's head stay in `buffered`.
inline asio::awaitable<std::string> raw_upgrade(raw_client& rc, std::uint16_t port, std::string extra = {}) {
    co_await rc.open(port);
    std::string request = upgrade_request;
    request.insert(request.size() - 2, extra);
    co_await rc.write(request);
    co_return co_await rc.read_head();
}

/// Echoes every accepted connection; counts the connections whose last handle has gone and wakes
/// whoever waits on `gone`.
struct counting_echo {
    int finished = 0;
    std::error_code last_error;
    asio::steady_timer gone;
    explicit counting_echo(asio::io_context& io) : gone(io, asio::steady_timer::time_point::max()) {}
    void start(asio::io_context& io, gw::server& srv) {
        asio::co_spawn(io, [this, &srv]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            for (;;) {
                auto c = co_await srv.accept();
                asio::co_spawn(ex, serve(std::move(c)), [](std::exception_ptr) {});
            }
        }, [](std::exception_ptr) {});
    }
    asio::awaitable<void> serve(gw::connection c) {
        try {
            while (auto m = co_await c.receive()) co_await c.send(std::move(*m));
        } catch (const std::system_error& e) {
            last_error = e.code();
        }
        c = gw::connection{};   // the last handle: the server counts the connection out
        ++finished;
        gone.cancel();
    }
    asio::awaitable<void> wait_finished(int n) {
        while (finished < n) co_await gone.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    }
};

} // namespace test::loopback
