
namespace detail {

/// What a handler produced: a reply (under the request's event unless it names one), or nothing.
struct outcome {
    std::string event;   // empty: reply under the request's event name
    json data;
    std::function<std::optional<json>()> more{};   // a stream: each further reply, pulled one by one
};

/// A handler, adapted from whatever the application registered: synchronous ones run inline,
/// coroutines are spawned so a slow handler never holds up the socket's other messages.
/// A handler made callable on an event. The bool says the event's payload may be moved into the
/// handler: nothing reads it after the handler (no interceptor).
/// A handler's latency histogram (metrics::latency's buckets), updated from any worker.
struct latency_histogram {
    std::array<std::atomic<std::uint64_t>, metrics::latency::bounds.size() + 1> buckets{};
    std::atomic<std::uint64_t> nanoseconds{0};
    void record(std::chrono::nanoseconds took) noexcept {
        const double seconds = std::chrono::duration<double>(took).count();
        std::size_t i = 0;
        while (i < metrics::latency::bounds.size() && seconds > metrics::latency::bounds[i]) ++i;
        buckets[i].fetch_add(1, std::memory_order_relaxed);
        nanoseconds.fetch_add(static_cast<std::uint64_t>(took.count()), std::memory_order_relaxed);
    }
};

struct handler {
    std::shared_ptr<latency_histogram> latency = std::make_shared<latency_histogram>();
    std::function<std::optional<outcome>(socket&, event&, bool)> sync;
    std::function<asio::awaitable<std::optional<outcome>>(socket&, event&, bool)> async;
    stages around;   // this handler's own enhancers
    explicit operator bool() const noexcept { return sync || async; }
};

template <class T> struct is_awaitable : std::false_type {};
template <class T, class E> struct is_awaitable<asio::awaitable<T, E>> : std::true_type {};
template <class T> struct awaitable_value { using type = T; };
template <class T, class E> struct awaitable_value<asio::awaitable<T, E>> { using type = T; };

/// The parameter list of a non-generic callable.
template <class F, class = void> struct params { using type = void; };
template <class C, class R, class... A> struct params<R (C::*)(A...) const> { using type = std::tuple<A...>; };
template <class C, class R, class... A> struct params<R (C::*)(A...)> { using type = std::tuple<A...>; };
template <class F> struct params<F, std::void_t<decltype(&F::operator())>> : params<decltype(&F::operator())> {};

/// The payload type a handler takes second, or json when it cannot tell (a generic lambda).
template <class F> struct payload_of { using type = json; };
template <class F>
    requires requires { typename std::tuple_size<typename params<F>::type>::type; }
struct payload_of<F> {
    using args = typename params<F>::type;
    using type = std::remove_cvref_t<std::tuple_element_t<std::tuple_size_v<args> == 2 ? 1 : 0, args>>;
};

/// Calls a handler with the socket and the payload converted to what it takes (the whole event,
/// for a catch-all).
template <bool WholeEvent, class F> decltype(auto) call_handler(F& f, socket& s, event& e, bool take) {
    if constexpr (WholeEvent) {
        return f(s, e);
    } else if constexpr (std::is_invocable_v<F&, socket&, json&&> && std::is_invocable_v<F&, socket&, json&>) {
        // A payload by value: moved in rather than copied when nothing reads it afterwards.
        return take ? f(s, std::move(e.data)) : f(s, e.data);
    } else if constexpr (std::is_invocable_v<F&, socket&, json&>) {
        return f(s, e.data);
    } else if constexpr (std::is_invocable_v<F&, socket&>) {
        return f(s);
    } else {
        using P = typename payload_of<F>::type;
        return f(s, e.data.template get<P>());   // a failed conversion throws json::exception
    }
}

template <class T> struct is_stream : std::false_type {};
template <class T> struct is_stream<stream<T>> : std::true_type {};

template <class R> std::optional<outcome> to_outcome(R&& r) {
    if constexpr (is_stream<std::remove_cvref_t<R>>::value)
        return outcome{{}, nullptr, [st = std::make_shared<std::remove_cvref_t<R>>(std::move(r))]() -> std::optional<json> {
                           auto v = st->next();
                           if (!v) return std::nullopt;
                           return json(std::move(*v));
                       }};
    else if constexpr (std::is_same_v<std::remove_cvref_t<R>, response>)
        return outcome{std::move(r.event), std::move(r.data)};
    else
        return outcome{{}, json(std::forward<R>(r))};
}

template <bool WholeEvent = false, class F> handler make_handler(F f);

template <bool WholeEvent = false, class F> handler make_handler(decorated<F> d) {
    handler h = make_handler<WholeEvent>(std::move(d.handler));
    h.around = std::move(d.around) | std::move(h.around);
    return h;
}

template <bool WholeEvent, class F> handler make_handler(F f) {
    using P = typename payload_of<F>::type;
    static_assert(WholeEvent || std::is_invocable_v<F&, socket&, json&> || std::is_invocable_v<F&, socket&> ||
                      std::is_invocable_v<F&, socket&, P>,
                  "a gateway handler must be callable as (gw::socket&), (gw::socket&, gw::json) or "
                  "(gw::socket&, T) with T convertible from JSON, and return void, a value convertible to "
                  "gw::json, a gw::response, a gw::stream, or an asio::awaitable of one of those");
    using R = decltype(call_handler<WholeEvent>(f, std::declval<socket&>(), std::declval<event&>(), true));
    handler h;
    if constexpr (is_awaitable<R>::value) {
        using V = typename awaitable_value<R>::type;
        static_assert(std::is_void_v<V> || std::is_same_v<V, response> || std::is_constructible_v<json, V>,
                      "a gateway handler's awaitable must yield void, a gw::response or a value convertible to gw::json");
        h.async = [f = std::move(f)](socket& s, event& e, bool take) mutable -> asio::awaitable<std::optional<outcome>> {
            if constexpr (std::is_void_v<V>) {
                co_await call_handler<WholeEvent>(f, s, e, take);
                co_return std::nullopt;
            } else {
                co_return to_outcome(co_await call_handler<WholeEvent>(f, s, e, take));
            }
        };
    } else {
        static_assert(std::is_void_v<R> || std::is_same_v<std::remove_cvref_t<R>, response> ||
                          is_stream<std::remove_cvref_t<R>>::value || std::is_constructible_v<json, R>,
                      "a gateway handler must return void, a gw::response, a value convertible to gw::json, "
                      "or an asio::awaitable of one of those");
        h.sync = [f = std::move(f)](socket& s, event& e, bool take) mutable -> std::optional<outcome> {
            if constexpr (std::is_void_v<R>) {
                call_handler<WholeEvent>(f, s, e, take);
                return std::nullopt;
            } else {
                return to_outcome(call_handler<WholeEvent>(f, s, e, take));
            }
        };
    }
    return h;
}

/// A lifecycle hook: a plain callable returning void or asio::awaitable<void>.
template <class... A> using hook = std::function<asio::awaitable<void>(A...)>;

template <class... A, class F> hook<A...> make_hook(F f) {
    static_assert(std::is_invocable_v<F&, A...>, "a hook must be callable with the arguments of its event");
    using R = std::invoke_result_t<F&, A...>;
    static_assert(std::is_void_v<R> || std::is_same_v<R, asio::awaitable<void>>,
                  "a hook must return void or asio::awaitable<void>");
    if constexpr (std::is_void_v<R>)
        return [f = std::move(f)](A... a) mutable -> asio::awaitable<void> {
            f(a...);
            co_return;
        };
    else
        return f;
}

/// The exception event's data for what a handler threw: a ws_exception's own data, a conversion
/// failure named, anything else "Internal server error" (its text never reaches the client).
inline json exception_data(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const ws_exception& x) {
        return x.data();
    } catch (const json::exception& x) {
        std::string what = x.what();
        if (auto at = what.find("] "); at != std::string::npos) what.erase(0, at + 2);   // nlohmann's tag
        return {{"status", "error"}, {"message", "invalid payload: " + what}};
    } catch (...) {
        return {{"status", "error"}, {"message", "Internal server error"}};
    }
}

/// The enhancers of one call: the gateway's, the namespace's and the handler's own. Guards and
/// pipes run outermost first (as NestJS runs global, then controller, then route); interceptors and
/// filters innermost first.
struct call_stages {
    const stages* levels[3];

    /// Throws "Forbidden resource" when a guard denies.
    void guard(socket& s, const event& e) const {
        for (const auto* l : levels)
            for (const auto& g : l->guards)
                if (!g(s, e)) throw ws_exception("Forbidden resource");
    }
    void pipe(event& e) const {
        for (const auto* l : levels)
            for (const auto& p : l->pipes) p(e.data);
    }
    /// True when an interceptor will see the event after its handler.
    bool observed() const noexcept {
        return std::any_of(std::begin(levels), std::end(levels), [](const stages* l) { return !l->interceptors.empty(); });
    }
    void after(socket& s, const event& e, const json* reply, std::chrono::nanoseconds took) const {
        for (int i = 2; i >= 0; --i)
            for (const auto& f : levels[i]->interceptors) f(s, e, reply, took);
    }
    response failure(std::exception_ptr p) const {
        for (int i = 2; i >= 0; --i)
            for (const auto& f : levels[i]->filters)
                if (auto r = f(p)) return std::move(*r);
        return response{"exception", exception_data(p)};
    }
};

struct gateway_state;

/// One worker's part of a namespace: the sockets it serves and their rooms. Only that worker's
/// thread touches it, so joining, leaving and emitting take no lock; a cache line of its own keeps
/// workers from slowing each other down.
struct alignas(64) shard {
    std::unordered_map<std::string_view, socket*> sockets;   // by id
    std::unordered_map<std::string, std::vector<socket*>> rooms;
};

/// A namespace: its handlers, hooks and middleware (set up before the loops run, read-only after),
/// and per worker its sockets and rooms.
struct namespace_state {
    std::string path;
    gateway_state* owner = nullptr;
    std::unordered_map<std::string, handler> handlers;
    handler catch_all;   // events with no handler of their own
    stages around;       // enhancers of every handler in the namespace
    std::vector<std::function<std::optional<http_response>(http_request&)>> middleware;
    std::vector<hook<socket&>> on_connect;
    std::vector<hook<socket&, std::string_view>> on_disconnect;
    std::vector<hook<socket&>> on_drain;
    std::optional<overflow> slow_consumer;   // else the server's options.slow_consumer
    std::vector<shard> shards;   // one per worker
    std::atomic<std::size_t> connected{0};   // on every worker: changes per connection, not per message
    std::atomic<std::size_t> room_count{0};  // rooms with members, summed over workers

    void join(socket& s, const std::string& room);
    void leave(socket& s, const std::string& room);
};

struct gateway_state : std::enable_shared_from_this<gateway_state> {
    explicit gateway_state(asio::io_context& io_) : io(io_) {}
    asio::io_context& io;
    std::unique_ptr<server> srv;   // made once the routing hook can point back here
    std::vector<asio::io_context*> loops;   // the server's workers; loop 0 is io
    std::unique_ptr<codec> wire = std::make_unique<nest_codec>();
    std::vector<std::unique_ptr<namespace_state>> spaces;
    std::vector<hook<>> on_init;
    stages around;   // enhancers of every handler in every namespace
    std::size_t max_rooms = 1000;          // options.max_rooms_per_socket
    double rate = 0, burst = 0;            // options.message_rate and message_burst (resolved)
    bool close_over_rate = false;
    std::function<void(log_level, std::string_view)> log;

    /// The worker whose loop runs on this thread; with one worker, that one whatever the thread
    /// (an application with one loop may call from outside it before it runs).
    std::optional<std::size_t> current() const noexcept {
        if (loops.size() == 1) return 0;
        for (std::size_t w = 0; w < loops.size(); ++w)
            if (loops[w]->get_executor().running_in_this_thread()) return w;
        return std::nullopt;
    }

    /// The namespace for a request path: an exact path first, then patterns ending in '*'.
    namespace_state* find(std::string_view path) const {
        for (const auto& ns : spaces)
            if (ns->path == path) return ns.get();
        for (const auto& ns : spaces)
            if (ns->path.ends_with('*') && path.starts_with(std::string_view(ns->path).substr(0, ns->path.size() - 1)))
                return ns.get();
        return nullptr;
    }
};

} // namespace detail

inline const std::string& socket::nsp() const noexcept { return ns_.path; }
inline void socket::join(const std::string& room) { ns_.join(*this, room); }
inline void socket::leave(const std::string& room) { ns_.leave(*this, room); }

inline void detail::namespace_state::join(socket& s, const std::string& room) {
    if (s.gone_ || s.in(room)) return;   // a handler still running after its client left joins nothing
    if (room == s.id_) {
        s.in_own_room_ = true;
        return;
    }
    if (s.rooms_.size() >= owner->max_rooms) throw ws_exception("Too many rooms");
    s.rooms_.push_back(room);
    auto& members = shards[s.worker_].rooms[room];
    if (members.empty()) room_count.fetch_add(1, std::memory_order_relaxed);
    members.push_back(&s);
}

inline void detail::namespace_state::leave(socket& s, const std::string& room) {
    if (room == s.id_) {
        s.in_own_room_ = false;
        return;
    }
    auto it = std::find(s.rooms_.begin(), s.rooms_.end(), room);
    if (it == s.rooms_.end()) return;
    s.rooms_.erase(it);
    auto& rooms = shards[s.worker_].rooms;
    auto r = rooms.find(room);
    std::erase(r->second, &s);
    if (r->second.empty()) {
        rooms.erase(r);
        room_count.fetch_sub(1, std::memory_order_relaxed);
    }
}

inline void socket::send_event(std::string_view event, const json& data, const json& id, std::int64_t ack) {
    std::string text = ns_.owner->wire->encode(event, data, id, ack);
    if (conn_.state().on_own_thread()) {
        conn_.state().send_frame(opcode::text, std::move(text));
        return;
    }
    asio::post(conn_.handle.get_executor(), [c = detail::access::state(conn_.handle), text = std::move(text)]() mutable {
        if (c->close_sent_ || c->ended_ || c->broken_) return;   // gone meanwhile, as a broadcast would skip it
        c->send_frame(opcode::text, std::move(text));
    });
}

inline void socket::answer(const event& request, detail::outcome&& out) {
    if (!connected()) return;   // the client left while its handler ran
    send_event(out.event.empty() ? request.name : out.event, out.data, request.id);
}

inline void socket::answer_exception(const json& data, const json& id) {
    if (connected()) send_event("exception", data, id);
}

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
    bool droppable = false;                     // target::volatile_()
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

