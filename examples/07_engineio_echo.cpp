// 07_engineio_echo: Engine.IO's own layer, without the gateway: an echo server for engine.io-client
// (or python-engineio) at http://HOST:PORT/engine.io/, over long-polling, WebSocket, or both with
// the upgrade between them. The same awaitables as the WebSocket core: accept, receive, send.
// Usage: 07_engineio_echo PORT
#include "gateway.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>

asio::awaitable<void> echo(gw::engineio::connection c) {
    while (auto msg = co_await c.receive())
        co_await c.send(std::move(*msg));
}

asio::awaitable<void> serve(gw::engineio::server& eio) {
    auto ex = co_await asio::this_coro::executor;
    for (;;) {
        gw::engineio::connection c = co_await eio.accept();
        asio::co_spawn(ex, echo(std::move(c)), [](std::exception_ptr e) {
            // A session that ends while its echo is queued is routine; anything else is reported.
            try {
                if (e) std::rethrow_exception(e);
            } catch (const std::system_error& err) {
                if (err.code() != gw::errc::closed) std::fprintf(stderr, "echo: %s\n", err.what());
            } catch (const std::exception& err) {
                std::fprintf(stderr, "echo: %s\n", err.what());
            }
        });
    }
}

int main(int argc, char** argv) {
    char* end = nullptr;
    const long port = argc == 2 ? std::strtol(argv[1], &end, 10) : -1;
    if (argc != 2 || *argv[1] == '\0' || *end != '\0' || port < 0 || port > 65535) {
        std::fprintf(stderr, "usage: %s PORT   (PORT 0-65535; 0 picks a free port)\n", argv[0]);
        return 2;
    }
    try {
        asio::io_context io{1};
        gw::server srv{io, {.port = static_cast<std::uint16_t>(port)}};
        // Engine.IO on the server's listener: its requests under /engine.io/, the rest as before.
        gw::engineio::server eio{srv, {.path = "/engine.io/"}};
        std::printf("listening on port %u\n", static_cast<unsigned>(srv.port()));
        std::fflush(stdout);

        asio::signal_set signals{io, SIGINT, SIGTERM};
        // A graceful exit: every session gets a close packet, every connection 1001 (at most 10 s).
        signals.async_wait([&](std::error_code, int) {
            asio::co_spawn(io, srv.stop(), [&](std::exception_ptr) { io.stop(); });
        });
        asio::co_spawn(io, serve(eio), [](std::exception_ptr) {});
        io.run();
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "07_engineio_echo: %s\n", e.what());
        return 1;
    }
}
