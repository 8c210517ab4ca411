// The second translation unit: the same header again, so a missing `inline` fails to link.
#include "gateway.hpp"

#include <gtest/gtest.h>

std::string accept_key_from_b(std::string_view key) { return gw::detail::accept_key(key); }

TEST(TwoUnits, CategoryIsTheSameObjectInBothUnits) {
    std::error_code ec = gw::errc::closed;
    EXPECT_EQ(&ec.category(), &gw::error_category());
    EXPECT_EQ(ec.message(), "the WebSocket connection is closed");
}
