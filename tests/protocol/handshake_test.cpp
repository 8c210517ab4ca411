// The opening handshake's decisions as pure functions (protocol/ws_handshake.hpp): what a server
// answers to a request head under its limits and hooks, byte by byte, and a client's request and
// its check of the answer.
#include "protocol_support.hpp"

#include <stdexcept>

namespace {

using protocol_test::parse;
using protocol_test::upgrade_request;

/// Hooks that say nothing unless told: the server's own answers and the application's.
struct hooks {
    std::optional<gw::http_response> plain_answer{};
    std::optional<gw::http_response> upgrade_answer{};
    std::optional<std::string> chosen{};
    bool throw_in_upgrade = false;
    std::optional<gw::http_response> plain(gw::detail::request_head&) const { return plain_answer; }
    std::optional<gw::http_response> upgrade(gw::detail::request_head&) const {
        if (throw_in_upgrade) throw std::runtime_error("the hook broke");
        return upgrade_answer;
    }
    std::optional<std::string> subprotocol(gw::detail::request_head&) const { return chosen; }
};

gw::detail::handshake_answer answer(const std::string& raw, gw::detail::upgrade_context ctx = {}, const hooks& h = {}) {
    auto p = parse(raw);
    EXPECT_EQ(p.error.status, 0) << raw;
    return gw::detail::answer_handshake(p.req, ctx, h);
}

// RFC 6455 section 1.3's example key and its accept value.
constexpr std::string_view rfc_key = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr std::string_view rfc_accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

std::string rfc_request(std::string_view extra = "") {
    std::string r = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: ";
    r.append(rfc_key).append("\r\nSec-WebSocket-Version: 13\r\n").append(extra).append("\r\n");
    return r;
}

TEST(Handshake, AcceptedUpgradeGetsThe101OfRfc6455ByteForByte) {
    const auto a = answer(rfc_request());
    ASSERT_TRUE(a.accepted);
    EXPECT_EQ(a.head, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: " + std::string(rfc_accept) + "\r\n\r\n");
    EXPECT_EQ(a.subprotocol, "");
    EXPECT_TRUE(a.hook_error.empty());
}

TEST(Handshake, ChosenSubprotocolIsNamedInThe101) {
    hooks h;
    h.chosen = "chat";
    const auto a = answer(rfc_request("Sec-WebSocket-Protocol: superchat, chat\r\n"), {}, h);
    ASSERT_TRUE(a.accepted);
    EXPECT_EQ(a.subprotocol, "chat");
    EXPECT_NE(a.head.find("\r\nSec-WebSocket-Protocol: chat\r\n\r\n"), std::string::npos) << a.head;
}

TEST(Handshake, AccessTokenOfferedIsChosenWhenTheApplicationPicksNone) {
    const auto a = answer(rfc_request("Sec-WebSocket-Protocol: access_token, abc.def\r\n"));
    ASSERT_TRUE(a.accepted);
    EXPECT_EQ(a.subprotocol, "access_token");
    // An application choosing "" chooses none, even when a token is offered.
    hooks none;
    none.chosen = "";
    const auto b = answer(rfc_request("Sec-WebSocket-Protocol: access_token, abc.def\r\n"), {}, none);
    ASSERT_TRUE(b.accepted);
    EXPECT_EQ(b.subprotocol, "");
    EXPECT_EQ(b.head.find("Sec-WebSocket-Protocol"), std::string::npos);
}

TEST(Handshake, ASubprotocolTheClientDidNotOfferIs500) {
    hooks h;
    h.chosen = "mqtt";
    const auto a = answer(rfc_request("Sec-WebSocket-Protocol: chat\r\n"), {}, h);
    ASSERT_FALSE(a.accepted);
    EXPECT_EQ(a.refusal.status, 500);
    EXPECT_TRUE(a.counted);
}

TEST(Handshake, ConnectionLimitsAnswer503WithRetryAfterAnd429) {
    const auto a = answer(rfc_request(), {503, true});
    ASSERT_FALSE(a.accepted);
    EXPECT_EQ(gw::detail::format_response(a.refusal),
              "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 38\r\n"
              "Connection: close\r\nRetry-After: 1\r\n\r\nthe server is at its connection limit\n");
    const auto b = answer(rfc_request(), {429, true});
    EXPECT_EQ(b.refusal.status, 429);
    EXPECT_EQ(b.refusal.body, "too many connections from this address\n");
    EXPECT_TRUE(b.counted);
}

TEST(Handshake, OriginOutsideTheListIs403AndBadUpgradesKeepTheirOwnStatus) {
    const auto a = answer(rfc_request("Origin: https://evil.example\r\n"), {0, false});
    EXPECT_EQ(a.refusal.status, 403);
    // The protocol's own errors come before the limits and the origin.
    const auto b = answer(upgrade_request("POST /chat HTTP/1.1"), {503, false});
    EXPECT_EQ(b.refusal.status, 405);
    ASSERT_EQ(b.refusal.headers.size(), 1u);
    EXPECT_EQ(b.refusal.headers[0].first, "Allow");
    std::string version8 = rfc_request();
    version8.replace(version8.find("Version: 13"), 11, "Version: 8");
    const auto c = answer(version8);
    EXPECT_EQ(c.refusal.status, 426);
    ASSERT_EQ(c.refusal.headers.size(), 1u);
    EXPECT_EQ(c.refusal.headers[0], (std::pair<std::string, std::string>{"Sec-WebSocket-Version", "13"}));
}

TEST(Handshake, OriginAllowedIgnoresCaseAndLetsRequestsWithoutOriginPass) {
    const std::vector<std::string> allowed{"https://example.com"};
    EXPECT_TRUE(gw::detail::origin_allowed({}, parse(rfc_request("Origin: https://any.where\r\n")).req));
    EXPECT_TRUE(gw::detail::origin_allowed(allowed, parse(rfc_request("Origin: HTTPS://Example.COM\r\n")).req));
    EXPECT_TRUE(gw::detail::origin_allowed(allowed, parse(rfc_request()).req));
    EXPECT_FALSE(gw::detail::origin_allowed(allowed, parse(rfc_request("Origin: https://example.org\r\n")).req));
}

TEST(Handshake, PlainRequestsGetTheServersAnswerElse426) {
    const std::string get = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    const auto a = answer(get);
    ASSERT_FALSE(a.accepted);
    EXPECT_EQ(gw::detail::format_response(a.refusal),
              "HTTP/1.1 426 Upgrade Required\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 29\r\n"
              "Connection: close\r\nUpgrade: websocket\r\n\r\nthis is a WebSocket endpoint\n");
    EXPECT_TRUE(a.counted);   // 426 is an error status
    hooks h;
    h.plain_answer = gw::http_response{200, "ok\n"};
    const auto b = answer(get, {503, false}, h);   // limits and origins concern upgrades only
    EXPECT_EQ(b.refusal.status, 200);
    EXPECT_FALSE(b.counted);
}

TEST(Handshake, ApplicationRefusalAndA401NamesBearer) {
    hooks h;
    h.upgrade_answer = gw::http_response{401, "who are you?\n"};
    const auto a = answer(rfc_request(), {}, h);
    ASSERT_FALSE(a.accepted);
    ASSERT_EQ(a.refusal.headers.size(), 1u);
    EXPECT_EQ(a.refusal.headers[0], (std::pair<std::string, std::string>{"WWW-Authenticate", "Bearer"}));
    h.upgrade_answer->headers.emplace_back("www-authenticate", "Basic realm=\"x\"");
    const auto b = answer(rfc_request(), {}, h);
    ASSERT_EQ(b.refusal.headers.size(), 1u);   // the application named its own scheme
    EXPECT_EQ(b.refusal.headers[0].second, "Basic realm=\"x\"");
}

TEST(Handshake, AHookThatThrowsGets500AndItsMessageForTheLog) {
    hooks h;
    h.throw_in_upgrade = true;
    const auto a = answer(rfc_request(), {}, h);
    ASSERT_FALSE(a.accepted);
    EXPECT_EQ(a.refusal.status, 500);
    EXPECT_EQ(a.refusal.body, "internal server error\n");
    EXPECT_EQ(a.hook_error, "the hook broke");
}

TEST(Handshake, ClientRequestByteForByte) {
    auto u = gw::detail::parse_url("ws://example.com:8080/chat?room=1");
    ASSERT_TRUE(u);
    EXPECT_EQ(gw::detail::upgrade_request(*u, rfc_key, {"chat", "superchat"}, {{"Authorization", "Bearer t"}}),
              "GET /chat?room=1 HTTP/1.1\r\nHost: example.com:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
              "Sec-WebSocket-Protocol: chat, superchat\r\nAuthorization: Bearer t\r\n\r\n");
    // What the client sends, the server accepts.
    const auto a = answer(gw::detail::upgrade_request(*u, rfc_key, {}, {}));
    EXPECT_TRUE(a.accepted);
}

TEST(Handshake, ClientChecksTheAnswer) {
    const std::string ok = gw::detail::switching_protocols(rfc_key, "");
    EXPECT_EQ(gw::detail::check_upgrade_response(ok, rfc_key, {}).error, "");
    EXPECT_EQ(gw::detail::check_upgrade_response(ok, "AAAAAAAAAAAAAAAAAAAAAA==", {}).error, "wrong Sec-WebSocket-Accept");
    EXPECT_EQ(gw::detail::check_upgrade_response("HTTP/1.1 403 Forbidden\r\n\r\n", rfc_key, {}).error,
              "server answered: HTTP/1.1 403 Forbidden");
    const std::string chat = gw::detail::switching_protocols(rfc_key, "chat");
    EXPECT_EQ(gw::detail::check_upgrade_response(chat, rfc_key, {}).error, "server chose a subprotocol that was not offered");
    const auto r = gw::detail::check_upgrade_response(chat, rfc_key, {"mqtt", "chat"});
    EXPECT_EQ(r.error, "");
    EXPECT_EQ(r.subprotocol, "chat");
    std::string ext = ok;
    ext.insert(ext.size() - 2, "Sec-WebSocket-Extensions: permessage-deflate\r\n");
    EXPECT_EQ(gw::detail::check_upgrade_response(ext, rfc_key, {}).error, "server chose an extension that was not offered");
    EXPECT_EQ(gw::detail::check_upgrade_response("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", rfc_key, {}).error,
              "response is not a WebSocket upgrade");
}

} // namespace
