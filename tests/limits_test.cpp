// The server's limits over real loopback sockets: frame and message sizes, fragments per message,
// connections in all and per address, allowed origins.
#include "loopback_support.hpp"

#include <chrono>
#include <string>
#include <utility>

using namespace test::loopback;
using asio::awaitable;
using asio::use_awaitable;

TEST(Limits, FrameOverMaxFrameBytesClosesWith1009) {
    asio::io_context io;
    // A short close_timeout: the raw client never sends its close frame.
    gw::server srv{io, local({.max_message_bytes = 1000, .max_frame_bytes = 100, .close_timeout = std::chrono::milliseconds(100)})};
    counting_echo echo(io);
    echo.start(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        raw_client rc(io);
        auto head = co_await raw_upgrade(rc, srv.port());
        EXPECT_EQ(head.rfind("HTTP/1.1 101 ", 0), 0u) << head;
        // Two frames of 60 make a message of 120: each frame is within the limit.
        co_await rc.write(client_frame(gw::opcode::text, std::string(60, 'a'), false) +
                          client_frame(gw::opcode::continuation, std::string(60, 'b')));
        std::string buffered = after_head(head);
        char buf[4096];
        while (buffered.size() < 2 + 120) {
            auto [ec, n] = co_await rc.sock.async_read_some(asio::buffer(buf), asio::experimental::as_tuple(use_awaitable));
            if (ec) break;
            buffered.append(buf, n);
        }
        EXPECT_EQ(buffered.substr(2, 120), std::string(60, 'a') + std::string(60, 'b'));
        buffered.erase(0, 2 + 120);
        co_await rc.write(client_frame(gw::opcode::text, std::string(101, 'c')));
        auto rest = buffered + co_await rc.read_all();
        EXPECT_EQ(rest, std::string("\x88\x02\x03\xF1", 4));   // close 1009
        co_await echo.wait_finished(1);
    }());
    EXPECT_EQ(echo.last_error, gw::errc::message_too_big);
}

TEST(Limits, MessageInTooManyFragmentsClosesWith1008) {
    asio::io_context io;
    gw::server srv{io, local({.max_fragments = 3, .close_timeout = std::chrono::milliseconds(100)})};
    counting_echo echo(io);
    echo.start(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        raw_client rc(io);
        auto head = co_await raw_upgrade(rc, srv.port());
        std::string three = client_frame(gw::opcode::text, "a", false) + client_frame(gw::opcode::continuation, "b", false) +
                            client_frame(gw::opcode::continuation, "c");
        std::string four = client_frame(gw::opcode::text, "a", false) + client_frame(gw::opcode::continuation, "b", false) +
                           client_frame(gw::opcode::continuation, "c", false) + client_frame(gw::opcode::continuation, "d");
        co_await rc.write(three + four);
        auto rest = after_head(head) + co_await rc.read_all();
        EXPECT_EQ(rest, std::string("\x81\x03" "abc" "\x88\x02\x03\xF0", 9));   // "abc" echoed, then close 1008
        co_await echo.wait_finished(1);
    }());
    EXPECT_EQ(echo.last_error, gw::errc::policy_violation);
}

TEST(Limits, OverMaxConnectionsTheUpgradeGets503UntilOneLeaves) {
    asio::io_context io;
    gw::server srv{io, local({.max_connections = 2})};
    counting_echo echo(io);
    echo.start(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        auto a = co_await gw::connect(url(srv));
        auto b = co_await gw::connect(url(srv));
        raw_client rc(io);
        auto refused = co_await rc.exchange(srv.port(), upgrade_request);
        EXPECT_EQ(refused.rfind("HTTP/1.1 503 ", 0), 0u) << refused;
        EXPECT_NE(refused.find("\r\nRetry-After: 1\r\n"), std::string::npos) << refused;
        gw::client_options plain;
        EXPECT_TRUE(co_await connect_fails(url(srv), plain));
        co_await a.close();
        co_await echo.wait_finished(1);
        auto c = co_await gw::connect(url(srv));   // a slot is free again
        co_await c.send("still here");
        EXPECT_EQ((co_await c.receive())->data, "still here");
        co_await b.close();
        co_await c.close();
    }());
}

TEST(Limits, OverMaxConnectionsPerAddressTheUpgradeGets429) {
    asio::io_context io;
    gw::server srv{io, local({.max_connections_per_address = 1})};
    counting_echo echo(io);
    echo.start(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        auto a = co_await gw::connect(url(srv));
        raw_client rc(io);
        auto refused = co_await rc.exchange(srv.port(), upgrade_request);
        EXPECT_EQ(refused.rfind("HTTP/1.1 429 ", 0), 0u) << refused;
        co_await a.close();
        co_await echo.wait_finished(1);
        auto b = co_await gw::connect(url(srv));
        co_await b.close();
    }());
}

TEST(Limits, OriginsOutsideTheAllowListGet403) {
    asio::io_context io;
    gw::server srv{io, local({.allowed_origins = {"https://good.example"}})};
    counting_echo echo(io);
    echo.start(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        for (auto [origin, status] : {std::pair<std::string, std::string>{"Origin: https://evil.example\r\n", "403"},
                                      {"Origin: https://good.example.evil\r\n", "403"},
                                      {"Origin: HTTPS://Good.Example\r\n", "101"},
                                      {"", "101"}}) {   // no Origin: not a browser
            raw_client rc(io);
            auto head = co_await raw_upgrade(rc, srv.port(), origin);
            EXPECT_EQ(head.rfind("HTTP/1.1 " + status + " ", 0), 0u) << origin << head;
        }
    }());
}
