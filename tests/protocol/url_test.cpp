// parse_url(): the ws:// and wss:// URLs our client accepts, and the ones it refuses (RFC 6455
// section 3). Pure functions, no sockets.

#include "protocol_support.hpp"

namespace {

using namespace protocol_test;

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

} // namespace
