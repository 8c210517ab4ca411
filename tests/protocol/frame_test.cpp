// The frame header codec: encoding every length form, decoding with truncation, and the headers a
// server or client must refuse with 1002. Hand-made bytes, no sockets.

#include "protocol_support.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace {

using namespace protocol_test;
using gw::close_code;
using gw::opcode;
using gw::detail::decode_status;
using gw::detail::frame_header;

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

} // namespace
