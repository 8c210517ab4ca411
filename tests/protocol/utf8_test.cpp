// The UTF-8 validator: valid, invalid and truncated strings fed whole, split and byte by byte, and
// agreement with a plain reference decoder. Pure functions, no sockets.

#include "protocol_support.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace protocol_test;

// A plain reference: decode code points, reject overlong, surrogates and > U+10FFFF.
bool reference_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        auto b = static_cast<unsigned char>(s[i]);
        if (b < 0x80) { ++i; continue; }
        std::size_t len;
        std::uint32_t cp;
        if ((b & 0xE0) == 0xC0) len = 2, cp = b & 0x1F;
        else if ((b & 0xF0) == 0xE0) len = 3, cp = b & 0x0F;
        else if ((b & 0xF8) == 0xF0) len = 4, cp = b & 0x07;
        else return false;
        if (i + len > s.size()) return false;
        for (std::size_t k = 1; k < len; ++k) {
            auto c = static_cast<unsigned char>(s[i + k]);
            if ((c & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (c & 0x3F);
        }
        const std::uint32_t min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

// True when some continuation makes s valid: the reference for "feed() has not failed yet".
bool reference_prefix_ok(std::string_view s) {
    if (reference_utf8(s)) return true;
    std::string t(s);   // one allocation, then try every completion in place
    for (std::size_t missing = 1; missing <= 3; ++missing) {
        // The second byte of a sequence decides the ranges; later ones can be 0x80.
        t.resize(s.size() + missing, '\x80');
        for (int c = 0x80; c <= 0xBF; ++c) {
            t[s.size()] = static_cast<char>(c);
            if (reference_utf8(t)) return true;
        }
    }
    return false;
}

// Index of the first byte after which no continuation is valid; npos when s is a valid prefix.
std::size_t reference_first_bad(std::string_view s) {
    for (std::size_t k = 1; k <= s.size(); ++k)
        if (!reference_prefix_ok(s.substr(0, k))) return k - 1;
    return std::string_view::npos;
}

// Byte by byte: the index at which feed() first fails, or npos.
std::size_t validator_first_bad(std::string_view s) {
    gw::detail::utf8_validator v;
    for (std::size_t i = 0; i < s.size(); ++i)
        if (!v.feed(s.substr(i, 1))) return i;
    return std::string_view::npos;
}

const std::vector<std::string> valid_utf8 = {
    "",
    "a",
    "Hello, World! 0123456789 ~",
    std::string(1, '\0'),
    std::string("a\0b\x7F", 4),
    "\xC2\x80",                  // U+0080
    "\xC2\xA9",                  // ©
    "\xDF\xBF",                  // U+07FF
    "\xE0\xA0\x80",              // U+0800
    "\xE2\x82\xAC",              // €
    "\xED\x9F\xBF",              // U+D7FF
    "\xEE\x80\x80",              // U+E000
    "\xEF\xBB\xBF",              // BOM
    "\xEF\xBF\xBE",              // U+FFFE
    "\xEF\xBF\xBF",              // U+FFFF
    "\xF0\x90\x80\x80",          // U+10000
    "\xF0\x9F\x98\x80",          // 😀
    "\xF3\xBF\xBF\xBF",          // U+FFFFF
    "\xF4\x80\x80\x80",          // U+100000
    "\xF4\x8F\xBF\xBF",          // U+10FFFF
    "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5",   // κόσμε (Autobahn 6.2)
    "Hello-\xC2\xB5@\xC3\x9F\xC3\xB6\xC3\xA4\xC3\xBC\xC3\xA0\xC3\xA1-UTF-8!!",   // Autobahn 6.1/6.2
    "\xE2\x82\xAC\xF0\x9F\x98\x80 mixed \xC3\xA9\xED\x9F\xBF\xEE\x80\x80 text \xF4\x8F\xBF\xBF end",
};

struct bad_utf8 {
    std::string s;
    std::size_t first_bad;   // the byte at which feed() must fail
};

const std::vector<bad_utf8> invalid_utf8 = {
    {"\x80", 0},
    {"\xBF", 0},
    {"a\x80" "b", 1},
    {"\xC2\x80\x80", 2},                   // extra continuation
    {"\xC0\x80", 0},                       // overlong NUL
    {"\xC0\xAF", 0},
    {"\xC1\xBF", 0},                       // overlong U+007F
    {"\xE0\x80\x80", 1},                   // overlong 3-byte
    {"\xE0\x80\xAF", 1},
    {"\xE0\x9F\xBF", 1},                   // overlong U+07FF
    {"\xF0\x80\x80\x80", 1},               // overlong 4-byte
    {"\xF0\x80\x80\xAF", 1},
    {"\xF0\x8F\xBF\xBF", 1},               // overlong U+FFFF
    {"\xED\xA0\x80", 1},                   // U+D800
    {"\xED\xAD\xBF", 1},                   // U+DB7F
    {"\xED\xB0\x80", 1},                   // U+DC00
    {"\xED\xBF\xBF", 1},                   // U+DFFF
    {"\xED\xA0\x80\xED\xB0\x80", 1},       // surrogate pair
    {"\xF4\x90\x80\x80", 1},               // U+110000
    {"\xF4\xBF\xBF\xBF", 1},
    {"\xF5\x80\x80\x80", 0},
    {"\xF7\xBF\xBF\xBF", 0},
    {"\xF8\x88\x80\x80\x80", 0},           // 5-byte form
    {"\xFC\x84\x80\x80\x80\x80", 0},       // 6-byte form
    {"\xFE", 0},
    {"\xFF", 0},
    {"\xC2\x41", 1},                       // lead byte then ASCII
    {"\xC2\xC2", 1},                       // lead byte then lead byte
    {"\xE1\x80\x41", 2},
    {"\xE1\x41", 1},
    {"\xF1\x80\x80\x41", 3},
    {"\xF1\x80\x80\xC0", 3},
    {"\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80\x65\x64\x69\x74\x65\x64", 12},   // Autobahn 6.3.1
};

const std::vector<std::string> truncated_utf8 = {
    "\xC2", "\xDF", "\xE0", "\xE0\xA0", "\xE2\x82", "\xED\x9F", "\xF0", "\xF0\x90", "\xF0\x90\x80",
    "\xF4\x8F\xBF", "abc\xCE", "\xCE\xBA\xE1\xBD", "0123456789abcdef\xF0\x9F\x98",
};

TEST(Utf8, ValidStrings) {
    for (const auto& s : valid_utf8) {
        EXPECT_TRUE(gw::detail::is_valid_utf8(s)) << hex(s);
        EXPECT_TRUE(reference_utf8(s)) << hex(s);
        gw::detail::utf8_validator v;
        EXPECT_TRUE(v.feed(s));
        EXPECT_TRUE(v.complete());
    }
}

TEST(Utf8, ValidStringsSplitAtEveryBoundary) {
    for (const auto& s : valid_utf8) {
        for (std::size_t a = 0; a <= s.size(); ++a) {
            for (std::size_t b = a; b <= s.size(); ++b) {
                gw::detail::utf8_validator v;
                ASSERT_TRUE(v.feed(std::string_view(s).substr(0, a))) << hex(s) << " at " << a;
                ASSERT_TRUE(v.feed(std::string_view(s).substr(a, b - a))) << hex(s) << " at " << a << "," << b;
                ASSERT_TRUE(v.feed(std::string_view(s).substr(b))) << hex(s) << " at " << a << "," << b;
                EXPECT_TRUE(v.complete());
            }
        }
    }
}

TEST(Utf8, ValidStringsByteByByte) {
    for (const auto& s : valid_utf8) {
        gw::detail::utf8_validator v;
        for (std::size_t i = 0; i < s.size(); ++i) {
            ASSERT_TRUE(v.feed(std::string_view(s).substr(i, 1))) << hex(s) << " at " << i;
            EXPECT_EQ(v.complete(), reference_utf8(std::string_view(s).substr(0, i + 1)));
        }
        EXPECT_TRUE(v.complete());
    }
}

TEST(Utf8, InvalidStrings) {
    for (const auto& [s, first_bad] : invalid_utf8) {
        EXPECT_FALSE(gw::detail::is_valid_utf8(s)) << hex(s);
        EXPECT_FALSE(reference_utf8(s)) << hex(s);
        EXPECT_EQ(reference_first_bad(s), first_bad) << hex(s);   // the table itself is right
        gw::detail::utf8_validator v;
        EXPECT_FALSE(v.feed(s)) << hex(s);
    }
}

TEST(Utf8, EveryByteF5ToFFIsInvalid) {
    for (int b = 0xF5; b <= 0xFF; ++b) {
        std::string s(1, static_cast<char>(b));
        EXPECT_FALSE(gw::detail::is_valid_utf8(s)) << b;
        EXPECT_FALSE(gw::detail::is_valid_utf8(s + "\x80\x80\x80")) << b;
        EXPECT_FALSE(gw::detail::is_valid_utf8("abcdefgh" + s)) << b;
    }
    EXPECT_FALSE(gw::detail::is_valid_utf8("\xC0"));
    EXPECT_FALSE(gw::detail::is_valid_utf8("\xC1"));
}

TEST(Utf8, InvalidFailsAtTheFirstBadByte) {
    for (const auto& [s, first_bad] : invalid_utf8)
        EXPECT_EQ(validator_first_bad(s), first_bad) << hex(s);
}

TEST(Utf8, InvalidFailsFastInTheChunkWithTheBadByte) {
    // A valid prefix, then the bad sequence, then more valid bytes. For every split that puts the first
    // bad byte in the second chunk, chunk one passes and chunk two fails.
    const std::string prefix = "ok \xC3\xA9\xE2\x82\xAC ascii run ";
    const std::string suffix = " more valid text \xF0\x9F\x98\x80 after";
    for (const auto& [bad, first_bad] : invalid_utf8) {
        const std::string s = prefix + bad + suffix;
        const std::size_t at = prefix.size() + first_bad;
        ASSERT_EQ(reference_first_bad(s), at) << hex(s);
        for (std::size_t a = 0; a <= at; ++a) {
            for (std::size_t b = at + 1; b <= s.size(); ++b) {
                gw::detail::utf8_validator v;
                ASSERT_TRUE(v.feed(std::string_view(s).substr(0, a))) << hex(bad) << " split " << a;
                ASSERT_FALSE(v.feed(std::string_view(s).substr(a, b - a))) << hex(bad) << " split " << a << "," << b;
            }
        }
    }
}

TEST(Utf8, TruncatedAtTheEndIsIncomplete) {
    for (const auto& s : truncated_utf8) {
        gw::detail::utf8_validator v;
        EXPECT_TRUE(v.feed(s)) << hex(s);
        EXPECT_FALSE(v.complete()) << hex(s);
        EXPECT_FALSE(gw::detail::is_valid_utf8(s)) << hex(s);
    }
}

TEST(Utf8, TruncatedThenCompletedInLaterChunk) {
    gw::detail::utf8_validator v;
    EXPECT_TRUE(v.feed("abc\xF0"));
    EXPECT_FALSE(v.complete());
    EXPECT_TRUE(v.feed("\x9F"));
    EXPECT_FALSE(v.complete());
    EXPECT_TRUE(v.feed("\x98"));
    EXPECT_FALSE(v.complete());
    EXPECT_TRUE(v.feed("\x80xyz"));
    EXPECT_TRUE(v.complete());
    // A truncated sequence followed by ASCII in the next chunk fails there.
    gw::detail::utf8_validator w;
    EXPECT_TRUE(w.feed("\xE2\x82"));
    EXPECT_FALSE(w.feed("A"));
}

TEST(Utf8, ResetForgetsAPartialSequence) {
    gw::detail::utf8_validator v;
    EXPECT_TRUE(v.feed("\xE2\x82"));
    EXPECT_FALSE(v.complete());
    v.reset();
    EXPECT_TRUE(v.complete());
    EXPECT_TRUE(v.feed("A"));
    EXPECT_TRUE(v.complete());
}

TEST(Utf8, AsciiFastPathBoundaries) {
    // A multibyte (or bad) character at every offset of strings around the 8-byte word size.
    const std::string inserts[] = {"\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xED\x9F\xBF", "\xF4\x8F\xBF\xBF"};
    const std::string bad_inserts[] = {"\x80", "\xC0\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xFF", "\xC3"};
    for (std::size_t len : {7u, 8u, 9u, 15u, 16u, 17u, 24u, 25u, 31u, 32u, 33u}) {
        for (std::size_t unaligned = 0; unaligned < 8; ++unaligned) {
            // Good characters: strings of exactly len bytes.
            for (const auto& ins : inserts) {
                if (ins.size() > len) continue;
                for (std::size_t at = 0; at + ins.size() <= len; ++at) {
                    std::string s(len, 'x');
                    s.replace(at, ins.size(), ins);
                    std::string storage = std::string(unaligned, '-') + s;
                    std::string_view view = std::string_view(storage).substr(unaligned);
                    EXPECT_TRUE(gw::detail::is_valid_utf8(view)) << hex(s);
                    // Truncated at the end: only the last character's bytes are missing.
                    if (at + ins.size() == len) {
                        gw::detail::utf8_validator v;
                        EXPECT_TRUE(v.feed(view.substr(0, len - 1))) << hex(s);
                        EXPECT_FALSE(v.complete()) << hex(s);
                    }
                }
            }
            // Bad characters: the validator must fail at exactly the reference's byte.
            for (const auto& ins : bad_inserts) {
                for (std::size_t at = 0; at < len; ++at) {
                    std::string s(len, 'x');
                    s.replace(at, std::min(ins.size(), len - at), ins.substr(0, len - at));
                    std::string storage = std::string(unaligned, '-') + s;
                    std::string_view view = std::string_view(storage).substr(unaligned);
                    EXPECT_EQ(gw::detail::is_valid_utf8(view), reference_utf8(s)) << hex(s);
                    gw::detail::utf8_validator v;
                    const std::size_t bad = reference_first_bad(s);
                    if (bad == std::string_view::npos) {
                        EXPECT_TRUE(v.feed(view)) << hex(s);
                    } else {
                        // Chunk one ends just before the bad byte; chunk two holds it and the rest.
                        EXPECT_TRUE(v.feed(view.substr(0, bad))) << hex(s);
                        EXPECT_FALSE(v.feed(view.substr(bad))) << hex(s);
                    }
                }
            }
        }
    }
}

TEST(Utf8, AgreesWithReferenceOnAllTwoByteStrings) {
    for (int a = 0; a < 256; ++a) {
        for (int b = 0; b < 256; ++b) {
            const char raw[2] = {static_cast<char>(a), static_cast<char>(b)};
            std::string_view s(raw, 2);
            ASSERT_EQ(gw::detail::is_valid_utf8(s), reference_utf8(s)) << hex(s);
            ASSERT_EQ(validator_first_bad(s), reference_first_bad(s)) << hex(s);
        }
    }
}

TEST(Utf8, AgreesWithReferenceOnBoundaryBytes) {
    // All 4-byte strings over the bytes where UTF-8's ranges change.
    const unsigned char edge[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0,
                                  0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF7, 0xF8, 0xFF};
    for (unsigned char a : edge)
        for (unsigned char b : edge)
            for (unsigned char c : edge)
                for (unsigned char d : edge) {
                    const char raw[4] = {static_cast<char>(a), static_cast<char>(b), static_cast<char>(c),
                                         static_cast<char>(d)};
                    std::string_view s(raw, 4);
                    ASSERT_EQ(gw::detail::is_valid_utf8(s), reference_utf8(s)) << hex(s);
                    gw::detail::utf8_validator v;
                    bool fed = v.feed(s);
                    ASSERT_EQ(fed, reference_first_bad(s) == std::string_view::npos) << hex(s);
                    if (fed) {
                        ASSERT_EQ(v.complete(), reference_utf8(s)) << hex(s);
                    }
                }
}

TEST(Utf8, AllCodePointsEncodeValid) {
    // Every scalar value, encoded by hand, is accepted; every surrogate is refused.
    for (std::uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
        std::string s;
        if (cp < 0x80) s += static_cast<char>(cp);
        else if (cp < 0x800) s += static_cast<char>(0xC0 | (cp >> 6)), s += static_cast<char>(0x80 | (cp & 0x3F));
        else if (cp < 0x10000) {
            s += static_cast<char>(0xE0 | (cp >> 12));
            s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            s += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            s += static_cast<char>(0xF0 | (cp >> 18));
            s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            s += static_cast<char>(0x80 | (cp & 0x3F));
        }
        const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
        ASSERT_EQ(gw::detail::is_valid_utf8(s), !surrogate) << std::hex << cp;
    }
}

} // namespace

// utf8_repaired: what a WHATWG decoder (Node's, reading an Engine.IO polling body) makes of bytes
// that are not UTF-8: each maximal part of an ill-formed sequence becomes one U+FFFD.
TEST(Utf8Repaired, IllFormedPartsBecomeReplacementCharacters) {
    const std::string fffd = "\xEF\xBF\xBD";
    EXPECT_EQ(gw::detail::utf8_repaired("plain \xC3\xA9\xF0\x9F\x98\x80"), "plain \xC3\xA9\xF0\x9F\x98\x80");   // valid stays
    EXPECT_EQ(gw::detail::utf8_repaired("h\xE9llo"), "h" + fffd + "llo");        // Latin-1, as python-engineio posts it
    EXPECT_EQ(gw::detail::utf8_repaired("a\xF0\x9F\x98"), "a" + fffd);           // a truncated sequence: one
    EXPECT_EQ(gw::detail::utf8_repaired("\xED\xA0\x80"), fffd + fffd + fffd);    // a surrogate: three
    EXPECT_EQ(gw::detail::utf8_repaired("\xC0\xAF"), fffd + fffd);               // overlong
    EXPECT_EQ(gw::detail::utf8_repaired("\xF4\x90\x80\x80"), fffd + fffd + fffd + fffd);   // past U+10FFFF
    EXPECT_EQ(gw::detail::utf8_repaired("\xE2\x82"), fffd);
    EXPECT_EQ(gw::detail::utf8_repaired(""), "");
    for (const char* bad : {"\xFF", "\x80x", "\xE2\x28\xA1", "x\xF0\x28\x8C\x28"})
        EXPECT_TRUE(gw::detail::is_valid_utf8(gw::detail::utf8_repaired(bad))) << bad;
}
