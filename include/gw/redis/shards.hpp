// Sharded pub/sub over one Redis 7 or a Redis Cluster, found out at run time: the sharded cluster
// mode's SPUBLISH, SSUBSCRIBE and SHARDNUMSUB go through a shard_router. Against one Redis it is
// a command link and a subscriber link, as in the classic mode. Against a Redis Cluster (CLUSTER
// SLOTS answers) it keeps the slot table and a command link and a subscriber link per master: each
// channel is published to, subscribed on and counted at the master serving its hash slot, and the
// table is read again when Redis says it changed (MOVED, a shard channel dropped by a slot
// migration, a master lost). Behind GATEWAY_REDIS.
#pragma once
#include "../detail/asio.hpp"
#include "../protocol/redis.hpp"
#include "client.hpp"

namespace gw::inline v0::redis::detail {

/// What a shard_router did, readable from any thread.
struct shard_stats {
    bool connected = false;        ///< every link in use is up (none yet: false)
    std::uint64_t reconnects = 0;  ///< connections made again after a lost one
    std::uint64_t dropped = 0;     ///< publishes not sent: over the buffer, or no master for the slot
};

/// SPUBLISH, SSUBSCRIBE, SUNSUBSCRIBE and PUBSUB SHARDNUMSUB for one Redis 7 or a Redis Cluster,
/// behind the same calls. Until the first CLUSTER SLOTS is answered it does not know which: publishes
/// wait in a buffer (up to options::max_buffered_bytes) and subscriptions wait. Use it on its
/// executor's thread only (counters() excepted).
class shard_router : public std::enable_shared_from_this<shard_router> {
public:
    shard_router(asio::any_io_executor ex, url seed, options opts, std::function<void(const message&)> on_message)
        : ex_(std::move(ex)), seed_url_(std::move(seed)), opts_(std::move(opts)), on_message_(std::move(on_message)),
          topology_event_(ex_, asio::steady_timer::time_point::max()),
          refresh_wake_(ex_, asio::steady_timer::time_point::max()), pace_(ex_), detect_pause_(ex_) {}
    shard_router(const shard_router&) = delete;
    shard_router& operator=(const shard_router&) = delete;

    /// Connects to the seed and asks it whether it is a cluster node.
    void start() {
        seed_ = make_client(seed_url_);
        spawn(detect(), "finding out whether Redis is a cluster");
        spawn(refresher(), "reading the Redis Cluster's topology");
    }

    /// SPUBLISH from the links' thread; false when it was dropped (the buffer is full, or no master
    /// serves the channel's slot).
    bool spublish(const std::string& channel, std::string payload) {
        if (closed_) return false;
        switch (mode_) {
        case mode::unknown: {
            if (pending_bytes_ > 0 && pending_bytes_ + payload.size() > opts_.max_buffered_bytes) return dropped();
            pending_bytes_ += channel.size() + payload.size();
            pending_.emplace_back(channel, std::move(payload));
            return true;
        }
        case mode::single: {
            const std::string_view args[] = {"SPUBLISH", channel, payload};
            return seed_->enqueue(args, nullptr) || dropped();
        }
        case mode::cluster: return route(channel, std::move(payload), 0);
        }
        return false;
    }

    /// SSUBSCRIBE channel at the master serving its slot; completes once Redis confirmed it. While
    /// the topology moves (MOVED, a failover) it follows the channel to its new master; while
    /// Redis is away, it waits. The subscription holds from this call on.
    asio::awaitable<void> ssubscribe(std::string channel) {
        auto self = shared_from_this();
        wanted_.insert(channel);
        co_await detected();
        if (mode_ == mode::single) {
            if (wanted_.count(channel)) co_await single_sub_->change("ssubscribe", channel);
            co_return;
        }
        for (;;) {
            if (closed_) throw std::system_error(errc::closed, "Redis subscriber closed");
            if (!wanted_.count(channel)) co_return;   // unsubscribed meanwhile
            const auto gen = topology_gen_;
            if (auto* m = place(channel)) {
                auto sub = m->sub;
                try {
                    co_await sub->change("ssubscribe", channel);
                    co_return;
                } catch (const std::system_error& e) {
                    // A link closed because its master left, or a refusal the topology explains
                    // (MOVED, CLUSTERDOWN, TRYAGAIN): the next topology tells where to go.
                    const bool retry = (e.code() == errc::closed && !closed_) || (e.code() == errc::refused && retryable(e.what()));
                    if (!retry) throw;
                }
                request_refresh();
            } else {
                request_refresh();   // no master for its slot yet
            }
            co_await topology_changed(gen);
        }
    }

    /// SUNSUBSCRIBE channel wherever it is subscribed.
    asio::awaitable<void> sunsubscribe(std::string channel) {
        auto self = shared_from_this();
        wanted_.erase(channel);
        co_await detected();
        if (mode_ == mode::single) {
            if (!wanted_.count(channel)) co_await single_sub_->change("sunsubscribe", channel);
            co_return;
        }
        std::vector<std::shared_ptr<subscriber_link>> holders;
        for (auto& [name, m] : masters_)
            if (m.channels.erase(channel)) holders.push_back(m.sub);
        for (std::size_t i = 0; i < holders.size(); ++i) co_await holders[i]->change("sunsubscribe", channel);
    }

    /// PUBSUB SHARDNUMSUB channel, asked of the master serving the channel (Redis counts the
    /// subscribers of the node it is asked). std::system_error when no answer will come.
    asio::awaitable<reply> shardnumsub(std::string channel) {
        auto self = shared_from_this();
        co_await detected();
        std::vector<std::string_view> args;
        args.push_back("PUBSUB");
        args.push_back("SHARDNUMSUB");
        args.push_back(channel);
        if (mode_ == mode::single) co_return co_await seed_->command(args);
        auto* m = owner_of(channel);
        if (!m) {
            request_refresh();
            throw std::system_error(errc::connection_lost, "no Redis Cluster master serves " + channel + " yet");
        }
        auto cmd = m->cmd;
        co_return co_await cmd->command(args);
    }

    /// Stops every link; awaiting callers get errc::closed.
    void close() {
        if (closed_) return;
        closed_ = true;
        connected_ = false;
        if (seed_) seed_->close();
        if (single_sub_) single_sub_->close();
        for (auto& [name, m] : masters_) {
            m.cmd->close();
            m.sub->close();
        }
        pending_.clear();
        topology_event_.cancel();
        refresh_wake_.cancel();
        pace_.cancel();
        detect_pause_.cancel();
    }

    shard_stats counters() const noexcept {
        return {connected_.load(std::memory_order_relaxed), reconnects_.load(std::memory_order_relaxed),
                dropped_.load(std::memory_order_relaxed)};
    }

private:
    enum class mode : std::uint8_t { unknown, single, cluster };

    /// A master's links, and the channels its subscriber was asked to hold.
    struct master {
        node_address address;
        std::shared_ptr<client_link> cmd;
        std::shared_ptr<subscriber_link> sub;
        std::set<std::string> channels;
    };

    template <class A> void spawn(A&& a, const char* what) {
        asio::co_spawn(ex_, std::forward<A>(a), [log = opts_.log, what](std::exception_ptr e) {
            if (!e || !log) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::system_error& x) {
                if (x.code() != errc::closed) log(log_level::error, std::string(what) + ": " + x.what());
            } catch (const std::exception& x) {
                log(log_level::error, std::string(what) + ": " + x.what());
            }
        });
    }
    void say(log_level level, const std::string& line) const {
        if (opts_.log) opts_.log(level, line);
    }
    bool dropped() {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    /// A refusal that a newer topology may cure.
    static bool retryable(std::string_view error) {
        return error.find("MOVED") != std::string_view::npos || error.find("ASK") != std::string_view::npos ||
               error.find("CLUSTERDOWN") != std::string_view::npos || error.find("TRYAGAIN") != std::string_view::npos;
    }

    /// Options for one link: the caller's, with its state reported here too (for counters() and,
    /// in a cluster, a topology read again when a master is lost).
    options link_options(std::string name, bool subscriber) {
        options o = opts_;
        o.on_state = [weak = weak_from_this(), user = opts_.on_state, name = std::move(name), subscriber](bool up, std::string_view why) {
            if (auto self = weak.lock()) self->link_state(name, subscriber, up);
            if (user) user(up, why);
        };
        return o;
    }
    std::shared_ptr<client_link> make_client(const url& where) {
        auto l = std::make_shared<client_link>(ex_, where, link_options(address_of(where).name(), false));
        l->start();
        return l;
    }
    std::shared_ptr<subscriber_link> make_subscriber(const url& where, bool cluster) {
        auto l = std::make_shared<subscriber_link>(ex_, where, on_message_, link_options(address_of(where).name(), true));
        if (cluster) {
            l->on_shard_lost([weak = weak_from_this(), name = address_of(where).name()](const std::string& channel, const std::string& why) {
                if (auto self = weak.lock()) self->shard_lost(name, channel, why);
            });
        }
        l->start();
        return l;
    }
    static node_address address_of(const url& u) { return {u.host, u.port}; }

    void link_state(const std::string& name, bool subscriber, bool up) {
        if (closed_) return;
        if (up) {
            // A link to a node that was up before (this link, or an earlier one to that node): a reconnect.
            if (!ever_up_.insert((subscriber ? "sub " : "cmd ") + name).second) reconnects_.fetch_add(1, std::memory_order_relaxed);
        } else if (mode_ == mode::cluster) {
            request_refresh();   // a master lost: perhaps a replica serves its slots now
        }
        update_connected();
    }
    void update_connected() {
        bool up = false;
        if (mode_ == mode::single) {
            up = seed_->connected() && single_sub_ && single_sub_->connected();
        } else if (mode_ == mode::cluster) {
            up = !masters_.empty();
            for (const auto& [name, m] : masters_) up = up && m.cmd->connected() && m.sub->connected();
        }
        connected_ = up && !closed_;
    }

    /// The seed says whether it is a cluster node: CLUSTER SLOTS answers (cluster) or is refused
    /// (one Redis: "cluster support disabled", or a server without the command).
    asio::awaitable<void> detect() {
        auto self = shared_from_this();
        std::vector<std::string_view> args;
        args.push_back("CLUSTER");
        args.push_back("SLOTS");
        while (!closed_) {
            std::optional<reply> r;
            try {
                r = co_await seed_->command(args);
            } catch (const std::system_error& e) {
                if (closed_ || e.code() == errc::closed) co_return;
                // Lost before the answer, or AUTH refused: the link tries again by itself.
            }
            if (closed_) co_return;
            if (r) {
                auto ranges = parse_cluster_slots(*r, seed_url_.host);
                if (ranges) become_cluster(*ranges);
                else become_single();
                co_return;
            }
            detect_pause_.expires_after(std::max(opts_.reconnect_min, std::chrono::milliseconds(50)));
            co_await detect_pause_.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
        }
    }

    void become_single() {
        mode_ = mode::single;
        single_sub_ = make_subscriber(seed_url_, false);
        auto pending = std::move(pending_);
        pending_.clear();
        pending_bytes_ = 0;
        for (auto& [channel, payload] : pending) spublish(channel, std::move(payload));
        ++topology_gen_;
        topology_event_.cancel();
        update_connected();
    }

    void become_cluster(const std::vector<slot_range>& ranges) {
        mode_ = mode::cluster;
        say(log_level::info, "Redis at " + address_of(seed_url_).name() + " is a cluster node: sharded pub/sub follows its slots");
        apply(ranges);
        auto pending = std::move(pending_);
        pending_.clear();
        pending_bytes_ = 0;
        for (auto& [channel, payload] : pending) spublish(channel, std::move(payload));
        if (!table_.complete()) request_refresh();
    }

    /// Waits until the seed said what it is (or close()).
    asio::awaitable<void> detected() {
        while (mode_ == mode::unknown && !closed_)
            co_await topology_event_.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
        if (closed_) throw std::system_error(errc::closed, "Redis subscriber closed");
    }
    /// Waits until the topology read after gen is in place (or close()).
    asio::awaitable<void> topology_changed(std::uint64_t gen) {
        while (topology_gen_ == gen && !closed_)
            co_await topology_event_.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    }

    /// The master serving channel's slot, its links made if new; nullptr when none is known.
    master* owner_of(const std::string& channel) {
        const auto* a = table_.owner(key_slot(channel));
        return a ? &master_at(*a) : nullptr;
    }
    master& master_at(const node_address& a) {
        const auto name = a.name();
        auto it = masters_.find(name);
        if (it != masters_.end()) return it->second;
        url where = seed_url_;   // the same credentials and TLS; a cluster has database 0 only
        where.host = a.host;
        where.port = a.port;
        master m;
        m.address = a;
        // The seed's command link serves its own node: one connection fewer.
        m.cmd = name == address_of(seed_url_).name() ? seed_ : make_client(where);
        m.sub = make_subscriber(where, true);
        return masters_.emplace(name, std::move(m)).first->second;
    }

    /// Makes channel's owner the master asked to hold it (leaving any other that holds it); the
    /// caller sends the SSUBSCRIBE. nullptr when no master serves its slot.
    master* place(const std::string& channel) {
        auto* m = owner_of(channel);
        if (!m) return nullptr;
        for (auto& [name, other] : masters_) {
            if (&other == m || !other.channels.erase(channel)) continue;
            // Still subscribed there after a migration that did not drop it: let go.
            spawn(other.sub->change("sunsubscribe", channel), "leaving a shard channel's old master");
        }
        m->channels.insert(channel);
        return m;
    }

    /// Every wanted channel subscribed at its master: after a new topology, or a channel lost.
    void reconcile() {
        for (const auto& channel : wanted_) {
            auto* m = owner_of(channel);
            if (!m || m->channels.count(channel)) continue;
            place(channel);
            auto sub = m->sub;
            spawn(resubscribe(sub, channel), "subscribing a shard channel at its new master");
        }
    }
    asio::awaitable<void> resubscribe(std::shared_ptr<subscriber_link> sub, std::string channel) {
        try {
            co_await sub->change("ssubscribe", channel);
        } catch (const std::system_error& e) {
            // Refused or its master gone: shard_lost and the next topology deal with it.
            if (e.code() != errc::refused && e.code() != errc::closed) throw;
        }
    }

    /// A master's subscriber lost channel (why empty: Redis dropped it when its slot moved; else
    /// the error refusing it).
    void shard_lost(const std::string& name, const std::string& channel, const std::string& why) {
        if (closed_) return;
        if (auto it = masters_.find(name); it != masters_.end()) it->second.channels.erase(channel);
        if (!wanted_.count(channel)) return;
        if (!why.empty() && !retryable(why)) {
            say(log_level::warn, "Redis refused to subscribe " + channel + ": " + why);
            wanted_.erase(channel);
            return;
        }
        say(log_level::info, "Redis Cluster: shard channel " + channel + " left " + name + (why.empty() ? "" : " (" + why + ")") +
                                 "; reading the topology again");
        request_refresh();
    }

    /// SPUBLISH at the master serving channel; a MOVED reply sends it on (a few times at most).
    bool route(const std::string& channel, std::string payload, int hops) {
        auto* m = owner_of(channel);
        if (!m) {
            request_refresh();
            return dropped();
        }
        auto w = std::make_shared<waiter>(ex_);
        const std::string_view args[] = {"SPUBLISH", channel, payload};
        if (!m->cmd->enqueue(args, w)) return dropped();
        w->then = [weak = weak_from_this(), channel, payload = std::move(payload), hops, from = m->address](reply&& r) mutable {
            auto self = weak.lock();
            if (!self || self->closed_ || !r.is_error()) return;
            self->refused_publish(channel, std::move(payload), hops, from, r.str);
        };
        return true;
    }
    void refused_publish(const std::string& channel, std::string payload, int hops, const node_address& from, const std::string& error) {
        const auto moved = parse_redirect(error, from.host);
        if (moved && !moved->ask && hops < 5) {
            // The slot lives elsewhere now: correct that slot at once, read the rest again.
            table_.move(moved->slot, moved->to);
            request_refresh();
            say(log_level::debug, "SPUBLISH " + channel + " at " + from.name() + ": " + error + "; sent on");
            route(channel, std::move(payload), hops + 1);
            return;
        }
        if (retryable(error)) request_refresh();
        dropped_.fetch_add(1, std::memory_order_relaxed);
        say(log_level::warn, "Redis refused SPUBLISH " + channel + " at " + from.name() + ": " + error);
    }

    void request_refresh() {
        if (closed_ || mode_ != mode::cluster) return;
        refresh_wanted_ = true;
        refresh_wake_.cancel();
    }

    /// Reads the topology when asked, at most every 100 ms; while a master is unreachable, every
    /// reconnect_max too (its slots may move to a replica).
    asio::awaitable<void> refresher() {
        auto self = shared_from_this();
        using asio::experimental::as_tuple;
        while (!closed_) {
            while (!refresh_wanted_ && !closed_) co_await refresh_wake_.async_wait(as_tuple(asio::use_awaitable));
            if (closed_) break;
            refresh_wanted_ = false;
            const bool ok = co_await refresh_once();
            if (closed_) break;
            bool all_up = ok && table_.complete();
            for (const auto& [name, m] : masters_) all_up = all_up && m.cmd->connected() && m.sub->connected();
            if (!all_up) refresh_wanted_ = true;
            pace_.expires_after(all_up ? std::chrono::milliseconds(100) : std::max(opts_.reconnect_max, std::chrono::milliseconds(100)));
            co_await pace_.async_wait(as_tuple(asio::use_awaitable));
        }
    }

    /// CLUSTER SLOTS asked of a master that is up (the seed last); false when none answered.
    asio::awaitable<bool> refresh_once() {
        std::vector<std::pair<node_address, std::shared_ptr<client_link>>> ask;
        for (const auto& [name, m] : masters_)
            if (m.cmd->connected()) ask.emplace_back(m.address, m.cmd);
        if (seed_->connected()) ask.emplace_back(address_of(seed_url_), seed_);
        std::vector<std::string_view> args;
        args.push_back("CLUSTER");
        args.push_back("SLOTS");
        for (std::size_t i = 0; i < ask.size(); ++i) {
            std::optional<reply> r;
            try {
                r = co_await ask[i].second->command(args);
            } catch (const std::system_error&) {
                if (closed_) co_return false;
                continue;   // that link went down meanwhile: the next one
            }
            if (closed_) co_return false;
            auto ranges = parse_cluster_slots(*r, ask[i].first.host);
            if (!ranges || ranges->empty()) continue;
            apply(*ranges);
            co_return true;
        }
        co_return false;
    }

    /// A topology in place: links made for new masters, channels moved to their masters, masters
    /// that serve no slot any more closed.
    void apply(const std::vector<slot_range>& ranges) {
        table_.assign(ranges);
        const auto now = table_.masters();
        std::string names;
        for (const auto& a : now) names += " " + a.name();
        say(log_level::debug, "Redis Cluster topology: " + std::to_string(ranges.size()) + " slot ranges on" + names);
        for (const auto& a : now) master_at(a);
        reconcile();
        for (auto it = masters_.begin(); it != masters_.end();) {
            const bool serves = std::find(now.begin(), now.end(), it->second.address) != now.end();
            if (serves) {
                ++it;
                continue;
            }
            say(log_level::info, "Redis Cluster: " + it->first + " serves no slot any more");
            if (it->second.cmd != seed_) it->second.cmd->close();
            it->second.sub->close();
            it = masters_.erase(it);
        }
        ++topology_gen_;
        topology_event_.cancel();
        update_connected();
    }

    asio::any_io_executor ex_;
    url seed_url_;
    options opts_;
    std::function<void(const message&)> on_message_;
    mode mode_ = mode::unknown;
    bool closed_ = false;
    std::shared_ptr<client_link> seed_;             // the URL's node: detection, and one Redis' commands
    std::shared_ptr<subscriber_link> single_sub_;   // one Redis: its subscriber
    std::set<std::string> ever_up_;                 // "cmd host:port", "sub host:port": links that were up once
    std::deque<std::pair<std::string, std::string>> pending_;   // publishes before detection
    std::size_t pending_bytes_ = 0;
    std::set<std::string> wanted_;                  // the channels subscribed, wherever they live
    slot_table table_;
    std::map<std::string, master> masters_;         // by "host:port"
    std::uint64_t topology_gen_ = 0;                // topologies applied, detection included
    asio::steady_timer topology_event_;             // cancelled when topology_gen_ moves or on close()
    bool refresh_wanted_ = false;
    asio::steady_timer refresh_wake_;               // wakes the refresher
    asio::steady_timer pace_;                       // the refresher's pauses
    asio::steady_timer detect_pause_;               // detection's, after a lost answer
    std::atomic<bool> connected_{false};
    std::atomic<std::uint64_t> reconnects_{0}, dropped_{0};
};

} // namespace gw::v0::redis::detail
