// One WebSocket connection's state and its I/O: the socket, the frame reader, the outbox and its
// single writer, and the closing handshake. Lives on one thread (its io_context's); the public
// handle gw::connection (connection.hpp) and the gateway's transport share it.
#pragma once
#include "../detail/asio.hpp"
#include "../core/errors.hpp"
#include "../core/vocabulary.hpp"
#include "../protocol/utf8.hpp"
#include "../protocol/ws_frame.hpp"
#include "../protocol/deflate.hpp"
#include "outbox.hpp"
#include "server_context.hpp"
#include "transport.hpp"

namespace gw::inline v0::detail {

using tcp = asio::ip::tcp;
using tls_stream = asio::ssl::stream<tcp::socket&>;

/// Clears a flag when a coroutine leaves its scope, also when it is destroyed while suspended.
struct flag_guard {
    bool& flag;
    explicit flag_guard(bool& f) : flag(f) { flag = true; }
    ~flag_guard() { flag = false; }
    flag_guard(const flag_guard&) = delete;
    flag_guard& operator=(const flag_guard&) = delete;
};

/// True when called on the thread that runs ex's event loop. An executor of another kind cannot
/// tell, so the answer is no, and callers take the (correct, slower) hop.
inline bool runs_here(const asio::any_io_executor& ex) noexcept {
    using plain = asio::io_context::executor_type;
    using tracked = decltype(asio::prefer(std::declval<plain>(), asio::execution::outstanding_work.tracked));
    if (auto* e = ex.target<plain>()) return e->running_in_this_thread();
    if (auto* e = ex.target<tracked>()) return e->running_in_this_thread();
    if (auto* e = ex.target<asio::strand<plain>>()) return e->running_in_this_thread();
    return false;
}

/// How a connection behaves, fixed when it is made (a server's options, or a client's).
struct connection_settings {
    role side = role::server;
    frame_limits limits{};
    std::chrono::milliseconds close_timeout{5'000};
    std::size_t high_water = SIZE_MAX;   ///< send() waits at or above this many unsent bytes
    std::size_t max_outbox = SIZE_MAX;   ///< what does not wait meets the overflow policy beyond this
    overflow slow_consumer = overflow::close;
};

/// Where a connection is in its closing handshake; each phase follows the one before.
enum class close_phase : std::uint8_t {
    open,         ///< messages go both ways
    closing,      ///< our close frame is queued: nothing more is sent; reading goes on for the peer's
    settling,     ///< finish() runs: the close frames are being exchanged
    settled,      ///< the close frames are exchanged, or the peer failed or vanished; the socket is open
    concluding,   ///< the TCP close: the send side shut, reading until the peer closes
    ended,        ///< the socket is closed
};

/// What a connection's heartbeat calls for at one sweep (connection_impl::heartbeat).
enum class heartbeat_due : std::uint8_t { nothing, ping, ping_timeout, idle_timeout };

/// The heartbeat's settings, in the server's milliseconds; 0 turns a check off.
struct heartbeat_settings {
    std::uint32_t interval = 0, patience = 0, idle = 0;
};

/// A WebSocket connection: also the gateway's transport for it, in place (the transport's virtual
/// functions below), so a gateway socket costs its connection no allocation more.
class connection_impl final : public transport, public std::enable_shared_from_this<connection_impl> {
public:
    connection_impl(tcp::socket sock, const connection_settings& s)
        : sock_(std::move(sock)), limits_(s.limits), close_timeout_(s.close_timeout), role_(s.side),
          high_water_(std::max<std::size_t>(s.high_water, 1)), max_outbox_(std::max(s.max_outbox, high_water_)),
          drop_when_full_(s.slow_consumer == overflow::drop) {}
    connection_impl(const connection_impl&) = delete;
    connection_impl& operator=(const connection_impl&) = delete;
    ~connection_impl() {
        if (!server_) return;
        delist();
        server_->release(request_.remote_endpoint().address());
    }

    // ---- the server's part: limits, heartbeat, shutdown ----
    std::shared_ptr<server_context> server_;   // set once the server counted this connection in
    connection_impl *prev_ = nullptr, *next_ = nullptr;   // in server_->loops[loop_] once upgraded
    std::uint32_t loop_ = 0;
    bool listed_ = false, upgraded_ = false, ping_outstanding_ = false;
    bool shutting_down_ = false;   // closed by the server's stop()
    bool in_mount_ = false;        // a mounted endpoint (Engine.IO) is answering its request
    std::uint32_t ping_at_ = 0, active_at_ = 0;   // server clock: last ping sent, last message seen
    std::uint32_t messages_in_ = 0, seen_in_ = 0;   // messages received; as of the last sweep

    /// Joins its loop's list (on that loop's thread, once upgraded).
    void enlist(std::uint32_t loop) {
        auto& l = server_->loops[loop];
        std::lock_guard hold(l.lock);
        loop_ = loop;
        ping_at_ = active_at_ = l.now;
        next_ = l.first;
        if (next_) next_->prev_ = this;
        l.first = this;
        listed_ = true;
    }
    void delist() {
        if (!listed_) return;
        auto& l = server_->loops[loop_];
        std::lock_guard hold(l.lock);
        (prev_ ? prev_->next_ : l.first) = next_;
        if (next_) next_->prev_ = prev_;
        listed_ = false;
    }

    /// What the heartbeat calls for now: a ping when one is due, a timeout when the last ping went
    /// unanswered for too long, a close when no message came for too long. A connection upgrading
    /// or closing is left alone (close_timeout bounds the latter).
    heartbeat_due heartbeat(std::uint32_t now, const heartbeat_settings& h) noexcept {
        if (!upgraded_ || !can_send()) return heartbeat_due::nothing;
        if (h.interval && ping_outstanding_ && now - ping_at_ >= h.patience) return heartbeat_due::ping_timeout;
        if (h.idle) {
            if (messages_in_ != seen_in_) {
                seen_in_ = messages_in_;
                active_at_ = now;
            } else if (now - active_at_ >= h.idle) {
                return heartbeat_due::idle_timeout;
            }
        }
        if (h.interval && !ping_outstanding_ && now - ping_at_ >= h.interval) return heartbeat_due::ping;
        return heartbeat_due::nothing;
    }

    // ---- transport ----
    tcp::socket sock_;
    /// What only wss:// needs, so a plain connection does not carry it.
    struct tls_state {
        tls_state(tcp::socket& s, asio::ssl::context& ctx) : stream(s, ctx) {}
        tls_stream stream;
        std::unique_ptr<unsigned char[]> in;   // TLS reads need a buffer that outlives a suspension
        std::string out;                       // a batch coalesced: one record, one syscall
        static constexpr std::size_t in_size = 16 << 10;
    };
    std::unique_ptr<tls_state> tls_;
    frame_limits limits_;
    std::chrono::milliseconds close_timeout_;
    role role_;

    // ---- handshake ----
    http_request request_;
    std::string subprotocol_;
    /// permessage-deflate, when the handshake agreed it: a connection without it pays this pointer.
    std::unique_ptr<deflate_session> deflate_;

    /// Writes bytes outside the frame writer: the handshake's HTTP messages.
    asio::awaitable<std::error_code> write_raw(std::string_view bytes) {
        using asio::experimental::as_tuple;
        auto buf = asio::buffer(bytes);
        auto [ec, n] = tls_ ? co_await asio::async_write(tls_->stream, buf, as_tuple(asio::use_awaitable))
                            : co_await asio::async_write(sock_, buf, as_tuple(asio::use_awaitable));
        co_return ec;
    }

    /// True when called on the thread that runs this connection's event loop (runs_here).
    bool on_own_thread() const noexcept override {
        return runs_here(const_cast<tcp::socket&>(sock_).get_executor());   // Asio's get_executor() is not const
    }

    /// Closes the socket when timer expires (not when it is cancelled): bounds a handshake, a
    /// request's arrival, a body's. The timer's wait keeps no reference to the connection.
    void close_when(asio::steady_timer& timer, std::chrono::steady_clock::duration after) {
        timer.expires_after(after);
        timer.async_wait([w = weak_from_this()](std::error_code e) {
            if (e) return;
            if (auto p = w.lock()) {
                std::error_code ignored;
                p->sock_.close(ignored);
            }
        });
    }

    // ---- reading ----

    /// Waits for bytes and reads what is there. On success data_ points at them until the next suspension.
    asio::awaitable<std::error_code> read_some() {
        using asio::experimental::as_tuple;
        if (tls_) {
            if (!tls_->in) tls_->in.reset(new unsigned char[tls_state::in_size]);
            auto [ec, n] = co_await tls_->stream.async_read_some(asio::buffer(tls_->in.get(), tls_state::in_size),
                                                                 as_tuple(asio::use_awaitable));
            data_ = {tls_->in.get(), n};
            co_return ec;
        }
        auto [ec] = co_await sock_.async_wait(tcp::socket::wait_read, as_tuple(asio::use_awaitable));
        co_return ec ? ec : read_available();
    }

    /// Plain TCP, once the socket is readable: reads what is there into the per-thread buffer.
    std::error_code read_available() {
        auto buf = read_scratch();
        std::error_code ec;
        if (!non_blocking_) {   // once: a synchronous read must never wait
            sock_.non_blocking(true, ec);
            non_blocking_ = true;
        }
        std::size_t n = sock_.read_some(asio::buffer(buf.data(), buf.size()), ec);
        if (ec == asio::error::would_block || ec == asio::error::try_again) n = 0, ec = {};
        data_ = {buf.data(), n};
        return ec;
    }

    /// Parses bytes into frames; completed messages go to inbox_, pings are answered. Returns false
    /// when reading must stop: the peer's close frame arrived, or the peer broke the protocol
    /// (fail_code_ and error_ say how). Either way finish() sends our close frame later.
    bool consume(const unsigned char* p, std::size_t n) {
        if (server_) server_->loops[loop_].bytes_in.add(n);
        for (;;) {
            if (!frame_.active) {
                if (n == 0) return true;
                frame_header h;
                close_code code{};
                const bool masked = role_ == role::server;
                const std::uint8_t rsv = deflate_ ? 0x40 : 0;
                if (hdr_len_ == 0) {
                    auto st = decode_header({p, n}, masked, h, code, rsv);
                    if (st == decode_status::error) return fail(code);
                    if (st == decode_status::need_more) {
                        std::memcpy(hdr_buf_.data(), p, n);
                        hdr_len_ = static_cast<std::uint8_t>(n);
                        return true;
                    }
                    p += h.size, n -= h.size;
                } else {
                    const std::size_t take = std::min(n, max_frame_header - hdr_len_);
                    std::memcpy(hdr_buf_.data() + hdr_len_, p, take);
                    auto st = decode_header({hdr_buf_.data(), hdr_len_ + take}, masked, h, code, rsv);
                    if (st == decode_status::error) return fail(code);
                    if (st == decode_status::need_more) {
                        hdr_len_ = static_cast<std::uint8_t>(hdr_len_ + take);
                        return true;
                    }
                    const std::size_t used = h.size - hdr_len_;
                    p += used, n -= used;
                    hdr_len_ = 0;
                }
                if (!start_frame(h)) return false;
            }
            if (frame_.remaining > 0) {
                if (n == 0) return true;
                const auto k = static_cast<std::size_t>(std::min<std::uint64_t>(frame_.remaining, n));
                std::string& into = is_control(frame_.op) ? control_ : message_;
                const std::size_t old = into.size();
                into.append(reinterpret_cast<const char*>(p), k);
                auto* dst = reinterpret_cast<unsigned char*>(into.data()) + old;
                if (frame_.masked) frame_.phase = static_cast<std::uint8_t>(apply_mask(dst, k, frame_.mask, frame_.phase));
                if (&into == &message_ && !message_binary_ && !message_compressed_ && !utf8_.feed({dst, k}))
                    return fail(close_code::invalid_payload);
                p += k, n -= k;
                frame_.remaining -= k;
                if (frame_.remaining > 0) return true;
            }
            frame_.active = false;
            if (!end_frame()) return false;
        }
    }

    bool start_frame(const frame_header& h) {
        // RSV1 marks a compressed message, on its first frame only (RFC 7692 section 6.1).
        if (h.rsv && (is_control(h.op) || h.op == opcode::continuation)) return fail(close_code::protocol_error);
        if (is_control(h.op)) {
            control_.clear();
        } else if (h.op == opcode::continuation) {
            if (!in_message_) return fail(close_code::protocol_error);
            if (++fragments_ > limits_.fragments) return fail(close_code::policy_violation);
        } else {
            if (in_message_) return fail(close_code::protocol_error);
            in_message_ = true;
            message_binary_ = h.op == opcode::binary;
            message_compressed_ = h.rsv != 0;
            message_.clear();
            utf8_.reset();
            fragments_ = 1;
        }
        if (!is_control(h.op)) {
            if (h.length > limits_.frame || h.length > limits_.message - message_.size())
                return fail(close_code::message_too_big);
            // Room for what the header announces, but no more than a read's worth before the bytes
            // are there: a peer cannot make the server allocate by announcing.
            if (h.fin && message_.empty()) message_.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(h.length, 64 << 10)));
        }
        frame_.active = true;
        frame_.op = h.op;
        frame_.fin = h.fin;
        frame_.masked = h.masked;
        frame_.mask = h.mask;
        frame_.phase = 0;
        frame_.remaining = h.length;
        return true;
    }

    bool end_frame() {
        switch (frame_.op) {
        case opcode::ping:
            if (can_send()) queue_frame(opcode::pong, std::move(control_));
            control_ = {};
            return true;
        case opcode::pong:
            ping_outstanding_ = false;
            return true;
        case opcode::close: {
            if (auto bad = check_close_payload(control_)) return fail(static_cast<close_code>(bad));
            close_received_ = true;
            // control_ keeps the payload: peer_reason() reads it, and no frame is parsed after it.
            peer_code_ = control_.size() >= 2 ? static_cast<std::uint16_t>((static_cast<unsigned char>(control_[0]) << 8) |
                                                                           static_cast<unsigned char>(control_[1]))
                                              : static_cast<std::uint16_t>(close_code::no_status);
            return false;
        }
        default:
            if (!frame_.fin) return true;
            if (message_compressed_ && !inflate_message()) return false;
            else if (!message_compressed_ && !message_binary_ && !utf8_.complete()) return fail(close_code::invalid_payload);
            inbox_.push_back(message{std::move(message_), message_binary_});
            ++messages_in_;
            if (server_) server_->loops[loop_].messages_in.add();
            message_ = {};
            in_message_ = false;
            return true;
        }
    }

    /// A compressed message, complete: inflated within the message limit (beyond it 1009, before
    /// any more is allocated), its text checked as UTF-8 (1007). Data that is not DEFLATE fails a
    /// text message with 1007 and a binary one with 1002.
    bool inflate_message() {
        std::string plain;
        switch (deflate_->inflate(message_, limits_.message, plain)) {
        case inflate_status::too_big: return fail(close_code::message_too_big);
        case inflate_status::bad_data: return fail(message_binary_ ? close_code::protocol_error : close_code::invalid_payload);
        case inflate_status::ok: break;
        }
        if (!message_binary_ && !is_valid_utf8(plain)) return fail(close_code::invalid_payload);
        message_ = std::move(plain);
        return true;
    }

    /// Records why the peer failed. The close frame goes out from finish(), after the messages that
    /// arrived before the fault were handed over (and perhaps answered).
    bool fail(close_code code) {
        switch (code) {
        case close_code::invalid_payload: error_ = errc::invalid_payload; break;
        case close_code::message_too_big: error_ = errc::message_too_big; break;
        case close_code::policy_violation: error_ = errc::policy_violation; break;
        default: error_ = errc::protocol_error; break;
        }
        fail_code_ = code;
        return false;
    }

    /// The one step every reader takes after a read (receive, close, settle, the callback reader):
    /// a failed read loses the connection, bytes go to the frame reader. False once reading is over.
    bool take(std::error_code ec) {
        if (ec) {
            if (!close_received_ && !error_) error_ = errc::connection_lost;
            stop_reading_ = true;
        } else if (!consume(data_.data(), data_.size())) {
            stop_reading_ = true;
        }
        return !stop_reading_;
    }

    /// Frames that arrived in the same read as the end of the handshake.
    void consume_early(std::string_view bytes) {
        if (!bytes.empty() && !consume(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()))
            stop_reading_ = true;
    }

    bool has_message() const noexcept { return inbox_head_ < inbox_.size(); }

    /// Reads on plain callbacks instead of a coroutine: while it waits, a connection read this way
    /// holds Asio's small wait operation and no coroutine frame. sink.message(message&&) receives
    /// every message in order; sink.end() runs once, when reading is over (the peer closed or
    /// failed, or the connection was lost), and the sink then owes the connection a finish().
    template <class Sink> void read_with(Sink sink);

    message pop_message() {
        message m = std::move(inbox_[inbox_head_++]);
        if (inbox_head_ == inbox_.size()) {
            inbox_.clear();
            inbox_head_ = 0;
            if (inbox_.capacity() > 4) inbox_ = {};   // a burst's slack is not kept while idle
        }
        return m;
    }

    struct frame_state {
        bool active = false, fin = true, masked = false;
        opcode op = opcode::text;
        std::uint8_t phase = 0;
        std::array<unsigned char, 4> mask{};
        std::uint64_t remaining = 0;
    } frame_;
    std::array<unsigned char, max_frame_header> hdr_buf_{};
    std::uint8_t hdr_len_ = 0;
    bool in_message_ = false, message_binary_ = false, message_compressed_ = false;
    std::size_t fragments_ = 0;   // frames of the message being read
    bool receiving_ = false;       // a receive() (or close()'s drain) owns the reader
    bool non_blocking_ = false;
    bool stop_reading_ = false;    // the peer's close arrived or the peer failed
    std::span<const unsigned char> data_;
    std::string control_, message_;
    utf8_validator utf8_;
    std::vector<message> inbox_;
    std::size_t inbox_head_ = 0;

    // ---- writing: one writer drains the outbox, everything queued goes out in one gathered write ----

    /// Queues a frame the application asked for; a closing or closed connection refuses it. A
    /// frame beyond max_outbox_bytes meets the overflow policy instead.
    /// With permessage-deflate, a data message over the threshold goes compressed unless compress
    /// is false; it is compressed only once admitted, so a dedicated compressor's history holds
    /// exactly what the peer receives.
    void send_frame(opcode op, std::string payload, bool compress = true) {
        if (!can_send()) throw std::system_error(errc::closed);
        if (!admit_or_overflow(payload.size() + max_frame_header)) return;
        if (deflate_ && !is_control(op) && deflate_->wants(payload.size(), compress)) {
            std::string packed;
            deflate_->compress(payload, packed);
            queue_frame(op, std::move(packed), true);
            return;
        }
        queue_frame(op, std::move(payload));
    }

    // ---- backpressure ----
    const std::size_t high_water_, max_outbox_;   // connection_settings
    bool drop_when_full_;           // overflow::drop (a gateway namespace may choose its own)
    bool pressed_ = false;          // went above high_water_ and has not drained below it since
    std::uint32_t dropped_ = 0;     // messages dropped for this connection (volatile or overflow::drop)
    std::size_t inflight_bytes_ = 0;
    /// Called (on the connection's thread) when the outbox drains below high_water_ after being above.
    void (*on_drain_)(void*) = nullptr;
    void* drain_context_ = nullptr;

    /// Bytes queued or being written: what the peer has not taken yet, as far as this side knows.
    std::size_t buffered() const noexcept override { return queued_bytes_ + inflight_bytes_; }
    bool above_high_water() const noexcept override { return buffered() >= high_water_; }

    /// True when n more bytes fit under max_outbox_bytes (or nothing is queued: one large message
    /// always goes). Otherwise applies the overflow policy, which drops the message or closes the
    /// connection as a slow consumer, and says false.
    bool admit_or_overflow(std::size_t n) {
        const std::size_t now = buffered();
        if (now == 0 || n <= max_outbox_ - std::min(now, max_outbox_)) return true;
        if (drop_when_full_) {
            ++dropped_;
            if (server_) server_->loops[loop_].dropped.add();
            return false;
        }
        if (server_) {
            server_->loops[loop_].slow_closes.add();
            server_->log.say(log_level::warn, "closing a slow consumer: its outbox passed max_outbox_bytes", request_);
        }
        // Close the slow consumer: what waits for it is dropped, so its memory goes at once, and
        // the close frame goes alone; close_timeout bounds the wait for a peer that reads nothing.
        outbox_.clear();
        queued_bytes_ = 0;
        if (!error_) error_ = errc::slow_consumer;
        close_soon(close_code::policy_violation, "slow consumer");
        return false;
    }

    /// Waits while the outbox is above its high-water mark (and the connection is open).
    asio::awaitable<void> wait_drained() {
        auto self = shared_from_this();
        while (above_high_water() && can_send()) co_await wait_for_change();
    }

    /// After a write: the outbox may have drained below its mark.
    void check_drained() {
        if (!pressed_ || above_high_water()) return;
        pressed_ = false;
        wake();
        if (on_drain_) on_drain_(drain_context_);
    }

    void queue_frame(opcode op, std::string payload, bool compressed = false) {
        out_frame f;
        if (role_ == role::client) {
            std::array<unsigned char, 4> key;
            random_bytes(key.data(), 4);
            apply_mask(reinterpret_cast<unsigned char*>(payload.data()), payload.size(), key);
            f.head_size = static_cast<std::uint8_t>(encode_header(f.head.data(), op, true, payload.size(), &key, compressed));
        } else {
            f.head_size = static_cast<std::uint8_t>(encode_header(f.head.data(), op, true, payload.size(), nullptr, compressed));
        }
        f.payload = std::move(payload);
        push(std::move(f));
    }

    void push(out_frame f) {
        const std::size_t size = f.head_size + f.payload_buffer().size();
        queued_bytes_ += size;
        if (server_ && upgraded_) {
            auto& l = server_->loops[loop_];
            l.messages_out.add();
            l.bytes_out.add(size);
        }
        if (buffered() >= high_water_) pressed_ = true;
        outbox_.push_back(std::move(f));
        if (!writing_) {
            writing_ = true;
            // Deferred to the end of this turn of the loop, so every frame queued meanwhile shares the write.
            asio::post(sock_.get_executor(), [self = shared_from_this()] { self->flush(); });
        }
    }

    /// Queues a complete frame whose bytes other connections share (a broadcast, framed once).
    /// A droppable one (volatile) skips a connection above its high-water mark.
    void send_shared(std::shared_ptr<const std::string> frame, bool droppable = false) {
        if (!admit_shared(frame->size(), droppable)) return;
        out_frame f;
        f.shared = std::move(frame);
        push(std::move(f));
    }

    /// Whether a broadcast of n bytes is queued: not once closing, not when droppable above the
    /// high-water mark, not beyond max_outbox_bytes (the overflow policy applies).
    bool admit_shared(std::size_t n, bool droppable) {
        if (!can_send()) return false;   // a broadcast skips sockets that are closing
        if (droppable && buffered() >= high_water_) {
            ++dropped_;
            if (server_) server_->loops[loop_].dropped.add();
            return false;
        }
        return admit_or_overflow(n);
    }

    /// A prepared message as this connection frames it (prefix: "4" for an Engine.IO message
    /// packet, or none): compressed when deflate is agreed and the message is over the threshold
    /// and may be; the frame every connection shares when its compressed frames are those of any
    /// other, else compressed here, once admitted.
    void send_prepared_as(const prepared& p, std::string_view prefix, bool droppable) {
        if (!deflate_ || !deflate_->wants(prefix.size() + p.text().size(), p.compress())) {
            send_shared(prefix.empty() ? p.websocket_frame() : p.engineio_frame(), droppable);
            return;
        }
        if (deflate_->shares_frames()) {
            send_shared(prefix.empty() ? p.deflated_websocket_frame(*deflate_) : p.deflated_engineio_frame(*deflate_), droppable);
            return;
        }
        if (!admit_shared(prefix.size() + p.text().size() + max_frame_header, droppable)) return;
        std::string packed;
        deflate_->compress(p.text(), packed, prefix);
        queue_frame(opcode::text, std::move(packed), true);
    }

    void send_close(close_code code, std::string_view reason) {
        std::string payload;
        if (code != close_code::no_status) {
            auto c = static_cast<std::uint16_t>(code);
            payload.push_back(static_cast<char>(c >> 8));
            payload.push_back(static_cast<char>(c & 0xFF));
            payload.append(reason.substr(0, 123));
        }
        send_close_payload(std::move(payload));
    }

    void send_close_payload(std::string payload) {
        queue_frame(opcode::close, std::move(payload));
        if (phase_ == close_phase::open) phase_ = close_phase::closing;
    }

    void flush() {
        if (outbox_.empty() || broken_) {
            writing_ = false;
            outbox_.clear();
            queued_bytes_ = 0;
            wake();
            return;
        }
        inflight_.swap(outbox_);
        inflight_bytes_ = queued_bytes_;
        auto done = [self = shared_from_this()](std::error_code ec, std::size_t) {
            self->inflight_.clear();
            self->inflight_bytes_ = 0;
            if (self->inflight_.capacity() > 16) self->inflight_ = {};   // a burst's slack is not kept
            if (self->outbox_.empty()) {
                // Idle: one batch's storage is kept, not two. The next frame reuses it; a frame
                // queued during the next write makes the second again, once per busy spell.
                self->outbox_.swap(self->inflight_);
                self->inflight_ = {};
            }
            if (self->tls_) self->tls_->out.clear();
            if (ec) {
                self->write_failed(ec);
                return;
            }
            self->check_drained();
            self->flush();
        };
        if (tls_) {
            // OpenSSL writes one record per buffer: coalesce so the batch stays one record and one syscall.
            for (auto& f : inflight_) {
                tls_->out.append(reinterpret_cast<const char*>(f.head.data()), f.head_size);
                auto b = f.payload_buffer();
                tls_->out.append(static_cast<const char*>(b.data()), b.size());
            }
            queued_bytes_ = 0;
            asio::async_write(tls_->stream, asio::buffer(tls_->out), std::move(done));
            return;
        }
        queued_bytes_ = 0;
        // One write_some, so one sendmsg of up to 64 buffers (Asio's composed async_write would
        // split the batch into sendmsg calls of 16 buffers, 8 frames). What the kernel does not take
        // goes with the composed write from a list of the rest: a full send buffer, or over 32 frames.
        const frame_buffers batch{inflight_.data(), inflight_.data() + inflight_.size()};
        sock_.async_write_some(batch, [self = shared_from_this(), batch, done = std::move(done)](std::error_code ec,
                                                                                                 std::size_t n) mutable {
            if (ec || n == self->inflight_bytes_) {
                done(ec, n);
                return;
            }
            auto rest = std::make_shared<std::vector<asio::const_buffer>>();
            for (asio::const_buffer b : batch) {
                const std::size_t skip = std::min(n, b.size());
                n -= skip;
                if (b.size() > skip) rest->push_back(b + skip);
            }
            asio::async_write(self->sock_, *rest, [rest, done = std::move(done)](std::error_code e, std::size_t m) mutable {
                done(e, m);
            });
        });
    }

    void write_failed(std::error_code) {
        broken_ = true;
        writing_ = false;
        outbox_.clear();
        queued_bytes_ = 0;
        inflight_bytes_ = 0;
        if (!error_ && !close_received_) error_ = errc::connection_lost;
        std::error_code ignored;
        sock_.close(ignored);
        wake();
    }

    std::vector<out_frame> outbox_, inflight_;
    std::size_t queued_bytes_ = 0;
    bool writing_ = false, broken_ = false;

    // ---- closing ----

    /// Timers that exist only while a connection closes: an idle connection does not pay for them.
    struct closer {
        explicit closer(const tcp::socket::executor_type& ex) : wake(ex), deadline(ex) {
            wake.expires_at(asio::steady_timer::time_point::max());
        }
        asio::steady_timer wake;       // never expires; cancel() wakes whoever waits
        asio::steady_timer deadline;   // bounds the whole closing sequence
        bool armed = false;            // the deadline runs
    };

    void wake() {
        if (closer_) closer_->wake.cancel();
    }

    asio::awaitable<void> wait_for_change() {
        co_await closing().wake.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    }

    closer& closing() {
        if (!closer_) closer_ = std::make_unique<closer>(sock_.get_executor());
        return *closer_;
    }

    /// Sends our close frame now and lets close_timeout bound what follows: for closes the server
    /// decides on its own (idle, slow consumer, rate limit), whoever reads the connection finishes it.
    void close_soon(close_code code, std::string_view reason) override {
        send_close(code, reason);
        arm_deadline();
    }

    /// Starts the deadline after which the socket is closed whatever the peer does.
    void arm_deadline() {
        if (closer_ && closer_->armed) return;
        closing().armed = true;
        closing().deadline.expires_after(close_timeout_);
        closer_->deadline.async_wait([self = weak_from_this()](std::error_code ec) {
            if (ec) return;
            if (auto s = self.lock()) {
                std::error_code ignored;
                s->sock_.close(ignored);
            }
        });
    }

    /// Ends the connection: the close frame goes out after what was queued before it; the peer's
    /// close frame is awaited if it has not come (and the peer did not fail); then a server shuts its
    /// send side first (RFC 6455 section 7.1.1) and both read until the peer closes, so nothing in
    /// flight is lost to a reset. close_timeout bounds it all. Runs once; other callers wait for it.
    asio::awaitable<void> finish() {
        co_await exchange_closes();
        co_await conclude();
    }

    /// finish()'s first half: the close frames exchanged (or the peer failed or vanished); after
    /// it, how the connection ended is known, and the socket is still open.
    asio::awaitable<void> exchange_closes() {
        auto self = shared_from_this();
        arm_deadline();
        if (phase_ >= close_phase::settling) {
            while (phase_ < close_phase::settled) co_await wait_for_change();
            co_return;
        }
        if (phase_ == close_phase::open && !broken_) {
            if (close_received_)   // echo the peer's code and reason (RFC 6455 section 5.5.1); none for none
                send_close(peer_code_ == static_cast<std::uint16_t>(close_code::no_status) ? close_code::no_status
                                                                                             : static_cast<close_code>(peer_code_),
                           peer_reason());
            else if (fail_code_ != close_code{}) send_close(fail_code_, {});
            else if (!error_) send_close(close_code::normal, {});
        }
        phase_ = close_phase::settling;
        while (writing_) co_await wait_for_change();
        // No co_await inside the condition: GCC 12 evaluates it even when an operand before it is false.
        while (!stop_reading_ && !error_ && sock_.is_open()) {
            if (!take(co_await read_some())) break;
        }
        if (!close_received_ && !error_) error_ = errc::connection_lost;
        phase_ = close_phase::settled;
        wake();
    }

    /// finish()'s second half: the TCP close (see linger).
    asio::awaitable<void> conclude() {
        auto self = shared_from_this();
        if (phase_ >= close_phase::concluding) {
            while (phase_ < close_phase::ended) co_await wait_for_change();
            co_return;
        }
        phase_ = close_phase::concluding;
        co_await linger(role_ == role::server);
        closer_->deadline.cancel();
        phase_ = close_phase::ended;
        wake();
    }

    /// Closes the socket without losing what was sent to a reset: over plain TCP, optionally shuts
    /// the send side first, then reads until the peer closes (a deadline elsewhere bounds it).
    /// TLS sends no close_notify, so there is nothing to wait for.
    asio::awaitable<void> linger(bool shut_send_first) {
        std::error_code ec;
        if (!tls_ && sock_.is_open()) {
            if (shut_send_first) sock_.shutdown(tcp::socket::shutdown_send, ec);
            while (sock_.is_open()) {
                if (co_await read_some()) break;
            }
        }
        sock_.close(ec);
    }

    close_phase phase_ = close_phase::open;
    bool close_received_ = false;   // the peer's close frame arrived
    std::uint16_t peer_code_ = static_cast<std::uint16_t>(close_code::abnormal);
    close_code fail_code_{};   // set when the peer broke the protocol
    std::string_view peer_reason() const noexcept {
        return close_received_ && control_.size() > 2 ? std::string_view(control_).substr(2) : std::string_view();
    }
    std::error_code error_;
    std::unique_ptr<closer> closer_;

    /// True while the application may still send: our close frame is not queued, and no write failed.
    bool can_send() const noexcept { return phase_ == close_phase::open && !broken_; }
    bool ended() const noexcept { return phase_ == close_phase::ended; }

    /// Starts the closing handshake on this thread and completes when it is over: the peer
    /// answered, or close_timeout passed, and the socket is closed. Messages arriving meanwhile are
    /// dropped unless a reader is running.
    asio::awaitable<void> close(close_code code, std::string_view reason) override {
        auto self = shared_from_this();
        if (ended()) co_return;
        if (can_send()) send_close(code, reason);
        arm_deadline();
        if (receiving_) {
            while (!ended()) co_await wait_for_change();
            co_return;
        }
        flag_guard busy(receiving_);
        while (!stop_reading_ && !broken_) {
            take(co_await read_some());
            inbox_.clear();
            inbox_head_ = 0;
        }
        co_await finish();
    }

    // ---- the rest of the transport (net/transport.hpp) ----
    void start(std::shared_ptr<transport_sink> sink) override;
    void send_text(std::string text, bool compress = true) override { send_frame(opcode::text, std::move(text), compress); }
    void send_prepared(const std::shared_ptr<const prepared>& p, bool droppable) override { send_prepared_as(*p, {}, droppable); }
    asio::awaitable<void> drained() override { return wait_drained(); }
    void on_drain(void (*callback)(void*), void* context) override {
        on_drain_ = callback;
        drain_context_ = context;
    }
    void set_overflow(overflow policy) override { drop_when_full_ = policy == overflow::drop; }
    bool is_open() const noexcept override { return can_send(); }
    asio::awaitable<std::string> settle() override {
        co_await exchange_closes();
        co_return error_ == errc::connection_lost ? std::string("transport close")
                  : error_                        ? error_.message()
                  : shutting_down_                ? std::string("server shutting down")
                                                  : std::string();
    }
    asio::awaitable<void> release() override {
        auto self = shared_from_this();
        co_await conclude();
        receiving_ = false;
    }
    asio::any_io_executor executor() const override { return const_cast<tcp::socket&>(sock_).get_executor(); }
    http_request& request() noexcept override { return request_; }
};

/// The reader of connection_impl::read_with, its own completion handler: each wake reads what is
/// there, hands over the complete messages and waits again.
template <class Sink> struct callback_reader {
    std::shared_ptr<connection_impl> c;
    Sink sink;

    void operator()(std::error_code ec) {   // plain TCP: the socket is readable
        if (!ec) ec = c->read_available();
        take(ec);
    }
    void operator()(std::error_code ec, std::size_t n) {   // TLS: n bytes decrypted into its buffer
        c->data_ = {c->tls_->in.get(), n};
        take(ec);
    }
    void take(std::error_code ec) {
        c->take(ec);
        deliver();
    }
    void deliver() {
        while (c->has_message()) sink.message(c->pop_message());
        if (c->stop_reading_ || c->broken_ || c->ended()) {
            sink.end();
            return;
        }
        connection_impl& conn = *c;   // *this moves into the wait below
        if (auto& tls = conn.tls_) {
            if (!tls->in) tls->in.reset(new unsigned char[connection_impl::tls_state::in_size]);
            tls->stream.async_read_some(asio::buffer(tls->in.get(), connection_impl::tls_state::in_size), std::move(*this));
        } else {
            conn.sock_.async_wait(tcp::socket::wait_read, std::move(*this));
        }
    }
};

/// A transport_sink as read_with's sink: the reader's handler holds it, so an idle connection holds
/// no more than that.
struct sink_ref {
    std::shared_ptr<transport_sink> to;
    void message(gw::message&& m) { to->on_message(std::move(m)); }
    void end() { to->on_end(); }
};

inline void connection_impl::start(std::shared_ptr<transport_sink> sink) { read_with(sink_ref{std::move(sink)}); }

template <class Sink> void connection_impl::read_with(Sink sink) {
    receiving_ = true;   // until the sink's finish(): close() waits for it rather than reading itself
    callback_reader<Sink>{shared_from_this(), std::move(sink)}.deliver();
}


} // namespace gw::v0::detail
