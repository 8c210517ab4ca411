// Emitters reaching gateway.hpp's own clients: a gateway with namespaces "/" and "/chat" joins a
// cluster on a real redis-server (gw::redis::cluster), with WsAdapter clients in rooms, and
//  * Node's @socket.io/redis-emitter (tests/interop/emitter_driver.mjs) emits to the namespace, to
//    rooms, with exceptions, to /chat, with binary and several arguments, makes sockets join and
//    leave rooms, disconnects them, and emits to the servers (cluster::on_server_event);
//  * gw::redis::emitter does the same (a shorter list);
//  * a second node in a process of its own (tests/interop/cluster_node.cpp) is killed with SIGKILL,
//    and the cluster-wide count drops to the local members within a bound.
// Arguments: the paths of emitter_driver.mjs and of the cluster_node executable.
#include "gateway_support.hpp"
#include "node_process.hpp"
#include "redis_support.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace {

using asio::awaitable;
using gw::json;
using test::j;
using namespace std::chrono_literals;

std::string driver_script, node_binary;

/// An event as a WsAdapter client reads it.
json ev(std::string name, json data) {
    json m = json::object();
    m["event"] = std::move(name);
    m["data"] = std::move(data);
    return m;
}
/// What stands for "the connection ended" in a client's list.
const json gone = json::parse(R"({"gone":true})");
/// Binary in the WsAdapter envelope: the codec writes a json::binary as nlohmann/json prints it.
json bytes(std::vector<int> b) {
    json out = json::object();
    out["bytes"] = b;
    out["subtype"] = nullptr;
    return out;
}
using seen = std::vector<json>;
using report = std::map<std::string, seen>;

/// A redis-server; a gateway in its cluster with five WsAdapter clients:
///   a: "/" in r1   b: "/" in r1, r2   c: "/" in r2   d: "/chat" in r1   e: "/chat"
/// and either Node's emitter (start_node_emitter) or ours (start_cpp_emitter).
class ClusterEmitter : public ::testing::Test {
protected:
    void SetUp() override {
        REQUIRE_REDIS_SERVER();
        redis_ = std::make_unique<test::redis::server>();
        app_ = std::make_unique<gw::gateway>(io_, test::local());
        for (const char* nsp : {"/", "/chat"})
            app_->of(nsp).on("join", [](gw::socket& s, std::string room) {
                s.join(room);
                return room;
            });
        gw::redis::cluster_options o;
        o.url = redis_->url();
        o.requests_timeout = 1s;
        cluster_ = std::make_unique<gw::redis::cluster>(*app_, o);
        for (std::string nsp : {"/", "/chat"})
            cluster_->on_server_event(nsp, "hello-servers", [this, nsp](const json& args) {
                json h = json::object();
                h["nsp"] = nsp;
                h["args"] = args;
                heard_.push_back(std::move(h));
                return json();   // no acknowledgement: the emitter asks for none
            });
        test::run(io_, open_clients());
    }
    void TearDown() override {
        if (driver_) {
            driver_->close_stdin();   // the script's way out
            EXPECT_EQ(driver_->wait(), 0);
        }
    }

    awaitable<void> open_clients() {
        co_await cluster_->ready();
        const json spec = j(R"([{"name": "a", "nsp": "/", "rooms": ["r1"]}, {"name": "b", "nsp": "/", "rooms": ["r1", "r2"]},
                                {"name": "c", "nsp": "/", "rooms": ["r2"]}, {"name": "d", "nsp": "/chat", "rooms": ["r1"]},
                                {"name": "e", "nsp": "/chat", "rooms": []}])");
        for (const auto& s : spec) {
            auto c = std::make_unique<test::client>(co_await test::client::open(*app_, s["nsp"].get<std::string>()));
            for (const auto& room : s["rooms"]) {
                const json reply = co_await c->ask("join", room);
                EXPECT_EQ(reply["data"], room);
            }
            const std::string name = s["name"].get<std::string>();
            alive_.insert(name);
            clients_[name] = std::move(c);
        }
    }

    void start_node_emitter() {
        driver_ = std::make_unique<test::line_process>(std::vector<std::string>{"node", driver_script, redis_->url()});
        node_flush();   // connected: it answered
    }
    void start_cpp_emitter() {
        em_ = std::make_unique<gw::redis::emitter>(io_.get_executor(), redis_->url());
    }

    /// One call of Node's emitter (emitter_driver.mjs's JSON form).
    void node(const char* call) { ASSERT_TRUE(driver_->write(json::parse(call).dump() + "\n")); }
    void node(const json& call) { ASSERT_TRUE(driver_->write(call.dump() + "\n")); }
    void node_flush() {
        node(R"({"op": "flush"})");
        const auto line = driver_->read_line(30s);
        ASSERT_TRUE(line) << "emitter_driver.mjs did not answer";
        EXPECT_TRUE(json::parse(*line).contains("flushed")) << *line;
    }

    /// Waits until every client still connected has read everything the emitter published so
    /// far, and returns what each got, in order (only those that got something). How: a "fence"
    /// event to both namespaces, published after the rest on the same Redis connection; Redis
    /// hands a subscriber its messages in order, the cluster delivers them in order, and each
    /// WebSocket keeps it. A client whose connection ends says so and is not waited for again.
    report settle() {
        const int n = ++fences_;
        if (driver_) {
            for (const char* nsp : {"/", "/chat"}) {
                json call = json::object();
                call["op"] = "emit";
                call["nsp"] = nsp;
                call["event"] = "fence";
                call["args"] = json::array({n});
                node(call);
            }
            node_flush();
        } else {
            EXPECT_TRUE(em_->emit("fence", n));
            EXPECT_TRUE(em_->of("/chat").emit("fence", n));
            test::run(io_, em_->flush());
        }
        report out;
        for (auto& [name, c] : clients_) {
            if (!alive_.contains(name)) continue;
            seen got;
            test::run(io_, read_to_fence(*c, n, got), 15s);
            if (got.size() && got.back() == gone) alive_.erase(name);
            if (!got.empty()) out[name] = std::move(got);
        }
        return out;
    }
    static awaitable<void> read_to_fence(test::client& c, int n, seen& got) {
        for (;;) {
            json m = co_await c.next();
            if (m.is_null()) {
                got.push_back(gone);
                co_return;
            }
            if (m.value("event", std::string()) == "fence") {
                EXPECT_EQ(m["data"], n) << "an old fence";
                co_return;
            }
            got.push_back(std::move(m));
        }
    }

    // Destroyed in reverse: the driver, our emitter, the clients, the cluster (before its
    // gateway), the gateway, the loop, Redis.
    std::unique_ptr<test::redis::server> redis_;
    asio::io_context io_;
    std::unique_ptr<gw::gateway> app_;
    std::unique_ptr<gw::redis::cluster> cluster_;
    std::map<std::string, std::unique_ptr<test::client>> clients_;
    std::unique_ptr<gw::redis::emitter> em_;
    std::unique_ptr<test::line_process> driver_;
    std::set<std::string> alive_;
    std::vector<json> heard_;   // what cluster::on_server_event got: {"nsp", "args"}
    int fences_ = 0;
};

// ==== Node's @socket.io/redis-emitter ====

TEST_F(ClusterEmitter, NodeEmitterReachesNamespacesRoomsAndNotTheExcepted) {
    start_node_emitter();
    node(R"({"op": "emit", "event": "all", "args": [{"three": 3}]})");
    node(R"({"op": "emit", "to": ["r1"], "event": "one-room", "args": [true]})");
    node(R"({"op": "emit", "to": ["r1", "r2"], "event": "two-rooms", "args": [null]})");   // b once
    node(R"({"op": "emit", "to": ["r1", "r2"], "except": ["r2"], "event": "r1-not-r2", "args": ["x"]})");
    node(R"({"op": "emit", "except": ["r1"], "event": "not-r1", "args": [-40000]})");
    node(R"({"op": "emit", "to": ["nobody-here"], "event": "empty-room", "args": [1]})");
    node(R"({"op": "emit", "nsp": "/chat", "event": "chat-all", "args": ["κόσμε"]})");
    node(R"({"op": "emit", "nsp": "chat", "to": ["r1"], "event": "chat-r1", "args": [2.5]})");
    const auto s = settle();
    const report want{
        {"a", {ev("all", j(R"({"three":3})")), ev("one-room", true), ev("two-rooms", nullptr), ev("r1-not-r2", "x")}},
        {"b", {ev("all", j(R"({"three":3})")), ev("one-room", true), ev("two-rooms", nullptr)}},
        {"c", {ev("all", j(R"({"three":3})")), ev("two-rooms", nullptr), ev("not-r1", -40000)}},
        {"d", {ev("chat-all", "κόσμε"), ev("chat-r1", 2.5)}},
        {"e", {ev("chat-all", "κόσμε")}},
    };
    EXPECT_EQ(s, want);
    EXPECT_TRUE(heard_.empty());
    EXPECT_GT(cluster_->counters().received, 0u);
}

TEST_F(ClusterEmitter, NodeEmitterSeveralAndBinaryArguments) {
    start_node_emitter();
    // Several arguments reach a WsAdapter client as one list in "data"; none as an empty list.
    node(R"({"op": "emit", "event": "several", "args": [1, "two", [3], {"four": 4}]})");
    node(R"({"op": "emit", "nsp": "/chat", "to": ["r1"], "event": "no-args"})");
    // Buffers travel as msgpack bin and reach WsAdapter clients as the codec prints json::binary.
    node(R"({"op": "emit", "to": ["r2"], "event": "bin", "args": [{"$bin": "0001ff"}]})");
    node(R"({"op": "emit", "nsp": "/chat", "event": "bins", "args": [{"$bin": "07"}, {"nested": [{"$bin": ""}, "text"]}]})");
    const auto s = settle();
    const json several = j(R"([1, "two", [3], {"four": 4}])");
    const json bins = json::array({bytes({7}), {{"nested", {bytes({}), "text"}}}});
    const report want{
        {"a", {ev("several", several)}},
        {"b", {ev("several", several), ev("bin", bytes({0, 1, 255}))}},
        {"c", {ev("several", several), ev("bin", bytes({0, 1, 255}))}},
        {"d", {ev("no-args", json::array()), ev("bins", bins)}},
        {"e", {ev("bins", bins)}},
    };
    EXPECT_EQ(s, want);
}

TEST_F(ClusterEmitter, NodeEmitterSocketsJoinAndLeaveThenEmitToTheRoom) {
    start_node_emitter();
    node(R"({"op": "socketsJoin", "to": ["r2"], "rooms": ["r3"]})");   // b, c
    node(R"({"op": "emit", "to": ["r3"], "event": "r3", "args": [3]})");
    node(R"({"op": "socketsJoin", "except": ["r1"], "rooms": ["r4", "r5"]})");   // c only: d and e are in /chat
    node(R"({"op": "emit", "to": ["r5"], "event": "r5", "args": [5]})");
    // Published in this order, applied in this order: a and b get the event before they leave.
    node(R"({"op": "emit", "to": ["r1"], "event": "r1-before-leave", "args": [1]})");
    node(R"({"op": "socketsLeave", "rooms": ["r1"]})");   // everyone in "/", nobody in /chat
    node(R"({"op": "emit", "to": ["r1"], "event": "r1-after-leave", "args": [0]})");
    node(R"({"op": "emit", "nsp": "/chat", "to": ["r1"], "event": "chat-r1-still", "args": [1]})");
    node(R"({"op": "socketsJoin", "nsp": "/chat", "except": ["r1"], "rooms": ["late"]})");   // e
    node(R"({"op": "emit", "nsp": "/chat", "to": ["late"], "event": "late", "args": [true]})");
    const auto s = settle();
    const report want{
        {"a", {ev("r1-before-leave", 1)}},
        {"b", {ev("r3", 3), ev("r1-before-leave", 1)}},
        {"c", {ev("r3", 3), ev("r5", 5)}},
        {"d", {ev("chat-r1-still", 1)}},
        {"e", {ev("late", true)}},
    };
    EXPECT_EQ(s, want);
    // The rooms as the gateway itself sees them now.
    EXPECT_EQ(test::run(io_, app_->of("/").to("r1").as_local().count()), 0u);
    EXPECT_EQ(test::run(io_, app_->of("/").to("r3").as_local().count()), 2u);
}

TEST_F(ClusterEmitter, NodeEmitterDisconnectSockets) {
    start_node_emitter();
    node(R"({"op": "disconnectSockets", "to": ["r2"], "except": ["r1"]})");   // c
    node(R"({"op": "emit", "event": "after-c", "args": [1]})");
    auto s = settle();
    EXPECT_EQ(s, (report{{"a", {ev("after-c", 1)}}, {"b", {ev("after-c", 1)}}, {"c", {gone}}}));

    node(R"({"op": "disconnectSockets", "nsp": "/chat", "close": true})");   // d and e
    node(R"({"op": "emit", "event": "after-chat", "args": [2]})");
    s = settle();
    EXPECT_EQ(s, (report{{"a", {ev("after-chat", 2)}}, {"b", {ev("after-chat", 2)}}, {"d", {gone}}, {"e", {gone}}}));
    EXPECT_EQ(alive_, (std::set<std::string>{"a", "b"}));
    EXPECT_EQ(app_->of("/").count(), 2u);
    EXPECT_EQ(app_->of("/chat").count(), 0u);
}

TEST_F(ClusterEmitter, NodeEmitterServerSideEmitReachesTheServerOnly) {
    start_node_emitter();
    node(R"({"op": "serverSideEmit", "event": "hello-servers", "args": [1, "x", {"k": [true, null]}]})");
    node(R"({"op": "serverSideEmit", "nsp": "/chat", "event": "hello-servers", "args": ["chat"]})");
    node(R"({"op": "serverSideEmit", "event": "nobody-listens", "args": [1]})");
    const auto s = settle();
    EXPECT_TRUE(s.empty()) << json(s).dump();   // no client heard any of it
    EXPECT_EQ(json(heard_), j(R"([{"nsp": "/", "args": [1, "x", {"k": [true, null]}]}, {"nsp": "/chat", "args": ["chat"]}])"));
}

// ==== gw::redis::emitter ====

TEST_F(ClusterEmitter, CppEmitterReachesRoomsNamespacesWithItsArguments) {
    start_cpp_emitter();
    auto& io = *em_;
    EXPECT_TRUE(io.emit("all", json{{"three", 3}}));
    EXPECT_TRUE(io.to("r1").except("r2").emit("r1-not-r2", "x"));
    EXPECT_TRUE(io.to({"r1", "r2"}).emit("two-rooms", nullptr));
    EXPECT_TRUE(io.of("chat").to("r1").emit("chat-r1", 2.5));
    EXPECT_TRUE(io.emit("several", 1, "two", json::array({3})));
    EXPECT_TRUE(io.to("r2").emit("bin", json::binary({0, 1, 255})));
    const auto s = settle();
    const json several = j(R"([1, "two", [3]])");
    const report want{
        {"a", {ev("all", j(R"({"three":3})")), ev("r1-not-r2", "x"), ev("two-rooms", nullptr), ev("several", several)}},
        {"b", {ev("all", j(R"({"three":3})")), ev("two-rooms", nullptr), ev("several", several), ev("bin", bytes({0, 1, 255}))}},
        {"c", {ev("all", j(R"({"three":3})")), ev("two-rooms", nullptr), ev("several", several), ev("bin", bytes({0, 1, 255}))}},
        {"d", {ev("chat-r1", 2.5)}},
    };
    EXPECT_EQ(s, want);
}

TEST_F(ClusterEmitter, CppEmitterJoinsLeavesDisconnectsAndReachesTheServer) {
    start_cpp_emitter();
    auto& io = *em_;
    EXPECT_TRUE(io.in("r2").sockets_join("r3"));   // b, c
    EXPECT_TRUE(io.to("r3").emit("r3", 3));
    EXPECT_TRUE(io.to("r1").emit("r1-before-leave", 1));   // before they leave: a and b get it
    EXPECT_TRUE(io.sockets_leave("r1"));   // a, b
    EXPECT_TRUE(io.to("r1").emit("r1-after-leave", 0));
    EXPECT_TRUE(io.of("/chat").except("r1").sockets_join("late"));   // e
    EXPECT_TRUE(io.of("/chat").to("late").emit("late", true));
    EXPECT_TRUE(io.in("r2").except("r3").disconnect_sockets());   // nobody: b and c are in r3
    EXPECT_TRUE(io.in("r3").disconnect_sockets(true));   // b and c, after what was published before
    // Binary arguments travel to the servers as msgpack and arrive as binary.
    EXPECT_TRUE(io.server_side_emit("hello-servers", json::binary({0, 255}), json{{"k", "v"}}));
    auto s = settle();
    EXPECT_EQ(s, (report{{"a", {ev("r1-before-leave", 1)}},
                         {"b", {ev("r3", 3), ev("r1-before-leave", 1), gone}},
                         {"c", {ev("r3", 3), gone}},
                         {"e", {ev("late", true)}}}));
    EXPECT_EQ(alive_, (std::set<std::string>{"a", "d", "e"}));
    ASSERT_EQ(heard_.size(), 1u);
    EXPECT_EQ(heard_[0]["nsp"], "/");
    EXPECT_EQ(heard_[0]["args"], json::array({json::binary({0, 255}), {{"k", "v"}}}));
}

// ==== a node killed ====

TEST(ClusterNodeDeath, TheCountDropsToTheLocalMembersWithinTheRequestsTimeout) {
    REQUIRE_REDIS_SERVER();
    test::redis::server redis;
    asio::io_context io;
    gw::gateway app{io, test::local()};
    app.of("/").on("join", [](gw::socket& s, std::string room) {
        s.join(room);
        return room;
    });
    gw::redis::cluster_options o;
    o.url = redis.url();
    o.requests_timeout = 1s;
    gw::redis::cluster cluster(app, o);
    test::run(io, cluster.ready());

    ::setenv("REDIS_URL", redis.url().c_str(), 1);
    test::line_process other({node_binary});
    ::unsetenv("REDIS_URL");
    const auto line = other.read_line(30s);
    ASSERT_TRUE(line && line->starts_with("listening ")) << "cluster_node said " << line.value_or("nothing");
    const std::string there = "ws://127.0.0.1:" + line->substr(10) + "/";

    std::chrono::steady_clock::duration first{}, second{};
    test::run(io, [&]() -> awaitable<void> {
        auto local = co_await test::client::open(app);
        auto link = co_await gw::connect(there);
        test::client remote{std::move(link)};
        EXPECT_EQ(co_await local.ask("join", "r"), j(R"({"event":"join","data":"r"})"));
        EXPECT_EQ(co_await remote.ask("join", "r"), j(R"({"event":"join","data":"r"})"));
        EXPECT_EQ(co_await app.to("r").count(), 2u);   // this node's member and the other's

        EXPECT_EQ(other.terminate(SIGKILL), -1);   // no goodbye: the kernel closes its sockets
        // The request asks Redis how many nodes listen (PUBSUB NUMSUB) and waits for the others'
        // answers until requests_timeout: fast once Redis has seen the dead node's link close,
        // requests_timeout at worst.
        auto t0 = std::chrono::steady_clock::now();
        EXPECT_EQ(co_await app.to("r").count(), 1u);
        first = std::chrono::steady_clock::now() - t0;
        t0 = std::chrono::steady_clock::now();
        EXPECT_EQ(co_await app.to("r").count(), 1u);
        second = std::chrono::steady_clock::now() - t0;
        // Its connection went with it, without a closing handshake: receive() says so by throwing.
        bool ended = false;
        try {
            ended = (co_await remote.next()).is_null();
        } catch (const std::system_error&) {
            ended = true;
        }
        EXPECT_TRUE(ended);
    }());
    const auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
    std::printf("after SIGKILL: first count %.1f ms, second %.1f ms (requests_timeout 1000 ms, timeouts %llu)\n",
                ms(first), ms(second), static_cast<unsigned long long>(cluster.counters().timeouts));
    EXPECT_LT(first, 3s);   // a guard against hanging, not a performance claim
    EXPECT_LT(second, 3s);
}

} // namespace

int main(int argc, char** argv) {
    testing::InitGoogleTest(&argc, argv);
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s PATH/TO/emitter_driver.mjs PATH/TO/cluster_node\n", argv[0]);
        return 2;
    }
    driver_script = argv[1];
    node_binary = argv[2];
    return RUN_ALL_TESTS();
}
