
namespace detail {

/// Writes a plain HTTP answer, shuts the send side and reads until the peer closes (or the
/// handshake deadline closes the socket), so the answer is not lost to a reset.
inline asio::awaitable<void> refuse(connection_impl& c, const http_response& r) {
    const std::string text = format_response(r);
    co_await c.write_raw(text);
    co_await c.linger(true);
}

/// Reads an HTTP head (up to the blank line) into head, keeping what follows it in rest.
/// Returns false on a read error; sets too_big when max_bytes pass without a blank line.
inline asio::awaitable<bool> read_head(connection_impl& c, std::size_t max_bytes, std::string& head, std::string& rest,
                                       bool& too_big) {
    head.clear();
    too_big = false;
    std::size_t scanned = 0;   // the blank line cannot start before this
    for (;;) {
        if (auto end = head.find("\r\n\r\n", scanned); end != std::string::npos) {
            if (end + 4 > max_bytes) break;
            rest = head.substr(end + 4);
            head.resize(end + 4);
            co_return true;
        }
        if (head.size() >= max_bytes) break;
        // Reads land in a shared buffer and only what arrived is kept: a handshake in progress costs
        // its own bytes, not a fixed buffer.
        if (co_await c.read_some()) co_return false;
        scanned = head.size() < 3 ? 0 : head.size() - 3;
        head.append(reinterpret_cast<const char*>(c.data_.data()), c.data_.size());
    }
    too_big = true;
    co_return false;
}

} // namespace detail

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
        st_->hub = std::make_shared<detail::hub>(st_->loops.size(), o.max_connections, o.max_connections_per_address);
        st_->hub->log = o.log;
        if (o.ping_interval.count() > 0 || o.idle_timeout.count() > 0)
            for (std::uint32_t i = 0; i < st_->loops.size(); ++i)
                asio::co_spawn(*st_->loops[i], state::sweep(st_->hub, i, o), [](std::exception_ptr) {});
        for (auto& w : st_->own)   // started once every loop exists: nothing reaches them before that
            w->thread = std::thread([&io = w->io] {
                for (;;) {
                    try {
                        io.run();
                        return;
                    } catch (...) {   // a handler let an exception out: the loop keeps serving the others
                    }
                }
            });
        asio::co_spawn(io, state::accept_loop(st_), [](std::exception_ptr) {});
    }
    server(const server&) = delete;
    server& operator=(const server&) = delete;
    /// Stops listening; the worker threads stop and what they served closes with them.
    ~server() {
        halt(true);
        // The sweeps end; connections left on the application's loop go on without heartbeats.
        st_->hub->retired = true;
        asio::post(st_->io, [hub = st_->hub] {
            if (auto* t = hub->lists[0].sweep) t->cancel();
        });
        for (auto& w : st_->own) {
            w->io.stop();
            w->thread.join();
        }
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
        std::shared_ptr<detail::hub> hub;
        std::function<void(gw::metrics&)> more_metrics;   // the gateway's part

        static void read(const state& st, gw::metrics& m) {
            const auto& h = *st.hub;
            m.connections = h.live.load(std::memory_order_relaxed);
            m.handshakes_accepted = h.accepted.load(std::memory_order_relaxed);
            for (std::size_t i = 0; i < h.statuses.size(); ++i)
                if (auto n = h.refused[i].load(std::memory_order_relaxed)) m.handshakes_rejected.emplace_back(h.statuses[i], n);
            for (std::size_t i = 0; i < h.loop_count; ++i) {
                const auto& l = h.lists[i];
                m.messages_in += l.messages_in.load(std::memory_order_relaxed);
                m.bytes_in += l.bytes_in.load(std::memory_order_relaxed);
                m.messages_out += l.messages_out.load(std::memory_order_relaxed);
                m.bytes_out += l.bytes_out.load(std::memory_order_relaxed);
                m.dropped += l.dropped.load(std::memory_order_relaxed);
                m.slow_consumer_closes += l.slow_closes.load(std::memory_order_relaxed);
                m.ping_timeouts += l.ping_timeouts.load(std::memory_order_relaxed);
            }
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
            if (!o.health_path.empty() && req.path() == o.health_path)
                return st.stopped ? http_response{503, "shutting down\n"} : http_response{200, "ok\n"};
            return std::nullopt;
        }

        /// Closes every connection of every loop (1001 after what was queued), waits until none
        /// is left, and cuts what remains at the deadline.
        static asio::awaitable<void> drain(std::shared_ptr<state> self, std::chrono::milliseconds deadline) {
            using asio::experimental::as_tuple;
            auto hub = self->hub;
            auto ex = co_await asio::this_coro::executor;
            auto timer = std::make_shared<asio::steady_timer>(ex, deadline);
            {
                std::lock_guard hold(hub->empty_lock);
                hub->on_empty = [ex, timer] { asio::post(ex, [timer] { timer->cancel(); }); };
            }
            auto each = [&](auto act) {   // act(connection_impl&) on every connection, on its own loop
                for (std::uint32_t i = 0; i < self->loops.size(); ++i)
                    asio::post(*self->loops[i], [hub, i, act] {
                        std::vector<std::shared_ptr<detail::connection_impl>> all;
                        {
                            auto& l = hub->lists[i];
                            std::lock_guard hold(l.lock);
                            for (auto* c = l.first; c; c = c->next_)
                                if (auto p = c->weak_from_this().lock()) all.push_back(std::move(p));
                        }
                        for (auto& c : all) act(c);
                    });
            };
            each([](const std::shared_ptr<detail::connection_impl>& c) {
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
                asio::co_spawn(c->sock_.get_executor(), std::move(bye), [](std::exception_ptr) {});
            });
            if (hub->live.load(std::memory_order_acquire) > 0) co_await timer->async_wait(as_tuple(asio::use_awaitable));
            if (hub->live.load(std::memory_order_acquire) > 0) {   // the deadline passed: cut what is left
                each([](const std::shared_ptr<detail::connection_impl>& c) {
                    std::error_code ignored;
                    c->sock_.close(ignored);
                });
                // Their readers see the socket closed and finish at once; a last wait for that.
                timer->expires_after(std::chrono::seconds(1));
                if (hub->live.load(std::memory_order_acquire) > 0) co_await timer->async_wait(as_tuple(asio::use_awaitable));
            }
            std::lock_guard hold(hub->empty_lock);
            hub->on_empty = nullptr;
        }

        /// One worker's heartbeat: pings its connections every ping_interval, drops those whose pong
        /// is ping_timeout late, and closes those idle for idle_timeout. A single timer per loop.
        static asio::awaitable<void> sweep(std::shared_ptr<detail::hub> hub, std::uint32_t loop, options o) {
            using ms = std::chrono::milliseconds;
            ms tick{1000};
            for (ms t : {o.ping_interval, o.ping_timeout, o.idle_timeout})
                if (t.count() > 0) tick = std::min(tick, t / 4);
            tick = std::max(tick, ms{5});
            const auto interval = static_cast<std::uint32_t>(o.ping_interval.count());
            const auto patience = static_cast<std::uint32_t>(o.ping_timeout.count());
            const auto idle = static_cast<std::uint32_t>(o.idle_timeout.count());
            asio::steady_timer timer(co_await asio::this_coro::executor);
            hub->lists[loop].sweep = &timer;
            struct forget {
                asio::steady_timer*& slot;
                ~forget() { slot = nullptr; }
            } on_exit{hub->lists[loop].sweep};
            while (!hub->retired) {
                timer.expires_after(tick);
                co_await timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
                auto& l = hub->lists[loop];
                std::lock_guard hold(l.lock);
                const std::uint32_t now = l.now = hub->clock();
                for (auto* c = l.first; c; c = c->next_) {
                    if (!c->upgraded_ || c->close_sent_ || c->ended_ || c->broken_) continue;   // closing: close_timeout bounds it
                    if (interval) {
                        if (c->ping_outstanding_ && now - c->ping_at_ >= patience) {
                            if (!c->error_) c->error_ = errc::ping_timeout;
                            detail::hub::bump(l.ping_timeouts);
                            hub->say(log_level::info, "ping timeout", c->request_);
                            std::error_code ignored;
                            c->sock_.close(ignored);   // a peer that does not answer pings will not answer a close
                            continue;
                        }
                        if (!c->ping_outstanding_ && now - c->ping_at_ >= interval) {
                            c->queue_frame(opcode::ping, {});
                            c->ping_outstanding_ = true;
                            c->ping_at_ = now;
                        }
                    }
                    if (idle) {
                        if (c->messages_in_ != c->seen_in_) {
                            c->seen_in_ = c->messages_in_;
                            c->active_at_ = now;
                        } else if (now - c->active_at_ >= idle) {
                            c->close_soon(close_code::going_away, "idle timeout");
                        }
                    }
                }
            }
        }

        static asio::awaitable<void> accept_loop(std::shared_ptr<state> self) {
            using asio::experimental::as_tuple;
            while (!self->stopped) {
                asio::io_context& home = *self->loops[self->next_loop];
                self->next_loop = (self->next_loop + 1) % self->loops.size();
                const asio::any_io_executor home_ex = home.get_executor();
                auto [ec, sock] = co_await self->acceptor.async_accept(home_ex, as_tuple(asio::use_awaitable));
                if (self->stopped) break;
                if (ec) {
                    // Out of descriptors or memory: back off instead of spinning.
                    asio::steady_timer pause(self->io, std::chrono::milliseconds(50));
                    co_await pause.async_wait(as_tuple(asio::use_awaitable));
                    continue;
                }
                asio::co_spawn(home, upgrade(self, home, std::move(sock)), [](std::exception_ptr) {});
            }
        }

        /// True when options.allowed_origins is empty, lists the request's Origin, or there is none.
        static bool origin_allowed(const options& o, const http_request& req) {
            if (o.allowed_origins.empty()) return true;
            auto origin = req.header("Origin");
            if (!origin) return true;
            const auto have = detail::trim(*origin);
            return std::any_of(o.allowed_origins.begin(), o.allowed_origins.end(),
                               [&](const std::string& ok) { return detail::iequals(ok, have); });
        }

        static asio::awaitable<void> upgrade(std::shared_ptr<state> self, asio::io_context& home, asio::ip::tcp::socket sock) {
            using asio::experimental::as_tuple;
            const options& o = self->opts;
            std::error_code ec;
            auto remote = sock.remote_endpoint(ec);
            if (auto a = remote.address(); a.is_v6() && a.to_v6().is_v4_mapped())   // IPv4 client, dual-stack socket
                remote.address(asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()));
            sock.set_option(asio::ip::tcp::no_delay(true), ec);
            auto c = std::make_shared<detail::connection_impl>(
                std::move(sock), detail::role::server,
                detail::frame_limits{o.max_message_bytes, o.max_frame_bytes, std::max<std::size_t>(o.max_fragments, 1)},
                o.close_timeout);
            c->request_.remote_ = remote;
            // Over a connection limit, the request is still read, so that the refusal is an answer.
            const int full = self->hub->admit(remote.address());
            if (!full) {   // counted in: the connection counts itself out when it goes
                c->hub_ = self->hub;
                c->enlist(static_cast<std::uint32_t>(std::find(self->loops.begin(), self->loops.end(), &home) - self->loops.begin()));
            }
            c->high_water_ = std::max<std::size_t>(o.outbox_high_water, 1);
            c->max_outbox_ = std::max(o.max_outbox_bytes, c->high_water_);
            c->drop_when_full_ = o.slow_consumer == overflow::drop;
            asio::steady_timer deadline(c->sock_.get_executor(), o.handshake_timeout);
            deadline.async_wait([w = std::weak_ptr<detail::connection_impl>(c)](std::error_code e) {
                if (e) return;
                if (auto p = w.lock()) {
                    std::error_code ignored;
                    p->sock_.close(ignored);
                }
            });
            if (o.tls) {
                c->tls_ = std::make_unique<detail::connection_impl::tls_state>(c->sock_, *o.tls);
                auto [hec] = co_await c->tls_->stream.async_handshake(asio::ssl::stream_base::server, as_tuple(asio::use_awaitable));
                if (hec) {
                    self->hub->rejected(0);
                    co_return;
                }
            }
            std::string head, rest;
            bool too_big = false;
            if (!co_await detail::read_head(*c, o.max_header_bytes, head, rest, too_big)) {
                if (!too_big) self->hub->rejected(0);   // timed out, or the peer went
                if (too_big) {
                    self->hub->rejected(431, "request header too large", &c->request_);
                    // Named, not a temporary in the co_await: GCC 12 destroys such temporaries twice.
                    http_response r{431, "request header too large\n"};
                    co_await detail::refuse(*c, r);
                }
                co_return;
            }
            http_request& req = c->request_;
            if (auto err = detail::request_parser::parse(std::move(head), req); err.status) {
                self->hub->rejected(err.status, "malformed: " + std::string(err.reason), &req);
                http_response r{err.status, std::string(err.reason) + "\n"};
                co_await detail::refuse(*c, r);
                co_return;
            }
            auto d = detail::check_upgrade(req);
            std::optional<http_response> answer;
            try {
                if (d.is_upgrade && !d.error.status && full) {
                    answer = http_response{full, full == 503 ? "the server is at its connection limit\n"
                                                             : "too many connections from this address\n"};
                    if (full == 503) answer->headers.emplace_back("Retry-After", "1");
                } else if (d.is_upgrade && !d.error.status && !origin_allowed(o, req)) {
                    answer = http_response{403, "origin not allowed\n"};
                } else if (!d.is_upgrade) {
                    answer = own_answer(*self, req);
                    if (!answer && o.on_http) answer = o.on_http(req);
                    if (!answer) answer = http_response{426, "this is a WebSocket endpoint\n", "text/plain; charset=utf-8",
                                                        {{"Upgrade", "websocket"}}};
                } else if (d.error.status) {
                    answer = http_response{d.error.status, std::string(d.error.reason) + "\n"};
                    if (d.error.status == 426) answer->headers.emplace_back("Sec-WebSocket-Version", "13");
                    if (d.error.status == 405) answer->headers.emplace_back("Allow", "GET");
                } else if (o.on_upgrade) {
                    answer = o.on_upgrade(req);
                }
                if (!answer) {
                    auto offered = req.protocols();
                    std::string chosen;
                    if (o.select_subprotocol) chosen = o.select_subprotocol(req);
                    else if (std::find(offered.begin(), offered.end(), "access_token") != offered.end())
                        chosen = "access_token";   // a token offered as a subprotocol: browsers need one chosen
                    if (!chosen.empty() && std::find(offered.begin(), offered.end(), chosen) == offered.end())
                        answer = http_response{500, "the server chose a subprotocol the client did not offer\n"};
                    c->subprotocol_ = std::move(chosen);
                }
            } catch (const std::exception& e) {
                self->hub->say(log_level::error, std::string("an upgrade hook threw: ") + e.what(), req);
                answer = http_response{500, "internal server error\n"};
            }
            if (answer) {
                // RFC 7235: a 401 names the scheme that would be accepted. Bearer tokens are what
                // http_request::bearer_token() reads; an application may name another.
                auto& h = answer->headers;
                if (answer->status == 401 &&
                    std::none_of(h.begin(), h.end(), [](const auto& kv) { return detail::iequals(kv.first, "WWW-Authenticate"); }))
                    h.emplace_back("WWW-Authenticate", "Bearer");
                if (d.is_upgrade || answer->status >= 400) {
                    self->hub->rejected(answer->status, req.path(), &req);
                }
                co_await detail::refuse(*c, *answer);
                co_return;
            }
            // The 101 goes first in the outbox: the connection is handed over at once, and whatever
            // the application sends follows it on the wire.
            detail::out_frame switching;
            switching.payload = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                "Sec-WebSocket-Accept: ";
            switching.payload += detail::accept_key(d.key);
            if (!c->subprotocol_.empty()) switching.payload.append("\r\nSec-WebSocket-Protocol: ").append(c->subprotocol_);
            switching.payload += "\r\n\r\n";
            deadline.cancel();
            if (!c->sock_.is_open() || self->stopped) co_return;
            c->push(std::move(switching));   // before upgraded_: the 101 is not a message
            c->upgraded_ = true;
            c->ping_at_ = c->active_at_ = self->hub->lists[c->loop_].now;
            self->hub->accepted.fetch_add(1, std::memory_order_relaxed);
            c->consume_early(rest);
            if (o.on_connection) {
                o.on_connection(connection(std::move(c)));
                co_return;
            }
            self->ready.push_back(connection(std::move(c)));
            self->wake.cancel();
        }
    };
    std::shared_ptr<state> st_;
    friend class gateway;   // adds its own metrics to the server's
};

