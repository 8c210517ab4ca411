// Socket.IO on the gateway over loopback, seen byte by byte by a client that speaks Engine.IO over
// our own WebSocket client: connection-state recovery (pid, offsets, the missed events before the
// CONNECT reply, id, rooms and data back, recovered() in on_connect; a socket recovered while its
// predecessor's farewell still runs), both platforms in one room,
// the metrics per platform, a broadcast whose acknowledgements are collected per client, and a
// graceful stop.
#include <gateway.hpp>

#include "gateway_support.hpp"

#include <gtest/gtest.h>

namespace {

using asio::awaitable;
using gw::json;
using namespace std::chrono_literals;

using raw_client = test::sio_client;
using test::field;

TEST(SocketIo, RecoveryRestoresIdRoomsDataAndMissedEvents) {
    asio::io_context io;
    gw::gateway_options own;
    own.socketio.recovery.enabled = true;
    gw::gateway app(io, {.port = 0, .ping_interval = 0ms}, own);
    auto chat = app.of("/chat");
    std::vector<bool> recovered;   // what on_connect saw, in order
    chat.use([](gw::http_request& r) {
        if (auto token = r.bearer_token()) r.attachment = *token;
        else throw gw::http_refusal(401, "no token");
    });
    chat.on_connect([&](gw::socket& s) { recovered.push_back(s.recovered()); });
    chat.on("join", [](gw::socket& s, json room) { s.join(room.get<std::string>()); return "joined"; });
    chat.on("who", [](gw::socket& s) { return s.data_as<std::string>(); });
    chat.on("tell", [chat](gw::socket&, json d) -> awaitable<void> {
        co_await chat.to(d["room"].get<std::string>()).emit("news", d["text"]);
    });

    test::run(io, [&]() -> awaitable<void> {
        // ada connects, joins "lobby", and hears one piece of news (with its offset).
        auto ada = co_await raw_client::open(app.port());
        co_await ada.send(R"(40/chat,{"token":"ada"})");
        const std::string hello = co_await ada.next();
        const std::string sid = field(hello, "sid"), pid = field(hello, "pid");
        EXPECT_EQ(sid.size(), 20u);
        EXPECT_EQ(pid.size(), 20u);
        co_await ada.send(R"(42/chat,1["join","lobby"])");
        EXPECT_EQ(co_await ada.next(), R"(43/chat,1["joined"])");
        auto bob = co_await raw_client::open(app.port());
        co_await bob.send(R"(40/chat,{"token":"bob"})");
        (void)co_await bob.next();
        co_await bob.send(R"(42/chat,1["tell",{"room":"lobby","text":"one"}])");
        const std::string one = co_await ada.next();   // 42/chat,["news","one","<offset>"]
        auto args = json::parse(one.substr(one.find('[')));
        EXPECT_EQ(args.size(), 3u) << one;
        if (args.size() != 3) co_return;
        EXPECT_EQ(args[1], "one");
        const std::string offset = args[2].get<std::string>();

        // Her transport drops; two events follow, one for her room and one for another.
        ada.drop();
        co_await bob.send(R"(42/chat,2["tell",{"room":"lobby","text":"two"}])");
        co_await bob.send(R"(42/chat,3["tell",{"room":"games","text":"elsewhere"}])");
        co_await bob.send(R"(42/chat,4["tell",{"room":"lobby","text":"three"}])");
        // bob's acks are none (the handler returns nothing): wait until his third is handled by a
        // round trip that is answered.
        co_await bob.send(R"(42/chat,5["who"])");
        EXPECT_EQ(co_await bob.next(), R"(43/chat,5["bob"])");

        // She comes back with her pid and offset: what she missed comes first, then the same ids.
        auto again = co_await raw_client::open(app.port());
        co_await again.send("40/chat,{\"pid\":\"" + pid + "\",\"offset\":\"" + offset + "\"}");
        const std::string two = co_await again.next(), three = co_await again.next(), back = co_await again.next();
        EXPECT_NE(two.find(R"(["news","two",)"), std::string::npos) << two;
        EXPECT_NE(three.find(R"(["news","three",)"), std::string::npos) << three;
        EXPECT_EQ(field(back, "sid"), sid) << back;
        EXPECT_EQ(field(back, "pid"), pid);
        // Her data (the user) and her room came back; middleware was skipped (no token sent).
        co_await again.send(R"(42/chat,2["who"])");
        EXPECT_EQ(co_await again.next(), R"(43/chat,2["ada"])");
        co_await bob.send(R"(42/chat,6["tell",{"room":"lobby","text":"four"}])");
        EXPECT_NE((co_await again.next()).find(R"(["news","four",)"), std::string::npos);

        // A pid nobody kept (or no offset) is a new session, through the middleware again.
        auto stranger = co_await raw_client::open(app.port());
        co_await stranger.send(R"(40/chat,{"pid":"nope","offset":"1"})");
        EXPECT_EQ(co_await stranger.next(), R"(44/chat,{"data":{"status":401},"message":"no token"})");
        co_await stranger.send(R"(40/chat,{"pid":"nope","offset":"1","token":"cy"})");
        EXPECT_NE(field(co_await stranger.next(), "sid"), sid);
    }());
    const std::vector<bool> seen{false, false, true, false};
    EXPECT_EQ(recovered, seen);
}

/// A memory store whose save keeps the record, says so, then holds its caller (the farewell of the
/// socket that dropped) until the test lets it go.
class held_store final : public gw::session_store {
public:
    explicit held_store(asio::io_context& io) : saved(io, asio::steady_timer::time_point::max()), gate(io, asio::steady_timer::time_point::max()) {}
    asio::steady_timer saved, gate;   // cancelled: a save arrived; the test's go-ahead

    awaitable<void> save(std::string pid, gw::session_record r, std::chrono::milliseconds window) override {
        co_await inner_.save(std::move(pid), std::move(r), window);
        saved.cancel();
        co_await gate.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    }
    awaitable<std::optional<gw::session_record>> restore(std::string pid) override { return inner_.restore(std::move(pid)); }
    std::shared_ptr<const gw::prepared> append(std::string_view nsp, gw::kept_broadcast b,
                                               const std::function<std::shared_ptr<const gw::prepared>(std::string_view)>& encode) override {
        return inner_.append(nsp, std::move(b), encode);
    }
    awaitable<std::optional<std::vector<gw::kept_broadcast>>> missed(gw::session_record r) override { return inner_.missed(std::move(r)); }

private:
    gw::memory_session_store inner_;
};

// A client may come back while its previous socket's farewell still runs (a store's save
// suspended): the recovered socket keeps its id-room and rooms when the old one's farewell ends.
// (A recovery while the old socket is still in its rooms: tests/cluster_test.cpp, streams mode.)
TEST(SocketIo, ARecoveredSocketKeepsItsIdWhenItsPredecessorLeavesAfterIt) {
    asio::io_context io;
    auto store = std::make_shared<held_store>(io);
    gw::gateway_options own;
    own.socketio.recovery.enabled = true;
    own.socketio.recovery.store = store;
    gw::gateway app(io, {.port = 0, .ping_interval = 0ms}, own);
    auto chat = app.of("/chat");
    chat.on("join", [](gw::socket& s, json room) { s.join(room.get<std::string>()); return "joined"; });
    chat.on("tell", [chat](gw::socket&, json d) -> awaitable<bool> {
        co_await chat.to(d["to"].get<std::string>()).emit("news", d["text"]);
        co_return true;
    });

    test::run(io, [&]() -> awaitable<void> {
        auto ada = co_await raw_client::open(app.port());
        co_await ada.send(R"(40/chat,{})");
        const std::string hello = co_await ada.next();
        const std::string sid = field(hello, "sid"), pid = field(hello, "pid");
        co_await ada.send(R"(42/chat,1["join","lobby"])");
        EXPECT_EQ(co_await ada.next(), R"(43/chat,1["joined"])");
        auto bob = co_await raw_client::open(app.port());
        co_await bob.send(R"(40/chat,{})");
        (void)co_await bob.next();
        co_await bob.send(R"(42/chat,1["tell",{"to":"lobby","text":"one"}])");
        EXPECT_EQ(co_await bob.next(), R"(43/chat,1[true])");
        const std::string one = co_await ada.next();
        auto args = json::parse(one.substr(one.find('[')));
        EXPECT_EQ(args.size(), 3u) << one;
        if (args.size() != 3) co_return;
        const std::string offset = args[2].get<std::string>();

        // Her transport drops; her farewell takes her out of her rooms, saves her and is held there.
        ada.drop();
        co_await store->saved.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
        auto again = co_await raw_client::open(app.port());
        co_await again.send("40/chat,{\"pid\":\"" + pid + "\",\"offset\":\"" + offset + "\"}");
        EXPECT_EQ(field(co_await again.next(), "sid"), sid);

        // The old socket's farewell ends: the new one stays in the rooms and holds the id.
        store->gate.cancel();
        co_await bob.send("42/chat,2[\"tell\",{\"to\":\"" + sid + "\",\"text\":\"to you\"}]");
        EXPECT_EQ(co_await bob.next(), R"(43/chat,2[true])");
        EXPECT_NE((co_await again.next()).find(R"(["news","to you")"), std::string::npos);
        co_await bob.send(R"(42/chat,3["tell",{"to":"lobby","text":"to the lobby"}])");
        EXPECT_EQ(co_await bob.next(), R"(43/chat,3[true])");
        EXPECT_NE((co_await again.next()).find(R"(["news","to the lobby")"), std::string::npos);
    }());
}

TEST(SocketIo, BothPlatformsShareRoomsAndMetricsCountEach) {
    asio::io_context io;
    gw::gateway app(io, {.port = 0});
    auto chat = app.of("/chat");
    chat.on("join", [](gw::socket& s, json room) { s.join(room.get<std::string>()); return true; });
    chat.on("shout", [chat](gw::socket&, json d) -> awaitable<void> { co_await chat.to("lobby").emit("heard", d); });

    test::run(io, [&]() -> awaitable<void> {
        auto ws = co_await gw::connect("ws://127.0.0.1:" + std::to_string(app.port()) + "/chat");
        co_await ws.send(R"({"event":"join","data":"lobby","id":1})");
        EXPECT_EQ((co_await ws.receive())->data, R"({"event":"join","data":true,"id":1})");
        auto sio = co_await raw_client::open(app.port());
        co_await sio.send("40/chat,");
        (void)co_await sio.next();
        co_await sio.send(R"(42/chat,7["join","lobby"])");
        EXPECT_EQ(co_await sio.next(), "43/chat,7[true]");

        const gw::metrics m = app.metrics();
        EXPECT_EQ(m.sockets, 2u);
        EXPECT_EQ(m.socketio_sockets, 1u);
        EXPECT_EQ(m.engineio_sessions, 1u);
        EXPECT_EQ(m.engineio_polling, 0u);
        EXPECT_NE(gw::to_prometheus(m).find("gateway_engineio_sessions 1\n"), std::string::npos);

        // One broadcast, each platform in its own format.
        co_await sio.send(R"(42/chat,["shout",{"n":1}])");
        EXPECT_EQ((co_await ws.receive())->data, R"({"event":"heard","data":{"n":1}})");
        EXPECT_EQ(co_await sio.next(), R"(42/chat,["heard",{"n":1}])");

        // A graceful stop: the Socket.IO session gets a close packet, the WebSocket client 1001,
        // and the stop completes once both have gone (the clients read meanwhile, as clients do).
        bool stopped = false;
        asio::steady_timer done(io, asio::steady_timer::time_point::max());
        asio::co_spawn(io, app.stop(5s), [&](std::exception_ptr) {
            stopped = true;
            done.cancel();
        });
        EXPECT_EQ(co_await sio.next(), "1");
        EXPECT_EQ(co_await sio.next(), "(closed)");
        EXPECT_FALSE((co_await ws.receive()).has_value());
        EXPECT_EQ(ws.peer_close_code(), 1001);
        if (!stopped) co_await done.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
        EXPECT_TRUE(stopped);
        EXPECT_EQ(app.metrics().engineio_sessions, 0u);
    }());
}

TEST(SocketIo, ABroadcastWithAcksCollectsEachClientsAnswerOnBothPlatformsAndWorkers) {
    asio::io_context io;
    gw::gateway app(io, {.port = 0, .workers = 2});
    auto chat = app.of("/chat");
    chat.on("join", [](gw::socket& s, json room) { s.join(room.get<std::string>()); return true; });
    // The room's members answer (or not) while the asker waits: a Socket.IO client, a NestJS
    // client, and a Socket.IO client that never answers, on whichever worker each landed.
    chat.on("poll", [chat](gw::socket&, json) -> awaitable<json> {
        // as_local(): this process's sockets, which in one process are all of them.
        const gw::acks a = co_await chat.to("lobby").as_local().emit_with_ack("question", 41, 3s);
        co_return json{{"replies", a.replies}, {"missing", a.missing}};
    });

    test::run(io, [&]() -> awaitable<void> {
        auto answering = co_await raw_client::open(app.port());
        auto silent = co_await raw_client::open(app.port());
        // A named coroutine, not a loop over {&a, &b}: GCC 12 mishandles braced lists in coroutines.
        auto enter = [](raw_client& c) -> awaitable<void> {
            co_await c.send("40/chat,");
            (void)co_await c.next();
            co_await c.send(R"(42/chat,1["join","lobby"])");
            EXPECT_EQ(co_await c.next(), "43/chat,1[true]");
        };
        co_await enter(answering);
        co_await enter(silent);
        auto ws = co_await gw::connect("ws://127.0.0.1:" + std::to_string(app.port()) + "/chat");
        co_await ws.send(R"({"event":"join","data":"lobby","id":1})");
        EXPECT_EQ((co_await ws.receive())->data, R"({"event":"join","data":true,"id":1})");

        co_await answering.send(R"(42/chat,2["poll"])");
        // Each client is asked with an ack id of its own socket (the first of each).
        EXPECT_EQ(co_await answering.next(), R"(42/chat,1["question",41])");
        EXPECT_EQ(co_await silent.next(), R"(42/chat,1["question",41])");
        auto asked = json::parse((co_await ws.receive())->data);
        EXPECT_EQ(asked["event"], "question");
        EXPECT_EQ(asked["data"], 41);
        co_await answering.send("43/chat,1[42]");
        json answer = json::object();
        answer["event"] = "ack";
        answer["ack"] = asked["ack"];
        answer["data"] = 43;
        co_await ws.send(answer.dump());
        const auto reply = co_await answering.next();
        EXPECT_TRUE(reply.starts_with("43/chat,2[")) << reply;
        auto result = json::parse(reply.substr(reply.find('[')), nullptr, false)[0];
        EXPECT_EQ(result["missing"], 1);
        std::vector<int> replies;
        for (const auto& r : result["replies"]) replies.push_back(r.get<int>());
        std::sort(replies.begin(), replies.end());
        EXPECT_EQ(replies.size(), 2u);
        EXPECT_EQ(replies.front(), 42);
        EXPECT_EQ(replies.back(), 43);
        co_await ws.close();
    }());
}

TEST(SocketIo, TheHandshakeTellsWhenWhetherSecureAndWhetherCrossOrigin) {
    asio::io_context io;
    gw::gateway app(io, {.port = 0});
    std::vector<gw::http_request> seen;
    app.of("/").on_connect([&](gw::socket& s) { seen.push_back(s.handshake()); });
    const auto before = std::chrono::system_clock::now();
    test::run(io, [&]() -> awaitable<void> {
        const std::string url = "ws://127.0.0.1:" + std::to_string(app.port()) + "/socket.io/?EIO=4&transport=websocket";
        gw::client_options from_a_page;
        from_a_page.headers.emplace_back("Origin", "http://example.test");
        auto plain = co_await gw::connect(url);
        auto page = co_await gw::connect(url, from_a_page);
        auto enter = [](gw::connection& c) -> awaitable<void> {
            (void)co_await c.receive();   // the open packet
            co_await c.send("40");
            (void)co_await c.receive();   // the CONNECT reply: on_connect runs in the same turn
        };
        co_await enter(plain);
        co_await enter(page);
        co_await plain.close();
        co_await page.close();
    }());
    const auto after = std::chrono::system_clock::now();
    ASSERT_EQ(seen.size(), 2u);
    for (const auto& r : seen) {
        EXPECT_GE(r.issued(), before);
        EXPECT_LE(r.issued(), after);
        EXPECT_FALSE(r.secure());
    }
    EXPECT_FALSE(seen[0].cross_origin());
    EXPECT_TRUE(seen[1].cross_origin());
}

} // namespace
