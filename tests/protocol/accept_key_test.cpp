// The opening handshake's keys: Sec-WebSocket-Accept from a client key (RFC 6455 section 4.2.2),
// and which Sec-WebSocket-Key values are the base64 of 16 bytes. Pure functions, no sockets.

#include "protocol_support.hpp"

#include <array>
#include <cstddef>
#include <string>

namespace {

using namespace protocol_test;

TEST(AcceptKey, Rfc6455Example) {
    EXPECT_EQ(gw::detail::accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(AcceptKey, Rfc6455ExampleKeyIsValid) {
    EXPECT_TRUE(gw::detail::is_valid_client_key("dGhlIHNhbXBsZSBub25jZQ=="));
    EXPECT_TRUE(gw::detail::is_valid_client_key("x3JJHMbDL1EzLkh9GBhXDw=="));   // RFC 6455 section 1.3
}

TEST(AcceptKey, AnyBase64Of16BytesIsValid) {
    std::array<unsigned char, 16> raw{};
    for (int fill : {0x00, 0xFF, 0xFB, 0x3E, 0x80}) {
        raw.fill(static_cast<unsigned char>(fill));
        auto key = gw::detail::base64_encode(raw);
        EXPECT_EQ(key.size(), 24u);
        EXPECT_TRUE(gw::detail::is_valid_client_key(key)) << key;
    }
    for (int i = 0; i < 16; ++i) raw[static_cast<std::size_t>(i)] = static_cast<unsigned char>(i * 17);
    EXPECT_TRUE(gw::detail::is_valid_client_key(gw::detail::base64_encode(raw)));
    EXPECT_TRUE(gw::detail::is_valid_client_key("/////////////////////w=="));   // 16 x 0xFF
    EXPECT_TRUE(gw::detail::is_valid_client_key("AAAAAAAAAAAAAAAAAAAAAA=="));   // 16 x 0x00
    EXPECT_TRUE(gw::detail::is_valid_client_key("+/+/+/+/+/+/+/+/+/+/+w=="));
}

TEST(AcceptKey, RejectsEmptyKey) { EXPECT_FALSE(gw::detail::is_valid_client_key("")); }

TEST(AcceptKey, RejectsWrongLength) {
    EXPECT_FALSE(gw::detail::is_valid_client_key("dGhlIHNhbXBsZSBub25jZQ="));     // 23 chars
    EXPECT_FALSE(gw::detail::is_valid_client_key("dGhlIHNhbXBsZSBub25jZQ==="));   // 25 chars
    EXPECT_FALSE(gw::detail::is_valid_client_key("dGhlIHNhbXBsZSBub25jZQ==dGhl"));
    EXPECT_FALSE(gw::detail::is_valid_client_key("AAAA"));
    EXPECT_FALSE(gw::detail::is_valid_client_key("=="));
}

TEST(AcceptKey, Rejects15And17ByteValues) {
    std::array<unsigned char, 15> k15{};
    std::array<unsigned char, 17> k17{};
    std::array<unsigned char, 18> k18{};
    k15.fill(0x41), k17.fill(0x41), k18.fill(0x41);
    auto e15 = gw::detail::base64_encode(k15), e17 = gw::detail::base64_encode(k17),
         e18 = gw::detail::base64_encode(k18);
    EXPECT_EQ(e15.size(), 20u);
    EXPECT_EQ(e17.size(), 24u);   // "...=": same length as a 16-byte key, one '=' only
    EXPECT_EQ(e18.size(), 24u);   // no padding at all
    EXPECT_FALSE(gw::detail::is_valid_client_key(e15)) << e15;
    EXPECT_FALSE(gw::detail::is_valid_client_key(e17)) << e17;
    EXPECT_FALSE(gw::detail::is_valid_client_key(e18)) << e18;
}

TEST(AcceptKey, RejectsMissingPadding) {
    EXPECT_FALSE(gw::detail::is_valid_client_key("dGhlIHNhbXBsZSBub25jZQ"));     // 22 chars
    EXPECT_FALSE(gw::detail::is_valid_client_key("dGhlIHNhbXBsZSBub25jZQAA"));   // 24 chars, no '='
    EXPECT_FALSE(gw::detail::is_valid_client_key("dGhlIHNhbXBsZSBub25jZQA="));
}

TEST(AcceptKey, RejectsInvalidCharacters) {
    const std::string good = "dGhlIHNhbXBsZSBub25jZQ==";
    for (char bad : {'*', '-', '_', ' ', '\t', '.', '!', '\0', '\x80', '\xFF', '"'}) {
        for (std::size_t at : {0u, 5u, 21u}) {
            std::string k = good;
            k[at] = bad;
            EXPECT_FALSE(gw::detail::is_valid_client_key(k)) << hex(k);
        }
    }
    EXPECT_FALSE(gw::detail::is_valid_client_key(" dGhlIHNhbXBsZSBub25jZQ="));   // 24 chars with a leading space
}

TEST(AcceptKey, RejectsPaddingInsideTheKey) {
    // '=' only ever ends base64; "===" or an '=' in the middle is not the encoding of 16 bytes.
    EXPECT_FALSE(gw::detail::is_valid_client_key("dGhlIHNhbXBsZSBub25jZ==="));
    EXPECT_FALSE(gw::detail::is_valid_client_key("dGhl=HNhbXBsZSBub25jZQ=="));
    EXPECT_FALSE(gw::detail::is_valid_client_key("====================AA=="));
}

} // namespace
