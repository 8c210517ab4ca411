// Server and client of gateway.hpp talking over real loopback sockets, plain and TLS.
#include "support.hpp"

#include <set>
#include <thread>

using namespace std::chrono_literals;
using asio::awaitable;
using asio::use_awaitable;

namespace {

gw::options local(gw::options o = {}) {
    o.host = "127.0.0.1";
    o.port = 0;
    return o;
}

std::string url(const gw::server& srv, std::string_view path = "/", bool tls = false) {
    return std::string(tls ? "wss://localhost:" : "ws://127.0.0.1:") + std::to_string(srv.port()) + std::string(path);
}

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

/// True when connect() throws.
awaitable<bool> connect_fails(std::string to, gw::client_options opts) {
    try {
        co_await gw::connect(to, std::move(opts));
    } catch (const std::system_error&) {
        co_return true;
    }
    co_return false;
}

/// A raw TCP client for what our own client will not send.
struct raw_client {
    asio::ip::tcp::socket sock;
    explicit raw_client(asio::io_context& io) : sock(io) {}

    awaitable<void> open(std::uint16_t port) {
        co_await sock.async_connect({asio::ip::make_address("127.0.0.1"), port}, use_awaitable);
    }
    awaitable<void> write(std::string_view bytes) {
        co_await asio::async_write(sock, asio::buffer(bytes), use_awaitable);
    }
    /// Reads until the end of an HTTP head (or the connection's end): the head and what followed it.
    awaitable<std::string> read_head() {
        std::string got;
        char buf[4096];
        while (got.find("\r\n\r\n") == std::string::npos) {
            auto [ec, n] = co_await sock.async_read_some(asio::buffer(buf), asio::experimental::as_tuple(use_awaitable));
            got.append(buf, n);
            if (ec) break;
        }
        co_return got;
    }
    /// Sends a request on a new connection and returns everything until the server closes it.
    awaitable<std::string> exchange(std::uint16_t port, std::string_view request) {
        co_await open(port);
        co_await write(request);
        co_return co_await read_all();
    }
    /// Everything until the server closes the connection.
    awaitable<std::string> read_all() {
        std::string out;
        char buf[4096];
        for (;;) {
            auto [ec, n] = co_await sock.async_read_some(asio::buffer(buf), asio::experimental::as_tuple(use_awaitable));
            out.append(buf, n);
            if (ec) co_return out;
        }
    }
};

const std::string upgrade_request =
    "GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// What follows the HTTP head of a reply.
std::string after_head(const std::string& reply) {
    auto at = reply.find("\r\n\r\n");
    if (at == std::string::npos) {
        ADD_FAILURE() << "no HTTP head in: " << reply;
        return {};
    }
    return reply.substr(at + 4);
}

/// A masked client frame.
std::string client_frame(gw::opcode op, std::string_view payload, bool fin = true, bool mask = true) {
    unsigned char head[gw::detail::max_frame_header];
    std::array<unsigned char, 4> key{0x12, 0x34, 0x56, 0x78};
    auto n = gw::detail::encode_header(head, op, fin, payload.size(), mask ? &key : nullptr);
    std::string out(reinterpret_cast<char*>(head), n);
    std::string body(payload);
    if (mask) gw::detail::apply_mask(reinterpret_cast<unsigned char*>(body.data()), body.size(), key);
    return out + body;
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
        EXPECT_EQ(c.close_code(), 1000);
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
        EXPECT_EQ(c.close_code(), 1001);
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
        server_saw = c.close_code();
        reason = std::string(c.close_reason());
    });
    test::run(io, [&]() -> awaitable<void> {
        auto c = co_await gw::connect(url(srv));
        co_await c.close(static_cast<gw::close_code>(4001), "bye now");
        EXPECT_EQ(c.close_code(), 4001);   // the server echoes the code
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
        EXPECT_EQ(c.close_code(), 1001);
        EXPECT_EQ(c.close_reason(), "maintenance");
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
        EXPECT_EQ(c.close_code(), 1009);
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

namespace {

/// Reads one server frame from a raw client (after the 101's head was consumed into `buffered`):
/// returns {opcode, payload}; opcode 0xFF when the server closed the connection first.
awaitable<std::pair<int, std::string>> read_frame(raw_client& rc, std::string& buffered) {
    char buf[4096];
    for (;;) {
        if (buffered.size() >= 2) {
            const std::size_t len = static_cast<unsigned char>(buffered[1]) & 0x7Fu;   // server frames here are short
            if (len < 126 && buffered.size() >= 2 + len) {
                std::pair<int, std::string> f{static_cast<unsigned char>(buffered[0]) & 0x0F, buffered.substr(2, len)};
                buffered.erase(0, 2 + len);
                co_return f;
            }
        }
        auto [ec, n] = co_await rc.sock.async_read_some(asio::buffer(buf), asio::experimental::as_tuple(use_awaitable));
        if (ec) co_return std::pair<int, std::string>{0xFF, {}};
        buffered.append(buf, n);
    }
}

/// Opens a raw client and completes its upgrade (optionally with extra header lines); the bytes
/// after the 101's head stay in `buffered`.
awaitable<std::string> raw_upgrade(raw_client& rc, std::uint16_t port, std::string extra = {}) {
    co_await rc.open(port);
    std::string request = upgrade_request;
    request.insert(request.size() - 2, extra);
    co_await rc.write(request);
    co_return co_await rc.read_head();
}

/// Echoes every accepted connection; counts the connections whose last handle has gone and wakes
/// whoever waits on `gone`.
struct counting_echo {
    int finished = 0;
    std::error_code last_error;
    asio::steady_timer gone;
    explicit counting_echo(asio::io_context& io) : gone(io, asio::steady_timer::time_point::max()) {}
    void start(asio::io_context& io, gw::server& srv) {
        asio::co_spawn(io, [this, &srv]() -> awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            for (;;) {
                auto c = co_await srv.accept();
                asio::co_spawn(ex, serve(std::move(c)), [](std::exception_ptr) {});
            }
        }, [](std::exception_ptr) {});
    }
    awaitable<void> serve(gw::connection c) {
        try {
            while (auto m = co_await c.receive()) co_await c.send(std::move(*m));
        } catch (const std::system_error& e) {
            last_error = e.code();
        }
        c = gw::connection{};   // the last handle: the server counts the connection out
        ++finished;
        gone.cancel();
    }
    awaitable<void> wait_finished(int n) {
        while (finished < n) co_await gone.async_wait(asio::experimental::as_tuple(use_awaitable));
    }
};

} // namespace

TEST(Limits, FrameOverMaxFrameBytesClosesWith1009) {
    asio::io_context io;
    // A short close_timeout: the raw client never sends its close frame.
    gw::server srv{io, local({.max_message_bytes = 1000, .max_frame_bytes = 100, .close_timeout = std::chrono::milliseconds(100)})};
    counting_echo echo(io);
    echo.start(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        raw_client rc(io);
        auto head = co_await raw_upgrade(rc, srv.port());
        EXPECT_EQ(head.rfind("HTTP/1.1 101 ", 0), 0u) << head;
        // Two frames of 60 make a message of 120: each frame is within the limit.
        co_await rc.write(client_frame(gw::opcode::text, std::string(60, 'a'), false) +
                          client_frame(gw::opcode::continuation, std::string(60, 'b')));
        std::string buffered = after_head(head);
        char buf[4096];
        while (buffered.size() < 2 + 120) {
            auto [ec, n] = co_await rc.sock.async_read_some(asio::buffer(buf), asio::experimental::as_tuple(use_awaitable));
            if (ec) break;
            buffered.append(buf, n);
        }
        EXPECT_EQ(buffered.substr(2, 120), std::string(60, 'a') + std::string(60, 'b'));
        buffered.erase(0, 2 + 120);
        co_await rc.write(client_frame(gw::opcode::text, std::string(101, 'c')));
        auto rest = buffered + co_await rc.read_all();
        EXPECT_EQ(rest, std::string("\x88\x02\x03\xF1", 4));   // close 1009
        co_await echo.wait_finished(1);
    }());
    EXPECT_EQ(echo.last_error, gw::errc::message_too_big);
}

TEST(Limits, MessageInTooManyFragmentsClosesWith1008) {
    asio::io_context io;
    gw::server srv{io, local({.max_fragments = 3, .close_timeout = std::chrono::milliseconds(100)})};
    counting_echo echo(io);
    echo.start(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        raw_client rc(io);
        auto head = co_await raw_upgrade(rc, srv.port());
        std::string three = client_frame(gw::opcode::text, "a", false) + client_frame(gw::opcode::continuation, "b", false) +
                            client_frame(gw::opcode::continuation, "c");
        std::string four = client_frame(gw::opcode::text, "a", false) + client_frame(gw::opcode::continuation, "b", false) +
                           client_frame(gw::opcode::continuation, "c", false) + client_frame(gw::opcode::continuation, "d");
        co_await rc.write(three + four);
        auto rest = after_head(head) + co_await rc.read_all();
        EXPECT_EQ(rest, std::string("\x81\x03" "abc" "\x88\x02\x03\xF0", 9));   // "abc" echoed, then close 1008
        co_await echo.wait_finished(1);
    }());
    EXPECT_EQ(echo.last_error, gw::errc::policy_violation);
}

TEST(Limits, OverMaxConnectionsTheUpgradeGets503UntilOneLeaves) {
    asio::io_context io;
    gw::server srv{io, local({.max_connections = 2})};
    counting_echo echo(io);
    echo.start(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        auto a = co_await gw::connect(url(srv));
        auto b = co_await gw::connect(url(srv));
        raw_client rc(io);
        auto refused = co_await rc.exchange(srv.port(), upgrade_request);
        EXPECT_EQ(refused.rfind("HTTP/1.1 503 ", 0), 0u) << refused;
        EXPECT_NE(refused.find("\r\nRetry-After: 1\r\n"), std::string::npos) << refused;
        gw::client_options plain;
        EXPECT_TRUE(co_await connect_fails(url(srv), plain));
        co_await a.close();
        co_await echo.wait_finished(1);
        auto c = co_await gw::connect(url(srv));   // a slot is free again
        co_await c.send("still here");
        EXPECT_EQ((co_await c.receive())->data, "still here");
        co_await b.close();
        co_await c.close();
    }());
}

TEST(Limits, OverMaxConnectionsPerAddressTheUpgradeGets429) {
    asio::io_context io;
    gw::server srv{io, local({.max_connections_per_address = 1})};
    counting_echo echo(io);
    echo.start(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        auto a = co_await gw::connect(url(srv));
        raw_client rc(io);
        auto refused = co_await rc.exchange(srv.port(), upgrade_request);
        EXPECT_EQ(refused.rfind("HTTP/1.1 429 ", 0), 0u) << refused;
        co_await a.close();
        co_await echo.wait_finished(1);
        auto b = co_await gw::connect(url(srv));
        co_await b.close();
    }());
}

TEST(Limits, OriginsOutsideTheAllowListGet403) {
    asio::io_context io;
    gw::server srv{io, local({.allowed_origins = {"https://good.example"}})};
    counting_echo echo(io);
    echo.start(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        for (auto [origin, status] : {std::pair<std::string, std::string>{"Origin: https://evil.example\r\n", "403"},
                                      {"Origin: https://good.example.evil\r\n", "403"},
                                      {"Origin: HTTPS://Good.Example\r\n", "101"},
                                      {"", "101"}}) {   // no Origin: not a browser
            raw_client rc(io);
            auto head = co_await raw_upgrade(rc, srv.port(), origin);
            EXPECT_EQ(head.rfind("HTTP/1.1 " + status + " ", 0), 0u) << origin << head;
        }
    }());
}

TEST(Heartbeat, ServerPingsAndDropsAPeerThatStopsAnswering) {
    asio::io_context io;
    gw::server srv{io, local({.ping_interval = std::chrono::milliseconds(30), .ping_timeout = std::chrono::milliseconds(60)})};
    counting_echo echo(io);
    echo.start(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        raw_client rc(io);
        auto head = co_await raw_upgrade(rc, srv.port());
        std::string buffered = after_head(head);
        for (int i = 0; i < 3; ++i) {   // answered pings keep it open: the next one comes, not a close
            auto f = co_await read_frame(rc, buffered);
            EXPECT_EQ(f.first, 0x9) << "ping " << i;
            co_await rc.write(client_frame(gw::opcode::pong, f.second));
        }
        auto f = co_await read_frame(rc, buffered);   // not answered
        EXPECT_EQ(f.first, 0x9);
        auto end = co_await read_frame(rc, buffered);
        EXPECT_EQ(end.first, 0xFF);   // the server dropped the connection
        co_await echo.wait_finished(1);
    }());
    EXPECT_EQ(echo.last_error, gw::errc::ping_timeout);
}

TEST(Heartbeat, OurClientAnswersPingsAndStaysConnected) {
    asio::io_context io;
    gw::server srv{io, local({.ping_interval = std::chrono::milliseconds(10), .ping_timeout = std::chrono::milliseconds(40)})};
    counting_echo echo(io);
    echo.start(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        auto c = co_await gw::connect(url(srv));
        // Echo round trips until well past several ping timeouts: receive() answers the pings.
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
        int rounds = 0;
        while (std::chrono::steady_clock::now() < until) {
            co_await c.send("x");
            auto m = co_await c.receive();
            EXPECT_TRUE(m.has_value());
            if (!m) break;
            ++rounds;
        }
        EXPECT_GT(rounds, 10);
        EXPECT_TRUE(c.is_open());
        co_await c.close();
        co_await echo.wait_finished(1);
    }());
    EXPECT_FALSE(echo.last_error);
}

TEST(Heartbeat, IdleConnectionIsClosedWith1001) {
    asio::io_context io;
    gw::server srv{io, local({.ping_interval = std::chrono::milliseconds(0), .idle_timeout = std::chrono::milliseconds(80)})};
    counting_echo echo(io);
    echo.start(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        auto c = co_await gw::connect(url(srv));
        co_await c.send("hello");
        EXPECT_EQ((co_await c.receive())->data, "hello");
        auto end = co_await c.receive();   // nothing more sent: the server closes
        EXPECT_FALSE(end.has_value());
        EXPECT_EQ(c.close_code(), 1001);
        EXPECT_EQ(c.close_reason(), "idle timeout");
        co_await echo.wait_finished(1);
    }());
}

TEST(Shutdown, AwaitedStopCutsWhatDoesNotCloseByTheDeadline) {
    asio::io_context io;
    // A close_timeout far beyond the test's limit: only stop()'s deadline can end the connection.
    gw::server srv{io, local({.close_timeout = std::chrono::seconds(60)})};
    counting_echo echo(io);
    echo.start(io, srv);
    test::run(io, [&]() -> awaitable<void> {
        raw_client deaf(io);   // upgrades, then neither reads nor answers
        auto head = co_await raw_upgrade(deaf, srv.port());
        EXPECT_EQ(head.rfind("HTTP/1.1 101 ", 0), 0u);
        auto ours = co_await gw::connect(url(srv));   // answers the close at once
        co_await srv.stop(std::chrono::milliseconds(200));
        EXPECT_EQ(echo.finished, 2);
        EXPECT_FALSE(co_await ours.receive());
        EXPECT_EQ(ours.close_code(), 1001);
    }(), std::chrono::seconds(10));
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
