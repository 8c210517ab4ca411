// The gateway's event loop for one socket: on_connect, its events decoded and run through the
// stages and its handler (sync inline, coroutines spawned, streams pumped), the rate limit, and
// on_disconnect once it has gone.
#pragma once
#include "../detail/asio.hpp"
#include "../detail/json.hpp"
#include "../net/transport.hpp"
#include "local_adapter.hpp"
#include "recovery.hpp"
#include "handlers.hpp"
#include "socket.hpp"
#include "state.hpp"

#ifndef GATEWAY_NO_JSON
namespace gw::inline v0 {

namespace detail {

/// The steps of a socket's life, as one place the socket lets in.
struct dispatcher {
    /// One socket's life: on_connect, its events in order, on_disconnect with its rooms still
    /// there, then out of every room. Between the hooks the transport reads on its own and hands
    /// each message to the socket (socket::on_message), so an idle socket holds no coroutine frame.
    /// wire: the format the client speaks (the gateway's, or the namespace's Socket.IO packets).
    /// restored: what connection-state recovery kept of it (its id, rooms and data come back).
    static asio::awaitable<void> serve(std::shared_ptr<detail::gateway_state> st, detail::namespace_state* ns,
                                       std::size_t worker, std::shared_ptr<transport> t, const codec* wire,
                                       std::optional<session_record> restored = std::nullopt) {
        std::shared_ptr<socket> s = std::make_shared<made_socket>(*ns, st, worker, t);
        s->data_ = std::move(t->request().attachment);
        s->codec_ = wire;
        s->decoder_ = wire->make_decoder();
        if (restored) {
            s->id_ = std::move(restored->id);
            s->recovered_ = true;
            // Kept as JSON: a string comes back as the std::string it was (what middleware attaches).
            if (restored->data.is_string()) s->data_ = restored->data.get<std::string>();
            else if (!restored->data.is_null()) s->data_ = std::move(restored->data);
        }
        ns->members->add_socket(*s);   // which also puts it in its id-room
        if (restored)
            for (const auto& room : restored->rooms) ns->join(*s, room);
        ns->connected.fetch_add(1, std::memory_order_relaxed);
        if (wire != st->wire.get()) ns->connected_socketio.fetch_add(1, std::memory_order_relaxed);
        if (ns->slow_consumer) t->set_overflow(*ns->slow_consumer);
        if (!ns->on_drain.empty())
            t->on_drain(
                [](void* p) {
                    auto& sock = *static_cast<socket*>(p);
                    asio::co_spawn(sock.transport_->executor(), drained(sock.shared_from_this()),
                                   sock.ns_.owner->log.report("the on_drain hooks"));
                },
                s.get());
        t->opened(s->id());   // Socket.IO's CONNECT reply goes before anything on_connect sends
        bool hook_failed = false;
        try {
            for (auto& hook : ns->on_connect) co_await hook(*s);
        } catch (...) {
            hook_failed = true;   // an on_connect hook threw: the socket is refused with 1011
            st->log.report("an on_connect hook")(std::current_exception());
        }
        if (!hook_failed) {
            t->start(std::shared_ptr<transport_sink>(s, static_cast<transport_sink*>(s.get())));
            co_return;
        }
        co_await s->disconnect(close_code::internal_error);
        co_await farewell(ns, s, "server error");
    }

    /// A socket and its control block in one allocation (the constructor is the gateway's to call).
    struct made_socket final : socket {
        made_socket(detail::namespace_state& ns, std::shared_ptr<detail::gateway_state> owner, std::size_t worker,
                    std::shared_ptr<transport> t)
            : socket(ns, std::move(owner), worker, std::move(t)) {}
    };

    /// A message the socket's transport read: through the rate limit to dispatch.
    static void received(socket& s, gw::message&& m) {
        const auto& st = s.owner_;
        if (st->rate > 0 && !within_rate(*st, s)) return;
        dispatch(st, &s.ns_, s.shared_from_this(), std::move(m));
    }
    /// The transport's reading is over: the farewell follows.
    static void ended(socket& s) {
        const auto& log = s.owner_->log;
        asio::co_spawn(s.transport_->executor(), farewell(&s.ns_, s.shared_from_this()), log.report("a socket's farewell"));
    }

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
        if (st.over_rate == overflow::close) {
            if (s.connected()) {
                st.log.say(log_level::info, "closing a socket over the message rate: " + s.id());
                s.closed_by_server_ = true;
                s.transport_->close_soon(close_code::policy_violation, "rate limit");
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
                s->ns_.owner->log.report("an on_drain hook")(std::current_exception());
            }
        }
    }

    /// Finishes the connection (the closing handshake), then runs on_disconnect with the reason
    /// (computed from how it ended unless given) and takes the socket out of every room.
    static asio::awaitable<void> farewell(detail::namespace_state* ns, std::shared_ptr<socket> s, std::string reason = {}) {
        // The close frames are exchanged first and the TCP close comes after the hooks: a client
        // whose close() completed knows its on_disconnect has run (up to its first suspension).
        auto& t = *s->transport_;
        std::string ended = co_await t.settle();
        t.on_drain(nullptr, nullptr);   // the socket is leaving: no more drain hooks for it
        if (reason.empty()) reason = !ended.empty() ? std::move(ended) : s->closed_by_server_ ? "server disconnect" : "client disconnect";
        s->abandon_acks();
        // No longer counted as connected (as in Socket.IO), though its rooms stay visible to the hooks.
        ns->connected.fetch_sub(1, std::memory_order_relaxed);
        if (s->codec_ != s->owner_->wire.get()) ns->connected_socketio.fetch_sub(1, std::memory_order_relaxed);
        for (auto& hook : ns->on_disconnect) {
            try {
                co_await hook(*s, reason);
            } catch (...) {   // a failing hook must not keep the socket in its rooms
                s->ns_.owner->log.report("an on_disconnect hook")(std::current_exception());
            }
        }
        // Kept as the hooks left it, then saved once the socket is out of its rooms and its id: a
        // store that can restore a socket still connected (the Redis streams mode's live sessions)
        // knows by then whether a recovered successor has taken its place.
        std::optional<session_record> kept;
        auto pid = std::string(t.session_pid());
        if (!pid.empty() && recoverable(reason)) kept = record_of(*s);
        for (auto rooms = s->rooms_; const auto& room : rooms) ns->leave(*s, room);
        ns->members->remove_socket(*s);
        s->gone_ = true;
        if (kept) {
            const auto& rec = s->owner_->socketio.recovery;
            try {
                co_await rec.store->save(std::move(pid), std::move(*kept), rec.max_disconnection);
            } catch (...) {   // a store that fails loses this recovery, not the farewell
                s->owner_->log.report("saving a socket for recovery")(std::current_exception());
            }
        }
        co_await t.release();
    }

    /// What connection-state recovery keeps of a socket: its id, namespace, rooms and data (when
    /// that holds JSON, or a string as middleware attaches).
    static session_record record_of(const socket& s) {
        session_record r{s.id_, s.ns_.path, s.rooms_, nullptr, {}};
        if (auto* j = std::any_cast<json>(&s.data_)) r.data = *j;
        else if (auto* text = std::any_cast<std::string>(&s.data_)) r.data = *text;
        return r;
    }
    /// The private session id of a Socket.IO socket under connection-state recovery, else empty.
    static std::string_view pid_of(const socket& s) noexcept { return s.transport_->session_pid(); }

    /// Whether a socket that went for this reason may come back (Socket.IO's recoverable reasons):
    /// its transport failed or the server closed it, as opposed to a namespace disconnect.
    static bool recoverable(std::string_view reason) noexcept {
        return reason == "transport close" || reason == "transport error" || reason == "ping timeout" ||
               reason == "forced close" || reason == "forced server close" || reason == "server shutting down";
    }

    /// Decodes one message and runs its handler with the enhancers of every level. Never throws:
    /// whatever goes wrong becomes an exception event for this client.
    static void dispatch(const std::shared_ptr<detail::gateway_state>& st, detail::namespace_state* ns,
                         const std::shared_ptr<socket>& s, message m) {
        std::string error;
        auto ev = s->decoder_ ? s->decoder_->feed(std::move(m), error) : s->codec_->decode(m, error);
        if (!ev) {
            if (error.empty()) return;   // the event's other parts are still to come, or nothing to do
            if (s->codec_->closes_on_error()) {   // Socket.IO: a malformed packet ends the connection
                st->log.say(log_level::info, "closing a connection over a malformed packet: " + error);
                s->transport_->close_soon(close_code::protocol_error, error);
            } else {
                s->answer_exception({{"status", "error"}, {"message", error}}, nullptr);
            }
            return;
        }
        if (ev->ack > 0 && ev->name == "ack") {
            if (!s->acknowledge(*ev) && s->codec_->answers_unknown()) s->answer_exception({{"status", "error"}, {"message", "no emit waits for this ack"}}, ev->id);
            return;
        }
        auto it = ns->handlers.find(ev->name);
        const detail::handler* h = it != ns->handlers.end() ? &it->second : ns->catch_all ? &ns->catch_all : nullptr;
        if (!h) {
            if (s->codec_->answers_unknown()) s->answer_exception({{"status", "error"}, {"message", "There is no handler for event \"" + ev->name + "\""}}, ev->id);
            return;
        }
        detail::call_stages cs{{&st->around, &ns->around, &h->around}};
        if (h->async) {
            asio::co_spawn(s->transport_->executor(), run(s, h->async, h->latency, cs, std::move(*ev)),
                           st->log.report("a handler"));
            return;
        }
        attempt a{cs, *s, *ev};
        if (a.enter()) {
            try {
                a.out = h->sync(*s, *ev, !cs.observed());
            } catch (...) {
                a.failure = std::current_exception();
            }
        }
        a.end(*h->latency);
    }

    static asio::awaitable<void> run(std::shared_ptr<socket> s, decltype(detail::handler::async) fn,
                                     std::shared_ptr<detail::latency_histogram> latency, detail::call_stages cs, event ev) {
        attempt a{cs, *s, ev};
        if (a.enter()) {
            try {
                a.out = co_await fn(*s, ev, !cs.observed());
            } catch (...) {
                a.failure = std::current_exception();
            }
        }
        a.end(*latency);
    }

    /// One call of a handler, the same for synchronous and coroutine handlers: the guards and pipes
    /// before it (enter), then its latency, the interceptors and the reply or what the filters make
    /// of its failure (end). Between the two the caller runs the handler into out or failure.
    struct attempt {
        const detail::call_stages& cs;
        socket& s;
        event& ev;
        const std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
        bool admitted = false;   // the guards let it in: the interceptors see it
        std::optional<detail::outcome> out{};
        std::exception_ptr failure{};

        /// Guards and pipes; false when one refused or threw (failure says what).
        bool enter() {
            try {
                cs.guard(s, ev);
                admitted = true;
                cs.pipe(ev);
                return true;
            } catch (...) {
                failure = std::current_exception();
                return false;
            }
        }

        /// Interceptors (around pipes and handler, so not when a guard denied) see the outcome; then
        /// the reply, or what the filters make of the failure, goes out.
        void end(detail::latency_histogram& latency) {
            const auto took = std::chrono::steady_clock::now() - start;
            latency.record(took);
            try {
                if (admitted)
                    cs.after(s, ev, out ? &out->data : nullptr, std::chrono::duration_cast<std::chrono::nanoseconds>(took));
            } catch (...) {
                if (!failure) failure = std::current_exception();
            }
            try {
                if (!failure && out && out->more) {
                    asio::co_spawn(s.transport_->executor(), pump(s.shared_from_this(), cs, ev, std::move(out->more)),
                                   s.ns_.owner->log.report("a stream's replies"));
                    return;
                }
                if (failure) answer_failure(s, cs, ev, failure);
                else if (out) s.answer(ev, std::move(*out));
            } catch (...) {   // the client left meanwhile: nothing more to tell it
            }
        }
    };

    /// A stream's replies, one per turn of the loop, so other sockets are served meanwhile and a
    /// client that leaves is noticed: then the stream is destroyed where it stands.
    static asio::awaitable<void> pump(std::shared_ptr<socket> s, detail::call_stages cs, event ev,
                                      std::function<std::optional<json>()> more) {
        std::exception_ptr failure;
        try {
            while (s->connected()) {
                auto v = more();
                if (!v) break;
                s->answer(ev, detail::outcome{ev.name, std::move(*v), {}});   // Socket.IO: an event each
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
};

} // namespace detail

inline void socket::on_message(message&& m) { detail::dispatcher::received(*this, std::move(m)); }
inline void socket::on_end() { detail::dispatcher::ended(*this); }

} // namespace gw::v0
#endif
