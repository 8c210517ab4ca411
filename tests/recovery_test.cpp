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
    r.offset = std::to_string(offset);   // the memory store's offsets are decimal counters
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
            EXPECT_EQ(r->offset, std::string("4"));
        }
        EXPECT_FALSE((co_await store.restore("pid-1")).has_value());   // once
        EXPECT_FALSE((co_await store.restore("never")).has_value());
        co_await store.save("pid-2", record("sock-2", none), 0ms);          // a window already over
        EXPECT_FALSE((co_await store.restore("pid-2")).has_value());
    }());
}

/// Keeps a broadcast of /chat (or nsp) whose text is "OFFSET text"; returns its offset.
std::uint64_t put(gw::memory_session_store& store, std::string text, std::vector<std::string> rooms,
                  std::vector<std::string> except = {}, std::string_view nsp = "/chat") {
    std::uint64_t got = 0;
    auto m = store.append(nsp, sent({}, std::move(rooms), std::move(except)), [&](std::string_view offset) {
        got = std::stoull(std::string(offset));
        return std::make_shared<const gw::prepared>(text);
    });
    EXPECT_EQ(m->text(), text);   // what encode made is what is kept and returned
    return got;
}

std::vector<std::string> texts(const std::optional<std::vector<gw::kept_broadcast>>& bs) {
    EXPECT_TRUE(bs.has_value());
    return bs ? texts(*bs) : std::vector<std::string>{};
}

TEST(Recovery, MissedBroadcastsFollowTheRoomsAndTheOffset) {
    asio::io_context io;
    gw::memory_session_store store;
    const std::vector<std::string> none, lobby{"lobby"}, games{"games"}, own{"sock-1"};
    const std::vector<std::string> for_lobby{"1 everyone", "2 lobby", "4 to sock-1"}, for_later{"4 to sock-1"},
        for_games{"1 everyone", "3 games", "5 everyone but the lobby"};
    EXPECT_EQ(put(store, "1 everyone", none), 1u);
    EXPECT_EQ(put(store, "2 lobby", lobby), 2u);
    EXPECT_EQ(put(store, "3 games", games), 3u);
    EXPECT_EQ(put(store, "4 to sock-1", own), 4u);
    EXPECT_EQ(put(store, "5 everyone but the lobby", none, lobby), 5u);
    EXPECT_EQ(put(store, "elsewhere", none, {}, "/other"), 1u);   // offsets are per namespace
    test::run(io, [&]() -> awaitable<void> {
        EXPECT_EQ(texts(co_await store.missed(record("sock-1", lobby, 0))), for_lobby);
        EXPECT_EQ(texts(co_await store.missed(record("sock-1", lobby, 2))), for_later);
        EXPECT_EQ(texts(co_await store.missed(record("sock-2", games, 0))), for_games);
        EXPECT_TRUE(texts(co_await store.missed(record("sock-2", games, 5))).empty());   // up to date
        EXPECT_FALSE((co_await store.missed(record("sock-2", games, 6))).has_value());   // never assigned
        auto not_ours = record("sock-2", games);
        not_ours.offset = "1700000000000-0";   // a Redis stream's: not an offset this store assigned
        EXPECT_FALSE((co_await store.missed(std::move(not_ours))).has_value());
    }());
}

TEST(Recovery, AtMostMaxKeptBroadcastsPerNamespace) {
    asio::io_context io;
    gw::memory_session_store store(2);
    const std::vector<std::string> none, bc{"b", "c"}, c{"c"};
    for (const char* t : {"a", "b", "c"}) put(store, t, none);
    test::run(io, [&]() -> awaitable<void> {
        EXPECT_FALSE((co_await store.missed(record("s", none, 0))).has_value());   // "a" is forgotten
        EXPECT_EQ(texts(co_await store.missed(record("s", none, 1))), bc);
        EXPECT_EQ(texts(co_await store.missed(record("s", none, 2))), c);
    }());
}

} // namespace
