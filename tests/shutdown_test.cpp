// Stopping a server over real loopback sockets: gentle close first, cut at the deadline.
#include "loopback_support.hpp"

#include <chrono>

using namespace test::loopback;
using asio::awaitable;

TEST(Shutdown, AwaitedStopCutsWhatDoesNotCloseByTheDeadline) {
    asio::io_context io;
    // A close_timeout far beyond the test's limit: only stop()'s deadline can end the connection.
    gw::server srv{io, local({.close_timeout = std::chrono::seconds(60)})};
    counting_echo echo(io);
    echo.start(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        raw_client deaf(io);   // upgrades, then neither reads nor answers
        auto head = co_await raw_upgrade(deaf, srv.port());
        EXPECT_EQ(head.rfind("HTTP/1.1 101 ", 0), 0u);
        auto ours = co_await gw::connect(url(srv));   // answers the close at once
        co_await srv.stop(std::chrono::milliseconds(200));
        EXPECT_EQ(echo.finished, 2);
        EXPECT_FALSE(co_await ours.receive());
        EXPECT_EQ(ours.peer_close_code(), 1001);
    }(), std::chrono::seconds(10));
}
