// The HTTP request parser behind the upgrade: request line, header lines, their accessors (headers,
// path and query, cookies, bearer token), malformed and oversized requests. Pure functions, no sockets.

#include "protocol_support.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace protocol_test;
using namespace std::string_literals;

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

TEST(HttpParse, OtherMajorVersionsAre505) {
    for (auto line : {"GET /chat HTTP/2.0", "GET /chat HTTP/3.0", "GET /chat HTTP/0.9", "GET /chat HTTP/9.1"})
        EXPECT_EQ(parse(upgrade_request(line)).error.status, 505) << line;
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
    gw::detail::request_head req;
    ASSERT_EQ(gw::detail::request_parser::parse(chrome_request, req).status, 0);
    ASSERT_EQ(gw::detail::request_parser::parse("GET /x HTTP/1.1\r\nA: 1\r\n\r\n", req).status, 0);
    EXPECT_EQ(req.target(), "/x");
    EXPECT_EQ(req.query(), "");
    EXPECT_EQ(req.header("A"), "1");
    EXPECT_FALSE(req.header("Host").has_value());
}

} // namespace
