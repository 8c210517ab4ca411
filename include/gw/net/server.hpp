// gw::server: listens, upgrades connections in the background (slow clients never delay others),
// runs the heartbeat sweep and graceful shutdown, and hands out ready connections.
#pragma once
#include "../detail/asio.hpp"
#include "../core/metrics.hpp"
#include "../protocol/ws_handshake.hpp"
#include "connection.hpp"
#include "handshake_io.hpp"
#include "options.hpp"
#include "server_context.hpp"

namespace gw::inline v0 {

namespace engineio {
class server;
}

/// A WebSocket server: listens when constructed, upgrades connections in the background (slow
/// clients never delay others), and hands out ready connections through accept() or on_connection.
/// With options.workers > 1 it runs that many event loops (the given io_context and threads of its
/// own) and gives each connection to the next loop in turn.
class server {
public:
    server(asio::io_context& io, options opts = {}) : st_(std::make_shared<state>(io, std::move(opts))) {
        auto& o = st_->opts;
        if (o.workers == 0) o.workers = std::max(1u, std::thread::hardware_concurrency());
        if (o.workers > 1 && !o.on_connection)
            throw std::invalid_argument("gw::server: options.workers > 1 needs options.on_connection (accept() serves one loop)");
        detail::require_deflate_built(o.deflate);
        auto& acceptor = st_->acceptor;
        auto listen_on = [&](const asio::ip::tcp::endpoint& ep) {
            acceptor.open(ep.protocol());
            acceptor.set_option(asio::socket_base::reuse_address(true));
            if (ep.address().is_v6() && ep.address().is_unspecified()) acceptor.set_option(asio::ip::v6_only(false));
            acceptor.bind(ep);
            acceptor.listen(o.backlog);
        };
        if (o.host.empty()) {
            try {   // one dual-stack socket serves IPv6 and IPv4 clients ("localhost" may be either)
                listen_on({asio::ip::address_v6::any(), o.port});
            } catch (const std::system_error&) {
                std::error_code ignored;
                acceptor.close(ignored);
                listen_on({asio::ip::address_v4::any(), o.port});
            }
        } else {
            asio::ip::tcp::resolver resolver(io);
            auto endpoints = resolver.resolve(o.host, std::to_string(o.port),
                                              asio::ip::tcp::resolver::passive | asio::ip::tcp::resolver::numeric_service);
            listen_on(endpoints.begin()->endpoint());
        }
        st_->port = st_->acceptor.local_endpoint().port();
        st_->loops.push_back(&io);
        for (std::size_t i = 1; i < o.workers; ++i) {
            auto& w = st_->own.emplace_back(std::make_unique<worker>());
            st_->loops.push_back(&w->io);
        }
        st_->shared = std::make_shared<detail::server_context>(st_->loops.size(), o.max_connections, o.max_connections_per_address);
        st_->shared->log.sink = o.log;
        const auto& log = st_->shared->log;
        if (o.ping_interval.count() > 0 || o.idle_timeout.count() > 0)
            for (std::uint32_t i = 0; i < st_->loops.size(); ++i)
                asio::co_spawn(*st_->loops[i], state::sweep(st_->shared, i, o), log.report("the heartbeat sweep"));
        for (auto& w : st_->own)   // started once every loop exists: nothing reaches them before that
            w->thread = std::thread([&io = w->io, log] {
                for (;;) {
                    try {
                        io.run();
                        return;
                    } catch (const std::exception& e) {   // a handler let an exception out: the loop keeps serving the others
                        log.say(log_level::error, std::string("a worker's handler threw: ") + e.what());
                    } catch (...) {
                        log.say(log_level::error, "a worker's handler threw");
                    }
                }
            });
        asio::co_spawn(io, state::accept_loop(st_), log.report("the accept loop"));
    }
    server(const server&) = delete;
    server& operator=(const server&) = delete;
    /// Stops listening; the worker threads stop and what they served closes with them.
    ~server() {
        halt(true);
        // The sweeps end; connections left on the application's loop go on without heartbeats.
        st_->shared->retired = true;
        asio::post(st_->io, [shared = st_->shared] {
            if (auto* t = shared->loops[0].sweep) t->cancel();
        });
        for (auto& w : st_->own) {
            w->io.stop();
            w->thread.join();
        }
        // What a mounted endpoint holds goes while the loops it lives on still exist.
        if (auto mount = st_->mount) mount->forget_all();
        // Destroying the loops destroys the coroutines suspended on them, and with them their
        // connections; the application's own io_context keeps what it serves.
        st_->own.clear();
    }

    /// The next upgraded connection. Throws asio::error::operation_aborted once the server stops.
    asio::awaitable<connection> accept() {
        auto s = st_;
        for (;;) {
            if (!s->ready.empty()) {
                connection c = std::move(s->ready.front());
                s->ready.pop_front();
                co_return c;
            }
            if (s->stopped) throw std::system_error(asio::error::operation_aborted);
            co_await s->wake.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
        }
    }

    /// Stops listening at once: pending and future accept() calls fail. co_await the result to
    /// shut down gracefully as well: every connection gets a close frame (1001 "server shutting
    /// down") behind what was queued for it, and the awaitable completes once every connection has
    /// gone (the gateway: once on_disconnect ran for each); connections still there after
    /// `deadline` are cut. Not awaited, open connections stay open. From any thread.
    asio::awaitable<void> stop(std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
        halt();
        return state::drain(st_, deadline);
    }
    /// Stops listening, and only that: accept() fails, open connections stay open.
    void stop_accepting() { halt(); }

    /// The counters and gauges now (any thread).
    gw::metrics metrics() const {
        gw::metrics m;
        state::read(*st_, m);
        return m;
    }

    /// The port it listens on (the one chosen when options.port was 0).
    std::uint16_t port() const noexcept { return st_->port; }
    const options& config() const noexcept { return st_->opts; }
    /// The event loops serving connections: loop 0 is the io_context given, the others are the
    /// server's (options.workers of them in all).
    const std::vector<asio::io_context*>& loops() const noexcept { return st_->loops; }

private:
    /// Stops accepting. The acceptor and accept()'s queue belong to the first loop: on its thread
    /// (or when it does not run, as in the destructor) they close at once, else on its next turn.
    void halt(bool here = false) {
        if (!st_ || st_->stopped.exchange(true)) return;
        auto close = [st = st_] {
            std::error_code ec;
            st->acceptor.close(ec);
            st->wake.cancel();
            st->ready.clear();
        };
        if (here || st_->io.get_executor().running_in_this_thread()) close();
        else asio::post(st_->io, std::move(close));
    }

    struct worker {
        asio::io_context io{1};
        asio::executor_work_guard<asio::io_context::executor_type> busy = asio::make_work_guard(io);
        std::thread thread;
    };
    struct state {
        state(asio::io_context& io_, options o) : io(io_), opts(std::move(o)), acceptor(io_), wake(io_) {
            wake.expires_at(asio::steady_timer::time_point::max());
        }
        asio::io_context& io;
        options opts;
        asio::ip::tcp::acceptor acceptor;
        asio::steady_timer wake;   // never expires; cancel() wakes accept()
        std::deque<connection> ready;
        std::atomic<bool> stopped{false};   // read by upgrades on every loop
        std::uint16_t port = 0;
        std::vector<std::unique_ptr<worker>> own;
        std::vector<asio::io_context*> loops;
        std::size_t next_loop = 0;
        std::shared_ptr<detail::server_context> shared;   // with the connections, which keep it alive
        std::function<void(gw::metrics&)> more_metrics;   // the gateway's part
        std::shared_ptr<detail::http_mount> mount;        // Engine.IO's endpoint, when one is mounted

        static void read(const state& st, gw::metrics& m) {
            st.shared->read(m);
            if (auto mount = st.mount) mount->read(m);
            if (st.more_metrics) st.more_metrics(m);
        }

        /// The answers the server itself gives to plain GETs: metrics and health.
        static std::optional<http_response> own_answer(const state& st, const http_request& req) {
            const auto& o = st.opts;
            if (req.method() != "GET") return std::nullopt;
            if (!o.metrics_path.empty() && req.path() == o.metrics_path) {
                gw::metrics m;
                read(st, m);
                return http_response{200, to_prometheus(m), "text/plain; version=0.0.4; charset=utf-8"};
            }
            if (!o.health_path.empty() && req.path() == o.health_path) {
                if (st.stopped) return http_response{503, "shutting down\n"};
                gw::metrics m;
                read(st, m);
                // Without Redis a node still serves its own clients: it stays in the balancer's pool.
                if (m.cluster && !m.cluster_connected) return http_response{200, "ok; cluster: Redis unreachable, local delivery only\n"};
                return http_response{200, "ok\n"};
            }
            return std::nullopt;
        }

        /// Closes every connection of every loop (1001 after what was queued), waits until none
        /// is left, and cuts what remains at the deadline.
        static asio::awaitable<void> drain(std::shared_ptr<state> self, std::chrono::milliseconds deadline) {
            using asio::experimental::as_tuple;
            auto shared = self->shared;
            auto ex = co_await asio::this_coro::executor;
            auto timer = std::make_shared<asio::steady_timer>(ex, deadline);
            shared->when_empty([ex, timer] { asio::post(ex, [timer] { timer->cancel(); }); });
            if (auto mount = self->mount) mount->shut_down();   // Engine.IO's sessions: a close packet each
            auto each = [&](auto act) {   // act(connection_impl&) on every connection, on its own loop
                for (std::uint32_t i = 0; i < self->loops.size(); ++i)
                    asio::post(*self->loops[i], [shared, i, act] {
                        std::vector<std::shared_ptr<detail::connection_impl>> all;
                        {
                            auto& l = shared->loops[i];
                            std::lock_guard hold(l.lock);
                            for (auto* c = l.first; c; c = c->next_)
                                if (auto p = c->weak_from_this().lock()) all.push_back(std::move(p));
                        }
                        for (auto& c : all) act(c);
                    });
            };
            each([log = shared->log](const std::shared_ptr<detail::connection_impl>& c) {
                if (c->in_mount_) return;   // a request Engine.IO answers: its session's close packet is on its way
                if (!c->upgraded_) {   // still in its handshake: nothing to say goodbye with
                    std::error_code ignored;
                    c->sock_.close(ignored);
                    return;
                }
                c->shutting_down_ = true;
                auto bye = [c]() -> asio::awaitable<void> {
                    connection handle(c);
                    co_await handle.close(close_code::going_away, "server shutting down");
                };
                asio::co_spawn(c->sock_.get_executor(), std::move(bye), log.report("closing a connection at shutdown"));
            });
            if (shared->limits.live() > 0) co_await timer->async_wait(as_tuple(asio::use_awaitable));
            if (shared->limits.live() > 0) {   // the deadline passed: cut what is left
                each([](const std::shared_ptr<detail::connection_impl>& c) {
                    std::error_code ignored;
                    c->sock_.close(ignored);
                });
                // Their readers see the socket closed and finish at once; a last wait for that.
                timer->expires_after(std::chrono::seconds(1));
                if (shared->limits.live() > 0) co_await timer->async_wait(as_tuple(asio::use_awaitable));
            }
            shared->when_empty(nullptr);
        }

        /// One worker's heartbeat: pings its connections every ping_interval, drops those whose pong
        /// is ping_timeout late, and closes those idle for idle_timeout. A single timer per loop.
        static asio::awaitable<void> sweep(std::shared_ptr<detail::server_context> shared, std::uint32_t loop, options o) {
            using ms = std::chrono::milliseconds;
            ms tick{1000};
            for (ms t : {o.ping_interval, o.ping_timeout, o.idle_timeout})
                if (t.count() > 0) tick = std::min(tick, t / 4);
            tick = std::max(tick, ms{5});
            const detail::heartbeat_settings beat{static_cast<std::uint32_t>(o.ping_interval.count()),
                                                  static_cast<std::uint32_t>(o.ping_timeout.count()),
                                                  static_cast<std::uint32_t>(o.idle_timeout.count())};
            asio::steady_timer timer(co_await asio::this_coro::executor);
            shared->loops[loop].sweep = &timer;
            struct forget {
                asio::steady_timer*& slot;
                ~forget() { slot = nullptr; }
            } on_exit{shared->loops[loop].sweep};
            while (!shared->retired) {
                timer.expires_after(tick);
                co_await timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
                auto& l = shared->loops[loop];
                std::lock_guard hold(l.lock);
                const std::uint32_t now = l.now = shared->clock();
                for (auto* c = l.first; c; c = c->next_) {
                    switch (c->heartbeat(now, beat)) {
                    case detail::heartbeat_due::nothing: break;
                    case detail::heartbeat_due::ping:
                        c->queue_frame(opcode::ping, {});
                        c->ping_outstanding_ = true;
                        c->ping_at_ = now;
                        break;
                    case detail::heartbeat_due::ping_timeout: {
                        if (!c->error_) c->error_ = errc::ping_timeout;
                        l.ping_timeouts.add();
                        shared->log.say(log_level::info, "ping timeout", c->request_);
                        std::error_code ignored;
                        c->sock_.close(ignored);   // a peer that does not answer pings will not answer a close
                        break;
                    }
                    case detail::heartbeat_due::idle_timeout: c->close_soon(close_code::going_away, "idle timeout"); break;
                    }
                }
            }
        }

        static asio::awaitable<void> accept_loop(std::shared_ptr<state> self) {
            using asio::experimental::as_tuple;
            while (!self->stopped) {
                asio::io_context& home = *self->loops[self->next_loop];
                self->next_loop = (self->next_loop + 1) % self->loops.size();
                // Accepted into a socket of the acceptor's own loop, then handed to its home: a
                // pending accept must not hold a socket of a worker's loop, which goes with the
                // server while the application's loop (and that accept) may outlive it.
                auto [ec, accepted] = co_await self->acceptor.async_accept(as_tuple(asio::use_awaitable));
                if (self->stopped) break;
                asio::ip::tcp::socket sock(home);
                if (!ec) {
                    const auto protocol = accepted.local_endpoint(ec).protocol();
                    if (!ec) {
                        const auto fd = accepted.release(ec);
                        if (!ec) sock.assign(protocol, fd, ec);
                        if (ec && fd >= 0) ::close(fd);
                    }
                }
                if (ec) {
                    // Out of descriptors or memory: back off instead of spinning.
                    asio::steady_timer pause(self->io, std::chrono::milliseconds(50));
                    co_await pause.async_wait(as_tuple(asio::use_awaitable));
                    continue;
                }
                asio::co_spawn(home, upgrade(self, home, std::move(sock)), self->shared->log.report("an upgrade"));
            }
        }

        /// How the server's connections behave (options, fixed at construction).
        detail::connection_settings settings() const {
            const options& o = opts;
            return detail::connection_settings{
                detail::role::server,
                detail::frame_limits{o.max_message_bytes, o.max_frame_bytes, std::max<std::size_t>(o.max_fragments, 1)},
                o.close_timeout, o.outbox_high_water, o.max_outbox_bytes, o.slow_consumer};
        }

        /// One connection's start: its TLS handshake and its admission under the connection limits,
        /// then its requests.
        static asio::awaitable<void> upgrade(std::shared_ptr<state> self, asio::io_context& home, asio::ip::tcp::socket sock) {
            using asio::experimental::as_tuple;
            const options& o = self->opts;
            auto& shared = *self->shared;
            std::error_code ec;
            auto remote = sock.remote_endpoint(ec);
            if (auto a = remote.address(); a.is_v6() && a.to_v6().is_v4_mapped())   // IPv4 client, dual-stack socket
                remote.address(asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()));
            sock.set_option(asio::ip::tcp::no_delay(true), ec);
            auto c = std::make_shared<detail::connection_impl>(std::move(sock), self->settings());
            c->request_.remote_ = remote;
            // Over a connection limit, the request is still read, so that the refusal is an answer.
            const int full = shared.limits.admit(remote.address());
            const auto loop = static_cast<std::uint32_t>(std::find(self->loops.begin(), self->loops.end(), &home) - self->loops.begin());
            if (!full) {   // counted in: the connection counts itself out when it goes
                c->server_ = self->shared;
                c->enlist(loop);
            }
            if (o.tls) {
                asio::steady_timer deadline(c->sock_.get_executor());
                c->close_when(deadline, o.handshake_timeout);
                c->tls_ = std::make_unique<detail::connection_impl::tls_state>(c->sock_, *o.tls);
                auto [hec] = co_await c->tls_->stream.async_handshake(asio::ssl::stream_base::server, as_tuple(asio::use_awaitable));
                if (hec) {
                    shared.rejected(0);
                    co_return;
                }
            }
            co_await requests(std::move(self), loop, std::move(c), {}, full, false);
        }

        /// A connection's HTTP requests: each head read and answered as detail::answer_handshake()
        /// decides, or by the mounted endpoint (Engine.IO), which may keep the connection for more;
        /// an accepted upgrade goes to on_connection or accept(). Only the I/O is here. parsed: the
        /// first request is already in c->request_ (a connection moved here from another loop).
        static asio::awaitable<void> requests(std::shared_ptr<state> self, std::uint32_t loop, std::shared_ptr<detail::connection_impl> c,
                                              std::string rest, int full, bool parsed) {
            const options& o = self->opts;
            auto& shared = *self->shared;
            // Bounds each request's arrival (the handshake, or a keep-alive connection's next request).
            asio::steady_timer deadline(c->sock_.get_executor());
            http_request& req = c->request_;
            for (bool first = true;; first = false) {
                if (!parsed) {
                    c->close_when(deadline, o.handshake_timeout);
                    std::string head;
                    bool too_big = false;
                    if (!co_await detail::read_head(*c, o.max_header_bytes, head, rest, too_big)) {
                        if (!too_big && first) shared.rejected(0);   // timed out, or the peer went
                        if (too_big) {
                            shared.rejected(431, "request header too large", &req);
                            // Named, not a temporary in the co_await: GCC 12 destroys such temporaries twice.
                            http_response r{431, "request header too large\n"};
                            co_await detail::refuse(*c, r);
                        }
                        co_return;
                    }
                    req.issued_ = std::chrono::system_clock::now();
                    req.secure_ = c->tls_ != nullptr;
                    if (auto err = detail::request_parser::parse(std::move(head), req); err.status) {
                        shared.rejected(err.status, "malformed: " + std::string(err.reason), &req);
                        http_response r{err.status, std::string(err.reason) + "\n"};
                        co_await detail::refuse(*c, r);
                        co_return;
                    }
                }
                parsed = false;
                if (auto& m = self->mount; m && req.path().starts_with(m->prefix)) {
                    deadline.cancel();
                    if (self->stopped) co_return;
                    if (auto there = m->home_of(req); there && *there != loop && !c->tls_) {
                        // The request is about something another loop owns: the connection moves there.
                        co_await move_to(self, *there, std::move(c), std::move(rest), full);
                        co_return;
                    }
                    c->in_mount_ = true;
                    const bool more = co_await m->serve(c, rest, full);
                    c->in_mount_ = false;
                    if (!more) co_return;
                    if (self->stopped) {   // shutting down: no next request on this connection
                        std::error_code ignored;
                        c->sock_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
                        c->sock_.close(ignored);
                        co_return;
                    }
                    continue;
                }
                break;
            }
            struct hooks {
                const state& st;
                http_request& req;
                std::optional<http_response> plain(detail::request_head&) const {
                    auto answer = own_answer(st, req);
                    if (!answer && st.opts.on_http) answer = st.opts.on_http(req);
                    return answer;
                }
                std::optional<http_response> upgrade(detail::request_head&) const {
                    if (!st.opts.on_upgrade) return std::nullopt;
                    return st.opts.on_upgrade(req);
                }
                std::optional<std::string> subprotocol(detail::request_head&) const {
                    if (!st.opts.select_subprotocol) return std::nullopt;
                    return st.opts.select_subprotocol(req);
                }
            };
            auto a = detail::answer_handshake(req, {full, detail::origin_allowed(o.allowed_origins, req), &o.deflate}, hooks{*self, req});
            if (!a.hook_error.empty()) shared.log.say(log_level::error, "an upgrade hook threw: " + a.hook_error, req);
            if (!a.accepted) {
                if (a.counted) shared.rejected(a.refusal.status, req.path(), &req);
                co_await detail::refuse(*c, a.refusal);
                co_return;
            }
            c->subprotocol_ = std::move(a.subprotocol);
            if (a.deflate) c->deflate_ = std::make_unique<detail::deflate_session>(a.deflate->params, o.deflate, detail::role::server);
            deadline.cancel();
            if (!c->sock_.is_open() || self->stopped) co_return;
            detail::start_websocket(*c, std::move(a.head), rest);
            if (o.on_connection) {
                o.on_connection(connection(std::move(c)));
                co_return;
            }
            self->ready.push_back(connection(std::move(c)));
            self->wake.cancel();
        }

        /// Moves a plain-TCP connection, its request read, to another loop and serves it there:
        /// its socket is re-made on that loop's io_context, and its count under the limits goes with it.
        static asio::awaitable<void> move_to(std::shared_ptr<state> self, std::uint32_t loop, std::shared_ptr<detail::connection_impl> c,
                                             std::string rest, int full) {
            std::error_code ec;
            const auto protocol = c->sock_.local_endpoint(ec).protocol();
            if (ec) co_return;
            const auto fd = c->sock_.release(ec);
            if (ec) co_return;
            asio::io_context& there = *self->loops[loop];
            auto moved = std::make_shared<detail::connection_impl>(asio::ip::tcp::socket(there, protocol, fd), self->settings());
            moved->request_ = std::move(c->request_);
            if (c->server_) {
                c->delist();
                moved->server_ = std::move(c->server_);   // the count moves: the old one releases nothing
                moved->enlist(loop);
            }
            asio::co_spawn(there, requests(self, loop, std::move(moved), std::move(rest), full, true),
                           self->shared->log.report("a request moved to its session's loop"));
        }
    };
    std::shared_ptr<state> st_;
    friend class gateway;   // adds its own metrics to the server's
    friend class engineio::server;   // mounts its endpoint
};

} // namespace gw::v0
