// conformance_echo: the echo server tests/conformance/autobahn.py walks through. It is
// examples/01_echo with its limits raised for the suite's 16 MiB messages and 4 MiB messages in
// 64-byte fragments. Text comes back as text, binary as binary, on any path.
// Usage: conformance_echo PORT [--deflate shared|dedicated] [CERT_PEM KEY_PEM]
// (--deflate turns permessage-deflate on in that mode; with a certificate and key it serves wss://)
#include "gateway.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string_view>

asio::awaitable<void> echo(gw::connection c) {
    while (auto msg = co_await c.receive())
        co_await c.send(std::move(*msg));
}

asio::awaitable<void> serve(gw::server& srv) {
    auto ex = co_await asio::this_coro::executor;
    for (;;) {
        gw::connection c = co_await srv.accept();
        asio::co_spawn(ex, echo(std::move(c)), [](std::exception_ptr e) {
            // A peer that breaks the protocol or vanishes is routine; anything else is reported.
            try {
                if (e) std::rethrow_exception(e);
            } catch (const std::system_error& err) {
                if (err.code().category() != gw::error_category()) std::fprintf(stderr, "echo: %s\n", err.what());
            } catch (const std::exception& err) {
                std::fprintf(stderr, "echo: %s\n", err.what());
            }
        });
    }
}

int main(int argc, char** argv) {
    char* end = nullptr;
    const long port = argc > 1 ? std::strtol(argv[1], &end, 10) : -1;
    gw::deflate_mode deflate = gw::deflate_mode::off;
    int rest = 2;   // the arguments after the port and the options
    if (argc > 3 && std::string_view(argv[2]) == "--deflate") {
        const std::string_view m = argv[3];
        deflate = m == "shared" ? gw::deflate_mode::shared : m == "dedicated" ? gw::deflate_mode::dedicated : gw::deflate_mode::off;
        rest = deflate == gw::deflate_mode::off ? argc + 1 : 4;   // an unknown mode: the usage line
    }
    if ((argc - rest != 0 && argc - rest != 2) || *argv[1] == '\0' || *end != '\0' || port < 0 || port > 65535) {
        std::fprintf(stderr, "usage: %s PORT [--deflate shared|dedicated] [CERT_PEM KEY_PEM]   (PORT 0-65535; 0 picks a free port)\n",
                     argv[0]);
        return 2;
    }
    try {
        asio::io_context io{1};
        gw::options opts{.port = static_cast<std::uint16_t>(port),
                         .max_message_bytes = 64 << 20,   // room for the conformance suite's 16 MiB messages
                         .max_frame_bytes = 64 << 20,
                         .max_fragments = 1 << 20};   // and for its 4 MiB messages in 64-byte fragments
        opts.deflate.mode = deflate;
        opts.deflate.threshold = 0;   // the suite's small messages go compressed too
        if (argc - rest == 2) opts.tls = gw::tls_server_context(argv[rest], argv[rest + 1]);
        gw::server srv{io, std::move(opts)};
        std::printf("listening on port %u\n", static_cast<unsigned>(srv.port()));
        std::fflush(stdout);

        asio::signal_set signals{io, SIGINT, SIGTERM};
        // A graceful exit: every connection gets 1001 after what was queued for it (at most 10 s).
        signals.async_wait([&](std::error_code, int) {
            asio::co_spawn(io, srv.stop(), [&](std::exception_ptr) { io.stop(); });
        });
        asio::co_spawn(io, serve(srv), [](std::exception_ptr) {});
        io.run();
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "conformance_echo: %s\n", e.what());
        return 1;
    }
}
