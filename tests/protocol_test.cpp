// Unit tests of gateway.hpp's protocol code (namespace gw::detail), byte by byte. No sockets.

#include <gateway.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;
using gw::close_code;
using gw::opcode;
using gw::detail::decode_status;
using gw::detail::frame_header;

using bytes = std::vector<unsigned char>;

bytes make_bytes(std::initializer_list<int> list) {
    bytes out;
    for (int b : list) out.push_back(static_cast<unsigned char>(b));
    return out;
}

std::string hex(std::string_view s) {
    static const char digits[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (!out.empty()) out += ' ';
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}
std::string hex(const bytes& b) { return hex(std::string_view(reinterpret_cast<const char*>(b.data()), b.size())); }

// ============================================================================================
// 1. Accept key
// ============================================================================================

TEST(AcceptKey, Rfc6455Example) {
    EXPECT_EQ(gw::detail::accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(AcceptKey, Rfc6455ExampleKeyIsValid) {
    EXPECT_TRUE(gw::detail::is_valid_client_key("dGhlIHNhbXBsZSBub25jZQ=="));
    EXPECT_TRUE(gw::detail::is_valid_client_key("x3JJHMbDL1EzLkh9GBhXDw=="));   // RFC 6455 section 1.3
}

TEST(AcceptKey, AnyBase64Of16BytesIsValid) {
    std::array<unsigned char, 16> raw{};
    for (int fill : {0x00, 0xFF, 0xFB, 0x3E, 0x80}) {
        raw.fill(static_cast<unsigned char>(fill));
        auto key = gw::detail::base64_encode(raw);
        EXPECT_EQ(key.size(), 24u);
        EXPECT_TRUE(gw::detail::is_valid_client_key(key)) << key;
    }
    for (int i = 0; i < 16; ++i) raw[static_cast<std::size_t>(i)] = static_cast<unsigned char>(i * 17);
    EXPECT_TRUE(gw::detail::is_valid_client_key(gw::detail::base64_encode(raw)));
    EXPECT_TRUE(gw::detail::is_valid_client_key("/////////////////////w=="));   // 16 x 0xFF
    EXPECT_TRUE(gw::detail::is_valid_client_key("AAAAAAAAAAAAAAAAAAAAAA=="));   // 16 x 0x00
    EXPECT_TRUE(gw::detail::is_valid_client_key("+/+/+/+/+/+/+/+/+/+/+w=="));
}

TEST(AcceptKey, RejectsEmptyKey) { EXPECT_FALSE(gw::detail::is_valid_client_key("")); }

TEST(AcceptKey, RejectsWrongLength) {
    EXPECT_FALSE(gw::detail::is_valid_client_key("dGhlIHNhbXBsZSBub25jZQ="));     // 23 chars
    EXPECT_FALSE(gw::detail::is_valid_client_key("dGhlIHNhbXBsZSBub25jZQ==="));   // 25 chars
    EXPECT_FALSE(gw::detail::is_valid_client_key("dGhlIHNhbXBsZSBub25jZQ==dGhl"));
    EXPECT_FALSE(gw::detail::is_valid_client_key("AAAA"));
    EXPECT_FALSE(gw::detail::is_valid_client_key("=="));
}

TEST(AcceptKey, Rejects15And17ByteValues) {
    std::array<unsigned char, 15> k15{};
    std::array<unsigned char, 17> k17{};
    std::array<unsigned char, 18> k18{};
    k15.fill(0x41), k17.fill(0x41), k18.fill(0x41);
    auto e15 = gw::detail::base64_encode(k15), e17 = gw::detail::base64_encode(k17),
         e18 = gw::detail::base64_encode(k18);
    EXPECT_EQ(e15.size(), 20u);
    EXPECT_EQ(e17.size(), 24u);   // "...=": same length as a 16-byte key, one '=' only
    EXPECT_EQ(e18.size(), 24u);   // no padding at all
    EXPECT_FALSE(gw::detail::is_valid_client_key(e15)) << e15;
    EXPECT_FALSE(gw::detail::is_valid_client_key(e17)) << e17;
    EXPECT_FALSE(gw::detail::is_valid_client_key(e18)) << e18;
}

TEST(AcceptKey, RejectsMissingPadding) {
    EXPECT_FALSE(gw::detail::is_valid_client_key("dGhlIHNhbXBsZSBub25jZQ"));     // 22 chars
    EXPECT_FALSE(gw::detail::is_valid_client_key("dGhlIHNhbXBsZSBub25jZQAA"));   // 24 chars, no '='
    EXPECT_FALSE(gw::detail::is_valid_client_key("dGhlIHNhbXBsZSBub25jZQA="));
}

TEST(AcceptKey, RejectsInvalidCharacters) {
    const std::string good = "dGhlIHNhbXBsZSBub25jZQ==";
    for (char bad : {'*', '-', '_', ' ', '\t', '.', '!', '\0', '\x80', '\xFF', '"'}) {
        for (std::size_t at : {0u, 5u, 21u}) {
            std::string k = good;
            k[at] = bad;
            EXPECT_FALSE(gw::detail::is_valid_client_key(k)) << hex(k);
        }
    }
    EXPECT_FALSE(gw::detail::is_valid_client_key(" dGhlIHNhbXBsZSBub25jZQ="));   // 24 chars with a leading space
}

TEST(AcceptKey, RejectsPaddingInsideTheKey) {
    // '=' only ever ends base64; "===" or an '=' in the middle is not the encoding of 16 bytes.
    EXPECT_FALSE(gw::detail::is_valid_client_key("dGhlIHNhbXBsZSBub25jZ==="));
    EXPECT_FALSE(gw::detail::is_valid_client_key("dGhl=HNhbXBsZSBub25jZQ=="));
    EXPECT_FALSE(gw::detail::is_valid_client_key("====================AA=="));
}

// ============================================================================================
// 2. HTTP upgrade parsing
// ============================================================================================

struct parsed {
    gw::detail::http_error error;
    gw::http_request req;
};

parsed parse(std::string raw) {
    parsed p;
    p.error = gw::detail::request_parser::parse(std::move(raw), p.req);
    return p;
}

// A minimal valid upgrade request with the given request line and extra/replacement header lines.
std::string upgrade_request(std::string_view request_line = "GET /chat HTTP/1.1",
                            std::string_view extra = "") {
    std::string r(request_line);
    r += "\r\nHost: server.example.com\r\n"
         "Upgrade: websocket\r\n"
         "Connection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
         "Sec-WebSocket-Version: 13\r\n";
    r += extra;
    r += "\r\n";
    return r;
}

// Parses, expects the parse to succeed, and returns check_upgrade()'s status (0: accepted).
int upgrade_status(std::string raw) {
    auto p = parse(std::move(raw));
    EXPECT_EQ(p.error.status, 0) << p.error.reason;
    if (p.error.status) return -1;
    auto d = gw::detail::check_upgrade(p.req);
    EXPECT_TRUE(d.is_upgrade);
    return d.error.status;
}

const std::string chrome_request =
    "GET /chat?room=lobby HTTP/1.1\r\n"
    "Host: example.com:8080\r\n"
    "Connection: Upgrade\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Safari/537.36\r\n"
    "Upgrade: websocket\r\n"
    "Origin: http://example.com:8080\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Cookie: session=abc; theme=dark\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "\r\n";

const std::string firefox_request =
    "GET /socket HTTP/1.1\r\n"
    "Host: localhost:9001\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0\r\n"
    "Accept: */*\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Origin: http://localhost:9001\r\n"
    "Sec-WebSocket-Protocol: chat, superchat\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate\r\n"
    "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
    "Connection: keep-alive, Upgrade\r\n"
    "Sec-Fetch-Dest: empty\r\n"
    "Sec-Fetch-Mode: websocket\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "Upgrade: websocket\r\n"
    "\r\n";

TEST(HttpParse, ChromeUpgradeRequest) {
    auto p = parse(chrome_request);
    ASSERT_EQ(p.error.status, 0) << p.error.reason;
    EXPECT_EQ(p.req.method(), "GET");
    EXPECT_EQ(p.req.target(), "/chat?room=lobby");
    EXPECT_EQ(p.req.path(), "/chat");
    EXPECT_EQ(p.req.query(), "room=lobby");
    EXPECT_EQ(p.req.version_minor(), 1);
    EXPECT_EQ(p.req.header("Host"), "example.com:8080");
    EXPECT_EQ(p.req.header("Origin"), "http://example.com:8080");
    EXPECT_EQ(p.req.header("Cookie"), "session=abc; theme=dark");
    EXPECT_EQ(p.req.header("Sec-WebSocket-Extensions"), "permessage-deflate; client_max_window_bits");
    EXPECT_EQ(p.req.query_param("room"), "lobby");
    EXPECT_TRUE(p.req.protocols().empty());
    auto d = gw::detail::check_upgrade(p.req);
    EXPECT_TRUE(d.is_upgrade);
    EXPECT_EQ(d.error.status, 0) << d.error.reason;
    EXPECT_EQ(d.key, "dGhlIHNhbXBsZSBub25jZQ==");
}

TEST(HttpParse, FirefoxUpgradeRequest) {
    auto p = parse(firefox_request);
    ASSERT_EQ(p.error.status, 0) << p.error.reason;
    EXPECT_EQ(p.req.path(), "/socket");
    EXPECT_EQ(p.req.query(), "");
    EXPECT_EQ(p.req.header("Accept"), "*/*");
    EXPECT_EQ(p.req.protocols(), (std::vector<std::string_view>{"chat", "superchat"}));
    auto d = gw::detail::check_upgrade(p.req);
    EXPECT_TRUE(d.is_upgrade);
    EXPECT_EQ(d.error.status, 0) << d.error.reason;
    EXPECT_EQ(d.key, "x3JJHMbDL1EzLkh9GBhXDw==");
}

TEST(HttpParse, ForEachHeaderSeesEveryLineInOrder) {
    auto p = parse(firefox_request);
    ASSERT_EQ(p.error.status, 0);
    std::vector<std::string> names;
    p.req.for_each_header([&](std::string_view n, std::string_view) { names.emplace_back(n); });
    ASSERT_EQ(names.size(), 17u);
    EXPECT_EQ(names.front(), "Host");
    EXPECT_EQ(names[10], "Connection");
    EXPECT_EQ(names.back(), "Upgrade");
}

TEST(HttpParse, HeaderNamesAreCaseInsensitive) {
    auto p = parse("GET / HTTP/1.1\r\nhOsT: h\r\nUPGRADE: websocket\r\nconnection: upgrade\r\n"
                   "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nSEC-WEBSOCKET-VERSION: 13\r\n\r\n");
    ASSERT_EQ(p.error.status, 0);
    EXPECT_EQ(p.req.header("Host"), "h");
    EXPECT_EQ(p.req.header("host"), "h");
    EXPECT_EQ(p.req.header("HOST"), "h");
    EXPECT_EQ(p.req.header("Sec-WebSocket-Key"), "dGhlIHNhbXBsZSBub25jZQ==");
    EXPECT_FALSE(p.req.header("Hos").has_value());
    EXPECT_FALSE(p.req.header("Hostx").has_value());
    auto d = gw::detail::check_upgrade(p.req);
    EXPECT_TRUE(d.is_upgrade);
    EXPECT_EQ(d.error.status, 0);
}

TEST(HttpParse, HeaderValuesAreTrimmed) {
    auto p = parse("GET / HTTP/1.1\r\nHost:h\r\nA:   spaced  \r\nB:\t\ttabs\t\r\nEmpty:\r\nBlank:   \r\n"
                   "Inner: a  b\tc\r\n\r\n");
    ASSERT_EQ(p.error.status, 0) << p.error.reason;
    EXPECT_EQ(p.req.header("Host"), "h");
    EXPECT_EQ(p.req.header("A"), "spaced");
    EXPECT_EQ(p.req.header("B"), "tabs");
    EXPECT_EQ(p.req.header("Empty"), "");
    EXPECT_EQ(p.req.header("Blank"), "");
    EXPECT_EQ(p.req.header("Inner"), "a  b\tc");
}

TEST(HttpParse, ConnectionTokensAreCommaSeparated) {
    for (auto conn : {"keep-alive, Upgrade", "keep-alive,Upgrade", "Upgrade, keep-alive", "upgrade", "UPGRADE",
                      " , Upgrade ,", "foo,  bar , upgrade"}) {
        std::string r = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: "s + conn +
                        "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        EXPECT_EQ(upgrade_status(r), 0) << conn;
    }
}

TEST(HttpParse, ConnectionWithoutUpgradeTokenIs400) {
    for (auto conn : {"keep-alive", "Upgraded", "Up grade", "upgrade-insecure", "keep-alive; Upgrade"}) {
        std::string r = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: "s + conn +
                        "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        EXPECT_EQ(upgrade_status(r), 400) << conn;
    }
}

TEST(HttpParse, UpgradeTokensAreCommaSeparatedAndCaseInsensitive) {
    for (auto up : {"websocket", "WebSocket", "WEBSOCKET", "websocket, foo", "foo, websocket", "h2c,websocket"}) {
        std::string r = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: "s + up +
                        "\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n";
        EXPECT_EQ(upgrade_status(r), 0) << up;
    }
}

TEST(HttpParse, UpgradeOtherThanWebsocketWithKeyIs400) {
    for (auto up : {"websockets", "h2c", "web socket"}) {
        std::string r = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: "s + up +
                        "\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n";
        EXPECT_EQ(upgrade_status(r), 400) << up;
    }
}

TEST(HttpParse, RepeatedConnectionHeadersAreJoined) {
    EXPECT_EQ(upgrade_status("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\n\r\n"),
              0);
    EXPECT_EQ(upgrade_status("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: foo\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\n\r\n"),
              0);
}

TEST(HttpParse, RepeatedProtocolHeadersAreConcatenatedInOrder) {
    auto p = parse(upgrade_request("GET / HTTP/1.1", "Sec-WebSocket-Protocol: chat, superchat\r\n"
                                                     "X-Other: 1\r\n"
                                                     "sec-websocket-protocol: v2.json,  mqtt ,\r\n"));
    ASSERT_EQ(p.error.status, 0);
    EXPECT_EQ(p.req.protocols(), (std::vector<std::string_view>{"chat", "superchat", "v2.json", "mqtt"}));
    EXPECT_EQ(p.req.header("Sec-WebSocket-Protocol"), "chat, superchat");   // header() gives the first line
}

TEST(HttpParse, PathAndQuerySplit) {
    struct row {
        std::string target, path, query;
    };
    for (const auto& r : std::vector<row>{{"/", "/", ""},
                                          {"/a/b", "/a/b", ""},
                                          {"/x?", "/x", ""},
                                          {"/?x=1", "/", "x=1"},
                                          {"/a/b?c=d?e", "/a/b", "c=d?e"},
                                          {"/p%20q?r=%20", "/p%20q", "r=%20"}}) {
        auto p = parse("GET " + r.target + " HTTP/1.1\r\nHost: h\r\n\r\n");
        ASSERT_EQ(p.error.status, 0) << r.target;
        EXPECT_EQ(p.req.target(), r.target);
        EXPECT_EQ(p.req.path(), r.path) << r.target;
        EXPECT_EQ(p.req.query(), r.query) << r.target;
    }
}

TEST(HttpParse, QueryParamDecodesPercentAndPlus) {
    auto p = parse("GET /p?a=1&name=J%C3%B6rg+M&empty=&flag&bad=%zz%4&plus=a%2Bb&a=2&k%20y=v&low=%7e%7E HTTP/1.1\r\n"
                   "Host: h\r\n\r\n");
    ASSERT_EQ(p.error.status, 0);
    EXPECT_EQ(p.req.query_param("a"), "1");   // the first one wins
    EXPECT_EQ(p.req.query_param("name"), "J\xC3\xB6rg M");
    EXPECT_EQ(p.req.query_param("empty"), "");
    EXPECT_EQ(p.req.query_param("flag"), "");
    EXPECT_EQ(p.req.query_param("bad"), "%zz%4");   // invalid escapes stay as they are
    EXPECT_EQ(p.req.query_param("plus"), "a+b");
    EXPECT_EQ(p.req.query_param("k y"), "v");
    EXPECT_EQ(p.req.query_param("low"), "~~");
    EXPECT_FALSE(p.req.query_param("missing").has_value());
    EXPECT_FALSE(p.req.query_param("nam").has_value());
    EXPECT_FALSE(p.req.query_param("").has_value());
}

TEST(HttpParse, CookiesByName) {
    auto p = parse("GET / HTTP/1.1\r\nHost: h\r\nCookie: session=abc; theme=dark;  spaced = v \r\n"
                   "Cookie: quoted=\"q v\"; empty=; session=second\r\n\r\n");
    ASSERT_EQ(p.error.status, 0);
    EXPECT_EQ(p.req.cookie("session"), "abc");   // the first one wins
    EXPECT_EQ(p.req.cookie("theme"), "dark");
    EXPECT_EQ(p.req.cookie("spaced"), "v");
    EXPECT_EQ(p.req.cookie("quoted"), "q v");
    EXPECT_EQ(p.req.cookie("empty"), "");
    EXPECT_FALSE(p.req.cookie("sess").has_value());
    EXPECT_FALSE(p.req.cookie("missing").has_value());
    auto chrome = parse(chrome_request);
    EXPECT_EQ(chrome.req.cookie("theme"), "dark");
    auto none = parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_FALSE(none.req.cookie("session").has_value());
}

TEST(HttpParse, BearerTokenFromHeaderSubprotocolOrQuery) {
    auto header = parse("GET /?access_token=q HTTP/1.1\r\nHost: h\r\nAuthorization: bearer  h.e.t \r\n"
                        "Sec-WebSocket-Protocol: access_token, p\r\n\r\n");
    EXPECT_EQ(header.req.bearer_token(), "h.e.t");   // the header first, scheme case-insensitive
    auto protocol = parse("GET /?access_token=q HTTP/1.1\r\nHost: h\r\nAuthorization: Basic dTpw\r\n"
                          "Sec-WebSocket-Protocol: chat, access_token, p.q-r\r\n\r\n");
    EXPECT_EQ(protocol.req.bearer_token(), "p.q-r");
    auto query = parse("GET /?access_token=a%2Bb HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Protocol: access_token\r\n\r\n");
    EXPECT_EQ(query.req.bearer_token(), "a+b");   // a marker with no token after it carries none
    auto none = parse("GET /?token=x&access_token= HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer \r\n\r\n");
    EXPECT_FALSE(none.req.bearer_token().has_value());
}

TEST(HttpParse, QueryParamWithoutQuery) {
    auto p = parse("GET /p HTTP/1.1\r\nHost: h\r\n\r\n");
    ASSERT_EQ(p.error.status, 0);
    EXPECT_FALSE(p.req.query_param("p").has_value());
    EXPECT_FALSE(p.req.query_param("").has_value());
}

TEST(HttpParse, PlainGetIsNotAnUpgrade) {
    auto p = parse("GET /health HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n");
    ASSERT_EQ(p.error.status, 0);
    auto d = gw::detail::check_upgrade(p.req);
    EXPECT_FALSE(d.is_upgrade);
    EXPECT_EQ(d.error.status, 0);
    EXPECT_TRUE(d.key.empty());
}

TEST(HttpParse, PlainGetWithOtherUpgradeIsNotAnUpgrade) {
    auto p = parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n");
    ASSERT_EQ(p.error.status, 0);
    auto d = gw::detail::check_upgrade(p.req);
    EXPECT_FALSE(d.is_upgrade);
    EXPECT_EQ(d.error.status, 0);
}

TEST(HttpParse, PlainHttp10GetIsNotAnUpgrade) {
    auto p = parse("GET / HTTP/1.0\r\n\r\n");
    ASSERT_EQ(p.error.status, 0);
    EXPECT_EQ(p.req.version_minor(), 0);
    auto d = gw::detail::check_upgrade(p.req);
    EXPECT_FALSE(d.is_upgrade);
    EXPECT_EQ(d.error.status, 0);
}

TEST(HttpParse, MissingCrlfOrBlankLineIs400) {
    for (std::string raw : {"GET / HTTP/1.1"s, "GET / HTTP/1.1\r\n"s, "GET / HTTP/1.1\r\nHost: h\r\n"s,
                            "GET / HTTP/1.1\r\nHost: h"s, "GET / HTTP/1.1\nHost: h\n\n"s,
                            "GET / HTTP/1.1\r\nHost: h\n\n"s, "GET / HTTP/1.1\r\nHost: h\r\n\n"s,
                            "GET / HTTP/1.1\r\nHost: h\r\r\n\r\n"s, ""s}) {
        EXPECT_EQ(parse(raw).error.status, 400) << hex(raw);
    }
}

TEST(HttpParse, BytesAfterTheBlankLineAre400) {
    EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: h\r\n\r\nX").error.status, 400);
    EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n\r\n").error.status, 400);
}

TEST(HttpParse, GarbageRequestLineIs400) {
    for (std::string line : {""s, "hello"s, "GET"s, "GET /"s, "GET / "s, "/ HTTP/1.1"s, " / HTTP/1.1"s,
                             "G(T / HTTP/1.1"s, "GE:T / HTTP/1.1"s, "\x16\x03\x01\x02\x00\x01\x00"s,
                             "GET / HTTP/1"s, "GET / HTTP/1.10"s, "GET / HTTP/1.x"s, "GET / HTTP/x.1"s,
                             "GET / HTTPS/1.1"s, "GET / HTTP-1.1"s, "GET / HTTP/1,1"s, "GET / FOO"s,
                             "GET /\x01 HTTP/1.1"s, "GET /a\x7F HTTP/1.1"s, "GET /a\tb HTTP/1.1"s,
                             "GET /\xFF\x00 HTTP/1.1"s}) {
        EXPECT_EQ(parse(line + "\r\nHost: h\r\n\r\n").error.status, 400) << hex(line);
    }
}

TEST(HttpParse, LowercaseVersionIs400) {
    EXPECT_EQ(parse("GET / http/1.1\r\nHost: h\r\n\r\n").error.status, 400);
    EXPECT_EQ(parse("GET / Http/1.1\r\nHost: h\r\n\r\n").error.status, 400);
}

TEST(HttpParse, LowercaseMethodIsAnotherMethod) {
    // Methods are case-sensitive: "get" parses but is not GET, so an upgrade with it is refused.
    auto p = parse(upgrade_request("get / HTTP/1.1"));
    ASSERT_EQ(p.error.status, 0);
    EXPECT_EQ(p.req.method(), "get");
    EXPECT_EQ(gw::detail::check_upgrade(p.req).error.status, 405);
}

TEST(HttpParse, ExtraSpacesInRequestLineAre400) {
    for (std::string line : {"GET  / HTTP/1.1"s, "GET /  HTTP/1.1"s, "GET / HTTP/1.1 "s, " GET / HTTP/1.1"s,
                             "GET\t/ HTTP/1.1"s, "GET / HTTP/1.1\t"s, "GET / a HTTP/1.1"s}) {
        EXPECT_EQ(parse(upgrade_request(line)).error.status, 400) << hex(line);
    }
}

TEST(HttpParse, TargetNotStartingWithSlashIs400) {
    for (std::string line : {"GET * HTTP/1.1"s, "GET chat HTTP/1.1"s, "GET http://h/chat HTTP/1.1"s,
                             "GET ?x=1 HTTP/1.1"s, "GET h:80 HTTP/1.1"s}) {
        EXPECT_EQ(parse(upgrade_request(line)).error.status, 400) << line;
    }
}

TEST(HttpParse, Http10UpgradeIs400) {
    EXPECT_EQ(upgrade_status(upgrade_request("GET /chat HTTP/1.0")), 400);
}

TEST(HttpParse, Http11MinorVersionsAreAccepted) {
    auto p = parse(upgrade_request("GET /chat HTTP/1.9"));
    ASSERT_EQ(p.error.status, 0);
    EXPECT_EQ(p.req.version_minor(), 9);
    EXPECT_EQ(gw::detail::check_upgrade(p.req).error.status, 0);
}

TEST(HttpParse, OtherMajorVersionsAre505) {
    for (auto line : {"GET /chat HTTP/2.0", "GET /chat HTTP/3.0", "GET /chat HTTP/0.9", "GET /chat HTTP/9.1"})
        EXPECT_EQ(parse(upgrade_request(line)).error.status, 505) << line;
}

TEST(HttpParse, NonGetUpgradeIs405) {
    for (auto line : {"POST /chat HTTP/1.1", "PUT /chat HTTP/1.1", "HEAD /chat HTTP/1.1", "OPTIONS /chat HTTP/1.1",
                      "CONNECT /chat HTTP/1.1"})
        EXPECT_EQ(upgrade_status(upgrade_request(line)), 405) << line;
}

TEST(HttpParse, MissingHostIs400) {
    EXPECT_EQ(upgrade_status("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"),
              400);
}

TEST(HttpParse, VersionOtherThan13Is426) {
    for (auto v : {"8", "7", "12", "14", "13, 8", "", "thirteen", "013"}) {
        std::string r = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: "s +
                        v + "\r\n\r\n";
        EXPECT_EQ(upgrade_status(r), 426) << v;
    }
}

TEST(HttpParse, MissingVersionIs426) {
    EXPECT_EQ(upgrade_status("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"),
              426);
}

TEST(HttpParse, BadOrMissingKeyIs400) {
    for (auto k : {"", "abc", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ=", "dGhlIHNhbXBsZSBub25jZ*==",
                   "QUFBQUFBQUFBQUFBQUFBQUE=", "dGhlIHNhbXBsZSBub25jZQ==dGhlIHNhbXBsZSBub25jZQ=="}) {
        std::string r = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: "s +
                        k + "\r\nSec-WebSocket-Version: 13\r\n\r\n";
        EXPECT_EQ(upgrade_status(r), 400) << k;
    }
    EXPECT_EQ(upgrade_status("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             "Sec-WebSocket-Version: 13\r\n\r\n"),
              400);
}

TEST(HttpParse, KeyAloneMakesItAnUpgrade) {
    // A request with Sec-WebSocket-Key but no Upgrade header is a broken upgrade, not a plain GET.
    auto p = parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n");
    ASSERT_EQ(p.error.status, 0);
    auto d = gw::detail::check_upgrade(p.req);
    EXPECT_TRUE(d.is_upgrade);
    EXPECT_EQ(d.error.status, 400);
}

TEST(HttpParse, HeaderWithoutColonIs400) {
    EXPECT_EQ(parse(upgrade_request("GET / HTTP/1.1", "NoColonHere\r\n")).error.status, 400);
    EXPECT_EQ(parse(upgrade_request("GET / HTTP/1.1", ": empty name\r\n")).error.status, 400);
    EXPECT_EQ(parse(upgrade_request("GET / HTTP/1.1", ":\r\n")).error.status, 400);
}

TEST(HttpParse, HeaderNameWithSpaceOrSeparatorIs400) {
    for (auto line : {"Host : h\r\n", "X Y: 1\r\n", "X\tY: 1\r\n", "X(Y): 1\r\n", "X/Y: 1\r\n", "X\"Y: 1\r\n",
                      "X\x01Y: 1\r\n", "X\x80Y: 1\r\n", "X@Y: 1\r\n"})
        EXPECT_EQ(parse(upgrade_request("GET / HTTP/1.1", line)).error.status, 400) << hex(line);
}

TEST(HttpParse, ObsoleteLineFoldingIs400) {
    EXPECT_EQ(parse(upgrade_request("GET / HTTP/1.1", "X-Long: part one\r\n part two\r\n")).error.status, 400);
    EXPECT_EQ(parse(upgrade_request("GET / HTTP/1.1", "X-Long: part one\r\n\tpart two\r\n")).error.status, 400);
    EXPECT_EQ(parse("GET / HTTP/1.1\r\n Host: h\r\n\r\n").error.status, 400);
}

TEST(HttpParse, ControlCharactersInValueAre400) {
    for (auto line : {"X: a\x01z\r\n"s, "X: a\x7Fz\r\n"s, "X: a\rz\r\n"s, "X: a\nz\r\n"s, "X: a\x1Bz\r\n"s,
                      "X: a\x00z\r\n"s, "X: \x00\r\n"s})
        EXPECT_EQ(parse(upgrade_request("GET / HTTP/1.1", line)).error.status, 400) << hex(line);
}

TEST(HttpParse, TabsAndHighBytesInValueAreAllowed) {
    auto p = parse(upgrade_request("GET / HTTP/1.1", "X: a\tb\r\nY: caf\xC3\xA9\r\n"));
    ASSERT_EQ(p.error.status, 0);
    EXPECT_EQ(p.req.header("X"), "a\tb");
    EXPECT_EQ(p.req.header("Y"), "caf\xC3\xA9");
}

TEST(HttpParse, LargeRequestKeepsOffsetsRight) {
    // Offsets are 16-bit: the last header of a request just under 64 KiB must still read back.
    std::string filler(60000, 'a');
    auto p = parse(upgrade_request("GET /big?q=1 HTTP/1.1", "X-Filler: " + filler + "\r\nX-Last: last\r\n"));
    ASSERT_EQ(p.error.status, 0);
    EXPECT_EQ(p.req.header("X-Filler"), filler);
    EXPECT_EQ(p.req.header("X-Last"), "last");
    EXPECT_EQ(gw::detail::check_upgrade(p.req).error.status, 0);
}

TEST(HttpParse, OversizedRequestIs431) {
    std::string raw = upgrade_request("GET / HTTP/1.1", "X-Filler: " + std::string(70000, 'a') + "\r\n");
    EXPECT_EQ(parse(raw).error.status, 431);
    std::string exact = "GET / HTTP/1.1\r\nX: \r\n\r\n";
    exact.insert(exact.size() - 4, std::string(0x10000 - exact.size(), 'b'));
    ASSERT_EQ(exact.size(), 0x10000u);
    EXPECT_EQ(parse(exact).error.status, 431);
    exact.erase(20, 1);   // 0xFFFF bytes: still fits
    auto p = parse(exact);
    ASSERT_EQ(p.error.status, 0);
    EXPECT_EQ(p.req.header("X")->size(), 0xFFFFu - 23u);
}

TEST(HttpParse, ParserCanBeReused) {
    gw::http_request req;
    ASSERT_EQ(gw::detail::request_parser::parse(chrome_request, req).status, 0);
    ASSERT_EQ(gw::detail::request_parser::parse("GET /x HTTP/1.1\r\nA: 1\r\n\r\n", req).status, 0);
    EXPECT_EQ(req.target(), "/x");
    EXPECT_EQ(req.query(), "");
    EXPECT_EQ(req.header("A"), "1");
    EXPECT_FALSE(req.header("Host").has_value());
}

// ============================================================================================
// 3. Frames
// ============================================================================================

bytes encode(opcode op, bool fin, std::uint64_t length, const std::array<unsigned char, 4>* mask = nullptr) {
    std::array<unsigned char, gw::detail::max_frame_header> buf;
    buf.fill(0xEE);
    std::size_t n = gw::detail::encode_header(buf.data(), op, fin, length, mask);
    return bytes(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
}

struct decoded {
    decode_status status;
    frame_header h;
    close_code code;
};

decoded decode(const bytes& in, bool expect_masked) {
    decoded d{};
    d.code = close_code::normal;
    d.status = gw::detail::decode_header(in, expect_masked, d.h, d.code);
    return d;
}

constexpr std::array<unsigned char, 4> test_key{0x37, 0xFA, 0x21, 0x3D};

TEST(Frame, MaxHeaderIs14) { EXPECT_EQ(gw::detail::max_frame_header, 14u); }

TEST(Frame, EncodeLengthBoundariesUnmasked) {
    EXPECT_EQ(encode(opcode::text, true, 0), make_bytes({0x81, 0x00}));
    EXPECT_EQ(encode(opcode::text, true, 1), make_bytes({0x81, 0x01}));
    EXPECT_EQ(encode(opcode::text, true, 125), make_bytes({0x81, 0x7D}));
    EXPECT_EQ(encode(opcode::text, true, 126), make_bytes({0x81, 0x7E, 0x00, 0x7E}));
    EXPECT_EQ(encode(opcode::text, true, 127), make_bytes({0x81, 0x7E, 0x00, 0x7F}));
    EXPECT_EQ(encode(opcode::text, true, 256), make_bytes({0x81, 0x7E, 0x01, 0x00}));
    EXPECT_EQ(encode(opcode::text, true, 65535), make_bytes({0x81, 0x7E, 0xFF, 0xFF}));
    EXPECT_EQ(encode(opcode::text, true, 65536), make_bytes({0x81, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0}));
    EXPECT_EQ(encode(opcode::text, true, 0xFFFFFFFFull), make_bytes({0x81, 0x7F, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF}));
    EXPECT_EQ(encode(opcode::text, true, 1ull << 32), make_bytes({0x81, 0x7F, 0, 0, 0, 1, 0, 0, 0, 0}));
    EXPECT_EQ(encode(opcode::text, true, 0x0102030405060708ull),
              make_bytes({0x81, 0x7F, 1, 2, 3, 4, 5, 6, 7, 8}));
    EXPECT_EQ(encode(opcode::text, true, (1ull << 63) - 1),
              make_bytes({0x81, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}));
}

TEST(Frame, EncodeLengthBoundariesMasked) {
    const auto* k = &test_key;
    EXPECT_EQ(encode(opcode::binary, true, 0, k), make_bytes({0x82, 0x80, 0x37, 0xFA, 0x21, 0x3D}));
    EXPECT_EQ(encode(opcode::binary, true, 125, k), make_bytes({0x82, 0xFD, 0x37, 0xFA, 0x21, 0x3D}));
    EXPECT_EQ(encode(opcode::binary, true, 126, k), make_bytes({0x82, 0xFE, 0x00, 0x7E, 0x37, 0xFA, 0x21, 0x3D}));
    EXPECT_EQ(encode(opcode::binary, true, 65535, k), make_bytes({0x82, 0xFE, 0xFF, 0xFF, 0x37, 0xFA, 0x21, 0x3D}));
    EXPECT_EQ(encode(opcode::binary, true, 65536, k),
              make_bytes({0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 0x37, 0xFA, 0x21, 0x3D}));
    EXPECT_EQ(encode(opcode::binary, true, 1ull << 32, k),
              make_bytes({0x82, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0, 0x37, 0xFA, 0x21, 0x3D}));
    EXPECT_EQ(encode(opcode::binary, true, (1ull << 63) - 1, k),
              make_bytes({0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x37, 0xFA, 0x21, 0x3D}));
}

TEST(Frame, EncodeFirstByteForEachOpcodeAndFin) {
    struct row {
        opcode op;
        int value;
    };
    for (auto [op, value] : {row{opcode::continuation, 0}, row{opcode::text, 1}, row{opcode::binary, 2},
                             row{opcode::close, 8}, row{opcode::ping, 9}, row{opcode::pong, 10}}) {
        EXPECT_EQ(encode(op, true, 3)[0], 0x80 | value);
        EXPECT_EQ(encode(op, false, 3)[0], value);
    }
}

TEST(Frame, Rfc6455Examples) {
    // Section 5.7.
    EXPECT_EQ(encode(opcode::text, true, 5), make_bytes({0x81, 0x05}));
    EXPECT_EQ(encode(opcode::text, true, 5, &test_key), make_bytes({0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D}));
    EXPECT_EQ(encode(opcode::text, false, 3), make_bytes({0x01, 0x03}));
    EXPECT_EQ(encode(opcode::continuation, true, 2), make_bytes({0x80, 0x02}));
    EXPECT_EQ(encode(opcode::ping, true, 5), make_bytes({0x89, 0x05}));
    EXPECT_EQ(encode(opcode::pong, true, 5, &test_key), make_bytes({0x8A, 0x85, 0x37, 0xFA, 0x21, 0x3D}));
    EXPECT_EQ(encode(opcode::binary, true, 256), make_bytes({0x82, 0x7E, 0x01, 0x00}));
    EXPECT_EQ(encode(opcode::binary, true, 65536), make_bytes({0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0}));

    // A masked "Hello" from a client, decoded and unmasked.
    bytes wire = make_bytes({0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58});
    auto d = decode(wire, true);
    ASSERT_EQ(d.status, decode_status::ok);
    EXPECT_TRUE(d.h.fin);
    EXPECT_EQ(d.h.op, opcode::text);
    EXPECT_TRUE(d.h.masked);
    EXPECT_EQ(d.h.length, 5u);
    EXPECT_EQ(d.h.size, 6u);
    EXPECT_EQ(d.h.mask, test_key);
    EXPECT_EQ(gw::detail::apply_mask(wire.data() + 6, 5, d.h.mask), 1u);
    EXPECT_EQ(std::string(wire.begin() + 6, wire.end()), "Hello");
}

TEST(Frame, RoundTripEveryOpcodeLengthFinAndMask) {
    const std::uint64_t lengths[] = {0, 1, 125, 126, 127, 65535, 65536, 1ull << 32, (1ull << 63) - 1};
    for (opcode op : {opcode::continuation, opcode::text, opcode::binary, opcode::close, opcode::ping, opcode::pong}) {
        for (std::uint64_t len : lengths) {
            for (bool fin : {true, false}) {
                for (bool masked : {false, true}) {
                    if (gw::detail::is_control(op) && (!fin || len > 125)) continue;
                    bytes wire = encode(op, fin, len, masked ? &test_key : nullptr);
                    std::size_t expected_size = (len < 126 ? 2 : len <= 0xFFFF ? 4 : 10) + (masked ? 4 : 0);
                    ASSERT_EQ(wire.size(), expected_size);
                    EXPECT_EQ(gw::detail::header_size(wire[1]), expected_size);
                    bytes with_payload = wire;
                    with_payload.insert(with_payload.end(), 20, 0xAB);
                    for (const bytes* in : {&wire, &with_payload}) {
                        auto d = decode(*in, masked);
                        ASSERT_EQ(d.status, decode_status::ok) << hex(wire);
                        EXPECT_EQ(d.h.fin, fin);
                        EXPECT_EQ(d.h.rsv, 0);
                        EXPECT_EQ(d.h.op, op);
                        EXPECT_EQ(d.h.masked, masked);
                        EXPECT_EQ(d.h.length, len);
                        EXPECT_EQ(d.h.size, expected_size);
                        if (masked) {
                            EXPECT_EQ(d.h.mask, test_key);
                        }
                    }
                }
            }
        }
    }
}

TEST(Frame, DecodeNeedsMoreAtEveryTruncation) {
    const std::uint64_t lengths[] = {0, 125, 126, 65535, 65536, 1ull << 32, (1ull << 63) - 1};
    for (std::uint64_t len : lengths) {
        for (bool masked : {false, true}) {
            bytes wire = encode(opcode::binary, true, len, masked ? &test_key : nullptr);
            for (std::size_t k = 0; k < wire.size(); ++k) {
                bytes part(wire.begin(), wire.begin() + static_cast<std::ptrdiff_t>(k));
                EXPECT_EQ(decode(part, masked).status, decode_status::need_more) << hex(wire) << " cut at " << k;
            }
            EXPECT_EQ(decode(wire, masked).status, decode_status::ok);
        }
    }
}

TEST(Frame, DecodeMaxLengthFields) {
    auto d = decode(make_bytes({0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}), false);
    ASSERT_EQ(d.status, decode_status::ok);
    EXPECT_EQ(d.h.length, 0x7FFFFFFFFFFFFFFFull);
    d = decode(make_bytes({0x82, 0x7E, 0xAB, 0xCD}), false);
    ASSERT_EQ(d.status, decode_status::ok);
    EXPECT_EQ(d.h.length, 0xABCDu);
    d = decode(make_bytes({0x82, 0x7F, 0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF}), false);
    ASSERT_EQ(d.status, decode_status::ok);
    EXPECT_EQ(d.h.length, 0x0123456789ABCDEFull);
}

void expect_protocol_error(const bytes& in, bool expect_masked) {
    auto d = decode(in, expect_masked);
    EXPECT_EQ(d.status, decode_status::error) << hex(in) << (expect_masked ? " (expect masked)" : "");
    EXPECT_EQ(d.code, close_code::protocol_error) << hex(in);
}

TEST(FrameErrors, ReservedBitsAre1002) {
    for (int rsv : {0x40, 0x20, 0x10, 0x60, 0x70}) {
        expect_protocol_error(make_bytes({0x81 | rsv, 0x00}), false);
        expect_protocol_error(make_bytes({0x81 | rsv, 0x80, 1, 2, 3, 4}), true);
        expect_protocol_error(make_bytes({0x89 | rsv, 0x00}), false);
        expect_protocol_error(make_bytes({0x00 | rsv, 0x00}), false);
    }
}

TEST(FrameErrors, ReservedOpcodesAre1002) {
    for (int op : {3, 4, 5, 6, 7, 11, 12, 13, 14, 15}) {
        expect_protocol_error(make_bytes({0x80 | op, 0x00}), false);
        expect_protocol_error(make_bytes({op, 0x00}), false);
        expect_protocol_error(make_bytes({0x80 | op, 0x85, 1, 2, 3, 4}), true);
    }
}

TEST(FrameErrors, FragmentedControlFrameIs1002) {
    for (int op : {8, 9, 10}) {
        expect_protocol_error(make_bytes({op, 0x00}), false);
        expect_protocol_error(make_bytes({op, 0x82, 1, 2, 3, 4}), true);
    }
}

TEST(FrameErrors, ControlFrameOver125BytesIs1002) {
    for (int op : {8, 9, 10}) {
        expect_protocol_error(make_bytes({0x80 | op, 0x7E, 0x00, 0x7E}), false);
        expect_protocol_error(make_bytes({0x80 | op, 0x7E, 0xFF, 0xFF}), false);
        expect_protocol_error(make_bytes({0x80 | op, 0xFE, 0x00, 0x7E, 1, 2, 3, 4}), true);
        expect_protocol_error(make_bytes({0x80 | op, 0x7F, 0, 0, 0, 0, 0, 0, 0, 0x7E}), false);
        expect_protocol_error(make_bytes({0x80 | op, 0x7F, 0, 0, 0, 1, 0, 0, 0, 0}), false);
        // 125 is the largest allowed.
        EXPECT_EQ(decode(make_bytes({0x80 | op, 0x7D}), false).status, decode_status::ok);
    }
}

TEST(FrameErrors, MaskMismatchIs1002) {
    // A server expects masked frames from clients...
    expect_protocol_error(make_bytes({0x81, 0x05}), true);
    expect_protocol_error(make_bytes({0x81, 0x00}), true);
    expect_protocol_error(make_bytes({0x88, 0x00}), true);
    expect_protocol_error(make_bytes({0x82, 0x7E, 0x01, 0x00}), true);
    // ...and a client expects unmasked frames from servers.
    expect_protocol_error(make_bytes({0x81, 0x85, 1, 2, 3, 4}), false);
    expect_protocol_error(make_bytes({0x89, 0x80, 1, 2, 3, 4}), false);
    expect_protocol_error(make_bytes({0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4}), false);
}

TEST(FrameErrors, SixtyFourBitLengthWithTopBitIs1002) {
    expect_protocol_error(make_bytes({0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0}), false);
    expect_protocol_error(make_bytes({0x82, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}), false);
    expect_protocol_error(make_bytes({0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}), true);
}

TEST(Frame, HeaderSizeForEverySecondByte) {
    for (int b1 = 0; b1 < 256; ++b1) {
        std::size_t len7 = static_cast<std::size_t>(b1 & 0x7F);
        std::size_t expected = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((b1 & 0x80) ? 4 : 0);
        EXPECT_EQ(gw::detail::header_size(static_cast<unsigned char>(b1)), expected) << b1;
    }
    EXPECT_EQ(gw::detail::header_size(0x00), 2u);
    EXPECT_EQ(gw::detail::header_size(0x7D), 2u);
    EXPECT_EQ(gw::detail::header_size(0x7E), 4u);
    EXPECT_EQ(gw::detail::header_size(0x7F), 10u);
    EXPECT_EQ(gw::detail::header_size(0x80), 6u);
    EXPECT_EQ(gw::detail::header_size(0xFE), 8u);
    EXPECT_EQ(gw::detail::header_size(0xFF), 14u);
}

TEST(Frame, IsControl) {
    EXPECT_FALSE(gw::detail::is_control(opcode::continuation));
    EXPECT_FALSE(gw::detail::is_control(opcode::text));
    EXPECT_FALSE(gw::detail::is_control(opcode::binary));
    EXPECT_TRUE(gw::detail::is_control(opcode::close));
    EXPECT_TRUE(gw::detail::is_control(opcode::ping));
    EXPECT_TRUE(gw::detail::is_control(opcode::pong));
}

// ============================================================================================
// 4. Masking
// ============================================================================================

std::size_t reference_mask(unsigned char* data, std::size_t n, std::array<unsigned char, 4> key, std::size_t phase) {
    for (std::size_t i = 0; i < n; ++i) data[i] ^= key[(phase + i) % 4];
    return (phase + n) % 4;
}

bytes pattern_bytes(std::size_t n, unsigned seed) {
    bytes b(n);
    for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<unsigned char>((i * 131 + seed * 7 + 3) & 0xFF);
    return b;
}

TEST(Mask, MatchesBytewiseReference) {
    const std::array<unsigned char, 4> keys[] = {{0x37, 0xFA, 0x21, 0x3D}, {0, 0, 0, 0}, {0xFF, 0xFF, 0xFF, 0xFF},
                                                  {0x01, 0x02, 0x04, 0x80}};
    for (const auto& key : keys) {
        for (std::size_t len = 0; len <= 67; ++len) {
            for (std::size_t phase = 0; phase < 4; ++phase) {
                for (std::size_t offset = 0; offset < 8; ++offset) {
                    bytes buf = pattern_bytes(len + 16, static_cast<unsigned>(len));
                    bytes ref = buf;
                    std::size_t got = gw::detail::apply_mask(buf.data() + offset, len, key, phase);
                    std::size_t want = reference_mask(ref.data() + offset, len, key, phase);
                    ASSERT_EQ(got, want) << "len " << len << " phase " << phase << " offset " << offset;
                    ASSERT_EQ(buf, ref) << "len " << len << " phase " << phase << " offset " << offset;
                }
            }
        }
    }
}

TEST(Mask, PhaseIsTakenModulo4) {
    for (std::size_t phase = 4; phase < 12; ++phase) {
        bytes a = pattern_bytes(21, 1), b = a;
        EXPECT_EQ(gw::detail::apply_mask(a.data(), a.size(), test_key, phase), (phase + 21) % 4);
        reference_mask(b.data(), b.size(), test_key, phase % 4);
        EXPECT_EQ(a, b);
    }
}

TEST(Mask, MaskingTwiceRestoresInput) {
    for (std::size_t len = 0; len <= 67; ++len) {
        for (std::size_t phase = 0; phase < 4; ++phase) {
            bytes original = pattern_bytes(len, 9), buf = original;
            gw::detail::apply_mask(buf.data(), len, test_key, phase);
            if (len >= 4) {
                EXPECT_NE(buf, original);
            }
            gw::detail::apply_mask(buf.data(), len, test_key, phase);
            EXPECT_EQ(buf, original) << len << " " << phase;
        }
    }
}

TEST(Mask, ChunkedMaskingContinuesPhase) {
    const std::size_t len = 67;
    const bytes original = pattern_bytes(len, 5);
    bytes whole = original;
    reference_mask(whole.data(), len, test_key, 0);
    // Every split into two and three chunks.
    for (std::size_t a = 0; a <= len; ++a) {
        for (std::size_t b = a; b <= len; ++b) {
            bytes buf = original;
            std::size_t phase = 0;
            phase = gw::detail::apply_mask(buf.data(), a, test_key, phase);
            phase = gw::detail::apply_mask(buf.data() + a, b - a, test_key, phase);
            phase = gw::detail::apply_mask(buf.data() + b, len - b, test_key, phase);
            ASSERT_EQ(phase, len % 4);
            ASSERT_EQ(buf, whole) << "split at " << a << ", " << b;
        }
    }
}

TEST(Mask, ChunkedByteByByte) {
    bytes buf = pattern_bytes(40, 2), whole = buf;
    reference_mask(whole.data(), whole.size(), test_key, 0);
    std::size_t phase = 0;
    for (std::size_t i = 0; i < buf.size(); ++i) {
        phase = gw::detail::apply_mask(buf.data() + i, 1, test_key, phase);
        EXPECT_EQ(phase, (i + 1) % 4);
    }
    EXPECT_EQ(buf, whole);
}

// ============================================================================================
// 5. UTF-8
// ============================================================================================

// A plain reference: decode code points, reject overlong, surrogates and > U+10FFFF.
bool reference_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        auto b = static_cast<unsigned char>(s[i]);
        if (b < 0x80) { ++i; continue; }
        std::size_t len;
        std::uint32_t cp;
        if ((b & 0xE0) == 0xC0) len = 2, cp = b & 0x1F;
        else if ((b & 0xF0) == 0xE0) len = 3, cp = b & 0x0F;
        else if ((b & 0xF8) == 0xF0) len = 4, cp = b & 0x07;
        else return false;
        if (i + len > s.size()) return false;
        for (std::size_t k = 1; k < len; ++k) {
            auto c = static_cast<unsigned char>(s[i + k]);
            if ((c & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (c & 0x3F);
        }
        const std::uint32_t min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

// True when some continuation makes s valid: the reference for "feed() has not failed yet".
bool reference_prefix_ok(std::string_view s) {
    if (reference_utf8(s)) return true;
    std::string t(s);   // one allocation, then try every completion in place
    for (std::size_t missing = 1; missing <= 3; ++missing) {
        // The second byte of a sequence decides the ranges; later ones can be 0x80.
        t.resize(s.size() + missing, '\x80');
        for (int c = 0x80; c <= 0xBF; ++c) {
            t[s.size()] = static_cast<char>(c);
            if (reference_utf8(t)) return true;
        }
    }
    return false;
}

// Index of the first byte after which no continuation is valid; npos when s is a valid prefix.
std::size_t reference_first_bad(std::string_view s) {
    for (std::size_t k = 1; k <= s.size(); ++k)
        if (!reference_prefix_ok(s.substr(0, k))) return k - 1;
    return std::string_view::npos;
}

// Byte by byte: the index at which feed() first fails, or npos.
std::size_t validator_first_bad(std::string_view s) {
    gw::detail::utf8_validator v;
    for (std::size_t i = 0; i < s.size(); ++i)
        if (!v.feed(s.substr(i, 1))) return i;
    return std::string_view::npos;
}

const std::vector<std::string> valid_utf8 = {
    "",
    "a",
    "Hello, World! 0123456789 ~",
    std::string(1, '\0'),
    std::string("a\0b\x7F", 4),
    "\xC2\x80",                  // U+0080
    "\xC2\xA9",                  // ©
    "\xDF\xBF",                  // U+07FF
    "\xE0\xA0\x80",              // U+0800
    "\xE2\x82\xAC",              // €
    "\xED\x9F\xBF",              // U+D7FF
    "\xEE\x80\x80",              // U+E000
    "\xEF\xBB\xBF",              // BOM
    "\xEF\xBF\xBE",              // U+FFFE
    "\xEF\xBF\xBF",              // U+FFFF
    "\xF0\x90\x80\x80",          // U+10000
    "\xF0\x9F\x98\x80",          // 😀
    "\xF3\xBF\xBF\xBF",          // U+FFFFF
    "\xF4\x80\x80\x80",          // U+100000
    "\xF4\x8F\xBF\xBF",          // U+10FFFF
    "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5",   // κόσμε (Autobahn 6.2)
    "Hello-\xC2\xB5@\xC3\x9F\xC3\xB6\xC3\xA4\xC3\xBC\xC3\xA0\xC3\xA1-UTF-8!!",   // Autobahn 6.1/6.2
    "\xE2\x82\xAC\xF0\x9F\x98\x80 mixed \xC3\xA9\xED\x9F\xBF\xEE\x80\x80 text \xF4\x8F\xBF\xBF end",
};

struct bad_utf8 {
    std::string s;
    std::size_t first_bad;   // the byte at which feed() must fail
};

const std::vector<bad_utf8> invalid_utf8 = {
    {"\x80", 0},
    {"\xBF", 0},
    {"a\x80" "b", 1},
    {"\xC2\x80\x80", 2},                   // extra continuation
    {"\xC0\x80", 0},                       // overlong NUL
    {"\xC0\xAF", 0},
    {"\xC1\xBF", 0},                       // overlong U+007F
    {"\xE0\x80\x80", 1},                   // overlong 3-byte
    {"\xE0\x80\xAF", 1},
    {"\xE0\x9F\xBF", 1},                   // overlong U+07FF
    {"\xF0\x80\x80\x80", 1},               // overlong 4-byte
    {"\xF0\x80\x80\xAF", 1},
    {"\xF0\x8F\xBF\xBF", 1},               // overlong U+FFFF
    {"\xED\xA0\x80", 1},                   // U+D800
    {"\xED\xAD\xBF", 1},                   // U+DB7F
    {"\xED\xB0\x80", 1},                   // U+DC00
    {"\xED\xBF\xBF", 1},                   // U+DFFF
    {"\xED\xA0\x80\xED\xB0\x80", 1},       // surrogate pair
    {"\xF4\x90\x80\x80", 1},               // U+110000
    {"\xF4\xBF\xBF\xBF", 1},
    {"\xF5\x80\x80\x80", 0},
    {"\xF7\xBF\xBF\xBF", 0},
    {"\xF8\x88\x80\x80\x80", 0},           // 5-byte form
    {"\xFC\x84\x80\x80\x80\x80", 0},       // 6-byte form
    {"\xFE", 0},
    {"\xFF", 0},
    {"\xC2\x41", 1},                       // lead byte then ASCII
    {"\xC2\xC2", 1},                       // lead byte then lead byte
    {"\xE1\x80\x41", 2},
    {"\xE1\x41", 1},
    {"\xF1\x80\x80\x41", 3},
    {"\xF1\x80\x80\xC0", 3},
    {"\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80\x65\x64\x69\x74\x65\x64", 12},   // Autobahn 6.3.1
};

const std::vector<std::string> truncated_utf8 = {
    "\xC2", "\xDF", "\xE0", "\xE0\xA0", "\xE2\x82", "\xED\x9F", "\xF0", "\xF0\x90", "\xF0\x90\x80",
    "\xF4\x8F\xBF", "abc\xCE", "\xCE\xBA\xE1\xBD", "0123456789abcdef\xF0\x9F\x98",
};

TEST(Utf8, ValidStrings) {
    for (const auto& s : valid_utf8) {
        EXPECT_TRUE(gw::detail::is_valid_utf8(s)) << hex(s);
        EXPECT_TRUE(reference_utf8(s)) << hex(s);
        gw::detail::utf8_validator v;
        EXPECT_TRUE(v.feed(s));
        EXPECT_TRUE(v.complete());
    }
}

TEST(Utf8, ValidStringsSplitAtEveryBoundary) {
    for (const auto& s : valid_utf8) {
        for (std::size_t a = 0; a <= s.size(); ++a) {
            for (std::size_t b = a; b <= s.size(); ++b) {
                gw::detail::utf8_validator v;
                ASSERT_TRUE(v.feed(std::string_view(s).substr(0, a))) << hex(s) << " at " << a;
                ASSERT_TRUE(v.feed(std::string_view(s).substr(a, b - a))) << hex(s) << " at " << a << "," << b;
                ASSERT_TRUE(v.feed(std::string_view(s).substr(b))) << hex(s) << " at " << a << "," << b;
                EXPECT_TRUE(v.complete());
            }
        }
    }
}

TEST(Utf8, ValidStringsByteByByte) {
    for (const auto& s : valid_utf8) {
        gw::detail::utf8_validator v;
        for (std::size_t i = 0; i < s.size(); ++i) {
            ASSERT_TRUE(v.feed(std::string_view(s).substr(i, 1))) << hex(s) << " at " << i;
            EXPECT_EQ(v.complete(), reference_utf8(std::string_view(s).substr(0, i + 1)));
        }
        EXPECT_TRUE(v.complete());
    }
}

TEST(Utf8, InvalidStrings) {
    for (const auto& [s, first_bad] : invalid_utf8) {
        EXPECT_FALSE(gw::detail::is_valid_utf8(s)) << hex(s);
        EXPECT_FALSE(reference_utf8(s)) << hex(s);
        EXPECT_EQ(reference_first_bad(s), first_bad) << hex(s);   // the table itself is right
        gw::detail::utf8_validator v;
        EXPECT_FALSE(v.feed(s)) << hex(s);
    }
}

TEST(Utf8, EveryByteF5ToFFIsInvalid) {
    for (int b = 0xF5; b <= 0xFF; ++b) {
        std::string s(1, static_cast<char>(b));
        EXPECT_FALSE(gw::detail::is_valid_utf8(s)) << b;
        EXPECT_FALSE(gw::detail::is_valid_utf8(s + "\x80\x80\x80")) << b;
        EXPECT_FALSE(gw::detail::is_valid_utf8("abcdefgh" + s)) << b;
    }
    EXPECT_FALSE(gw::detail::is_valid_utf8("\xC0"));
    EXPECT_FALSE(gw::detail::is_valid_utf8("\xC1"));
}

TEST(Utf8, InvalidFailsAtTheFirstBadByte) {
    for (const auto& [s, first_bad] : invalid_utf8)
        EXPECT_EQ(validator_first_bad(s), first_bad) << hex(s);
}

TEST(Utf8, InvalidFailsFastInTheChunkWithTheBadByte) {
    // A valid prefix, then the bad sequence, then more valid bytes. For every split that puts the first
    // bad byte in the second chunk, chunk one passes and chunk two fails.
    const std::string prefix = "ok \xC3\xA9\xE2\x82\xAC ascii run ";
    const std::string suffix = " more valid text \xF0\x9F\x98\x80 after";
    for (const auto& [bad, first_bad] : invalid_utf8) {
        const std::string s = prefix + bad + suffix;
        const std::size_t at = prefix.size() + first_bad;
        ASSERT_EQ(reference_first_bad(s), at) << hex(s);
        for (std::size_t a = 0; a <= at; ++a) {
            for (std::size_t b = at + 1; b <= s.size(); ++b) {
                gw::detail::utf8_validator v;
                ASSERT_TRUE(v.feed(std::string_view(s).substr(0, a))) << hex(bad) << " split " << a;
                ASSERT_FALSE(v.feed(std::string_view(s).substr(a, b - a))) << hex(bad) << " split " << a << "," << b;
            }
        }
    }
}

TEST(Utf8, TruncatedAtTheEndIsIncomplete) {
    for (const auto& s : truncated_utf8) {
        gw::detail::utf8_validator v;
        EXPECT_TRUE(v.feed(s)) << hex(s);
        EXPECT_FALSE(v.complete()) << hex(s);
        EXPECT_FALSE(gw::detail::is_valid_utf8(s)) << hex(s);
    }
}

TEST(Utf8, TruncatedThenCompletedInLaterChunk) {
    gw::detail::utf8_validator v;
    EXPECT_TRUE(v.feed("abc\xF0"));
    EXPECT_FALSE(v.complete());
    EXPECT_TRUE(v.feed("\x9F"));
    EXPECT_FALSE(v.complete());
    EXPECT_TRUE(v.feed("\x98"));
    EXPECT_FALSE(v.complete());
    EXPECT_TRUE(v.feed("\x80xyz"));
    EXPECT_TRUE(v.complete());
    // A truncated sequence followed by ASCII in the next chunk fails there.
    gw::detail::utf8_validator w;
    EXPECT_TRUE(w.feed("\xE2\x82"));
    EXPECT_FALSE(w.feed("A"));
}

TEST(Utf8, ResetForgetsAPartialSequence) {
    gw::detail::utf8_validator v;
    EXPECT_TRUE(v.feed("\xE2\x82"));
    EXPECT_FALSE(v.complete());
    v.reset();
    EXPECT_TRUE(v.complete());
    EXPECT_TRUE(v.feed("A"));
    EXPECT_TRUE(v.complete());
}

TEST(Utf8, AsciiFastPathBoundaries) {
    // A multibyte (or bad) character at every offset of strings around the 8-byte word size.
    const std::string inserts[] = {"\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xED\x9F\xBF", "\xF4\x8F\xBF\xBF"};
    const std::string bad_inserts[] = {"\x80", "\xC0\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xFF", "\xC3"};
    for (std::size_t len : {7u, 8u, 9u, 15u, 16u, 17u, 24u, 25u, 31u, 32u, 33u}) {
        for (std::size_t unaligned = 0; unaligned < 8; ++unaligned) {
            // Good characters: strings of exactly len bytes.
            for (const auto& ins : inserts) {
                if (ins.size() > len) continue;
                for (std::size_t at = 0; at + ins.size() <= len; ++at) {
                    std::string s(len, 'x');
                    s.replace(at, ins.size(), ins);
                    std::string storage = std::string(unaligned, '-') + s;
                    std::string_view view = std::string_view(storage).substr(unaligned);
                    EXPECT_TRUE(gw::detail::is_valid_utf8(view)) << hex(s);
                    // Truncated at the end: only the last character's bytes are missing.
                    if (at + ins.size() == len) {
                        gw::detail::utf8_validator v;
                        EXPECT_TRUE(v.feed(view.substr(0, len - 1))) << hex(s);
                        EXPECT_FALSE(v.complete()) << hex(s);
                    }
                }
            }
            // Bad characters: the validator must fail at exactly the reference's byte.
            for (const auto& ins : bad_inserts) {
                for (std::size_t at = 0; at < len; ++at) {
                    std::string s(len, 'x');
                    s.replace(at, std::min(ins.size(), len - at), ins.substr(0, len - at));
                    std::string storage = std::string(unaligned, '-') + s;
                    std::string_view view = std::string_view(storage).substr(unaligned);
                    EXPECT_EQ(gw::detail::is_valid_utf8(view), reference_utf8(s)) << hex(s);
                    gw::detail::utf8_validator v;
                    const std::size_t bad = reference_first_bad(s);
                    if (bad == std::string_view::npos) {
                        EXPECT_TRUE(v.feed(view)) << hex(s);
                    } else {
                        // Chunk one ends just before the bad byte; chunk two holds it and the rest.
                        EXPECT_TRUE(v.feed(view.substr(0, bad))) << hex(s);
                        EXPECT_FALSE(v.feed(view.substr(bad))) << hex(s);
                    }
                }
            }
        }
    }
}

TEST(Utf8, AgreesWithReferenceOnAllTwoByteStrings) {
    for (int a = 0; a < 256; ++a) {
        for (int b = 0; b < 256; ++b) {
            const char raw[2] = {static_cast<char>(a), static_cast<char>(b)};
            std::string_view s(raw, 2);
            ASSERT_EQ(gw::detail::is_valid_utf8(s), reference_utf8(s)) << hex(s);
            ASSERT_EQ(validator_first_bad(s), reference_first_bad(s)) << hex(s);
        }
    }
}

TEST(Utf8, AgreesWithReferenceOnBoundaryBytes) {
    // All 4-byte strings over the bytes where UTF-8's ranges change.
    const unsigned char edge[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0,
                                  0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF7, 0xF8, 0xFF};
    for (unsigned char a : edge)
        for (unsigned char b : edge)
            for (unsigned char c : edge)
                for (unsigned char d : edge) {
                    const char raw[4] = {static_cast<char>(a), static_cast<char>(b), static_cast<char>(c),
                                         static_cast<char>(d)};
                    std::string_view s(raw, 4);
                    ASSERT_EQ(gw::detail::is_valid_utf8(s), reference_utf8(s)) << hex(s);
                    gw::detail::utf8_validator v;
                    bool fed = v.feed(s);
                    ASSERT_EQ(fed, reference_first_bad(s) == std::string_view::npos) << hex(s);
                    if (fed) {
                        ASSERT_EQ(v.complete(), reference_utf8(s)) << hex(s);
                    }
                }
}

TEST(Utf8, AllCodePointsEncodeValid) {
    // Every scalar value, encoded by hand, is accepted; every surrogate is refused.
    for (std::uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
        std::string s;
        if (cp < 0x80) s += static_cast<char>(cp);
        else if (cp < 0x800) s += static_cast<char>(0xC0 | (cp >> 6)), s += static_cast<char>(0x80 | (cp & 0x3F));
        else if (cp < 0x10000) {
            s += static_cast<char>(0xE0 | (cp >> 12));
            s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            s += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            s += static_cast<char>(0xF0 | (cp >> 18));
            s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            s += static_cast<char>(0x80 | (cp & 0x3F));
        }
        const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
        ASSERT_EQ(gw::detail::is_valid_utf8(s), !surrogate) << std::hex << cp;
    }
}

// ============================================================================================
// 6. Close rules
// ============================================================================================

TEST(Close, ValidCodesFollowTheRule) {
    for (int c = 0; c < 6000; ++c) {
        const bool expected = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1011) || (c >= 3000 && c <= 4999);
        EXPECT_EQ(gw::detail::is_valid_close_code(static_cast<std::uint16_t>(c)), expected) << c;
    }
    EXPECT_FALSE(gw::detail::is_valid_close_code(65535));
}

TEST(Close, NamedCodes) {
    auto ok = [](close_code c) { return gw::detail::is_valid_close_code(static_cast<std::uint16_t>(c)); };
    EXPECT_TRUE(ok(close_code::normal));
    EXPECT_TRUE(ok(close_code::going_away));
    EXPECT_TRUE(ok(close_code::protocol_error));
    EXPECT_TRUE(ok(close_code::unsupported_data));
    EXPECT_FALSE(ok(close_code::no_status));
    EXPECT_FALSE(ok(close_code::abnormal));
    EXPECT_TRUE(ok(close_code::invalid_payload));
    EXPECT_TRUE(ok(close_code::policy_violation));
    EXPECT_TRUE(ok(close_code::message_too_big));
    EXPECT_TRUE(ok(close_code::mandatory_extension));
    EXPECT_TRUE(ok(close_code::internal_error));
}

std::string close_payload(std::uint16_t code, std::string_view reason = "") {
    std::string p;
    p += static_cast<char>(code >> 8);
    p += static_cast<char>(code & 0xFF);
    p += reason;
    return p;
}

TEST(Close, EmptyPayloadIsOk) { EXPECT_EQ(gw::detail::check_close_payload(""), 0); }

TEST(Close, OneBytePayloadIs1002) {
    EXPECT_EQ(gw::detail::check_close_payload("\x03"), 1002);
    EXPECT_EQ(gw::detail::check_close_payload(std::string(1, '\0')), 1002);
}

TEST(Close, InvalidCodeIs1002) {
    for (std::uint16_t c : {0, 1, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
        EXPECT_EQ(gw::detail::check_close_payload(close_payload(c)), 1002) << c;
        EXPECT_EQ(gw::detail::check_close_payload(close_payload(c, "bye")), 1002) << c;
    }
}

TEST(Close, ValidCodeWithoutReasonIsOk) {
    for (std::uint16_t c : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999})
        EXPECT_EQ(gw::detail::check_close_payload(close_payload(c)), 0) << c;
    EXPECT_EQ(gw::detail::check_close_payload("\x03\xE8"), 0);   // 1000 by hand
}

TEST(Close, ValidCodeWithUtf8ReasonIsOk) {
    EXPECT_EQ(gw::detail::check_close_payload(close_payload(1000, "bye")), 0);
    EXPECT_EQ(gw::detail::check_close_payload(close_payload(1001, "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5")), 0);
    EXPECT_EQ(gw::detail::check_close_payload(close_payload(4000, "\xF4\x8F\xBF\xBF")), 0);
}

TEST(Close, InvalidUtf8ReasonIs1007) {
    for (auto reason : {"\xFF", "bye\x80", "\xC0\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xCE", "ab\xE2\x82"})
        EXPECT_EQ(gw::detail::check_close_payload(close_payload(1000, reason)), 1007) << hex(reason);
}

TEST(Close, InvalidCodeWinsOverInvalidReason) {
    EXPECT_EQ(gw::detail::check_close_payload(close_payload(1005, "\xFF")), 1002);
}

TEST(Close, MaximumReasonIsOk) {
    EXPECT_EQ(gw::detail::check_close_payload(close_payload(1000, std::string(123, 'r'))), 0);
    std::string multibyte;
    while (multibyte.size() + 2 <= 123) multibyte += "\xC3\xA9";
    multibyte += 'x';
    ASSERT_EQ(multibyte.size(), 123u);
    EXPECT_EQ(gw::detail::check_close_payload(close_payload(1000, multibyte)), 0);
}

// ============================================================================================
// 7. URLs
// ============================================================================================

TEST(ParseUrl, WsDefaults) {
    auto u = gw::detail::parse_url("ws://example.com");
    ASSERT_TRUE(u);
    EXPECT_FALSE(u->tls);
    EXPECT_EQ(u->host, "example.com");
    EXPECT_EQ(u->port, "80");
    EXPECT_EQ(u->target, "/");
    EXPECT_EQ(u->host_header, "example.com");
}

TEST(ParseUrl, WssDefaults) {
    auto u = gw::detail::parse_url("wss://example.com/");
    ASSERT_TRUE(u);
    EXPECT_TRUE(u->tls);
    EXPECT_EQ(u->host, "example.com");
    EXPECT_EQ(u->port, "443");
    EXPECT_EQ(u->target, "/");
}

TEST(ParseUrl, SchemeIsCaseInsensitive) {
    auto u = gw::detail::parse_url("WSS://h/");
    ASSERT_TRUE(u);
    EXPECT_TRUE(u->tls);
    ASSERT_TRUE(gw::detail::parse_url("Ws://h/"));
    EXPECT_FALSE(gw::detail::parse_url("Ws://h/")->tls);
}

TEST(ParseUrl, ExplicitPortPathAndQuery) {
    auto u = gw::detail::parse_url("ws://example.com:8080/chat/room?x=1&y=%20");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->host, "example.com");
    EXPECT_EQ(u->port, "8080");
    EXPECT_EQ(u->target, "/chat/room?x=1&y=%20");
    EXPECT_EQ(u->host_header, "example.com:8080");
    auto w = gw::detail::parse_url("wss://127.0.0.1:65535");
    ASSERT_TRUE(w);
    EXPECT_EQ(w->host, "127.0.0.1");
    EXPECT_EQ(w->port, "65535");
    auto one = gw::detail::parse_url("ws://h:1/");
    ASSERT_TRUE(one);
    EXPECT_EQ(one->port, "1");
}

TEST(ParseUrl, Ipv6Literal) {
    auto u = gw::detail::parse_url("ws://[::1]:8080/p");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->host, "::1");
    EXPECT_EQ(u->port, "8080");
    EXPECT_EQ(u->target, "/p");
    EXPECT_EQ(u->host_header, "[::1]:8080");
    auto v = gw::detail::parse_url("wss://[2001:db8::7]");
    ASSERT_TRUE(v);
    EXPECT_EQ(v->host, "2001:db8::7");
    EXPECT_EQ(v->port, "443");
    EXPECT_EQ(v->target, "/");
    EXPECT_EQ(v->host_header, "[2001:db8::7]");
}

TEST(ParseUrl, QueryWithoutPath) {
    auto u = gw::detail::parse_url("ws://h?x=1");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->host, "h");
    EXPECT_EQ(u->target, "/?x=1");
    EXPECT_EQ(u->host_header, "h");
    auto v = gw::detail::parse_url("ws://h:81?x=1");
    ASSERT_TRUE(v);
    EXPECT_EQ(v->port, "81");
    EXPECT_EQ(v->target, "/?x=1");
}

TEST(ParseUrl, RejectsOtherSchemes) {
    for (auto url : {"http://h/", "https://h/", "ftp://h", "wsx://h", "w://h", "://h", "ws:/h", "ws//h", "ws:h", "h",
                     ""})
        EXPECT_FALSE(gw::detail::parse_url(url)) << url;
}

TEST(ParseUrl, RejectsMissingHost) {
    for (auto url : {"ws://", "wss://", "ws:///path", "ws://:80/", "ws://?x=1", "ws://[]/", "ws://[]:80"})
        EXPECT_FALSE(gw::detail::parse_url(url)) << url;
}

TEST(ParseUrl, RejectsBadPorts) {
    for (auto url : {"ws://h:0", "ws://h:0/", "ws://h:00", "ws://h:65536", "ws://h:70000", "ws://h:99999999999999999999",
                     "ws://h:8o", "ws://h:-1", "ws://h:+80", "ws://h: 80", "ws://h:80:80", "ws://[::1]:0",
                     "ws://[::1]:x", "ws://[::1]80", "ws://[::1"})
        EXPECT_FALSE(gw::detail::parse_url(url)) << url;
}

TEST(ParseUrl, RejectsUserinfo) {
    for (auto url : {"ws://user@h/", "ws://user:pass@h:80/", "wss://@h"})
        EXPECT_FALSE(gw::detail::parse_url(url)) << url;
}

TEST(ParseUrl, RejectsFragment) {
    for (auto url : {"ws://h/#frag", "ws://h/p#", "ws://h#x", "wss://h/p?q=1#f"})
        EXPECT_FALSE(gw::detail::parse_url(url)) << url;
}

TEST(ParseUrl, RejectsSpacesAndControlCharacters) {
    // The target goes verbatim into "GET <target> HTTP/1.1\r\n": a space or CR LF in it would break the
    // request line or inject header lines. RFC 6455 section 3: such a URL is not a valid ws URI.
    for (auto url : {"ws://h/a b", "ws://h/a\r\nX-Injected: 1", "ws://h/?q=a b", "ws://h/\x01", "ws://h/\x7F",
                     "ws://h/a\tb", "ws://h\r\nX: y/", "ws://h x/"})
        EXPECT_FALSE(gw::detail::parse_url(url)) << hex(url);
}

// ============================================================================================
// 8. Plain HTTP responses
// ============================================================================================

TEST(FormatResponse, StatusLineLengthAndClose) {
    gw::http_response r{404, "no such room\n"};
    std::string out = gw::detail::format_response(r);
    EXPECT_EQ(out.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << out;
    EXPECT_NE(out.find("\r\nContent-Length: 13\r\n"), std::string::npos) << out;
    EXPECT_NE(out.find("\r\nContent-Type: text/plain; charset=utf-8\r\n"), std::string::npos) << out;
    EXPECT_NE(out.find("\r\nConnection: close\r\n"), std::string::npos) << out;
    auto head_end = out.find("\r\n\r\n");
    ASSERT_NE(head_end, std::string::npos);
    EXPECT_EQ(out.substr(head_end + 4), "no such room\n");
}

TEST(FormatResponse, ExactBytes) {
    gw::http_response r{426, "this is a WebSocket endpoint\n", "text/plain; charset=utf-8",
                        {{"Sec-WebSocket-Version", "13"}, {"Upgrade", "websocket"}}};
    EXPECT_EQ(gw::detail::format_response(r),
              "HTTP/1.1 426 Upgrade Required\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: 29\r\n"
              "Connection: close\r\n"
              "Sec-WebSocket-Version: 13\r\n"
              "Upgrade: websocket\r\n"
              "\r\n"
              "this is a WebSocket endpoint\n");
}

TEST(FormatResponse, EmptyAndBinaryBodies) {
    gw::http_response empty{204, ""};
    std::string out = gw::detail::format_response(empty);
    EXPECT_EQ(out.rfind("HTTP/1.1 204 No Content\r\n", 0), 0u);
    EXPECT_NE(out.find("\r\nContent-Length: 0\r\n"), std::string::npos);
    EXPECT_EQ(out.substr(out.size() - 4), "\r\n\r\n");

    std::string body(100000, '\0');
    body[5] = '\xFF';
    gw::http_response big{200, body, "application/octet-stream"};
    out = gw::detail::format_response(big);
    EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
    EXPECT_NE(out.find("\r\nContent-Length: 100000\r\n"), std::string::npos);
    EXPECT_NE(out.find("\r\nContent-Type: application/octet-stream\r\n"), std::string::npos);
    auto head_end = out.find("\r\n\r\n");
    ASSERT_NE(head_end, std::string::npos);
    EXPECT_EQ(out.substr(head_end + 4), body);
}

TEST(FormatResponse, ExtraHeadersKeepOrder) {
    gw::http_response r{401, "who are you?\n", "text/plain; charset=utf-8",
                        {{"WWW-Authenticate", "Bearer"}, {"Retry-After", "5"}, {"X-A", "1"}}};
    std::string out = gw::detail::format_response(r);
    auto a = out.find("\r\nWWW-Authenticate: Bearer\r\n"), b = out.find("\r\nRetry-After: 5\r\n"),
         c = out.find("\r\nX-A: 1\r\n"), end = out.find("\r\n\r\n");
    ASSERT_NE(a, std::string::npos);
    ASSERT_NE(b, std::string::npos);
    ASSERT_NE(c, std::string::npos);
    EXPECT_LT(a, b);
    EXPECT_LT(b, c);
    EXPECT_LT(c, end);
    EXPECT_EQ(out.rfind("HTTP/1.1 401 Unauthorized\r\n", 0), 0u);
}

TEST(FormatResponse, EveryKnownStatusHasItsReason) {
    const std::pair<int, std::string_view> rows[] = {
        {400, "Bad Request"}, {403, "Forbidden"}, {405, "Method Not Allowed"}, {408, "Request Timeout"},
        {429, "Too Many Requests"}, {431, "Request Header Fields Too Large"}, {500, "Internal Server Error"},
        {503, "Service Unavailable"}, {505, "HTTP Version Not Supported"}};
    for (const auto& [status, reason] : rows) {
        std::string out = gw::detail::format_response({status, "x"});
        EXPECT_EQ(out.rfind("HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n", 0), 0u) << out;
    }
}

} // namespace
