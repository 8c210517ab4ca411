// What the gateway servers the test drivers start have in common: `NAME PORT` (0 picks a free
// port), "listening on port N" once listening, a graceful stop and exit status 0 on SIGINT or
// SIGTERM. Each server only says how its gateway is set up.
#pragma once
#include "gateway.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>

namespace test {

/// Makes a gateway on PORT with the gateway options own, lets setup(app) add its namespaces and
/// handlers, and serves until a signal. Returns main's exit status.
template <class Setup>
int serve_gateway(int argc, char** argv, const gw::gateway_options& own, Setup setup) {
    char* end = nullptr;
    const long port = argc == 2 ? std::strtol(argv[1], &end, 10) : -1;
    if (argc != 2 || *argv[1] == '\0' || *end != '\0' || port < 0 || port > 65535) {
        std::fprintf(stderr, "usage: %s PORT   (PORT 0-65535; 0 picks a free port)\n", argv[0]);
        return 2;
    }
    try {
        asio::io_context io{1};
        gw::gateway app{io, {.port = static_cast<std::uint16_t>(port)}, own};
        setup(app);
        std::printf("listening on port %u\n", static_cast<unsigned>(app.port()));
        std::fflush(stdout);
        asio::signal_set signals{io, SIGINT, SIGTERM};
        signals.async_wait([&](std::error_code, int) {
            asio::co_spawn(io, app.stop(std::chrono::seconds(2)), [&](std::exception_ptr) { io.stop(); });
        });
        io.run();
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
        return 1;
    }
}

} // namespace test
