// The handshake's I/O, shared by the server and the client: reading an HTTP head, and answering
// a refused request without losing the answer to a reset.
#pragma once
#include "../detail/asio.hpp"
#include "../protocol/http.hpp"
#include "connection_impl.hpp"

namespace gw::inline v0::detail {

/// Writes a plain HTTP answer, shuts the send side and reads until the peer closes (or the
/// handshake deadline closes the socket), so the answer is not lost to a reset.
inline asio::awaitable<void> refuse(connection_impl& c, const http_response& r) {
    const std::string text = format_response(r);
    co_await c.write_raw(text);
    co_await c.linger(true);
}

/// Reads an HTTP head (up to the blank line) into head, keeping what follows it in rest.
/// Returns false on a read error; sets too_big when max_bytes pass without a blank line.
inline asio::awaitable<bool> read_head(connection_impl& c, std::size_t max_bytes, std::string& head, std::string& rest,
                                       bool& too_big) {
    head.clear();
    too_big = false;
    std::size_t scanned = 0;   // the blank line cannot start before this
    for (;;) {
        if (auto end = head.find("\r\n\r\n", scanned); end != std::string::npos) {
            if (end + 4 > max_bytes) break;
            rest = head.substr(end + 4);
            head.resize(end + 4);
            co_return true;
        }
        if (head.size() >= max_bytes) break;
        // Reads land in a shared buffer and only what arrived is kept: a handshake in progress costs
        // its own bytes, not a fixed buffer.
        if (co_await c.read_some()) co_return false;
        scanned = head.size() < 3 ? 0 : head.size() - 3;
        head.append(reinterpret_cast<const char*>(c.data_.data()), c.data_.size());
    }
    too_big = true;
    co_return false;
}

} // namespace gw::v0::detail
