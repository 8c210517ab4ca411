// The WebSocket core without the gateway (GATEWAY_NO_JSON): builds without nlohmann/json and works.
#ifndef GATEWAY_NO_JSON
#define GATEWAY_NO_JSON
#endif
#include "gateway.hpp"

#include <gtest/gtest.h>

#include <future>

#ifdef NLOHMANN_JSON_VERSION_MAJOR
#error "GATEWAY_NO_JSON must keep nlohmann/json out"
#endif

TEST(CoreOnly, EchoesWithoutTheGateway) {
    asio::io_context io;
    gw::options opts;
    opts.host = "127.0.0.1";
    gw::server srv{io, std::move(opts)};
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        auto c = co_await srv.accept();
        while (auto m = co_await c.receive()) co_await c.send(std::move(*m));
    }, [](std::exception_ptr) {});
    auto done = asio::co_spawn(io, [&]() -> asio::awaitable<std::string> {
        auto c = co_await gw::connect("ws://127.0.0.1:" + std::to_string(srv.port()) + "/");
        co_await c.send("core only");
        auto m = co_await c.receive();
        co_await c.close();
        co_return m ? m->data : std::string();
    }, asio::use_future);
    while (done.wait_for(std::chrono::seconds(0)) != std::future_status::ready) io.run_one_for(std::chrono::milliseconds(100));
    EXPECT_EQ(done.get(), "core only");
}
