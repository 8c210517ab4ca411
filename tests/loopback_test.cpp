// Server and client of gateway.hpp talking over real loopback sockets, plain and TLS.
#include "loopback_support.hpp"

#include <set>
#include <thread>

using namespace std::chrono_literals;
using namespace test::loopback;
using asio::awaitable;
using asio::use_awaitable;

namespace {

/// Accepts connections and echoes on each until the server stops.
awaitable<void> echo_server(gw::server& srv) {
    auto ex = co_await asio::this_coro::executor;
    for (;;) {
        auto c = co_await srv.accept();
        asio::co_spawn(ex, [c = std::move(c)]() mutable -> awaitable<void> {
            while (auto m = co_await c.receive()) co_await c.send(std::move(*m));
        }, [](std::exception_ptr) {});
    }
}

void start_echo(asio::io_context& io, gw::server& srv) {
    asio::co_spawn(io, echo_server(srv), [](std::exception_ptr) {});
}

} // namespace

TEST(Loopback, EchoesTextAsTextAndBinaryAsBinary) {
    asio::io_context io;
    gw::server srv{io, local()};
    start_echo(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        auto c = co_await gw::connect(url(srv));
        const std::vector<gw::message> sent = {
            {"hello", false}, {"", false}, {"", true}, {test::all_bytes(), true}, {"κόσμε 🙂", false},
            {std::string(125, 'a'), false}, {std::string(126, 'b'), true}, {std::string(65535, 'c'), false},
            {std::string(65536, 'd'), true}, {std::string(1 << 20, 'e'), false},
        };
        co_await test::expect_echoes(c, sent);
        co_await c.close();
        EXPECT_EQ(c.peer_close_code(), 1000);
    }());
}

TEST(Loopback, TlsEchoWithVerifiedCertificate) {
    auto cert = test::certificate::make();
    asio::io_context io;
    gw::server srv{io, local({.tls = cert.server_context()})};
    start_echo(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        // Options as a named variable: GCC 12 destroys a braced temporary inside co_await twice.
        gw::client_options trusting{.tls = cert.client_context()};
        auto c = co_await gw::connect(url(srv, "/secure", true), trusting);
        co_await c.send("over TLS");
        co_await c.send_binary(std::string(200000, '\x7f'));
        auto a = co_await c.receive();
        auto b = co_await c.receive();
        EXPECT_EQ(a->data, "over TLS");
        EXPECT_FALSE(a->binary);
        EXPECT_EQ(b->data.size(), 200000u);
        EXPECT_TRUE(b->binary);
        co_await c.close(gw::close_code::going_away);
        EXPECT_EQ(c.peer_close_code(), 1001);
    }());
}

TEST(Loopback, TlsClientRejectsAnUntrustedCertificateByDefault) {
    auto cert = test::certificate::make();
    asio::io_context io;
    gw::server srv{io, local({.tls = cert.server_context()})};
    start_echo(io, srv);
    // The system's CAs do not know this certificate.
    EXPECT_TRUE(test::run(io, connect_fails(url(srv, "/", true), {})));
}

TEST(Loopback, TlsClientChecksTheHostName) {
    auto cert = test::certificate::make();   // valid for localhost and 127.0.0.1 only
    asio::io_context io;
    gw::server srv{io, local({.tls = cert.server_context()})};
    start_echo(io, srv);
    gw::client_options trusting{.tls = cert.client_context()};
    EXPECT_TRUE(test::run(io, connect_fails("wss://127.0.0.2:" + std::to_string(srv.port()) + "/", trusting)));
}

TEST(Loopback, ConcurrentSendersNeverInterleave) {
    asio::io_context io;
    gw::server srv{io, local()};
    start_echo(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        auto c = co_await gw::connect(url(srv));
        auto ex = co_await asio::this_coro::executor;
        constexpr int senders = 4, each = 500;
        int finished = 0;
        for (int s = 0; s < senders; ++s) {
            asio::co_spawn(ex, [&c, &finished, s]() -> awaitable<void> {
                for (int i = 0; i < each; ++i) {
                    // Sizes vary so some frames need the 16-bit length and some do not.
                    std::string body(static_cast<std::size_t>(10 + (i * 37) % 300), static_cast<char>('a' + s));
                    co_await c.send(std::to_string(s) + ":" + std::to_string(i) + ":" + body);
                    if (i % 50 == 0) co_await asio::post(asio::use_awaitable);   // let the others in
                }
                ++finished;
            }, [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
        }
        std::vector<int> next(senders, 0);
        for (int n = 0; n < senders * each; ++n) {
            auto m = co_await c.receive();
            EXPECT_TRUE(m.has_value());
            if (!m) co_return;
            auto first = m->data.find(':'), second = m->data.find(':', first + 1);
            int s = std::stoi(m->data.substr(0, first));
            int i = std::stoi(m->data.substr(first + 1, second - first - 1));
            EXPECT_EQ(i, next[s]++) << "messages of one sender arrive in order";
            std::string body = m->data.substr(second + 1);
            EXPECT_EQ(body, std::string(body.size(), static_cast<char>('a' + s))) << "no interleaving";
        }
        EXPECT_EQ(finished, senders);
        co_await c.close();
    }());
}

TEST(Loopback, SendingOnAClosedConnectionIsAnError) {
    asio::io_context io;
    gw::server srv{io, local()};
    start_echo(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        auto c = co_await gw::connect(url(srv));
        co_await c.close();
        EXPECT_FALSE(c.is_open());
        std::error_code got;
        try {
            co_await c.send("too late");
        } catch (const std::system_error& e) {
            got = e.code();
        }
        EXPECT_EQ(got, gw::errc::closed);
        gw::connection empty;
        got = {};
        try {
            co_await empty.send("nobody");
        } catch (const std::system_error& e) {
            got = e.code();
        }
        EXPECT_EQ(got, gw::errc::closed);
    }());
}

TEST(Loopback, ClientCloseReachesTheServerWithCodeAndReason) {
    asio::io_context io;
    gw::server srv{io, local()};
    std::uint16_t server_saw = 0;
    std::string reason;
    bool clean = false;
    auto server_side = test::start(io, [&]() -> awaitable<void> {
        auto c = co_await srv.accept();
        auto m = co_await c.receive();
        clean = !m.has_value();
        server_saw = c.peer_close_code();
        reason = std::string(c.peer_close_reason());
    });
    test::run(io, [&]() -> awaitable<void> {
        auto c = co_await gw::connect(url(srv));
        co_await c.close(static_cast<gw::close_code>(4001), "bye now");
        EXPECT_EQ(c.peer_close_code(), 4001);   // the server echoes the code
    }());
    test::wait(io, server_side);
    EXPECT_TRUE(clean);
    EXPECT_EQ(server_saw, 4001);
    EXPECT_EQ(reason, "bye now");
}

TEST(Loopback, ServerCloseEndsTheClientsReceiveCleanly) {
    asio::io_context io;
    gw::server srv{io, local()};
    asio::co_spawn(io, [&]() -> awaitable<void> {
        auto c = co_await srv.accept();
        co_await c.send("last words");
        co_await c.close(gw::close_code::going_away, "maintenance");
    }, [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
    test::run(io, [&]() -> awaitable<void> {
        auto c = co_await gw::connect(url(srv));
        auto m = co_await c.receive();
        EXPECT_EQ(m->data, "last words");   // what was queued before the close arrives first
        auto end = co_await c.receive();
        EXPECT_FALSE(end.has_value());
        EXPECT_EQ(c.peer_close_code(), 1001);
        EXPECT_EQ(c.peer_close_reason(), "maintenance");
    }());
}

TEST(Loopback, ApplicationSeesTheRequestAndMayRefuseIt) {
    asio::io_context io;
    std::string seen_path, seen_token, seen_header;
    gw::server srv{io, local({.on_upgrade = [&](const gw::http_request& r) -> std::optional<gw::http_response> {
        seen_path = std::string(r.path());
        seen_token = r.query_param("token").value_or("");
        seen_header = std::string(r.header("x-custom").value_or(""));
        EXPECT_TRUE(r.remote_endpoint().address().is_loopback());
        if (seen_token != "good") return gw::http_response{.status = 401, .body = "who are you?"};
        return std::nullopt;
    }})};
    start_echo(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        std::string what;
        try {
            co_await gw::connect(url(srv, "/room?token=bad"));
        } catch (const std::system_error& e) {
            EXPECT_EQ(e.code(), gw::errc::handshake_failed);
            what = e.what();
        }
        EXPECT_NE(what.find("401"), std::string::npos) << what;
        raw_client raw(io);   // RFC 7235: a 401 names the scheme it would accept
        co_await raw.open(srv.port());
        co_await raw.write("GET /room?token=bad HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
        const std::string refusal = co_await raw.read_all();
        EXPECT_EQ(refusal.rfind("HTTP/1.1 401 ", 0), 0u) << refusal;
        EXPECT_NE(refusal.find("\r\nWWW-Authenticate: Bearer\r\n"), std::string::npos) << refusal;
        EXPECT_EQ(after_head(refusal), "who are you?");
        gw::client_options with_header;
        with_header.headers.emplace_back("X-Custom", "yes");
        auto c = co_await gw::connect(url(srv, "/room?token=good"), std::move(with_header));
        EXPECT_EQ(seen_path, "/room");
        EXPECT_EQ(seen_header, "yes");
        co_await c.close();
    }());
}

TEST(Loopback, RefusalsAndPlainHttpAnswers) {
    asio::io_context io;
    gw::server srv{io, local({.on_upgrade = [](const gw::http_request&) -> std::optional<gw::http_response> {
                                  return gw::http_response{.status = 403, .body = "members only"};
                              },
                              .on_http = [](const gw::http_request& r) -> std::optional<gw::http_response> {
                                  if (r.path() == "/healthz") return gw::http_response{.body = "ok"};
                                  return std::nullopt;
                              }})};
    auto ask = [&](std::string request) -> awaitable<std::string> {
        raw_client rc(io);
        co_return co_await rc.exchange(srv.port(), request);
    };
    test::run(io, [&]() -> awaitable<void> {
        auto health = co_await ask("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        EXPECT_EQ(health.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << health;
        EXPECT_NE(health.find("\r\n\r\nok"), std::string::npos);
        auto other = co_await ask("GET /other HTTP/1.1\r\nHost: x\r\n\r\n");
        EXPECT_EQ(other.rfind("HTTP/1.1 426 ", 0), 0u) << other;
        auto refused = co_await ask(upgrade_request);
        EXPECT_EQ(refused.rfind("HTTP/1.1 403 ", 0), 0u) << refused;
        EXPECT_NE(refused.find("members only"), std::string::npos);
        auto old_version = co_await ask(
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n");
        EXPECT_EQ(old_version.rfind("HTTP/1.1 426 ", 0), 0u) << old_version;
        EXPECT_NE(old_version.find("Sec-WebSocket-Version: 13\r\n"), std::string::npos);
        auto bad_key = co_await ask(
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n");
        EXPECT_EQ(bad_key.rfind("HTTP/1.1 400 ", 0), 0u) << bad_key;
        auto garbage = co_await ask("HELLO\r\n\r\n");
        EXPECT_EQ(garbage.rfind("HTTP/1.1 400 ", 0), 0u) << garbage;
        auto huge = co_await ask("GET / HTTP/1.1\r\nX-Big: " + std::string(9000, 'x') + "\r\n\r\n");
        EXPECT_EQ(huge.rfind("HTTP/1.1 431 ", 0), 0u) << huge;
    }());
}

TEST(Loopback, SubprotocolIsChosenByTheApplication) {
    asio::io_context io;
    gw::server srv{io, local({.select_subprotocol = [](const gw::http_request& r) -> std::string {
        for (auto p : r.protocols())
            if (p == "chat.v2") return std::string(p);
        return {};
    }})};
    std::string server_side;
    asio::co_spawn(io, [&]() -> awaitable<void> {
        auto c = co_await srv.accept();
        server_side = std::string(c.subprotocol());
        while (auto m = co_await c.receive()) co_await c.send(std::move(*m));
    }, [](std::exception_ptr) {});
    test::run(io, [&]() -> awaitable<void> {
        gw::client_options offer;
        offer.subprotocols = {"chat.v1", "chat.v2"};
        auto c = co_await gw::connect(url(srv), std::move(offer));
        EXPECT_EQ(c.subprotocol(), "chat.v2");
        co_await c.send("sync");   // the echo proves the server side has accepted
        co_await c.receive();
        EXPECT_EQ(server_side, "chat.v2");
        co_await c.close();
    }());
}

TEST(Loopback, TricklingClientIsCutOffWhileOthersAreServed) {
    asio::io_context io;
    gw::server srv{io, local({.handshake_timeout = 300ms})};
    start_echo(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        raw_client slow(io);
        co_await slow.open(srv.port());
        co_await slow.write("GET / HTTP/1.1\r\nHost: x\r\n");   // and never the rest
        auto c = co_await gw::connect(url(srv));                 // served meanwhile
        co_await c.send("still here");
        EXPECT_EQ((co_await c.receive())->data, "still here");
        auto start = std::chrono::steady_clock::now();
        auto rest = co_await slow.read_all();                    // ends when the server gives up
        EXPECT_TRUE(rest.empty() || rest.rfind("HTTP/1.1 408", 0) == 0) << rest;
        EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
        co_await c.close();
    }());
}

TEST(Loopback, MessageOverTheLimitClosesWith1009) {
    asio::io_context io;
    gw::server srv{io, local({.max_message_bytes = 1000})};
    std::error_code server_error;
    auto server_side = test::start(io, [&]() -> awaitable<void> {
        auto c = co_await srv.accept();
        try {
            while (auto m = co_await c.receive()) co_await c.send(std::move(*m));
        } catch (const std::system_error& e) {
            server_error = e.code();
        }
    });
    test::run(io, [&]() -> awaitable<void> {
        auto c = co_await gw::connect(url(srv));
        co_await c.send(std::string(1000, 'x'));                  // at the limit: fine
        EXPECT_EQ((co_await c.receive())->data.size(), 1000u);
        co_await c.send(std::string(1001, 'x'));
        auto end = co_await c.receive();
        EXPECT_FALSE(end.has_value());
        EXPECT_EQ(c.peer_close_code(), 1009);
    }());
    test::wait(io, server_side);
    EXPECT_EQ(server_error, gw::errc::message_too_big);
}

TEST(Loopback, HugeDeclaredLengthIsRefusedWithoutAllocating) {
    asio::io_context io;
    gw::server srv{io, local()};
    start_echo(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        raw_client rc(io);
        co_await rc.open(srv.port());
        // A 2^63-1 byte binary frame header, then nothing.
        std::string frame = "\x82\xFF\x7F\xFF\xFF\xFF\xFF\xFF\xFF\xFF" "abcd";
        co_await rc.write(upgrade_request + frame);
        auto reply = co_await rc.read_all();
        EXPECT_EQ(after_head(reply), std::string("\x88\x02\x03\xF1", 4));   // close 1009
    }());
}

TEST(Loopback, FrameSentWithTheHandshakeIsNotLost) {
    asio::io_context io;
    gw::server srv{io, local()};
    start_echo(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        raw_client rc(io);
        co_await rc.open(srv.port());
        co_await rc.write(upgrade_request + client_frame(gw::opcode::text, "early") +
                          client_frame(gw::opcode::close, std::string("\x03\xE8", 2)));
        auto reply = co_await rc.read_all();
        EXPECT_NE(reply.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), std::string::npos);
        EXPECT_EQ(after_head(reply), std::string("\x81\x05" "early" "\x88\x02\x03\xE8", 11));
    }());
}

TEST(Loopback, UnmaskedClientFrameClosesWith1002) {
    asio::io_context io;
    gw::server srv{io, local()};
    start_echo(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        raw_client rc(io);
        co_await rc.open(srv.port());
        co_await rc.write(upgrade_request + client_frame(gw::opcode::text, "plain", true, false));
        auto reply = co_await rc.read_all();
        EXPECT_EQ(after_head(reply), std::string("\x88\x02\x03\xEA", 4));
    }());
}

TEST(Loopback, ManyClientsAtOnce) {
    asio::io_context io;
    gw::server srv{io, local()};
    start_echo(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        constexpr int n = 200;
        int echoed = 0, finished = 0;
        asio::steady_timer all_finished(ex, asio::steady_timer::time_point::max());
        for (int i = 0; i < n; ++i)
            asio::co_spawn(ex, [&, i]() -> awaitable<void> {
                auto c = co_await gw::connect(url(srv));
                co_await c.send("client " + std::to_string(i));
                auto m = co_await c.receive();
                if (m && m->data == "client " + std::to_string(i)) ++echoed;
                co_await c.close();
            }, [&](std::exception_ptr) {
                if (++finished == n) all_finished.cancel();
            });
        co_await all_finished.async_wait(asio::experimental::as_tuple(use_awaitable));
        EXPECT_EQ(echoed, n);
    }());
}

TEST(Loopback, StopEndsAccept) {
    asio::io_context io;
    gw::server srv{io, local()};
    test::run(io, [&]() -> awaitable<void> {
        asio::post(io, [&] { srv.stop_accepting(); });
        bool aborted = false;
        try {
            co_await srv.accept();
        } catch (const std::system_error& e) {
            aborted = e.code() == asio::error::operation_aborted;
        }
        EXPECT_TRUE(aborted);
    }());
}

TEST(Loopback, BadUrlsAreRefused) {
    asio::io_context io;
    test::run(io, []() -> awaitable<void> {
        for (auto bad : {"http://localhost/", "ws://", "ws://host:0/", "localhost:80"}) {
            std::error_code got;
            try {
                co_await gw::connect(bad);
            } catch (const std::system_error& e) {
                got = e.code();
            }
            EXPECT_EQ(got, gw::errc::bad_url) << bad;
        }
    }());
}

TEST(Loopback, SendFromAnotherThreadHopsToTheConnectionsThread) {
    asio::io_context io;
    gw::server srv{io, local()};
    start_echo(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        auto c = co_await gw::connect(url(srv));
        // Another thread with its own event loop sends on c; the message must arrive whole.
        asio::io_context other;
        asio::steady_timer other_done(io, asio::steady_timer::time_point::max());
        bool other_finished = false;
        std::exception_ptr other_error;
        asio::co_spawn(other, [&c]() -> awaitable<void> {
            for (int i = 0; i < 100; ++i) co_await c.send("from another thread " + std::to_string(i));
            co_await c.ping("x");
        }, [&](std::exception_ptr e) {
            asio::post(io, [&, e] {   // tell this loop, which must keep running meanwhile
                other_error = e;
                other_finished = true;
                other_done.cancel();
            });
        });
        std::thread t([&] { other.run(); });
        for (int i = 0; i < 100; ++i) {
            auto m = co_await c.receive();
            EXPECT_TRUE(m.has_value());
            if (!m) break;
            EXPECT_EQ(m->data, "from another thread " + std::to_string(i));
        }
        if (!other_finished) co_await other_done.async_wait(asio::experimental::as_tuple(use_awaitable));
        t.join();
        EXPECT_FALSE(other_error);
        co_await c.close();
    }());
}

TEST(Loopback, DefaultHostServesIpv4AndIpv6Clients) {
    asio::io_context io;
    gw::server srv{io, {}};   // every interface
    std::vector<std::string> seen;
    asio::co_spawn(io, [&]() -> awaitable<void> {
        for (;;) {
            auto c = co_await srv.accept();
            seen.push_back(c.request().remote_endpoint().address().to_string());   // v4 clients look like v4
            asio::co_spawn(io, [c = std::move(c)]() mutable -> awaitable<void> {
                while (auto m = co_await c.receive()) co_await c.send(std::move(*m));
            }, [](std::exception_ptr) {});
        }
    }, [](std::exception_ptr) {});
    asio::ip::tcp::socket probe(io);
    std::error_code no_v6;
    probe.open(asio::ip::tcp::v6(), no_v6);
    std::vector<std::string> hosts = {"127.0.0.1"};
    if (!no_v6) hosts.push_back("[::1]");
    test::run(io, [&]() -> awaitable<void> {
        for (const auto& host : hosts) {
            auto c = co_await gw::connect("ws://" + host + ":" + std::to_string(srv.port()) + "/");
            co_await c.send(host);
            EXPECT_EQ((co_await c.receive())->data, host);
            co_await c.close();
        }
    }());
    ASSERT_GE(seen.size(), 1u);
    EXPECT_EQ(seen[0], "127.0.0.1");
    if (seen.size() > 1) {
        EXPECT_EQ(seen[1], "::1");
    }
}

TEST(Loopback, HeadersTrickledAByteAtATimeStillUpgradeWhileOthersAreServed) {
    asio::io_context io;
    gw::server srv{io, local()};
    start_echo(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        auto other = co_await gw::connect(url(srv));
        raw_client slow(io);
        co_await slow.open(srv.port());
        int round_trips = 0;
        for (char byte : upgrade_request) {   // one byte, then one echo of the other client
            co_await slow.write(std::string_view(&byte, 1));
            co_await other.send("between");
            auto m = co_await other.receive();
            EXPECT_TRUE(m && m->data == "between");
            ++round_trips;
        }
        EXPECT_EQ(round_trips, static_cast<int>(upgrade_request.size()));
        auto head = co_await slow.read_head();
        EXPECT_EQ(head.rfind("HTTP/1.1 101 ", 0), 0u) << head;
        co_await other.close();
    }());
}
