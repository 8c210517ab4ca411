// Backpressure over real loopback sockets: senders that wait at the high-water mark, slow consumers
// closed or skipped at the cap, volatile emits, the drain hook.
#include "gateway_support.hpp"

using asio::awaitable;
using gw::json;
using test::client;
using test::j;
using test::local;

namespace {

/// A client that upgrades by hand, can send masked frames, and reads server frames only when told:
/// the slow reader of these tests.
struct raw_peer {
    asio::ip::tcp::socket sock;
    std::string buffered;
    explicit raw_peer(asio::io_context& io) : sock(io) {
        // A small receive buffer: the kernel holds little, so the server's outbox has to.
        sock.open(asio::ip::tcp::v4());
        sock.set_option(asio::socket_base::receive_buffer_size(16 << 10));
    }

    awaitable<void> open(std::uint16_t port, std::string path = "/") {
        co_await sock.async_connect({asio::ip::make_address("127.0.0.1"), port}, asio::use_awaitable);
        const std::string request = "GET " + path +
                                    " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        co_await asio::async_write(sock, asio::buffer(request), asio::use_awaitable);
        while (buffered.find("\r\n\r\n") == std::string::npos)
            if (!co_await more()) co_return;
        buffered.erase(0, buffered.find("\r\n\r\n") + 4);
    }
    /// Opens, upgrades and joins room "slow" (the flood's room), the join's reply read.
    awaitable<void> join_slow(std::uint16_t port) {
        co_await open(port);
        co_await send(R"({"event":"join","data":"slow"})");
        co_await frame();
    }
    /// A masked text frame.
    awaitable<void> send(std::string_view text) {
        std::array<unsigned char, gw::detail::max_frame_header> head{};
        std::array<unsigned char, 4> key{1, 2, 3, 4};
        auto n = gw::detail::encode_header(head.data(), gw::opcode::text, true, text.size(), &key);
        std::string frame(reinterpret_cast<const char*>(head.data()), n);
        std::string body(text);
        gw::detail::apply_mask(reinterpret_cast<unsigned char*>(body.data()), body.size(), key);
        frame += body;
        co_await asio::async_write(sock, asio::buffer(frame), asio::use_awaitable);
    }
    awaitable<bool> more() {
        char buf[16 << 10];
        auto [ec, n] = co_await sock.async_read_some(asio::buffer(buf), asio::experimental::as_tuple(asio::use_awaitable));
        buffered.append(buf, n);
        co_return !ec;
    }
    /// The next frame's opcode and payload; opcode -1 once the server closed the connection.
    awaitable<std::pair<int, std::string>> frame() {
        for (;;) {
            gw::detail::frame_header h;
            gw::close_code why{};
            auto st = gw::detail::decode_header({reinterpret_cast<const unsigned char*>(buffered.data()), buffered.size()},
                                                false, h, why);
            if (st == gw::detail::decode_status::ok && buffered.size() >= h.size + h.length) {
                std::pair<int, std::string> f{static_cast<int>(h.op), buffered.substr(h.size, static_cast<std::size_t>(h.length))};
                buffered.erase(0, h.size + static_cast<std::size_t>(h.length));
                co_return f;
            }
            if (st == gw::detail::decode_status::error) co_return std::pair<int, std::string>{-1, {}};
            if (!co_await more()) co_return std::pair<int, std::string>{-1, {}};
        }
    }
};

/// A gateway whose "flood" event broadcasts `count` messages of `size` bytes to room "slow" without
/// waiting, recording the largest outbox any member of the room had after each.
struct flood_app {
    gw::gateway app;
    gw::namespace_ref ns;
    std::size_t largest = 0;
    std::string reason;
    int drains = 0;
    asio::steady_timer changed;

    flood_app(asio::io_context& io, gw::options o, bool volatile_emits)
        : app(io, o), ns(app.of("/")), changed(io, asio::steady_timer::time_point::max()) {
        ns.on("join", [](gw::socket& s, std::string room) {
            s.join(room);
            return room;
        });
        ns.on("flood", [this, volatile_emits](gw::socket& s, json spec) -> awaitable<int> {
            const int count = spec["count"];
            const std::string payload(spec["size"].get<std::size_t>(), 'p');
            for (int i = 0; i < count; ++i) {
                json data = {{"i", i}, {"p", payload}};
                auto to = s.to("slow");
                if (volatile_emits) co_await std::move(to).as_volatile().emit("item", data);
                else co_await to.emit("item", data);
                for (const auto& id : co_await ns.to("slow").ids())
                    if (auto* member = ns.find(id)) largest = std::max(largest, member->buffered_amount());
                // A turn of the loop between broadcasts, so writes go out meanwhile: what one turn
                // queues for a socket beyond the cap is over the cap, however fast it reads.
                co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
            }
            co_return count;
        });
        ns.on_disconnect([this](gw::socket&, std::string_view why) {
            reason = why;
            changed.cancel();
        });
        ns.on_drain([this](gw::socket&) {
            ++drains;
            changed.cancel();
        });
    }
    awaitable<void> wait_until(const std::function<bool()>& done) {
        while (!done()) co_await changed.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    }
};

gw::options small_outbox() {
    auto o = local();
    o.outbox_high_water = 32 << 10;
    o.max_outbox_bytes = 256 << 10;
    return o;
}

} // namespace

TEST(Backpressure, ASlowConsumerIsClosedAtTheCapAndItsOutboxNeverPassesIt) {
    asio::io_context io;
    auto o = small_outbox();
    o.close_timeout = std::chrono::milliseconds(200);   // the slow reader will not answer the close
    flood_app f(io, o, false);
    test::run(io, [&]() -> awaitable<void> {
        raw_peer slow(io);
        co_await slow.open(f.app.port());
        co_await slow.send(R"({"event":"join","data":"slow"})");
        EXPECT_EQ((co_await slow.frame()).second, R"({"event":"join","data":"slow"})");
        auto sender = co_await client::open(f.app);
        // 2000 x 8 KiB = 16 MiB for a reader that reads nothing.
        auto r = co_await sender.ask("flood", j(R"({"count": 2000, "size": 8192})"));
        EXPECT_EQ(r["data"], 2000);
        co_await f.wait_until([&] { return !f.reason.empty(); });
        EXPECT_EQ(f.reason, "slow consumer");
        // The cap, plus at most one message that found the outbox empty.
        EXPECT_LE(f.largest, (256u << 10) + 8192 + 64);
        // What the slow reader finds: a prefix of the items in order, then the close frame (1008)
        // if it was written before close_timeout ran out, else the end of the connection.
        int next = 0;
        for (;;) {
            auto fr = co_await slow.frame();
            if (fr.first != 1) {
                if (fr.first == 8) EXPECT_EQ(fr.second, std::string("\x03\xF0slow consumer", 15));
                else EXPECT_EQ(fr.first, -1);
                break;
            }
            EXPECT_EQ(json::parse(fr.second)["data"]["i"], next);
            ++next;
        }
        EXPECT_GT(next, 0);
        EXPECT_LT(next, 2000);
        co_await sender.c.close();
    }());
}

TEST(Backpressure, WithTheDropPolicyTheSlowConsumerStaysAndMissesWhatDidNotFit) {
    asio::io_context io;
    flood_app f(io, small_outbox(), false);
    f.ns.slow_consumer(gw::overflow::drop);
    test::run(io, [&]() -> awaitable<void> {
        raw_peer slow(io);
        co_await slow.join_slow(f.app.port());
        auto sender = co_await client::open(f.app);
        auto r = co_await sender.ask("flood", j(R"({"count": 2000, "size": 8192})"));
        EXPECT_EQ(r["data"], 2000);
        EXPECT_LE(f.largest, (256u << 10) + 8192 + 64);
        EXPECT_TRUE(f.reason.empty());   // still connected
        // Now it reads, in the background: the items that fitted, in increasing order.
        std::vector<int> got;
        bool ended = false;
        asio::co_spawn(io, [&]() -> awaitable<void> {
            for (;;) {
                auto fr = co_await slow.frame();
                if (fr.first == 1) got.push_back(json::parse(fr.second)["data"]["i"]);
                else if (fr.first != 9) break;   // pings aside
                f.changed.cancel();
            }
            ended = true;
            f.changed.cancel();
        }, [](std::exception_ptr) {});
        co_await f.wait_until([&] { return f.drains > 0 || ended; });   // the outbox drained: on_drain ran
        EXPECT_EQ(f.drains, 1);
        // The stream goes on: three more after the drain all arrive.
        co_await sender.ask("flood", j(R"({"count": 3, "size": 8192})"));
        co_await f.wait_until([&] { return (!got.empty() && got.back() == 2) || ended; });
        EXPECT_GE(got.size(), 4u);
        if (got.size() < 4) co_return;
        EXPECT_EQ(std::vector<int>(got.end() - 3, got.end()), (std::vector<int>{0, 1, 2}));
        const std::vector<int> first(got.begin(), got.end() - 3);
        EXPECT_TRUE(std::is_sorted(first.begin(), first.end()));
        EXPECT_EQ(std::adjacent_find(first.begin(), first.end()), first.end());
        EXPECT_LT(first.size(), 2000u);   // some were dropped
        EXPECT_FALSE(ended);
        co_await sender.c.close();
        slow.sock.close();
        co_await f.wait_until([&] { return !f.reason.empty(); });
    }());
}

TEST(Backpressure, VolatileEmitsSkipASocketAboveItsHighWaterMark) {
    asio::io_context io;
    auto o = small_outbox();
    o.max_outbox_bytes = 64 << 20;   // the cap is not what limits it here
    flood_app f(io, o, true);
    test::run(io, [&]() -> awaitable<void> {
        raw_peer slow(io);
        co_await slow.join_slow(f.app.port());
        auto sender = co_await client::open(f.app);
        co_await sender.ask("flood", j(R"({"count": 2000, "size": 8192})"));
        EXPECT_LE(f.largest, (32u << 10) + 8192 + 64);   // the high-water mark, plus one
        EXPECT_TRUE(f.reason.empty());
        co_await sender.c.close();
    }());
}

TEST(Backpressure, AStreamingHandlerWaitsForItsClient) {
    asio::io_context io;
    auto o = small_outbox();
    gw::gateway app{io, o};
    std::size_t largest_after_emit = 0;
    int done = 0;
    app.of("/").on("stream", [&](gw::socket& s, int count) -> awaitable<void> {
        const std::string payload(8192, 's');
        for (int i = 0; i < count; ++i) {
            json data = {{"i", i}, {"p", payload}};
            co_await s.emit("item", data);
            largest_after_emit = std::max(largest_after_emit, s.buffered_amount());
        }
        ++done;
        co_await s.emit("end");
    });
    test::run(io, [&]() -> awaitable<void> {
        raw_peer reader(io);
        co_await reader.open(app.port());
        co_await reader.send(R"({"event":"stream","data":1000})");
        // Its small receive buffer fills at once: the handler must not run ahead of it by more than
        // the high-water mark, and must still deliver everything in order.
        for (int i = 0; i < 1000; ++i) {
            auto fr = co_await reader.frame();
            EXPECT_EQ(fr.first, 1);
            if (fr.first != 1) break;
            EXPECT_EQ(json::parse(fr.second)["data"]["i"], i);
        }
        EXPECT_EQ(json::parse((co_await reader.frame()).second)["event"], "end");
        EXPECT_EQ(done, 1);
        EXPECT_LT(largest_after_emit, 32u << 10);
    }());
}
