
/// A namespace of a gateway (app.of("/chat")): register handlers, hooks and middleware; emit to its
/// sockets and rooms. A cheap handle; the gateway owns the namespace.
class namespace_ref {
public:
    /// Subscribes a handler to an event. Its return value is the reply: {"event": event, "data":
    /// value} plus the request's "id"; a gw::response names the reply's event; void sends nothing.
    template <class F> namespace_ref& on(std::string event, F handler) {
        ns_->handlers[std::move(event)] = detail::make_handler(std::move(handler));
        return *this;
    }
    /// Receives every event that has no handler of its own: (gw::socket&, const gw::event&).
    template <class F> namespace_ref& on_any(F handler) {
        static_assert(std::is_invocable_v<F&, socket&, event&>,
                      "a catch-all handler must be callable as (gw::socket&, gw::event&)");
        ns_->catch_all = detail::make_handler<true>(std::move(handler));
        return *this;
    }
    /// Runs on every upgrade request for this namespace, in order, before any WebSocket exists:
    /// (gw::http_request&) may read the path, query, headers, cookies and remote address, attach data
    /// with request.attachment (it becomes socket.data()), and refuse by returning a gw::http_response
    /// (std::optional) or throwing gw::http_refusal.
    template <class F> namespace_ref& use(F middleware) {
        static_assert(std::is_invocable_v<F&, http_request&>, "middleware must be callable as (gw::http_request&)");
        using R = std::invoke_result_t<F&, http_request&>;
        static_assert(std::is_void_v<R> || std::is_convertible_v<R, std::optional<http_response>>,
                      "middleware must return void or std::optional<gw::http_response>");
        if constexpr (std::is_void_v<R>)
            ns_->middleware.emplace_back([f = std::move(middleware)](http_request& r) mutable -> std::optional<http_response> {
                f(r);
                return std::nullopt;
            });
        else
            ns_->middleware.emplace_back(std::move(middleware));
        return *this;
    }
    /// After a socket connects: (gw::socket&), returning void or asio::awaitable<void>. It may
    /// refuse the socket with co_await socket.disconnect(code, reason).
    template <class F> namespace_ref& on_connect(F hook) {
        ns_->on_connect.push_back(detail::make_hook<socket&>(std::move(hook)));
        return *this;
    }
    /// Once per socket, when it has gone: (gw::socket&, std::string_view reason), with its rooms
    /// still visible (ns.count() no longer includes it).
    template <class F> namespace_ref& on_disconnect(F hook) {
        if constexpr (std::is_invocable_v<F&, socket&, std::string_view>)
            ns_->on_disconnect.push_back(detail::make_hook<socket&, std::string_view>(std::move(hook)));
        else
            ns_->on_disconnect.push_back(detail::make_hook<socket&, std::string_view>(
                [f = std::move(hook)](socket& s, std::string_view) mutable { return f(s); }));
        return *this;
    }

    /// When a socket's outbox, having passed options.outbox_high_water, drains below it:
    /// (gw::socket&), returning void or asio::awaitable<void>. Runs on the socket's worker.
    template <class F> namespace_ref& on_drain(F hook) {
        ns_->on_drain.push_back(detail::make_hook<socket&>(std::move(hook)));
        return *this;
    }
    /// What a message meets beyond options.max_outbox_bytes on this namespace's sockets, instead of
    /// options.slow_consumer: gw::overflow::close (1008 "slow consumer") or gw::overflow::drop.
    namespace_ref& slow_consumer(overflow policy) {
        ns_->slow_consumer = policy;
        return *this;
    }

    /// Enhancers for every handler of this namespace, registered or to come.
    namespace_ref& apply(stages around) {
        ns_->around = std::move(ns_->around) | std::move(around);
        return *this;
    }

    /// Everyone in the namespace.
    asio::awaitable<void> emit(std::string_view event, const json& data = nullptr) const { return all().emit(event, data); }
    /// Everyone in a room (add rooms and exceptions to the target).
    target to(std::string room) const { return all().to(std::move(room)); }
    /// The sockets connected now, on every worker. (A room's: co_await ns.to(room).count().)
    std::size_t count() const noexcept { return ns_->connected.load(std::memory_order_relaxed); }
    /// The socket with this id on the calling thread's worker (any socket when workers is 1), or
    /// nullptr. ns.to(id) reaches a socket on any worker.
    socket* find(std::string_view id) const {
        const auto w = ns_->owner->current();
        if (!w) return nullptr;
        auto& sockets = ns_->shards[*w].sockets;
        auto it = sockets.find(id);
        return it == sockets.end() ? nullptr : it->second;
    }
    const std::string& path() const noexcept { return ns_->path; }

private:
    friend class gateway;
    explicit namespace_ref(detail::namespace_state* ns) : ns_(ns) {}
    target all() const {
        target t;
        t.spaces_.push_back(ns_);
        return t;
    }
    detail::namespace_state* ns_;
};


/// Thrown by handshake middleware to refuse an upgrade with an HTTP status and body.
class http_refusal : public std::runtime_error {
public:
    explicit http_refusal(int status, std::string body = {})
        : std::runtime_error("upgrade refused with " + std::to_string(status)), response_{status, std::move(body)} {}
    const http_response& response() const noexcept { return response_; }

private:
    http_response response_;
};

/// A realtime gateway, as NestJS's: namespaces of event handlers, rooms, lifecycle hooks and
/// handshake middleware over gateway.hpp's WebSocket server. Listens when constructed; starts
/// serving (on_init first) once its io_context runs.
class gateway {
public:
    gateway(asio::io_context& io, options opts = {}) : st_(std::make_shared<detail::gateway_state>(io)) {
        if (opts.message_rate < 0 || opts.message_burst < 0)
            throw std::invalid_argument("gw::gateway: options.message_rate and message_burst must not be negative");
        st_->max_rooms = opts.max_rooms_per_socket;
        st_->rate = opts.message_rate;
        st_->burst = opts.message_burst > 0 ? std::max(opts.message_burst, 1.0) : std::max(opts.message_rate, 1.0);
        st_->close_over_rate = opts.close_over_rate;
        st_->log = opts.log;
        opts.on_upgrade = [w = std::weak_ptr<detail::gateway_state>(st_)](http_request& req) -> std::optional<http_response> {
            auto st = w.lock();
            if (!st) return http_response{503, "shutting down\n"};
            auto* ns = st->find(req.path());
            if (!ns) return http_response{404, "no namespace at this path\n"};
            try {
                for (auto& m : ns->middleware)
                    if (auto refused = m(req)) return refused;
            } catch (const http_refusal& r) {
                return r.response();
            }
            return std::nullopt;
        };
        // Each connection is served at once, on its worker, in the turn its upgrade completes: its
        // on_connect hooks have run (up to their first suspension) before another client is served.
        opts.on_connection = [w = std::weak_ptr<detail::gateway_state>(st_)](connection c) {
            auto st = w.lock();
            if (!st) return;
            detail::namespace_state* ns = st->find(c.request().path());
            const auto worker = st->current();
            if (!ns || !worker) return;
            const auto ex = c.get_executor();   // before c moves into the coroutine
            asio::co_spawn(ex, serve(st, ns, *worker, std::move(c)), [](std::exception_ptr) {});
        };
        st_->srv = std::make_unique<server>(io, std::move(opts));
        st_->loops = st_->srv->loops();
        st_->srv->st_->more_metrics = [w = std::weak_ptr<detail::gateway_state>(st_)](gw::metrics& m) {
            auto st = w.lock();
            if (!st) return;
            for (const auto& ns : st->spaces) {
                m.sockets += ns->connected.load(std::memory_order_relaxed);
                m.rooms += ns->room_count.load(std::memory_order_relaxed);
                auto add = [&](const std::string& event, const detail::handler& h) {
                    auto& l = m.handlers.emplace_back();
                    l.nsp = ns->path;
                    l.event = event;
                    for (std::size_t i = 0; i < l.buckets.size(); ++i) {
                        l.buckets[i] = h.latency->buckets[i].load(std::memory_order_relaxed);
                        l.count += l.buckets[i];
                    }
                    l.sum_seconds = static_cast<double>(h.latency->nanoseconds.load(std::memory_order_relaxed)) / 1e9;
                };
                for (const auto& [event, h] : ns->handlers) add(event, h);
                if (ns->catch_all) add("*", ns->catch_all);
            }
        };
        asio::co_spawn(io, init(st_), [](std::exception_ptr) {});
    }
    gateway(const gateway&) = delete;
    gateway& operator=(const gateway&) = delete;
    /// Stops listening and stops the worker threads; their sockets close with them.
    ~gateway() {
        if (!st_) return;
        st_->srv.reset();   // stops accepting
        // Sockets still on the application's loop go on with it alone; the others' loops are gone.
        st_->loops.resize(1);
    }

    /// The namespace at path ("/", "/chat", or a pattern such as "/tenant-*"), made on first use.
    namespace_ref of(std::string path) {
        if (path.empty() || path.front() != '/') path.insert(path.begin(), '/');
        for (auto& ns : st_->spaces)
            if (ns->path == path) return namespace_ref(ns.get());
        auto ns = std::make_unique<detail::namespace_state>();
        ns->path = std::move(path);
        ns->owner = st_.get();
        ns->shards = std::vector<detail::shard>(st_->loops.size());
        st_->spaces.push_back(std::move(ns));
        return namespace_ref(st_->spaces.back().get());
    }

    /// Once listening, before the first connection is served: () returning void or asio::awaitable<void>.
    template <class F> gateway& on_init(F hook) {
        st_->on_init.push_back(detail::make_hook<>(std::move(hook)));
        return *this;
    }

    /// The counters and gauges now, the server's and the gateway's (any thread).
    gw::metrics metrics() const { return st_->srv->metrics(); }

    /// Enhancers for every handler of every namespace.
    gateway& apply(stages around) {
        st_->around = std::move(st_->around) | std::move(around);
        return *this;
    }

    /// Everyone in every namespace.
    asio::awaitable<void> emit(std::string_view event, const json& data = nullptr) const { return all().emit(event, data); }
    /// A room in every namespace.
    target to(std::string room) const { return all().to(std::move(room)); }

    /// Serves another wire format instead of NestJS's WsAdapter format.
    void set_codec(std::unique_ptr<codec> c) { st_->wire = std::move(c); }
    std::uint16_t port() const noexcept { return st_->srv->port(); }
    /// How many event loops serve sockets (options.workers, 0 resolved to the hardware's threads).
    std::size_t workers() const noexcept { return st_->loops.size(); }
    /// Stops accepting connections at once. co_await the result to shut down gracefully: every
    /// socket is closed with 1001 "server shutting down" after what was queued for it, and the
    /// awaitable completes when on_disconnect has run for each; sockets still open after `deadline`
    /// are cut. Not awaited, connected sockets stay.
    asio::awaitable<void> stop(std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
        if (st_ && st_->srv) return st_->srv->stop(deadline);
        return detail::done();
    }
    /// Stops accepting connections, and only that: connected sockets stay.
    void stop_accepting() {
        if (st_ && st_->srv) st_->srv->stop_accepting();
    }

private:
    target all() const {
        target t;
        for (auto& ns : st_->spaces) t.spaces_.push_back(ns.get());
        return t;
    }

    static asio::awaitable<void> init(std::shared_ptr<detail::gateway_state> st) {
        for (auto& hook : st->on_init) co_await hook();
    }

    /// One socket's life: on_connect, its events in order, on_disconnect with its rooms still
    /// there, then out of every room. Between the hooks the socket is read on callbacks (see
    /// reader), so an idle socket holds no coroutine frame.
    static asio::awaitable<void> serve(std::shared_ptr<detail::gateway_state> st, detail::namespace_state* ns,
                                       std::size_t worker, connection c) {
        std::shared_ptr<socket> s = std::make_shared<made_socket>(*ns, worker, c);
        s->data_ = std::move(s->conn_.state().request_.attachment);
        ns->shards[worker].sockets.emplace(s->id(), s.get());   // which also puts it in its id-room
        ns->connected.fetch_add(1, std::memory_order_relaxed);
        auto& conn = s->conn_.state();
        if (ns->slow_consumer) conn.drop_when_full_ = *ns->slow_consumer == overflow::drop;
        if (!ns->on_drain.empty()) {
            conn.drain_context_ = s.get();
            conn.on_drain_ = [](void* p) {
                auto& sock = *static_cast<socket*>(p);
                asio::co_spawn(sock.conn_.handle.get_executor(), drained(sock.shared_from_this()), [](std::exception_ptr) {});
            };
        }
        bool hook_failed = false;
        try {
            for (auto& hook : ns->on_connect) co_await hook(*s);
        } catch (...) {
            hook_failed = true;   // an on_connect hook threw: the socket is refused with 1011
        }
        if (!hook_failed) {
            s->conn_.state().read_with(reader{st, s});
            co_return;
        }
        co_await s->disconnect(close_code::internal_error);
        co_await farewell(ns, s, "server error");
    }

    /// A socket and its control block in one allocation (the constructor is the gateway's to call).
    struct made_socket : socket {
        made_socket(detail::namespace_state& ns, std::size_t worker, const connection& c) : socket(ns, worker, c) {}
    };

    /// Hands a socket's messages to dispatch as they arrive, and its end to farewell.
    struct reader {
        std::shared_ptr<detail::gateway_state> st;
        std::shared_ptr<socket> s;
        void message(gw::message&& m) {
            if (st->rate > 0 && !within_rate(*st, *s)) return;
            dispatch(st, &s->ns_, s, std::move(m));
        }
        void end() {
            const auto ex = s->conn_.handle.get_executor();
            auto* ns = &s->ns_;
            asio::co_spawn(ex, farewell(ns, std::move(s)), [](std::exception_ptr) {});
        }
    };

    /// Takes a token from the socket's bucket; over the rate, answers or closes by policy.
    static bool within_rate(const detail::gateway_state& st, socket& s) {
        const auto now = std::chrono::steady_clock::now();
        if (s.tokens_ < 0) s.tokens_ = st.burst;
        else s.tokens_ = std::min(st.burst, s.tokens_ + std::chrono::duration<double>(now - s.tokens_at_).count() * st.rate);
        s.tokens_at_ = now;
        if (s.tokens_ >= 1) {
            s.tokens_ -= 1;
            return true;
        }
        if (st.close_over_rate) {
            if (s.connected()) {
                if (st.log) st.log(log_level::info, "closing a socket over the message rate: " + s.id());
                s.closed_by_server_ = true;
                s.conn_.state().close_soon(close_code::policy_violation, "rate limit");
            }
        } else {
            s.answer_exception({{"status", "error"}, {"message", "Too many messages"}}, nullptr);
        }
        return false;
    }

    /// Runs the namespace's on_drain hooks for a socket.
    static asio::awaitable<void> drained(std::shared_ptr<socket> s) {
        for (auto& hook : s->ns_.on_drain) {
            try {
                co_await hook(*s);
            } catch (...) {   // a failing hook does not stop the others
            }
        }
    }

    /// Finishes the connection (the closing handshake), then runs on_disconnect with the reason
    /// (computed from how it ended unless given) and takes the socket out of every room.
    static asio::awaitable<void> farewell(detail::namespace_state* ns, std::shared_ptr<socket> s, std::string reason = {}) {
        // The close frames are exchanged first and the TCP close comes after the hooks: a client
        // whose close() completed knows its on_disconnect has run (up to its first suspension).
        auto& c = s->conn_.state();
        co_await c.settle();
        c.on_drain_ = nullptr;   // the socket is leaving: no more drain hooks for it
        if (reason.empty())
            reason = c.error_ == errc::connection_lost ? "transport close"
                     : c.error_                        ? c.error_.message()
                     : c.shutting_down_                ? "server shutting down"
                     : s->closed_by_server_            ? "server disconnect"
                                                       : "client disconnect";
        s->abandon_acks();
        // No longer counted as connected (as in Socket.IO), though its rooms stay visible to the hooks.
        ns->connected.fetch_sub(1, std::memory_order_relaxed);
        for (auto& hook : ns->on_disconnect) {
            try {
                co_await hook(*s, reason);
            } catch (...) {   // a failing hook must not keep the socket in its rooms
            }
        }
        for (auto rooms = s->rooms_; const auto& room : rooms) ns->leave(*s, room);
        ns->shards[s->worker_].sockets.erase(s->id());
        s->gone_ = true;
        co_await c.conclude();
        c.receiving_ = false;
    }

    /// Decodes one message and runs its handler with the enhancers of every level. Never throws:
    /// whatever goes wrong becomes an exception event for this client.
    static void dispatch(const std::shared_ptr<detail::gateway_state>& st, detail::namespace_state* ns,
                         const std::shared_ptr<socket>& s, message m) {
        std::string error;
        auto ev = st->wire->decode(m, error);
        if (!ev) {
            s->answer_exception({{"status", "error"}, {"message", error}}, nullptr);
            return;
        }
        if (ev->ack > 0 && ev->name == "ack") {
            if (!s->acknowledge(*ev)) s->answer_exception({{"status", "error"}, {"message", "no emit waits for this ack"}}, ev->id);
            return;
        }
        auto it = ns->handlers.find(ev->name);
        const detail::handler* h = it != ns->handlers.end() ? &it->second : ns->catch_all ? &ns->catch_all : nullptr;
        if (!h) {
            s->answer_exception({{"status", "error"}, {"message", "There is no handler for event \"" + ev->name + "\""}}, ev->id);
            return;
        }
        detail::call_stages cs{{&st->around, &ns->around, &h->around}};
        if (h->async) {
            asio::co_spawn(s->conn_.handle.get_executor(), run(s, h->async, h->latency, cs, std::move(*ev)), [](std::exception_ptr) {});
            return;
        }
        const auto start = std::chrono::steady_clock::now();
        std::optional<detail::outcome> out;
        std::exception_ptr failure;
        bool admitted = false;
        try {
            cs.guard(*s, *ev);
            admitted = true;
            cs.pipe(*ev);
            out = h->sync(*s, *ev, !cs.observed());
        } catch (...) {
            failure = std::current_exception();
        }
        const auto took = std::chrono::steady_clock::now() - start;
        h->latency->record(took);
        finish(*s, cs, *ev, std::move(out), failure, admitted, took);
    }

    static asio::awaitable<void> run(std::shared_ptr<socket> s, decltype(detail::handler::async) fn,
                                     std::shared_ptr<detail::latency_histogram> latency, detail::call_stages cs, event ev) {
        const auto start = std::chrono::steady_clock::now();
        std::optional<detail::outcome> out;
        std::exception_ptr failure;
        bool admitted = false;
        try {
            cs.guard(*s, ev);
            admitted = true;
            cs.pipe(ev);
            out = co_await fn(*s, ev, !cs.observed());
        } catch (...) {
            failure = std::current_exception();
        }
        const auto took = std::chrono::steady_clock::now() - start;
        latency->record(took);
        finish(*s, cs, ev, std::move(out), failure, admitted, took);
    }

    /// Interceptors (around pipes and handler, so not when a guard denied) see the outcome; then the
    /// reply, or what the filters make of the failure, goes out.
    static void finish(socket& s, const detail::call_stages& cs, const event& ev, std::optional<detail::outcome> out,
                       std::exception_ptr failure, bool admitted, std::chrono::steady_clock::duration took) {
        try {
            if (admitted)
                cs.after(s, ev, out ? &out->data : nullptr, std::chrono::duration_cast<std::chrono::nanoseconds>(took));
        } catch (...) {
            if (!failure) failure = std::current_exception();
        }
        try {
            if (!failure && out && out->more) {
                asio::co_spawn(s.conn_.handle.get_executor(), pump(s.shared_from_this(), cs, ev, std::move(out->more)),
                               [](std::exception_ptr) {});
                return;
            }
            if (failure) answer_failure(s, cs, ev, failure);
            else if (out) s.answer(ev, std::move(*out));
        } catch (...) {   // the client left meanwhile: nothing more to tell it
        }
    }

    /// A stream's replies, one per turn of the loop, so other sockets are served meanwhile and a
    /// client that leaves is noticed: then the stream is destroyed where it stands.
    static asio::awaitable<void> pump(std::shared_ptr<socket> s, detail::call_stages cs, event ev,
                                      std::function<std::optional<json>()> more) {
        std::exception_ptr failure;
        try {
            while (s->connected()) {
                auto v = more();
                if (!v) break;
                s->answer(ev, detail::outcome{{}, std::move(*v), {}});
                co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
            }
        } catch (...) {
            failure = std::current_exception();
        }
        if (failure) {
            try {
                answer_failure(*s, cs, ev, failure);
            } catch (...) {   // the client left meanwhile
            }
        }
    }

    /// What the client receives for a failure: the filters' choice, else the exception event.
    static void answer_failure(socket& s, const detail::call_stages& cs, const event& ev, std::exception_ptr failure) {
        response r = cs.failure(failure);
        s.answer(ev, detail::outcome{std::move(r.event), std::move(r.data), {}});
    }

    std::shared_ptr<detail::gateway_state> st_;
};

#endif // GATEWAY_NO_JSON
