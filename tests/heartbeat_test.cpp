// Keeping connections alive over real loopback sockets: the server's pings, our client's pongs, and
// the idle timeout.
#include "loopback_support.hpp"

#include <chrono>

using namespace test::loopback;
using asio::awaitable;

TEST(Heartbeat, ServerPingsAndDropsAPeerThatStopsAnswering) {
    asio::io_context io;
    gw::server srv{io, local({.ping_interval = std::chrono::milliseconds(30), .ping_timeout = std::chrono::milliseconds(60)})};
    counting_echo echo(io);
    echo.start(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        raw_client rc(io);
        auto head = co_await raw_upgrade(rc, srv.port());
        std::string buffered = after_head(head);
        for (int i = 0; i < 3; ++i) {   // answered pings keep it open: the next one comes, not a close
            auto f = co_await read_frame(rc, buffered);
            EXPECT_EQ(f.first, 0x9) << "ping " << i;
            co_await rc.write(client_frame(gw::opcode::pong, f.second));
        }
        auto f = co_await read_frame(rc, buffered);   // not answered
        EXPECT_EQ(f.first, 0x9);
        auto end = co_await read_frame(rc, buffered);
        EXPECT_EQ(end.first, 0xFF);   // the server dropped the connection
        co_await echo.wait_finished(1);
    }());
    EXPECT_EQ(echo.last_error, gw::errc::ping_timeout);
}

TEST(Heartbeat, OurClientAnswersPingsAndStaysConnected) {
    asio::io_context io;
    gw::server srv{io, local({.ping_interval = std::chrono::milliseconds(10), .ping_timeout = std::chrono::milliseconds(40)})};
    counting_echo echo(io);
    echo.start(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        auto c = co_await gw::connect(url(srv));
        // Echo round trips until well past several ping timeouts: receive() answers the pings.
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
        int rounds = 0;
        while (std::chrono::steady_clock::now() < until) {
            co_await c.send("x");
            auto m = co_await c.receive();
            EXPECT_TRUE(m.has_value());
            if (!m) break;
            ++rounds;
        }
        EXPECT_GT(rounds, 10);
        EXPECT_TRUE(c.is_open());
        co_await c.close();
        co_await echo.wait_finished(1);
    }());
    EXPECT_FALSE(echo.last_error);
}

TEST(Heartbeat, IdleConnectionIsClosedWith1001) {
    asio::io_context io;
    gw::server srv{io, local({.ping_interval = std::chrono::milliseconds(0), .idle_timeout = std::chrono::milliseconds(80)})};
    counting_echo echo(io);
    echo.start(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        auto c = co_await gw::connect(url(srv));
        co_await c.send("hello");
        EXPECT_EQ((co_await c.receive())->data, "hello");
        auto end = co_await c.receive();   // nothing more sent: the server closes
        EXPECT_FALSE(end.has_value());
        EXPECT_EQ(c.peer_close_code(), 1001);
        EXPECT_EQ(c.peer_close_reason(), "idle timeout");
        co_await echo.wait_finished(1);
    }());
}
