// Operating a server: its metrics through the API and as Prometheus text at GET /metrics, the
// health check, the logging hook, and a flood of connections against max_connections.
#include "gateway_support.hpp"

#include <mutex>

using asio::awaitable;
using gw::json;
using test::client;
using test::j;
using test::local;

namespace {

/// Sends a raw request and returns everything the server answers before it closes.
awaitable<std::string> ask(asio::io_context& io, std::uint16_t port, std::string request) {
    asio::ip::tcp::socket sock(io);
    co_await sock.async_connect({asio::ip::make_address("127.0.0.1"), port}, asio::use_awaitable);
    co_await asio::async_write(sock, asio::buffer(request), asio::use_awaitable);
    std::string out;
    char buf[4096];
    for (;;) {
        auto [ec, n] = co_await sock.async_read_some(asio::buffer(buf), asio::experimental::as_tuple(asio::use_awaitable));
        out.append(buf, n);
        if (ec) co_return out;
    }
}

const std::string upgrade =
    "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

std::uint64_t rejected(const gw::metrics& m, int status) {
    for (auto [s, n] : m.handshakes_rejected)
        if (s == status) return n;
    return 0;
}

} // namespace

TEST(Metrics, CountersGaugesAndHistogramsThroughTheApiAndPrometheusText) {
    asio::io_context io;
    gw::gateway app{io, local()};
    auto ns = app.of("/");
    ns.on("echo", [](gw::socket&, json data) { return data; });
    ns.on("join", [](gw::socket& s, std::string room) {
        s.join(room);
        return room;
    });
    test::run(io, [&]() -> awaitable<void> {
        // First, so that the refused connection is long gone (its end is seen on the server's next
        // turns) when the gauges are read.
        auto bad = co_await ask(io, app.port(), "NOT HTTP\r\n\r\n");
        EXPECT_EQ(bad.rfind("HTTP/1.1 400 ", 0), 0u);
        auto a = co_await client::open(app);
        auto b = co_await client::open(app);
        for (int i = 0; i < 10; ++i) co_await a.ask("echo", i);
        co_await b.ask("join", "x");
        co_await a.ask("join", "x");
        co_await a.ask("join", "y");

        auto m = app.metrics();
        EXPECT_EQ(m.connections, 2u);
        EXPECT_EQ(m.sockets, 2u);
        EXPECT_EQ(m.rooms, 2u);   // x and y; the id-rooms are not counted
        EXPECT_EQ(m.handshakes_accepted, 2u);
        EXPECT_EQ(rejected(m, 400), 1u);
        EXPECT_EQ(m.messages_in, 13u);
        EXPECT_EQ(m.messages_out, 13u);   // the replies (the 101 answers are not messages)
        EXPECT_GT(m.bytes_in, 13u * 6);       // a masked frame's header is at least 6 bytes
        EXPECT_GT(m.bytes_out, 13u * 2);
        std::uint64_t echoes = 0;
        for (const auto& h : m.handlers)
            if (h.event == "echo") echoes = h.count;
        EXPECT_EQ(echoes, 10u);

        auto text = co_await ask(io, app.port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        EXPECT_EQ(text.rfind("HTTP/1.1 200 ", 0), 0u) << text;
        EXPECT_NE(text.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << text;
        EXPECT_NE(text.find("\ngateway_connections 3\n"), std::string::npos) << text;   // the GET itself counts
        EXPECT_NE(text.find("\ngateway_handshakes_rejected_total{status=\"400\"} 1\n"), std::string::npos) << text;
        EXPECT_NE(text.find("\ngateway_handler_seconds_count{nsp=\"/\",event=\"echo\"} 10\n"), std::string::npos) << text;
        EXPECT_NE(text.find("gateway_handler_seconds_bucket{nsp=\"/\",event=\"echo\",le=\"+Inf\"} 10\n"), std::string::npos)
            << text;
        EXPECT_NE(text.find("\ngateway_rooms 2\n"), std::string::npos) << text;

        auto health = co_await ask(io, app.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        EXPECT_EQ(health.rfind("HTTP/1.1 200 ", 0), 0u) << health;
        EXPECT_NE(health.find("\r\n\r\nok\n"), std::string::npos);

        co_await a.c.close();
        co_await b.c.close();
    }());
}

TEST(Metrics, TheLoggingHookHearsRefusalsAndSlowConsumersAndIsSilentByDefault) {
    asio::io_context io;
    std::mutex lock;
    std::vector<std::pair<gw::log_level, std::string>> lines;
    auto o = local();
    o.log = [&](gw::log_level level, std::string_view line) {
        std::lock_guard hold(lock);
        lines.emplace_back(level, std::string(line));
    };
    o.allowed_origins = {"https://ok.example"};
    gw::gateway app{io, o};
    test::run(io, [&]() -> awaitable<void> {
        co_await ask(io, app.port(), "NOT HTTP\r\n\r\n");
        auto forbidden = upgrade;
        forbidden.insert(forbidden.size() - 2, "Origin: https://evil.example\r\n");
        auto r = co_await ask(io, app.port(), forbidden);
        EXPECT_EQ(r.rfind("HTTP/1.1 403 ", 0), 0u);
    }());
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[0].first, gw::log_level::info);
    EXPECT_NE(lines[0].second.find("malformed"), std::string::npos) << lines[0].second;
    EXPECT_NE(lines[0].second.find("127.0.0.1"), std::string::npos) << lines[0].second;
    EXPECT_NE(lines[1].second.find("403"), std::string::npos) << lines[1].second;
}

TEST(Metrics, AFloodOfConnectionsMeets503WhileConnectedClientsAreServed) {
    asio::io_context io;
    auto o = local();
    o.max_connections = 40;
    gw::gateway app{io, o};
    app.of("/").on("echo", [](gw::socket&, json data) { return data; });
    test::run(io, [&]() -> awaitable<void> {
        auto steady = co_await client::open(app);
        int upgraded = 0, refused = 0, other = 0, answered = 0;
        asio::steady_timer done(io, asio::steady_timer::time_point::max());
        std::vector<std::shared_ptr<asio::ip::tcp::socket>> kept;   // the upgraded ones stay open
        constexpr int flood = 200;
        for (int i = 0; i < flood; ++i) {
            asio::co_spawn(io, [&]() -> awaitable<void> {
                auto sock = std::make_shared<asio::ip::tcp::socket>(io);
                co_await sock->async_connect({asio::ip::make_address("127.0.0.1"), app.port()}, asio::use_awaitable);
                co_await asio::async_write(*sock, asio::buffer(upgrade), asio::use_awaitable);
                std::string head;
                char buf[1024];
                while (head.find("\r\n\r\n") == std::string::npos) {
                    auto [ec, n] = co_await sock->async_read_some(asio::buffer(buf), asio::experimental::as_tuple(asio::use_awaitable));
                    head.append(buf, n);
                    if (ec) break;
                }
                if (head.rfind("HTTP/1.1 101 ", 0) == 0) {
                    ++upgraded;
                    kept.push_back(sock);
                } else if (head.rfind("HTTP/1.1 503 ", 0) == 0) {
                    ++refused;
                } else {
                    ++other;
                }
                if (++answered == flood) done.cancel();
            }, [](std::exception_ptr) {});
        }
        // The connected client is served while the flood goes on.
        for (int i = 0; i < 20; ++i) EXPECT_EQ((co_await steady.ask("echo", i))["data"], i);
        while (answered < flood) co_await done.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
        EXPECT_EQ(upgraded, 39);   // 40 with the steady client
        EXPECT_EQ(refused, flood - 39);
        EXPECT_EQ(other, 0);
        EXPECT_EQ(rejected(app.metrics(), 503), static_cast<std::uint64_t>(flood - 39));
        EXPECT_EQ((co_await steady.ask("echo", "still")), j(R"({"event":"echo","data":"still"})"));
        co_await steady.c.close();
    }());
}
