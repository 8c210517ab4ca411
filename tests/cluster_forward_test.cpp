// Engine.IO long-polling without sticky sessions: two gateways in one cluster over a real
// redis-server, and a Socket.IO client at the packet level over raw HTTP whose handshake went to
// node A and whose later requests go to node B. B carries them to A through Redis
// (redis/forward.hpp); A runs them against the session as if they had come directly.
// (Through nginx with socket.io-client: tests/interop/run_nginx_cluster.sh polling.)

#include "gateway_support.hpp"
#include "redis_support.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace {

using asio::awaitable;
using gw::json;
using asio::ip::tcp;
using namespace std::chrono_literals;

/// One HTTP exchange on its own connection (Connection: close): the status, the head, the body.
struct http_result {
    int status = 0;
    std::string head, body;
};

awaitable<http_result> http(std::uint16_t port, std::string method, std::string target, std::string body = {},
                            std::string extra_headers = {}) {
    tcp::socket s(co_await asio::this_coro::executor);
    co_await s.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), asio::use_awaitable);
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + extra_headers;
    if (method == "POST") req += "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    req += "\r\n";
    req += body;
    co_await asio::async_write(s, asio::buffer(req), asio::use_awaitable);
    std::string all;
    char buf[4096];
    for (;;) {
        auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), asio::experimental::as_tuple(asio::use_awaitable));
        all.append(buf, n);
        if (ec) break;
    }
    http_result r;
    const auto end = all.find("\r\n\r\n");
    r.head = all.substr(0, end);
    if (end != std::string::npos) r.body = all.substr(end + 4);
    if (all.size() > 12) r.status = std::atoi(all.c_str() + 9);
    co_return r;
}

std::string polling(const std::string& sid) { return "/socket.io/?EIO=4&transport=polling&sid=" + sid; }

/// A GET started now and awaited later: its result lands here, and the event wakes the waiter.
struct held_get {
    explicit held_get(asio::io_context& io) : done(io) {}
    std::optional<http_result> result;
    test::redis::event done;
};

/// Two gateways (Socket.IO on, CORS on) on one loop, in one cluster, with the same handlers.
struct two_nodes {
    test::redis::server redis;
    asio::io_context io;
    std::unique_ptr<gw::gateway> a, b;
    std::unique_ptr<gw::redis::cluster> ca, cb;

    explicit two_nodes(gw::redis::cluster_mode mode = gw::redis::cluster_mode::classic) {
        gw::gateway_options own;
        own.socketio.engine.cors.enabled = true;
        a = std::make_unique<gw::gateway>(io, test::local(), own);
        b = std::make_unique<gw::gateway>(io, test::local(), own);
        for (auto* app : {a.get(), b.get()}) {
            app->of("/").on("join", [](gw::socket& s, std::string room) {
                s.join(room);
                return room;
            });
            app->of("/").on("say", [](gw::socket& s, json d) -> awaitable<std::string> {
                co_await s.to(d["room"].get<std::string>()).emit("said", d["text"]);
                co_return "sent";
            });
        }
        gw::redis::cluster_options o;
        o.url = redis.url();
        o.requests_timeout = 1s;
        o.forward_timeout = 2s;
        o.mode = mode;   // forwarding uses plain PUBLISH and SUBSCRIBE in either mode   // a silent owner costs the test 2 s, not ping_interval + ping_timeout
        ca = std::make_unique<gw::redis::cluster>(*a, o);
        cb = std::make_unique<gw::redis::cluster>(*b, o);
    }

    awaitable<void> ready() {
        co_await ca->ready();
        co_await cb->ready();
    }
};

/// The main walk runs in both adapter modes: the sharded one's links subscribe with SSUBSCRIBE too.
class ClusterForwardModes : public ::testing::TestWithParam<gw::redis::cluster_mode> {};

TEST_P(ClusterForwardModes, PollingRequestsAtTheOtherNodeAreServedByTheSessionsNode) {
    REQUIRE_REDIS_SERVER();
    two_nodes n(GetParam());
    const std::uint16_t pa = n.a->port(), pb = n.b->port();
    test::run(n.io, [&]() -> awaitable<void> {
        co_await n.ready();
        EXPECT_EQ(n.ca->node_tag().size(), 4u);
        EXPECT_NE(n.ca->node_tag(), n.cb->node_tag());

        // The handshake at A: a sid of 20 URL-safe characters that starts with A's tag.
        auto open = co_await http(pa, "GET", "/socket.io/?EIO=4&transport=polling");
        EXPECT_EQ(open.status, 200) << open.head;
        EXPECT_TRUE(open.body.starts_with("0{\"sid\":\"")) << open.body;
        if (!open.body.starts_with("0{")) co_return;
        const std::string sid = json::parse(open.body.substr(1))["sid"].get<std::string>();
        EXPECT_EQ(sid.size(), 20u);
        EXPECT_TRUE(sid.starts_with(n.ca->node_tag())) << sid;

        // Everything else at B. The Socket.IO CONNECT, then its answer, with B's CORS header.
        auto post = co_await http(pb, "POST", polling(sid), "40", "Origin: http://example.test\r\n");
        EXPECT_EQ(post.status, 200) << post.head;
        EXPECT_EQ(post.body, "ok");
        EXPECT_NE(post.head.find("Access-Control-Allow-Origin: *"), std::string::npos) << post.head;
        auto connected = co_await http(pb, "GET", polling(sid));
        EXPECT_EQ(connected.status, 200);
        EXPECT_TRUE(connected.body.starts_with("40{\"sid\":\"")) << connected.body;
        EXPECT_NE(connected.head.find("text/plain; charset=UTF-8"), std::string::npos) << connected.head;

        // An event with an ack, both through B: the POST, then the ack in the next poll.
        post = co_await http(pb, "POST", polling(sid), "421[\"join\",\"r\"]");
        EXPECT_EQ(post.body, "ok");
        auto acked = co_await http(pb, "GET", polling(sid));
        EXPECT_EQ(acked.body, "431[\"r\"]");

        // A WebSocket client of A in the same room: what it says reaches the held poll at B.
        auto ws = co_await test::client::open(*n.a);
        EXPECT_EQ(co_await ws.ask("join", "r"), test::j(R"({"event":"join","data":"r"})"));
        auto held = std::make_shared<held_get>(n.io);
        asio::co_spawn(n.io, http(pb, "GET", polling(sid)), [held](std::exception_ptr, http_result r) {
            held->result = std::move(r);
            held->done.notify();
        });
        // The poll is held at A: until then nothing answers it (its arrival is seen in A's counter).
        while (n.a->metrics().cluster_forwards_served < 5) {
            asio::steady_timer t(n.io, 10ms);
            co_await t.async_wait(asio::use_awaitable);
        }
        EXPECT_FALSE(held->result.has_value());
        EXPECT_EQ(co_await ws.ask("say", test::j(R"({"room":"r","text":"hello"})")), test::j(R"({"event":"say","data":"sent"})"));
        co_await held->done.until([&] { return held->result.has_value(); });
        EXPECT_EQ(held->result->status, 200);
        EXPECT_EQ(held->result->body, "42[\"said\",\"hello\"]");

        // The other way: the polling client says something through B, and A's client hears it.
        post = co_await http(pb, "POST", polling(sid), "422[\"say\",{\"room\":\"r\",\"text\":\"back\"}]");
        EXPECT_EQ(post.body, "ok");
        EXPECT_EQ(co_await ws.next(), test::j(R"({"event":"said","data":"back"})"));
        acked = co_await http(pb, "GET", polling(sid));
        EXPECT_EQ(acked.body, "432[\"sent\"]");

        // Two GETs at once (one held at A, the other through B) are refused as the reference
        // server does: the second gets 400 and the session ends, the first gets a close packet.
        auto first = std::make_shared<held_get>(n.io);
        asio::co_spawn(n.io, http(pa, "GET", polling(sid)), [first](std::exception_ptr, http_result r) {
            first->result = std::move(r);
            first->done.notify();
        });
        const auto served = n.a->metrics().cluster_forwards_served;
        auto second = co_await http(pb, "GET", polling(sid));
        EXPECT_GT(n.a->metrics().cluster_forwards_served, served);
        if (second.status == 400) {
            EXPECT_EQ(second.body, R"({"code":3,"message":"Bad request"})");
            co_await first->done.until([&] { return first->result.has_value(); });
            EXPECT_EQ(first->result->body, "1");
        } else {   // B's GET came first: it is the held one, and A's direct GET the second
            EXPECT_EQ(second.body, "1");
            co_await first->done.until([&] { return first->result.has_value(); });
            EXPECT_EQ(first->result->status, 400);
        }
        // The session is gone: at A and through B alike.
        auto gone = co_await http(pb, "POST", polling(sid), "3");
        EXPECT_EQ(gone.status, 400);
        EXPECT_EQ(gone.body, R"({"code":1,"message":"Session ID unknown"})");

        const auto mb = n.b->metrics();
        EXPECT_GE(mb.cluster_forwarded, 8u);
        EXPECT_GE(mb.cluster_forwards_unanswered, 1u);
        EXPECT_NE(gw::to_prometheus(mb).find("gateway_cluster_forwarded_total"), std::string::npos);
    }());
}

INSTANTIATE_TEST_SUITE_P(Modes, ClusterForwardModes,
                         ::testing::Values(gw::redis::cluster_mode::classic, gw::redis::cluster_mode::sharded),
                         [](const auto& info) { return info.param == gw::redis::cluster_mode::classic ? "classic" : "sharded"; });

TEST(ClusterForward, UnknownSessionsAWebSocketProbeAnAbortedPollAndAGoneOwner) {
    REQUIRE_REDIS_SERVER();
    two_nodes n;
    const std::uint16_t pa = n.a->port(), pb = n.b->port();
    test::run(n.io, [&]() -> awaitable<void> {
        co_await n.ready();
        const std::string unknown_body = R"({"code":1,"message":"Session ID unknown"})";
        // A sid with A's tag that A does not have; a sid with a tag no node has.
        auto r = co_await http(pb, "POST", polling(n.ca->node_tag() + "AAAAAAAAAAAAAAAA"), "40");
        EXPECT_EQ(r.status, 400);
        EXPECT_EQ(r.body, unknown_body);
        std::string nobody = "zzzzAAAAAAAAAAAAAAAA";
        if (nobody.starts_with(n.ca->node_tag()) || nobody.starts_with(n.cb->node_tag())) nobody[0] = '_';
        r = co_await http(pb, "GET", polling(nobody));
        EXPECT_EQ(r.status, 400);
        EXPECT_EQ(r.body, unknown_body);

        auto open = co_await http(pa, "GET", "/socket.io/?EIO=4&transport=polling");
        if (!open.body.starts_with("0{")) {
            ADD_FAILURE() << open.body;
            co_return;
        }
        const std::string sid = json::parse(open.body.substr(1))["sid"].get<std::string>();
        // A WebSocket probe must reach the owner: at B it is refused as unknown (the client polls on).
        r = co_await http(pb, "GET", "/socket.io/?EIO=4&transport=websocket&sid=" + sid, {},
                          "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n");
        EXPECT_EQ(r.status, 400) << r.head;
        EXPECT_EQ(r.body, "Session ID unknown");
        // A's session still works through B.
        r = co_await http(pb, "POST", polling(sid), "40");
        EXPECT_EQ(r.body, "ok");
        r = co_await http(pb, "GET", polling(sid));
        EXPECT_TRUE(r.body.starts_with("40{")) << r.body;

        // A client that goes away while its poll is held at A through B: A ends the session at once
        // (as for its own held poll), not at the missed pong 45 s later.
        EXPECT_EQ(n.a->metrics().engineio_sessions, 1u);
        {
            const auto served = n.a->metrics().cluster_forwards_served;
            tcp::socket s(n.io);
            co_await s.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), pb), asio::use_awaitable);
            const std::string get = "GET " + polling(sid) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
            co_await asio::async_write(s, asio::buffer(get), asio::use_awaitable);
            while (n.a->metrics().cluster_forwards_served == served) {
                asio::steady_timer t(n.io, 10ms);
                co_await t.async_wait(asio::use_awaitable);
            }
            s.close();
        }
        while (n.a->metrics().engineio_sessions != 0) {
            asio::steady_timer t(n.io, 10ms);
            co_await t.async_wait(asio::use_awaitable);
        }

        // A leaves the cluster: once Redis has nobody on its channel, B says so at once.
        const std::string a_channel = "socket.io-forward#" + sid.substr(0, 4) + "#";
        n.ca.reset();
        gw::redis::client admin(n.io.get_executor(), n.redis.url());
        for (;;) {
            auto count = co_await admin.command("PUBSUB", "NUMSUB", a_channel);
            if (count.elements.size() == 2 && count.elements[1].integer == 0) break;
            asio::steady_timer t(n.io, 10ms);
            co_await t.async_wait(asio::use_awaitable);
        }
        auto t0 = std::chrono::steady_clock::now();
        r = co_await http(pb, "GET", polling(sid));
        EXPECT_EQ(r.status, 400);
        EXPECT_EQ(r.body, unknown_body);
        EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms);

        // A node that hangs (subscribed, never answering): B answers 400 at the deadline (2 s).
        gw::redis::subscriber silent(n.io.get_executor(), n.redis.url(), [](const gw::redis::message&) {});
        co_await silent.subscribe(a_channel);
        t0 = std::chrono::steady_clock::now();
        r = co_await http(pb, "GET", polling(sid));
        const auto waited = std::chrono::steady_clock::now() - t0;
        EXPECT_EQ(r.status, 400);
        EXPECT_EQ(r.body, unknown_body);
        EXPECT_GE(waited, 1900ms);
        EXPECT_LT(waited, 5s);
        silent.close();
        admin.close();
    }());
}

} // namespace
