// The facade: gw::gateway (namespaces, on_init, apply, emit, stop) and gw::namespace_ref (on,
// on_any, use, hooks, apply, emit, to, count, find).
#pragma once
#include "../detail/asio.hpp"
#include "../detail/json.hpp"
#include "../net/server.hpp"
#include "local_adapter.hpp"
#include "dispatch.hpp"
#include "socketio.hpp"
#include "state.hpp"
#include "options.hpp"
#include "vocabulary.hpp"

#ifndef GATEWAY_NO_JSON
namespace gw::inline v0 {

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
    /// Everyone but the members of a room.
    target except(std::string room) const { return all().except(std::move(room)); }
    /// Everyone in the namespace as a target: its count(), ids(), fetch_sockets(), sockets_join()...
    /// span the cluster when there is one (as_local() keeps them to this process).
    target sockets() const { return all(); }
    /// The sockets connected now to this process, on every worker. (A room's, or the cluster's:
    /// co_await ns.to(room).count(), co_await ns.sockets().count().)
    std::size_t count() const noexcept { return ns_->connected.load(std::memory_order_relaxed); }
    /// The socket with this id on the calling thread's worker (any socket when workers is 1), or
    /// nullptr. ns.to(id) reaches a socket on any worker.
    socket* find(std::string_view id) const {
        const auto w = ns_->owner->current();
        if (!w) return nullptr;
        return ns_->members->find(*w, id);
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

namespace redis {
class cluster;
} // namespace redis

/// handshake middleware over gateway.hpp's WebSocket server. Listens when constructed; starts
/// serving (on_init first) once its io_context runs.
class gateway {
public:
    /// opts configure the server it runs on; own, the gateway's limits. The gateway routes upgrades
    /// and connections itself: options.on_upgrade and on_connection must be left unset (handshake
    /// middleware is namespace_ref::use; on_connect hooks see each socket).
    gateway(asio::io_context& io, options opts = {}, gateway_options own = {}) : st_(std::make_shared<detail::gateway_state>(io)) {
        if (opts.on_upgrade)
            throw std::invalid_argument("gw::gateway: options.on_upgrade is the gateway's own; use namespace_ref::use for handshake middleware");
        if (opts.on_connection)
            throw std::invalid_argument("gw::gateway: options.on_connection is the gateway's own; use namespace_ref::on_connect");
        if (own.message_rate < 0 || own.message_burst < 0)
            throw std::invalid_argument("gw::gateway: gateway_options.message_rate and message_burst must not be negative");
        st_->max_rooms = own.max_rooms_per_socket;
        st_->rate = own.message_rate;
        st_->burst = own.message_burst > 0 ? std::max(own.message_burst, 1.0) : std::max(own.message_rate, 1.0);
        st_->over_rate = own.over_rate;
        st_->log.sink = opts.log;
        opts.on_upgrade = [w = std::weak_ptr<detail::gateway_state>(st_)](http_request& req) -> std::optional<http_response> {
            auto st = w.lock();
            if (!st) return http_response{503, "shutting down\n"};
            return admit(*st, req);
        };
        // Each connection is served at once, on its worker, in the turn its upgrade completes: its
        // on_connect hooks have run (up to their first suspension) before another client is served.
        opts.on_connection = [w = std::weak_ptr<detail::gateway_state>(st_)](connection c) {
            if (auto st = w.lock()) start(st, detail::access::transport_of(c));
        };
        st_->socketio = own.socketio;
        if (auto& rec = st_->socketio.recovery; rec.enabled && !rec.store) {
            rec.store = std::make_shared<memory_session_store>();
            st_->default_store = true;   // a cluster in streams mode may keep sessions in Redis instead
        }
        st_->srv = std::make_unique<server>(io, std::move(opts));
        st_->loops = st_->srv->loops();
        if (own.socketio.enabled) {   // Socket.IO's sessions on the same listener
            auto eo = std::move(own.socketio.engine);
            eo.on_connection = [w = std::weak_ptr<detail::gateway_state>(st_)](engineio::connection c) {
                auto t = detail::eio_access::session(c);
                if (auto st = w.lock()) detail::sio_client::start(st, std::move(t));
                else t->close_soon(close_code::going_away, "shutting down");
            };
            st_->eio = std::make_unique<engineio::server>(*st_->srv, std::move(eo));
            of("/");   // Socket.IO's main namespace always exists, as in Socket.IO and NestJS
        }
        st_->srv->st_->more_metrics = [w = std::weak_ptr<detail::gateway_state>(st_)](gw::metrics& m) {
            auto st = w.lock();
            if (!st) return;
            if (st->cluster_metrics) st->cluster_metrics(m);
            for (const auto& ns : st->spaces) {
                m.sockets += ns->connected.load(std::memory_order_relaxed);
                m.socketio_sockets += ns->connected_socketio.load(std::memory_order_relaxed);
                m.rooms += ns->members->rooms();
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
        asio::co_spawn(io, init(st_), st_->log.report("the on_init hooks"));
    }
    gateway(const gateway&) = delete;
    gateway& operator=(const gateway&) = delete;
    /// Stops listening and stops the worker threads; their sockets close with them.
    ~gateway() {
        if (!st_) return;
        st_->srv.reset();   // stops accepting, and the worker threads (Engine.IO's sessions let go meanwhile)
        st_->eio.reset();
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
        ns->members = std::make_unique<detail::local_adapter>(*st_);
        if (st_->wrap_adapter) ns->members = st_->wrap_adapter(*ns, std::move(ns->members));
        ns->sio_wire = std::make_unique<socketio_codec>(ns->path, st_->socketio.max_attachments);
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
    /// Serves a client over a transport of another kind than the gateway's own WebSocket
    /// connections (an Engine.IO session; a test's transport in memory): the request's path picks
    /// the namespace and its handshake middleware runs, as for an upgrade; then on_connect, the
    /// handlers and on_disconnect run as for any socket. Call it on one of the gateway's workers'
    /// threads (any thread with one worker). Returns nullopt once served, else the refusal (404
    /// for no namespace, or what the middleware answered).
    std::optional<http_response> serve(std::shared_ptr<transport> t) {
        if (auto refused = admit(*st_, t->request())) return refused;
        if (!start(st_, std::move(t))) return http_response{500, "not on a worker's thread\n"};
        return std::nullopt;
    }

    /// Stops accepting connections, and only that: connected sockets stay.
    void stop_accepting() {
        if (st_ && st_->srv) st_->srv->stop_accepting();
    }

private:
    friend class redis::cluster;   // wraps the namespaces' adapters
    target all() const {
        target t;
        for (auto& ns : st_->spaces) t.spaces_.push_back(ns.get());
        return t;
    }

    /// The namespace's handshake middleware on a request: nullopt to let it in, else the refusal.
    static std::optional<http_response> admit(detail::gateway_state& st, http_request& req) {
        auto* ns = st.find(req.path());
        if (!ns) return http_response{404, "no namespace at this path\n"};
        return ns->admit(req);
    }

    /// Starts serving an admitted transport on this thread's worker; false when this thread is
    /// none of the workers', or the namespace is gone.
    static bool start(const std::shared_ptr<detail::gateway_state>& st, std::shared_ptr<transport> t) {
        detail::namespace_state* ns = st->find(t->request().path());
        const auto worker = st->current();
        if (!ns || !worker) return false;
        const auto ex = t->executor();
        asio::co_spawn(ex, detail::dispatcher::serve(st, ns, *worker, std::move(t), st->wire.get()), st->log.report("serving a socket"));
        return true;
    }

    static asio::awaitable<void> init(std::shared_ptr<detail::gateway_state> st) {
        for (auto& hook : st->on_init) co_await hook();
    }

    std::shared_ptr<detail::gateway_state> st_;
};

} // namespace gw::v0
#endif
