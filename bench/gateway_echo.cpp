// gateway_echo: the benchmark's events through the gateway (bench/PROTOCOL.md): echo (JSON envelope
// in, the handler returns the data, envelope out), join and broadcast, for NestJS WsAdapter clients
// and Socket.IO clients (at /socket.io/, namespace "/") on the same port.
// Usage: gateway_echo PORT [WORKERS [off|shared|dedicated]]; prints "listening on port N"; SIGTERM
// exits 0. The third argument turns permessage-deflate on (gw::deflate_mode, the library's other
// deflate defaults: threshold 1024 as ws and Socket.IO, level 6, window 15, memLevel 8); a build
// without zlib (GATEWAY_DEFLATE) refuses shared and dedicated when the gateway is made.
// With REDIS_URL set (redis://host:port), and built with the Redis parts (GATEWAY_REDIS), it joins
// that Redis' cluster (gw::redis::cluster, wire-compatible with @socket.io/redis-adapter), so a
// broadcast to room "bench" reaches its members on every instance (bench/cluster.sh); it prints
// "listening" only once Redis has confirmed the cluster's subscriptions.
#include "gateway.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

int main(int argc, char** argv) {
    if (argc < 2 || argc > 4) {
        std::fprintf(stderr, "usage: %s PORT [WORKERS [off|shared|dedicated]]\n", argv[0]);
        return 2;
    }
    asio::io_context io{1};
    gw::options opts{};
    opts.port = static_cast<std::uint16_t>(std::atoi(argv[1]));
    opts.workers = argc >= 3 ? static_cast<std::size_t>(std::atoi(argv[2])) : 1;
    if (argc == 4) {
        const char* m = argv[3];
        if (std::strcmp(m, "shared") == 0) opts.deflate.mode = gw::deflate_mode::shared;
        else if (std::strcmp(m, "dedicated") == 0) opts.deflate.mode = gw::deflate_mode::dedicated;
        else if (std::strcmp(m, "off") != 0) {
            std::fprintf(stderr, "deflate mode must be off, shared or dedicated, not %s\n", m);
            return 2;
        }
    }
    // Socket.IO's WebSocket transport has its own setting (Engine.IO's perMessageDeflate): the same.
    gw::gateway_options own{};
    own.socketio.engine.per_message_deflate = opts.deflate;
    gw::gateway app{io, opts, own};
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
    auto say_listening = [&] {
        std::printf("listening on port %u\n", static_cast<unsigned>(app.port()));
        std::fflush(stdout);
    };
#if defined(GATEWAY_REDIS)
    // Made after the gateway, so destroyed before it.
    std::unique_ptr<gw::redis::cluster> cluster;
    if (const char* url = std::getenv("REDIS_URL"); url && *url) {
        cluster = std::make_unique<gw::redis::cluster>(app, gw::redis::cluster_options{.url = url});
        std::printf("cluster: %s\n", url);
        // A benchmark that starts broadcasting as soon as it reads "listening" must not lose the
        // first broadcasts to subscriptions still on their way.
        asio::co_spawn(io, [&]() -> asio::awaitable<void> {
            co_await cluster->ready();
            say_listening();
        }, [](std::exception_ptr e) {
            if (e) {
                std::fprintf(stderr, "cluster: not ready\n");
                std::exit(1);
            }
        });
    } else {
        say_listening();
    }
#else
    if (const char* url = std::getenv("REDIS_URL"); url && *url)
        std::fprintf(stderr, "REDIS_URL ignored: built without the Redis parts (hiredis)\n");
    say_listening();
#endif
    asio::signal_set signals{io, SIGINT, SIGTERM};
    // A graceful exit: every connection gets 1001 after what was queued for it (at most 10 s).
    signals.async_wait([&](std::error_code, int) {
        asio::co_spawn(io, app.stop(), [&](std::exception_ptr) { io.stop(); });
    });
    io.run();
    return 0;
}
