// 03_events: the gateway's handler shapes on the default namespace "/". Usage: 03_events PORT
// Send {"event": "ping", "data": ..., "id": 1} and friends; see README.md, "The gateway".
#include "gateway.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>

using gw::json;

struct point {   // a payload type of the application's own
    int x = 0, y = 0;
};
void from_json(const json& j, point& p) {
    j.at("x").get_to(p.x);
    j.at("y").get_to(p.y);
}

int main(int argc, char** argv) {
    char* end = nullptr;
    const long port = argc == 2 ? std::strtol(argv[1], &end, 10) : -1;
    if (argc != 2 || *argv[1] == '\0' || *end != '\0' || port < 0 || port > 65535) {
        std::fprintf(stderr, "usage: %s PORT   (PORT 0-65535; 0 picks a free port)\n", argv[0]);
        return 2;
    }
    asio::io_context io{1};
    gw::gateway app{io, {.port = static_cast<std::uint16_t>(port)}};
    auto events = app.of("/");

    // The reply is the return value: {"event": "ping", "data": <data>} plus the request's "id".
    events.on("ping", [](gw::socket&, json data) { return data; });

    // A payload of the application's own type; a payload that does not convert gets an exception event.
    events.on("norm", [](gw::socket&, point p) { return p.x * p.x + p.y * p.y; });

    // A reply under another event name.
    events.on("hello", [](gw::socket& s) { return gw::response{"welcome", s.id()}; });

    // A coroutine handler emitting to this socket, then replying.
    events.on("notify", [](gw::socket& s, json data) -> asio::awaitable<json> {
        co_await s.emit("notification", data);
        co_return "sent";
    });

    // Several replies: one message per co_yield, in order.
    events.on("count", [](gw::socket&, int n) -> gw::stream<json> {
        for (int i = 1; i <= n; ++i) co_yield i;
    });

    // The server asks the client and waits for its acknowledgement (or a timeout).
    events.on("ask", [](gw::socket& s, json question) -> asio::awaitable<json> {
        json answer = co_await s.emit_with_ack("question", question, std::chrono::seconds(10));
        co_return json{{"you said", answer}};
    });

    app.on_init([&] {   // once listening, before the first connection is served
        std::printf("listening on port %u\n", static_cast<unsigned>(app.port()));
        std::fflush(stdout);
    });
    asio::signal_set signals{io, SIGINT, SIGTERM};
    // A graceful exit: every connection gets 1001 after what was queued for it (at most 10 s).
    signals.async_wait([&](std::error_code, int) {
        asio::co_spawn(io, app.stop(), [&](std::exception_ptr) { io.stop(); });
    });
    io.run();
    return 0;
}
