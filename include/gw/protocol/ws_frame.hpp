// RFC 6455 frames without sockets: masking, frame headers, close payloads, and the limits a
// frame reader enforces.
#pragma once
#include "../detail/config.hpp"
#include "../core/vocabulary.hpp"
#include "utf8.hpp"

namespace gw::inline v0::detail {

/// XORs data with the 4-byte key, starting at key byte `phase` (0-3); returns the next phase.
/// Works a 64-bit word at a time.
inline std::size_t apply_mask(unsigned char* data, std::size_t n, std::array<unsigned char, 4> key,
                              std::size_t phase = 0) noexcept {
    phase &= 3;
    std::size_t i = 0;
    for (; i < n && ((phase + i) & 3) != 0; ++i) data[i] ^= key[(phase + i) & 3];
    // Now aligned to the key: key bytes 0..3 repeat from data + i.
    std::uint64_t word;
    unsigned char pattern[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
    std::memcpy(&word, pattern, 8);
    for (; i + 8 <= n; i += 8) {
        std::uint64_t v;
        std::memcpy(&v, data + i, 8);
        v ^= word;
        std::memcpy(data + i, &v, 8);
    }
    for (; i < n; ++i) data[i] ^= key[(phase + i) & 3];
    return (phase + n) & 3;
}

// ---- Frames ----

/// A decoded frame header (RFC 6455 section 5.2).
struct frame_header {
    bool fin = true;
    std::uint8_t rsv = 0;          ///< RSV1-3 as the top bits 0x70 of the first byte
    opcode op = opcode::text;
    bool masked = false;
    std::uint64_t length = 0;
    std::array<unsigned char, 4> mask{};
    std::size_t size = 0;          ///< bytes the header itself took
};

inline constexpr std::size_t max_frame_header = 14;

inline constexpr bool is_control(opcode op) noexcept { return (static_cast<std::uint8_t>(op) & 0x8) != 0; }
inline constexpr bool is_known_opcode(std::uint8_t op) noexcept { return op <= 2 || (op >= 8 && op <= 10); }

/// Header size announced by the first two bytes.
inline std::size_t header_size(unsigned char b1) noexcept {
    std::size_t n = 2;
    auto len7 = b1 & 0x7F;
    if (len7 == 126) n += 2;
    else if (len7 == 127) n += 8;
    if (b1 & 0x80) n += 4;
    return n;
}

enum class decode_status { ok, need_more, error };

/// Decodes a header from bytes. On error, *code says how to close.
/// Checks only what the header alone decides: reserved bits (those in allowed_rsv may be set: 0x40,
/// RSV1, once permessage-deflate is agreed), opcodes, control frame rules, the 64-bit length's top
/// bit, and that frames from a client are masked (expect_masked) and frames from a server are not.
inline decode_status decode_header(std::span<const unsigned char> in, bool expect_masked, frame_header& h,
                                   close_code& code, std::uint8_t allowed_rsv = 0) noexcept {
    if (in.size() < 2) return decode_status::need_more;
    const std::size_t size = header_size(in[1]);
    if (in.size() < size) return decode_status::need_more;
    const unsigned char b0 = in[0], b1 = in[1];
    h.fin = (b0 & 0x80) != 0;
    h.rsv = b0 & 0x70;
    h.masked = (b1 & 0x80) != 0;
    h.size = size;
    code = close_code::protocol_error;
    if ((h.rsv & ~allowed_rsv) != 0 || !is_known_opcode(b0 & 0x0F) || h.masked != expect_masked) return decode_status::error;
    h.op = static_cast<opcode>(b0 & 0x0F);
    std::size_t pos = 2;
    std::uint64_t len = b1 & 0x7F;
    if (len == 126) {
        len = (std::uint64_t{in[2]} << 8) | in[3];
        pos = 4;
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | in[2 + i];
        pos = 10;
        if (len >> 63) return decode_status::error;   // the most significant bit must be 0
    }
    h.length = len;
    if (is_control(h.op) && (!h.fin || len > 125)) return decode_status::error;
    if (h.masked) std::memcpy(h.mask.data(), in.data() + pos, 4);
    return decode_status::ok;
}

/// Writes a frame header to out (at least max_frame_header bytes); returns its size.
/// With a mask, the caller masks the payload with the same key. compressed sets RSV1
/// (permessage-deflate's bit, on a message's first frame).
inline std::size_t encode_header(unsigned char* out, opcode op, bool fin, std::uint64_t length,
                                 const std::array<unsigned char, 4>* mask = nullptr, bool compressed = false) noexcept {
    out[0] = static_cast<unsigned char>((fin ? 0x80 : 0) | (compressed ? 0x40 : 0) | static_cast<std::uint8_t>(op));
    const unsigned char m = mask ? 0x80 : 0;
    std::size_t n;
    if (length < 126) {
        out[1] = static_cast<unsigned char>(m | length);
        n = 2;
    } else if (length <= 0xFFFF) {
        out[1] = static_cast<unsigned char>(m | 126);
        out[2] = static_cast<unsigned char>(length >> 8);
        out[3] = static_cast<unsigned char>(length);
        n = 4;
    } else {
        out[1] = static_cast<unsigned char>(m | 127);
        for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<unsigned char>(length >> (56 - 8 * i));
        n = 10;
    }
    if (mask) {
        std::memcpy(out + n, mask->data(), 4);
        n += 4;
    }
    return n;
}

/// True for codes an endpoint may send in a close frame (RFC 6455 section 7.4).
inline constexpr bool is_valid_close_code(std::uint16_t c) noexcept {
    return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1011) || (c >= 3000 && c <= 4999);
}

/// Checks a received close frame's payload. Returns 0 when valid, else the code to fail with.
inline std::uint16_t check_close_payload(std::string_view payload) noexcept {
    if (payload.empty()) return 0;
    if (payload.size() == 1) return static_cast<std::uint16_t>(close_code::protocol_error);
    auto code = static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                           static_cast<unsigned char>(payload[1]));
    if (!is_valid_close_code(code)) return static_cast<std::uint16_t>(close_code::protocol_error);
    if (!is_valid_utf8(payload.substr(2))) return static_cast<std::uint16_t>(close_code::invalid_payload);
    return 0;
}

/// Which end of a connection this is: a server expects masked frames and sends unmasked ones.
enum class role : std::uint8_t { server, client };

/// How large what a peer sends may be.
struct frame_limits {
    std::size_t message = 1 << 20;
    std::size_t frame = 1 << 20;
    std::size_t fragments = SIZE_MAX;
};

} // namespace gw::v0::detail
