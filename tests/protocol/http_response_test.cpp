// format_response(): the plain HTTP answers the server gives instead of an upgrade, byte by byte.
// Pure functions, no sockets.

#include "protocol_support.hpp"

#include <string>
#include <string_view>
#include <utility>

namespace {

using namespace protocol_test;

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
