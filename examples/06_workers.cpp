// 06_workers: one gateway served by several event loops (options.workers), its counters at
// GET /metrics, and a graceful shutdown on SIGINT or SIGTERM. Usage: 06_workers PORT [WORKERS]
// WORKERS event loops, one thread each (default 0: one per hardware thread). On ws://HOST:PORT/
// send {"event": "where"} to see which loop serves you, {"event": "shout", "data": ...} to reach
// every socket on every loop; `curl http://HOST:PORT/metrics` shows the counts.
#include "gateway.hpp"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>

using gw::json;

/// A small number for the calling thread: each worker is one thread, numbered as it first asks.
int thread_number() {
    static std::atomic<int> next{0};
    thread_local const int mine = ++next;
    return mine;
}

/// A number in [low, high] from a command-line argument, or -1.
long number(const char* arg, long low, long high) {
    char* end = nullptr;
    const long n = std::strtol(arg, &end, 10);
    return *arg == '\0' || *end != '\0' || n < low || n > high ? -1 : n;
}

/// Shuts the gateway down gently, waiting at most 5 s, then tells what it served.
asio::awaitable<void> shut_down(gw::gateway& app) {
    co_await app.stop(std::chrono::seconds(5));
    const gw::metrics m = app.metrics();
    std::printf("stopped after %llu messages in, %llu out\n", static_cast<unsigned long long>(m.messages_in),
                static_cast<unsigned long long>(m.messages_out));
}

int main(int argc, char** argv) {
    const long port = argc >= 2 ? number(argv[1], 0, 65535) : -1;
    const long workers = argc == 3 ? number(argv[2], 0, 256) : 0;
    if (argc < 2 || argc > 3 || port < 0 || workers < 0) {
        std::fprintf(stderr, "usage: %s PORT [WORKERS]   (PORT 0-65535, 0 picks a free port; WORKERS 0-256, 0 (default): one per hardware thread)\n", argv[0]);
        return 2;
    }
    asio::io_context io{1};
    gw::options opts{};
    opts.port = static_cast<std::uint16_t>(port);
    opts.workers = static_cast<std::size_t>(workers);   // this thread's io_context plus workers - 1 threads of the gateway's
    // opts.metrics_path stays "/metrics": a plain GET on the same port answers Prometheus text.
    gw::gateway app{io, opts};
    auto ns = app.of("/");

    // Handlers run on the worker that serves their socket, several at once: what they share is
    // atomic (ns.count() and the metrics are, from any thread).
    ns.on("where", [&app, ns](gw::socket&) {
        return json{{"worker", thread_number()}, {"workers", app.workers()}, {"sockets", ns.count()}};
    });
    // An emit to the namespace reaches the sockets of every worker: framed once, posted once to each loop.
    ns.on("shout", [ns](gw::socket&, json data) -> asio::awaitable<void> { co_await ns.emit("shout", data); });

    app.on_init([&] {
        std::printf("listening on port %u with %zu workers; metrics at /metrics\n", static_cast<unsigned>(app.port()),
                    app.workers());
        std::fflush(stdout);
    });

    // A graceful exit: listening stops at once, every socket gets what was queued for it and then
    // 1001 "server shutting down"; stop() completes once on_disconnect ran for each, or after 5 s,
    // when the rest are cut. Then this loop stops, and destroying the gateway stops its threads.
    asio::signal_set signals{io, SIGINT, SIGTERM};
    signals.async_wait([&](std::error_code, int) {
        asio::co_spawn(io, shut_down(app), [&](std::exception_ptr) { io.stop(); });
    });
    io.run();
    return 0;
}
