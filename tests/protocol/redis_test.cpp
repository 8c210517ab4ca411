// gw::redis::url::parse (REDIS_URL: redis://[[user]:password@]host[:port][/db], rediss://), the
// RESP request encoding, and Redis Cluster's routing: hash slots (CRC16-XMODEM, hashtags), CLUSTER
// SLOTS replies, MOVED/ASK redirections and the slot table. Pure functions, no sockets and no hiredis.

#include <gw/protocol/redis.hpp>

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>
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

// ---- Redis Cluster routing

TEST(RedisCluster, Crc16IsXmodem) {
    EXPECT_EQ(redis::detail::crc16("123456789"), 0x31C3);   // the check value of CRC-16/XMODEM
    EXPECT_EQ(redis::detail::crc16(""), 0);
    EXPECT_EQ(redis::detail::crc16("A"), 0x58E5);
    EXPECT_EQ(redis::detail::crc16(std::string_view("\0\xff", 2)), 0x1EF0);
    static_assert(redis::detail::crc16("123456789") == 0x31C3, "usable at compile time");
}

TEST(RedisCluster, KeySlotsAsRedisComputesThem) {
    using redis::detail::key_slot;
    EXPECT_EQ(key_slot("123456789"), 0x31C3 % 16384);
    // Values CLUSTER KEYSLOT gives.
    EXPECT_EQ(key_slot("foo"), 12182);
    EXPECT_EQ(key_slot("bar"), 5061);
    EXPECT_EQ(key_slot("hello"), 866);
    EXPECT_EQ(key_slot(""), 0);
    // Hashtags: only the part between the first { and the next } counts, when it is not empty.
    EXPECT_EQ(key_slot("{user1000}.following"), key_slot("{user1000}.followers"));
    EXPECT_EQ(key_slot("{user1000}.following"), key_slot("user1000"));
    EXPECT_EQ(key_slot("foo{}{bar}"), key_slot("foo{}{bar}"));
    EXPECT_NE(key_slot("foo{}{bar}"), key_slot("bar"));         // an empty tag: the whole key is hashed
    EXPECT_EQ(key_slot("foo{{bar}}zap"), key_slot("{bar"));     // the first { to the next }
    EXPECT_EQ(key_slot("foo{bar}{zap}"), key_slot("bar"));      // the first tag only
    EXPECT_EQ(key_slot("{foo"), key_slot("{foo"));
    EXPECT_NE(key_slot("{foo"), key_slot("foo"));               // no closing }: the whole key
    // A sharded adapter's channels: each its own slot, unless tagged.
    EXPECT_EQ(key_slot("socket.io#/#"), redis::detail::crc16("socket.io#/#") % 16384);
}

/// A reply built by hand, as hiredis would hand it over.
redis::reply integer(long long n) {
    redis::reply r;
    r.type = redis::reply::kind::integer;
    r.integer = n;
    return r;
}
redis::reply string(std::string s) {
    redis::reply r;
    r.type = redis::reply::kind::string;
    r.str = std::move(s);
    return r;
}
redis::reply array(std::vector<redis::reply> e) {
    redis::reply r;
    r.type = redis::reply::kind::array;
    r.elements = std::move(e);
    return r;
}

TEST(RedisCluster, ClusterSlotsReplies) {
    // Three masters, one with a replica, one range split in two; Redis 7 adds a map of metadata.
    const auto r = array({
        array({integer(0), integer(5460), array({string("127.0.0.1"), integer(7000), string("id-a"), array({})}),
               array({string("127.0.0.1"), integer(7003), string("id-d"), array({})})}),
        array({integer(5461), integer(10922), array({string(""), integer(7001), string("id-b")})}),
        array({integer(10923), integer(16000), array({string("10.0.0.3"), integer(7002), string("id-c")})}),
        array({integer(16001), integer(16383), array({string("?"), integer(7002)})}),
    });
    auto ranges = redis::detail::parse_cluster_slots(r, "seed.example");
    ASSERT_TRUE(ranges);
    ASSERT_EQ(ranges->size(), 4u);
    EXPECT_EQ((*ranges)[0], (redis::detail::slot_range{0, 5460, {"127.0.0.1", 7000}}));
    EXPECT_EQ((*ranges)[1], (redis::detail::slot_range{5461, 10922, {"seed.example", 7001}}));   // empty host: the one asked
    EXPECT_EQ((*ranges)[2], (redis::detail::slot_range{10923, 16000, {"10.0.0.3", 7002}}));
    EXPECT_EQ((*ranges)[3], (redis::detail::slot_range{16001, 16383, {"seed.example", 7002}}));
    // A cluster with no slot assigned yet.
    auto none = redis::detail::parse_cluster_slots(array({}), "h");
    ASSERT_TRUE(none);
    EXPECT_TRUE(none->empty());
}

TEST(RedisCluster, WhatIsNotAClusterSlotsReply) {
    redis::reply error;
    error.type = redis::reply::kind::error;
    error.str = "ERR This instance has cluster support disabled";
    EXPECT_FALSE(redis::detail::parse_cluster_slots(error, "h"));
    EXPECT_FALSE(redis::detail::parse_cluster_slots(redis::reply{}, "h"));
    EXPECT_FALSE(redis::detail::parse_cluster_slots(string("x"), "h"));
    const redis::reply bad[] = {
        array({array({integer(0), integer(5460)})}),                                         // no master
        array({array({integer(10), integer(5), array({string("h"), integer(1)})})}),         // last < first
        array({array({integer(0), integer(16384), array({string("h"), integer(1)})})}),      // past the last slot
        array({array({integer(0), integer(1), array({string("h"), integer(0)})})}),          // port 0
        array({array({integer(0), integer(1), array({string("h"), integer(70000)})})}),      // port too large
        array({array({integer(0), integer(1), array({string("h"), string("7000")})})}),      // port not a number
        array({array({string("0"), integer(1), array({string("h"), integer(7000)})})}),      // slot not a number
        array({integer(0)}),
    };
    for (const auto& r : bad) EXPECT_FALSE(redis::detail::parse_cluster_slots(r, "h"));
}

TEST(RedisCluster, Redirections) {
    auto moved = redis::detail::parse_redirect("MOVED 3999 127.0.0.1:6381", "seed");
    ASSERT_TRUE(moved);
    EXPECT_FALSE(moved->ask);
    EXPECT_EQ(moved->slot, 3999);
    EXPECT_EQ(moved->to, (redis::detail::node_address{"127.0.0.1", 6381}));
    auto ask = redis::detail::parse_redirect("ASK 12182 ::1:7002", "seed");
    ASSERT_TRUE(ask);
    EXPECT_TRUE(ask->ask);
    EXPECT_EQ(ask->slot, 12182);
    EXPECT_EQ(ask->to, (redis::detail::node_address{"::1", 7002}));
    auto unknown = redis::detail::parse_redirect("MOVED 0 :7000", "seed");   // the node does not know its host
    ASSERT_TRUE(unknown);
    EXPECT_EQ(unknown->to, (redis::detail::node_address{"seed", 7000}));
    for (std::string_view e : {"ERR unknown command", "MOVED", "MOVED 3999", "MOVED x 127.0.0.1:1", "MOVED 16384 h:1",
                               "MOVED 1 h", "MOVED 1 h:0", "MOVED 1 h:65536", "MOVED 1 h:1x", "CLUSTERDOWN Hash slot not served"})
        EXPECT_FALSE(redis::detail::parse_redirect(e, "seed")) << e;
}

TEST(RedisCluster, SlotTable) {
    redis::detail::slot_table t;
    EXPECT_EQ(t.owner(0), nullptr);
    EXPECT_FALSE(t.complete());
    const redis::detail::node_address a{"127.0.0.1", 7000}, b{"127.0.0.1", 7001}, c{"127.0.0.1", 7002};
    std::vector<redis::detail::slot_range> ranges;
    ranges.push_back({0, 5460, a});
    ranges.push_back({5461, 10922, b});
    ranges.push_back({10923, 16383, c});
    t.assign(ranges);
    EXPECT_TRUE(t.complete());
    ASSERT_NE(t.owner(0), nullptr);
    EXPECT_EQ(*t.owner(0), a);
    EXPECT_EQ(*t.owner(5460), a);
    EXPECT_EQ(*t.owner(5461), b);
    EXPECT_EQ(*t.owner(redis::detail::key_slot("foo")), c);   // 12182
    EXPECT_EQ(t.masters(), (std::vector<redis::detail::node_address>{a, b, c}));
    // A MOVED moves one slot; a master left with none is no longer listed.
    t.move(12182, a);
    EXPECT_EQ(*t.owner(12182), a);
    EXPECT_EQ(*t.owner(12183), c);
    ranges.pop_back();
    ranges.push_back({10923, 16383, b});
    t.assign(ranges);
    EXPECT_EQ(t.masters(), (std::vector<redis::detail::node_address>{a, b}));
    ranges.pop_back();
    t.assign(ranges);
    EXPECT_FALSE(t.complete());
    EXPECT_EQ(t.owner(16383), nullptr);
}

} // namespace
