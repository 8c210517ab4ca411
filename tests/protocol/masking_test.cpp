// apply_mask(): against a byte-by-byte reference at every length, phase and alignment, and
// continued across chunks. Pure functions, no sockets.

#include "protocol_support.hpp"

#include <array>
#include <cstddef>

namespace {

using namespace protocol_test;

std::size_t reference_mask(unsigned char* data, std::size_t n, std::array<unsigned char, 4> key, std::size_t phase) {
    for (std::size_t i = 0; i < n; ++i) data[i] ^= key[(phase + i) % 4];
    return (phase + n) % 4;
}

bytes pattern_bytes(std::size_t n, unsigned seed) {
    bytes b(n);
    for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<unsigned char>((i * 131 + seed * 7 + 3) & 0xFF);
    return b;
}

TEST(Mask, MatchesBytewiseReference) {
    const std::array<unsigned char, 4> keys[] = {{0x37, 0xFA, 0x21, 0x3D}, {0, 0, 0, 0}, {0xFF, 0xFF, 0xFF, 0xFF},
                                                  {0x01, 0x02, 0x04, 0x80}};
    for (const auto& key : keys) {
        for (std::size_t len = 0; len <= 67; ++len) {
            for (std::size_t phase = 0; phase < 4; ++phase) {
                for (std::size_t offset = 0; offset < 8; ++offset) {
                    bytes buf = pattern_bytes(len + 16, static_cast<unsigned>(len));
                    bytes ref = buf;
                    std::size_t got = gw::detail::apply_mask(buf.data() + offset, len, key, phase);
                    std::size_t want = reference_mask(ref.data() + offset, len, key, phase);
                    ASSERT_EQ(got, want) << "len " << len << " phase " << phase << " offset " << offset;
                    ASSERT_EQ(buf, ref) << "len " << len << " phase " << phase << " offset " << offset;
                }
            }
        }
    }
}

TEST(Mask, PhaseIsTakenModulo4) {
    for (std::size_t phase = 4; phase < 12; ++phase) {
        bytes a = pattern_bytes(21, 1), b = a;
        EXPECT_EQ(gw::detail::apply_mask(a.data(), a.size(), test_key, phase), (phase + 21) % 4);
        reference_mask(b.data(), b.size(), test_key, phase % 4);
        EXPECT_EQ(a, b);
    }
}

TEST(Mask, MaskingTwiceRestoresInput) {
    for (std::size_t len = 0; len <= 67; ++len) {
        for (std::size_t phase = 0; phase < 4; ++phase) {
            bytes original = pattern_bytes(len, 9), buf = original;
            gw::detail::apply_mask(buf.data(), len, test_key, phase);
            if (len >= 4) {
                EXPECT_NE(buf, original);
            }
            gw::detail::apply_mask(buf.data(), len, test_key, phase);
            EXPECT_EQ(buf, original) << len << " " << phase;
        }
    }
}

TEST(Mask, ChunkedMaskingContinuesPhase) {
    const std::size_t len = 67;
    const bytes original = pattern_bytes(len, 5);
    bytes whole = original;
    reference_mask(whole.data(), len, test_key, 0);
    // Every split into two and three chunks.
    for (std::size_t a = 0; a <= len; ++a) {
        for (std::size_t b = a; b <= len; ++b) {
            bytes buf = original;
            std::size_t phase = 0;
            phase = gw::detail::apply_mask(buf.data(), a, test_key, phase);
            phase = gw::detail::apply_mask(buf.data() + a, b - a, test_key, phase);
            phase = gw::detail::apply_mask(buf.data() + b, len - b, test_key, phase);
            ASSERT_EQ(phase, len % 4);
            ASSERT_EQ(buf, whole) << "split at " << a << ", " << b;
        }
    }
}

TEST(Mask, ChunkedByteByByte) {
    bytes buf = pattern_bytes(40, 2), whole = buf;
    reference_mask(whole.data(), whole.size(), test_key, 0);
    std::size_t phase = 0;
    for (std::size_t i = 0; i < buf.size(); ++i) {
        phase = gw::detail::apply_mask(buf.data() + i, 1, test_key, phase);
        EXPECT_EQ(phase, (i + 1) % 4);
    }
    EXPECT_EQ(buf, whole);
}

} // namespace
