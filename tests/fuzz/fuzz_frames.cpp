// libFuzzer target: a connection's frame reader, gw::detail::connection_impl::consume(): frame
// headers, unmasking, fragments reassembled into messages, UTF-8 checks, close frames, pings
// answered with pongs, and with permessage-deflate, compressed messages (RSV1) inflated within the
// message limit. No bytes reach a network: the socket is never opened.
//
// Input: two bytes of settings, then the bytes the peer sends.
//   byte 0, bit 0:    our role; 0 server (the peer's frames must be masked), 1 client (they must not be)
//           bit 1:    poll the io_context after each read, so queued pongs meet the unopened socket
//           bits 2-3: the message size limit: 1 MiB, 0, 16 or 200 bytes
//           bits 4-6: the largest read: all at once, 1, 2, 3, 7, 16, 64 or 256 bytes
//           bit 7:    permessage-deflate agreed (RSV1 frames are compressed messages)
//   byte 1:           seed of the read sizes; with bit 7 above, its bit 0 picks the parameters:
//                     0 no context takeover either way (shared mode), 1 context kept both ways
//                     (dedicated mode: each connection inflates with its own history)
// The stream is fed in reads of those sizes, as a socket delivers it, and again in a single read to
// a second connection: how bytes are cut must never change what comes out.
#include "fuzz_support.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace {

using fuzz::require;
using gw::close_code;
using gw::detail::connection_impl;
using gw::detail::role;

struct settings {
    role side = role::server;
    bool poll = false;
    std::size_t max_message = 1 << 20;
    std::size_t max_read = 0;   // 0: the whole stream in one read
    std::uint32_t seed = 1;
    bool deflate = false;
    bool keep_context = false;   // with deflate: the dedicated mode's parameters, else the shared mode's
};

settings read_settings(std::uint8_t a, std::uint8_t b) {
    constexpr std::size_t limits[] = {1 << 20, 0, 16, 200};
    constexpr std::size_t reads[] = {0, 1, 2, 3, 7, 16, 64, 256};
    settings s;
    s.side = (a & 1) ? role::client : role::server;
    s.poll = (a & 2) != 0;
    s.max_message = limits[(a >> 2) & 3];
    s.max_read = reads[(a >> 4) & 7];
    s.seed = 0x9E3779B9u * (b + 1u);   // never 0, which xorshift would keep
    s.deflate = (a & 0x80) != 0;
    s.keep_context = s.deflate && (b & 1) != 0;
    return s;
}

std::uint32_t next(std::uint32_t& x) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return x;
}

/// What a stream did to a connection: what the application and the peer get to see.
struct outcome {
    std::vector<gw::message> messages;
    std::vector<std::string> pongs;   // payloads, unmasked; kept only when the io_context did not run
    bool stopped = false;             // consume() returned false
    close_code fail_code{};
    bool close_received = false;
    std::uint16_t peer_code = 0;
};

void drain(connection_impl& conn, const settings& s, outcome& out) {
    while (conn.has_message()) {
        gw::message m = conn.pop_message();
        require(m.data.size() <= s.max_message, "a message over the size limit was delivered");
        if (!m.binary) require(fuzz::is_utf8(m.data), "a text message that is not UTF-8 was delivered");
        out.messages.push_back(std::move(m));
    }
}

/// The frames waiting in the outbox can only be pongs here: each must be a well-formed frame,
/// masked exactly when we are the client.
void collect_pongs(const connection_impl& conn, const settings& s, outcome& out) {
    for (const auto& f : conn.outbox_) {
        gw::detail::frame_header h;
        close_code code{};
        const bool masked = s.side == role::client;
        const auto st = gw::detail::decode_header({f.head.data(), f.head_size}, masked, h, code);
        require(st == gw::detail::decode_status::ok && h.size == f.head_size, "queued frame has a bad header");
        require(h.op == gw::opcode::pong && h.fin, "queued frame is not a final pong");
        require(!f.shared && h.length == f.payload.size() && f.payload.size() <= 125, "queued pong has a bad length");
        std::string payload = f.payload;
        if (masked) gw::detail::apply_mask(reinterpret_cast<unsigned char*>(payload.data()), payload.size(), h.mask);
        out.pongs.push_back(std::move(payload));
    }
}

outcome feed(std::span<const std::uint8_t> stream, const settings& s, bool in_pieces) {
    asio::io_context io;
    // One frame may be as large as a message; fragments are not limited here (the loopback tests do that).
    const gw::detail::connection_settings cs{s.side, gw::detail::frame_limits{s.max_message, s.max_message},
                                             std::chrono::milliseconds(100)};
    auto conn = std::make_shared<connection_impl>(asio::ip::tcp::socket(io), cs);
    if (s.deflate) {   // as a handshake that agreed permessage-deflate leaves it
        gw::detail::deflate_params p;
        p.server_no_context_takeover = p.client_no_context_takeover = !s.keep_context;
        gw::deflate_options o;
        o.mode = s.keep_context ? gw::deflate_mode::dedicated : gw::deflate_mode::shared;
        conn->deflate_ = std::make_unique<gw::detail::deflate_session>(p, o, s.side);
    }
    const bool poll = in_pieces && s.poll;
    outcome out;
    std::uint32_t rng = s.seed;
    for (std::size_t at = 0; at < stream.size();) {
        std::size_t n = stream.size() - at;
        if (in_pieces && s.max_read) n = std::min<std::size_t>(n, 1 + next(rng) % s.max_read);
        const bool more = conn->consume(stream.data() + at, n);
        at += n;
        drain(*conn, s, out);
        if (poll) {   // writes to a socket that is not open fail; the connection takes note and goes on
            io.restart();
            io.poll();
        }
        if (!more) {   // and no more bytes are read, as the reader stops
            out.stopped = true;
            break;
        }
    }

    out.fail_code = conn->fail_code_;
    out.close_received = conn->close_received_;
    out.peer_code = conn->peer_code_;
    if (out.stopped) {
        require(out.close_received != (out.fail_code != close_code{}), "stopped without exactly one reason");
    } else {
        require(!out.close_received && out.fail_code == close_code{}, "a reason to stop, but reading went on");
    }
    if (out.fail_code != close_code{}) {
        const auto c = out.fail_code;
        require(c == close_code::protocol_error || c == close_code::invalid_payload || c == close_code::message_too_big,
                "unexpected close code for a failed peer");
        require(static_cast<bool>(conn->error_), "a failed peer without an error");
    }
    if (out.close_received) {
        require(out.peer_code == static_cast<std::uint16_t>(close_code::no_status) ||
                    gw::detail::is_valid_close_code(out.peer_code),
                "accepted a close frame with an invalid code");
        require(fuzz::is_utf8(conn->peer_reason()), "accepted a close reason that is not UTF-8");
    }
    if (!poll) collect_pongs(*conn, s, out);
    // Unless polled, the io_context is destroyed with the flushes still queued, each holding the
    // connection: destroying them unrun must release it cleanly.
    return out;
}

void require_same(const outcome& a, const outcome& b, bool compare_pongs) {
    require(a.messages.size() == b.messages.size(), "the cut of reads changed how many messages came out");
    for (std::size_t i = 0; i < a.messages.size(); ++i)
        require(a.messages[i].data == b.messages[i].data && a.messages[i].binary == b.messages[i].binary,
                "the cut of reads changed a message");
    require(a.stopped == b.stopped && a.fail_code == b.fail_code && a.close_received == b.close_received &&
                a.peer_code == b.peer_code,
            "the cut of reads changed how the stream ended");
    if (compare_pongs) require(a.pongs == b.pongs, "the cut of reads changed the pongs");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const settings s = read_settings(data[0], data[1]);
    const std::span<const std::uint8_t> stream(data + 2, size - 2);
    const outcome pieces = feed(stream, s, true);
    if (s.max_read != 0) require_same(pieces, feed(stream, s, false), !s.poll);
    return 0;
}
