// Several workers: connections spread over event loops on their own threads, rooms per worker,
// and emits, counts and acknowledgements that reach sockets on every worker.
#include "gateway_support.hpp"

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

using asio::awaitable;
using gw::json;
using test::client;
using test::j;

namespace {

constexpr std::size_t workers = 3;

gw::options with_workers(std::size_t n) {
    gw::options o = test::local();
    o.workers = n;
    return o;
}

/// Which thread serves each socket, written by hooks on every worker.
struct threads_seen {
    std::mutex m;
    std::map<std::string, std::thread::id> of;   // socket id -> thread
    std::set<std::thread::id> distinct() {
        std::lock_guard lock(m);
        std::set<std::thread::id> out;
        for (auto& [id, t] : of) out.insert(t);
        return out;
    }
};

/// Counts events that happen on worker threads and wakes a coroutine on the test's loop when
/// enough have: the timer is only touched on that loop.
struct countdown {
    asio::io_context& io;
    asio::steady_timer timer{io, asio::steady_timer::time_point::max()};
    std::atomic<int> left;
    countdown(asio::io_context& io_, int n) : io(io_), left(n) {}
    void tick() {
        if (--left == 0) asio::post(io, [this] { timer.cancel(); });
    }
    awaitable<void> wait() {
        while (left > 0) co_await timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    }
};

} // namespace

TEST(Workers, ConnectionsSpreadOverThreadsAndEmitsReachEveryWorker) {
    asio::io_context io;
    threads_seen seen;
    countdown gone(io, 2 * static_cast<int>(workers));
    gw::gateway app{io, with_workers(workers)};
    auto ns = app.of("/");
    ns.on_connect([&](gw::socket& s) {
        {
            std::lock_guard lock(seen.m);
            seen.of[s.id()] = std::this_thread::get_id();
        }
        s.join("all");
    });
    ns.on("id", [](gw::socket& s) { return s.id(); });
    ns.on("join", [](gw::socket& s, std::string room) {
        s.join(room);
        return true;
    });
    ns.on("to_room", [](gw::socket& s, std::string room) -> awaitable<void> { co_await s.to(room).emit("room", s.id()); });
    ns.on("to_all", [ns](gw::socket&) -> awaitable<void> { co_await ns.emit("everyone", 1); });
    ns.on("broadcast", [](gw::socket& s) -> awaitable<void> { co_await s.broadcast().emit("others", 2); });
    ns.on("except", [ns](gw::socket& s) -> awaitable<void> {
        co_await ns.to("all").except("b").except(s).emit("not_b", 3);
    });
    ns.on("whisper", [](gw::socket& s, std::string to) -> awaitable<void> { co_await s.to(to).emit("whisper", s.id()); });
    ns.on("count", [ns](gw::socket&, std::string room) -> awaitable<std::size_t> { co_return co_await ns.to(room).count(); });
    ns.on("ids", [ns](gw::socket&, std::string room) -> awaitable<std::vector<std::string>> {
        co_return co_await ns.to(room).ids();
    });
    ns.on("connected", [ns](gw::socket&) { return ns.count(); });
    ns.on_disconnect([&](gw::socket&) { gone.tick(); });

    test::run(io, [&]() -> awaitable<void> {
        std::vector<client> cl;
        std::vector<std::string> ids;
        for (std::size_t i = 0; i < 2 * workers; ++i) {
            auto c = co_await client::open(app);
            auto r = co_await c.ask("id");
            cl.push_back(std::move(c));
            ids.push_back(r["data"]);
        }
        EXPECT_EQ(seen.distinct().size(), workers);   // every worker serves some of them
        auto connected = co_await cl[0].ask("connected");
        auto counted = co_await cl[0].ask("count", "all");
        auto listing = co_await cl[1].ask("ids", "all");
        EXPECT_EQ(connected["data"], 2 * workers);
        EXPECT_EQ(counted["data"], 2 * workers);
        auto listed = listing["data"].get<std::vector<std::string>>();
        EXPECT_EQ(std::set<std::string>(listed.begin(), listed.end()), std::set<std::string>(ids.begin(), ids.end()));

        // A room except the sender, on every worker.
        co_await cl[0].send("to_room", "all");
        const json from_0 = {{"event", "room"}, {"data", ids[0]}};
        for (std::size_t i = 1; i < cl.size(); ++i) {
            auto got = co_await cl[i].next();
            EXPECT_EQ(got, from_0);
        }
        // The whole namespace, the sender included.
        co_await cl[1].send("to_all");
        const json everyone = j(R"({"event":"everyone","data":1})");
        for (auto& c : cl) {
            auto got = co_await c.next();
            EXPECT_EQ(got, everyone);
        }
        // Everyone but the sender.
        co_await cl[2].send("broadcast");
        const json others = j(R"({"event":"others","data":2})");
        for (std::size_t i = 0; i < cl.size(); ++i) {
            if (i == 2) continue;
            auto got = co_await cl[i].next();
            EXPECT_EQ(got, others);
        }
        // Clients 3, 4 and 5 (each on some worker) join "b"; client 0 emits to "all" except "b" and itself.
        for (std::size_t i = 3; i < cl.size(); ++i) {
            auto joined = co_await cl[i].ask("join", "b");
            EXPECT_EQ(joined["data"], true);
        }
        auto in_b = co_await cl[5].ask("count", "b");
        EXPECT_EQ(in_b["data"], 3);
        co_await cl[0].send("except");
        const json not_b = j(R"({"event":"not_b","data":3})");
        for (std::size_t i = 1; i < 3; ++i) {
            auto got = co_await cl[i].next();
            EXPECT_EQ(got, not_b);
        }
        // A private message by id, to a socket on another worker.
        std::size_t other = 1;
        {
            std::lock_guard lock(seen.m);
            while (seen.of[ids[other]] == seen.of[ids[0]]) ++other;
        }
        co_await cl[0].send("whisper", ids[other]);
        const json whisper = {{"event", "whisper"}, {"data", ids[0]}};
        auto whispered = co_await cl[other].next();
        EXPECT_EQ(whispered, whisper);
        // Nothing else was due anywhere: each client's next event is the reply it asks for.
        for (std::size_t i = 0; i < cl.size(); ++i) {
            auto r = co_await cl[i].ask("id");
            EXPECT_EQ(r["data"], ids[i]);
        }

        for (auto& c : cl) co_await c.c.close();
        co_await gone.wait();
        EXPECT_EQ(app.of("/").count(), 0u);
    }());
}

TEST(Workers, SocketsCanBeReachedFromAnotherWorkersThread) {
    asio::io_context io;
    std::mutex m;
    std::map<std::string, std::shared_ptr<gw::socket>> by_id;   // what an application might keep
    std::map<std::string, std::thread::id> thread_of;
    countdown gone(io, 2);
    gw::gateway app{io, with_workers(2)};
    auto ns = app.of("/");
    ns.on_connect([&](gw::socket& s) {
        std::lock_guard lock(m);
        by_id[s.id()] = s.shared_from_this();
        thread_of[s.id()] = std::this_thread::get_id();
    });
    ns.on_disconnect([&](gw::socket& s) {
        {
            std::lock_guard lock(m);
            by_id.erase(s.id());   // an application lets go of its sockets before the gateway goes
        }
        gone.tick();
    });
    ns.on("id", [](gw::socket& s) { return s.id(); });
    auto socket_of = [&](const std::string& id) {
        std::lock_guard lock(m);
        return by_id.at(id);
    };
    // Runs on the asker's worker and reaches the other socket on its own.
    ns.on("poke", [&](gw::socket&, std::string id) -> awaitable<void> { co_await socket_of(id)->emit("poked", 1); });
    ns.on("ask", [&](gw::socket&, std::string id) -> awaitable<json> {
        auto other = socket_of(id);
        co_return co_await other->emit_with_ack("question", "six times seven?", std::chrono::seconds(10));
    });
    ns.on("find_here", [ns](gw::socket&, std::string id) { return ns.find(id) != nullptr; });

    test::run(io, [&]() -> awaitable<void> {
        auto a = co_await client::open(app);
        auto b = co_await client::open(app);
        auto ra = co_await a.ask("id");
        auto rb = co_await b.ask("id");
        const std::string ida = ra["data"], idb = rb["data"];
        {
            std::lock_guard lock(m);
            EXPECT_NE(thread_of[ida], thread_of[idb]);
        }
        co_await a.send("poke", idb);
        auto poked = co_await b.next();
        EXPECT_EQ(poked, j(R"({"event":"poked","data":1})"));

        co_await a.send("ask", idb, 1);
        auto q = co_await b.next();
        EXPECT_EQ(q["event"], "question");
        json answer = {{"event", "ack"}, {"ack", q["ack"]}, {"data", 42}};
        co_await b.c.send(answer.dump());
        auto reply = co_await a.next();
        EXPECT_EQ(reply, j(R"({"event":"ask","data":42,"id":1})"));

        // find() looks on the caller's worker only.
        auto mine = co_await a.ask("find_here", ida);
        auto theirs = co_await a.ask("find_here", idb);
        EXPECT_EQ(mine["data"], true);
        EXPECT_EQ(theirs["data"], false);
        co_await a.c.close();
        co_await b.c.close();
        co_await gone.wait();
    }());
}

TEST(Workers, GatewayStopsItsThreadsWithSocketsStillOpen) {
    asio::io_context io;
    std::atomic<int> connected = 0;
    {
        gw::gateway app{io, with_workers(workers)};
        app.of("/").on_connect([&](gw::socket&) { ++connected; });
        app.of("/").on("id", [](gw::socket& s) { return s.id(); });
        test::run(io, [&]() -> awaitable<void> {
            std::vector<client> cl;
            for (std::size_t i = 0; i < workers; ++i) {
                auto c = co_await client::open(app);
                co_await c.ask("id");
                cl.push_back(std::move(c));
            }
            // The clients stay open; the gateway goes first. Their ends close with io.
            for (auto& c : cl) {
                auto kept = std::make_shared<client>(std::move(c));
                asio::co_spawn(io, [kept]() -> awaitable<void> { co_await kept->c.receive(); }, asio::detached);
            }
        }());
    }   // joins the worker threads and frees what they served (the sanitizer build checks)
    EXPECT_EQ(connected.load(), static_cast<int>(workers));
}

TEST(Workers, AwaitedStopClosesSocketsOnEveryWorkerAndRunsTheirDisconnects) {
    asio::io_context io;
    gw::gateway app{io, with_workers(workers)};
    threads_seen seen;
    std::atomic<int> disconnects = 0;
    auto ns = app.of("/");
    ns.on_connect([&](gw::socket& s) {
        std::lock_guard lock(seen.m);
        seen.of[s.id()] = std::this_thread::get_id();
    });
    ns.on_disconnect([&](gw::socket&, std::string_view reason) {
        EXPECT_EQ(reason, "server shutting down");
        ++disconnects;
    });
    ns.on("id", [](gw::socket& s) { return s.id(); });
    test::run(io, [&]() -> awaitable<void> {
        std::vector<client> cl;
        for (std::size_t i = 0; i < 2 * workers; ++i) {
            auto c = co_await client::open(app);
            co_await c.ask("id");
            cl.push_back(std::move(c));
        }
        EXPECT_EQ(seen.distinct().size(), workers);
        // Each client answers the close while stop() waits: their reads run on this loop.
        for (auto& c : cl)
            asio::co_spawn(io, [&c]() -> awaitable<void> { co_await c.c.receive(); }, asio::detached);
        co_await app.stop();
        EXPECT_EQ(disconnects.load(), static_cast<int>(2 * workers));
        for (auto& c : cl) EXPECT_EQ(c.c.peer_close_code(), 1001);
    }());
}

TEST(Workers, RawServerSpreadsConnectionsOverItsLoops) {
    asio::io_context io;
    std::mutex m;
    std::set<std::thread::id> threads;
    gw::options o = with_workers(2);
    o.on_connection = [&](gw::connection c) {
        {
            std::lock_guard lock(m);
            threads.insert(std::this_thread::get_id());
        }
        auto echo = [c]() mutable -> awaitable<void> {
            while (auto msg = co_await c.receive()) co_await c.send(*msg);
        };
        asio::co_spawn(c.get_executor(), std::move(echo), asio::detached);
    };
    gw::server srv{io, o};
    EXPECT_EQ(srv.loops().size(), 2u);
    EXPECT_EQ(srv.loops().front(), &io);
    test::run(io, [&]() -> awaitable<void> {
        for (int i = 0; i < 4; ++i) {
            auto c = co_await gw::connect("ws://127.0.0.1:" + std::to_string(srv.port()) + "/");
            std::vector<gw::message> sent{{"hello " + std::to_string(i), false}};
            co_await test::expect_echoes(c, sent);
            co_await c.close();
        }
    }());
    std::lock_guard lock(m);
    EXPECT_EQ(threads.size(), 2u);
}

TEST(Workers, OptionsAreChecked) {
    asio::io_context io;
    gw::options o = with_workers(2);   // several loops, and no on_connection for them to hand over to
    EXPECT_THROW(gw::server(io, o), std::invalid_argument);
    gw::options every_core = test::local();
    every_core.workers = 0;
    gw::gateway app{io, every_core};
    EXPECT_EQ(app.workers(), std::max(1u, std::thread::hardware_concurrency()));
}
