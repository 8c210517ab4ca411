// engineio_echo: the server the Engine.IO protocol's test suite expects (pingInterval 300 ms,
// pingTimeout 200 ms, maxPayload 1000000, CORS for any origin, at /engine.io/): every message goes
// back as it came, text as text and binary as binary, over polling or WebSocket.
// Usage: engineio_echo PORT [PATH]   (PORT 0 picks a free port; PATH defaults to /engine.io/)
// With GW_TEST_PATIENT set (non-empty), pingTimeout is 5 s instead of 200 ms: the third-party
// client runs (tests/interop/run_socketio_interop.sh) give a slow sanitized server and the clients'
// threads room, while the protocol suites keep the values they expect.
#include "gateway.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>

/// Whether GW_TEST_PATIENT asks for the longer timeouts.
bool patient() {
    const char* text = std::getenv("GW_TEST_PATIENT");
    return text && *text;
}

asio::awaitable<void> echo(gw::engineio::connection c) {
    while (auto msg = co_await c.receive())
        co_await c.send(std::move(*msg));
}

asio::awaitable<void> serve(gw::engineio::server& eio) {
    auto ex = co_await asio::this_coro::executor;
    for (;;) {
        auto c = co_await eio.accept();
        asio::co_spawn(ex, echo(std::move(c)), [](std::exception_ptr e) {
            // A session that closes while a message is being sent back is routine; anything else is reported.
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
    const long port = argc > 1 ? std::strtol(argv[1], &end, 10) : -1;
    if (argc < 2 || argc > 3 || *argv[1] == '\0' || *end != '\0' || port < 0 || port > 65535) {
        std::fprintf(stderr, "usage: %s PORT [PATH]   (PORT 0-65535; 0 picks a free port; PATH defaults to /engine.io/)\n", argv[0]);
        return 2;
    }
    try {
        asio::io_context io{1};
        gw::server srv{io, {.port = static_cast<std::uint16_t>(port)}};
        gw::engineio::server eio{srv, {.path = argc > 2 ? argv[2] : "/engine.io/",
                                       .ping_interval = std::chrono::milliseconds(300),
                                       .ping_timeout = std::chrono::milliseconds(patient() ? 5000 : 200),
                                       .max_payload = 1'000'000,
                                       .cors = {.enabled = true}}};
        std::printf("listening on port %u\n", static_cast<unsigned>(srv.port()));
        std::fflush(stdout);

        asio::signal_set signals{io, SIGINT, SIGTERM};
        signals.async_wait([&](std::error_code, int) {
            eio.stop();
            asio::co_spawn(io, srv.stop(std::chrono::seconds(2)), [&](std::exception_ptr) { io.stop(); });
        });
        asio::co_spawn(io, serve(eio), [](std::exception_ptr) {});
        io.run();
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "engineio_echo: %s\n", e.what());
        return 1;
    }
}
