// gw::engineio: Engine.IO v4 on a gw::server's listener. A session is reached over HTTP long-polling
// (keep-alive requests: held GETs, POSTed payloads) or a WebSocket, and may move from the first to
// the second (the probe and upgrade dance). The session owns its heartbeat (the server pings, the
// client answers) and is a gw::transport, so the gateway serves it like any connection; its own
// handle, engineio::connection, has the WebSocket core's awaitables (accept, receive, send, close).
#pragma once
#include "../detail/asio.hpp"
#include "../detail/fifo.hpp"
#include "../protocol/engineio.hpp"
#include "connection_impl.hpp"
#include "handshake_io.hpp"
#include "server.hpp"

namespace gw::inline v0::engineio {

/// Cross-origin requests (browsers' CORS): off unless enabled.
struct cors_options {
    bool enabled = false;
    /// Origins answered with Access-Control-Allow-Origin; empty: any (echoed back with
    /// credentials, "*" without). An origin not listed is not refused: its answer lacks the header,
    /// so the browser keeps it from the page (use allow_request to refuse).
    std::vector<std::string> origins{};
    bool credentials = false;   ///< Access-Control-Allow-Credentials: cookies cross-origin
    /// Headers a preflight may ask for; empty: whatever it asks.
    std::vector<std::string> allowed_headers{};
    std::chrono::seconds max_age{0};   ///< how long a browser may cache a preflight; 0: not said
};

/// The session cookie for load balancers that route by cookie (sticky sessions): off unless named.
struct cookie_options {
    std::string name{};   ///< "io" as the reference server; "" (the default): no cookie
    std::string path = "/";
    bool http_only = true;
    std::string same_site = "Lax";
};

class connection;

/// Engine.IO's settings. The defaults are the reference server's.
struct options {
    /// Requests whose path starts with this are Engine.IO's ("/socket.io/" for Socket.IO clients).
    std::string path = "/engine.io/";
    std::chrono::milliseconds ping_interval{25'000};   ///< the server pings this long after the last pong
    std::chrono::milliseconds ping_timeout{20'000};    ///< and ends the session when no pong comes within this
    std::chrono::milliseconds upgrade_timeout{10'000}; ///< a probing WebSocket must upgrade within this
    /// The largest POST body and WebSocket message, in bytes (advertised as maxPayload): larger
    /// POSTs get 413, larger messages close the WebSocket with 1009.
    std::size_t max_payload = 1'000'000;
    bool polling = true;          ///< the long-polling transport
    bool websocket = true;        ///< the WebSocket transport
    bool allow_upgrades = true;   ///< polling sessions may move to a WebSocket
    /// Packets in one polling response at most: python-engineio refuses more than 16.
    std::size_t max_packets_per_poll = 16;
    cors_options cors{};
    cookie_options cookie{};
    /// permessage-deflate on the WebSocket transport, as gw::options::deflate (the reference
    /// server's perMessageDeflate: off by default).
    deflate_options per_message_deflate{};
    /// Polling responses of at least this many bytes go compressed with gzip or deflate when the
    /// request's Accept-Encoding takes one (the reference server's httpCompression, threshold 1024);
    /// 0 turns it off. Needs the GATEWAY_DEFLATE knob (without it, nothing is compressed).
    std::size_t http_compression_threshold = 1024;
    /// Sees each handshake (not the later requests of a session): nullopt lets it in, a message
    /// refuses it with 403 {"code":4,"message":...} ("" for "Forbidden"). It may set
    /// request.attachment, which the session keeps.
    std::function<std::optional<std::string>(http_request&)> allow_request{};
    /// When set, receives each new session at once, on its thread, instead of accept().
    std::function<void(connection)> on_connection{};
};

} // namespace gw::v0::engineio

namespace gw::inline v0::detail {

class eio_session;
struct eio_access;

/// A polling request for a session of another node, as a cluster carries it to the owner.
struct eio_remote_request {
    std::string method;   // "GET", "POST" or what else the client sent
    std::string sid;
    std::string body;     // a POST's, read whole (at most max_payload bytes)
    bool octet_stream = false;   // the POST said Content-Type: application/octet-stream
};

/// The owner's answer, written by the node that received the request.
struct eio_remote_answer {
    int status = 400;
    std::string content_type;
    std::string body;
    bool known = false;   // the owner had the session (else: a node that shares the tag, or it ended)
};

/// The seam between Engine.IO and a cluster: set by one (gw::redis::cluster) before the loops run,
/// it reaches the node that owns a session this node does not have. Engine.IO itself knows nothing
/// of Redis.
class eio_remote {
public:
    virtual ~eio_remote() = default;
    /// Runs the request at the session's owner and returns its answer; nullopt when none came
    /// within the deadline (the owner is gone) or no node owns the sid. Called on any loop.
    virtual asio::awaitable<std::optional<eio_remote_answer>> forward(eio_remote_request r) = 0;
    /// The client of a forwarded GET went away while the owner held it: the owner ends the session
    /// ("transport error"), as it would for its own poll. Called on any loop.
    virtual void abort(std::string sid) = 0;
};

/// What an Engine.IO endpoint shares with its sessions: settings, the session table, the server's.
struct eio_state {
    engineio::options opts;
    std::shared_ptr<server_context> shared;   // the server's log and counters
    std::vector<asio::io_context*> loops;
    std::size_t high_water = 64 << 10, max_outbox = 4 << 20;   // the server's outbox settings
    bool drop_when_full = false;
    std::mutex lock;   // the table: requests for a session may arrive on any loop
    /// Each session by its id, keyed by a view of the session's own id: an entry holds its session.
    using session_table = std::unordered_map<std::string_view, std::pair<std::shared_ptr<eio_session>, std::uint32_t>>;
    session_table sessions;
    // accept()'s queue, on the first loop.
    std::deque<std::shared_ptr<eio_session>> ready;
    std::unique_ptr<asio::steady_timer> wake;
    std::atomic<bool> stopped{false};   // read by requests on every loop
    std::atomic<std::uint64_t> polling{0}, upgrades{0}, ping_timeouts{0};   // metrics
    /// In a cluster: the 4 characters that start this node's sids, and the way to the other nodes
    /// for requests whose sid names another node. Both set before the loops run, read-only after;
    /// unset (no cluster), a sid not found here is unknown, as before.
    std::string node_tag;
    std::shared_ptr<eio_remote> remote;

    std::optional<std::uint32_t> current_loop() const noexcept {
        for (std::uint32_t i = 0; i < loops.size(); ++i)
            if (loops[i]->get_executor().running_in_this_thread()) return i;
        return std::nullopt;
    }
    std::shared_ptr<eio_session> find(const std::string& sid) {
        std::lock_guard hold(lock);
        auto it = sessions.find(sid);
        return it == sessions.end() ? nullptr : it->second.first;
    }
};

/// A polling response's body compressed as the request accepts (gzip, or deflate), when it is at
/// least the threshold long: the reference server's httpCompression.
inline void compress_body(const http_request& req, const engineio::options& o, http_response& r) {
    if (!deflate_built || o.http_compression_threshold == 0 || r.body.size() < o.http_compression_threshold) return;
    const auto accept = req.header("Accept-Encoding");
    if (!accept) return;
    const http_encoding e = pick_encoding(*accept);
    if (e == http_encoding::identity) return;
    r.body = http_compress(r.body, e);
    r.headers.emplace_back("Content-Encoding", std::string(encoding_name(e)));
}

/// One Engine.IO session: its transport (polling, or a WebSocket), the packets waiting for a
/// poll, the probe of an upgrade, and the heartbeat. Lives on one loop; every call is made there.
class eio_session final : public transport, public std::enable_shared_from_this<eio_session> {
public:
    using packet_type = eio::packet_type;

    /// A session opened over polling keeps a copy of its handshake's request; one opened over a
    /// WebSocket borrows its connection's (attach_websocket), which lives as long as it does.
    eio_session(std::shared_ptr<eio_state> st, asio::any_io_executor ex, const http_request& first, bool websocket)
        : st_(std::move(st)), ex_(std::move(ex)), id_(eio::make_sid(st_->node_tag)),
          own_request_(websocket ? nullptr : std::make_unique<http_request>(first)), beat_(ex_) {}

    const std::string& id() const noexcept { return id_; }
    bool over_websocket() const noexcept { return ws_ != nullptr; }
    bool upgrading() const noexcept { return probe_ != nullptr; }
    bool ended() const noexcept { return phase_ == phase::ended; }

    /// The open packet's data for this session over polling or a WebSocket.
    std::string open_data(bool websocket) const {
        const auto& o = st_->opts;
        std::vector<std::string_view> upgrades;
        if (!websocket && o.websocket && o.allow_upgrades) upgrades.push_back("websocket");
        return eio::open_packet_data(id_, upgrades, static_cast<std::uint64_t>(o.ping_interval.count()),
                                     static_cast<std::uint64_t>(o.ping_timeout.count()), o.max_payload);
    }

    /// Starts the heartbeat: the first ping goes ping_interval after the handshake.
    void begin() {
        if (!ws_) {
            polling_counted_ = true;
            st_->polling.fetch_add(1, std::memory_order_relaxed);
        }
        arm_ping();
    }

    /// The server shuts down: a close packet after what is queued, and the session ends now
    /// ("server shutting down"); a held poll takes the close packet.
    void shut_down() {
        if (ended()) return;
        say_close(close_code::going_away, "server shutting down");
        end("server shutting down");
    }

    // ---- the WebSocket transport ----

    /// A WebSocket opened without a sid: the session's transport from the start.
    void attach_websocket(std::shared_ptr<connection_impl> c) {
        ws_ = std::move(c);
        ws_->on_drain(drain_callback_, drain_context_);
        ws_->send_frame(opcode::text, eio::encode_text_in_place(packet_type::open, open_data(true)));
        ws_->read_with(ws_reader{shared_from_this(), ws_});
    }

    /// A WebSocket opened with the sid of this polling session: the probe. Nothing is sent on it
    /// before its "2probe" is answered; the session moves to it on "5".
    void probe(std::shared_ptr<connection_impl> c) {
        probe_ = std::move(c);
        upgrade_timer_ = std::make_unique<asio::steady_timer>(ex_, st_->opts.upgrade_timeout);
        upgrade_timer_->async_wait([w = weak_from_this(), p = std::weak_ptr<connection_impl>(probe_)](std::error_code ec) {
            auto s = w.lock();
            if (ec || !s || s->probe_ != p.lock()) return;
            s->drop_probe();   // too slow
        });
        probe_->read_with(ws_reader{shared_from_this(), probe_});
    }

    // ---- the polling transport (each called by the request's coroutine, on this loop) ----

    /// Answers a GET: waits for packets (or the end, or an upgrade's noop) and sends up to
    /// max_packets_per_poll of them. Returns false when the response could not be written.
    asio::awaitable<bool> poll(std::shared_ptr<connection_impl> c, http_response r) {
        auto self = shared_from_this();
        if (get_pending_) {   // two GETs at once: the second is refused and the session ends
            end("transport error");
            r.status = 400;
            r.body = eio::error_body(eio::error_code::bad_request);
            r.content_type = "application/json";
            co_return co_await respond(*c, r);
        }
        {
            flag_guard pending(get_pending_);
            if (queue_.empty() && phase_ == phase::open) watch_abort(c);
            while (queue_.empty() && phase_ == phase::open && !(probed_ && probe_) && !ws_) co_await wait();
            std::error_code ignored;
            c->sock_.cancel(ignored);   // the watch ends with the wait
        }
        bool compressible = true;
        r.body = take_payload(compressible);
        r.content_type = "text/plain; charset=UTF-8";
        if (compressible) compress_body(c->request_, st_->opts, r);
        const bool ok = co_await respond(*c, r);
        if (!ok && !ended()) end("transport error");
        co_return ok;
    }

    /// A GET that reached another node of the cluster, run here as if it had come directly: held
    /// until there are packets, answered with them. The connection is the other node's to watch: a
    /// client that goes away meanwhile comes back as abort_forwarded_poll().
    asio::awaitable<eio_remote_answer> poll_forwarded() {
        auto self = shared_from_this();
        eio_remote_answer a;
        a.known = true;
        if (get_pending_) {
            end("transport error");
            a.status = 400;
            a.body = eio::error_body(eio::error_code::bad_request);
            a.content_type = "application/json";
            co_return a;
        }
        {
            flag_guard pending(get_pending_);
            while (queue_.empty() && phase_ == phase::open && !(probed_ && probe_) && !ws_) co_await wait();
        }
        a.status = 200;
        bool compressible = true;   // the receiving node compresses it: the forward protocol does not carry this yet
        a.body = take_payload(compressible);
        a.content_type = "text/plain; charset=UTF-8";
        co_return a;
    }

    /// The client of a GET forwarded here went away while it was held (see eio_remote::abort).
    void abort_forwarded_poll() {
        if (get_pending_ && !ended()) end("transport error");
    }

    /// What a poll takes now: up to max_packets_per_poll packets as a payload, or the one packet
    /// that says why there is nothing. compressible turns false when a packet taken was sent with
    /// compress(false): the whole response then goes uncompressed.
    std::string take_payload(bool& compressible) {
        std::string payload;
        std::size_t taken = 0;
        bool closes = false;
        while (!queue_.empty() && taken < std::max<std::size_t>(st_->opts.max_packets_per_poll, 1)) {
            auto& q = queue_.front();
            if (q.shared) eio::append_to_payload(payload, packet_type::message, q.shared->text(), false);
            else eio::append_to_payload(payload, q.type, q.data, q.binary);
            closes = closes || q.type == packet_type::close;
            compressible = compressible && q.compress;
            queued_bytes_ -= q.size();
            queue_.pop_front();
            ++taken;
        }
        if (taken == 0) {
            // Nothing to say: the session ended ("1", or "6" when the client closed it), moved to
            // a WebSocket, or its upgrade asks the client to finish this poll ("6").
            const bool client_closed = ended() && reason_ == "transport close";
            eio::append_to_payload(payload, ended() && !client_closed ? packet_type::close : packet_type::noop, {}, false);
        }
        check_drained();
        if (closes && !ended()) end("forced close");   // the close packet reached the client
        return payload;
    }

    /// While a poll is held, a client that goes away (its tab closed) ends the session at once
    /// ("transport error") rather than at the next missed pong. Bytes that arrive instead (the
    /// client's next request, pipelined) end the watch without a verdict.
    void watch_abort(const std::shared_ptr<connection_impl>& c) {
        c->sock_.async_wait(tcp::socket::wait_read, [w = weak_from_this(), wc = std::weak_ptr<connection_impl>(c)](std::error_code ec) {
            auto s = w.lock();
            auto conn = wc.lock();
            if (ec || !s || !conn || !s->get_pending_) return;
            char byte;
            std::error_code peek;
            conn->sock_.receive(asio::buffer(&byte, 1), tcp::socket::message_peek, peek);
            if (peek && peek != asio::error::would_block && peek != asio::error::try_again) s->end("transport error");
        });
    }

    /// Answers a POST whose body has been read: its packets in order. Returns the refusal's code,
    /// or nullopt when the body was taken.
    std::optional<eio::error_code> posted(std::string_view body) {
        std::vector<eio::packet> packets;
        const bool whole = eio::decode_payload(body, packets);
        for (auto& p : packets) {
            if (ended()) break;
            take(std::move(p));
        }
        if (!whole && !ended()) {
            end("parse error");
            return eio::error_code::bad_request;
        }
        return std::nullopt;
    }
    bool post_pending_ = false;   // a POST's body is being read: a second one at once ends the session

    /// Ends the session (idempotent): the table forgets it, its transports close, a held GET is
    /// answered, and its reader hears of the end.
    void end(std::string_view reason) {
        if (ended()) return;
        phase_ = phase::ended;
        reason_ = reason;
        if (std::exchange(polling_counted_, false)) st_->polling.fetch_sub(1, std::memory_order_relaxed);
        if (reason_ == "ping timeout") st_->ping_timeouts.fetch_add(1, std::memory_order_relaxed);
        {
            std::lock_guard hold(st_->lock);
            st_->sessions.erase(id_);
        }
        std::error_code ignored;
        beat_.cancel();
        if (upgrade_timer_) upgrade_timer_->cancel();
        if (ws_ && ws_->can_send()) ws_->close_soon(close_code::normal, {});
        drop_probe();
        wake();
        if (auto sink = std::move(sink_)) sink->on_end();   // the sink may hold this session: let go
    }

    /// The server is destroyed with this session open: let go of everything, with no callbacks.
    void abandon() {
        if (!ended()) phase_ = phase::ended;
        if (std::exchange(polling_counted_, false)) st_->polling.fetch_sub(1, std::memory_order_relaxed);
        if (auto sink = std::move(sink_)) sink->abandon();
        if (!own_request_ && ws_) own_request_ = std::make_unique<http_request>(ws_->request_);   // no longer borrowed
        ws_.reset();
        probe_.reset();
        queue_.clear();
        inbox_.clear();
    }

    // ---- transport ----
    void start(std::shared_ptr<transport_sink> sink) override {
        sink_ = std::move(sink);
        while (!inbox_.empty() && sink_) {
            auto m = std::move(inbox_.front());
            inbox_.pop_front();
            sink_->on_message(std::move(m));
        }
        if (ended() && sink_) std::move(sink_)->on_end();
    }
    void send_text(std::string text, bool compress = true) override {
        if (!is_open()) throw std::system_error(errc::closed);
        send_packet(packet_type::message, std::move(text), false, compress);
    }
    void send_binary(std::string bytes, bool compress = true) {
        if (!is_open()) throw std::system_error(errc::closed);
        send_packet(packet_type::message, std::move(bytes), true, compress);
    }
    void send_prepared(const std::shared_ptr<const prepared>& p, bool droppable) override {
        if (!is_open()) return;
        if (ws_) {
            ws_->send_prepared_as(*p, "4", droppable);
            return;
        }
        // Volatile: only when the client can take it now (a poll is waiting) and it is not behind.
        if (droppable && (!get_pending_ || above_high_water())) {
            ++dropped_;
            return;
        }
        if (!admit(p->text().size() + 1)) return;
        queue_.push_back(queued{packet_type::message, false, {}, p, p->compress()});
        queued_bytes_ += queue_.back().size();
        after_queue();
    }
    std::size_t buffered() const noexcept override { return ws_ ? ws_->buffered() : queued_bytes_; }
    bool above_high_water() const noexcept override { return buffered() >= st_->high_water; }
    asio::awaitable<void> drained() override {
        auto self = shared_from_this();
        for (;;) {
            if (ws_) {
                co_await ws_->wait_drained();
                co_return;
            }
            if (!above_high_water() || !is_open()) co_return;
            pressed_ = true;
            co_await wait();
        }
    }
    void on_drain(void (*callback)(void*), void* context) override {
        drain_callback_ = callback;
        drain_context_ = context;
        if (ws_) ws_->on_drain(callback, context);
    }
    void set_overflow(overflow policy) override {
        drop_when_full_ = policy == overflow::drop;
        if (ws_) ws_->set_overflow(policy);
    }
    bool is_open() const noexcept override { return phase_ == phase::open && (!ws_ || ws_->can_send()); }
    /// The server closes the session: a close packet after what is queued; over polling the next
    /// poll takes it (ping_timeout bounds the wait for one).
    void close_soon(close_code, std::string_view) override {
        if (phase_ != phase::open) return;
        say_close(close_code::normal, {});
        phase_ = phase::closing;
        if (ws_) {
            reason_ = "forced close";
            return;
        }
        wake();
        beat_.expires_after(st_->opts.ping_timeout);
        beat_.async_wait([w = weak_from_this()](std::error_code ec) {
            if (auto s = w.lock(); s && !ec) s->end("forced server close");
        });
    }
    asio::awaitable<void> close(close_code code, std::string_view reason) override {
        auto self = shared_from_this();
        close_soon(code, reason);
        while (!ended()) co_await wait();
    }
    asio::awaitable<std::string> settle() override {
        auto self = shared_from_this();
        while (!ended()) co_await wait();
        co_return std::string(reason_);
    }
    asio::awaitable<void> release() override { co_return; }
    asio::any_io_executor executor() const override { return ex_; }
    bool on_own_thread() const noexcept override { return runs_here(ex_); }
    http_request& request() noexcept override { return own_request_ ? *own_request_ : ws_->request_; }

    /// The next message for engineio::connection::receive(); nullopt once the session ended.
    asio::awaitable<std::optional<message>> receive() {
        auto self = shared_from_this();
        while (inbox_.empty() && !ended()) co_await wait();
        if (inbox_.empty()) co_return std::nullopt;
        message m = std::move(inbox_.front());
        inbox_.pop_front();
        co_return m;
    }
    std::string_view reason() const noexcept { return reason_; }
    std::uint32_t dropped_ = 0;

private:
    enum class phase : std::uint8_t { open, closing, ended };

    /// A packet waiting for a poll: its own text, or a broadcast's shared one.
    struct queued {
        packet_type type;
        bool binary;
        std::string data;
        std::shared_ptr<const prepared> shared;
        bool compress = true;   // false: sent with compress(false), so its poll's response goes uncompressed
        std::size_t size() const noexcept { return 1 + (shared ? shared->text().size() : data.size()); }
    };

    /// Reads a WebSocket of the session (its transport, or the probe) on plain callbacks.
    struct ws_reader {
        std::shared_ptr<eio_session> s;
        std::shared_ptr<connection_impl> c;
        void message(gw::message&& m) { s->from_websocket(c, std::move(m)); }
        void end() { s->websocket_ended(c); }
    };

    void from_websocket(const std::shared_ptr<connection_impl>& c, gw::message&& m) {
        if (ended()) return;
        auto p = eio::decode_packet_in_place(std::move(m.data), m.binary);
        if (c == probe_) {
            if (p && p->type == packet_type::ping && p->data == "probe" && !probed_) {
                probed_ = true;
                probe_->send_frame(opcode::text, eio::encode_text(packet_type::pong, "probe"));
                wake();   // a held poll is answered with a noop, so the client can pause polling
            } else if (p && p->type == packet_type::upgrade && probed_) {
                upgrade();
            } else {
                drop_probe();
            }
            return;
        }
        if (c != ws_) return;
        if (!p) {
            end("parse error");
            return;
        }
        take(std::move(*p));
    }

    void websocket_ended(const std::shared_ptr<connection_impl>& c) {
        asio::co_spawn(c->sock_.get_executor(), [c]() -> asio::awaitable<void> { co_await c->finish(); },
                       st_->shared->log.report("closing an Engine.IO WebSocket"));
        if (c == probe_) {
            drop_probe();
            return;
        }
        if (c != ws_ || ended()) return;
        if (phase_ == phase::closing) end("forced close");
        else end(c->close_received_ || c->error_ == errc::connection_lost ? "transport close" : "transport error");
    }

    /// The probe said "5": the session moves to it, with what was waiting for a poll.
    void upgrade() {
        upgrade_timer_.reset();   // its wait ends, aborted; the session keeps no timer it no longer needs
        if (std::exchange(polling_counted_, false)) st_->polling.fetch_sub(1, std::memory_order_relaxed);
        st_->upgrades.fetch_add(1, std::memory_order_relaxed);
        ws_ = std::move(probe_);
        probed_ = false;
        ws_->on_drain(drain_callback_, drain_context_);
        ws_->set_overflow(drop_when_full_ ? overflow::drop : overflow::close);
        for (auto& q : queue_) {
            // Closed while the client paused polling for this probe: over a WebSocket the client
            // takes the close packet as said only with the close frame that follows it.
            if (q.type == packet_type::close) {
                say_close(close_code::normal, {});
                break;
            }
            if (q.shared) ws_->send_prepared_as(*q.shared, "4", false);
            else if (q.binary) ws_->queue_frame(opcode::binary, std::move(q.data));
            else ws_->queue_frame(opcode::text, eio::encode_text(q.type, q.data));
        }
        queue_.clear();
        queued_bytes_ = 0;
        wake();   // a held poll ends with a noop
    }

    /// Gives up the probe (it went away, misbehaved or was too slow). One that was answered told
    /// the client to pause polling (its held GET got a noop): without it the client cannot go on,
    /// so the session ends now rather than at the next missed pong, unless a GET is held again.
    void drop_probe() {
        if (!probe_) return;
        if (probe_->can_send()) probe_->close_soon(close_code::normal, {});
        probe_.reset();
        if (std::exchange(probed_, false) && !get_pending_ && !ended()) end("transport error");
    }

    /// The close packet, after what is queued: over a WebSocket with its close frame (code,
    /// reason), over polling for the next poll to take.
    void say_close(close_code code, std::string_view reason) {
        if (ws_) {
            if (!ws_->can_send()) return;
            ws_->send_frame(opcode::text, eio::encode_text(packet_type::close, {}));
            ws_->close_soon(code, reason);
            return;
        }
        queue_.push_back(queued{packet_type::close, false, {}, nullptr});
        queued_bytes_ += 1;
    }

    /// One packet from the client, over either transport.
    void take(eio::packet&& p) {
        switch (p.type) {
        case packet_type::message:
            if (sink_) sink_->on_message(gw::message{std::move(p.data), p.binary});
            else {
                inbox_.push_back(gw::message{std::move(p.data), p.binary});
                wake();
            }
            break;
        case packet_type::pong:
            if (awaiting_pong_) {
                awaiting_pong_ = false;
                arm_ping();
            }
            break;
        case packet_type::close: end("transport close"); break;
        case packet_type::ping: end("transport error"); break;   // v4: only the server pings
        default: break;   // open, upgrade and noop mean nothing here
        }
    }

    void send_packet(packet_type type, std::string data, bool binary, bool compress = true) {
        if (ws_) {
            if (binary) ws_->send_frame(opcode::binary, std::move(data), compress);
            else ws_->send_frame(opcode::text, eio::encode_text_in_place(type, std::move(data)), compress);
            return;
        }
        if (!admit(data.size() + 1)) return;
        queue_.push_back(queued{type, binary, std::move(data), nullptr, compress});
        queued_bytes_ += queue_.back().size();
        after_queue();
    }

    /// A polling session's cap on waiting packets (the server's max_outbox_bytes), as a WebSocket
    /// connection's outbox: beyond it, drop the packet or close the session as a slow consumer.
    bool admit(std::size_t n) {
        if (queued_bytes_ == 0 || n <= st_->max_outbox - std::min(queued_bytes_, st_->max_outbox)) return true;
        if (drop_when_full_) {
            ++dropped_;
            return false;
        }
        st_->shared->log.say(log_level::warn, "closing a slow Engine.IO session: its packets passed max_outbox_bytes", request());
        queue_.clear();
        queued_bytes_ = 0;
        end("slow consumer");
        return false;
    }

    void after_queue() {
        if (queued_bytes_ >= st_->high_water) pressed_ = true;
        if (get_pending_) wake();
    }

    void check_drained() {
        if (!pressed_ || above_high_water()) return;
        pressed_ = false;
        wake();
        if (drain_callback_) drain_callback_(drain_context_);
    }

    // ---- heartbeat ----
    void arm_ping() {
        if (phase_ != phase::open) return;
        beat_.expires_after(st_->opts.ping_interval);
        beat_.async_wait([w = weak_from_this()](std::error_code ec) {
            if (auto s = w.lock(); s && !ec) s->ping();
        });
    }
    void ping() {
        if (!is_open()) return;
        if (ws_) ws_->send_frame(opcode::text, eio::encode_text(packet_type::ping, {}));
        else send_packet(packet_type::ping, {}, false);
        awaiting_pong_ = true;
        beat_.expires_after(st_->opts.ping_timeout);
        beat_.async_wait([w = weak_from_this()](std::error_code ec) {
            if (auto s = w.lock(); s && !ec && s->awaiting_pong_) s->end("ping timeout");
        });
    }

    // ---- waiting: one timer, made on first need, wakes whoever waits (a poll, receive, close) ----
    asio::awaitable<void> wait() {
        if (!wake_) {
            wake_ = std::make_unique<asio::steady_timer>(ex_);
            wake_->expires_at(asio::steady_timer::time_point::max());
        }
        co_await wake_->async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    }
    void wake() {
        if (wake_) wake_->cancel();
    }

    std::shared_ptr<eio_state> st_;
    asio::any_io_executor ex_;
    std::string id_;
    std::unique_ptr<http_request> own_request_;   // polling sessions only; see the constructor
    phase phase_ = phase::open;
    std::string_view reason_;   // one of the literals end() is given
    std::shared_ptr<transport_sink> sink_;
    fifo<gw::message> inbox_;   // for receive(), when no sink reads
    std::shared_ptr<connection_impl> ws_, probe_;
    std::unique_ptr<asio::steady_timer> upgrade_timer_;
    fifo<queued> queue_;   // polling: packets waiting for a GET
    std::size_t queued_bytes_ = 0;
    asio::steady_timer beat_;    // the next ping, then the pong's deadline
    std::unique_ptr<asio::steady_timer> wake_;
    void (*drain_callback_)(void*) = nullptr;
    void* drain_context_ = nullptr;
    bool get_pending_ = false, probed_ = false, awaiting_pong_ = false, pressed_ = false, drop_when_full_ = false;
    bool polling_counted_ = false;   // in the polling gauge
};

/// The endpoint mounted on the server: classifies each request and answers it.
class eio_mount final : public http_mount {
public:
    explicit eio_mount(std::shared_ptr<eio_state> st) : st_(std::move(st)) { prefix = st_->opts.path; }

    void shut_down() override {
        std::vector<std::pair<std::shared_ptr<eio_session>, std::uint32_t>> all;
        {
            std::lock_guard hold(st_->lock);
            for (const auto& [id, entry] : st_->sessions) all.push_back(entry);
        }
        for (auto& [s, loop] : all) asio::post(*st_->loops[loop], [s = s] { s->shut_down(); });
    }

    void forget_all() override {
        eio_state::session_table all;
        {
            std::lock_guard hold(st_->lock);
            all.swap(st_->sessions);
        }
        for (auto& [id, entry] : all) entry.first->abandon();
        st_->ready.clear();
    }

    void read(gw::metrics& m) const override {
        {
            std::lock_guard hold(st_->lock);
            m.engineio_sessions += st_->sessions.size();
        }
        m.engineio_polling += st_->polling.load(std::memory_order_relaxed);
        m.engineio_upgrades += st_->upgrades.load(std::memory_order_relaxed);
        m.engineio_ping_timeouts += st_->ping_timeouts.load(std::memory_order_relaxed);
    }

    std::optional<std::uint32_t> home_of(const http_request& req) override {
        auto sid = req.query_param("sid");
        if (!sid) return std::nullopt;
        std::lock_guard hold(st_->lock);
        auto it = st_->sessions.find(*sid);
        if (it == st_->sessions.end()) return std::nullopt;
        return it->second.second;
    }

    asio::awaitable<bool> serve(std::shared_ptr<connection_impl> c, std::string& rest, int full) override {
        auto st = st_;
        const auto& o = st->opts;
        http_request& req = c->request_;
        const bool keep = keeps_alive(req);
        if (req.method() == "OPTIONS" && o.cors.enabled) {
            http_response r{204, {}, "text/plain; charset=utf-8"};
            add_cors(req, r, true);
            co_return co_await answer(*c, r, keep);
        }
        const bool is_upgrade = req.has_token("Upgrade", "websocket");
        const auto kind = eio::classify({req.method(), req.query_param("EIO"), req.query_param("transport"), req.query_param("sid"),
                                         is_upgrade, o.polling, o.websocket});
        if (kind.refused) co_return co_await refuse(*c, *kind.refused, is_upgrade, keep);
        const bool websocket = kind.transport == eio::transport_kind::websocket;
        if (kind.sid.empty()) {   // a handshake
            if (st->stopped) {
                http_response r{503, "shutting down\n"};
                co_await detail::refuse(*c, r);
                co_return false;
            }
            if (full) {
                st->shared->rejected(full, "Engine.IO handshake over the connection limit", &req);
                http_response r{full, full == 503 ? "the server is at its connection limit\n" : "too many connections from this address\n"};
                co_await detail::refuse(*c, r);
                co_return false;
            }
            if (o.allow_request) {
                std::optional<std::string> no;
                try {
                    no = o.allow_request(req);
                } catch (const std::exception& e) {
                    st->shared->log.say(log_level::error, std::string("allow_request threw: ") + e.what(), req);
                    no = "";
                }
                if (no) co_return co_await refuse(*c, eio::error_code::forbidden, is_upgrade, keep, *no);
            }
            if (!eio::supported_revision(req.query_param("EIO")))
                co_return co_await refuse(*c, eio::error_code::unsupported_protocol_version, is_upgrade, keep);
            auto s = std::make_shared<eio_session>(st, c->sock_.get_executor(), req, websocket);
            {
                std::lock_guard hold(st->lock);
                st->sessions.emplace(s->id(), std::pair{s, st->current_loop().value_or(0)});
            }
            if (websocket) {
                if (!co_await switch_to_websocket(c, rest)) {
                    s->end("transport error");
                    co_return false;
                }
                s->attach_websocket(c);
                s->begin();
                hand_over(st, s);
                co_return false;
            }
            http_response r{200, {}, "text/plain; charset=UTF-8"};
            r.headers.emplace_back("Cache-Control", "no-store");
            add_cors(req, r, false);
            eio::append_to_payload(r.body, eio::packet_type::open, s->open_data(false), false);
            if (!o.cookie.name.empty()) {
                std::string cookie = o.cookie.name + "=" + s->id();
                if (!o.cookie.path.empty()) cookie += "; Path=" + o.cookie.path;
                if (o.cookie.http_only) cookie += "; HttpOnly";
                if (!o.cookie.same_site.empty()) cookie += "; SameSite=" + o.cookie.same_site;
                r.headers.emplace_back("Set-Cookie", std::move(cookie));
            }
            s->begin();
            hand_over(st, s);
            co_return co_await answer(*c, r, keep);
        }
        auto s = st->find(kind.sid);
        if (!s) {
            // In a cluster, a polling request for another node's session is run there (a WebSocket
            // probe is not: it must reach the owner, and the client goes on polling meanwhile).
            if (st->remote && !websocket && !is_upgrade && elsewhere(kind.sid)) co_return co_await forward(c, kind.sid, rest, keep);
            co_return co_await refuse(*c, eio::error_code::session_unknown, is_upgrade, keep);
        }
        if (!s->on_own_thread()) {   // TLS connections stay where they are (see engineio::server)
            st->shared->log.say(log_level::warn, "an Engine.IO request reached another loop than its session's", req);
            co_return co_await refuse(*c, eio::error_code::bad_request, is_upgrade, keep);
        }
        if (websocket) {
            if (!is_upgrade || s->over_websocket() || s->upgrading() || !o.allow_upgrades)
                co_return co_await refuse(*c, eio::error_code::bad_request, is_upgrade, keep);
            if (!co_await switch_to_websocket(c, rest)) co_return false;
            s->probe(c);
            co_return false;
        }
        if (s->over_websocket()) co_return co_await refuse(*c, eio::error_code::bad_request, false, keep);
        if (req.method() == "GET") {
            http_response r;
            add_cors(req, r, false);
            r.headers.emplace_back("Cache-Control", "no-store");
            if (!co_await s->poll(c, std::move(r))) co_return false;
            if (keep) co_return true;   // not `keep || co_await ...`: GCC 12 evaluates the co_await anyway
            co_return co_await linger(*c);
        }
        if (req.method() != "POST") {
            http_response r{500, {}, "text/plain; charset=utf-8"};
            co_return co_await answer(*c, r, keep);
        }
        co_return co_await post(c, s, rest, keep);
    }

private:
    /// A sid that names another node of the cluster (not this one's, not a stranger's).
    bool elsewhere(std::string_view sid) const {
        const auto tag = eio::node_tag_of(sid);
        return !tag.empty() && tag != st_->node_tag;
    }

    /// The Content-Length of a POST when it is one Engine.IO takes (no chunks).
    static std::optional<std::size_t> body_length(const http_request& req) {
        std::size_t length = 0;
        const auto header = req.header("Content-Length");
        if (!header || req.header("Transfer-Encoding") ||
            std::from_chars(header->data(), header->data() + header->size(), length).ec != std::errc{})
            return std::nullopt;
        return length;
    }

    /// A polling request for a session of another node: its body read here (the same limits as a
    /// local POST), the request run at the owner through the cluster, and the owner's answer
    /// written with this node's CORS headers. No answer in time: the session is unknown.
    asio::awaitable<bool> forward(std::shared_ptr<connection_impl> c, std::string sid, std::string& rest, bool keep) {
        http_request& req = c->request_;
        const auto& o = st_->opts;
        eio_remote_request fr;
        fr.method = std::string(req.method());
        fr.sid = std::move(sid);
        if (fr.method == "POST") {
            const auto length = body_length(req);
            if (!length) co_return co_await refuse(*c, eio::error_code::bad_request, false, false);
            if (*length > o.max_payload) {
                http_response r{413, {}, "text/plain; charset=utf-8"};
                add_cors(req, r, false);
                co_return co_await answer(*c, r, false);
            }
            if (!co_await read_body(*c, rest, *length, fr.body)) co_return false;
            if (auto type = req.header("Content-Type"); type && trim(*type).starts_with("application/octet-stream")) fr.octet_stream = true;
        }
        auto remote = st_->remote;
        // A held GET: a client that goes away meanwhile ends the session at its owner at once, as a
        // local poll's does (watch_abort), rather than at its missed pong.
        auto answered = std::make_shared<bool>(false);
        const bool held = fr.method == "GET";
        if (held) watch_forwarded(c, remote, fr.sid, answered);
        auto a = co_await remote->forward(std::move(fr));
        if (held) {
            *answered = true;
            std::error_code ignored;
            c->sock_.cancel(ignored);   // the watch ends with the wait
        }
        if (!a) co_return co_await refuse(*c, eio::error_code::session_unknown, false, keep);
        if (a->status >= 400) st_->shared->rejected(a->status, "Engine.IO: answered by the session's node", &req);
        http_response r{a->status, std::move(a->body), a->content_type};
        if (a->status == 200) {
            r.headers.emplace_back("Cache-Control", "no-store");
            if (held) compress_body(req, st_->opts, r);
        }
        add_cors(req, r, false);
        co_return co_await answer(*c, r, keep);
    }

    /// watch_abort for a GET held at another node: a client that goes away asks the owner to end
    /// the session; bytes that arrive instead (a pipelined request) end the watch without a verdict.
    static void watch_forwarded(const std::shared_ptr<connection_impl>& c, std::shared_ptr<eio_remote> remote, std::string sid,
                                std::shared_ptr<bool> answered) {
        c->sock_.async_wait(tcp::socket::wait_read, [wc = std::weak_ptr<connection_impl>(c), remote = std::move(remote), sid = std::move(sid),
                                                     answered = std::move(answered)](std::error_code ec) mutable {
            auto conn = wc.lock();
            if (ec || !conn || *answered) return;
            char byte;
            std::error_code peek;
            conn->sock_.receive(asio::buffer(&byte, 1), tcp::socket::message_peek, peek);
            if (peek && peek != asio::error::would_block && peek != asio::error::try_again) remote->abort(std::move(sid));
        });
    }

    /// Reads a body of length bytes (what came with the head first); what follows it stays in
    /// rest. False when the connection failed or the body trickled past ping_interval + ping_timeout.
    asio::awaitable<bool> read_body(connection_impl& c, std::string& rest, std::size_t length, std::string& body) {
        const auto& o = st_->opts;
        body = std::move(rest);
        rest.clear();
        asio::steady_timer deadline(c.sock_.get_executor());
        c.close_when(deadline, o.ping_interval + o.ping_timeout);   // a body that trickles cannot hold the slot
        while (body.size() < length) {
            if (co_await c.read_some()) co_return false;
            body.append(reinterpret_cast<const char*>(c.data_.data()), c.data_.size());
        }
        if (body.size() > length) {
            rest = body.substr(length);
            body.resize(length);
        }
        co_return true;
    }

    /// A POST: its body read (up to max_payload), then its packets.
    asio::awaitable<bool> post(std::shared_ptr<connection_impl> c, std::shared_ptr<eio_session> s, std::string& rest, bool keep) {
        http_request& req = c->request_;
        const auto& o = st_->opts;
        const auto length_read = body_length(req);
        if (!length_read) co_return co_await refuse(*c, eio::error_code::bad_request, false, false);
        const std::size_t length = *length_read;
        if (length > o.max_payload) {   // the body is not read: the connection closes after the answer
            http_response r{413, {}, "text/plain; charset=utf-8"};
            add_cors(req, r, false);
            co_return co_await answer(*c, r, false);
        }
        if (s->post_pending_) {
            s->end("transport error");
            co_return co_await refuse(*c, eio::error_code::bad_request, false, keep);
        }
        std::string body;
        bool whole = false;
        {
            flag_guard pending(s->post_pending_);
            whole = co_await read_body(*c, rest, length, body);
        }
        if (!whole) {
            if (!s->ended()) s->end("transport error");
            co_return false;
        }
        if (auto type = req.header("Content-Type"); type && trim(*type).starts_with("application/octet-stream")) {
            s->end("transport error");
            co_return co_await refuse(*c, eio::error_code::bad_request, false, keep);
        }
        if (s->ended()) co_return co_await refuse(*c, eio::error_code::session_unknown, false, keep);
        if (auto refused = s->posted(body)) co_return co_await refuse(*c, *refused, false, keep);
        http_response r{200, "ok", "text/html"};
        r.headers.emplace_back("Cache-Control", "no-store");
        add_cors(req, r, false);
        co_return co_await answer(*c, r, keep);
    }

    /// Accepts the WebSocket handshake of an Engine.IO request (or refuses it as the protocol
    /// asks, and says false).
    asio::awaitable<bool> switch_to_websocket(const std::shared_ptr<connection_impl>& c, std::string& rest) {
        struct hooks {
            std::optional<http_response> plain(request_head&) const { return std::nullopt; }
            std::optional<http_response> upgrade(request_head&) const { return std::nullopt; }
            std::optional<std::string> subprotocol(request_head&) const { return std::string(); }
        };
        auto a = answer_handshake(c->request_, {0, true, &st_->opts.per_message_deflate}, hooks{});
        if (!a.accepted) {
            st_->shared->rejected(a.refusal.status, c->request_.path(), &c->request_);
            co_await detail::refuse(*c, a.refusal);
            co_return false;
        }
        if (!c->sock_.is_open() || st_->stopped) co_return false;
        // Larger messages than max_payload close the WebSocket (1009), as Engine.IO's.
        c->limits_.message = std::min(c->limits_.message, st_->opts.max_payload);
        c->limits_.frame = std::min(c->limits_.frame, st_->opts.max_payload);
        if (a.deflate) c->deflate_ = std::make_unique<deflate_session>(a.deflate->params, st_->opts.per_message_deflate, role::server);
        start_websocket(*c, std::move(a.head), rest);
        rest.clear();
        co_return true;
    }

    /// A new session goes to on_connection, or to accept()'s queue.
    static void hand_over(const std::shared_ptr<eio_state>& st, const std::shared_ptr<eio_session>& s);

    static bool keeps_alive(const http_request& req) {
        if (req.has_token("Connection", "close")) return false;
        return req.version_minor() >= 1 || req.has_token("Connection", "keep-alive");
    }

    /// The CORS headers of an answer (a preflight's too).
    void add_cors(const http_request& req, http_response& r, bool preflight) const {
        const auto& c = st_->opts.cors;
        if (!c.enabled) return;
        const auto origin = req.header("Origin");
        std::string allow;
        if (c.origins.empty()) allow = c.credentials && origin ? std::string(*origin) : "*";
        else if (origin && std::any_of(c.origins.begin(), c.origins.end(), [&](const std::string& o) { return iequals(o, *origin); }))
            allow = std::string(*origin);
        if (allow.empty()) return;
        r.headers.emplace_back("Access-Control-Allow-Origin", allow);
        if (allow != "*") r.headers.emplace_back("Vary", "Origin");
        if (c.credentials) r.headers.emplace_back("Access-Control-Allow-Credentials", "true");
        if (!preflight) return;
        r.headers.emplace_back("Access-Control-Allow-Methods", "GET,HEAD,PUT,PATCH,POST,DELETE");
        if (!c.allowed_headers.empty()) {
            std::string list;
            for (const auto& h : c.allowed_headers) list += (list.empty() ? "" : ",") + h;
            r.headers.emplace_back("Access-Control-Allow-Headers", list);
        } else if (auto asked = req.header("Access-Control-Request-Headers")) {
            r.headers.emplace_back("Access-Control-Allow-Headers", std::string(*asked));
        }
        if (c.max_age.count() > 0) r.headers.emplace_back("Access-Control-Max-Age", std::to_string(c.max_age.count()));
    }

    /// Answers and says whether the connection reads another request.
    asio::awaitable<bool> answer(connection_impl& c, const http_response& r, bool keep) {
        if (!keep) {
            co_await detail::refuse(c, r);   // Connection: close, and a clean TCP close
            co_return false;
        }
        co_return co_await respond(c, r);
    }

    static asio::awaitable<bool> linger(connection_impl& c) {
        co_await c.linger(true);
        co_return false;
    }

    /// A refused request: over polling a JSON body with the code, over a WebSocket handshake the
    /// bare message and a close, as the reference server answers.
    asio::awaitable<bool> refuse(connection_impl& c, eio::error_code code, bool websocket, bool keep, std::string_view message = {}) {
        st_->shared->rejected(eio::error_status(code), std::string("Engine.IO: ") + std::string(eio::error_message(code)), &c.request_);
        if (websocket) {
            http_response r{400, std::string(message.empty() ? eio::error_message(code) : message), "text/html"};
            co_await detail::refuse(c, r);
            co_return false;
        }
        http_response r{eio::error_status(code), eio::error_body(code, message), "application/json"};
        add_cors(c.request_, r, false);
        co_return co_await answer(c, r, keep);
    }

    std::shared_ptr<eio_state> st_;
};

} // namespace gw::v0::detail

namespace gw::inline v0::engineio {

/// One Engine.IO session as an application holds it. A cheap handle; use it on its thread (the
/// loop its handshake arrived on).
class connection {
public:
    /// The session id (the "sid" of the handshake).
    const std::string& id() const noexcept { return s_->id(); }
    /// The next message; an empty optional once the session has ended (why: reason()).
    asio::awaitable<std::optional<message>> receive() { return s_->receive(); }
    /// Sends a message (text stays text, binary stays binary); completes once queued and once the
    /// session's unsent bytes are below the server's outbox_high_water. Throws gw::errc::closed once
    /// the session is closing.
    asio::awaitable<void> send(message m) {
        if (m.binary) s_->send_binary(std::move(m.data));
        else s_->send_text(std::move(m.data));
        return s_->drained();
    }
    asio::awaitable<void> send(std::string_view text) { return send(message{std::string(text), false}); }
    asio::awaitable<void> send_binary(std::string_view bytes) { return send(message{std::string(bytes), true}); }
    /// Closes the session (a close packet after what is queued) and completes once it has ended.
    asio::awaitable<void> close() { return s_->close(close_code::normal, {}); }
    bool is_open() const noexcept { return s_->is_open(); }
    /// Why the session ended: "transport close", "transport error", "ping timeout", "parse error",
    /// "forced close"; "" while it lasts.
    std::string_view reason() const noexcept { return s_->reason(); }
    /// "websocket" or "polling": the transport it uses now.
    std::string_view transport_name() const noexcept { return s_->over_websocket() ? "websocket" : "polling"; }
    /// The handshake's request: path, query, headers, cookies, remote address.
    const http_request& request() const noexcept { return s_->request(); }
    /// The session as a gw::transport (what the gateway serves).
    std::shared_ptr<transport> as_transport() const { return s_; }

private:
    explicit connection(std::shared_ptr<detail::eio_session> s) : s_(std::move(s)) {}
    std::shared_ptr<detail::eio_session> s_;
    friend class server;
    friend class detail::eio_mount;
    friend struct detail::eio_access;
};

/// Engine.IO v4 on a gw::server's listener: requests under options.path are Engine.IO's, the
/// others the server's as before. Make it before the server's loops run.
class server {
public:
    server(gw::server& on, options opts = {}) : st_(std::make_shared<detail::eio_state>()) {
        auto& s = *on.st_;
        if (s.opts.workers > 1 && !opts.on_connection)
            throw std::invalid_argument("gw::engineio::server: with several workers, set options.on_connection (accept() serves one loop)");
        detail::require_deflate_built(opts.per_message_deflate);
        if (s.opts.tls && s.loops.size() > 1)
            throw std::invalid_argument("gw::engineio::server: Engine.IO over TLS needs workers = 1 (a polling session's requests "
                                        "must reach its loop; terminate TLS at a proxy to use more)");
        if (opts.path.empty() || opts.path.front() != '/') opts.path.insert(opts.path.begin(), '/');
        st_->opts = std::move(opts);
        st_->shared = s.shared;
        st_->loops = s.loops;
        st_->high_water = std::max<std::size_t>(s.opts.outbox_high_water, 1);
        st_->max_outbox = std::max(s.opts.max_outbox_bytes, st_->high_water);
        st_->drop_when_full = s.opts.slow_consumer == overflow::drop;
        st_->wake = std::make_unique<asio::steady_timer>(*s.loops[0]);
        st_->wake->expires_at(asio::steady_timer::time_point::max());
        s.mount = std::make_shared<detail::eio_mount>(st_);
        server_ = on.st_;
    }
    server(const server&) = delete;
    server& operator=(const server&) = delete;
    /// Stops, and the server's requests under options.path are no longer Engine.IO's.
    ~server() {
        stop();
        if (auto srv = server_.lock(); srv && srv->mount && srv->mount->prefix == st_->opts.path) srv->mount->forget_all();
        if (auto srv = server_.lock(); srv && srv->mount && srv->mount->prefix == st_->opts.path) srv->mount.reset();
    }

    /// The next new session. Throws asio::error::operation_aborted once stopped.
    asio::awaitable<connection> accept() {
        auto st = st_;
        for (;;) {
            if (!st->ready.empty()) {
                auto s = std::move(st->ready.front());
                st->ready.pop_front();
                co_return connection(std::move(s));
            }
            if (st->stopped) throw std::system_error(asio::error::operation_aborted);
            co_await st->wake->async_wait(asio::experimental::as_tuple(asio::use_awaitable));
        }
    }

    /// Stops taking new sessions: handshakes get 503 and accept() fails; open sessions go on until
    /// they end (the server's stop() ends them with a close packet each).
    void stop() {
        if (!st_ || st_->stopped) return;
        st_->stopped = true;
        st_->wake->cancel();
    }

    /// Sessions open now, on every loop.
    std::size_t sessions() const {
        std::lock_guard hold(st_->lock);
        return st_->sessions.size();
    }
    const options& config() const noexcept { return st_->opts; }

private:
    std::shared_ptr<detail::eio_state> st_;
    std::weak_ptr<gw::server::state> server_;
    friend struct detail::eio_access;
};

} // namespace gw::v0::engineio

namespace gw::inline v0::detail {

/// Lets the gateway reach a session behind its handle, and a cluster an endpoint's state; not for
/// applications.
struct eio_access {
    static std::shared_ptr<eio_session> session(const engineio::connection& c) { return c.s_; }
    static const std::shared_ptr<eio_state>& state(const engineio::server& s) { return s.st_; }
};

/// An error answer to a forwarded request, as the reference server gives it.
inline eio_remote_answer eio_error_answer(eio::error_code code, bool known) {
    eio_remote_answer a;
    a.status = eio::error_status(code);
    a.body = eio::error_body(code);
    a.content_type = "application/json";
    a.known = known;
    return a;
}

/// The owner's side of a forwarded request, on the session's loop: what serve() does with a local
/// GET or POST, with the body already read.
inline asio::awaitable<eio_remote_answer> eio_run_forwarded(std::shared_ptr<eio_state> st, std::shared_ptr<eio_session> s,
                                                            eio_remote_request r) {
    if (s->ended()) co_return eio_error_answer(eio::error_code::session_unknown, false);
    if (s->over_websocket()) co_return eio_error_answer(eio::error_code::bad_request, true);
    if (r.method == "GET") co_return co_await s->poll_forwarded();
    eio_remote_answer a;
    a.known = true;
    a.content_type = "text/plain; charset=utf-8";
    if (r.method != "POST") {
        a.status = 500;
        co_return a;
    }
    if (r.body.size() > st->opts.max_payload) {   // the receiving node has a larger limit than ours
        a.status = 413;
        co_return a;
    }
    if (s->post_pending_ || r.octet_stream) {
        s->end("transport error");
        co_return eio_error_answer(eio::error_code::bad_request, true);
    }
    if (auto refused = s->posted(r.body)) co_return eio_error_answer(*refused, true);
    a.status = 200;
    a.body = "ok";
    a.content_type = "text/html";
    co_return a;
}

/// Runs a polling request that reached another node of the cluster against this node's session,
/// exactly as if it had come here. Call it on any loop; it completes there.
inline asio::awaitable<eio_remote_answer> eio_serve_forwarded(std::shared_ptr<eio_state> st, eio_remote_request r) {
    auto s = st->find(r.sid);
    if (!s || st->stopped) co_return eio_error_answer(eio::error_code::session_unknown, false);
    const auto ex = s->executor();
    co_return co_await asio::co_spawn(ex, eio_run_forwarded(std::move(st), std::move(s), std::move(r)), asio::use_awaitable);
}

inline void eio_mount::hand_over(const std::shared_ptr<eio_state>& st, const std::shared_ptr<eio_session>& s) {
    if (st->opts.on_connection) {
        st->opts.on_connection(engineio::connection(s));
        return;
    }
    st->ready.push_back(s);
    st->wake->cancel();
}

} // namespace gw::v0::detail
