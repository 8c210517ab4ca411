// gw::redis::emitter (include/gw/redis/emitter.hpp) against real processes: a redis-server the test
// starts, and a Node Socket.IO 4 server on @socket.io/redis-adapter with socket.io-client clients
// in rooms (tests/interop/emitter_peer.mjs, which reports what each client received). Events to a
// namespace, rooms, exceptions, another namespace, binary; sockets_join/leave; disconnect_sockets;
// server_side_emit; and, with @socket.io/redis-emitter itself (tests/interop/js_emitter.mjs), the
// same calls publish the same bytes. Arguments: the paths of emitter_peer.mjs and js_emitter.mjs.
#include <gateway.hpp>

#include "node_process.hpp"
#include "redis_support.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>

namespace {

using asio::awaitable;
using gw::json;
using namespace std::chrono_literals;

std::string peer_script, js_emitter_script;

std::string to_hex(const std::vector<std::uint8_t>& b) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (auto c : b) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}
/// Binary as emitter_peer.mjs reports it.
json bin(std::vector<std::uint8_t> b) { return {{"$bin", to_hex(b)}}; }
json event(std::string name, json args = json::array()) { return {{"event", std::move(name)}, {"args", std::move(args)}}; }
json gone(std::string reason) { return {{"disconnect", std::move(reason)}}; }
using seen = std::vector<json>;

gw::redis::options quiet() {
    gw::redis::options o;
    o.log = [](gw::log_level level, std::string_view line) {
        if (level >= gw::log_level::warn) std::fprintf(stderr, "redis log: %.*s\n", static_cast<int>(line.size()), line.data());
    };
    return o;
}

/// A redis-server, a Node Socket.IO server on the Redis adapter with five clients, and an emitter:
///   a: "/" in r1   b: "/" in r1, r2   c: "/" in r2   d: "/chat" in r1   e: "/chat"
class RedisEmitter : public ::testing::Test {
protected:
    void SetUp() override {
        REQUIRE_REDIS_SERVER();
        srv_ = std::make_unique<test::redis::server>();
        const json clients = json::parse(R"([
            {"name": "a", "nsp": "/", "rooms": ["r1"]}, {"name": "b", "nsp": "/", "rooms": ["r1", "r2"]},
            {"name": "c", "nsp": "/", "rooms": ["r2"]}, {"name": "d", "nsp": "/chat", "rooms": ["r1"]},
            {"name": "e", "nsp": "/chat", "rooms": []}])");
        peer_ = std::make_unique<test::line_process>(std::vector<std::string>{"node", peer_script, srv_->url(), clients.dump()});
        auto ready = peer_->read_line(30s);
        ASSERT_TRUE(ready) << "emitter_peer.mjs did not get ready";
        ASSERT_TRUE(json::parse(*ready).contains("ready")) << *ready;
        for (const auto& c : clients) alive_.insert(c["name"].get<std::string>());
        em_ = std::make_unique<gw::redis::emitter>(io_.get_executor(), srv_->url(),
                                                   gw::redis::emitter_options{.key = "socket.io", .link = quiet()});
    }
    void TearDown() override {
        em_.reset();
        if (peer_) {
            peer_->close_stdin();   // the script's way out: it closes its clients and its Redis links
            EXPECT_EQ(peer_->wait(), 0);
        }
        peer_.reset();
        srv_.reset();
    }

    /// Waits until the peer has reported everything the emitter published so far, and returns what
    /// each client ("a"...) and each namespace's server ("server /chat") saw, in order. How: a
    /// "fence" event to both namespaces after the rest. Redis delivers one connection's publishes
    /// in order, the adapter hands them to Socket.IO in order and each client's socket keeps it, so
    /// a client that got the fence got everything before it; a client that was disconnected says so
    /// instead, and is not waited for again.
    std::map<std::string, seen> settle() {
        const int n = ++fences_;
        EXPECT_TRUE(em_->emit("fence", n));
        EXPECT_TRUE(em_->of("/chat").emit("fence", n));
        test::run(io_, em_->flush());
        std::map<std::string, seen> out;
        std::set<std::string> waiting = alive_;
        while (!waiting.empty()) {
            auto line = peer_->read_line();
            if (!line) {
                ADD_FAILURE() << "no report from the peer; still waiting for fence " << n << " at "
                              << json(std::vector<std::string>(waiting.begin(), waiting.end())).dump();
                break;
            }
            const json v = json::parse(*line);
            if (v.contains("server")) {
                out["server " + v["server"].get<std::string>()].push_back(event(v["event"], v["args"]));
                continue;
            }
            const auto who = v.at("client").get<std::string>();
            if (v.contains("disconnect")) {
                out[who].push_back(gone(v["disconnect"]));
                alive_.erase(who);
                waiting.erase(who);
            } else if (v["event"] == "fence") {
                EXPECT_EQ(v["args"], json::array({n})) << who << " got an old fence";
                waiting.erase(who);
            } else {
                out[who].push_back(event(v["event"], v["args"]));
            }
        }
        return out;
    }

    asio::io_context io_;
    std::unique_ptr<test::redis::server> srv_;
    std::unique_ptr<test::line_process> peer_;
    std::unique_ptr<gw::redis::emitter> em_;
    std::set<std::string> alive_;
    int fences_ = 0;
};

TEST_F(RedisEmitter, ReachesNamespacesRoomsAndNotTheExcepted) {
    auto& io = *em_;
    EXPECT_TRUE(io.emit("all", 1, "two", json{{"three", 3}}, -40000, 2.5));
    EXPECT_TRUE(io.to("r1").emit("r1"));
    EXPECT_TRUE(io.to("r1").in("r2").emit("r1-or-r2", nullptr));   // b is in both: it gets it once
    EXPECT_TRUE(io.to({"r1", "r2"}).except("r2").emit("r1-not-r2"));
    EXPECT_TRUE(io.except("r1").emit("not-r1", json::array({1, json::array()})));
    EXPECT_TRUE(io.to("nobody-here").emit("empty-room"));
    EXPECT_TRUE(io.of("chat").emit("chat-all", "κόσμε"));
    EXPECT_TRUE(io.of("/chat").to("r1").emit("chat-r1"));
    auto s = settle();
    EXPECT_EQ(s.at("a"), (seen{event("all", {1, "two", {{"three", 3}}, -40000, 2.5}), event("r1"),
                               event("r1-or-r2", {nullptr}), event("r1-not-r2")}));
    EXPECT_EQ(s.at("b"), (seen{event("all", {1, "two", {{"three", 3}}, -40000, 2.5}), event("r1"),
                               event("r1-or-r2", {nullptr})}));
    EXPECT_EQ(s.at("c"), (seen{event("all", {1, "two", {{"three", 3}}, -40000, 2.5}), event("r1-or-r2", {nullptr}),
                               event("not-r1", json::array({json::array({1, json::array()})}))}));
    EXPECT_EQ(s.at("d"), (seen{event("chat-all", {"κόσμε"}), event("chat-r1")}));
    EXPECT_EQ(s.at("e"), (seen{event("chat-all", {"κόσμε"})}));
    EXPECT_EQ(s.size(), 5u);   // and the servers heard nothing

    // Flags reach the servers (their bytes are checked against the JS emitter's below). A volatile
    // event is dropped for a client whose transport is still busy, as right after the events
    // above: sent to idle clients, it arrives.
    EXPECT_TRUE(io.to("r2").volatile_().compress(false).emit("flagged", true));
    s = settle();
    EXPECT_EQ(s.at("b"), (seen{event("flagged", {true})}));
    EXPECT_EQ(s.at("c"), (seen{event("flagged", {true})}));
    EXPECT_EQ(s.size(), 2u);
}

TEST_F(RedisEmitter, BinaryArgumentsArriveAsBinary) {
    const std::vector<std::uint8_t> all = [] {
        std::vector<std::uint8_t> v;
        for (int i = 0; i < 256; ++i) v.push_back(static_cast<std::uint8_t>(i));
        return v;
    }();
    const std::vector<std::uint8_t> big(70000, 0xab);
    EXPECT_TRUE(em_->to("r2").emit("bin", json::binary(all), json{{"nested", {json::binary({1, 2}), "text"}}},
                                   json::binary({}), json::binary(big)));
    const auto s = settle();
    const seen want{event("bin", {bin(all), {{"nested", {bin({1, 2}), "text"}}}, bin({}), bin(big)})};
    EXPECT_EQ(s.at("b"), want);
    EXPECT_EQ(s.at("c"), want);
    EXPECT_FALSE(s.contains("a"));
    EXPECT_FALSE(s.contains("d"));
}

TEST_F(RedisEmitter, ReservedNamesThrowAndPublishNothing) {
    for (const char* name : {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}) {
        EXPECT_THROW(em_->emit(name, 1), std::invalid_argument) << name;
        EXPECT_THROW(em_->of("/chat").to("r1").emit_args(name, json::array()), std::invalid_argument) << name;
    }
    EXPECT_THROW(em_->server_side_emit("connection"), std::invalid_argument);
    EXPECT_THROW(em_->emit_args("ok", json{{"not", "an array"}}), std::invalid_argument);
    EXPECT_TRUE(em_->emit_args("listed", json::array({1, "2"})));
    const auto s = settle();
    EXPECT_EQ(s.at("a"), (seen{event("listed", {1, "2"})}));
    EXPECT_FALSE(s.contains("d"));
}

TEST_F(RedisEmitter, SocketsJoinAndLeaveThenEmitToTheRoom) {
    auto& io = *em_;
    EXPECT_TRUE(io.in("r2").sockets_join("r3"));
    EXPECT_TRUE(io.to("r3").emit("r3"));
    EXPECT_TRUE(io.except("r1").sockets_join({"r4", "r5"}));   // c only: d and e are in /chat
    EXPECT_TRUE(io.to("r5").emit("r5"));
    EXPECT_TRUE(io.sockets_leave("r1"));   // everyone in "/", nobody in /chat
    EXPECT_TRUE(io.to("r1").emit("r1-after-leave"));
    EXPECT_TRUE(io.of("/chat").to("r1").emit("chat-r1-still"));
    EXPECT_TRUE(io.of("/chat").except("r1").sockets_join(std::vector<std::string>{"late"}));
    EXPECT_TRUE(io.of("/chat").to("late").emit("late"));
    const auto s = settle();
    EXPECT_EQ(s.at("b"), (seen{event("r3")}));
    EXPECT_EQ(s.at("c"), (seen{event("r3"), event("r5")}));
    EXPECT_FALSE(s.contains("a"));
    EXPECT_EQ(s.at("d"), (seen{event("chat-r1-still")}));
    EXPECT_EQ(s.at("e"), (seen{event("late")}));
}

TEST_F(RedisEmitter, DisconnectSockets) {
    auto& io = *em_;
    EXPECT_TRUE(io.in("r2").except("r1").disconnect_sockets());   // c
    EXPECT_TRUE(io.emit("after-c"));
    auto s = settle();
    EXPECT_EQ(s.at("c"), (seen{gone("io server disconnect")}));
    EXPECT_EQ(s.at("a"), (seen{event("after-c")}));
    EXPECT_EQ(s.at("b"), (seen{event("after-c")}));
    EXPECT_FALSE(s.contains("d"));

    EXPECT_TRUE(io.of("/chat").disconnect_sockets(true));   // d and e, their connections closed
    EXPECT_TRUE(io.emit("after-chat"));
    s = settle();
    // Socket.IO sends the DISCONNECT packet before it closes the connection: the same reason.
    EXPECT_EQ(s.at("d"), (seen{gone("io server disconnect")}));
    EXPECT_EQ(s.at("e"), (seen{gone("io server disconnect")}));
    EXPECT_EQ(s.at("a"), (seen{event("after-chat")}));
    EXPECT_EQ(s.at("b"), (seen{event("after-chat")}));
    EXPECT_EQ(alive_, (std::set<std::string>{"a", "b"}));
}

TEST_F(RedisEmitter, ServerSideEmitReachesTheServersOnly) {
    auto& io = *em_;
    EXPECT_TRUE(io.server_side_emit("hello-servers", 1, "x", json{{"k", {true, nullptr}}}));
    // Rooms do not apply to the servers, and binary travels as msgpack, which the adapter reads.
    EXPECT_TRUE(io.of("chat").to("r1").server_side_emit("hello-servers-bin", json::binary({0, 255}),
                                                        json{{"k", json::binary({3})}}));
    const auto s = settle();
    EXPECT_EQ(s.at("server /"), (seen{event("hello-servers", {1, "x", {{"k", {true, nullptr}}}})}));
    EXPECT_EQ(s.at("server /chat"), (seen{event("hello-servers-bin", {bin({0, 255}), {{"k", bin({3})}}})}));
    EXPECT_EQ(s.size(), 2u);   // no client heard it
}

// ==== the wire, against @socket.io/redis-emitter itself ====

struct published {
    std::string channel, payload;
    bool operator==(const published&) const = default;
};

/// Everything published on the Redis, in order.
struct recorder {
    recorder(asio::io_context& io, const std::string& url)
        : wake(io), sub(io.get_executor(), url, [this](const gw::redis::message& m) {
              got.push_back({m.channel, m.payload});
              wake.notify();
          }) {}
    awaitable<std::vector<published>> take(std::size_t n) {
        co_await wake.until([&] { return got.size() >= n; });
        auto out = std::move(got);
        got.clear();
        co_return out;
    }
    std::vector<published> got;
    test::redis::event wake;
    gw::redis::subscriber sub;
};

std::string printable(const published& p) {
    std::string out = p.channel + " ";
    for (unsigned char c : p.payload) {
        if (c >= 0x20 && c < 0x7f) out += static_cast<char>(c);
        else {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        }
    }
    return out;
}

TEST(RedisEmitterWire, SameBytesAsTheJsEmitter) {
    REQUIRE_REDIS_SERVER();
    test::redis::server srv;
    asio::io_context io;
    recorder rec(io, srv.url());
    test::run(io, rec.sub.psubscribe("*"));

    test::line_process js({"node", js_emitter_script, srv.url()});
    const auto line = js.read_line(30s);
    ASSERT_TRUE(line) << "js_emitter.mjs said nothing";
    const auto count = json::parse(*line).at("published").get<std::size_t>();
    EXPECT_EQ(js.wait(), 0);
    const auto theirs = test::run(io, rec.take(count));

    {
        // The same calls as js_emitter.mjs, in the same order.
        gw::redis::emitter e(io.get_executor(), srv.url(), {.key = "socket.io", .link = quiet()});
        EXPECT_TRUE(e.emit("all", 1, "two", json{{"three", 3}}, -40000, 2.5));
        EXPECT_TRUE(e.to("r1").emit("one-room", true));
        EXPECT_TRUE(e.to("r1").to("r2").except("r3").emit("rooms", nullptr));
        EXPECT_TRUE(e.to({"r1", "r2", "r1"}).emit("set", "x"));
        EXPECT_TRUE(e.of("chat").volatile_().compress(false).emit("flags", 1.5));
        EXPECT_TRUE(e.compress(true).volatile_().emit("flags-other-order"));
        EXPECT_TRUE(e.of("/chat").to("r1").emit("bin", json::binary({0, 1, 255}), json{{"nested", json::binary({7})}}));
        EXPECT_TRUE(e.in("r1").sockets_join("r9"));
        EXPECT_TRUE(e.except("r1").sockets_leave({"r2", "r3"}));
        EXPECT_TRUE(e.to("r1").disconnect_sockets(true));
        EXPECT_TRUE(e.of("/x").disconnect_sockets());
        EXPECT_TRUE(e.server_side_emit("hello", 1, "x", json{{"k", {true}}}));
        test::run(io, e.flush());
    }
    const auto ours = test::run(io, rec.take(count));
    ASSERT_EQ(ours.size(), theirs.size());
    for (std::size_t i = 0; i < ours.size(); ++i)
        EXPECT_EQ(ours[i], theirs[i]) << "publish " << i << "\n ours:   " << printable(ours[i])
                                      << "\n theirs: " << printable(theirs[i]);
}

// ==== the connection ====

TEST(RedisEmitterLink, UrlFromTheEnvironmentAndFlush) {
    REQUIRE_REDIS_SERVER();
    test::redis::server srv;
    asio::io_context io;
    recorder rec(io, srv.url());
    test::run(io, rec.sub.subscribe("socket.io#/#"));
    ::setenv("REDIS_URL", srv.url().c_str(), 1);
    gw::redis::emitter e(io.get_executor());   // empty URL: $REDIS_URL
    ::unsetenv("REDIS_URL");
    EXPECT_TRUE(e.emit("x"));
    test::run(io, e.flush());
    EXPECT_TRUE(e.connection()->connected());
    const auto got = test::run(io, rec.take(1));
    ASSERT_EQ(got.size(), 1u);
    std::string error;
    const auto b = gw::sio_redis::broadcast::decode(got[0].payload, error);
    ASSERT_TRUE(b) << error;
    EXPECT_EQ(b->uid, "emitter");
    EXPECT_EQ(b->data, json::array({"x"}));
}

TEST(RedisEmitterLink, SharesAClientAndReportsDrops) {
    // Nothing listens on this port: every command waits in the client's buffer, which holds one.
    asio::io_context io;
    gw::redis::options o;
    o.max_buffered_bytes = 64;
    auto c = std::make_shared<gw::redis::client>(io.get_executor(), "redis://127.0.0.1:" + std::to_string(test::redis::free_port()), o);
    gw::redis::emitter e(c, "prefix");
    EXPECT_TRUE(e.emit("first"));    // the first command always fits
    EXPECT_FALSE(e.emit("second"));  // the buffer is full: dropped, and said so
    EXPECT_EQ(c->dropped(), 1u);
    EXPECT_EQ(e.of("x").nsp(), "/x");
    EXPECT_THROW(gw::redis::emitter(std::shared_ptr<gw::redis::client>{}), std::invalid_argument);
    EXPECT_THROW(gw::redis::emitter(io.get_executor(), "http://nope"), std::system_error);
    c->close();   // flush() now fails instead of waiting for a Redis that never comes
    EXPECT_THROW(test::run(io, e.flush()), std::system_error);
}

} // namespace

int main(int argc, char** argv) {
    testing::InitGoogleTest(&argc, argv);
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s PATH/TO/emitter_peer.mjs PATH/TO/js_emitter.mjs\n", argv[0]);
        return 2;
    }
    peer_script = argv[1];
    js_emitter_script = argv[2];
    return RUN_ALL_TESTS();
}
