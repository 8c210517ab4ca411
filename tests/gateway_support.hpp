// Test support for the gateway: a client speaking its JSON envelope, and one speaking Socket.IO
// packet by packet.
#pragma once

#include "support.hpp"

namespace test {

/// A client speaking the gateway's JSON envelope.
struct client {
    gw::connection c;

    static asio::awaitable<client> open(const gw::gateway& app, std::string path = "/") {
        auto c = co_await gw::connect("ws://127.0.0.1:" + std::to_string(app.port()) + path);
        co_return client{std::move(c)};
    }
    asio::awaitable<void> send(std::string event, gw::json data = nullptr, gw::json id = nullptr) {
        gw::json j = {{"event", event}, {"data", data}};
        if (!id.is_null()) j["id"] = id;
        co_await c.send(j.dump());
    }
    /// Sends an event and returns the next one (its reply, when nothing else is due first).
    asio::awaitable<gw::json> ask(std::string event, gw::json data = nullptr, gw::json id = nullptr) {
        co_await send(std::move(event), std::move(data), std::move(id));
        co_return co_await next();
    }
    /// The next event, parsed; null when the connection ended.
    asio::awaitable<gw::json> next() {
        auto m = co_await c.receive();
        if (!m) co_return nullptr;
        co_return gw::json::parse(m->data);
    }
};

/// A Socket.IO client at the packet level over a WebSocket: answers pings, hands over the rest.
struct sio_client {
    gw::connection c;

    static asio::awaitable<sio_client> open(std::uint16_t port) {
        // Named first: GCC 12 mishandles a co_await inside a braced initialiser.
        const std::string url = "ws://127.0.0.1:" + std::to_string(port) + "/socket.io/?EIO=4&transport=websocket";
        gw::connection c = co_await gw::connect(url);
        sio_client r{std::move(c)};
        auto first = co_await r.next();
        EXPECT_TRUE(first.starts_with("0{\"sid\":")) << first;
        co_return r;
    }
    /// The next packet that is not a ping (pings are answered).
    asio::awaitable<std::string> next() {
        for (;;) {
            auto m = co_await c.receive();
            if (!m) co_return std::string("(closed)");
            if (m->data == "2") {
                co_await c.send("3");
                continue;
            }
            co_return m->data;
        }
    }
    asio::awaitable<void> send(std::string packet) { co_await c.send(packet); }
    /// Drops the transport abruptly, as a lost network does (no close frame).
    void drop() { std::static_pointer_cast<gw::detail::connection_impl>(gw::detail::access::transport_of(c))->sock_.close(); }
};

/// The string value of a key in a CONNECT reply's JSON ("40{...}").
inline std::string field(const std::string& reply, const char* key) {
    auto j = gw::json::parse(reply.substr(reply.find('{')));
    return j.value(key, std::string());
}

inline gw::options local() {
    gw::options o;
    o.host = "127.0.0.1";
    return o;
}

inline gw::json exception(std::string message) { return {{"event", "exception"}, {"data", {{"status", "error"}, {"message", message}}}}; }

// GCC 12 miscompiles initializer lists inside a co_await's full expression, so JSON literals in
// coroutine bodies are parsed from text instead.
inline gw::json j(const char* text) { return gw::json::parse(text); }

} // namespace test
