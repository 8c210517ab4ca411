// Two gateways, one cluster: each joins a real redis-server the test starts (gw::redis::cluster),
// and their WsAdapter clients share rooms, broadcasts, counts, fetches, remote joins, server-side
// events and acknowledgements collected from both nodes. The sharded mode also over a Redis Cluster
// of three masters, with rooms on every master and a slot moved under them. (Node Socket.IO servers
// in the same cluster: tests/interop/mixed_cluster.mjs.)

#include "gateway_support.hpp"
#include "redis_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace {

using asio::awaitable;
using gw::json;
using test::j;

gw::options with_workers(std::size_t n) {
    auto o = test::local();
    o.workers = n;
    return o;
}

/// The handlers both nodes serve.
void serve(gw::gateway& app) {
    app.of("/").on("join", [](gw::socket& s, std::string room) {
        s.join(room);
        return room;
    });
    app.of("/").on("say", [](gw::socket& s, json d) -> awaitable<std::string> {
        co_await s.to(d["room"].get<std::string>()).emit("said", d["text"]);
        co_return "sent";
    });
    app.of("/").on("ping", [](gw::socket&) { return "pong"; });
}

/// Two gateways on one loop, in one cluster, with the same handlers.
struct two_nodes {
    test::redis::server redis;
    asio::io_context io;
    gw::gateway a{io, test::local()};
    gw::gateway b;
    std::unique_ptr<gw::redis::cluster> ca, cb;

    /// b_workers: node B's event loops (its clients spread over them).
    explicit two_nodes(gw::redis::cluster_mode mode = gw::redis::cluster_mode::classic, std::size_t b_workers = 1)
        : b(io, with_workers(b_workers)) {
        serve(a);
        serve(b);
        gw::redis::cluster_options o;
        o.url = redis.url();
        o.requests_timeout = std::chrono::seconds(1);   // a silent node costs the test 1 s, not 5
        o.mode = mode;
        ca = std::make_unique<gw::redis::cluster>(a, o);
        cb = std::make_unique<gw::redis::cluster>(b, o);
    }

    awaitable<void> ready() {
        co_await ca->ready();
        co_await cb->ready();
    }
};

std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
}

/// Each test runs in every mode: classic (PUBLISH, PSUBSCRIBE), sharded (Redis 7's SPUBLISH,
/// SSUBSCRIBE, the ClusterAdapter's messages) and streams (a Redis stream and pub/sub).
class Cluster : public ::testing::TestWithParam<gw::redis::cluster_mode> {};

TEST_P(Cluster, ARoomBroadcastReachesItsMembersOnBothNodesOnce) {
    REQUIRE_REDIS_SERVER();
    two_nodes n(GetParam());
    test::run(n.io, [&]() -> awaitable<void> {
        co_await n.ready();
        auto a1 = co_await test::client::open(n.a);
        auto a2 = co_await test::client::open(n.a);
        auto b1 = co_await test::client::open(n.b);
        auto b2 = co_await test::client::open(n.b);
        EXPECT_EQ(co_await a1.ask("join", "r"), j(R"({"event":"join","data":"r"})"));
        EXPECT_EQ(co_await a2.ask("join", "r"), j(R"({"event":"join","data":"r"})"));
        EXPECT_EQ(co_await b1.ask("join", "r"), j(R"({"event":"join","data":"r"})"));
        // From a node-A client: its room-mate on A and the member on B, not the sender, not b2.
        EXPECT_EQ(co_await a1.ask("say", j(R"({"room":"r","text":"hello"})")), j(R"({"event":"say","data":"sent"})"));
        EXPECT_EQ(co_await a2.next(), j(R"({"event":"said","data":"hello"})"));
        EXPECT_EQ(co_await b1.next(), j(R"({"event":"said","data":"hello"})"));
        // b2 was walked with b1: what it got before its pong would be there by now.
        EXPECT_EQ(co_await b2.ask("ping"), j(R"({"event":"ping","data":"pong"})"));
        // Exactly once: the next thing b1 and a2 read is their own pong.
        EXPECT_EQ(co_await b1.ask("ping"), j(R"({"event":"ping","data":"pong"})"));
        EXPECT_EQ(co_await a2.ask("ping"), j(R"({"event":"ping","data":"pong"})"));
        // The other way round.
        EXPECT_EQ(co_await b1.ask("say", j(R"({"room":"r","text":"back"})")), j(R"({"event":"say","data":"sent"})"));
        EXPECT_EQ(co_await a1.next(), j(R"({"event":"said","data":"back"})"));
        EXPECT_EQ(co_await a2.next(), j(R"({"event":"said","data":"back"})"));
        // A private message: a socket's id is a room on whichever node it lives.
        auto ids = co_await n.b.to("r").as_local().ids();
        EXPECT_EQ(ids.size(), 1u);
        if (ids.size() == 1) {
            co_await n.a.of("/").to(ids[0]).emit("whisper", "psst");
            EXPECT_EQ(co_await b1.next(), j(R"({"event":"whisper","data":"psst"})"));
        }
        EXPECT_EQ(co_await b2.ask("ping"), j(R"({"event":"ping","data":"pong"})"));
    }());
    EXPECT_GT(n.ca->counters().published, 0u);
    EXPECT_GT(n.cb->counters().received, 0u);
}

TEST_P(Cluster, CountsIdsAndFetchesSpanTheNodes) {
    REQUIRE_REDIS_SERVER();
    two_nodes n(GetParam());
    test::run(n.io, [&]() -> awaitable<void> {
        co_await n.ready();
        auto a1 = co_await test::client::open(n.a);
        auto b1 = co_await test::client::open(n.b);
        auto b2 = co_await test::client::open(n.b);
        co_await a1.ask("join", "r");
        co_await b1.ask("join", "r");
        co_await b2.ask("ping");
        EXPECT_EQ(co_await n.a.to("r").count(), 2u);
        EXPECT_EQ(co_await n.a.to("r").as_local().count(), 1u);
        EXPECT_EQ(n.b.of("/").count(), 2u);
        EXPECT_EQ(co_await n.b.of("/").sockets().count(), 3u);
        auto others = co_await n.a.of("/").except("r").ids();
        EXPECT_EQ(others.size(), 1u);   // b2 alone is in no room "r"
        auto found = co_await n.a.to("r").fetch_sockets();
        EXPECT_EQ(found.size(), 2u);
        for (const auto& s : found) {
            EXPECT_NE(std::find(s.rooms.begin(), s.rooms.end(), "r"), s.rooms.end());
            EXPECT_EQ(s.rooms.front(), s.id);
            EXPECT_EQ(s.handshake["url"], "/");
            EXPECT_TRUE(s.handshake["headers"].contains("sec-websocket-key"));
        }
    }());
}

TEST_P(Cluster, RemoteJoinsLeavesAndDisconnects) {
    REQUIRE_REDIS_SERVER();
    two_nodes n(GetParam());
    test::run(n.io, [&]() -> awaitable<void> {
        co_await n.ready();
        auto a1 = co_await test::client::open(n.a);
        auto b1 = co_await test::client::open(n.b);
        auto b2 = co_await test::client::open(n.b);
        co_await a1.ask("join", "r");
        co_await b1.ask("join", "r");
        co_await b2.ask("ping");
        // Node A makes every member of "r" join "s": b1 on B too, before A's next broadcast there.
        std::vector<std::string> s{"s"};
        co_await n.a.to("r").sockets_join(s);
        // Sharded, a one-room broadcast goes to the room's channel, which B subscribes to once b1
        // has joined there: a second room sends it on the namespace's channel, ordered after the join.
        const std::string also = GetParam() == gw::redis::cluster_mode::sharded ? "nobody" : "s";
        co_await n.a.of("/").to("s").to(also).emit("news", 1);
        EXPECT_EQ(co_await a1.next(), j(R"({"event":"news","data":1})"));
        EXPECT_EQ(co_await b1.next(), j(R"({"event":"news","data":1})"));
        EXPECT_EQ(co_await b2.ask("ping"), j(R"({"event":"ping","data":"pong"})"));
        co_await n.a.to("s").sockets_leave(s);
        co_await n.a.of("/").to("s").emit("news", 2);
        co_await n.a.of("/").to("r").emit("news", 3);
        EXPECT_EQ(co_await b1.next(), j(R"({"event":"news","data":3})"));
        EXPECT_EQ(co_await a1.next(), j(R"({"event":"news","data":3})"));
        // Disconnect the members of "r" from node A: b1 on B too.
        co_await n.a.of("/").to("r").disconnect_sockets();
        EXPECT_EQ(co_await b1.next(), json(nullptr));   // its connection ended
        EXPECT_EQ(co_await a1.next(), json(nullptr));
        EXPECT_EQ(co_await b2.ask("ping"), j(R"({"event":"ping","data":"pong"})"));
    }());
}

TEST_P(Cluster, AJoinFromAnotherNodeIsAppliedOnEveryWorkerBeforeTheNextBroadcast) {
    REQUIRE_REDIS_SERVER();
    two_nodes n(GetParam(), 3);   // B's clients land on three event loops in turn
    test::run(n.io, [&]() -> awaitable<void> {
        co_await n.ready();
        std::vector<test::client> bs;
        for (int i = 0; i < 6; ++i) {
            bs.push_back(co_await test::client::open(n.b));
            co_await bs.back().ask("join", "r");
        }
        std::vector<std::string> s{"s"};
        for (int round = 0; round < 20; ++round) {
            co_await n.a.to("r").sockets_join(s);
            co_await n.a.of("/").to("s").to("nobody").emit("news", round);
            co_await n.a.to("s").sockets_leave(s);
            for (auto& c : bs) {
                auto got = co_await c.next();
                EXPECT_EQ(got["data"], round) << got.dump();
            }
        }
        for (auto& c : bs) EXPECT_EQ(co_await c.ask("ping"), j(R"({"event":"ping","data":"pong"})"));
    }());
}

TEST_P(Cluster, ServerSideEventsAndAcknowledgementsFromEveryNode) {
    REQUIRE_REDIS_SERVER();
    two_nodes n(GetParam());
    int heard = 0;
    const std::vector<std::string> expected_replies{"from a1", "from b1"};
    n.cb->on_server_event("/", "hello", [&](const json& args) {
        ++heard;
        return json{{"from", "b"}, {"got", args}};
    });
    test::run(n.io, [&]() -> awaitable<void> {
        co_await n.ready();
        json args = json::array();
        args.push_back("x");
        args.push_back(2);
        auto answers = co_await n.ca->server_side_emit_with_ack("/", "hello", args);
        EXPECT_EQ(answers.size(), 1u);
        if (!answers.empty()) {
            EXPECT_EQ(answers[0], j(R"({"from":"b","got":["x",2]})"));
        }
        EXPECT_EQ(heard, 1);
        // A node without a handler stays silent: B asks A, which has none, and gets nothing back.
        auto none = co_await n.cb->server_side_emit_with_ack("/", "hello");
        EXPECT_TRUE(none.empty());

        // Acknowledgements from the clients of both nodes.
        auto a1 = co_await test::client::open(n.a);
        auto b1 = co_await test::client::open(n.b);
        co_await a1.ask("join", "r");
        co_await b1.ask("join", "r");
        auto answer = [](test::client& c, std::string reply) -> awaitable<void> {
            auto q = co_await c.next();
            EXPECT_EQ(q["event"], "question");
            json ack = json::object();
            ack["event"] = "ack";
            ack["ack"] = q["ack"];
            ack["data"] = reply;
            co_await c.c.send(ack.dump());
        };
        auto ex = co_await asio::this_coro::executor;
        asio::co_spawn(ex, answer(a1, "from a1"), asio::detached);
        asio::co_spawn(ex, answer(b1, "from b1"), asio::detached);
        auto got = co_await n.a.to("r").emit_with_ack("question", 42, std::chrono::seconds(5));
        EXPECT_EQ(got.missing, 0u);
        std::vector<std::string> replies;
        for (auto& r : got.replies) replies.push_back(r.get<std::string>());
        EXPECT_EQ(sorted(replies), expected_replies);
    }());
}

TEST_P(Cluster, RedisAwayLocalDeliveryGoesOnAndTheClusterComesBack) {
    REQUIRE_REDIS_SERVER();
    two_nodes n(GetParam());
    test::run(n.io, [&]() -> awaitable<void> {
        co_await n.ready();
        auto a1 = co_await test::client::open(n.a);
        auto a2 = co_await test::client::open(n.a);
        auto b1 = co_await test::client::open(n.b);
        co_await a1.ask("join", "r");
        co_await a2.ask("join", "r");
        co_await b1.ask("join", "r");
        n.redis.stop();
        // Local delivery does not wait for Redis.
        EXPECT_EQ(co_await a1.ask("say", j(R"({"room":"r","text":"alone"})")), j(R"({"event":"say","data":"sent"})"));
        EXPECT_EQ(co_await a2.next(), j(R"({"event":"said","data":"alone"})"));
        n.redis.start();
        // The links come back by themselves; ready() completes once Redis confirms the subscriptions again.
        co_await n.ready();
        EXPECT_EQ(co_await a1.ask("say", j(R"({"room":"r","text":"again"})")), j(R"({"event":"say","data":"sent"})"));
        EXPECT_EQ(co_await a2.next(), j(R"({"event":"said","data":"again"})"));
        // b1 gets "again"; "alone" may have been buffered and delivered on reconnect, or not.
        auto first = co_await b1.next();
        if (first["data"] == "alone") first = co_await b1.next();
        EXPECT_EQ(first, j(R"({"event":"said","data":"again"})"));
        // Both links of A are up again by now: its publish reached B.
        const auto m = n.a.metrics();
        EXPECT_TRUE(m.cluster);
        EXPECT_TRUE(m.cluster_connected);
        EXPECT_GE(m.cluster_reconnects, 2u);
        EXPECT_NE(gw::to_prometheus(m).find("gateway_cluster_connected 1"), std::string::npos);
    }());
}

INSTANTIATE_TEST_SUITE_P(Modes, Cluster,
                         ::testing::Values(gw::redis::cluster_mode::classic, gw::redis::cluster_mode::sharded,
                                           gw::redis::cluster_mode::streams),
                         [](const auto& info) {
                             switch (info.param) {
                             case gw::redis::cluster_mode::classic: return "classic";
                             case gw::redis::cluster_mode::sharded: return "sharded";
                             default: return "streams";
                             }
                         });

// ---- The streams mode keeping sessions in Redis

// A client may come back while its previous socket's farewell still runs (an on_disconnect hook
// that awaits, as one that writes to a database does): it is recovered from its node's hash of live
// sessions. When the old socket then goes, the new socket's entry in that hash must stay as it is,
// and no stale copy of the old one be saved for a later recovery to find, or the node's death would
// lose or roll back the client's session.
TEST(ClusterStreams, ARecoveredSocketKeepsItsLiveEntryWhenItsPredecessorLeavesAfterIt) {
    REQUIRE_REDIS_SERVER();
    test::redis::server redis;
    asio::io_context io;
    gw::gateway_options own;
    own.socketio.recovery.enabled = true;
    gw::gateway app(io, test::local(), own);
    serve(app);
    asio::steady_timer entered(io, asio::steady_timer::time_point::max()), gate(io, asio::steady_timer::time_point::max());
    bool hold = true;   // the first farewell only
    app.of("/").on_disconnect([&](gw::socket&, std::string_view) -> awaitable<void> {
        if (!std::exchange(hold, false)) co_return;
        entered.cancel();
        co_await gate.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    });
    gw::redis::cluster_options o;
    o.url = redis.url();
    o.mode = gw::redis::cluster_mode::streams;
    gw::redis::cluster cluster(app, o);
    gw::redis::client admin(io.get_executor(), redis.url());

    test::run(io, [&]() -> awaitable<void> {
        co_await cluster.ready();
        auto ada = co_await test::sio_client::open(app.port());
        co_await ada.send("40");
        const std::string hello = co_await ada.next();
        const std::string sid = test::field(hello, "sid"), pid = test::field(hello, "pid");
        EXPECT_EQ(pid.size(), 20u) << hello;
        co_await ada.send(R"(421["join","lobby"])");
        EXPECT_EQ(co_await ada.next(), R"(431["lobby"])");
        auto bob = co_await test::sio_client::open(app.port());
        co_await bob.send("40");
        (void)co_await bob.next();
        co_await bob.send(R"(421["say",{"room":"lobby","text":"one"}])");
        EXPECT_EQ(co_await bob.next(), R"(431["sent"])");
        const std::string one = co_await ada.next();   // 42["said","one","<offset>"]
        auto args = json::parse(one.substr(one.find('[')));
        EXPECT_EQ(args.size(), 3u) << one;
        if (args.size() != 3) co_return;
        const std::string offset = args[2].get<std::string>();

        // Her transport drops; her farewell's hook holds; she comes back, found live on this node.
        ada.drop();
        co_await entered.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
        auto again = co_await test::sio_client::open(app.port());
        co_await again.send("40{\"pid\":\"" + pid + "\",\"offset\":\"" + offset + "\"}");
        EXPECT_EQ(test::field(co_await again.next(), "sid"), sid);

        // The old socket's farewell goes on: it leaves its rooms, goes and would save itself.
        gate.cancel();
        co_await again.send(R"(421["ping"])");
        EXPECT_EQ(co_await again.next(), R"(431["pong"])");
        // Bob's broadcast is appended to the stream on the node's command link after any write of
        // the farewell; she gets it once Redis has appended it, so those are done by then.
        co_await bob.send(R"(422["say",{"room":"lobby","text":"two"}])");
        EXPECT_EQ(co_await bob.next(), R"(432["sent"])");
        const std::string two = co_await again.next();
        EXPECT_TRUE(two.starts_with(R"(42["said","two",)")) << two;

        EXPECT_EQ((co_await admin.command("EXISTS", o.session_prefix + pid)).integer, 0) << "a stale copy was saved";
        const auto nodes = co_await admin.command("SMEMBERS", o.session_prefix + "nodes");
        EXPECT_EQ(nodes.elements.size(), 1u);
        if (nodes.elements.size() != 1) co_return;
        const auto live = co_await admin.command("HGET", o.session_prefix + "node:" + nodes.elements[0].str, pid);
        EXPECT_TRUE(live.is_string()) << "her live entry is gone";
        if (!live.is_string()) co_return;
        const auto kept = gw::sio_redis::stored_session::decode(live.str);
        EXPECT_TRUE(kept.has_value());
        if (kept) {
            EXPECT_EQ(kept->sid, sid);
            EXPECT_NE(std::find(kept->rooms.begin(), kept->rooms.end(), "lobby"), kept->rooms.end());
        }
    }());
}

// ---- The sharded mode over a Redis Cluster of three masters

/// Two gateways in sharded mode on a three-master Redis Cluster (masters are nodes 0, 1 and 2 when
/// there are no replicas), each given a different node's URL (any node will do, a replica too: the
/// topology is read from it).
struct two_nodes_on_a_cluster {
    test::redis::cluster redis;
    asio::io_context io;
    gw::gateway a{io, test::local()};
    gw::gateway b{io, test::local()};
    std::unique_ptr<gw::redis::cluster> ca, cb;
    std::vector<std::string> a_log;   // what node A's Redis links said (they run on io, as the test does)

    explicit two_nodes_on_a_cluster(std::size_t replicas = 0) : redis(3, replicas) {
        serve(a);
        serve(b);
        gw::redis::cluster_options o;
        o.mode = gw::redis::cluster_mode::sharded;
        o.requests_timeout = std::chrono::seconds(2);
        o.url = redis.url(0);
        o.link.log = [this](gw::log_level, std::string_view line) { a_log.emplace_back(line); };
        ca = std::make_unique<gw::redis::cluster>(a, o);
        o.url = redis.url(1);
        o.link.log = nullptr;
        cb = std::make_unique<gw::redis::cluster>(b, o);
    }
    /// Node A logged a line containing what.
    bool a_said(std::string_view what) const {
        return std::any_of(a_log.begin(), a_log.end(), [&](const std::string& l) { return l.find(what) != std::string::npos; });
    }
    awaitable<void> ready() {
        co_await ca->ready();
        co_await cb->ready();
    }
    /// The room channel of room in "/", as the sharded adapter names it.
    static std::string channel(const std::string& room) { return "socket.io#/#" + room + "#"; }
    /// Rooms whose channels live on each master, in the masters' order.
    std::vector<std::string> rooms_on_every_master() const {
        const auto masters = redis.masters();
        std::vector<std::string> out(masters.size());
        std::size_t found = 0;
        for (int i = 0; found < out.size() && i < 1000; ++i) {
            const std::string room = "room-" + std::to_string(i);
            const auto at = std::find(masters.begin(), masters.end(), redis.owner(gw::redis::detail::key_slot(channel(room))));
            if (at != masters.end() && out[at - masters.begin()].empty()) {
                out[at - masters.begin()] = room;
                ++found;
            }
        }
        return out;
    }
    /// How many subscribers channel has at master i (PUBSUB SHARDNUMSUB asked there).
    long long subscribers(std::size_t i, const std::string& channel) const {
        auto r = test::redis::query(redis.port(i), {"PUBSUB", "SHARDNUMSUB", channel});
        return r.is_array() && r.elements.size() == 2 ? r.elements[1].integer : -1;
    }
    /// Until channel has n subscribers at master i (the gateways subscribe on their own time):
    /// polled on the loop, 10 s at most.
    awaitable<bool> until_subscribers(std::size_t i, const std::string& channel, long long n) {
        asio::steady_timer t(io);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (subscribers(i, channel) != n) {
            if (std::chrono::steady_clock::now() > deadline) co_return false;
            t.expires_after(std::chrono::milliseconds(20));
            co_await t.async_wait(asio::use_awaitable);
        }
        co_return true;
    }
};

TEST(RedisCluster, RoomsOnEveryMasterReachTheirMembersOnBothNodesOnce) {
    REQUIRE_REDIS_CLUSTER();
    two_nodes_on_a_cluster n;
    const auto rooms = n.rooms_on_every_master();
    for (const auto& r : rooms) ASSERT_FALSE(r.empty()) << "no room name found for some master";
    test::run(n.io, [&]() -> awaitable<void> {
        co_await n.ready();
        auto a1 = co_await test::client::open(n.a);
        auto a2 = co_await test::client::open(n.a);
        auto b1 = co_await test::client::open(n.b);
        auto b2 = co_await test::client::open(n.b);   // in no room
        std::vector<test::client*> everybody;   // (no braced lists in a coroutine: GCC 12)
        everybody.push_back(&a1);
        everybody.push_back(&a2);
        everybody.push_back(&b1);
        everybody.push_back(&b2);
        for (const auto& room : rooms) {
            EXPECT_EQ((co_await a1.ask("join", room))["data"], room);
            EXPECT_EQ((co_await b1.ask("join", room))["data"], room);
        }
        // Each room's channel is subscribed at the master serving its slot, by both nodes, and
        // nowhere else.
        for (std::size_t m = 0; m < rooms.size(); ++m) {
            EXPECT_TRUE(co_await n.until_subscribers(m, n.channel(rooms[m]), 2)) << rooms[m];
            for (std::size_t other = 0; other < rooms.size(); ++other) {
                if (other != m) {
                    EXPECT_EQ(n.subscribers(other, n.channel(rooms[m])), 0) << rooms[m];
                }
            }
        }
        for (const auto& room : rooms) {
            json say = json::object();
            say["room"] = room;
            say["text"] = "from a1 to " + room;
            EXPECT_EQ(co_await a1.ask("say", say), j(R"({"event":"say","data":"sent"})"));
            EXPECT_EQ((co_await b1.next())["data"], "from a1 to " + room);
            say["text"] = "from b1 to " + room;
            EXPECT_EQ(co_await b1.ask("say", say), j(R"({"event":"say","data":"sent"})"));
            EXPECT_EQ((co_await a1.next())["data"], "from b1 to " + room);
        }
        // Several rooms, and the whole namespace: the namespace's channel, on its own master.
        co_await n.b.of("/").to(rooms[0]).to(rooms[1]).emit("news", 1);
        EXPECT_EQ(co_await a1.next(), j(R"({"event":"news","data":1})"));
        EXPECT_EQ(co_await b1.next(), j(R"({"event":"news","data":1})"));
        co_await n.a.of("/").emit("news", 2);
        for (auto* c : everybody) EXPECT_EQ(co_await c->next(), j(R"({"event":"news","data":2})"));
        // A private message to a socket on the other node (its id: the namespace's channel).
        auto ids = co_await n.b.to(rooms[2]).as_local().ids();
        EXPECT_EQ(ids.size(), 1u);
        if (ids.size() == 1) {
            co_await n.a.of("/").to(ids[0]).emit("whisper", "psst");
            EXPECT_EQ(co_await b1.next(), j(R"({"event":"whisper","data":"psst"})"));
        }
        // Exactly once, nothing for the others: the next thing each reads is its own pong.
        for (auto* c : everybody) EXPECT_EQ(co_await c->ask("ping"), j(R"({"event":"ping","data":"pong"})"));
        // The last member gone, a room's channel is let go at its master.
        co_await n.a.of("/").to(rooms[1]).disconnect_sockets();
        EXPECT_EQ(co_await a1.next(), json(nullptr));
        EXPECT_EQ(co_await b1.next(), json(nullptr));
        EXPECT_TRUE(co_await n.until_subscribers(1, n.channel(rooms[1]), 0));
    }());
    EXPECT_GT(n.ca->counters().published, 0u);
    EXPECT_GT(n.cb->counters().received, 0u);
    EXPECT_EQ(n.ca->counters().dropped, 0u);
    EXPECT_TRUE(n.a_said("is a cluster node"));
}

TEST(RedisCluster, CountsFetchesServerSideEventsAndAcknowledgementsAcrossMasters) {
    REQUIRE_REDIS_CLUSTER();
    two_nodes_on_a_cluster n;
    const auto rooms = n.rooms_on_every_master();
    int heard = 0;
    n.cb->on_server_event("/", "hello", [&](const json& args) {
        ++heard;
        return json{{"from", "b"}, {"got", args}};
    });
    test::run(n.io, [&]() -> awaitable<void> {
        co_await n.ready();
        auto a1 = co_await test::client::open(n.a);
        auto b1 = co_await test::client::open(n.b);
        auto b2 = co_await test::client::open(n.b);
        for (const auto& room : rooms) co_await b1.ask("join", room);
        co_await a1.ask("join", rooms[2]);
        co_await b2.ask("join", rooms[0]);
        // Counts and fetches ask every node on the namespace's channel, wherever the rooms live.
        EXPECT_EQ(co_await n.a.to(rooms[0]).count(), 2u);
        EXPECT_EQ(co_await n.a.to(rooms[1]).count(), 1u);
        EXPECT_EQ(co_await n.a.to(rooms[2]).count(), 2u);
        EXPECT_EQ(co_await n.b.of("/").sockets().count(), 3u);
        auto found = co_await n.a.to(rooms[2]).fetch_sockets();
        EXPECT_EQ(found.size(), 2u);
        for (const auto& s : found) {
            EXPECT_NE(std::find(s.rooms.begin(), s.rooms.end(), rooms[2]), s.rooms.end());
        }
        // Server-side events with acknowledgements: answers come on the asker's own channel.
        json args = json::array();
        args.push_back("x");
        auto answers = co_await n.ca->server_side_emit_with_ack("/", "hello", args);
        EXPECT_EQ(answers.size(), 1u);
        if (!answers.empty()) {
            EXPECT_EQ(answers[0], j(R"({"from":"b","got":["x"]})"));
        }
        EXPECT_EQ(heard, 1);
        // Clients' acknowledgements from both nodes.
        auto answer = [](test::client& c, std::string reply) -> awaitable<void> {
            auto q = co_await c.next();
            EXPECT_EQ(q["event"], "question");
            json ack = json::object();
            ack["event"] = "ack";
            ack["ack"] = q["ack"];
            ack["data"] = reply;
            co_await c.c.send(ack.dump());
        };
        auto ex = co_await asio::this_coro::executor;
        asio::co_spawn(ex, answer(a1, "from a1"), asio::detached);
        asio::co_spawn(ex, answer(b1, "from b1"), asio::detached);
        auto got = co_await n.a.to(rooms[2]).emit_with_ack("question", 42, std::chrono::seconds(5));
        EXPECT_EQ(got.missing, 0u);
        std::vector<std::string> replies;
        for (auto& r : got.replies) replies.push_back(r.get<std::string>());
        const std::vector<std::string> expected{"from a1", "from b1"};
        EXPECT_EQ(sorted(replies), expected);
    }());
    EXPECT_EQ(n.ca->counters().timeouts, 0u);
    EXPECT_EQ(n.cb->counters().timeouts, 0u);
}

TEST(RedisCluster, ARoomsSlotMovedToAnotherMasterTakesItsSubscriptionsAndPublishesAlong) {
    REQUIRE_REDIS_CLUSTER();
    two_nodes_on_a_cluster n;
    const auto rooms = n.rooms_on_every_master();
    const std::string room = rooms[0];
    test::run(n.io, [&]() -> awaitable<void> {
        co_await n.ready();
        auto a1 = co_await test::client::open(n.a);
        auto b1 = co_await test::client::open(n.b);
        co_await a1.ask("join", room);
        co_await b1.ask("join", room);
        EXPECT_TRUE(co_await n.until_subscribers(0, n.channel(room), 2));
        // Master 0 gives the room's slot to master 2: Redis drops the channel's subscriptions there
        // (an unsolicited sunsubscribe); both nodes read the topology again and subscribe at master 2.
        n.redis.move_slot(gw::redis::detail::key_slot(n.channel(room)), 2);
        EXPECT_TRUE(co_await n.until_subscribers(2, n.channel(room), 2));
        EXPECT_EQ(n.subscribers(0, n.channel(room)), 0);
        json say = json::object();
        say["room"] = room;
        say["text"] = "after the move";
        EXPECT_EQ(co_await a1.ask("say", say), j(R"({"event":"say","data":"sent"})"));
        EXPECT_EQ(co_await b1.next(), j(R"({"event":"said","data":"after the move"})"));
        say["text"] = "and back";
        EXPECT_EQ(co_await b1.ask("say", say), j(R"({"event":"say","data":"sent"})"));
        EXPECT_EQ(co_await a1.next(), j(R"({"event":"said","data":"and back"})"));
    }());
    EXPECT_EQ(n.ca->counters().dropped, 0u);
}

TEST(RedisCluster, APublisherWithAnOutdatedSlotTableFollowsMoved) {
    REQUIRE_REDIS_CLUSTER();
    two_nodes_on_a_cluster n;
    const auto rooms = n.rooms_on_every_master();
    const std::string room = rooms[1];
    test::run(n.io, [&]() -> awaitable<void> {
        co_await n.ready();
        auto b1 = co_await test::client::open(n.b);
        co_await b1.ask("join", room);
        EXPECT_TRUE(co_await n.until_subscribers(1, n.channel(room), 1));
        // Node A holds nothing in that slot, so nothing tells it of the move: its first publish
        // there meets MOVED, and goes on to the master named.
        n.redis.move_slot(gw::redis::detail::key_slot(n.channel(room)), 0);
        EXPECT_TRUE(co_await n.until_subscribers(0, n.channel(room), 1));
        co_await n.a.of("/").to(room).emit("news", "moved");
        EXPECT_EQ(co_await b1.next(), j(R"({"event":"news","data":"moved"})"));
        co_await n.a.of("/").to(room).emit("news", "again");
        EXPECT_EQ(co_await b1.next(), j(R"({"event":"news","data":"again"})"));
    }());
    std::string said;
    for (const auto& l : n.a_log) said += l + "\n";
    EXPECT_TRUE(n.a_said("MOVED")) << "node A's publish did not meet MOVED, so the test proved nothing; it said:\n" << said;
    EXPECT_EQ(n.ca->counters().dropped, 0u);
}

TEST(RedisCluster, AMasterRestartedIsSubscribedAgain) {
    REQUIRE_REDIS_CLUSTER();
    two_nodes_on_a_cluster n;
    const auto rooms = n.rooms_on_every_master();
    const std::string room = rooms[2];
    test::run(n.io, [&]() -> awaitable<void> {
        co_await n.ready();
        auto a1 = co_await test::client::open(n.a);
        auto b1 = co_await test::client::open(n.b);
        co_await a1.ask("join", room);
        co_await b1.ask("join", room);
        EXPECT_TRUE(co_await n.until_subscribers(2, n.channel(room), 2));
        // Master 2 goes away and comes back on its port with its cluster file: the same node, the
        // same slots, and no subscription until the gateways' links take theirs again.
        n.redis.node(2).stop();
        n.redis.node(2).start();
        EXPECT_TRUE(co_await n.until_subscribers(2, n.channel(room), 2));
        json say = json::object();
        say["room"] = room;
        say["text"] = "back";
        EXPECT_EQ(co_await a1.ask("say", say), j(R"({"event":"say","data":"sent"})"));
        EXPECT_EQ(co_await b1.next(), j(R"({"event":"said","data":"back"})"));
        EXPECT_GE(n.a.metrics().cluster_reconnects, 2u);   // master 2's command and subscriber links
    }());
}

TEST(RedisCluster, AMasterKilledItsReplicaTakesOverAndTheChannelsFollow) {
    REQUIRE_REDIS_CLUSTER();
    two_nodes_on_a_cluster n(1);   // three masters, a replica each
    const std::string room = "room-0";
    const auto slot = gw::redis::detail::key_slot(n.channel(room));
    const std::size_t first = n.redis.owner(slot);
    ASSERT_LT(first, n.redis.size());
    test::run(n.io, [&]() -> awaitable<void> {
        co_await n.ready();
        auto a1 = co_await test::client::open(n.a);
        auto b1 = co_await test::client::open(n.b);
        co_await a1.ask("join", room);
        co_await b1.ask("join", room);
        EXPECT_TRUE(co_await n.until_subscribers(first, n.channel(room), 2));
        // The room's master dies; after cluster-node-timeout (2 s) its replica is elected in its
        // place. The gateways read the topology again while a master is unreachable, and take the
        // room's channel to the new master.
        n.redis.node(first).stop(SIGKILL);
        asio::steady_timer t(n.io);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        std::size_t now = first;
        while ((now = n.redis.owner(slot)) == first || now >= n.redis.size()) {
            if (std::chrono::steady_clock::now() > deadline) break;
            t.expires_after(std::chrono::milliseconds(50));
            co_await t.async_wait(asio::use_awaitable);
        }
        EXPECT_NE(now, first) << "no replica took over";
        if (now != first && now < n.redis.size()) {
            EXPECT_TRUE(co_await n.until_subscribers(now, n.channel(room), 2));
            json say = json::object();
            say["room"] = room;
            say["text"] = "after the failover";
            EXPECT_EQ(co_await a1.ask("say", say), j(R"({"event":"say","data":"sent"})"));
            EXPECT_EQ(co_await b1.next(), j(R"({"event":"said","data":"after the failover"})"));
            say["text"] = "and back";
            EXPECT_EQ(co_await b1.ask("say", say), j(R"({"event":"say","data":"sent"})"));
            EXPECT_EQ(co_await a1.next(), j(R"({"event":"said","data":"and back"})"));
        }
    }(), std::chrono::seconds(60));
}

} // namespace
