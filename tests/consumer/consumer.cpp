// A program that uses gateway.hpp as a project outside this repository would. tests/consumer/run.sh
// builds it three ways (Meson subproject, README's compiler line, pkg-config after meson install)
// and runs it: a server on port 0 echoes one message to the library's own client, then stops.
#include "gateway.hpp"

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>

asio::awaitable<void> echo(gw::server& srv) {
    gw::connection c = co_await srv.accept();
    while (auto msg = co_await c.receive())
        co_await c.send(std::move(*msg));
}

asio::awaitable<void> talk(gw::server& srv, std::string& reply) {
    gw::connection c = co_await gw::connect("ws://127.0.0.1:" + std::to_string(srv.port()) + "/");
    co_await c.send("hello");
    if (auto msg = co_await c.receive()) reply = msg->data;
    co_await c.close();
    co_await srv.stop();
}

int main() {
    asio::io_context io{1};
    gw::server srv{io, gw::options{.port = 0}};
    std::string reply;
    std::exception_ptr failure;
    auto keep = [&](std::exception_ptr e) {
        if (e && !failure) failure = e;
    };
    bool done = false;
    asio::co_spawn(io, echo(srv), keep);
    asio::co_spawn(io, talk(srv, reply), [&](std::exception_ptr e) {
        keep(e);
        done = true;
        io.stop();   // the server's heartbeat timer would keep run_for() busy to its end
    });
    io.run_for(std::chrono::seconds(20));
    try {
        if (failure) std::rethrow_exception(failure);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "consumer: %s\n", e.what());
        return 1;
    }
    if (!done) {
        std::fprintf(stderr, "consumer: no echo within 20 s\n");
        return 1;
    }
    if (reply != "hello") {
        std::fprintf(stderr, "consumer: the echo was \"%s\", not \"hello\"\n", reply.c_str());
        return 1;
    }
    std::printf("consumer: gateway.hpp %d.%d.%d, a server on port %u echoed \"%s\"\n", GATEWAY_VERSION_MAJOR,
                GATEWAY_VERSION_MINOR, GATEWAY_VERSION_PATCH, static_cast<unsigned>(srv.port()), reply.c_str());
    return 0;
}
