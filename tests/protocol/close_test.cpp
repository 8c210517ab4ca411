// Close frames: which close codes a peer may send, and check_close_payload()'s verdict on code and
// reason. Pure functions, no sockets.

#include "protocol_support.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace {

using namespace protocol_test;
using gw::close_code;

TEST(Close, ValidCodesFollowTheRule) {
    for (int c = 0; c < 6000; ++c) {
        const bool expected = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1011) || (c >= 3000 && c <= 4999);
        EXPECT_EQ(gw::detail::is_valid_close_code(static_cast<std::uint16_t>(c)), expected) << c;
    }
    EXPECT_FALSE(gw::detail::is_valid_close_code(65535));
}

TEST(Close, NamedCodes) {
    auto ok = [](close_code c) { return gw::detail::is_valid_close_code(static_cast<std::uint16_t>(c)); };
    EXPECT_TRUE(ok(close_code::normal));
    EXPECT_TRUE(ok(close_code::going_away));
    EXPECT_TRUE(ok(close_code::protocol_error));
    EXPECT_TRUE(ok(close_code::unsupported_data));
    EXPECT_FALSE(ok(close_code::no_status));
    EXPECT_FALSE(ok(close_code::abnormal));
    EXPECT_TRUE(ok(close_code::invalid_payload));
    EXPECT_TRUE(ok(close_code::policy_violation));
    EXPECT_TRUE(ok(close_code::message_too_big));
    EXPECT_TRUE(ok(close_code::mandatory_extension));
    EXPECT_TRUE(ok(close_code::internal_error));
}

std::string close_payload(std::uint16_t code, std::string_view reason = "") {
    std::string p;
    p += static_cast<char>(code >> 8);
    p += static_cast<char>(code & 0xFF);
    p += reason;
    return p;
}

TEST(Close, EmptyPayloadIsOk) { EXPECT_EQ(gw::detail::check_close_payload(""), 0); }

TEST(Close, OneBytePayloadIs1002) {
    EXPECT_EQ(gw::detail::check_close_payload("\x03"), 1002);
    EXPECT_EQ(gw::detail::check_close_payload(std::string(1, '\0')), 1002);
}

TEST(Close, InvalidCodeIs1002) {
    for (std::uint16_t c : {0, 1, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
        EXPECT_EQ(gw::detail::check_close_payload(close_payload(c)), 1002) << c;
        EXPECT_EQ(gw::detail::check_close_payload(close_payload(c, "bye")), 1002) << c;
    }
}

TEST(Close, ValidCodeWithoutReasonIsOk) {
    for (std::uint16_t c : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999})
        EXPECT_EQ(gw::detail::check_close_payload(close_payload(c)), 0) << c;
    EXPECT_EQ(gw::detail::check_close_payload("\x03\xE8"), 0);   // 1000 by hand
}

TEST(Close, ValidCodeWithUtf8ReasonIsOk) {
    EXPECT_EQ(gw::detail::check_close_payload(close_payload(1000, "bye")), 0);
    EXPECT_EQ(gw::detail::check_close_payload(close_payload(1001, "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5")), 0);
    EXPECT_EQ(gw::detail::check_close_payload(close_payload(4000, "\xF4\x8F\xBF\xBF")), 0);
}

TEST(Close, InvalidUtf8ReasonIs1007) {
    for (auto reason : {"\xFF", "bye\x80", "\xC0\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xCE", "ab\xE2\x82"})
        EXPECT_EQ(gw::detail::check_close_payload(close_payload(1000, reason)), 1007) << hex(reason);
}

TEST(Close, InvalidCodeWinsOverInvalidReason) {
    EXPECT_EQ(gw::detail::check_close_payload(close_payload(1005, "\xFF")), 1002);
}

TEST(Close, MaximumReasonIsOk) {
    EXPECT_EQ(gw::detail::check_close_payload(close_payload(1000, std::string(123, 'r'))), 0);
    std::string multibyte;
    while (multibyte.size() + 2 <= 123) multibyte += "\xC3\xA9";
    multibyte += 'x';
    ASSERT_EQ(multibyte.size(), 123u);
    EXPECT_EQ(gw::detail::check_close_payload(close_payload(1000, multibyte)), 0);
}

} // namespace
