// socketio_reference: the server the Socket.IO protocol's test suite expects, on a gw::gateway:
// Socket.IO at /socket.io/ with pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1000000,
// connectTimeout 1000 ms and CORS for any origin; namespaces "/" and "/custom", each emitting
// "auth" with the CONNECT payload on connection; "message" answered by "message-back" with the
// same arguments, "message-with-ack" acknowledged with the same arguments.
// Usage: socketio_reference PORT   (0 picks a free port)
#include "gateway.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
    char* end = nullptr;
    const long port = argc == 2 ? std::strtol(argv[1], &end, 10) : -1;
    if (argc != 2 || *argv[1] == '\0' || *end != '\0' || port < 0 || port > 65535) {
        std::fprintf(stderr, "usage: %s PORT   (PORT 0-65535; 0 picks a free port)\n", argv[0]);
        return 2;
    }
    try {
        asio::io_context io{1};
        gw::gateway_options own;
        own.socketio.engine.ping_interval = std::chrono::milliseconds(300);
        own.socketio.engine.ping_timeout = std::chrono::milliseconds(200);
        own.socketio.engine.max_payload = 1'000'000;
        own.socketio.engine.cors.enabled = true;
        own.socketio.connect_timeout = std::chrono::milliseconds(1000);
        gw::gateway app{io, {.port = static_cast<std::uint16_t>(port)}, own};
        for (const char* path : {"/", "/custom"}) {
            app.of(path)
                .on_connect([](gw::socket& s) { return s.emit("auth", s.auth()); })
                // The arguments as they came: gw::event::spread keeps several (or none) apart.
                .on("message", [](gw::socket&, gw::event& e) { return gw::response{"message-back", std::move(e.data), e.spread}; })
                .on("message-with-ack", [](gw::socket&, gw::event& e) { return gw::response{{}, std::move(e.data), e.spread}; });
        }
        std::printf("listening on port %u\n", static_cast<unsigned>(app.port()));
        std::fflush(stdout);

        asio::signal_set signals{io, SIGINT, SIGTERM};
        signals.async_wait([&](std::error_code, int) {
            asio::co_spawn(io, app.stop(std::chrono::seconds(2)), [&](std::exception_ptr) { io.stop(); });
        });
        io.run();
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "socketio_reference: %s\n", e.what());
        return 1;
    }
}
