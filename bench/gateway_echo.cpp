// gateway_echo: the benchmark's events through the gateway (bench/PROTOCOL.md): echo (JSON envelope
// in, the handler returns the data, envelope out), join and broadcast, for NestJS WsAdapter clients
// and Socket.IO clients (at /socket.io/, namespace "/") on the same port.
// Usage: gateway_echo PORT [WORKERS]; prints "listening on port N"; SIGTERM exits 0.
#include "gateway.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
    if (argc < 2 || argc > 3) {
        std::fprintf(stderr, "usage: %s PORT [WORKERS]\n", argv[0]);
        return 2;
    }
    asio::io_context io{1};
    gw::options opts{};
    opts.port = static_cast<std::uint16_t>(std::atoi(argv[1]));
    opts.workers = argc == 3 ? static_cast<std::size_t>(std::atoi(argv[2])) : 1;
    gw::gateway app{io, opts};
    // "/" is also the Socket.IO namespace "/" (the client's "40"): one set of handlers serves
    // NestJS's envelope and Socket.IO. Replies name their event, since Socket.IO drops an unnamed
    // reply unless the client asked for an acknowledgement; an echo that asked for one gets it.
    auto ns = app.of("/");
    ns.on("echo", [](gw::socket&, gw::event& e) {
        return gw::response{e.id.is_null() ? "echo" : "", std::move(e.data)};
    });
    ns.on("join", [](gw::socket& s, std::string room) {
        s.join(room);
        return gw::response{"join", std::move(room)};
    });
    ns.on("broadcast", [ns](gw::socket&, gw::json data) -> asio::awaitable<void> { co_await ns.to("bench").emit("broadcast", data); });
    std::printf("listening on port %u\n", static_cast<unsigned>(app.port()));
    std::fflush(stdout);
    asio::signal_set signals{io, SIGINT, SIGTERM};
    // A graceful exit: every connection gets 1001 after what was queued for it (at most 10 s).
    signals.async_wait([&](std::error_code, int) {
        asio::co_spawn(io, app.stop(), [&](std::exception_ptr) { io.stop(); });
    });
    io.run();
    return 0;
}
