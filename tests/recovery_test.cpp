// The session store seam (include/gw/gateway/recovery.hpp) and its in-memory implementation:
// records kept once for a window, broadcasts kept in order with their offsets, and the ones a
// session missed picked by its rooms.
#include <gateway.hpp>

#include "support.hpp"

#include <gtest/gtest.h>

namespace {

using asio::awaitable;
using namespace std::chrono_literals;

gw::session_record record(std::string id, std::vector<std::string> rooms, std::uint64_t offset = 0) {
    gw::session_record r;
    r.id = std::move(id);
    r.nsp = "/chat";
    r.rooms = std::move(rooms);
    r.data = gw::json{{"user", "ada"}};
    r.offset = offset;
    return r;
}

gw::kept_broadcast sent(std::string text, std::vector<std::string> rooms, std::vector<std::string> except = {}) {
    gw::kept_broadcast b;
    b.rooms = std::move(rooms);
    b.except_rooms = std::move(except);
    b.message = std::make_shared<const gw::prepared>(std::move(text));
    return b;
}

std::vector<std::string> texts(const std::vector<gw::kept_broadcast>& bs) {
    std::vector<std::string> out;
    for (const auto& b : bs) out.push_back(b.message->text());
    return out;
}

TEST(Recovery, ARecordIsRestoredOnceWithinItsWindow) {
    asio::io_context io;
    gw::memory_session_store store;
    // Braced lists stay out of the coroutines: GCC 12 cannot keep their arrays in a frame.
    const std::vector<std::string> lobby{"lobby"}, none;
    test::run(io, [&]() -> awaitable<void> {
        co_await store.save("pid-1", record("sock-1", lobby, 4), 60s);
        auto r = co_await store.restore("pid-1");
        EXPECT_TRUE(r.has_value());
        if (r) {
            EXPECT_EQ(r->id, std::string("sock-1"));
            EXPECT_EQ(r->rooms, lobby);
            EXPECT_EQ(r->data["user"], std::string("ada"));
            EXPECT_EQ(r->offset, 4u);
        }
        EXPECT_FALSE((co_await store.restore("pid-1")).has_value());   // once
        EXPECT_FALSE((co_await store.restore("never")).has_value());
        co_await store.save("pid-2", record("sock-2", none), 0ms);          // a window already over
        EXPECT_FALSE((co_await store.restore("pid-2")).has_value());
    }());
}

TEST(Recovery, MissedBroadcastsFollowTheRoomsAndTheOffset) {
    asio::io_context io;
    gw::memory_session_store store;
    const std::vector<std::string> none, lobby{"lobby"}, games{"games"}, own{"sock-1"};
    const std::vector<std::string> for_lobby{"1 everyone", "2 lobby", "4 to sock-1"}, for_later{"4 to sock-1"},
        for_games{"1 everyone", "3 games", "5 everyone but the lobby"};
    test::run(io, [&]() -> awaitable<void> {
        EXPECT_EQ(co_await store.append("/chat", sent("1 everyone", none)), 1u);
        EXPECT_EQ(co_await store.append("/chat", sent("2 lobby", lobby)), 2u);
        EXPECT_EQ(co_await store.append("/chat", sent("3 games", games)), 3u);
        EXPECT_EQ(co_await store.append("/chat", sent("4 to sock-1", own)), 4u);
        EXPECT_EQ(co_await store.append("/chat", sent("5 everyone but the lobby", none, lobby)), 5u);
        EXPECT_EQ(co_await store.append("/other", sent("elsewhere", none)), 1u);   // offsets are per namespace
        const auto all = co_await store.missed(record("sock-1", lobby, 0));
        EXPECT_EQ(texts(all), for_lobby);
        const auto later = co_await store.missed(record("sock-1", lobby, 2));
        EXPECT_EQ(texts(later), for_later);
        const auto other = co_await store.missed(record("sock-2", games, 0));
        EXPECT_EQ(texts(other), for_games);
    }());
}

TEST(Recovery, AtMostMaxKeptBroadcastsPerNamespace) {
    asio::io_context io;
    gw::memory_session_store store(2);
    const std::vector<std::string> none, abc{"a", "b", "c"}, bc{"b", "c"};
    test::run(io, [&]() -> awaitable<void> {
        for (const auto& t : abc) co_await store.append("/chat", sent(t, none));
        EXPECT_EQ(texts(co_await store.missed(record("s", none, 0))), bc);
    }());
}

} // namespace
