// Test support for the gateway: a client speaking its JSON envelope.
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
