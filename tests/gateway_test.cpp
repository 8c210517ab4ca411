// The gateway over real loopback connections: NestJS WsAdapter's wire format, handlers and
// replies, exception events, rooms and emit targets, hooks, middleware and namespaces.
#include "gateway_support.hpp"

using asio::awaitable;
using gw::json;
using test::client;
using test::exception;
using test::j;
using test::local;


TEST(Gateway, ReturnValueIsTheReplyWithTheRequestsId) {
    asio::io_context io;
    gw::gateway app{io, local()};
    app.of("/").on("ping", [](gw::socket&, json d) { return d; });
    app.of("/").on("named", [](gw::socket&, json d) { return gw::response{"pong", d}; });
    app.of("/").on("quiet", [](gw::socket&) {});
    test::run(io, [&]() -> awaitable<void> {
        auto cl = co_await client::open(app);
        auto r1 = co_await cl.ask("ping", j(R"({"n": 1})"), 7);
        EXPECT_EQ(r1, j(R"({"event": "ping", "data": {"n": 1}, "id": 7})"));
        auto r2 = co_await cl.ask("ping", "no id");
        EXPECT_EQ(r2, j(R"({"event": "ping", "data": "no id"})"));
        co_await cl.send("quiet");   // returns nothing: no reply, so the next answer is the named one
        auto r3 = co_await cl.ask("named", 5, "req-1");
        EXPECT_EQ(r3, j(R"({"event": "pong", "data": 5, "id": "req-1"})"));
        co_await cl.c.close();
    }());
}

TEST(Gateway, TypedPayloadsAndFailedConversions) {
    asio::io_context io;
    gw::gateway app{io, local()};
    app.of("/").on("sum", [](gw::socket&, std::vector<int> v) {
        int total = 0;
        for (int x : v) total += x;
        return total;
    });
    test::run(io, [&]() -> awaitable<void> {
        auto cl = co_await client::open(app);
        auto r1 = co_await cl.ask("sum", j("[1, 2, 3]"), 1);
        EXPECT_EQ(r1, j(R"({"event": "sum", "data": 6, "id": 1})"));
        auto reply = co_await cl.ask("sum", "not numbers", 2);
        EXPECT_EQ(reply["event"], "exception");
        EXPECT_EQ(reply["id"], 2);
        EXPECT_EQ(reply["data"]["status"], "error");
        EXPECT_EQ(reply["data"]["message"].get<std::string>().rfind("invalid payload: ", 0), 0u) << reply;
        auto r3 = co_await cl.ask("sum", j("[4]"), 3);   // still connected
        EXPECT_EQ(r3["data"], 4);
        co_await cl.c.close();
    }());
}

TEST(Gateway, MalformedMessagesAndUnknownEventsGetExceptionsAndStayOpen) {
    asio::io_context io;
    gw::gateway app{io, local()};
    app.of("/").on("echo", [](gw::socket&, json d) { return d; });
    test::run(io, [&]() -> awaitable<void> {
        auto cl = co_await client::open(app);
        co_await cl.c.send("{not json");
        auto r1 = co_await cl.next();
        EXPECT_EQ(r1, exception("malformed JSON"));
        co_await cl.c.send(R"({"data": 1})");
        EXPECT_EQ((co_await cl.next())["event"], "exception");
        co_await cl.c.send(R"(["event", "echo"])");
        EXPECT_EQ((co_await cl.next())["event"], "exception");
        co_await cl.c.send_binary("binary");
        EXPECT_EQ((co_await cl.next())["event"], "exception");
        auto unknown = co_await cl.ask("nobody", 1, 9);
        EXPECT_EQ(unknown["event"], "exception");
        EXPECT_EQ(unknown["id"], 9);
        EXPECT_EQ(unknown["data"]["message"], "There is no handler for event \"nobody\"");
        co_await cl.send("echo", "still here");
        EXPECT_EQ((co_await cl.next())["data"], "still here");
        co_await cl.c.close();
    }());
}

TEST(Gateway, CatchAllHandlerReceivesUnknownEvents) {
    asio::io_context io;
    gw::gateway app{io, local()};
    app.of("/").on_any([](gw::socket&, gw::event& e) { return json{{"got", e.name}, {"with", e.data}}; });
    test::run(io, [&]() -> awaitable<void> {
        auto cl = co_await client::open(app);
        auto r = co_await cl.ask("anything", 42);
        EXPECT_EQ(r, j(R"({"event": "anything", "data": {"got": "anything", "with": 42}})"));
        co_await cl.c.close();
    }());
}

TEST(Gateway, ExceptionsBecomeExceptionEventsWithoutInternals) {
    asio::io_context io;
    gw::gateway app{io, local()};
    auto ns = app.of("/");
    ns.on("text", [](gw::socket&) -> json { throw gw::ws_exception("not allowed"); });
    ns.on("object", [](gw::socket&) -> json { throw gw::ws_exception(json{{"code", 42}}); });
    ns.on("bug", [](gw::socket&) -> json { throw std::runtime_error("secret database password"); });
    ns.on("async_bug", [](gw::socket&) -> awaitable<json> {
        throw std::logic_error("secret too");
        co_return 1;
    });
    test::run(io, [&]() -> awaitable<void> {
        auto cl = co_await client::open(app);
        auto r1 = co_await cl.ask("text");
        EXPECT_EQ(r1, exception("not allowed"));
        auto r2 = co_await cl.ask("object");
        EXPECT_EQ(r2, j(R"({"event": "exception", "data": {"code": 42}})"));
        auto r3 = co_await cl.ask("bug");
        EXPECT_EQ(r3, exception("Internal server error"));
        auto e = co_await cl.ask("async_bug", nullptr, 5);
        EXPECT_EQ(e["data"]["message"], "Internal server error");
        EXPECT_EQ(e["id"], 5);
        co_await cl.c.close();
    }());
}

TEST(Gateway, CoroutineHandlersReplyWhenDone) {
    asio::io_context io;
    gw::gateway app{io, local()};
    app.of("/").on("later", [](gw::socket&, json d) -> awaitable<json> {
        asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(1));
        co_await t.async_wait(asio::use_awaitable);   // stands for a database call
        co_return d["x"].get<int>() * 2;
    });
    app.of("/").on("fire", [](gw::socket& s) -> awaitable<void> { co_await s.emit("fired", true); });
    test::run(io, [&]() -> awaitable<void> {
        auto cl = co_await client::open(app);
        auto r1 = co_await cl.ask("later", j(R"({"x": 21})"), 1);
        EXPECT_EQ(r1, j(R"({"event": "later", "data": 42, "id": 1})"));
        auto r2 = co_await cl.ask("fire");
        EXPECT_EQ(r2, j(R"({"event": "fired", "data": true})"));
        co_await cl.c.close();
    }());
}

TEST(Gateway, RoomsAndEmitTargets) {
    asio::io_context io;
    gw::gateway app{io, local()};
    auto ns = app.of("/");
    ns.on("join", [](gw::socket& s, std::string room) { s.join(room); return room; });
    ns.on("leave", [](gw::socket& s, std::string room) { s.leave(room); return room; });
    ns.on("to_room", [](gw::socket& s, json d) -> awaitable<void> {   // the room except the sender
        co_await s.to(d["room"].get<std::string>()).emit("room", d["text"]);
    });
    ns.on("to_rooms", [](gw::socket& s, json) -> awaitable<void> {   // a union: each socket once
        co_await s.to("a").to("b").emit("union", 1);
    });
    ns.on("broadcast", [](gw::socket& s, json d) -> awaitable<void> { co_await s.broadcast().emit("all_but_me", d); });
    ns.on("everyone", [ns](gw::socket&, json d) -> awaitable<void> { co_await ns.to("a").emit("a_all", d); });
    ns.on("except", [ns](gw::socket& s, json) -> awaitable<void> {
        co_await ns.to("a").except("b").except(s).emit("a_not_b", 1);
    });
    ns.on("count", [ns](gw::socket&, std::string room) -> awaitable<std::size_t> { co_return co_await ns.to(room).count(); });
    ns.on("whisper", [](gw::socket& s, std::string to) -> awaitable<void> {   // private message by id
        co_await s.to(to).emit("whisper", s.id());
    });
    ns.on("my_id", [](gw::socket& s) { return s.id(); });
    test::run(io, [&]() -> awaitable<void> {
        auto x = co_await client::open(app), y = co_await client::open(app), z = co_await client::open(app);
        for (auto* c : {&x, &y}) {
            co_await c->send("join", "a");
            co_await c->next();
        }
        co_await y.send("join", "b");
        co_await y.next();
        co_await z.send("join", "b");
        co_await z.next();
        co_await x.send("count", "a");
        EXPECT_EQ((co_await x.next())["data"], 2);

        co_await x.send("to_room", j(R"({"room": "a", "text": "hi a"})"));
        auto r1 = co_await y.next();   // x itself gets nothing
        EXPECT_EQ(r1, j(R"({"event": "room", "data": "hi a"})"));

        co_await x.send("to_rooms");   // a = {x, y}, b = {y, z}; minus x: y once, z once
        EXPECT_EQ((co_await y.next())["event"], "union");
        EXPECT_EQ((co_await z.next())["event"], "union");

        co_await z.send("broadcast", "from z");
        EXPECT_EQ((co_await x.next())["data"], "from z");
        EXPECT_EQ((co_await y.next())["data"], "from z");

        co_await z.send("everyone", "a, z not in it");
        EXPECT_EQ((co_await x.next())["event"], "a_all");
        EXPECT_EQ((co_await y.next())["event"], "a_all");

        co_await x.send("except");   // a minus b minus x: nobody; then a marker proves nothing came first
        auto r2 = co_await y.ask("leave", "b");
        EXPECT_EQ(r2, j(R"({"event": "leave", "data": "b"})"));
        co_await x.send("except");   // now y is in a and not in b
        EXPECT_EQ((co_await y.next())["event"], "a_not_b");

        co_await z.send("my_id");
        std::string z_id = (co_await z.next())["data"];
        co_await x.send("my_id");
        std::string x_id = (co_await x.next())["data"];
        EXPECT_NE(z_id, x_id);
        EXPECT_EQ(z_id.size(), 20u);
        co_await x.send("whisper", z_id);
        auto r3 = co_await z.next();
        EXPECT_EQ(r3["event"], "whisper");
        EXPECT_EQ(r3["data"], x_id);

        for (auto* c : {&x, &y, &z}) co_await c->c.close();
    }());
}

TEST(Gateway, EachSocketIsInTheRoomNamedByItsIdUntilItLeavesIt) {
    asio::io_context io;
    gw::gateway app{io, test::local()};
    auto ns = app.of("/");
    ns.on("join", [](gw::socket& s, std::string room) { s.join(room); return room; });
    ns.on("leave", [](gw::socket& s, std::string room) { s.leave(room); return room; });
    ns.on("rooms", [](gw::socket& s) { return json{{"rooms", s.rooms()}, {"in_own", s.in(s.id())}}; });
    ns.on("poke", [ns](gw::socket&, std::string id) -> awaitable<std::size_t> {
        co_await ns.to(id).emit("poked", id);
        co_return co_await ns.to(id).count();
    });
    test::run(io, [&]() -> awaitable<void> {
        auto x = co_await client::open(app), y = co_await client::open(app);
        co_await x.send("join", "lobby");
        co_await x.next();
        auto r = (co_await x.ask("rooms"))["data"];
        EXPECT_EQ(r["rooms"].size(), 2u);
        const std::string x_id = r["rooms"][0];   // its own id-room comes first
        EXPECT_EQ(x_id.size(), 20u);
        EXPECT_EQ(r["rooms"][1], "lobby");
        EXPECT_EQ(r["in_own"], true);

        co_await y.send("poke", x_id);
        EXPECT_EQ((co_await x.next())["event"], "poked");
        EXPECT_EQ((co_await y.next())["data"], 1);

        co_await x.send("leave", x_id);   // as in Socket.IO, a socket may leave its own room
        co_await x.next();
        r = (co_await x.ask("rooms"))["data"];
        EXPECT_EQ(r["rooms"], j(R"(["lobby"])"));
        EXPECT_EQ(r["in_own"], false);
        co_await y.send("poke", x_id);
        EXPECT_EQ((co_await y.next())["data"], 0);   // nothing reached x: its next event is the rooms reply
        EXPECT_EQ((co_await x.ask("rooms"))["event"], "rooms");

        co_await x.send("join", x_id);   // and come back
        co_await x.next();
        co_await y.send("poke", x_id);
        EXPECT_EQ((co_await x.next())["event"], "poked");
        EXPECT_EQ((co_await y.next())["data"], 1);

        co_await x.c.close();
        co_await y.c.close();
    }());
}

TEST(Gateway, AClientThatStopsAnsweringPingsLeavesWithPingTimeout) {
    asio::io_context io;
    auto o = local();
    o.ping_interval = std::chrono::milliseconds(20);
    o.ping_timeout = std::chrono::milliseconds(40);
    gw::gateway app{io, o};
    std::string reason;
    asio::steady_timer gone(io, asio::steady_timer::time_point::max());
    auto ns = app.of("/");
    ns.on_disconnect([&](gw::socket&, std::string_view why) {
        reason = why;
        gone.cancel();
    });
    test::run(io, [&]() -> awaitable<void> {
        // A raw client that upgrades and then neither reads nor answers.
        asio::ip::tcp::socket raw(io);
        co_await raw.async_connect({asio::ip::make_address("127.0.0.1"), app.port()}, asio::use_awaitable);
        const std::string request = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        co_await asio::async_write(raw, asio::buffer(request), asio::use_awaitable);
        while (reason.empty()) co_await gone.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    }());
    EXPECT_EQ(reason, "ping timeout");
}

TEST(Gateway, AwaitedStopDeliversWhatWasQueuedThenClosesEverySocketWith1001) {
    asio::io_context io;
    gw::gateway app{io, local()};
    auto ns = app.of("/");
    int disconnects = 0;
    bool stopped = false;
    asio::steady_timer changed(io, asio::steady_timer::time_point::max());
    ns.on_disconnect([&](gw::socket&, std::string_view reason) {
        EXPECT_EQ(reason, "server shutting down");
        ++disconnects;
    });
    ns.on("burst_then_stop", [&, ns](gw::socket&, int count) -> awaitable<void> {
        for (int i = 0; i < count; ++i) co_await ns.emit("item", i);   // queued, not yet written
        asio::co_spawn(io, app.stop(), [&](std::exception_ptr) {
            stopped = true;
            changed.cancel();
        });
    });
    test::run(io, [&]() -> awaitable<void> {
        std::vector<client> clients;
        for (int i = 0; i < 3; ++i) clients.push_back(co_await client::open(app));
        co_await clients[1].send("burst_then_stop", 500);
        for (auto& c : clients) {
            for (int i = 0; i < 500; ++i) {
                auto m = co_await c.next();
                EXPECT_EQ(m["data"], i);
                if (m["data"] != i) break;
            }
            auto end = co_await c.c.receive();
            EXPECT_FALSE(end.has_value());
            EXPECT_EQ(c.c.peer_close_code(), 1001);
            EXPECT_EQ(c.c.peer_close_reason(), "server shutting down");
        }
        while (!stopped) co_await changed.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
        EXPECT_EQ(disconnects, 3);   // before stop() completed
        gw::client_options plain;
        bool refused = false;
        try {
            co_await gw::connect("ws://127.0.0.1:" + std::to_string(app.port()) + "/", plain);
        } catch (const std::system_error&) {
            refused = true;
        }
        EXPECT_TRUE(refused);
    }());
}

TEST(Gateway, OverTheMessageRateEventsGetAnExceptionOrTheSocketIsClosed) {
    asio::io_context io;
    gw::gateway_options g;
    g.message_rate = 1;   // one a second, three at once: the burst below takes milliseconds
    g.message_burst = 3;
    gw::gateway app{io, local(), g};
    app.of("/").on("echo", [](gw::socket&, json d) { return d; });
    gw::gateway_options g2;
    g2.message_rate = 1;
    g2.message_burst = 2;
    g2.over_rate = gw::overflow::close;
    gw::gateway strict{io, local(), g2};
    std::string reason;
    strict.of("/").on("echo", [](gw::socket&, json d) { return d; });
    asio::steady_timer gone(io, asio::steady_timer::time_point::max());
    strict.of("/").on_disconnect([&](gw::socket&, std::string_view why) {
        reason = why;
        gone.cancel();
    });
    test::run(io, [&]() -> awaitable<void> {
        auto c = co_await client::open(app);
        for (int i = 0; i < 6; ++i) co_await c.send("echo", i);
        for (int i = 0; i < 3; ++i) EXPECT_EQ((co_await c.next()), j((R"({"event":"echo","data":)" + std::to_string(i) + "}").c_str()));
        for (int i = 0; i < 3; ++i) EXPECT_EQ((co_await c.next()), test::exception("Too many messages"));
        co_await c.c.close();

        auto d = co_await client::open(strict);
        for (int i = 0; i < 3; ++i) co_await d.send("echo", i);
        EXPECT_EQ((co_await d.next())["data"], 0);
        EXPECT_EQ((co_await d.next())["data"], 1);
        EXPECT_FALSE(co_await d.c.receive());   // the third closes it
        EXPECT_EQ(d.c.peer_close_code(), 1008);
        EXPECT_EQ(d.c.peer_close_reason(), "rate limit");
        while (reason.empty()) co_await gone.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    }());
    EXPECT_EQ(reason, "server disconnect");
}

TEST(Gateway, OptionsTheGatewayOwnsAreRefusedWhenSet) {
    asio::io_context io;
    auto upgrade = local();
    upgrade.on_upgrade = [](gw::http_request&) -> std::optional<gw::http_response> { return std::nullopt; };
    EXPECT_THROW((gw::gateway{io, upgrade}), std::invalid_argument);
    auto connection = local();
    connection.on_connection = [](gw::connection) {};
    EXPECT_THROW((gw::gateway{io, connection}), std::invalid_argument);
    gw::gateway_options negative;
    negative.message_rate = -1;
    EXPECT_THROW((gw::gateway{io, local(), negative}), std::invalid_argument);
    try {
        gw::gateway app{io, upgrade};
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("namespace_ref::use"), std::string::npos) << e.what();
    }
}

TEST(Gateway, JoiningMoreThanMaxRoomsPerSocketIsRefused) {
    asio::io_context io;
    gw::gateway app{io, local(), {.max_rooms_per_socket = 3}};
    app.of("/").on("join", [](gw::socket& s, std::string room) {
        s.join(room);
        return s.rooms().size();
    });
    test::run(io, [&]() -> awaitable<void> {
        auto c = co_await client::open(app);
        for (const char* room : {"a", "b", "c"}) co_await c.ask("join", room);
        EXPECT_EQ(co_await c.ask("join", "d"), test::exception("Too many rooms"));
        EXPECT_EQ((co_await c.ask("join", "c"))["data"], 4);   // one it is in already: nothing new; its id-room counts in rooms()
        co_await c.c.close();
    }());
}

TEST(Gateway, InterceptorsSeeThePayloadAHandlerTookByValue) {
    asio::io_context io;
    gw::gateway app{io, test::local()};
    json seen;
    auto ns = app.of("/");
    ns.on("take", [](gw::socket&, json data) { return data.size(); });
    ns.apply(gw::intercept([&](gw::socket&, const gw::event& e, const json*, std::chrono::nanoseconds) { seen = e.data; }));
    test::run(io, [&]() -> awaitable<void> {
        auto x = co_await client::open(app);
        auto r = co_await x.ask("take", j(R"(["a", "b", "c"])"));
        EXPECT_EQ(r["data"], 3);
        EXPECT_EQ(seen, j(R"(["a", "b", "c"])"));   // not moved away from the interceptor
        co_await x.c.close();
    }());
}

TEST(Gateway, LifecycleHooksRunInOrderAndDisconnectOnce) {
    asio::io_context io;
    gw::gateway app{io, local()};
    std::vector<std::string> log;
    app.on_init([&] { log.push_back("init"); });
    auto ns = app.of("/");
    ns.on_connect([&](gw::socket& s) -> awaitable<void> {
        log.push_back("connect");
        s.join("lobby");
        co_await s.emit("welcome", s.id());
    });
    asio::steady_timer gone(io, asio::steady_timer::time_point::max());
    ns.on_disconnect([&](gw::socket& s, std::string_view reason) {
        log.push_back("disconnect " + std::string(reason) + " in lobby: " + (s.in("lobby") ? "yes" : "no"));
        gone.cancel();
    });
    ns.on("lobby_count", [ns](gw::socket&) -> awaitable<std::size_t> { co_return co_await ns.to("lobby").count(); });
    test::run(io, [&]() -> awaitable<void> {
        auto a = co_await client::open(app);
        EXPECT_EQ((co_await a.next())["event"], "welcome");
        auto b = co_await client::open(app);
        EXPECT_EQ((co_await b.next())["event"], "welcome");
        co_await b.send("lobby_count");
        EXPECT_EQ((co_await b.next())["data"], 2);
        co_await a.c.close();   // its on_disconnect has run by now: the server closes TCP after it
        EXPECT_EQ(log.size(), 4u);
        while (log.size() < 4) co_await gone.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
        co_await b.send("lobby_count");   // a left the lobby with its disconnect
        EXPECT_EQ((co_await b.next())["data"], 1);
        co_await b.c.close();
    }());
    ASSERT_GE(log.size(), 4u);
    EXPECT_EQ(log[0], "init");
    EXPECT_EQ(log[1], "connect");
    EXPECT_EQ(log[2], "connect");
    EXPECT_EQ(log[3], "disconnect client disconnect in lobby: yes");
}

TEST(Gateway, OnConnectMayRefuseTheSocket) {
    asio::io_context io;
    gw::gateway app{io, local()};
    app.of("/").on_connect([](gw::socket& s) -> awaitable<void> {
        co_await s.disconnect(static_cast<gw::close_code>(4001), "not today");
    });
    test::run(io, [&]() -> awaitable<void> {
        auto cl = co_await client::open(app);
        EXPECT_TRUE((co_await cl.next()).is_null());
        EXPECT_EQ(cl.c.peer_close_code(), 4001);
        EXPECT_EQ(cl.c.peer_close_reason(), "not today");
    }());
}

TEST(Gateway, MiddlewareRefusesAtTheHandshakeOrAttachesData) {
    asio::io_context io;
    gw::gateway app{io, local()};
    auto chat = app.of("/chat");
    chat.use([](gw::http_request& r) {
        auto token = r.query_param("token");
        if (!token) throw gw::http_refusal(401, "missing token");
        r.attachment = *token;
    });
    chat.use([](gw::http_request& r) -> std::optional<gw::http_response> {
        if (std::any_cast<std::string&>(r.attachment) == "mallory") return gw::http_response{.status = 403, .body = "no"};
        return std::nullopt;
    });
    chat.on("whoami", [](gw::socket& s) { return s.data_as<std::string>(); });
    test::run(io, [&]() -> awaitable<void> {
        const std::string base = "ws://127.0.0.1:" + std::to_string(app.port());
        for (auto [path, status] : {std::pair{"/chat", "401"}, {"/chat?token=mallory", "403"}, {"/elsewhere", "404"}}) {
            std::string what;
            try {
                co_await gw::connect(base + path);
            } catch (const std::system_error& e) {
                what = e.what();
            }
            EXPECT_NE(what.find(status), std::string::npos) << path << ": " << what;
        }
        auto cl = co_await client::open(app, "/chat?token=alice");
        co_await cl.send("whoami");
        EXPECT_EQ((co_await cl.next())["data"], "alice");
        co_await cl.c.close();
    }());
}

TEST(Gateway, MiddlewareFindsTokensInHeadersSubprotocolsQueryAndCookies) {
    asio::io_context io;
    gw::gateway app{io, local()};
    auto ns = app.of("/");
    ns.use([](gw::http_request& r) {
        auto token = r.bearer_token();
        if (!token) throw gw::http_refusal(401, "a bearer token is required");
        if (*token != "t0k3n") throw gw::http_refusal(403, "not this token");
        r.attachment = std::string(r.cookie("theme").value_or("none"));
    });
    ns.on("theme", [](gw::socket& s) { return s.data_as<std::string>(); });
    test::run(io, [&]() -> awaitable<void> {
        const std::string url = "ws://127.0.0.1:" + std::to_string(app.port()) + "/";
        auto refused = [&](std::string u, gw::client_options o) -> awaitable<std::string> {
            try {
                co_await gw::connect(u, o);
            } catch (const std::system_error& e) {
                co_return e.what();
            }
            co_return "connected";
        };
        gw::client_options none{};
        auto missing = co_await refused(url, none);
        EXPECT_NE(missing.find("401"), std::string::npos) << missing;
        gw::client_options wrong{};
        wrong.headers = {{"Authorization", "Bearer nope"}};
        auto forbidden = co_await refused(url, wrong);
        EXPECT_NE(forbidden.find("403"), std::string::npos) << forbidden;

        gw::client_options header{};   // what a server-side client sends
        header.headers = {{"Authorization", "Bearer t0k3n"}, {"Cookie", "a=1; theme=dark"}};
        auto by_header = co_await gw::connect(url, header);
        co_await by_header.send(R"({"event":"theme"})");
        auto m1 = co_await by_header.receive();
        EXPECT_EQ(gw::json::parse(m1->data)["data"], "dark");
        co_await by_header.close();

        gw::client_options protocol{};   // what a browser can send: new WebSocket(url, ["access_token", token])
        protocol.subprotocols = {"access_token", "t0k3n"};
        auto by_protocol = co_await gw::connect(url, protocol);
        EXPECT_EQ(by_protocol.subprotocol(), "access_token");   // browsers fail a handshake that picks none
        co_await by_protocol.send(R"({"event":"theme"})");
        auto m2 = co_await by_protocol.receive();
        EXPECT_EQ(gw::json::parse(m2->data)["data"], "none");
        co_await by_protocol.close();

        auto by_query = co_await gw::connect(url + "?access_token=t0k3n");
        EXPECT_EQ(by_query.subprotocol(), "");
        co_await by_query.close();
    }());
}

TEST(Gateway, NamespacesHaveTheirOwnHandlersAndRooms) {
    asio::io_context io;
    gw::gateway app{io, local()};
    app.of("/a").on("where", [](gw::socket& s) { return "a:" + s.nsp(); });
    app.of("/tenant-*").on("where", [](gw::socket& s) { return "tenant:" + std::string(s.handshake().path()); });
    app.of("/a").on("shout", [&app](gw::socket&) -> awaitable<void> { co_await app.emit("shout", 1); });
    test::run(io, [&]() -> awaitable<void> {
        auto a = co_await client::open(app, "/a");
        auto t = co_await client::open(app, "/tenant-42");
        co_await a.send("where");
        EXPECT_EQ((co_await a.next())["data"], "a:/a");
        co_await t.send("where");
        EXPECT_EQ((co_await t.next())["data"], "tenant:/tenant-42");
        co_await a.send("shout");   // every namespace
        EXPECT_EQ((co_await a.next())["event"], "shout");
        EXPECT_EQ((co_await t.next())["event"], "shout");
        co_await a.c.close();
        co_await t.c.close();
    }());
}

namespace {
struct not_found : std::runtime_error {
    using std::runtime_error::runtime_error;
};
} // namespace

TEST(Gateway, StagesRunInNestJsOrderAroundOneHandler) {
    asio::io_context io;
    gw::gateway app{io, local()};
    std::vector<std::string> seen;
    auto is_admin = [](gw::socket&, const json& d) { return d.value("user", "") == "admin"; };
    auto has_text = [](const json& d) { return d.contains("text") && d["text"].is_string(); };
    app.of("/").on("secret",
                   gw::guard(is_admin) | gw::validate(has_text, "text is required") |
                       gw::pipe([](json& d) { d["text"] = d["text"].get<std::string>() + "!"; }) |
                       gw::intercept([&](gw::socket&, const gw::event& e, const json* reply, std::chrono::nanoseconds took) {
                           seen.push_back(e.name + " -> " + (reply ? reply->dump() : "nothing") +
                                          (took.count() >= 0 ? " timed" : ""));
                       }) |
                       [](gw::socket&, json d) { return d["text"]; });
    test::run(io, [&]() -> awaitable<void> {
        auto cl = co_await client::open(app);
        auto r1 = co_await cl.ask("secret", j(R"({"user": "eve"})"));   // denied before the validator runs
        EXPECT_EQ(r1, exception("Forbidden resource"));
        auto r2 = co_await cl.ask("secret", j(R"({"user": "admin"})"));
        EXPECT_EQ(r2, exception("text is required"));
        auto r3 = co_await cl.ask("secret", j(R"({"user": "admin", "text": "hi"})"));
        EXPECT_EQ(r3, j(R"({"event": "secret", "data": "hi!"})"));
        co_await cl.c.close();
    }());
    // Interceptors wrap pipes and handler: the guard's denial passes them by, the validator's does not.
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen[0], "secret -> nothing timed");
    EXPECT_EQ(seen[1], R"(secret -> "hi!" timed)");
}

TEST(Gateway, FiltersMapExceptionsAndStagesApplyToNamespacesAndEverything) {
    asio::io_context io;
    gw::gateway app{io, local()};
    int global_calls = 0;
    app.apply(gw::intercept([&](gw::socket&, const gw::event&, const json*, std::chrono::nanoseconds) { ++global_calls; }));
    auto ns = app.of("/");
    ns.apply(gw::filter<not_found>([](const not_found& e) { return gw::response{"not_found", e.what()}; }));
    ns.apply(gw::guard([](gw::socket& s) { return s.handshake().query_param("banned") != "1"; }));
    ns.on("find", [](gw::socket&, std::string what) -> json { throw not_found(what); });
    ns.on("plain", [](gw::socket&) -> json { throw std::runtime_error("internal detail"); });
    ns.on("mapped", gw::filter<std::runtime_error>([](const std::runtime_error&) { return json{{"code", 7}}; }) |
                        [](gw::socket&) -> json { throw std::runtime_error("x"); });
    test::run(io, [&]() -> awaitable<void> {
        auto cl = co_await client::open(app);
        auto r1 = co_await cl.ask("find", "key", 1);
        EXPECT_EQ(r1, j(R"({"event": "not_found", "data": "key", "id": 1})"));
        auto r2 = co_await cl.ask("plain");
        EXPECT_EQ(r2, exception("Internal server error"));
        auto r3 = co_await cl.ask("mapped");
        EXPECT_EQ(r3, j(R"({"event": "exception", "data": {"code": 7}})"));
        auto banned = co_await client::open(app, "/?banned=1");
        auto r4 = co_await banned.ask("plain");
        EXPECT_EQ(r4, exception("Forbidden resource"));
        co_await cl.c.close();
        co_await banned.c.close();
    }());
    EXPECT_EQ(global_calls, 3);   // find, plain, mapped; the banned client's call was denied by a guard
}

TEST(Gateway, EachStageIsAPlainCallable) {
    auto g = gw::guard([](gw::socket&, const json& d) { return d == 1; });
    auto v = gw::validate([](const json& d) { return d.is_number(); }, "a number, please");
    ASSERT_EQ(g.guards.size(), 1u);
    ASSERT_EQ(v.pipes.size(), 1u);
    json not_a_number = "x", number = 3;
    std::string message;
    try {
        v.pipes[0](not_a_number);
    } catch (const gw::ws_exception& e) {
        message = e.data()["message"];
    }
    EXPECT_EQ(message, "a number, please");
    EXPECT_NO_THROW(v.pipes[0](number));
    auto upper = gw::pipe([](json& d) { d = d.get<std::string>() + "?"; });
    json text = "why";
    upper.pipes[0](text);
    EXPECT_EQ(text, "why?");
    auto both = g | v;
    EXPECT_EQ(both.guards.size(), 1u);
    EXPECT_EQ(both.pipes.size(), 1u);
}

TEST(Gateway, StreamsSendOneReplyPerYieldInOrder) {
    asio::io_context io;
    gw::gateway app{io, local()};
    app.of("/").on("count", [](gw::socket&, int n) -> gw::stream<json> {
        for (int i = 1; i <= n; ++i) co_yield i;
    });
    app.of("/").on("broken", [](gw::socket&) -> gw::stream<json> {
        co_yield "first";
        throw gw::ws_exception("stream failed");
    });
    test::run(io, [&]() -> awaitable<void> {
        auto cl = co_await client::open(app);
        co_await cl.send("count", 3, 11);
        for (int i = 1; i <= 3; ++i) {
            auto r = co_await cl.next();
            EXPECT_EQ(r["event"], "count");
            EXPECT_EQ(r["data"], i);
            EXPECT_EQ(r["id"], 11);
        }
        auto first = co_await cl.ask("broken");
        EXPECT_EQ(first["data"], "first");
        auto failed = co_await cl.next();
        EXPECT_EQ(failed, exception("stream failed"));
        co_await cl.c.close();
    }());
}

TEST(Gateway, AStreamEndsWhenItsClientGoes) {
    asio::io_context io;
    gw::gateway app{io, local()};
    asio::steady_timer destroyed(io, asio::steady_timer::time_point::max());
    bool stream_destroyed = false;
    struct on_exit {
        std::function<void()> f;
        ~on_exit() { f(); }
    };
    app.of("/").on("forever", [&](gw::socket&) -> gw::stream<json> {
        on_exit mark{[&] {
            stream_destroyed = true;
            destroyed.cancel();
        }};
        for (int i = 0;; ++i) co_yield i;
    });
    test::run(io, [&]() -> awaitable<void> {
        auto cl = co_await client::open(app);
        co_await cl.send("forever");
        for (int i = 0; i < 5; ++i) {
            auto r = co_await cl.next();
            EXPECT_EQ(r["data"], i);
        }
        co_await cl.c.close();
        if (!stream_destroyed) co_await destroyed.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    }());
    EXPECT_TRUE(stream_destroyed);
}

TEST(Gateway, ServerAsksTheClientForAnAcknowledgement) {
    asio::io_context io;
    gw::gateway app{io, local()};
    json answer;
    bool timed_out = false;
    app.of("/").on("ask_me", [&](gw::socket& s, json) -> awaitable<void> {
        answer = co_await s.emit_with_ack("question", "how are you?", std::chrono::seconds(5));
        try {
            co_await s.emit_with_ack("ignored", nullptr, std::chrono::milliseconds(50));
        } catch (const std::system_error& e) {
            timed_out = e.code() == std::errc::timed_out;
        }
        co_await s.emit("done", true);
    });
    test::run(io, [&]() -> awaitable<void> {
        auto cl = co_await client::open(app);
        auto q = co_await cl.ask("ask_me");
        EXPECT_EQ(q["event"], "question");
        EXPECT_EQ(q["data"], "how are you?");
        json reply = {{"event", "ack"}, {"ack", q["ack"]}, {"data", "fine"}};
        co_await cl.c.send(reply.dump());
        auto ignored = co_await cl.next();
        EXPECT_EQ(ignored["event"], "ignored");   // not answered: times out on the server
        auto done = co_await cl.next();
        EXPECT_EQ(done["event"], "done");
        co_await cl.c.close();
    }());
    EXPECT_EQ(answer, "fine");
    EXPECT_TRUE(timed_out);
}

TEST(Gateway, AHandlerFinishingAfterItsClientLeftJoinsNoRoom) {
    asio::io_context io;
    gw::gateway app{io, local()};
    auto ns = app.of("/");
    asio::steady_timer release(io, asio::steady_timer::time_point::max()), joined(io, asio::steady_timer::time_point::max());
    asio::steady_timer gone(io, asio::steady_timer::time_point::max());
    bool handler_done = false, disconnected = false;
    ns.on_disconnect([&](gw::socket&) {
        disconnected = true;
        gone.cancel();
    });
    ns.on("slow_join", [&](gw::socket& s) -> awaitable<void> {
        co_await release.async_wait(asio::experimental::as_tuple(asio::use_awaitable));   // stands for slow work
        s.join("late");
        handler_done = true;
        joined.cancel();
    });
    test::run(io, [&]() -> awaitable<void> {
        auto cl = co_await client::open(app);
        co_await cl.send("slow_join");
        co_await cl.c.close();
        if (!disconnected) co_await gone.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
        release.cancel();
        if (!handler_done) co_await joined.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
        co_await ns.to("late").emit("nobody", 1);   // would touch a freed socket if it had joined
        EXPECT_EQ(co_await ns.to("late").count(), 0u);
    }());
}
