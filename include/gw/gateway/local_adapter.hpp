// The local adapter: a namespace's members and rooms kept per worker, each worker's part touched by
// its own thread only, so joining, leaving and emitting take no lock. A broadcast walks this
// worker's recipients at once and posts one copy of the selection to each other worker. Also the
// target's emit, count and ids, which go through each namespace's adapter.
#pragma once
#include "../detail/asio.hpp"
#include "../detail/json.hpp"
#include "../protocol/socketio_redis.hpp"
#include "adapter.hpp"
#include "socket.hpp"
#include "state.hpp"
#include "target.hpp"

#ifndef GATEWAY_NO_JSON
namespace gw::inline v0 {

inline target socket::to(std::string room) const {
    target t;
    t.spaces_.push_back(&ns_);
    t.rooms_.push_back(std::move(room));
    t.except_sockets_.push_back(this);
    return t;
}

inline target socket::broadcast() const {
    target t;
    t.spaces_.push_back(&ns_);
    t.except_sockets_.push_back(this);
    return t;
}

inline target target::except(const socket& s) && {
    except_sockets_.push_back(&s);
    return std::move(*this);
}

namespace detail {

/// One worker's part of a namespace: the sockets it serves and their rooms. A cache line of its
/// own keeps workers from slowing each other down.
struct alignas(64) shard {
    std::unordered_map<std::string_view, socket*> sockets;   // by id
    std::unordered_map<std::string, std::vector<socket*>> rooms;
};

class local_adapter final : public adapter {
public:
    explicit local_adapter(gateway_state& g) : g_(g), shards_(g.loops.size()) {}

    // A recovered socket takes its id back and may be added while its predecessor's farewell still
    // runs: the newer socket holds the id (the key views its own id), the older leaves it alone.
    void add_socket(socket& s) override {
        auto& sockets = shards_[s.worker_].sockets;
        sockets.erase(s.id_);
        sockets.emplace(s.id_, &s);
    }
    void remove_socket(socket& s) override {
        auto& sockets = shards_[s.worker_].sockets;
        if (auto it = sockets.find(s.id_); it != sockets.end() && it->second == &s) sockets.erase(it);
    }
    void add(socket& s, const std::string& room) override {
        auto& members = shards_[s.worker_].rooms[room];
        if (members.empty()) rooms_.fetch_add(1, std::memory_order_relaxed);
        members.push_back(&s);
    }
    void remove(socket& s, const std::string& room) override {
        auto& rooms = shards_[s.worker_].rooms;
        auto r = rooms.find(room);
        if (r == rooms.end()) return;
        std::erase(r->second, &s);
        if (r->second.empty()) {
            rooms.erase(r);
            rooms_.fetch_sub(1, std::memory_order_relaxed);
        }
    }

    void broadcast(std::shared_ptr<const broadcast_message> message, const selection_spec& which, bool as_volatile) override {
        const auto here = g_.current();
        std::shared_ptr<const selection> away;   // one copy of the selection for all other workers
        for (std::size_t w = 0; w < shards_.size(); ++w) {
            if (here == w) {
                walk(w, which.rooms, which.except_rooms, [&](const socket* s) { return excepted(which, s); },
                     [&](socket& s) { message->send_to(*s.transport_, *s.codec_, as_volatile); });
                continue;
            }
            if (!away) away = select(which, message, as_volatile);
            asio::post(*g_.loops[w], [away, w] {
                away->owner->walk(w, away->rooms, away->except_rooms, [&](const socket* s) { return away->excepted(w, s); },
                                  [&](socket& s) { away->message->send_to(*s.transport_, *s.codec_, away->as_volatile); });
            });
        }
    }

    asio::awaitable<std::size_t> count(const selection_spec& which) override { return count_of(select(which, nullptr, false)); }
    asio::awaitable<std::vector<std::string>> ids(const selection_spec& which) override { return ids_of(select(which, nullptr, false)); }

    asio::awaitable<acks> broadcast_with_ack(std::string event, json data, const selection_spec& which,
                                             std::chrono::milliseconds timeout) override {
        return acks_of(select(which, nullptr, false), std::move(event), std::move(data), timeout);
    }

    asio::awaitable<std::vector<socket_info>> fetch(const selection_spec& which) override {
        return infos_of(select(which, nullptr, false));
    }
    asio::awaitable<void> join(const selection_spec& which, std::vector<std::string> rooms) override {
        return apply_to(select(which, nullptr, false), [rooms = std::move(rooms)](socket& s) {
            for (const auto& r : rooms) s.join(r);
        });
    }
    asio::awaitable<void> leave(const selection_spec& which, std::vector<std::string> rooms) override {
        return apply_to(select(which, nullptr, false), [rooms = std::move(rooms)](socket& s) {
            for (const auto& r : rooms) s.leave(r);
        });
    }
    asio::awaitable<void> disconnect(const selection_spec& which, bool) override {
        return apply_to(select(which, nullptr, false), [report = g_.log.report("disconnecting a socket")](socket& s) {
            auto bye = [self = s.shared_from_this()] { return self->disconnect(); };
            asio::co_spawn(s.transport_->executor(), std::move(bye), report);
        });
    }
    asio::awaitable<std::vector<std::string>> all_rooms(bool) override { return rooms_of(this); }

    /// Starts an emit_with_ack on every socket the selection names, each on its worker; on_reply
    /// gets each answer (or nullopt for a socket that did not answer), on that socket's worker.
    /// Completes once every wait has started, with how many sockets it asked.
    asio::awaitable<std::size_t> ask_each(const selection_spec& which, std::string event, json data, bool spread,
                                          std::chrono::milliseconds timeout, std::function<void(std::optional<json>)> on_reply) {
        auto sel = select(which, nullptr, false);
        std::size_t n = 0;
        co_await visit_workers([&](std::size_t w) {
            walk(w, sel->rooms, sel->except_rooms, [&](const socket* s) { return sel->excepted(w, s); }, [&](socket& s) {
                ++n;
                auto ask = [self = s.shared_from_this(), event, data, spread, timeout]() mutable {
                    return self->emit_with_ack(std::move(event), std::move(data), timeout, spread);
                };
                asio::co_spawn(s.transport_->executor(), std::move(ask), [on_reply](std::exception_ptr e, json reply) {
                    if (e) on_reply(std::nullopt);
                    else on_reply(std::move(reply));
                });
            });
        });
        co_return n;
    }

    /// A socket described as any node may see it (socket_info).
    static socket_info describe(const socket& s) {
        socket_info out;
        out.id = s.id_;
        out.rooms = s.rooms();
        if (const auto* j = std::any_cast<json>(&s.data_)) out.data = *j;
        const http_request& r = s.transport_->request();
        json headers = json::object();
        r.for_each_header([&](std::string_view name, std::string_view value) {
            std::string key(name);
            std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
            auto& h = headers[key];
            if (h.is_string()) h = h.get<std::string>() + ", " + std::string(value);
            else h = std::string(value);
        });
        json query = json::object();
        for (std::string_view q = r.query(); !q.empty();) {
            const auto amp = q.find('&');
            const std::string_view pair = q.substr(0, amp);
            q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
            const std::string name(pair.substr(0, pair.find('=')));
            if (name.empty() || query.contains(name)) continue;
            if (auto v = r.query_param(name)) query[name] = *v;
        }
        const auto issued = std::chrono::duration_cast<std::chrono::milliseconds>(r.issued().time_since_epoch()).count();
        std::error_code ec;
        out.handshake = json{{"headers", std::move(headers)},
                             {"time", sio_redis::detail::iso_time(issued)},
                             {"address", r.remote_endpoint().address().to_string(ec)},
                             {"xdomain", r.cross_origin()},
                             {"secure", r.secure()},
                             {"issued", issued},
                             {"url", std::string(r.target())},
                             {"query", std::move(query)},
                             {"auth", s.auth().is_object() ? s.auth() : json::object()}};
        return out;
    }

    socket* find(std::size_t worker, std::string_view id) const override {
        const auto& sockets = shards_[worker].sockets;
        auto it = sockets.find(id);
        return it == sockets.end() ? nullptr : it->second;
    }
    std::size_t rooms() const noexcept override { return rooms_.load(std::memory_order_relaxed); }

private:
    /// A selection as any worker may use it: excepted sockets by worker and id, since a pointer
    /// to another worker's socket may dangle by the time that worker looks.
    struct selection {
        const local_adapter* owner;
        std::vector<std::string> rooms, except_rooms;
        std::vector<std::pair<std::size_t, std::string>> except_ids;
        std::shared_ptr<const broadcast_message> message;   // a broadcast's
        bool as_volatile = false;
        std::shared_ptr<const gateway_state> keep;   // the namespace outlives a delivery still queued

        bool excepted(std::size_t worker, const socket* s) const {
            for (const auto& [w, id] : except_ids)
                if (w == worker && s->id() == id) return true;
            return false;
        }
    };

    static bool excepted(const selection_spec& which, const socket* s) {
        return std::find(which.except_sockets.begin(), which.except_sockets.end(), s) != which.except_sockets.end();
    }

    std::shared_ptr<const selection> select(const selection_spec& which, std::shared_ptr<const broadcast_message> message,
                                            bool as_volatile) const {
        auto sel = std::make_shared<selection>();
        sel->owner = this;
        sel->rooms = which.rooms;
        sel->except_rooms = which.except_rooms;
        for (const socket* s : which.except_sockets) sel->except_ids.emplace_back(s->worker_, s->id_);
        sel->message = std::move(message);
        sel->as_volatile = as_volatile;
        sel->keep = g_.shared_from_this();
        return sel;
    }

    /// The sockets of one worker a selection names: the union of its rooms (every socket when it
    /// names none), each reached once, less excepted rooms and what skip() says.
    template <class Skip, class F>
    void walk(std::size_t worker, const std::vector<std::string>& rooms, const std::vector<std::string>& except_rooms,
              Skip&& skip, F&& f) const {
        auto excluded = [&](const socket* s) {
            if (skip(s)) return true;
            for (const auto& r : except_rooms)
                if (s->in(r)) return true;
            return false;
        };
        const shard& here = shards_[worker];
        if (rooms.empty()) {
            for (auto& entry : here.sockets)
                if (!excluded(entry.second)) f(*entry.second);
            return;
        }
        // A socket in several of the rooms is reached once, from the first.
        for (std::size_t i = 0; i < rooms.size(); ++i) {
            auto reach = [&](socket* s) {
                bool earlier = false;
                for (std::size_t j = 0; j < i && !earlier; ++j) earlier = s->in(rooms[j]);
                if (!earlier && !excluded(s)) f(*s);
            };
            if (auto own = here.sockets.find(rooms[i]); own != here.sockets.end() && own->second->in(rooms[i]))
                reach(own->second);   // the room named by a socket's id
            if (auto r = here.rooms.find(rooms[i]); r != here.rooms.end())
                for (socket* s : r->second) reach(s);
        }
    }

    /// Runs visit(w) on every worker w: at once on this thread's, by a hop there and back for the others.
    template <class F> asio::awaitable<void> visit_workers(F visit) const {
        const auto here = g_.current();
        for (std::size_t w = 0; w < shards_.size(); ++w) {
            if (here == w) {
                visit(w);
                continue;
            }
            auto hop = [&visit, w]() -> asio::awaitable<void> {
                visit(w);
                co_return;
            };
            co_await asio::co_spawn(*g_.loops[w], std::move(hop), asio::use_awaitable);
        }
    }

    static asio::awaitable<std::size_t> count_of(std::shared_ptr<const selection> sel) {
        std::size_t n = 0;
        co_await sel->owner->visit_workers([&sel, &n](std::size_t w) {
            sel->owner->walk(w, sel->rooms, sel->except_rooms, [&](const socket* s) { return sel->excepted(w, s); },
                             [&n](socket&) { ++n; });
        });
        co_return n;
    }

    static asio::awaitable<std::vector<std::string>> ids_of(std::shared_ptr<const selection> sel) {
        std::vector<std::string> out;
        co_await sel->owner->visit_workers([&sel, &out](std::size_t w) {
            sel->owner->walk(w, sel->rooms, sel->except_rooms, [&](const socket* s) { return sel->excepted(w, s); },
                             [&out](socket& s) { out.push_back(s.id()); });
        });
        co_return out;
    }

    static asio::awaitable<std::vector<socket_info>> infos_of(std::shared_ptr<const selection> sel) {
        std::vector<socket_info> out;
        co_await sel->owner->visit_workers([&sel, &out](std::size_t w) {
            sel->owner->walk(w, sel->rooms, sel->except_rooms, [&](const socket* s) { return sel->excepted(w, s); },
                             [&out](socket& s) { out.push_back(describe(s)); });
        });
        co_return out;
    }

    /// Runs f on each socket selected, on its worker: the sockets are found first, so f may change
    /// the rooms the walk reads.
    template <class F> static asio::awaitable<void> apply_to(std::shared_ptr<const selection> sel, F f) {
        co_await sel->owner->visit_workers([&sel, &f](std::size_t w) {
            std::vector<std::shared_ptr<socket>> found;
            sel->owner->walk(w, sel->rooms, sel->except_rooms, [&](const socket* s) { return sel->excepted(w, s); },
                             [&found](socket& s) { found.push_back(s.shared_from_this()); });
            for (auto& s : found) {
                try {
                    f(*s);
                } catch (const std::exception& e) {   // too many rooms: that socket stays as it was
                    sel->owner->g_.log.say(log_level::warn, std::string("a socket of a selection: ") + e.what());
                }
            }
        });
    }

    static asio::awaitable<std::vector<std::string>> rooms_of(const local_adapter* self) {
        std::set<std::string> all;
        co_await self->visit_workers([self, &all](std::size_t w) {
            for (const auto& [id, s] : self->shards_[w].sockets)
                if (s->in_own_room_) all.emplace(id);
            for (const auto& [room, members] : self->shards_[w].rooms) all.insert(room);
        });
        co_return std::vector<std::string>(all.begin(), all.end());
    }

    /// Starts an emit_with_ack on every socket selected, each on its worker, and waits for the last
    /// to end (answered, timed out, or its socket gone).
    static asio::awaitable<acks> acks_of(std::shared_ptr<const selection> sel, std::string event, json data,
                                         std::chrono::milliseconds timeout) {
        const auto ex = co_await asio::this_coro::executor;
        struct gathering {
            explicit gathering(const asio::any_io_executor& ex) : done(ex, asio::steady_timer::time_point::max()) {}
            std::mutex m;
            acks out;
            std::size_t waiting = 1;   // the walk itself, until every wait has started
            asio::steady_timer done;   // cancelled on this coroutine's executor when the last wait ends
            /// One wait ended: true when it was the last.
            bool ended() {
                std::lock_guard lock(m);
                return --waiting == 0;
            }
        };
        auto g = std::make_shared<gathering>(ex);
        co_await sel->owner->visit_workers([&](std::size_t w) {
            sel->owner->walk(w, sel->rooms, sel->except_rooms, [&](const socket* s) { return sel->excepted(w, s); },
                             [&](socket& s) {
                                 {
                                     std::lock_guard lock(g->m);
                                     ++g->waiting;
                                 }
                                 auto ask = [self = s.shared_from_this(), event, data, timeout]() mutable {
                                     return self->emit_with_ack(std::move(event), std::move(data), timeout);
                                 };
                                 asio::co_spawn(s.transport_->executor(), std::move(ask),
                                                [g, ex](std::exception_ptr e, json reply) {
                                                    {
                                                        std::lock_guard lock(g->m);
                                                        if (e) ++g->out.missing;
                                                        else g->out.replies.push_back(std::move(reply));
                                                    }
                                                    if (g->ended()) asio::post(ex, [g] { g->done.cancel(); });
                                                });
                             });
        });
        // The last wait's cancel is posted to this executor, so it runs after the wait below starts.
        if (!g->ended()) co_await g->done.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
        std::lock_guard lock(g->m);
        co_return std::move(g->out);
    }

    gateway_state& g_;
    std::vector<shard> shards_;              // one per worker
    std::atomic<std::size_t> rooms_{0};      // rooms with members, summed over workers
};

/// Awaits each of several counts or id lists, made (and so their selections read) beforehand.
inline asio::awaitable<std::size_t> sum(std::vector<asio::awaitable<std::size_t>> parts) {
    std::size_t n = 0;
    for (auto& p : parts) n += co_await std::move(p);
    co_return n;
}
inline asio::awaitable<std::vector<std::string>> concat(std::vector<asio::awaitable<std::vector<std::string>>> parts) {
    std::vector<std::string> out;
    for (auto& p : parts) {
        auto more = co_await std::move(p);
        out.insert(out.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
    }
    co_return out;
}

inline asio::awaitable<void> all_of(std::vector<asio::awaitable<void>> parts) {
    for (auto& p : parts) co_await std::move(p);
}

} // namespace detail

inline selection_spec target::spec() const noexcept { return {rooms_, except_rooms_, except_sockets_, local_}; }

inline asio::awaitable<std::size_t> target::count() const {
    std::vector<asio::awaitable<std::size_t>> parts;
    for (auto* ns : spaces_) parts.push_back(ns->members->count(spec()));
    return detail::sum(std::move(parts));
}

inline asio::awaitable<std::vector<std::string>> target::ids() const {
    std::vector<asio::awaitable<std::vector<std::string>>> parts;
    for (auto* ns : spaces_) parts.push_back(ns->members->ids(spec()));
    return detail::concat(std::move(parts));
}

inline asio::awaitable<std::vector<socket_info>> target::fetch_sockets() const {
    std::vector<asio::awaitable<std::vector<socket_info>>> parts;
    for (auto* ns : spaces_) parts.push_back(ns->members->fetch(spec()));
    return [](std::vector<asio::awaitable<std::vector<socket_info>>> parts) -> asio::awaitable<std::vector<socket_info>> {
        std::vector<socket_info> all;
        for (auto& p : parts) {
            auto more = co_await std::move(p);
            all.insert(all.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
        }
        co_return all;
    }(std::move(parts));
}

inline asio::awaitable<void> target::sockets_join(std::vector<std::string> rooms) const {
    std::vector<asio::awaitable<void>> parts;
    for (auto* ns : spaces_) parts.push_back(ns->members->join(spec(), rooms));
    return detail::all_of(std::move(parts));
}

inline asio::awaitable<void> target::sockets_leave(std::vector<std::string> rooms) const {
    std::vector<asio::awaitable<void>> parts;
    for (auto* ns : spaces_) parts.push_back(ns->members->leave(spec(), rooms));
    return detail::all_of(std::move(parts));
}

inline asio::awaitable<void> target::disconnect_sockets(bool close) const {
    std::vector<asio::awaitable<void>> parts;
    for (auto* ns : spaces_) parts.push_back(ns->members->disconnect(spec(), close));
    return detail::all_of(std::move(parts));
}

inline asio::awaitable<acks> target::emit_with_ack(std::string_view event, const json& data, std::chrono::milliseconds timeout) const {
    std::vector<asio::awaitable<acks>> parts;   // their selections are read now: the target may be a temporary
    for (auto* ns : spaces_) parts.push_back(ns->members->broadcast_with_ack(std::string(event), data, spec(), timeout));
    return [](std::vector<asio::awaitable<acks>> parts) -> asio::awaitable<acks> {
        acks all;
        for (auto& p : parts) {
            auto more = co_await std::move(p);
            all.missing += more.missing;
            all.replies.insert(all.replies.end(), std::make_move_iterator(more.replies.begin()), std::make_move_iterator(more.replies.end()));
        }
        co_return all;
    }(std::move(parts));
}

inline asio::awaitable<void> target::emit(std::string_view event, const json& data) const {
    if (spaces_.empty()) return detail::done();
    // Encoded once per wire format the namespace's sockets speak and framed once per kind of
    // transport; every recipient's outbox, on every worker, shares those bytes.
    for (auto* ns : spaces_) {
        // With connection-state recovery, a broadcast that is not volatile is kept with an offset, so
        // that a Socket.IO client coming back gets it; its Socket.IO form carries the offset.
        std::shared_ptr<const prepared> kept;
        if (const auto& store = ns->owner->socketio.recovery.store; store && !droppable_) {
            kept_broadcast b;
            b.rooms = rooms_;
            b.except_rooms = except_rooms_;
            for (const socket* s : except_sockets_) b.except_rooms.push_back(s->id());
            kept = store->append(ns->path, std::move(b), [&](std::string_view offset) {
                return ns->sio_wire->prepare_kept(event, data, false, offset, compress_);
            });
        }
        ns->members->broadcast(std::make_shared<const broadcast_message>(std::string(event), data, ns->owner->wire.get(),
                                                                         ns->sio_wire.get(), std::move(kept), false, compress_),
                               spec(), droppable_);
    }
    return detail::done();
}

} // namespace gw::v0
#endif
