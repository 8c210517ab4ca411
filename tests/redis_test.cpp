// The Redis client (include/gw/redis/client.hpp, behind GATEWAY_REDIS) against a real redis-server
// started by each test on a free loopback port: commands and replies, pipelining, binary
// payloads, pub/sub in its three forms, AUTH and SELECT, reconnecting after the server died,
// buffering and dropping while it is away, close() at awkward moments, and TLS.
#include <gateway.hpp>

#include "redis_support.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace {

using asio::awaitable;
using namespace std::chrono_literals;
namespace redis = gw::redis;

/// Options that find a returning server fast, and that log into the test's output.
redis::options quick(redis::options o = {}) {
    o.reconnect_min = 5ms;
    o.reconnect_max = 50ms;
    o.log = [](gw::log_level level, std::string_view line) {
        if (level >= gw::log_level::warn) std::fprintf(stderr, "redis log: %.*s\n", static_cast<int>(line.size()), line.data());
    };
    return o;
}

std::string bin_value() {
    std::string v = test::all_bytes();
    v += std::string("\0\r\n$3\r\n\0", 9);
    return v;
}

// URLs and RESP encoding are tested as pure functions in tests/protocol/redis_test.cpp.

// ==== commands ====

TEST(RedisClient, RepliesOfEveryKind) {
    REQUIRE_REDIS_SERVER();
    test::redis::server srv;
    asio::io_context io;
    redis::client c(io.get_executor(), srv.url(), quick());
    test::run(io, [&]() -> awaitable<void> {
        auto r = co_await c.command("SET", "greeting", "hello");
        EXPECT_EQ(r.type, redis::reply::kind::status);
        EXPECT_EQ(r.str, "OK");
        r = co_await c.command("GET", "greeting");
        EXPECT_TRUE(r.is_string());
        EXPECT_EQ(r.str, "hello");
        r = co_await c.command("GET", "missing");
        EXPECT_TRUE(r.is_nil());
        r = co_await c.command("INCRBY", "n", "41");
        EXPECT_EQ(r.type, redis::reply::kind::integer);
        EXPECT_EQ(r.integer, 41);
        r = co_await c.command("NO-SUCH-COMMAND", "x");
        EXPECT_TRUE(r.is_error());
        EXPECT_NE(r.str.find("unknown command"), std::string::npos) << r.str;
        r = co_await c.command("INCR", "greeting");   // an error reply is a value: the link stays
        EXPECT_TRUE(r.is_error());
        std::vector<std::string> push{"RPUSH", "list", "a", "b", "c"};
        r = co_await c.command(push);
        EXPECT_EQ(r.integer, 3);
        r = co_await c.command("LRANGE", "list", "0", "-1");
        EXPECT_TRUE(r.is_array());
        EXPECT_EQ(r.elements.size(), 3u);
        if (r.elements.size() == 3) {
            EXPECT_EQ(r.elements[2].str, "c");
        }
        r = co_await c.command("EVAL", "return {1, {'two', {}}, redis.status_reply('fine')}", "0");
        EXPECT_TRUE(r.is_array());
        if (r.elements.size() == 3) {
            EXPECT_EQ(r.elements[0].integer, 1);
            EXPECT_TRUE(r.elements[1].is_array());
            if (r.elements[1].elements.size() == 2) {
                EXPECT_EQ(r.elements[1].elements[0].str, "two");
                EXPECT_TRUE(r.elements[1].elements[1].is_array());
                EXPECT_TRUE(r.elements[1].elements[1].elements.empty());
            }
            EXPECT_EQ(r.elements[2].type, redis::reply::kind::status);
        } else {
            ADD_FAILURE() << "nested reply of " << r.elements.size() << " elements";
        }
        r = co_await c.command("BLPOP", "empty", "0.01");   // a nil array
        EXPECT_TRUE(r.is_nil());
    }());
    EXPECT_TRUE(c.connected());
    EXPECT_EQ(c.dropped(), 0u);
}

TEST(RedisClient, ManyCommandsInFlightKeepTheirOrder) {
    REQUIRE_REDIS_SERVER();
    test::redis::server srv;
    asio::io_context io;
    redis::client c(io.get_executor(), srv.url(), quick());
    constexpr int n = 5000;
    test::run(io, [&]() -> awaitable<void> {
        // All are queued before the first reply is awaited: they go out in a few large writes.
        std::vector<awaitable<redis::reply>> pending;
        pending.reserve(n);
        for (int i = 0; i < n; ++i) {
            if (i % 10 == 0) c.send("RPUSH", "sent", std::to_string(i));
            pending.push_back(c.command("INCR", "counter"));
        }
        long long expected = 1;
        for (auto& p : pending) {
            auto r = co_await std::move(p);
            EXPECT_EQ(r.integer, expected);
            ++expected;
        }
        auto r = co_await c.command("LRANGE", "sent", "0", "-1");
        EXPECT_EQ(r.elements.size(), static_cast<std::size_t>(n / 10));
        for (std::size_t i = 0; i < r.elements.size(); ++i) EXPECT_EQ(r.elements[i].str, std::to_string(i * 10));
    }());
}

TEST(RedisClient, BinaryKeysAndValues) {
    REQUIRE_REDIS_SERVER();
    test::redis::server srv;
    asio::io_context io;
    redis::client c(io.get_executor(), srv.url(), quick());
    test::run(io, [&]() -> awaitable<void> {
        const std::string key("bin\0key", 7), value = bin_value();
        std::string big(3 << 20, 'x');   // larger than one read: the reply arrives in pieces
        for (std::size_t i = 0; i < big.size(); i += 4096) big[i] = '\0';
        auto r = co_await c.command("SET", key, value);
        EXPECT_EQ(r.str, "OK");
        r = co_await c.command("GET", key);
        EXPECT_EQ(r.str, value);
        r = co_await c.command("SET", "big", big);
        EXPECT_EQ(r.str, "OK");
        r = co_await c.command("GET", "big");
        EXPECT_TRUE(r.str == big) << "a 3 MiB value came back changed (" << r.str.size() << " bytes)";
        r = co_await c.command("STRLEN", key);
        EXPECT_EQ(r.integer, static_cast<long long>(value.size()));
    }());
}

// ==== pub/sub ====

TEST(RedisSubscriber, SubscribePatternsAndShardsWithBinaryPayloads) {
    REQUIRE_REDIS_SERVER();
    test::redis::server srv;
    asio::io_context io;
    std::vector<redis::message> got;
    test::redis::event arrived(io);
    redis::subscriber sub(io.get_executor(), srv.url(), [&](const redis::message& m) {
        got.push_back(m);
        arrived.notify();
    }, quick());
    redis::client pub(io.get_executor(), srv.url(), quick());
    test::run(io, [&]() -> awaitable<void> {
        co_await sub.subscribe("room:a");
        co_await sub.psubscribe("news.*");
        co_await sub.ssubscribe("shard:1");
        const std::string payload = bin_value();
        auto r = co_await pub.command("PUBLISH", "room:a", payload);
        EXPECT_EQ(r.integer, 1);
        r = co_await pub.command("PUBLISH", "news.sport", "goal");
        EXPECT_EQ(r.integer, 1);
        r = co_await pub.command("SPUBLISH", "shard:1", payload);
        EXPECT_EQ(r.integer, 1);
        co_await arrived.until([&] { return got.size() >= 3; });
        EXPECT_EQ(got.size(), 3u);
        if (got.size() == 3) {
            EXPECT_EQ(got[0].channel, "room:a");
            EXPECT_EQ(got[0].payload, payload);
            EXPECT_TRUE(got[0].pattern.empty());
            EXPECT_FALSE(got[0].sharded);
            EXPECT_EQ(got[1].channel, "news.sport");
            EXPECT_EQ(got[1].pattern, "news.*");
            EXPECT_EQ(got[1].payload, "goal");
            EXPECT_EQ(got[2].channel, "shard:1");
            EXPECT_TRUE(got[2].sharded);
            EXPECT_EQ(got[2].payload, payload);
        }
        // Unsubscribed: Redis counts no receiver and nothing more is delivered.
        co_await sub.unsubscribe("room:a");
        co_await sub.punsubscribe("news.*");
        co_await sub.sunsubscribe("shard:1");
        r = co_await pub.command("PUBLISH", "room:a", "late");
        EXPECT_EQ(r.integer, 0);
        r = co_await pub.command("PUBLISH", "news.weather", "rain");
        EXPECT_EQ(r.integer, 0);
        // A fresh subscription still works after the others went.
        co_await sub.subscribe("room:b");
        pub.send("PUBLISH", "room:b", "last");
        co_await arrived.until([&] { return got.size() >= 4; });
        EXPECT_EQ(got.back().channel, "room:b");
        EXPECT_EQ(got.size(), 4u);
    }());
}

TEST(RedisSubscriber, ARefusedSubscriptionFailsItsCallerAndSparesTheOthers) {
    REQUIRE_REDIS_SERVER();
    test::redis::server srv;
    asio::io_context io;
    redis::client admin(io.get_executor(), srv.url(), quick());
    test::run(io, [&]() -> awaitable<void> {
        auto r = co_await admin.command("ACL", "SETUSER", "bob", "on", ">pw", "~*", "resetchannels", "&allowed:*", "+@all");
        EXPECT_EQ(r.str, "OK");
    }());
    std::vector<redis::message> got;
    test::redis::event arrived(io);
    auto opts = quick();
    opts.log = {};   // the refusal is expected
    redis::subscriber sub(io.get_executor(), srv.url("bob:pw"), [&](const redis::message& m) {
        got.push_back(m);
        arrived.notify();
    }, opts);
    test::run(io, [&]() -> awaitable<void> {
        co_await sub.subscribe("allowed:1");
        try {
            co_await sub.subscribe("forbidden");
            ADD_FAILURE() << "a forbidden channel was subscribed";
        } catch (const std::system_error& e) {
            EXPECT_EQ(e.code(), redis::errc::refused);
            EXPECT_NE(std::string(e.what()).find("NOPERM"), std::string::npos) << e.what();
        }
        co_await sub.psubscribe("allowed:*");
        auto r = co_await admin.command("PUBLISH", "allowed:1", "yes");
        EXPECT_EQ(r.integer, 2);
        co_await arrived.until([&] { return got.size() == 2; });
        EXPECT_TRUE(sub.connected());
    }());
}

// ==== AUTH and SELECT ====

TEST(RedisClient, AuthWithRequirepass) {
    REQUIRE_REDIS_SERVER();
    test::redis::server srv({"--requirepass", "s3cret pass"});
    asio::io_context io;
    redis::client c(io.get_executor(), srv.url(":s3cret%20pass"), quick());
    std::vector<std::string> refusals;
    auto wrong_opts = quick();
    wrong_opts.on_state = [&](bool up, std::string_view why) {
        if (!up) refusals.emplace_back(why);
    };
    redis::client wrong(io.get_executor(), srv.url(":nope"), wrong_opts);
    redis::client none(io.get_executor(), srv.url(), quick());
    test::run(io, [&]() -> awaitable<void> {
        auto r = co_await c.command("PING");
        EXPECT_EQ(r.str, "PONG");
        try {
            co_await wrong.command("PING");
            ADD_FAILURE() << "a wrong password was accepted";
        } catch (const std::system_error& e) {
            EXPECT_EQ(e.code(), redis::errc::handshake_failed);
            EXPECT_NE(std::string(e.what()).find("AUTH refused"), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find("WRONGPASS"), std::string::npos) << e.what();
        }
        try {
            co_await none.command("PING");
            ADD_FAILURE() << "no password was accepted";
        } catch (const std::system_error& e) {
            EXPECT_NE(std::string(e.what()).find("NOAUTH"), std::string::npos) << e.what();
        }
    }());
    EXPECT_FALSE(wrong.connected());
    EXPECT_GE(wrong.dropped(), 1u);
    ASSERT_FALSE(refusals.empty());
    EXPECT_NE(refusals[0].find("WRONGPASS"), std::string::npos) << refusals[0];
}

TEST(RedisClient, AclUserWithPercentEncodedPassword) {
    REQUIRE_REDIS_SERVER();
    test::redis::server srv;
    asio::io_context io;
    redis::client admin(io.get_executor(), srv.url(), quick());
    test::run(io, [&]() -> awaitable<void> {
        auto r = co_await admin.command("ACL", "SETUSER", "alice", "on", ">p@ss:w/rd", "~*", "&*", "+@all");
        EXPECT_EQ(r.str, "OK");
    }());
    redis::client alice(io.get_executor(), srv.url("alice:p%40ss%3Aw%2Frd"), quick());
    std::vector<redis::message> got;
    test::redis::event arrived(io);
    redis::subscriber sub(io.get_executor(), srv.url("alice:p%40ss%3Aw%2Frd"), [&](const redis::message& m) {
        got.push_back(m);
        arrived.notify();
    }, quick());
    test::run(io, [&]() -> awaitable<void> {
        auto r = co_await alice.command("ACL", "WHOAMI");
        EXPECT_EQ(r.str, "alice");
        co_await sub.subscribe("c");
        r = co_await alice.command("PUBLISH", "c", "hi");
        EXPECT_EQ(r.integer, 1);
        co_await arrived.until([&] { return !got.empty(); });
        EXPECT_EQ(got[0].payload, "hi");
    }());
}

TEST(RedisClient, SelectsTheUrlsDatabase) {
    REQUIRE_REDIS_SERVER();
    test::redis::server srv;
    asio::io_context io;
    redis::client db3(io.get_executor(), srv.url({}, "3"), quick());
    redis::client db0(io.get_executor(), srv.url(), quick());
    test::run(io, [&]() -> awaitable<void> {
        co_await db3.command("SET", "where", "three");
        auto r = co_await db0.command("GET", "where");
        EXPECT_TRUE(r.is_nil());
        r = co_await db3.command("GET", "where");
        EXPECT_EQ(r.str, "three");
        r = co_await db3.command("CLIENT", "INFO");
        EXPECT_NE(r.str.find(" db=3 "), std::string::npos) << r.str;
        co_await db0.command("SELECT", "3");
        r = co_await db0.command("GET", "where");
        EXPECT_EQ(r.str, "three");
    }());
}

// ==== outages ====

TEST(RedisClient, ReconnectsAndResubscribesAfterTheServerDied) {
    REQUIRE_REDIS_SERVER();
    test::redis::server srv;
    asio::io_context io;
    test::redis::event changed(io);
    int client_ups = 0, client_downs = 0, sub_ups = 0, sub_downs = 0;
    auto client_opts = quick();
    client_opts.on_state = [&](bool up, std::string_view) {
        ++(up ? client_ups : client_downs);
        changed.notify();
    };
    auto sub_opts = quick();
    sub_opts.on_state = [&](bool up, std::string_view) {
        ++(up ? sub_ups : sub_downs);
        changed.notify();
    };
    std::vector<redis::message> got;
    redis::subscriber sub(io.get_executor(), srv.url(), [&](const redis::message& m) {
        got.push_back(m);
        changed.notify();
    }, sub_opts);
    redis::client c(io.get_executor(), srv.url(), client_opts);
    test::run(io, [&]() -> awaitable<void> {
        co_await sub.subscribe("chan");
        co_await sub.psubscribe("pat.*");
        co_await sub.ssubscribe("shard");
        co_await c.command("PUBLISH", "chan", "before");
        co_await changed.until([&] { return got.size() == 1; });
        co_await changed.until([&] { return client_ups == 1 && sub_ups == 1; });

        srv.stop(SIGKILL);
        co_await changed.until([&] { return client_downs == 1 && sub_downs == 1; });
        EXPECT_FALSE(c.connected());
        EXPECT_FALSE(sub.connected());
        // While it is away, commands wait in the buffer.
        auto during = c.command("SET", "during", "outage");
        c.send("INCR", "sent-while-down");
        c.send("INCR", "sent-while-down");

        srv.start();
        co_await changed.until([&] { return client_ups == 2 && sub_ups == 2; });
        auto r = co_await std::move(during);
        EXPECT_EQ(r.str, "OK");
        r = co_await c.command("GET", "sent-while-down");
        EXPECT_EQ(r.str, "2");
        // The subscriber asked for its subscriptions again by itself; wait until Redis has them all.
        for (;;) {
            auto n = co_await c.command("PUBSUB", "NUMSUB", "chan");
            auto p = co_await c.command("PUBSUB", "NUMPAT");
            auto s = co_await c.command("PUBSUB", "SHARDNUMSUB", "shard");
            if (n.elements.size() == 2 && n.elements[1].integer == 1 && p.integer == 1 && s.elements.size() == 2 &&
                s.elements[1].integer == 1)
                break;
        }
        c.send("PUBLISH", "chan", "after");
        c.send("PUBLISH", "pat.x", "pattern after");
        c.send("SPUBLISH", "shard", "shard after");
        co_await changed.until([&] { return got.size() == 4; });
        if (got.size() == 4) {
            EXPECT_EQ(got[1].payload, "after");
            EXPECT_EQ(got[2].payload, "pattern after");
            EXPECT_EQ(got[2].pattern, "pat.*");
            EXPECT_EQ(got[3].payload, "shard after");
        }
    }());
    EXPECT_EQ(c.counters().reconnects, 1u);
    EXPECT_EQ(sub.counters().reconnects, 1u);
    EXPECT_TRUE(c.counters().connected);
}

TEST(RedisClient, BuffersWhileAwayUpToTheBoundAndCountsTheRest) {
    REQUIRE_REDIS_SERVER();
    const std::uint16_t port = test::redis::free_port();   // nobody there yet
    asio::io_context io;
    test::redis::event changed(io);
    bool up = false, told_down = false;
    std::string why;
    auto opts = quick();
    opts.log = {};   // the refused connections are expected here
    opts.max_buffered_bytes = 8 * 54;
    opts.on_state = [&](bool is_up, std::string_view reason) {
        up = is_up;
        if (!is_up) {
            told_down = true;
            why = reason;
        }
        changed.notify();
    };
    redis::client c(io.get_executor(), "redis://127.0.0.1:" + std::to_string(port), opts);
    std::unique_ptr<test::redis::server> srv;
    test::run(io, [&]() -> awaitable<void> {
        co_await changed.until([&] { return told_down; });
        EXPECT_NE(why.find("connect to"), std::string::npos) << why;
        // Each RPUSH is 54 bytes of RESP: 8 fit, the rest is dropped.
        const std::string item(20, 'i');
        int accepted = 0;
        for (int i = 0; i < 12; ++i)
            if (c.send("RPUSH", "queued", item)) ++accepted;
        EXPECT_EQ(accepted, 8);
        EXPECT_EQ(c.dropped(), 4u);
        try {
            co_await c.command("RPUSH", "queued", item);
            ADD_FAILURE() << "a command over the bound was buffered";
        } catch (const std::system_error& e) {
            EXPECT_EQ(e.code(), redis::errc::dropped);
        }
        EXPECT_EQ(c.dropped(), 5u);
        srv = std::make_unique<test::redis::server>(port);
        co_await changed.until([&] { return up; });
        auto r = co_await c.command("LLEN", "queued");
        EXPECT_EQ(r.integer, 8);
    }());
}

// ==== close ====

awaitable<void> expect_closed(awaitable<redis::reply> command) {
    try {
        co_await std::move(command);
        ADD_FAILURE() << "a command completed after close()";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), redis::errc::closed);
    }
}

TEST(RedisClient, CloseWhileConnectingEndsEverything) {
    // A listener that accepts and never answers: the client waits for its PING's reply.
    asio::io_context io;
    asio::ip::tcp::acceptor silent(io, {asio::ip::make_address("127.0.0.1"), 0});
    asio::ip::tcp::socket held(io);
    test::redis::event accepted(io);
    bool holding = false;
    silent.async_accept(held, [&](std::error_code ec) {
        holding = !ec;
        accepted.notify();
    });
    auto c = std::make_unique<redis::client>(io.get_executor(),
                                             "redis://127.0.0.1:" + std::to_string(silent.local_endpoint().port()), quick());
    auto pending = test::start(io, [&]() -> awaitable<std::error_code> {
        try {
            co_await c->command("PING");
        } catch (const std::system_error& e) {
            co_return e.code();
        }
        co_return std::error_code{};
    });
    test::run(io, [&]() -> awaitable<void> {
        co_await accepted.until([&] { return holding; });   // the silent peer holds the connection
        c->close();
        c.reset();
    }());
    EXPECT_EQ(test::wait(io, pending), redis::errc::closed);
    held.close();
    silent.close();
    io.restart();
    io.run_for(5s);
    EXPECT_TRUE(io.stopped()) << "something of the client's was still pending after close()";
}

TEST(RedisClient, CloseWhileWaitingToReconnect) {
    asio::io_context io;
    test::redis::event changed(io);
    bool down = false;
    auto opts = quick();
    opts.log = {};
    opts.reconnect_min = opts.reconnect_max = 60s;   // it would wait a minute before trying again
    opts.on_state = [&](bool up, std::string_view) {
        down = !up;
        changed.notify();
    };
    auto c = std::make_unique<redis::client>(io.get_executor(),
                                             "redis://127.0.0.1:" + std::to_string(test::redis::free_port()), opts);
    auto sub = std::make_unique<redis::subscriber>(
        io.get_executor(), "redis://127.0.0.1:" + std::to_string(test::redis::free_port()), [](const redis::message&) {}, opts);
    test::run(io, [&]() -> awaitable<void> {
        co_await changed.until([&] { return down; });
        auto queued = c->command("PING");
        auto subscribing = sub->subscribe("x");
        c.reset();   // destroying closes
        sub.reset();
        co_await expect_closed(std::move(queued));
        try {
            co_await std::move(subscribing);
            ADD_FAILURE() << "a subscription completed after close()";
        } catch (const std::system_error& e) {
            EXPECT_EQ(e.code(), redis::errc::closed);
        }
    }());
    io.restart();
    io.run_for(5s);
    EXPECT_TRUE(io.stopped()) << "something of the client's was still pending after close()";
}

TEST(RedisClient, CloseWithCommandsPendingAndDestroyAtOnce) {
    REQUIRE_REDIS_SERVER();
    test::redis::server srv;
    asio::io_context io;
    auto c = std::make_unique<redis::client>(io.get_executor(), srv.url(), quick());
    auto sub = std::make_unique<redis::subscriber>(io.get_executor(), srv.url(), [](const redis::message&) {}, quick());
    test::run(io, [&]() -> awaitable<void> {
        co_await sub->subscribe("x");
        auto r = co_await c->command("PING");
        EXPECT_EQ(r.str, "PONG");
        auto blocked = c->command("BLPOP", "nothing", "30");   // written, and Redis holds its reply
        auto queued = c->command("PING");
        auto subscribing = sub->subscribe("y");
        c->close();
        sub->close();
        c.reset();
        sub.reset();
        co_await expect_closed(std::move(blocked));
        co_await expect_closed(std::move(queued));
        try {
            co_await std::move(subscribing);
        } catch (const std::system_error& e) {
            EXPECT_EQ(e.code(), redis::errc::closed);
        }
    }());
    io.restart();
    io.run_for(5s);
    EXPECT_TRUE(io.stopped()) << "something of the client's was still pending after close()";
}

// ==== TLS ====

struct cert_files {
    std::filesystem::path dir;
    test::certificate cert = test::certificate::make();
    cert_files() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "gw-redis-tls-XXXXXX").string();
        if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        dir = tmpl;
        std::ofstream(dir / "cert.pem") << cert.cert_pem;
        std::ofstream(dir / "key.pem") << cert.key_pem;
    }
    ~cert_files() { std::filesystem::remove_all(dir); }
    std::vector<std::string> server_args() const {
        return {"--tls-cert-file", (dir / "cert.pem").string(), "--tls-key-file", (dir / "key.pem").string(),
                "--tls-ca-cert-file", (dir / "cert.pem").string(), "--tls-auth-clients", "no"};
    }
};

TEST(RedisClient, TlsCommandsAndPubSub) {
    REQUIRE_REDIS_SERVER();
    cert_files files;
    test::redis::server srv(files.server_args(), true);
    asio::io_context io;
    auto opts = quick();
    opts.tls = files.cert.client_context();
    redis::client c(io.get_executor(), srv.url(), opts);
    std::vector<redis::message> got;
    test::redis::event arrived(io);
    redis::subscriber sub(io.get_executor(), srv.url(), [&](const redis::message& m) {
        got.push_back(m);
        arrived.notify();
    }, opts);
    // Without the certificate's CA the server is not trusted.
    std::string refused;
    auto untrusting = quick();
    untrusting.log = {};
    untrusting.on_state = [&](bool up, std::string_view why) {
        if (!up) refused = why;
        arrived.notify();
    };
    redis::client stranger(io.get_executor(), srv.url(), untrusting);
    test::run(io, [&]() -> awaitable<void> {
        const std::string value = bin_value();
        co_await c.command("SET", "k", value);
        auto r = co_await c.command("GET", "k");
        EXPECT_EQ(r.str, value);
        co_await sub.subscribe("secure");
        co_await c.command("PUBLISH", "secure", value);
        co_await arrived.until([&] { return !got.empty() && !refused.empty(); });
        EXPECT_EQ(got[0].payload, value);
        EXPECT_NE(refused.find("TLS handshake"), std::string::npos) << refused;
    }());
    EXPECT_FALSE(stranger.connected());
}

} // namespace
