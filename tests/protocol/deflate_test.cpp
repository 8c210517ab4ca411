// permessage-deflate (RFC 7692) as pure functions (protocol/deflate.hpp): offers parsed, the
// server's answer and the client's check of it, the RFC's own compressed examples byte by byte,
// inflation held to its limit, and HTTP's gzip and deflate bodies.
#include "protocol_support.hpp"

#include <gw/protocol/deflate.hpp>

namespace {

using gw::deflate_mode;
using gw::deflate_options;
using gw::detail::accept_deflate;
using gw::detail::inflate_status;
using protocol_test::hex;
using protocol_test::parse;

deflate_options mode(deflate_mode m) {
    deflate_options o;
    o.mode = m;
    return o;
}

std::string answer_to(std::string_view offers, deflate_mode m = deflate_mode::shared) {
    auto a = accept_deflate(offers, mode(m));
    return a ? a->response : "(declined)";
}

std::string str(std::initializer_list<int> list) {
    std::string s;
    for (int b : list) s.push_back(static_cast<char>(b));
    return s;
}

// ---- the header grammar (RFC 6455 section 9.1) ----

TEST(Extensions, ListsOffersWithTheirParametersInOrder) {
    auto list = gw::detail::parse_extensions("permessage-deflate; client_max_window_bits, x-other;a=1;b=\"two\" ,foo");
    ASSERT_EQ(list.size(), 3u);
    EXPECT_EQ(list[0].name, "permessage-deflate");
    ASSERT_EQ(list[0].params.size(), 1u);
    EXPECT_EQ(list[0].params[0].first, "client_max_window_bits");
    EXPECT_FALSE(list[0].params[0].second);
    EXPECT_EQ(list[1].name, "x-other");
    ASSERT_EQ(list[1].params.size(), 2u);
    EXPECT_EQ(*list[1].params[0].second, "1");
    EXPECT_EQ(*list[1].params[1].second, "two");   // a quoted string, unquoted
    EXPECT_EQ(list[2].name, "foo");
    for (const auto& e : list) EXPECT_TRUE(e.valid);
}

TEST(Extensions, ABrokenElementIsMarkedAndTheNextStillRead) {
    auto list = gw::detail::parse_extensions("permessage-deflate; =5, permessage-deflate; a=\"b,c\" d, permessage-deflate");
    ASSERT_EQ(list.size(), 3u);
    EXPECT_FALSE(list[0].valid);
    EXPECT_FALSE(list[1].valid);   // the comma inside quotes does not end it
    EXPECT_TRUE(list[2].valid);
    EXPECT_FALSE(gw::detail::parse_extensions("permessage-deflate; x=\"not a token\"")[0].valid);
    EXPECT_FALSE(gw::detail::parse_extensions("permessage-deflate; x=\"open")[0].valid);
}

// ---- the server's answer (section 7.1) ----

TEST(Negotiation, OffIsNeverAgreed) {
    EXPECT_EQ(answer_to("permessage-deflate", deflate_mode::off), "(declined)");
}

TEST(Negotiation, SharedModeAsksForNoContextTakeoverBothWays) {
    EXPECT_EQ(answer_to("permessage-deflate; client_max_window_bits"),
              "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    auto a = accept_deflate("permessage-deflate", mode(deflate_mode::shared));
    ASSERT_TRUE(a);
    EXPECT_TRUE(a->params.server_no_context_takeover);
    EXPECT_TRUE(a->params.client_no_context_takeover);
}

TEST(Negotiation, DedicatedModeKeepsContextUnlessAsked) {
    EXPECT_EQ(answer_to("permessage-deflate; client_max_window_bits", deflate_mode::dedicated), "permessage-deflate");
    EXPECT_EQ(answer_to("permessage-deflate; server_no_context_takeover; client_no_context_takeover", deflate_mode::dedicated),
              "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    deflate_options small = mode(deflate_mode::dedicated);
    small.window_bits = 10;
    auto a = accept_deflate("permessage-deflate", small);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->response, "permessage-deflate; server_max_window_bits=10");
    EXPECT_EQ(a->params.server_max_window_bits, 10);
}

TEST(Negotiation, AServerWindowAskedForIsHonouredOrTheOfferDeclined) {
    EXPECT_EQ(answer_to("permessage-deflate; server_max_window_bits=10", deflate_mode::dedicated),
              "permessage-deflate; server_max_window_bits=10");
    EXPECT_EQ(answer_to("permessage-deflate; server_max_window_bits=\"12\"", deflate_mode::dedicated),
              "permessage-deflate; server_max_window_bits=12");
    // zlib cannot make a 256-byte window: that offer is declined, the next one taken.
    EXPECT_EQ(answer_to("permessage-deflate; server_max_window_bits=8"), "(declined)");
    EXPECT_EQ(answer_to("permessage-deflate; server_max_window_bits=8, permessage-deflate", deflate_mode::dedicated),
              "permessage-deflate");
}

TEST(Negotiation, MalformedOrRepeatedParametersDeclineTheOffer) {
    for (const char* bad : {"permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                            "permessage-deflate; client_no_context_takeover=1",
                            "permessage-deflate; server_max_window_bits",
                            "permessage-deflate; server_max_window_bits=16",
                            "permessage-deflate; server_max_window_bits=08",
                            "permessage-deflate; server_max_window_bits=7",
                            "permessage-deflate; client_max_window_bits=0",
                            "permessage-deflate; client_max_window_bits; client_max_window_bits",
                            "permessage-deflate; unknown_parameter",
                            "permessage-deflate; ;",
                            "x-webkit-deflate-frame"})
        EXPECT_EQ(answer_to(bad, deflate_mode::dedicated), "(declined)") << bad;
    // Several offers in order: the first acceptable one wins.
    EXPECT_EQ(answer_to("permessage-deflate; bogus, permessage-deflate; client_no_context_takeover", deflate_mode::dedicated),
              "permessage-deflate; client_no_context_takeover");
}

TEST(Negotiation, TheSwitchingProtocolsAnswerCarriesIt) {
    auto p = parse("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Extensions: x-unknown\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n");
    struct hooks {
        std::optional<gw::http_response> plain(gw::detail::request_head&) const { return std::nullopt; }
        std::optional<gw::http_response> upgrade(gw::detail::request_head&) const { return std::nullopt; }
        std::optional<std::string> subprotocol(gw::detail::request_head&) const { return std::nullopt; }
    };
    const deflate_options o = mode(deflate_mode::shared);
    auto a = gw::detail::answer_handshake(p.req, {0, true, &o}, hooks{});
    ASSERT_TRUE(a.accepted);
    EXPECT_NE(a.head.find("\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
                          "client_no_context_takeover\r\n"),
              std::string::npos)
        << a.head;
    auto none = gw::detail::answer_handshake(p.req, {}, hooks{});
    EXPECT_EQ(none.head.find("Extensions"), std::string::npos);
}

// ---- the client's side ----

TEST(Negotiation, AClientOffersAndChecksTheAnswer) {
    EXPECT_EQ(gw::detail::deflate_offer(mode(deflate_mode::off)), "");
    EXPECT_EQ(gw::detail::deflate_offer(mode(deflate_mode::dedicated)), "permessage-deflate");
    EXPECT_EQ(gw::detail::deflate_offer(mode(deflate_mode::shared)), "permessage-deflate; client_no_context_takeover");
    std::string error;
    auto p = gw::detail::check_deflate_answer("permessage-deflate; server_no_context_takeover; server_max_window_bits=11",
                                              mode(deflate_mode::dedicated), error);
    ASSERT_TRUE(p) << error;
    EXPECT_TRUE(p->server_no_context_takeover);
    EXPECT_EQ(p->server_max_window_bits, 11);
    for (const char* bad : {"permessage-deflate; client_max_window_bits=10", "x-other", "permessage-deflate, permessage-deflate",
                            "permessage-deflate; server_max_window_bits", "permessage-deflate; nonsense"}) {
        error.clear();
        EXPECT_FALSE(gw::detail::check_deflate_answer(bad, mode(deflate_mode::dedicated), error)) << bad;
        EXPECT_FALSE(error.empty());
    }
    EXPECT_FALSE(gw::detail::check_deflate_answer("permessage-deflate", mode(deflate_mode::off), error));
}

#if defined(GATEWAY_DEFLATE)

// ---- the RFC's examples (section 7.2.3) ----

TEST(Compression, HelloAsTheRfcCompressesIt) {
    gw::detail::deflate_stream z(6, 15, 8);
    std::string out;
    z.compress("Hello", out, true);
    EXPECT_EQ(hex(out), "F2 48 CD C9 C9 07 00");   // section 7.2.3.1, the tail removed
    gw::detail::inflate_stream in;
    std::string plain;
    EXPECT_EQ(in.inflate(out, 100, plain, true), inflate_status::ok);
    EXPECT_EQ(plain, "Hello");
}

TEST(Compression, ContextTakeoverRefersToTheMessageBefore) {
    gw::detail::inflate_stream in;
    std::string plain;
    ASSERT_EQ(in.inflate(str({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}), 100, plain, false), inflate_status::ok);
    EXPECT_EQ(plain, "Hello");
    // Section 7.2.3.2: the second "Hello" is a back reference into the first.
    ASSERT_EQ(in.inflate(str({0xf2, 0x00, 0x11, 0x00, 0x00}), 100, plain, false), inflate_status::ok);
    EXPECT_EQ(plain, "Hello");
    // Our own compressor with context takeover makes the second message shorter than the first.
    gw::detail::deflate_stream z(6, 15, 8);
    std::string first, second;
    z.compress("Hello", first, false);
    z.compress("Hello", second, false);
    EXPECT_LT(second.size(), first.size());
    gw::detail::inflate_stream ours;
    ASSERT_EQ(ours.inflate(first, 100, plain, false), inflate_status::ok);
    ASSERT_EQ(ours.inflate(second, 100, plain, false), inflate_status::ok);
    EXPECT_EQ(plain, "Hello");
}

TEST(Compression, StoredAndFinalBlocksInflate) {
    gw::detail::inflate_stream in;
    std::string plain;
    // Section 7.2.3.3: a block with no compression.
    ASSERT_EQ(in.inflate(str({0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00}), 100, plain, true), inflate_status::ok);
    EXPECT_EQ(plain, "Hello");
    // Section 7.2.3.4: BFINAL set.
    ASSERT_EQ(in.inflate(str({0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}), 100, plain, true), inflate_status::ok);
    EXPECT_EQ(plain, "Hello");
    // Section 7.2.3.6: an empty message is one empty block.
    gw::detail::deflate_stream z(6, 15, 8);
    std::string empty;
    z.compress("", empty, true);
    ASSERT_FALSE(empty.empty());
    ASSERT_EQ(in.inflate(empty, 100, plain, true), inflate_status::ok);
    EXPECT_EQ(plain, "");
}

TEST(Compression, APrefixIsCompressedAsPartOfTheMessage) {
    gw::detail::deflate_stream z(6, 15, 8);
    const std::string text(3000, 'q');
    std::string with_prefix, whole;
    z.compress(text, with_prefix, true, "4");
    z.compress("4" + text, whole, true);
    EXPECT_EQ(with_prefix, whole);   // the same bytes as the message with the prefix copied in front
    gw::detail::inflate_stream in;
    std::string plain;
    ASSERT_EQ(in.inflate(with_prefix, 10000, plain, true), inflate_status::ok);
    EXPECT_EQ(plain, "4" + text);
}

// ---- inflation held to its limit ----

TEST(Inflation, StopsAtTheLimitWithoutAllocatingWhatItWouldMake) {
    gw::detail::deflate_stream z(9, 15, 8);
    const std::string zeros(16 << 20, '\0');   // 16 MiB of zeros: ~16 KiB compressed
    std::string bomb;
    z.compress(zeros, bomb, true);
    ASSERT_LT(bomb.size(), 64u << 10);
    gw::detail::inflate_stream in;
    std::string plain;
    EXPECT_EQ(in.inflate(bomb, 1 << 20, plain, true), inflate_status::too_big);
    EXPECT_LE(plain.capacity(), (2u << 20) + 64);   // never more than the limit's worth (and a string's slack)
    // Exactly the limit passes; one byte over does not.
    std::string exact;
    z.compress(std::string_view(zeros).substr(0, 4096), exact, true);
    EXPECT_EQ(in.inflate(exact, 4096, plain, true), inflate_status::ok);
    EXPECT_EQ(plain.size(), 4096u);
    EXPECT_EQ(in.inflate(exact, 4095, plain, true), inflate_status::too_big);
    // The stream is usable after a refusal.
    EXPECT_EQ(in.inflate(exact, 8192, plain, true), inflate_status::ok);
}

TEST(Inflation, DataThatIsNotDeflateIsBad) {
    gw::detail::inflate_stream in;
    std::string plain;
    EXPECT_EQ(in.inflate(str({0xff, 0xff, 0xff, 0xff}), 100, plain, true), inflate_status::bad_data);
    EXPECT_EQ(in.inflate(str({0x07}), 100, plain, true), inflate_status::bad_data);   // block type 3: reserved
    EXPECT_EQ(in.inflate(str({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}), 100, plain, true), inflate_status::ok);
}

TEST(Inflation, LargeRandomMessagesRoundTrip) {
    std::string text;
    std::uint32_t x = 12345;
    for (int i = 0; i < 300000; ++i) {
        x = x * 1103515245 + 12345;
        text.push_back(static_cast<char>('a' + (x >> 16) % 7));
    }
    for (int window : {9, 12, 15}) {
        gw::detail::deflate_stream z(1, window, 1);
        gw::detail::inflate_stream in;
        for (int round = 0; round < 3; ++round) {
            std::string packed, plain;
            z.compress(text, packed, false);
            ASSERT_EQ(in.inflate(packed, text.size(), plain, false), inflate_status::ok) << window;
            EXPECT_EQ(plain, text);
        }
    }
}

TEST(Inflation, ZlibMemoryIsCounted) {
    const auto before = gw::detail::zlib_bytes().load();
    const auto streams = gw::detail::zlib_streams().load();
    {
        gw::detail::deflate_stream z(6, 15, 8);
        std::string out;
        z.compress("warm up", out, false);
        EXPECT_GT(gw::detail::zlib_bytes().load(), before + (200 << 10));   // 2^17 window + 2^17 hash for 15/8
        EXPECT_EQ(gw::detail::zlib_streams().load(), streams + 1);
    }
    EXPECT_EQ(gw::detail::zlib_bytes().load(), before);
    EXPECT_EQ(gw::detail::zlib_streams().load(), streams);
}

TEST(Session, SharedModeHoldsNoStreamsAndDedicatedKeepsItsOwn) {
    gw::detail::deflate_params shared;
    shared.server_no_context_takeover = shared.client_no_context_takeover = true;
    gw::detail::deflate_session s(shared, mode(deflate_mode::shared), gw::detail::role::server);
    EXPECT_TRUE(s.shares_frames());
    EXPECT_TRUE(s.wants(1024, true));
    EXPECT_FALSE(s.wants(1023, true));
    EXPECT_FALSE(s.wants(4096, false));
    std::string a, b;
    s.compress("Hello Hello Hello", a);
    s.compress("Hello Hello Hello", b);
    EXPECT_EQ(a, b);   // no history: the same message, the same bytes
    std::string plain;
    EXPECT_EQ(s.inflate(a, 100, plain), inflate_status::ok);
    EXPECT_EQ(plain, "Hello Hello Hello");

    gw::detail::deflate_session d({}, mode(deflate_mode::dedicated), gw::detail::role::server);
    EXPECT_FALSE(d.shares_frames());
    std::string c, e;
    d.compress("Hello Hello Hello", c);
    d.compress("Hello Hello Hello", e);
    EXPECT_LT(e.size(), c.size());
}

// ---- HTTP bodies ----

std::string gunzip(const std::string& body, int window_bits) {
    z_stream z{};
    EXPECT_EQ(inflateInit2(&z, window_bits), Z_OK);
    std::string out(1 << 20, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(body.data()));
    z.avail_in = static_cast<uInt>(body.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END);
    out.resize(out.size() - z.avail_out);
    inflateEnd(&z);
    return out;
}

TEST(Http, GzipAndDeflateBodiesAreWholeStreams) {
    const std::string body(5000, 'x');
    const std::string gz = gw::detail::http_compress(body, gw::detail::http_encoding::gzip);
    ASSERT_GE(gz.size(), 2u);
    EXPECT_EQ(hex(gz.substr(0, 2)), "1F 8B");   // gzip's magic
    EXPECT_EQ(gunzip(gz, 16 + 15), body);
    const std::string zl = gw::detail::http_compress(body, gw::detail::http_encoding::deflate);
    EXPECT_EQ(gunzip(zl, 15), body);   // HTTP's deflate: zlib's format
    EXPECT_EQ(gunzip(gw::detail::http_compress(body, gw::detail::http_encoding::gzip), 16 + 15), body);   // again: reset
}

#endif // GATEWAY_DEFLATE

TEST(Http, TheEncodingFollowsTheClientsPreference) {
    using gw::detail::http_encoding;
    using gw::detail::pick_encoding;
    EXPECT_EQ(pick_encoding("gzip, deflate, br"), http_encoding::gzip);
    EXPECT_EQ(pick_encoding("deflate"), http_encoding::deflate);
    EXPECT_EQ(pick_encoding("deflate;q=1, gzip;q=0.5"), http_encoding::deflate);
    EXPECT_EQ(pick_encoding("deflate;q=0.5, gzip;q=0.5"), http_encoding::gzip);   // a tie: gzip
    EXPECT_EQ(pick_encoding("*"), http_encoding::gzip);
    EXPECT_EQ(pick_encoding("*;q=0.1, gzip;q=0"), http_encoding::deflate);
    EXPECT_EQ(pick_encoding("identity"), http_encoding::identity);
    EXPECT_EQ(pick_encoding("gzip;q=0"), http_encoding::identity);
    EXPECT_EQ(pick_encoding(""), http_encoding::identity);
}

} // namespace
