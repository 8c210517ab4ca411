// permessage-deflate (RFC 7692) over real loopback sockets: the negotiation through gw::server, our
// client against our server in every pairing of modes (context takeover seen in the bytes on the
// wire), hand-made compressed frames and the faults they must close with, the gateway's shared
// compressed broadcasts and compress(false), the metrics, and Engine.IO's compressed polling
// responses and its WebSocket transport. The raw clients compress and inflate with plain zlib
// calls of their own, not with the library's streams.
#include "gateway_support.hpp"

#include <algorithm>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#if defined(GATEWAY_DEFLATE)
#include <zlib.h>

namespace {

using asio::awaitable;
using asio::use_awaitable;
using asio::experimental::as_tuple;
using gw::deflate_mode;
using gw::json;
using gw::opcode;
using namespace std::chrono_literals;

const std::string offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
const std::string shared_answer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

// ---- zlib on the test's side ----

/// Compresses messages as a permessage-deflate peer does: raw DEFLATE, each message flushed to a
/// byte boundary and the 00 00 ff ff of the flush removed; with context takeover or without.
class zdeflater {
public:
    explicit zdeflater(bool keep_context = false) : keep_(keep_context) {
        deflateInit2(&z_, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    }
    zdeflater(const zdeflater&) = delete;
    zdeflater& operator=(const zdeflater&) = delete;
    ~zdeflater() { deflateEnd(&z_); }

    std::string operator()(std::string_view message) {
        std::string out;
        feed(message, Z_SYNC_FLUSH, out);
        return finish(out);
    }

    /// A message of n zero bytes, compressed without ever holding them: a decompression bomb.
    std::string zeros(std::size_t n) {
        const std::string chunk(64 << 10, '\0');
        std::string out;
        while (n > 0) {
            const std::size_t k = std::min(n, chunk.size());
            n -= k;
            feed(std::string_view(chunk).substr(0, k), n ? Z_NO_FLUSH : Z_SYNC_FLUSH, out);
        }
        return finish(out);
    }

private:
    void feed(std::string_view in, int flush, std::string& out) {
        z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
        z_.avail_in = static_cast<uInt>(in.size());
        unsigned char buf[16 << 10];
        do {
            z_.next_out = buf;
            z_.avail_out = sizeof buf;
            deflate(&z_, flush);
            out.append(reinterpret_cast<char*>(buf), sizeof buf - z_.avail_out);
        } while (z_.avail_out == 0);
    }
    std::string finish(std::string& out) {
        if (out.size() >= 4 && out.compare(out.size() - 4, 4, std::string("\0\0\xff\xff", 4)) == 0) out.resize(out.size() - 4);
        if (!keep_) deflateReset(&z_);
        return std::move(out);
    }
    z_stream z_{};
    bool keep_;
};

/// Inflates messages as a permessage-deflate peer does (the 00 00 ff ff tail added back); nullopt
/// when the data is not DEFLATE.
class zinflater {
public:
    explicit zinflater(bool keep_context = false) : keep_(keep_context) { inflateInit2(&z_, -15); }
    zinflater(const zinflater&) = delete;
    zinflater& operator=(const zinflater&) = delete;
    ~zinflater() { inflateEnd(&z_); }

    std::optional<std::string> operator()(std::string_view payload) {
        std::string in(payload);
        in.append("\0\0\xff\xff", 4);
        z_.next_in = reinterpret_cast<Bytef*>(in.data());
        z_.avail_in = static_cast<uInt>(in.size());
        std::string out;
        unsigned char buf[16 << 10];
        for (;;) {
            z_.next_out = buf;
            z_.avail_out = sizeof buf;
            const int r = inflate(&z_, Z_SYNC_FLUSH);
            out.append(reinterpret_cast<char*>(buf), sizeof buf - z_.avail_out);
            if (r == Z_STREAM_END) {
                inflateReset(&z_);
                if (z_.avail_in == 0) break;
                continue;
            }
            if (r != Z_OK && r != Z_BUF_ERROR) return std::nullopt;
            if (z_.avail_in == 0 && z_.avail_out != 0) break;
        }
        if (!keep_) inflateReset(&z_);
        return out;
    }

private:
    z_stream z_{};
    bool keep_;
};

/// A whole HTTP body decoded: gzip (window_bits 15 + 16) or zlib's format, HTTP's "deflate" (15).
std::optional<std::string> decode_body(std::string_view body, int window_bits) {
    z_stream z{};
    if (inflateInit2(&z, window_bits) != Z_OK) return std::nullopt;
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(body.data()));
    z.avail_in = static_cast<uInt>(body.size());
    std::string out;
    unsigned char buf[16 << 10];
    int r = Z_OK;
    while (r == Z_OK) {
        z.next_out = buf;
        z.avail_out = sizeof buf;
        r = inflate(&z, Z_NO_FLUSH);
        out.append(reinterpret_cast<char*>(buf), sizeof buf - z.avail_out);
    }
    inflateEnd(&z);
    if (r != Z_STREAM_END || z.avail_in != 0) return std::nullopt;
    return out;
}

// ---- frames ----

/// A masked client frame; rsv1 marks it compressed.
std::string masked(opcode op, std::string_view payload, bool rsv1 = false, bool fin = true) {
    std::string out;
    out += static_cast<char>((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | static_cast<int>(op));
    const std::size_t n = payload.size();
    if (n < 126) {
        out += static_cast<char>(0x80 | n);
    } else if (n < 65536) {
        out += static_cast<char>(0x80 | 126);
        out += static_cast<char>(n >> 8);
        out += static_cast<char>(n & 0xFF);
    } else {
        out += static_cast<char>(0x80 | 127);
        for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((n >> shift) & 0xFF);
    }
    const char key[4] = {'\x37', '\xfa', '\x21', '\x3d'};
    out.append(key, 4);
    for (std::size_t i = 0; i < n; ++i) out += static_cast<char>(payload[i] ^ key[i % 4]);
    return out;
}

/// A server frame as it came.
struct frame {
    bool fin = false, rsv1 = false;
    int op = -1;
    std::string payload;
    std::string bytes;   // header and payload
};

/// Takes one whole (unmasked) frame from the front of buffered, when it is all there.
std::optional<frame> take_frame(std::string& buffered) {
    auto at = [&](std::size_t i) { return static_cast<std::uint64_t>(static_cast<unsigned char>(buffered[i])); };
    if (buffered.size() < 2) return std::nullopt;
    std::uint64_t len = at(1) & 0x7F;
    std::size_t head = 2;
    if (len == 126) {
        if (buffered.size() < 4) return std::nullopt;
        len = (at(2) << 8) | at(3);
        head = 4;
    } else if (len == 127) {
        if (buffered.size() < 10) return std::nullopt;
        len = 0;
        for (std::size_t i = 2; i < 10; ++i) len = (len << 8) | at(i);
        head = 10;
    }
    if (buffered.size() < head + len) return std::nullopt;
    frame f;
    f.fin = (at(0) & 0x80) != 0;
    f.rsv1 = (at(0) & 0x40) != 0;
    f.op = static_cast<int>(at(0) & 0x0F);
    f.payload = buffered.substr(head, len);
    f.bytes = buffered.substr(0, head + len);
    buffered.erase(0, head + len);
    return f;
}

/// A client over a raw TCP socket: its own upgrade request, hand-made frames, frames read whole.
struct peer {
    asio::ip::tcp::socket sock;
    std::string head;       // the answer's head, up to its blank line
    std::string buffered;   // what came after it and was not taken yet

    explicit peer(asio::io_context& io) : sock(io) {}

    /// Connects and asks for an upgrade at target with extra header lines (the offer, by default).
    awaitable<void> upgrade(std::uint16_t port, std::string extra = offer, std::string target = "/") {
        const asio::ip::tcp::endpoint to(asio::ip::make_address("127.0.0.1"), port);
        co_await sock.async_connect(to, use_awaitable);
        std::string request = "GET " + target +
                              " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
                              extra + "\r\n";
        co_await asio::async_write(sock, asio::buffer(request), use_awaitable);
        char buf[4096];
        while (buffered.find("\r\n\r\n") == std::string::npos) {
            auto [ec, n] = co_await sock.async_read_some(asio::buffer(buf), as_tuple(use_awaitable));
            buffered.append(buf, n);
            if (ec) break;
        }
        const auto end = buffered.find("\r\n\r\n");
        head = buffered.substr(0, end == std::string::npos ? buffered.size() : end + 4);
        buffered.erase(0, head.size());
    }
    bool upgraded() const { return head.rfind("HTTP/1.1 101 ", 0) == 0; }
    /// The answer's Sec-WebSocket-Extensions value, or "(none)".
    std::string extensions() const {
        const std::string name = "\r\nSec-WebSocket-Extensions: ";
        const auto at = head.find(name);
        if (at == std::string::npos) return "(none)";
        const auto from = at + name.size();
        return head.substr(from, head.find("\r\n", from) - from);
    }

    awaitable<void> write(std::string bytes) { co_await asio::async_write(sock, asio::buffer(bytes), use_awaitable); }
    awaitable<void> send(opcode op, std::string_view payload, bool rsv1 = false) { co_await write(masked(op, payload, rsv1)); }

    /// The next frame; nullopt when the connection ends first.
    awaitable<std::optional<frame>> next() {
        char buf[16 << 10];
        for (;;) {
            if (auto f = take_frame(buffered)) co_return f;
            auto [ec, n] = co_await sock.async_read_some(asio::buffer(buf), as_tuple(use_awaitable));
            if (ec) co_return std::nullopt;
            buffered.append(buf, n);
        }
    }

    /// The code of the server's close frame (frames before it are skipped); -1 when the connection
    /// ends without one, 1005 for a close frame without a code.
    awaitable<int> close_code() {
        for (;;) {
            auto f = co_await next();
            if (!f) co_return -1;
            if (f->op != 0x8) continue;
            if (f->payload.size() < 2) co_return 1005;
            co_return (static_cast<unsigned char>(f->payload[0]) << 8) | static_cast<unsigned char>(f->payload[1]);
        }
    }

    /// Sends our close frame and reads until the server has answered and closed the connection.
    awaitable<void> close() {
        co_await send(opcode::close, std::string("\x03\xe8", 2));
        (void)co_await close_code();
        for (;;) {
            auto f = co_await next();
            if (!f) break;
        }
        std::error_code ignored;
        sock.close(ignored);   // the server reads until we close (it shut its side first)
    }
};

// ---- servers ----

gw::options server_options(deflate_mode mode, std::size_t threshold = 1024) {
    gw::options o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.deflate.mode = mode;
    o.deflate.threshold = threshold;
    return o;
}

/// Echoes every connection of srv; counts those whose last handle has gone.
struct echo {
    int finished = 0;
    asio::steady_timer gone;
    explicit echo(asio::io_context& io, gw::server& srv) : gone(io, asio::steady_timer::time_point::max()) {
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
        } catch (const std::system_error&) {
        }
        c = gw::connection{};
        ++finished;
        gone.cancel();
    }
    awaitable<void> wait_finished(int n) {
        while (finished < n) co_await gone.async_wait(as_tuple(use_awaitable));
    }
};

std::string url(std::uint16_t port, std::string_view path = "/") {
    return "ws://127.0.0.1:" + std::to_string(port) + std::string(path);
}

/// Text that DEFLATE cannot shrink much (random base64 letters): what is sent twice shows whether
/// the second time refers back to the first.
std::string noise(std::size_t n, unsigned seed) {
    static constexpr char letters[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::mt19937 rng(seed);
    std::string out(n, ' ');
    for (auto& c : out) c = letters[rng() % 64];
    return out;
}

/// Text that compresses well, as chat traffic does.
std::string chatter(std::size_t n, int tag = 0) {
    std::string out;
    for (int i = 0; out.size() < n; ++i) out += "{\"user\":\"ada\",\"n\":" + std::to_string(i + tag) + ",\"text\":\"hello there\"} ";
    out.resize(n);
    return out;
}

/// A NestJS envelope.
std::string envelope(std::string_view event, const json& data) {
    json j = json::object();
    j["event"] = event;
    j["data"] = data;
    return j.dump();
}

/// Compares long texts without printing them whole: their sizes, and where they first differ.
testing::AssertionResult same(const std::string& got, const std::string& want) {
    if (got == want) return testing::AssertionSuccess();
    const auto [g, w] = std::mismatch(got.begin(), got.end(), want.begin(), want.end());
    return testing::AssertionFailure() << "got " << got.size() << " bytes, want " << want.size() << "; they differ from byte "
                                       << (g - got.begin()) << ": \"" << got.substr(g - got.begin(), 40) << "\" where \""
                                       << want.substr(w - want.begin(), 40) << "\" was expected";
}
testing::AssertionResult same(const std::optional<std::string>& got, const std::string& want) {
    if (!got) return testing::AssertionFailure() << "not DEFLATE (or not decoded)";
    return same(*got, want);
}
testing::AssertionResult same(const json& got, const std::string& want) {
    if (!got.is_string()) return testing::AssertionFailure() << "not a string: " << got.dump().substr(0, 80);
    return same(got.get<std::string>(), want);
}

const std::string hello_compressed("\xf2\x48\xcd\xc9\xc9\x07\x00", 7);   // RFC 7692 section 7.2.3.1: "Hello"

} // namespace

// ==== (a) negotiation through gw::server ====

TEST(DeflateNegotiation, ServersAnswerAsTheirModeSays) {
    asio::io_context io;
    gw::server shared{io, server_options(deflate_mode::shared)}, dedicated{io, server_options(deflate_mode::dedicated)},
        off{io, server_options(deflate_mode::off)};
    echo e1(io, shared), e2(io, dedicated), e3(io, off);
    const std::string asks_window = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
    const std::string long_text = noise(2000, 3) + noise(2000, 3);   // the repeat is 2000 bytes back
    test::run(io, [&]() -> awaitable<void> {
        peer a(io), b(io), c(io), d(io), f(io);
        co_await a.upgrade(shared.port(), asks_window);
        EXPECT_TRUE(a.upgraded()) << a.head;
        EXPECT_EQ(a.extensions(), shared_answer);
        co_await b.upgrade(shared.port());   // the bare offer: the same answer
        EXPECT_EQ(b.extensions(), shared_answer);
        co_await c.upgrade(dedicated.port(), asks_window);
        EXPECT_TRUE(c.upgraded());
        EXPECT_EQ(c.extensions(), "permessage-deflate");
        co_await d.upgrade(off.port(), asks_window);
        EXPECT_TRUE(d.upgraded()) << d.head;
        EXPECT_EQ(d.extensions(), "(none)");
        co_await f.upgrade(shared.port(), "");   // no offer, no answer
        EXPECT_TRUE(f.upgraded());
        EXPECT_EQ(f.extensions(), "(none)");
        // The offer on two header lines is one list; an unknown extension before it is passed over.
        peer g(io);
        co_await g.upgrade(shared.port(), "Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n" + offer);
        EXPECT_EQ(g.extensions(), shared_answer);
        // A smaller window asked of a dedicated server: agreed, and its messages keep to it. The
        // text repeats itself 2000 bytes back, beyond a window of 1 KiB: compressed, it stays about
        // twice its half's size (with the full window, the repeat would cost a few bytes).
        peer h(io);
        co_await h.upgrade(dedicated.port(), "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n");
        EXPECT_EQ(h.extensions(), "permessage-deflate; server_max_window_bits=10");
        zinflater inflate(true);
        for (int i = 0; i < 3; ++i) {
            co_await h.send(opcode::text, long_text);
            auto m = co_await h.next();
            EXPECT_TRUE(m && m->rsv1);
            if (m) {
                EXPECT_GT(m->payload.size(), 2500u) << i;
                EXPECT_TRUE(same(inflate(m->payload), long_text)) << i;
            }
        }
    }());
}

TEST(DeflateNegotiation, MalformedOffersUpgradeWithoutTheExtension) {
    asio::io_context io;
    gw::server srv{io, server_options(deflate_mode::shared, 0)};
    echo e(io, srv);
    const std::vector<std::string> bad = {
        "permessage-deflate; foo",                                  // unknown parameter
        "permessage-deflate; server_no_context_takeover=1",         // a value where none is allowed
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",   // repeated
        "permessage-deflate; server_max_window_bits",               // a value required
        "permessage-deflate; server_max_window_bits=16",            // out of range
        "permessage-deflate; server_max_window_bits=08",            // leading zero
        "permessage-deflate; server_max_window_bits=8",             // zlib cannot make a window of 8 bits
        "permessage-deflate; client_max_window_bits=0",
        "permessage-deflate; server_max_window_bits=\"1 0\"",       // a quoted string that is no token
        "permessage-deflate; =15",
        "permessage-deflate;;",
        "permessage-deflate x",
        "x-webkit-deflate-frame",
    };
    test::run(io, [&]() -> awaitable<void> {
        for (const auto& o : bad) {
            peer p(io);
            co_await p.upgrade(srv.port(), "Sec-WebSocket-Extensions: " + o + "\r\n");
            EXPECT_TRUE(p.upgraded()) << o << "\n" << p.head;
            EXPECT_EQ(p.extensions(), "(none)") << o;
            // The connection works, uncompressed (threshold 0: with deflate this would be compressed).
            co_await p.send(opcode::text, "plain");
            auto f = co_await p.next();
            EXPECT_TRUE(f && !f->rsv1 && f->payload == "plain") << o;
            // And RSV1 is a protocol error on it.
            co_await p.send(opcode::text, hello_compressed, true);
            EXPECT_EQ(co_await p.close_code(), 1002) << o;
        }
        // A malformed element before a good one: the good one is agreed.
        peer q(io);
        co_await q.upgrade(srv.port(), "Sec-WebSocket-Extensions: permessage-deflate; foo, permessage-deflate\r\n");
        EXPECT_EQ(q.extensions(), shared_answer);
    }());
}

// ==== (b) our client against our server ====

class DeflateClient : public ::testing::TestWithParam<std::tuple<deflate_mode, deflate_mode>> {};

TEST_P(DeflateClient, MessagesRoundTripAndContextIsTakenOverOnlyWhereAgreed) {
    const auto [client_mode, server_mode] = GetParam();
    asio::io_context io;
    gw::server srv{io, server_options(server_mode)};
    echo e(io, srv);
    gw::client_options co;
    co.deflate.mode = client_mode;
    std::vector<gw::message> sent = {
        {"small", false},
        {"", false},
        {"", true},
        {test::all_bytes(), true},                      // under the threshold: not compressed
        {std::string(1023, 'a'), false},                // one under
        {std::string(1024, 'a'), false},                // at the threshold: compressed
        {chatter(5000), false},
        {test::all_bytes() + test::all_bytes() + test::all_bytes() + test::all_bytes() + test::all_bytes(), true},
        {"κόσμε 🙂 " + chatter(3000), false},
        {noise(4000, 1), false},
        {std::string(900000, 'z'), true},               // large, and tiny compressed
    };
    for (int i = 0; i < 20; ++i) sent.push_back({chatter(1200 + 37 * i, i), i % 3 == 0});   // several in a row
    const std::string twice = noise(8000, 2);
    // Who keeps context: the server unless shared; the client only when both keep it (a shared
    // server asks the client for no context takeover).
    const bool server_keeps = server_mode == deflate_mode::dedicated;
    const bool client_keeps = client_mode == deflate_mode::dedicated && server_mode == deflate_mode::dedicated;
    test::run(io, [&]() -> awaitable<void> {
        auto c = co_await gw::connect(url(srv.port()), co);
        auto impl = std::static_pointer_cast<gw::detail::connection_impl>(gw::detail::access::transport_of(c));
        EXPECT_TRUE(impl->deflate_ != nullptr) << "the client agreed permessage-deflate";
        co_await test::expect_echoes(c, sent);

        // The same incompressible text twice: the second time is a few bytes where context is kept.
        const auto m0 = srv.metrics();
        co_await c.send(twice);
        auto first = co_await c.receive();
        const auto m1 = srv.metrics();
        co_await c.send(twice);
        auto second = co_await c.receive();
        const auto m2 = srv.metrics();
        EXPECT_TRUE(first && first->data == twice);
        EXPECT_TRUE(second && second->data == twice);
        const std::uint64_t in1 = m1.bytes_in - m0.bytes_in, in2 = m2.bytes_in - m1.bytes_in;
        const std::uint64_t out1 = m1.bytes_out - m0.bytes_out, out2 = m2.bytes_out - m1.bytes_out;
        EXPECT_LT(in1, twice.size()) << "compressed";
        EXPECT_LT(out1, twice.size()) << "compressed";
        if (client_keeps) {
            EXPECT_LT(in2, 100u) << "the client's compressor kept its history";
        } else {
            EXPECT_GT(in2, twice.size() / 2);
        }
        if (server_keeps) {
            EXPECT_LT(out2, 100u) << "the server's compressor kept its history";
        } else {
            EXPECT_GT(out2, twice.size() / 2);
        }
        co_await c.close();
        EXPECT_EQ(c.peer_close_code(), 1000);
    }());
}

INSTANTIATE_TEST_SUITE_P(Modes, DeflateClient,
                         ::testing::Combine(::testing::Values(deflate_mode::shared, deflate_mode::dedicated),
                                            ::testing::Values(deflate_mode::shared, deflate_mode::dedicated)),
                         [](const auto& info) {
                             auto name = [](deflate_mode m) { return m == deflate_mode::shared ? "shared" : "dedicated"; };
                             return std::string("client_") + name(std::get<0>(info.param)) + "_server_" + name(std::get<1>(info.param));
                         });

TEST(DeflateClient, ClientWithDeflateTalksToAServerWithout) {
    asio::io_context io;
    gw::server srv{io, server_options(deflate_mode::off)};
    echo e(io, srv);
    gw::client_options co;
    co.deflate.mode = deflate_mode::dedicated;
    const std::string big = chatter(4000);
    test::run(io, [&]() -> awaitable<void> {
        auto c = co_await gw::connect(url(srv.port()), co);
        auto impl = std::static_pointer_cast<gw::detail::connection_impl>(gw::detail::access::transport_of(c));
        EXPECT_TRUE(impl->deflate_ == nullptr);
        const auto m0 = srv.metrics();
        co_await c.send(big);
        auto m = co_await c.receive();
        EXPECT_TRUE(m && m->data == big);
        EXPECT_GE(srv.metrics().bytes_in - m0.bytes_in, big.size()) << "sent as it is";
        co_await c.close();
    }());
}

// ==== (c) hand-made frames ====

class DeflateFrames : public ::testing::TestWithParam<deflate_mode> {};

TEST_P(DeflateFrames, ServerCompressesFromTheThresholdOnAndInflatesWhatItGets) {
    asio::io_context io;
    gw::server srv{io, server_options(GetParam())};
    echo e(io, srv);
    const bool dedicated = GetParam() == deflate_mode::dedicated;
    const std::string at_threshold(1024, 'a'), under(1023, 'a'), big_text = chatter(3000);
    std::string big_binary;
    for (int i = 0; i < 12; ++i) big_binary += test::all_bytes();
    test::run(io, [&]() -> awaitable<void> {
        peer p(io);
        co_await p.upgrade(srv.port());
        EXPECT_EQ(p.extensions(), dedicated ? "permessage-deflate" : shared_answer);
        zinflater inflate(dedicated);   // a dedicated server keeps its context: so must we
        zdeflater compress(dedicated);

        co_await p.send(opcode::text, under);
        auto f = co_await p.next();
        EXPECT_TRUE(f && f->op == 1 && !f->rsv1 && f->payload == under) << "under the threshold: as it is";

        co_await p.send(opcode::text, at_threshold);
        f = co_await p.next();
        EXPECT_TRUE(f && f->op == 1 && f->rsv1 && f->fin) << "at the threshold: compressed";
        if (f) {
            EXPECT_LT(f->payload.size(), 100u);
            EXPECT_TRUE(same(inflate(f->payload), at_threshold));
        }

        co_await p.send(opcode::binary, big_binary);
        f = co_await p.next();
        EXPECT_TRUE(f && f->op == 2 && f->rsv1);
        if (f) {
            EXPECT_TRUE(same(inflate(f->payload), big_binary));
        }

        // Compressed by us: inflated, and echoed compressed when over the threshold.
        co_await p.send(opcode::text, compress(big_text), true);
        f = co_await p.next();
        EXPECT_TRUE(f && f->op == 1 && f->rsv1);
        if (f) {
            EXPECT_TRUE(same(inflate(f->payload), big_text));
        }
        co_await p.send(opcode::binary, compress(big_binary), true);
        f = co_await p.next();
        EXPECT_TRUE(f && f->op == 2 && f->rsv1);
        if (f) {
            EXPECT_TRUE(same(inflate(f->payload), big_binary));
        }

        if (!dedicated) {
            // RFC 7692's "Hello" (its compressed bytes are not UTF-8: only the inflated text is
            // checked), whole and in two fragments with RSV1 on the first only; and with a final
            // block, and as two blocks.
            co_await p.send(opcode::text, hello_compressed, true);
            co_await p.write(masked(opcode::text, hello_compressed.substr(0, 2), true, false) +
                             masked(opcode::continuation, hello_compressed.substr(2), false, true));
            co_await p.send(opcode::text, std::string("\xf3\x48\xcd\xc9\xc9\x07\x00\x00", 8), true);
            co_await p.send(opcode::text, std::string("\xf2\x48\x05\x00\x00\x00\xff\xff\xca\xc9\xc9\x07\x00", 13), true);
            for (int i = 0; i < 4; ++i) {
                f = co_await p.next();
                EXPECT_TRUE(f && f->op == 1 && !f->rsv1 && f->payload == "Hello") << i;
            }
            // An empty compressed message (one empty block), and an empty payload with RSV1.
            co_await p.send(opcode::text, std::string(1, '\0'), true);
            co_await p.send(opcode::binary, "", true);
            f = co_await p.next();
            EXPECT_TRUE(f && f->op == 1 && f->payload.empty());
            f = co_await p.next();
            EXPECT_TRUE(f && f->op == 2 && f->payload.empty());
        } else {
            // Section 7.2.3.2: the second "Hello" refers back to the first (context takeover).
            peer q(io);
            co_await q.upgrade(srv.port());
            co_await q.send(opcode::text, hello_compressed, true);
            co_await q.send(opcode::text, std::string("\xf2\x00\x11\x00\x00", 5), true);
            for (int i = 0; i < 2; ++i) {
                f = co_await q.next();
                EXPECT_TRUE(f && f->op == 1 && !f->rsv1 && f->payload == "Hello") << i;
            }
            co_await q.close();
        }
        co_await p.close();
    }());
}

TEST_P(DeflateFrames, FaultsCloseWithTheCodeTheRfcAsks) {
    asio::io_context io;
    gw::options o = server_options(GetParam());
    o.max_message_bytes = 128 << 10;
    gw::server srv{io, o};
    echo e(io, srv);
    zdeflater compress;
    const std::string bad_utf8 = compress(std::string("fine so far \xff\xfe", 14));
    const std::string not_deflate("\xff\xff\xff\xff\xff", 5);   // BTYPE 11: a reserved block type
    // Each case: the frames, the offer (or none), the close code expected.
    struct fault {
        const char* what;
        std::string frames;
        bool offered;
        int code;
    };
    const std::vector<fault> faults = {
        {"RSV1 on a continuation", masked(opcode::text, "Hel", false, false) + masked(opcode::continuation, "lo", true, true), true, 1002},
        {"RSV1 on a ping", masked(opcode::ping, "", true), true, 1002},
        {"RSV1 on a close", masked(opcode::close, std::string("\x03\xe8", 2), true), true, 1002},
        {"RSV1 without the extension", masked(opcode::text, hello_compressed, true), false, 1002},
        {"RSV2", std::string(1, '\xa1') + masked(opcode::text, "x").substr(1), true, 1002},
        {"not DEFLATE, in text", masked(opcode::text, not_deflate, true), true, 1007},
        {"not DEFLATE, in binary", masked(opcode::binary, not_deflate, true), true, 1002},
        {"inflates to invalid UTF-8", masked(opcode::text, bad_utf8, true), true, 1007},
        {"a compressed message after a plain one's first fragment",
         masked(opcode::text, "a", false, false) + masked(opcode::text, hello_compressed, true), true, 1002},
    };
    test::run(io, [&]() -> awaitable<void> {
        for (const auto& f : faults) {
            peer p(io);
            // Named first: GCC 12 destroys a conditional's temporary inside co_await twice.
            const std::string extra = f.offered ? offer : std::string();
            co_await p.upgrade(srv.port(), extra);
            EXPECT_TRUE(p.upgraded());
            co_await p.write(f.frames);
            EXPECT_EQ(co_await p.close_code(), f.code) << f.what;
        }
    }());
}

TEST_P(DeflateFrames, ABombClosesWith1009WithoutInflatingIt) {
    asio::io_context io;
    gw::options o = server_options(GetParam());
    o.max_message_bytes = 128 << 10;
    gw::server srv{io, o};
    echo e(io, srv);
    // 64 MiB of zeros in about 64 KiB: under the limit compressed, 512 times it inflated.
    zdeflater compress;
    const std::string bomb = compress.zeros(64 << 20);
    ASSERT_LT(bomb.size(), o.max_message_bytes);
    // The peak of this process's resident memory, reset now where Linux allows it.
    auto peak_kib = [] {
        std::ifstream status("/proc/self/status");
        std::string line;
        while (std::getline(status, line))
            if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
        return -1L;
    };
    bool peak_reset = false;
    {
        std::ofstream clear("/proc/self/clear_refs");
        clear << "5";
        clear.flush();
        peak_reset = clear.good();
    }
    const long peak_before = peak_kib();
    test::run(io, [&]() -> awaitable<void> {
        peer p(io);
        co_await p.upgrade(srv.port());
        const auto start = std::chrono::steady_clock::now();
        co_await p.send(opcode::binary, bomb, true);
        EXPECT_EQ(co_await p.close_code(), 1009);
        EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
        // zlib's streams hold their windows and tables, no more: nothing grew with the bomb.
        EXPECT_LT(srv.metrics().deflate_memory_bytes, 4u << 20);
        // The connection after it is served as before.
        peer q(io);
        co_await q.upgrade(srv.port());
        co_await q.send(opcode::text, compress(chatter(2000)), true);
        auto f = co_await q.next();
        EXPECT_TRUE(f && f->rsv1);
        co_await q.close();
    }());
    if (peak_reset && peak_before > 0) {
        EXPECT_LT(peak_kib() - peak_before, 32L << 10) << "KiB more at the peak";
    }
}

TEST_P(DeflateFrames, LimitIsOnTheInflatedSize) {
    asio::io_context io;
    gw::options o = server_options(GetParam());
    o.max_message_bytes = 10000;
    gw::server srv{io, o};
    echo e(io, srv);
    zdeflater compress;
    const std::string at_limit = chatter(10000), over = chatter(10001);
    test::run(io, [&]() -> awaitable<void> {
        peer p(io);
        co_await p.upgrade(srv.port());
        zinflater inflate(GetParam() == deflate_mode::dedicated);
        co_await p.send(opcode::text, compress(at_limit), true);
        auto f = co_await p.next();
        EXPECT_TRUE(f && f->rsv1);
        if (f) {
            EXPECT_TRUE(same(inflate(f->payload), at_limit));
        }
        co_await p.send(opcode::text, compress(over), true);
        EXPECT_EQ(co_await p.close_code(), 1009);
    }());
}

INSTANTIATE_TEST_SUITE_P(Modes, DeflateFrames, ::testing::Values(deflate_mode::shared, deflate_mode::dedicated),
                         [](const auto& info) { return std::string(info.param == deflate_mode::shared ? "shared" : "dedicated"); });

// ==== (d) the gateway ====

namespace {

/// A gateway whose handlers emit to room "r": compressed or not, to the room or to the sender.
struct room_app {
    gw::gateway app;
    room_app(asio::io_context& io, deflate_mode mode, deflate_mode socketio_mode = deflate_mode::off)
        : app(io, server_options(mode), own(socketio_mode)) {
        auto ns = app.of("/");
        ns.on("join", [](gw::socket& s, std::string room) {
            s.join(room);
            return room;
        });
        ns.on("shout", [ns](gw::socket&, json d) -> awaitable<void> { co_await ns.to("r").emit("news", d); });
        ns.on("shout_plain", [ns](gw::socket&, json d) -> awaitable<void> { co_await ns.to("r").compress(false).emit("news", d); });
        ns.on("me", [](gw::socket& s, json d) -> awaitable<void> { co_await s.emit("direct", d); });
        ns.on("me_plain", [](gw::socket& s, json d) -> awaitable<void> { co_await s.compress(false).emit("direct", d); });
        // Binary data: Socket.IO clients get it as attachments, each a binary frame of its own.
        ns.on("bytes", [](gw::socket& s, json d) -> awaitable<void> { co_await s.emit("bytes", bytes_of(d)); });
        ns.on("bytes_plain", [](gw::socket& s, json d) -> awaitable<void> { co_await s.compress(false).emit("bytes", bytes_of(d)); });
        ns.on("shout_bytes_plain", [ns](gw::socket&, json d) -> awaitable<void> {
            co_await ns.to("r").compress(false).emit("bytes", bytes_of(d));
        });
    }
    static json bytes_of(const json& d) {
        const std::string text = d.get<std::string>();
        return json::binary(json::binary_t::container_type(text.begin(), text.end()));
    }
    static gw::gateway_options own(deflate_mode m) {
        gw::gateway_options o;
        o.socketio.engine.per_message_deflate.mode = m;
        return o;
    }
};

/// The event of an envelope, or "(not JSON)".
std::string event_of(const std::string& text) {
    auto j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return "(not JSON)";
    return j.value("event", std::string("(none)"));
}

json data_of(const std::string& text) {
    auto j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return nullptr;
    return j.value("data", json());
}

} // namespace

TEST(DeflateGateway, SharedModeSendsTheRoomOneCompressedFrameAndCompressFalseSendsItPlain) {
    asio::io_context io;
    room_app a(io, deflate_mode::shared);
    const std::string big = chatter(3000), small = "short news";
    const std::string shout = envelope("shout", big), shout_plain = envelope("shout_plain", big), join = envelope("join", "r");
    test::run(io, [&]() -> awaitable<void> {
        std::vector<std::unique_ptr<peer>> members;
        for (int i = 0; i < 3; ++i) {
            members.push_back(std::make_unique<peer>(io));
            co_await members.back()->upgrade(a.app.port());
            EXPECT_EQ(members.back()->extensions(), shared_answer);
        }
        peer plain(io), sender(io);   // a member without deflate; a sender outside the room
        co_await plain.upgrade(a.app.port(), "");
        co_await sender.upgrade(a.app.port());
        std::vector<peer*> joining;
        for (auto& m : members) joining.push_back(m.get());
        joining.push_back(&plain);
        for (peer* m : joining) {
            co_await m->send(opcode::text, join);
            auto f = co_await m->next();
            EXPECT_TRUE(f && !f->rsv1 && event_of(f->payload) == "join");
        }

        co_await sender.send(opcode::text, shout);
        std::vector<std::string> frames;
        for (auto& m : members) {
            auto f = co_await m->next();
            EXPECT_TRUE(f && f->rsv1 && f->op == 1);
            if (!f) co_return;
            frames.push_back(f->bytes);
            zinflater inflate;
            auto text = inflate(f->payload);
            EXPECT_TRUE(text.has_value());
            if (!text) co_return;
            EXPECT_EQ(event_of(*text), "news");
            EXPECT_TRUE(same(data_of(*text), big));
        }
        EXPECT_TRUE(frames[0] == frames[1]) << "byte-identical compressed frames";
        EXPECT_TRUE(frames[1] == frames[2]) << "byte-identical compressed frames";
        auto pf = co_await plain.next();   // the member without deflate: the same event, plain
        EXPECT_TRUE(pf && !pf->rsv1 && data_of(pf->payload) == big);

        // to(room).compress(false).emit: plain for everyone.
        co_await sender.send(opcode::text, shout_plain);
        for (auto& m : members) {
            auto f = co_await m->next();
            EXPECT_TRUE(f && !f->rsv1 && f->op == 1);
            if (f) {
                EXPECT_TRUE(same(data_of(f->payload), big));
            }
        }
        pf = co_await plain.next();
        EXPECT_TRUE(pf && !pf->rsv1 && data_of(pf->payload) == big);

        // socket.emit: compressed over the threshold, not under it; compress(false): plain.
        peer& m0 = *members[0];
        co_await m0.send(opcode::text, envelope("me", big));
        auto f = co_await m0.next();
        EXPECT_TRUE(f && f->rsv1);
        zinflater inflate;
        if (f) {
            EXPECT_TRUE(same(data_of(inflate(f->payload).value_or("")), big));
        }
        co_await m0.send(opcode::text, envelope("me", small));
        f = co_await m0.next();
        EXPECT_TRUE(f && !f->rsv1 && data_of(f->payload) == small);
        co_await m0.send(opcode::text, envelope("me_plain", big));
        f = co_await m0.next();
        EXPECT_TRUE(f && !f->rsv1 && event_of(f->payload) == "direct" && data_of(f->payload) == big);
        // Sent compressed by the client, handled as any event.
        zdeflater compress;
        co_await m0.send(opcode::text, compress(envelope("me", big)), true);
        f = co_await m0.next();
        EXPECT_TRUE(f && f->rsv1);
        if (f) {
            EXPECT_TRUE(same(data_of(inflate(f->payload).value_or("")), big));
        }
    }());
}

TEST(DeflateGateway, DedicatedModeDeliversToEveryMemberWithItsOwnContext) {
    asio::io_context io;
    room_app a(io, deflate_mode::dedicated);
    const std::string big = chatter(3000), join = envelope("join", "r");
    const std::string first = envelope("shout", big), second = envelope("shout", big + "!"), plain = envelope("shout_plain", big);
    test::run(io, [&]() -> awaitable<void> {
        std::vector<std::unique_ptr<peer>> members;
        std::vector<std::unique_ptr<zinflater>> inflaters;
        for (int i = 0; i < 4; ++i) {
            members.push_back(std::make_unique<peer>(io));
            co_await members.back()->upgrade(a.app.port());
            EXPECT_EQ(members.back()->extensions(), "permessage-deflate");
            inflaters.push_back(std::make_unique<zinflater>(true));
            co_await members.back()->send(opcode::text, join);
            auto f = co_await members.back()->next();
            EXPECT_TRUE(f && !f->rsv1);
        }
        peer sender(io);
        co_await sender.upgrade(a.app.port());
        co_await sender.send(opcode::text, first);
        co_await sender.send(opcode::text, plain);
        co_await sender.send(opcode::text, second);
        for (std::size_t i = 0; i < members.size(); ++i) {
            auto f1 = co_await members[i]->next();
            auto f2 = co_await members[i]->next();
            auto f3 = co_await members[i]->next();
            EXPECT_TRUE(f1 && f2 && f3);
            if (!f1 || !f2 || !f3) co_return;
            EXPECT_TRUE(f1->rsv1 && !f2->rsv1 && f3->rsv1);
            EXPECT_TRUE(same(data_of((*inflaters[i])(f1->payload).value_or("")), big)) << i;
            EXPECT_TRUE(same(data_of(f2->payload), big)) << i;
            EXPECT_TRUE(same(data_of((*inflaters[i])(f3->payload).value_or("")), big + "!")) << i;
            // The second refers back to the first: the socket's compressor kept its history.
            EXPECT_LT(f3->payload.size(), 100u) << i;
        }
    }());
}

TEST(DeflateGateway, SocketIoAndWsAdapterClientsInOneRoomShareCompressedBroadcasts) {
    asio::io_context io;
    room_app a(io, deflate_mode::shared, deflate_mode::shared);
    const std::string big = chatter(3000);
    const std::string shout = envelope("shout", big), shout_plain = envelope("shout_plain", big), join = envelope("join", "r");
    const json news_args = json::array({"news", big});
    test::run(io, [&]() -> awaitable<void> {
        peer ws(io), sio(io), sio2(io), sender(io);
        co_await ws.upgrade(a.app.port());
        co_await ws.send(opcode::text, join);
        (void)co_await ws.next();
        co_await sender.upgrade(a.app.port());
        std::vector<peer*> sios;   // filled one by one: no initializer list in a coroutine (GCC 12)
        sios.push_back(&sio);
        sios.push_back(&sio2);
        for (peer* s : sios) {
            co_await s->upgrade(a.app.port(), offer, "/socket.io/?EIO=4&transport=websocket");
            EXPECT_EQ(s->extensions(), shared_answer);
            auto open = co_await s->next();
            EXPECT_TRUE(open && !open->rsv1 && open->payload.starts_with("0{"));
            co_await s->send(opcode::text, "40");
            auto connected = co_await s->next();
            EXPECT_TRUE(connected && connected->payload.starts_with("40{"));
            co_await s->send(opcode::text, R"(421["join","r"])");
            auto ack = co_await s->next();
            EXPECT_TRUE(ack && ack->payload == R"(431["r"])") << (ack ? ack->payload : "(closed)");
        }
        co_await sender.send(opcode::text, shout);
        auto wf = co_await ws.next();
        EXPECT_TRUE(wf && wf->rsv1);
        zinflater inflate;
        if (wf) {
            EXPECT_TRUE(same(data_of(inflate(wf->payload).value_or("")), big));
        }
        std::vector<std::string> sio_frames;
        for (peer* s : sios) {
            auto f = co_await s->next();
            EXPECT_TRUE(f && f->rsv1);
            if (!f) co_return;
            sio_frames.push_back(f->bytes);
            const std::string text = inflate(f->payload).value_or("");
            EXPECT_TRUE(text.starts_with(R"(42["news",)")) << text.substr(0, 40);
            if (text.size() > 2) {
                EXPECT_TRUE(json::parse(text.substr(2), nullptr, false) == news_args);
            }
        }
        EXPECT_TRUE(sio_frames[0] == sio_frames[1]) << "the Engine.IO form is shared too";
        co_await sender.send(opcode::text, shout_plain);
        wf = co_await ws.next();
        EXPECT_TRUE(wf && !wf->rsv1 && data_of(wf->payload) == big);
        for (peer* s : sios) {
            auto f = co_await s->next();
            EXPECT_TRUE(f && !f->rsv1 && f->payload.starts_with(R"(42["news",)"));
        }
    }());
}

TEST(DeflateGateway, CompressFalseKeepsSocketIoAttachmentsPlainToo) {
    asio::io_context io;
    room_app a(io, deflate_mode::off, deflate_mode::shared);
    const std::string big = chatter(3000);
    const std::string bytes = "42[\"bytes\"," + json(big).dump() + "]", bytes_plain = "42[\"bytes_plain\"," + json(big).dump() + "]",
                      shout = "42[\"shout_bytes_plain\"," + json(big).dump() + "]";
    test::run(io, [&]() -> awaitable<void> {
        peer p(io);
        co_await p.upgrade(a.app.port(), offer, "/socket.io/?EIO=4&transport=websocket");
        EXPECT_EQ(p.extensions(), shared_answer);
        (void)co_await p.next();   // the open packet
        co_await p.send(opcode::text, "40");
        (void)co_await p.next();   // CONNECT's answer
        co_await p.send(opcode::text, R"(42["join","r"])");
        zinflater inflate;
        // emit: the attachment (3000 bytes) goes compressed.
        co_await p.send(opcode::text, bytes);
        auto head = co_await p.next();
        auto attachment = co_await p.next();
        EXPECT_TRUE(head && head->payload.starts_with(R"(451-["bytes",{"_placeholder":true)")) << (head ? head->payload : "(closed)");
        EXPECT_TRUE(attachment && attachment->op == 2 && attachment->rsv1);
        if (attachment) {
            EXPECT_TRUE(same(inflate(attachment->payload), big));
        }
        // compress(false), to the socket and to a room: neither the packet nor its attachment compressed.
        co_await p.send(opcode::text, bytes_plain);
        head = co_await p.next();
        attachment = co_await p.next();
        EXPECT_TRUE(head && !head->rsv1 && head->payload.starts_with("451-"));
        EXPECT_TRUE(attachment && attachment->op == 2 && !attachment->rsv1) << "compress(false) covers the attachments";
        if (attachment) {
            EXPECT_TRUE(same(attachment->payload, big));
        }
        co_await p.send(opcode::text, shout);
        head = co_await p.next();
        attachment = co_await p.next();
        EXPECT_TRUE(head && !head->rsv1 && head->payload.starts_with("451-"));
        EXPECT_TRUE(attachment && attachment->op == 2 && !attachment->rsv1) << "compress(false) covers a broadcast's attachments";
    }());
}

// ==== (e) metrics ====

class DeflateMetrics : public ::testing::TestWithParam<deflate_mode> {};

TEST_P(DeflateMetrics, ConnectionsAreCountedAndOnlyDedicatedSocketsHoldStreams) {
    const bool dedicated = GetParam() == deflate_mode::dedicated;
    asio::io_context io;
    gw::server srv{io, server_options(GetParam())};
    echo e(io, srv);
    // The clients compress each message on its own, so the server keeps no context to read them:
    // in dedicated mode each socket holds its compressor, and no more.
    const std::string own_offer = "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n";
    constexpr int n = 50;
    test::run(io, [&]() -> awaitable<void> {
        // One exchange first: the thread's shared streams exist from then on.
        auto exchange = [&](peer& p, int i) -> awaitable<void> {
            const std::string text = chatter(2000, i);
            zdeflater compress;
            co_await p.send(opcode::text, compress(text), true);
            auto f = co_await p.next();
            EXPECT_TRUE(f && f->rsv1);
            zinflater inflate;
            if (f) {
                EXPECT_TRUE(same(inflate(f->payload), text));
            }
        };
        peer warm(io);
        co_await warm.upgrade(srv.port(), own_offer);
        co_await exchange(warm, -1);
        co_await warm.close();
        co_await e.wait_finished(1);
        const auto before = srv.metrics();
        std::vector<std::unique_ptr<peer>> peers;
        for (int i = 0; i < n; ++i) {
            peers.push_back(std::make_unique<peer>(io));
            co_await peers.back()->upgrade(srv.port(), own_offer);
            co_await exchange(*peers.back(), i);
        }
        peer without(io);   // not counted
        co_await without.upgrade(srv.port(), "");
        co_await without.send(opcode::text, chatter(2000));
        auto f = co_await without.next();
        EXPECT_TRUE(f && !f->rsv1);
        const auto during = srv.metrics();
        EXPECT_EQ(during.deflate_connections, before.deflate_connections + n);
        if (dedicated) {
            EXPECT_EQ(during.deflate_streams, before.deflate_streams + n) << "one compressor per socket";
            EXPECT_GE(during.deflate_memory_bytes, before.deflate_memory_bytes + n * (128u << 10));
        } else {
            EXPECT_EQ(during.deflate_streams, before.deflate_streams) << "sockets hold no zlib state";
            EXPECT_EQ(during.deflate_memory_bytes, before.deflate_memory_bytes);
        }
        // Prometheus text carries them.
        const std::string text = gw::to_prometheus(during);
        EXPECT_NE(text.find("deflate_connections"), std::string::npos);
        EXPECT_NE(text.find("deflate_memory_bytes"), std::string::npos);
        for (auto& p : peers) co_await p->close();
        co_await without.close();
        co_await e.wait_finished(n + 2);
        const auto after = srv.metrics();
        EXPECT_EQ(after.deflate_connections, before.deflate_connections);
        EXPECT_EQ(after.deflate_streams, before.deflate_streams);
        EXPECT_EQ(after.deflate_memory_bytes, before.deflate_memory_bytes);
    }());
}

INSTANTIATE_TEST_SUITE_P(Modes, DeflateMetrics, ::testing::Values(deflate_mode::shared, deflate_mode::dedicated),
                         [](const auto& info) { return std::string(info.param == deflate_mode::shared ? "shared" : "dedicated"); });

// ==== (f) Engine.IO ====

namespace {

/// One HTTP exchange on its own connection (Connection: close).
struct http_result {
    int status = 0;
    std::string head, body;
    /// A header's value, or "(none)".
    std::string header(std::string_view name) const {
        const std::string key = "\r\n" + std::string(name) + ": ";
        const auto at = head.find(key);
        if (at == std::string::npos) return "(none)";
        const auto from = at + key.size();
        return head.substr(from, head.find("\r\n", from) - from);
    }
};

awaitable<http_result> http(std::uint16_t port, std::string method, std::string target, std::string body = {},
                            std::string extra_headers = {}) {
    asio::ip::tcp::socket s(co_await asio::this_coro::executor);
    const asio::ip::tcp::endpoint to(asio::ip::make_address("127.0.0.1"), port);
    co_await s.async_connect(to, use_awaitable);
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + extra_headers;
    if (method == "POST") req += "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    req += "\r\n";
    req += body;
    co_await asio::async_write(s, asio::buffer(req), use_awaitable);
    std::string all;
    char buf[4096];
    for (;;) {
        auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), as_tuple(use_awaitable));
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

/// An Engine.IO echo on srv at /engine.io/.
struct eio_echo {
    gw::engineio::server eio;
    eio_echo(asio::io_context& io, gw::server& srv, gw::engineio::options o) : eio(srv, std::move(o)) {
        asio::co_spawn(io, [this]() -> awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            for (;;) {
                auto c = co_await eio.accept();
                asio::co_spawn(ex, [c = std::move(c)]() mutable -> awaitable<void> {
                    while (auto m = co_await c.receive()) co_await c.send(std::move(*m));
                }, [](std::exception_ptr) {});
            }
        }, [](std::exception_ptr) {});
    }
};

// An argument named, not braced: GCC 12 destroys a braced temporary inside co_await twice.
const std::string no_body;

gw::engineio::options eio_options(deflate_mode ws_mode = deflate_mode::off) {
    gw::engineio::options o;
    o.path = "/engine.io/";
    o.per_message_deflate.mode = ws_mode;
    return o;
}

} // namespace

TEST(DeflateEngineIo, PollingResponsesAreCompressedAsTheRequestAccepts) {
    asio::io_context io;
    gw::server srv{io, server_options(deflate_mode::off)};
    eio_echo e(io, srv, eio_options());
    // Each case: the message's length, the Accept-Encoding line, the Content-Encoding expected.
    struct poll_case {
        std::size_t length;
        std::string accept;
        std::string encoding;
    };
    const std::vector<poll_case> cases = {
        {2000, "Accept-Encoding: gzip\r\n", "gzip"},
        {2000, "Accept-Encoding: deflate\r\n", "deflate"},
        {2000, "Accept-Encoding: gzip, deflate, br\r\n", "gzip"},
        {2000, "Accept-Encoding: gzip;q=0.5, deflate\r\n", "deflate"},
        {2000, "Accept-Encoding: *\r\n", "gzip"},
        {2000, "", "(none)"},
        {2000, "Accept-Encoding: br, identity\r\n", "(none)"},
        {2000, "Accept-Encoding: gzip;q=0\r\n", "(none)"},
        {100, "Accept-Encoding: gzip\r\n", "(none)"},       // small: not worth it
        {1023, "Accept-Encoding: gzip\r\n", "gzip"},        // "4" and 1023: the threshold's 1024
        {1022, "Accept-Encoding: gzip\r\n", "(none)"},
    };
    test::run(io, [&]() -> awaitable<void> {
        auto open = co_await http(srv.port(), "GET", "/engine.io/?EIO=4&transport=polling", no_body, "Accept-Encoding: gzip\r\n");
        EXPECT_EQ(open.status, 200);
        EXPECT_EQ(open.header("Content-Encoding"), "(none)");
        auto opened = json::parse(open.body.substr(1), nullptr, false);
        EXPECT_TRUE(opened.is_object() && opened.contains("sid")) << open.body;
        if (!opened.is_object() || !opened.contains("sid")) co_return;
        const std::string at = "/engine.io/?EIO=4&transport=polling&sid=" + opened["sid"].get<std::string>();
        for (const auto& c : cases) {
            const std::string packet = "4" + chatter(c.length).substr(0, c.length);
            auto posted = co_await http(srv.port(), "POST", at, packet);
            EXPECT_EQ(posted.status, 200) << posted.head;
            auto got = co_await http(srv.port(), "GET", at, no_body, c.accept);
            EXPECT_EQ(got.status, 200) << got.head;
            const std::string encoding = got.header("Content-Encoding");
            EXPECT_EQ(encoding, c.encoding) << c.length << " " << c.accept;
            EXPECT_EQ(got.header("Content-Length"), std::to_string(got.body.size()));
            std::optional<std::string> body = got.body;
            if (encoding == "gzip") body = decode_body(got.body, 15 + 16);
            else if (encoding == "deflate") body = decode_body(got.body, 15);
            EXPECT_TRUE(body.has_value()) << c.accept;
            EXPECT_TRUE(same(body.value_or("(not decoded)"), packet)) << c.length << " " << c.accept;
            if (encoding != "(none)") {
                EXPECT_LT(got.body.size(), packet.size());
            }
        }
    }());
}

TEST(DeflateEngineIo, CompressFalseKeepsAPollingResponsePlain) {
    asio::io_context io;
    room_app a(io, deflate_mode::off);
    const std::string big = chatter(3000);
    const std::string plain = "42[\"me_plain\"," + json(big).dump() + "]", compressed = "42[\"me\"," + json(big).dump() + "]";
    const std::string gzip = "Accept-Encoding: gzip\r\n";
    test::run(io, [&]() -> awaitable<void> {
        auto open = co_await http(a.app.port(), "GET", "/socket.io/?EIO=4&transport=polling");
        auto opened = json::parse(open.body.substr(1), nullptr, false);
        EXPECT_TRUE(opened.is_object() && opened.contains("sid")) << open.body;
        if (!opened.is_object() || !opened.contains("sid")) co_return;
        const std::string at = "/socket.io/?EIO=4&transport=polling&sid=" + opened["sid"].get<std::string>();
        (void)co_await http(a.app.port(), "POST", at, "40");
        auto connected = co_await http(a.app.port(), "GET", at);
        EXPECT_TRUE(connected.body.starts_with("40{")) << connected.body;
        // socket.emit: gzip, as the request accepts.
        (void)co_await http(a.app.port(), "POST", at, compressed);
        auto got = co_await http(a.app.port(), "GET", at, no_body, gzip);
        EXPECT_EQ(got.header("Content-Encoding"), "gzip");
        EXPECT_TRUE(same(decode_body(got.body, 15 + 16), "42[\"direct\"," + json(big).dump() + "]"));
        // socket.compress(false).emit: the response that carries it stays plain.
        (void)co_await http(a.app.port(), "POST", at, plain);
        got = co_await http(a.app.port(), "GET", at, no_body, gzip);
        EXPECT_EQ(got.header("Content-Encoding"), "(none)") << "compress(false) over polling";
        EXPECT_TRUE(same(got.body, "42[\"direct\"," + json(big).dump() + "]"));
    }());
}

TEST(DeflateEngineIo, PollingCompressionCanBeTurnedOff) {
    asio::io_context io;
    gw::server srv{io, server_options(deflate_mode::off)};
    auto o = eio_options();
    o.http_compression_threshold = 0;
    eio_echo e(io, srv, o);
    test::run(io, [&]() -> awaitable<void> {
        auto open = co_await http(srv.port(), "GET", "/engine.io/?EIO=4&transport=polling");
        auto opened = json::parse(open.body.substr(1), nullptr, false);
        EXPECT_TRUE(opened.is_object() && opened.contains("sid")) << open.body;
        if (!opened.is_object() || !opened.contains("sid")) co_return;
        const std::string at = "/engine.io/?EIO=4&transport=polling&sid=" + opened["sid"].get<std::string>();
        const std::string packet = "4" + chatter(5000);
        co_await http(srv.port(), "POST", at, packet);
        auto got = co_await http(srv.port(), "GET", at, no_body, "Accept-Encoding: gzip\r\n");
        EXPECT_EQ(got.header("Content-Encoding"), "(none)");
        EXPECT_TRUE(same(got.body, packet));
    }());
}

TEST(DeflateEngineIo, WebSocketTransportNegotiatesDeflateWhenEnabled) {
    asio::io_context io;
    gw::server srv{io, server_options(deflate_mode::off)};   // the server's own WebSocket setting is not Engine.IO's
    eio_echo with(io, srv, eio_options(deflate_mode::shared));
    gw::server srv2{io, server_options(deflate_mode::shared)};
    eio_echo without(io, srv2, eio_options(deflate_mode::off));
    const std::string big = "4" + chatter(3000), target = "/engine.io/?EIO=4&transport=websocket";
    test::run(io, [&]() -> awaitable<void> {
        peer p(io);
        co_await p.upgrade(srv.port(), offer, target);
        EXPECT_TRUE(p.upgraded()) << p.head;
        EXPECT_EQ(p.extensions(), shared_answer);
        auto open = co_await p.next();
        EXPECT_TRUE(open && !open->rsv1 && open->payload.starts_with("0{"));
        zdeflater compress;
        zinflater inflate;
        co_await p.send(opcode::text, compress(big), true);
        auto f = co_await p.next();
        EXPECT_TRUE(f && f->rsv1 && f->op == 1);
        if (f) {
            EXPECT_TRUE(same(inflate(f->payload), big));
        }
        co_await p.send(opcode::text, "4hi");
        f = co_await p.next();
        EXPECT_TRUE(f && !f->rsv1 && f->payload == "4hi");
        co_await p.send(opcode::text, big);
        f = co_await p.next();
        EXPECT_TRUE(f && f->rsv1);
        if (f) {
            EXPECT_TRUE(same(inflate(f->payload), big));
        }

        // Our own client over it: the same, through gw::connect.
        gw::client_options co;
        co.deflate.mode = deflate_mode::dedicated;
        auto c = co_await gw::connect(url(srv.port(), target), co);
        auto first = co_await c.receive();
        EXPECT_TRUE(first && first->data.starts_with("0{"));
        co_await c.send(big);
        auto echoed = co_await c.receive();
        EXPECT_TRUE(echoed && echoed->data == big);

        // Engine.IO with its option off: no extension, whatever the server's own.
        peer q(io);
        co_await q.upgrade(srv2.port(), offer, target);
        EXPECT_TRUE(q.upgraded());
        EXPECT_EQ(q.extensions(), "(none)");
        (void)co_await q.next();
        co_await q.send(opcode::text, big);
        f = co_await q.next();
        EXPECT_TRUE(f && !f->rsv1 && f->payload == big);
    }());
}

TEST(DeflateEngineIo, UpgradeFromPollingKeepsDeflateOnTheWebSocket) {
    asio::io_context io;
    gw::server srv{io, server_options(deflate_mode::off)};
    eio_echo e(io, srv, eio_options(deflate_mode::shared));
    const std::string big = "4" + chatter(3000);
    test::run(io, [&]() -> awaitable<void> {
        auto open = co_await http(srv.port(), "GET", "/engine.io/?EIO=4&transport=polling");
        auto opened = json::parse(open.body.substr(1), nullptr, false);
        EXPECT_TRUE(opened.is_object() && opened.contains("sid")) << open.body;
        if (!opened.is_object() || !opened.contains("sid")) co_return;
        const std::string sid = opened["sid"].get<std::string>();
        // Echoed while the session polls: it waits in the session's queue, or follows on the WebSocket.
        auto posted = co_await http(srv.port(), "POST", "/engine.io/?EIO=4&transport=polling&sid=" + sid, big);
        EXPECT_EQ(posted.status, 200);
        peer p(io);
        co_await p.upgrade(srv.port(), offer, "/engine.io/?EIO=4&transport=websocket&sid=" + sid);
        EXPECT_TRUE(p.upgraded()) << p.head;
        EXPECT_EQ(p.extensions(), shared_answer);
        co_await p.send(opcode::text, "2probe");
        auto f = co_await p.next();
        EXPECT_TRUE(f && !f->rsv1 && f->payload == "3probe");
        co_await p.send(opcode::text, "5");
        zdeflater compress;
        zinflater inflate;
        f = co_await p.next();
        EXPECT_TRUE(f.has_value());
        if (!f) co_return;
        EXPECT_TRUE(same(f->rsv1 ? inflate(f->payload).value_or("(not DEFLATE)") : f->payload, big));
        co_await p.send(opcode::text, compress(big), true);
        f = co_await p.next();
        EXPECT_TRUE(f && f->rsv1);
        if (f) {
            EXPECT_TRUE(same(inflate(f->payload), big));
        }
    }());
}

#else

TEST(Deflate, NeedsTheDeflateKnob) { GTEST_SKIP() << "built without GATEWAY_DEFLATE (zlib)"; }

#endif
