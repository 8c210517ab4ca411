// Helpers shared by the protocol tests (tests/protocol/*_test.cpp): hand-made bytes, hex dumps for
// failure messages, the RFC 6455 example mask key, and HTTP upgrade requests to parse.
#pragma once

// The protocol code alone, from its sources: it needs neither Asio nor nlohmann/json, and these
// tests prove it (the product, gateway.hpp, is generated from the same files).
#include <gw/protocol/http.hpp>
#include <gw/protocol/text.hpp>
#include <gw/protocol/utf8.hpp>
#include <gw/protocol/ws_frame.hpp>
#include <gw/protocol/ws_handshake.hpp>

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace protocol_test {

using bytes = std::vector<unsigned char>;

inline bytes make_bytes(std::initializer_list<int> list) {
    bytes out;
    for (int b : list) out.push_back(static_cast<unsigned char>(b));
    return out;
}

inline std::string hex(std::string_view s) {
    static const char digits[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (!out.empty()) out += ' ';
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}
inline std::string hex(const bytes& b) { return hex(std::string_view(reinterpret_cast<const char*>(b.data()), b.size())); }

// The masking key of RFC 6455's examples (section 5.7).
inline constexpr std::array<unsigned char, 4> test_key{0x37, 0xFA, 0x21, 0x3D};

// ============================================================================================
// HTTP requests (http_request_test.cpp, upgrade_test.cpp)
// ============================================================================================

struct parsed {
    gw::detail::http_error error;
    gw::detail::request_head req;
};

inline parsed parse(std::string raw) {
    parsed p;
    p.error = gw::detail::request_parser::parse(std::move(raw), p.req);
    return p;
}

// A minimal valid upgrade request with the given request line and extra/replacement header lines.
inline std::string upgrade_request(std::string_view request_line = "GET /chat HTTP/1.1",
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

inline const std::string chrome_request =
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

inline const std::string firefox_request =
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

} // namespace protocol_test
