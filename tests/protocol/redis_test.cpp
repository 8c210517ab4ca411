// gw::redis::url::parse (REDIS_URL: redis://[[user]:password@]host[:port][/db], rediss://) and the
// RESP request encoding. Pure functions, no sockets and no hiredis.

#include <gw/protocol/redis.hpp>

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>

namespace {

namespace redis = gw::redis;

TEST(RedisUrl, Defaults) {
    auto u = redis::url::parse("redis://");
    EXPECT_FALSE(u.tls);
    EXPECT_EQ(u.host, "localhost");
    EXPECT_EQ(u.port, 6379);
    EXPECT_EQ(u.db, 0);
    EXPECT_TRUE(u.user.empty());
    EXPECT_TRUE(u.password.empty());
    u = redis::url::parse("redis://cache.internal");
    EXPECT_EQ(u.host, "cache.internal");
    EXPECT_EQ(u.port, 6379);
    u = redis::url::parse("redis://cache:7000/");
    EXPECT_EQ(u.port, 7000);
    EXPECT_EQ(u.db, 0);
}

TEST(RedisUrl, Full) {
    auto u = redis::url::parse("rediss://alice:s3cret@db.example.com:6380/4");
    EXPECT_TRUE(u.tls);
    EXPECT_EQ(u.user, "alice");
    EXPECT_EQ(u.password, "s3cret");
    EXPECT_EQ(u.host, "db.example.com");
    EXPECT_EQ(u.port, 6380);
    EXPECT_EQ(u.db, 4);
    u = redis::url::parse("redis://:only-password@h");
    EXPECT_TRUE(u.user.empty());
    EXPECT_EQ(u.password, "only-password");
    u = redis::url::parse("redis://al%40ice:p%3Aw%2F%40d%25@h:1/15");
    EXPECT_EQ(u.user, "al@ice");
    EXPECT_EQ(u.password, "p:w/@d%");
    EXPECT_EQ(u.db, 15);
    u = redis::url::parse("redis://[::1]:6390/2");
    EXPECT_EQ(u.host, "::1");
    EXPECT_EQ(u.port, 6390);
    EXPECT_EQ(u.db, 2);
    u = redis::url::parse("redis://:pw@[fe80::1]");
    EXPECT_EQ(u.host, "fe80::1");
    EXPECT_EQ(u.port, 6379);
}

TEST(RedisUrl, BadInputNamesWhatIsWrong) {
    const std::pair<const char*, const char*> cases[] = {
        {"http://h", "scheme"},
        {"h:6379", "scheme"},
        {"redis://h:0", "port"},
        {"redis://h:65536", "port"},
        {"redis://h:63x9", "port"},
        {"redis://h:", "port is empty"},
        {"redis://h/zero", "database"},
        {"redis://h/-1", "database"},
        {"redis://alice@h", "needs a password"},
        {"redis://alice:@h", "password is empty"},
        {"redis://:p%zz@h", "percent-encoding in the password"},
        {"redis://a%2:p@h", "percent-encoding in the user"},
        {"redis://[::1:6379", "closing ]"},
        {"redis://[::1]x", "only :port"},
        {"redis://::1:6379", "brackets"},
        {"redis://h?db=1", "query"},
    };
    for (auto [text, why] : cases) {
        try {
            redis::url::parse(text);
            ADD_FAILURE() << text << " was accepted";
        } catch (const std::system_error& e) {
            EXPECT_EQ(e.code(), redis::errc::bad_url) << text;
            EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << text << ": " << e.what();
        }
    }
    // The password never reaches an error message.
    try {
        redis::url::parse("redis://u:hunter2@h:0");
        ADD_FAILURE();
    } catch (const std::system_error& e) {
        EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("u:***@h:0"), std::string::npos) << e.what();
    }
}

TEST(RedisResp, CommandsAreBinarySafeArraysOfBulkStrings) {
    std::string out;
    const std::string_view args[] = {"SET", std::string_view("k\0y", 3), ""};
    redis::detail::append_command(out, args);
    EXPECT_EQ(out, std::string("*3\r\n$3\r\nSET\r\n$3\r\nk\0y\r\n$0\r\n\r\n", 28));
}

} // namespace
