// 02_echo_client: sends each argument as a text message and prints what comes back.
// Usage: 02_echo_client URL MESSAGE...   e.g. 02_echo_client ws://127.0.0.1:8080/ hello world
#include "gateway.hpp"

#include <cstdio>

asio::awaitable<void> talk(std::string url, std::vector<std::string> lines) {
    gw::connection c = co_await gw::connect(url);
    for (const auto& line : lines) {
        co_await c.send(line);
        auto reply = co_await c.receive();
        std::printf("%s\n", reply->data.c_str());
    }
    co_await c.close();
}

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s URL MESSAGE...\n", argv[0]);
        return 2;
    }
    asio::io_context io;
    int status = 0;
    asio::co_spawn(io, talk(argv[1], {argv + 2, argv + argc}), [&](std::exception_ptr e) {
        try {
            if (e) std::rethrow_exception(e);
        } catch (const std::exception& err) {
            std::fprintf(stderr, "02_echo_client: %s\n", err.what());
            status = 1;
        }
    });
    io.run();
    return status;
}
