// Emitting to a target: the recipients walked per worker, the event encoded and framed once and
// the same bytes queued for each; counting and listing the sockets a target names.
#pragma once
#include "../detail/asio.hpp"
#include "../detail/json.hpp"
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

/// The sockets of one worker that a target names: the union of its rooms (every socket of the
/// namespaces when it names none), each reached once, less excepted rooms and what skip() says.
template <class Skip, class F>
void walk_recipients(const std::vector<namespace_state*>& spaces, const std::vector<std::string>& rooms,
                     const std::vector<std::string>& except_rooms, std::size_t worker, Skip&& skip, F&& f) {
    auto excluded = [&](const socket* s) {
        if (skip(s)) return true;
        for (const auto& r : except_rooms)
            if (s->in(r)) return true;
        return false;
    };
    for (auto* ns : spaces) {
        const shard& here = ns->shards[worker];
        if (rooms.empty()) {
            for (auto& entry : here.sockets)
                if (!excluded(entry.second)) f(*entry.second);
            continue;
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
}

/// A target as any thread may use it: excepted sockets by worker and id, since a pointer to
/// another worker's socket may dangle by the time that worker looks.
struct selection {
    std::vector<namespace_state*> spaces;
    std::vector<std::string> rooms, except_rooms;
    std::vector<std::pair<std::size_t, std::string>> except_ids;
    std::shared_ptr<const std::string> frame;   // what emit() sends
    bool droppable = false;                     // target::as_volatile()
    std::shared_ptr<const gateway_state> keep;  // the namespaces outlive a delivery still queued

    template <class F> void for_each(std::size_t worker, F&& f) const {
        auto skip = [&](const socket* s) {
            for (const auto& [w, id] : except_ids)
                if (w == worker && s->id() == id) return true;
            return false;
        };
        walk_recipients(spaces, rooms, except_rooms, worker, skip, f);
    }
};

/// Runs visit(w) on every worker w: at once on this thread's, by a hop there and back for the others.
template <class F> asio::awaitable<void> visit_workers(const gateway_state& g, F visit) {
    const auto here = g.current();
    for (std::size_t w = 0; w < g.loops.size(); ++w) {
        if (here == w) {
            visit(w);
            continue;
        }
        auto hop = [&visit, w]() -> asio::awaitable<void> {
            visit(w);
            co_return;
        };
        co_await asio::co_spawn(*g.loops[w], std::move(hop), asio::use_awaitable);
    }
}

} // namespace detail

template <class F> void target::for_each_recipient(std::size_t worker, F&& f) const {
    auto skip = [&](const socket* s) {
        return std::find(except_sockets_.begin(), except_sockets_.end(), s) != except_sockets_.end();
    };
    detail::walk_recipients(spaces_, rooms_, except_rooms_, worker, skip, f);
}

inline std::shared_ptr<detail::selection> target::select() const {
    auto sel = std::make_shared<detail::selection>();
    sel->spaces = spaces_;
    sel->rooms = rooms_;
    sel->except_rooms = except_rooms_;
    for (const socket* s : except_sockets_) sel->except_ids.emplace_back(s->worker_, s->id_);
    if (!spaces_.empty()) sel->keep = spaces_.front()->owner->shared_from_this();
    return sel;
}

namespace detail {

inline asio::awaitable<std::size_t> count_selected(std::shared_ptr<const selection> sel) {
    std::size_t n = 0;
    auto visit = [&sel, &n](std::size_t w) { sel->for_each(w, [&n](socket&) { ++n; }); };
    if (!sel->spaces.empty()) co_await visit_workers(*sel->spaces.front()->owner, visit);
    co_return n;
}

inline asio::awaitable<std::vector<std::string>> ids_selected(std::shared_ptr<const selection> sel) {
    std::vector<std::string> out;
    auto visit = [&sel, &out](std::size_t w) { sel->for_each(w, [&out](socket& s) { out.push_back(s.id()); }); };
    if (!sel->spaces.empty()) co_await visit_workers(*sel->spaces.front()->owner, visit);
    co_return out;
}

} // namespace detail

// The selection is taken now, so the target may be a temporary gone before the awaitable runs.
inline asio::awaitable<std::size_t> target::count() const { return detail::count_selected(select()); }
inline asio::awaitable<std::vector<std::string>> target::ids() const { return detail::ids_selected(select()); }

inline asio::awaitable<void> target::emit(std::string_view event, const json& data) const {
    if (spaces_.empty()) return detail::done();
    const detail::gateway_state& g = *spaces_.front()->owner;
    // Serialized and framed once; every recipient's outbox, on every worker, shares these bytes.
    std::string text = g.wire->encode(event, data, nullptr, 0);
    auto frame = std::make_shared<std::string>();
    frame->resize(detail::max_frame_header);
    frame->resize(detail::encode_header(reinterpret_cast<unsigned char*>(frame->data()), opcode::text, true, text.size()));
    frame->append(text);
    std::shared_ptr<const std::string> shared = std::move(frame);
    const auto here = g.current();
    std::shared_ptr<const detail::selection> away;   // one copy of the target for all other workers
    for (std::size_t w = 0; w < g.loops.size(); ++w) {
        if (here == w) {
            for_each_recipient(w, [&](socket& s) { s.conn_.state().send_shared(shared, droppable_); });
            continue;
        }
        if (!away) {
            auto sel = select();
            sel->frame = shared;
            sel->droppable = droppable_;
            away = std::move(sel);
        }
        asio::post(*g.loops[w], [away, w] {
            away->for_each(w, [&](socket& s) { s.conn_.state().send_shared(away->frame, away->droppable); });
        });
    }
    return detail::done();
}

} // namespace gw::v0
#endif
