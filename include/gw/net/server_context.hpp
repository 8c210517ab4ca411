// What a server shares with its connections, which keep it alive: admission (the connection
// limits), the connections of each event loop (heartbeats and shutdown walk them), the counters
// behind gw::metrics, and the log. Once called the "hub"; each job is a part of its own here.
#pragma once
#include "../detail/asio.hpp"
#include "../core/metrics.hpp"
#include "../core/vocabulary.hpp"
#include "../protocol/deflate.hpp"
#include "http_request.hpp"

namespace gw::inline v0::detail {

class connection_impl;

/// A counter one thread writes and any thread reads: a relaxed load and store, no locked add.
struct owned_counter {
    std::atomic<std::uint64_t> value{0};
    void add(std::uint64_t n = 1) noexcept { value.store(value.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
    std::uint64_t get() const noexcept { return value.load(std::memory_order_relaxed); }
};

/// One event loop's part: its connections in a list, its clock and heartbeat timer, and the
/// traffic its thread counts. A cache line of its own keeps loops from slowing each other down.
struct alignas(64) loop_state {
    std::mutex lock;   // a connection's last handle may go on another thread
    connection_impl* first = nullptr;
    std::uint32_t now = 0;                 // the server's clock as of this loop's last sweep
    asio::steady_timer* sweep = nullptr;   // the loop's heartbeat timer, while it runs
    owned_counter messages_in, bytes_in, messages_out, bytes_out, dropped, slow_closes, ping_timeouts;
};

/// The connection limits: how many are in, in all and per remote address.
class admission {
public:
    admission(std::size_t max_total, std::size_t max_per_address) : max_total_(max_total), max_per_address_(max_per_address) {}

    /// Counts a new connection in, or says why it may not come in: 503 (the server is full) or 429
    /// (its address is). A connection counted in is counted out by release().
    int admit(const asio::ip::address& from) {
        if (live_.fetch_add(1, std::memory_order_relaxed) >= max_total_) {
            live_.fetch_sub(1, std::memory_order_relaxed);
            return 503;
        }
        if (max_per_address_) {
            std::lock_guard hold(lock_);
            auto& n = per_address_[from];
            if (n >= max_per_address_) {
                live_.fetch_sub(1, std::memory_order_relaxed);
                return 429;
            }
            ++n;
        }
        return 0;
    }
    /// Counts a connection out; true when it was the last one.
    bool release(const asio::ip::address& from) {
        const bool last = live_.fetch_sub(1, std::memory_order_acq_rel) == 1;
        if (max_per_address_) {
            std::lock_guard hold(lock_);
            if (auto it = per_address_.find(from); it != per_address_.end() && --it->second == 0) per_address_.erase(it);
        }
        return last;
    }
    std::size_t live() const noexcept { return live_.load(std::memory_order_acquire); }

private:
    std::atomic<std::size_t> live_{0};   // counted in and not yet released
    const std::size_t max_total_, max_per_address_;
    std::mutex lock_;
    std::unordered_map<asio::ip::address, std::size_t> per_address_;
};

/// Handshakes answered: accepted, and refused by HTTP status.
struct handshake_counters {
    /// Statuses counted apart; others count under 999.
    static constexpr std::array<int, 13> statuses{0, 400, 401, 403, 404, 405, 426, 429, 431, 500, 503, 505, 999};
    std::atomic<std::uint64_t> accepted{0};
    std::array<std::atomic<std::uint64_t>, statuses.size()> refused{};

    void refuse(int status) noexcept {
        std::size_t i = 0;
        while (i + 1 < statuses.size() && statuses[i] != status) ++i;
        refused[i].fetch_add(1, std::memory_order_relaxed);
    }
};

/// options.log with the connection it is about; nothing is built when no one listens.
struct server_log {
    std::function<void(log_level, std::string_view)> sink;

    void say(log_level level, std::string_view what) const {
        if (!sink) return;
        try {
            sink(level, what);
        } catch (...) {   // a logger that throws loses its line, not the connection
        }
    }
    void say(log_level level, std::string_view what, const http_request& about) const {
        if (!sink) return;
        std::error_code ec;
        const auto& ep = about.remote_endpoint();
        std::string line(what);
        line.append(" (").append(ep.address().to_string(ec)).append(":").append(std::to_string(ep.port())).append(")");
        say(level, line);
    }
    /// The completion handler of a spawned coroutine: what it threw reaches the log, never nowhere.
    auto report(std::string what) const {
        return [sink = sink, what = std::move(what)](std::exception_ptr e) {
            if (!e || !sink) return;
            std::string line = what + " failed: ";
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                line += x.what();
            } catch (...) {
                line += "an exception that is not a std::exception";
            }
            try {
                sink(log_level::error, line);
            } catch (...) {
            }
        };
    }
};

/// Everything a server shares with its connections; each connection keeps it alive.
struct server_context {
    server_context(std::size_t loop_count, std::size_t max_total, std::size_t max_per_address)
        : loops(new loop_state[loop_count]), loop_count(loop_count), limits(max_total, max_per_address) {}

    std::unique_ptr<loop_state[]> loops;
    const std::size_t loop_count;
    admission limits;
    handshake_counters handshakes;
    server_log log;
    std::atomic<bool> retired{false};   // the server is gone: its sweeps stop

    /// Counts a refused request; logs why, when it was answered.
    void rejected(int status, std::string_view why = {}, const http_request* about = nullptr) {
        handshakes.refuse(status);
        if (about) log.say(log_level::info, "refused a request: " + std::to_string(status) + " " + std::string(why), *about);
    }

    /// A connection went: counts it out, and after the last one wakes a stop() that waits and
    /// gives the heap back.
    void release(const asio::ip::address& from) {
        if (!limits.release(from)) return;
        give_back();
        std::function<void()> wake;
        {
            std::lock_guard hold(empty_lock);
            wake = on_empty;
        }
        if (wake) wake();
    }
    /// Set while a stop() waits for the last connection.
    void when_empty(std::function<void()> f) {
        std::lock_guard hold(empty_lock);
        on_empty = std::move(f);
    }

    /// Milliseconds since the server began.
    std::uint32_t clock() const noexcept {
        return static_cast<std::uint32_t>(
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - epoch).count());
    }

    /// Reads the counters into m (any thread).
    void read(gw::metrics& m) const {
        m.connections = limits.live();
        m.handshakes_accepted = handshakes.accepted.load(std::memory_order_relaxed);
        for (std::size_t i = 0; i < handshakes.statuses.size(); ++i)
            if (auto n = handshakes.refused[i].load(std::memory_order_relaxed)) m.handshakes_rejected.emplace_back(handshakes.statuses[i], n);
        for (std::size_t i = 0; i < loop_count; ++i) {
            const auto& l = loops[i];
            m.messages_in += l.messages_in.get();
            m.bytes_in += l.bytes_in.get();
            m.messages_out += l.messages_out.get();
            m.bytes_out += l.bytes_out.get();
            m.dropped += l.dropped.get();
            m.slow_consumer_closes += l.slow_closes.get();
            m.ping_timeouts += l.ping_timeouts.get();
        }
        m.deflate_connections = static_cast<std::uint64_t>(std::max<std::int64_t>(0, deflate_sessions().load(std::memory_order_relaxed)));
#if defined(GATEWAY_DEFLATE)
        m.deflate_streams = static_cast<std::uint64_t>(std::max<std::int64_t>(0, zlib_streams().load(std::memory_order_relaxed)));
        m.deflate_memory_bytes = static_cast<std::uint64_t>(std::max<std::int64_t>(0, zlib_bytes().load(std::memory_order_relaxed)));
#endif
    }

private:
    /// With no connection left, hands the heap that connections freed back to the system (glibc
    /// keeps it otherwise), at most once a second: after a burst, a quiet server shrinks back.
    void give_back() noexcept {
#if defined(__GLIBC__)
        const std::uint32_t now = clock();
        std::uint32_t last = trimmed_at.load(std::memory_order_relaxed);
        if (now - last < 1000 || !trimmed_at.compare_exchange_strong(last, now, std::memory_order_relaxed)) return;
        ::malloc_trim(0);
#endif
    }

    const std::chrono::steady_clock::time_point epoch = std::chrono::steady_clock::now();
    std::atomic<std::uint32_t> trimmed_at{0};   // clock() of the last give_back()
    std::mutex empty_lock;
    std::function<void()> on_empty;
};

} // namespace gw::v0::detail
