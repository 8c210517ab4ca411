// cluster_node: one more node of a cluster, in a process of its own, for tests/cluster_emitter_test.cpp
// to kill. A gateway on 127.0.0.1, port 0, joined to the cluster on $REDIS_URL; namespace "/":
// "join" a room (answered with the room). Prints "listening PORT" once Redis has confirmed its
// subscriptions (the other nodes count it from then on); exits 0 on SIGINT or SIGTERM.
#include "gateway.hpp"

#include <csignal>
#include <cstdio>
#include <exception>

int main() {
    try {
        asio::io_context io{1};
        gw::options o;
        o.host = "127.0.0.1";
        gw::gateway app{io, o};
        app.of("/").on("join", [](gw::socket& s, std::string room) {
            s.join(room);
            return room;
        });
        gw::redis::cluster cluster(app);   // made after the gateway, so destroyed before it
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                co_await cluster.ready();
                std::printf("listening %u\n", static_cast<unsigned>(app.port()));
                std::fflush(stdout);
            },
            [](std::exception_ptr e) {
                if (e) std::rethrow_exception(e);
            });
        asio::signal_set signals{io, SIGINT, SIGTERM};
        signals.async_wait([&](std::error_code, int) {
            asio::co_spawn(io, app.stop(std::chrono::seconds(2)), [&](std::exception_ptr) { io.stop(); });
        });
        io.run();
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cluster_node: %s\n", e.what());
        return 1;
    }
}
