// The session store seam, for connection-state recovery (Socket.IO's connectionStateRecovery):
// when a client's transport drops, its socket's id, rooms and data are kept for a window with the
// broadcasts it could have received; a client that comes back within the window with its private
// session id gets them back. memory_session_store keeps them in one process; a Redis store will
// keep them where any node can restore them.
#pragma once
#include "../detail/asio.hpp"
#include "../detail/json.hpp"
#include "../protocol/prepared.hpp"

#ifndef GATEWAY_NO_JSON
namespace gw::inline v0 {

/// What recovery keeps of a socket whose transport dropped.
struct session_record {
    std::string id;                    ///< the socket's id, which it keeps when restored
    std::string nsp;                   ///< its namespace
    std::vector<std::string> rooms;    ///< the rooms it was in, its id-room aside
    json data;                         ///< what it carried (socket.data() when that holds JSON)
    std::string offset{};              ///< the offset of the last broadcast it was sent, as the client gave it
};

/// A broadcast as recovery keeps it: what was sent, and to whom.
struct kept_broadcast {
    std::string offset{};   ///< opaque to clients: a counter here, a stream entry id in Redis
    std::vector<std::string> rooms, except_rooms;   ///< as the emit named them (none: everyone)
    std::shared_ptr<const prepared> message;
};

/// Where sessions wait for their clients. Every operation completes on the caller's executor.
class session_store {
public:
    virtual ~session_store() = default;
    /// Keeps record under the private session id pid for window (a later save replaces it).
    virtual asio::awaitable<void> save(std::string pid, session_record record, std::chrono::milliseconds window) = 0;
    /// Takes the record back, once; nullopt when it is unknown or its window has passed.
    virtual asio::awaitable<std::optional<session_record>> restore(std::string pid) = 0;
    /// Keeps a broadcast of namespace nsp (b's rooms and except rooms) for as long as a session
    /// could miss it: assigns its offset (increasing within the namespace), has encode make the
    /// message as sent with that offset in it, keeps that message and returns it. Synchronous, since
    /// a broadcast is queued before its emit returns. A store whose broadcasts travel through the
    /// cluster (gw::redis's streams mode, where the offset is the Redis stream entry the broadcast
    /// becomes) keeps nothing here and returns nullptr: the namespace's adapter then keeps it.
    virtual std::shared_ptr<const prepared> append(std::string_view nsp, kept_broadcast b,
                                                   const std::function<std::shared_ptr<const prepared>(std::string_view)>& encode) = 0;
    /// The broadcasts of record's namespace after its offset that reached a socket in its rooms
    /// (or in its id-room), in order; nullopt when the offset is not one the store can continue
    /// from (never assigned, or older than what it keeps): then nothing can be recovered.
    virtual asio::awaitable<std::optional<std::vector<kept_broadcast>>> missed(session_record record) = 0;
};

namespace detail {

/// Whether a kept broadcast reached a socket with this id in these rooms.
inline bool reached(const kept_broadcast& b, const session_record& r) {
    auto in = [&](const std::string& room) {
        return room == r.id || std::find(r.rooms.begin(), r.rooms.end(), room) != r.rooms.end();
    };
    if (std::any_of(b.except_rooms.begin(), b.except_rooms.end(), in)) return false;
    return b.rooms.empty() || std::any_of(b.rooms.begin(), b.rooms.end(), in);
}

} // namespace detail

/// A session store in this process's memory: sessions expire after their window; broadcasts after
/// the longest window saved, or Socket.IO's 2 minutes when that is longer; at most max_kept
/// broadcasts per namespace are kept. Thread-safe.
class memory_session_store final : public session_store {
public:
    explicit memory_session_store(std::size_t max_kept = 10'000) : max_kept_(max_kept) {}

    asio::awaitable<void> save(std::string pid, session_record record, std::chrono::milliseconds window) override {
        std::lock_guard hold(lock_);
        const auto now = clock::now();
        forget(now);
        longest_ = std::max(longest_, window);
        sessions_[std::move(pid)] = {now + window, std::move(record)};
        co_return;
    }
    asio::awaitable<std::optional<session_record>> restore(std::string pid) override {
        std::lock_guard hold(lock_);
        forget(clock::now());
        auto it = sessions_.find(pid);
        if (it == sessions_.end()) co_return std::nullopt;
        session_record r = std::move(it->second.record);
        sessions_.erase(it);
        co_return r;
    }
    std::shared_ptr<const prepared> append(std::string_view nsp, kept_broadcast b,
                                           const std::function<std::shared_ptr<const prepared>(std::string_view)>& encode) override {
        std::lock_guard hold(lock_);
        auto it = logs_.find(nsp);
        if (it == logs_.end()) it = logs_.emplace(std::string(nsp), log{}).first;
        auto& log = it->second;
        const std::uint64_t n = ++log.last;
        b.offset = std::to_string(n);
        b.message = encode(b.offset);
        auto message = b.message;
        log.entries.push_back({clock::now(), n, std::move(b)});
        if (log.entries.size() > max_kept_) {
            log.entries.pop_front();
            log.dropped = true;
        }
        return message;
    }
    asio::awaitable<std::optional<std::vector<kept_broadcast>>> missed(session_record record) override {
        std::uint64_t from = 0;   // the offsets here are decimal counters
        const char* end = record.offset.data() + record.offset.size();
        if (const auto r = std::from_chars(record.offset.data(), end, from); r.ec != std::errc{} || r.ptr != end || record.offset.empty())
            co_return std::nullopt;
        std::lock_guard hold(lock_);
        forget(clock::now());
        std::vector<kept_broadcast> out;
        auto it = logs_.find(record.nsp);
        if (it == logs_.end()) co_return from == 0 ? std::optional(out) : std::nullopt;
        const log& l = it->second;
        // Known: assigned, and nothing after it forgotten (the oldest kept follows it at once).
        const std::uint64_t next = l.entries.empty() ? l.last + 1 : l.entries.front().n;
        if (from > l.last || (l.dropped && from + 1 < next)) co_return std::nullopt;
        for (const auto& e : l.entries)
            if (e.n > from && detail::reached(e.b, record)) out.push_back(e.b);
        co_return out;
    }

private:
    using clock = std::chrono::steady_clock;
    struct session {
        clock::time_point expires;
        session_record record;
    };
    struct entry {
        clock::time_point at;
        std::uint64_t n;   // b.offset as a number
        kept_broadcast b;
    };
    struct log {
        std::uint64_t last = 0;
        std::deque<entry> entries;
        bool dropped = false;   // entries were forgotten: offsets before the oldest are unknown
    };
    /// Drops the sessions past their window and the broadcasts no session could still miss.
    void forget(clock::time_point now) {
        std::erase_if(sessions_, [&](const auto& kv) { return kv.second.expires <= now; });
        for (auto& [nsp, l] : logs_)
            while (!l.entries.empty() && l.entries.front().at + longest_ <= now) {
                l.entries.pop_front();
                l.dropped = true;
            }
    }

    const std::size_t max_kept_;
    std::mutex lock_;
    std::chrono::milliseconds longest_{120'000};   // Socket.IO's default window
    std::unordered_map<std::string, session> sessions_;
    std::map<std::string, log, std::less<>> logs_;   // found by string_view
};

} // namespace gw::v0
#endif
