// Includes only gateway.hpp, first: the header needs nothing before it.
#include "gateway.hpp"

#include <gtest/gtest.h>

std::string accept_key_from_b(std::string_view key);

TEST(TwoUnits, InlineFunctionsAgreeAcrossTranslationUnits) {
    const std::string key = "dGhlIHNhbXBsZSBub25jZQ==";
    EXPECT_EQ(gw::detail::accept_key(key), accept_key_from_b(key));
    EXPECT_EQ(&gw::error_category(), &gw::error_category()) << "one category object";
}
