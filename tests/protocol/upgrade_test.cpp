// check_upgrade(): which parsed requests are WebSocket upgrades, and the status each broken one is
// refused with (400, 405, 426). Real browser requests included. Pure functions, no sockets.

#include "protocol_support.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace protocol_test;
using namespace std::string_literals;

// Parses, expects the parse to succeed, and returns check_upgrade()'s status (0: accepted).
int upgrade_status(std::string raw) {
    auto p = parse(std::move(raw));
    EXPECT_EQ(p.error.status, 0) << p.error.reason;
    if (p.error.status) return -1;
    auto d = gw::detail::check_upgrade(p.req);
    EXPECT_TRUE(d.is_upgrade);
    return d.error.status;
}

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

TEST(HttpParse, LowercaseMethodIsAnotherMethod) {
    // Methods are case-sensitive: "get" parses but is not GET, so an upgrade with it is refused.
    auto p = parse(upgrade_request("get / HTTP/1.1"));
    ASSERT_EQ(p.error.status, 0);
    EXPECT_EQ(p.req.method(), "get");
    EXPECT_EQ(gw::detail::check_upgrade(p.req).error.status, 405);
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

} // namespace
