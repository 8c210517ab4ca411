// Socket.IO v5 on the gateway: the packet codec (a namespace's events as Socket.IO packets, binary
// attachments included), and the session seam's second case: one Engine.IO session carrying
// several namespace sockets. sio_client routes a session's packets by namespace; each namespace
// socket is a gw::transport of its own, which the gateway serves like any connection.
#pragma once
#include "../detail/asio.hpp"
#include "../detail/json.hpp"
#include "../net/engineio.hpp"
#include "../protocol/json_fast.hpp"
#include "../protocol/socketio.hpp"
#include "codec.hpp"
#include "dispatch.hpp"
#include "options.hpp"
#include "state.hpp"

#ifndef GATEWAY_NO_JSON
namespace gw::inline v0 {

namespace detail::sio {

// Inside the gateway a packet and its binary attachments travel as one string: the packet's text,
// then for each attachment a NUL, its size in decimal, ':' and its bytes. JSON text holds no raw
// NUL, nor do the namespaces the gateway accepts, so the first NUL ends the text.

inline void append_attachment(std::string& out, std::string_view bytes) {
    out += '\0';
    out += std::to_string(bytes.size());
    out += ':';
    out += bytes;
}

/// The packet's text; its attachments go to parts (views into all). False when the framing is broken.
inline bool split_attachments(std::string_view all, std::string_view& text, std::vector<std::string_view>& parts) {
    const auto nul = all.find('\0');
    text = all.substr(0, nul);
    if (nul == std::string_view::npos) return true;
    all.remove_prefix(nul);
    while (!all.empty()) {
        const auto colon = all.find(':');
        std::size_t size = 0;
        if (all.front() != '\0' || colon == std::string_view::npos ||
            std::from_chars(all.data() + 1, all.data() + colon, size).ec != std::errc{} || size > all.size() - colon - 1)
            return false;
        parts.push_back(all.substr(colon + 1, size));
        all.remove_prefix(colon + 1 + size);
    }
    return true;
}

/// True when a JSON value holds binary anywhere.
inline bool has_binary(const json& j) {
    if (j.is_binary()) return true;
    if (j.is_array() || j.is_object())
        for (const auto& v : j)
            if (has_binary(v)) return true;
    return false;
}

/// Replaces each binary value by a placeholder {"_placeholder":true,"num":N}, depth first, and
/// collects the bytes in that order.
inline void take_binary(json& j, std::vector<std::string>& out) {
    if (j.is_binary()) {
        const auto& b = j.get_binary();
        out.emplace_back(reinterpret_cast<const char*>(b.data()), b.size());
        j = json{{"_placeholder", true}, {"num", out.size() - 1}};
        return;
    }
    if (j.is_array() || j.is_object())
        for (auto& v : j) take_binary(v, out);
}

/// Puts the attachments back where their placeholders stand; false for a placeholder whose num
/// is not one of them.
inline bool put_binary(json& j, const std::vector<std::string_view>& parts) {
    if (j.is_object()) {
        auto p = j.find("_placeholder");
        if (p != j.end() && p->is_boolean() && p->get<bool>() && j.size() == 2) {
            auto n = j.find("num");
            if (n == j.end() || !n->is_number_integer()) return false;
            const auto i = n->get<std::int64_t>();
            if (i < 0 || static_cast<std::size_t>(i) >= parts.size()) return false;
            const auto& bytes = parts[static_cast<std::size_t>(i)];
            j = json::binary(json::binary_t::container_type(bytes.begin(), bytes.end()));
            return true;
        }
    }
    if (j.is_array() || j.is_object())
        for (auto& v : j)
            if (!put_binary(v, parts)) return false;
    return true;
}

/// Writes the arguments of an event or acknowledgement after what out holds: data itself, or
/// its elements when spread.
inline void write_arguments(std::string& out, const json& data, bool spread, bool first) {
    if (spread && data.is_array()) {
        for (const auto& a : data) {
            if (!first) out += ',';
            first = false;
            write_json(out, a);
        }
        return;
    }
    if (!first) out += ',';
    write_json(out, data);
}

} // namespace detail::sio

/// Socket.IO v5 packets of one namespace: EVENT and ACK (their BINARY_ forms when the data holds
/// binary, as gw::json::binary values), the namespace written unless it is "/". A client's event
/// with an ack id carries it as event::id; its handler's return value becomes the ACK.
class socketio_codec final : public codec {
public:
    explicit socketio_codec(std::string nsp, std::size_t max_attachments = 10) : nsp_(std::move(nsp)), max_attachments_(max_attachments) {}

    const std::string& nsp() const noexcept { return nsp_; }

    std::optional<event> decode(const message& m, std::string& error) const override {
        std::string_view text = m.data;
        std::vector<std::string_view> parts;
        if (m.binary && !detail::sio::split_attachments(m.data, text, parts)) {
            error = "malformed attachments";
            return std::nullopt;
        }
        namespace sio = detail::sio;
        sio::packet_head h;
        if (auto bad = sio::parse_head(text, h, max_attachments_); !bad.empty()) {
            error = bad;
            return std::nullopt;
        }
        if (auto bad = sio::check_data_shape(h.type, h.data); !bad.empty()) {
            error = bad;
            return std::nullopt;
        }
        if (sio::is_binary(h.type) && h.attachments != parts.size()) {
            error = "wrong number of attachments";
            return std::nullopt;
        }
        const bool is_event = h.type == sio::packet_type::event || h.type == sio::packet_type::binary_event;
        const bool is_ack = h.type == sio::packet_type::ack || h.type == sio::packet_type::binary_ack;
        if (!is_event && !is_ack) {
            error = "unexpected packet type";
            return std::nullopt;
        }
        event e;
        if (sio::is_binary(h.type) || !quick_arguments(h.data, is_event, e)) {
            json args = json::parse(h.data, nullptr, false);
            if (args.is_discarded() || !args.is_array()) {
                error = "malformed JSON";
                return std::nullopt;
            }
            if (sio::is_binary(h.type) && !sio::put_binary(args, parts)) {
                error = "illegal attachments";
                return std::nullopt;
            }
            if (is_event) {
                if (args.empty() || !(args[0].is_string() || args[0].is_number())) {
                    error = "an event's first argument must be its name";
                    return std::nullopt;
                }
                e.name = args[0].is_string() ? args[0].get<std::string>() : args[0].dump();
                args.erase(args.begin());
            }
            if (args.size() == 1) {
                e.data = std::move(args[0]);
            } else {
                e.data = std::move(args);
                e.spread = true;
            }
        }
        if (is_ack && h.id <= 0) return std::nullopt;   // no emit of ours waits for it (our ids start at 1): ignored
        if (is_event) {
            if (sio::is_reserved_event(e.name)) {
                error = "reserved event name \"" + e.name + "\"";
                return std::nullopt;
            }
            if (h.id >= 0) e.id = h.id;
        } else {
            e.name = "ack";
            e.ack = h.id;
        }
        return e;
    }

    std::string encode(std::string_view name, const json& data, const json&, std::int64_t ack, bool spread = false) const override {
        namespace sio = detail::sio;
        std::string out;
        out.reserve(32 + nsp_.size() + name.size() + (data.is_string() ? data.get_ref<const std::string&>().size() : 0));
        if (!sio::has_binary(data)) {
            sio::write_head(out, sio::packet_type::event, nsp_, ack > 0 ? ack : -1);
            out += '[';
            write_json_string(out, name);
            sio::write_arguments(out, data, spread, false);
            out += ']';
            return out;
        }
        json copy = data;
        std::vector<std::string> attachments;
        sio::take_binary(copy, attachments);
        sio::write_head(out, sio::packet_type::binary_event, nsp_, ack > 0 ? ack : -1, attachments.size());
        out += '[';
        write_json_string(out, name);
        sio::write_arguments(out, copy, spread, false);
        out += ']';
        for (const auto& a : attachments) sio::append_attachment(out, a);
        return out;
    }

    /// A named reply is emitted as that event; an unnamed one acknowledges the request when the
    /// client asked (its ack id), and is dropped otherwise, as NestJS's Socket.IO adapter does.
    std::optional<std::string> reply(const event& request, std::string_view name, const json& data, bool spread) const override {
        if (!name.empty()) return encode(name, data, nullptr, 0, spread);
        if (!request.id.is_number_integer()) return std::nullopt;
        namespace sio = detail::sio;
        std::string out;
        const auto id = request.id.get<std::int64_t>();
        if (!sio::has_binary(data)) {
            sio::write_head(out, sio::packet_type::ack, nsp_, id);
            out += '[';
            sio::write_arguments(out, data, spread, true);
            out += ']';
            return out;
        }
        json copy = data;
        std::vector<std::string> attachments;
        sio::take_binary(copy, attachments);
        sio::write_head(out, sio::packet_type::binary_ack, nsp_, id, attachments.size());
        out += '[';
        sio::write_arguments(out, copy, spread, true);
        out += ']';
        for (const auto& a : attachments) sio::append_attachment(out, a);
        return out;
    }

    bool closes_on_error() const noexcept override { return true; }
    bool answers_unknown() const noexcept override { return false; }

    /// The event with its offset as one more argument, which the client keeps as its last offset.
    std::shared_ptr<const prepared> prepare_kept(std::string_view name, const json& data, bool spread, std::string_view offset,
                                                 bool compress = true) const override {
        json args = spread && data.is_array() ? data : json::array({data});
        args.push_back(offset);
        return std::make_shared<const prepared>(encode(name, args, nullptr, 0, true), compress);
    }

private:
    /// The common case without building a document for the whole array: a text packet whose
    /// arguments are scanned, each built on its own (simple strings and integers directly), an
    /// event's name a string. False when the general path must decide (and say what is wrong).
    static bool quick_arguments(std::string_view text, bool named, event& e) {
        detail::json_scanner in(text);
        if (!in.take('[')) return false;
        if (named) {
            std::string_view raw;
            bool escaped = false;
            if (!in.string(raw, escaped)) return false;
            e.name = detail::json_string_text(raw, escaped);
        }
        std::string_view first, span;
        std::size_t count = 0;
        json rest;   // two arguments or more: all of them (made only then: an array allocates)
        for (bool more = named ? in.take(',') : !in.next_is(']'); more; more = in.take(',')) {
            if (!in.value(span)) return false;
            if (count == 1) {
                rest = json::array();
                rest.push_back(detail::json_value(first));
            }
            if (count >= 1) rest.push_back(detail::json_value(span));
            else first = span;
            ++count;
        }
        if (!in.take(']') || !in.at_end()) return false;
        if (count == 1) {
            e.data = detail::json_value(first);
        } else {
            e.data = count == 0 ? json::array() : std::move(rest);
            e.spread = true;
        }
        return true;
    }
    static void write_json_string(std::string& out, std::string_view s) { detail::write_json_string(out, s); }
    static void write_json(std::string& out, const json& j) { detail::write_json(out, j); }
    std::string nsp_;
    std::size_t max_attachments_;
};

namespace detail {

class sio_socket;

/// An Engine.IO session's Socket.IO side: routes its packets by namespace, connects namespaces
/// (CONNECT, middleware, the reply), collects binary attachments, and ends every namespace socket
/// with the session.
struct sio_client final : transport_sink, std::enable_shared_from_this<sio_client> {
    sio_client(std::shared_ptr<gateway_state> st, std::shared_ptr<eio_session> engine)
        : st_(std::move(st)), engine_(std::move(engine)) {}

    /// Takes over a new Engine.IO session: reads it, and closes it unless a namespace is joined
    /// within connect_timeout.
    static void start(const std::shared_ptr<gateway_state>& st, std::shared_ptr<eio_session> engine) {
        auto c = std::make_shared<sio_client>(st, std::move(engine));
        c->engine_->on_drain(&sio_client::drained, c.get());
        c->timer_ = std::make_unique<asio::steady_timer>(c->engine_->executor(), st->socketio.connect_timeout);
        c->timer_->async_wait([w = std::weak_ptr<sio_client>(c)](std::error_code ec) {
            auto self = w.lock();
            if (ec || !self || !self->sockets_.empty()) return;
            self->engine_->close_soon(close_code::normal, "connect timeout");
        });
        c->engine_->start(c);
    }

    void on_message(message&& m) override;
    void on_end() override;
    /// Its session goes without an end (teardown): every namespace socket lets go too.
    void abandon() override;

    /// Sends a packet (with its attachments, if any) on the session.
    void send(std::string packet, bool compress = true) {
        if (!engine_->is_open()) return;
        if (packet.find('\0') == std::string::npos) {
            engine_->send_text(std::move(packet), compress);
            return;
        }
        std::string_view text;
        std::vector<std::string_view> parts;
        sio::split_attachments(packet, text, parts);
        engine_->send_text(std::string(text), compress);
        for (auto p : parts) engine_->send_binary(std::string(p), compress);   // compress(false) covers the attachments
    }
    void send_prepared(const std::shared_ptr<const prepared>& p, bool droppable) {
        if (p->text().find('\0') == std::string::npos) engine_->send_prepared(p, droppable);
        else if (!droppable || !engine_->above_high_water()) send(p->text(), p->compress());
    }

    /// Refuses a CONNECT to nsp with data ({message[, data]}); the session stays.
    void connect_error(std::string_view nsp, const json& data) {
        std::string out;
        sio::write_head(out, sio::packet_type::connect_error, nsp);
        write_json(out, data);
        send(std::move(out));
    }
    /// A namespace socket leaves the session (its DISCONNECT either way).
    void forget(const sio_socket* s) {
        std::erase_if(sockets_, [s](const auto& p) { return p.get() == s; });
    }
    /// The client broke the protocol: the whole session closes.
    void fail(std::string_view why) {
        st_->log.say(log_level::info, "closing a Socket.IO connection: " + std::string(why), engine_->request());
        engine_->close_soon(close_code::protocol_error, why);
    }

    const std::shared_ptr<eio_session>& engine() const noexcept { return engine_; }

private:
    void connect(const sio::packet_head& h);
    /// A CONNECT's second half: recovery (when asked and possible), the middleware, the socket.
    static asio::awaitable<void> join(std::shared_ptr<sio_client> self, namespace_state* ns, std::size_t worker,
                                      std::shared_ptr<sio_socket> t, std::string pid, std::string offset);
    static void drained(void* self);

    std::shared_ptr<gateway_state> st_;
    std::shared_ptr<eio_session> engine_;
    std::vector<std::shared_ptr<sio_socket>> sockets_;   // one per namespace joined
    /// A binary event or ack waiting for its attachments, and for which socket.
    struct pending_binary {
        std::string packet;
        std::size_t left = 0;
        std::shared_ptr<sio_socket> to;
    };
    std::unique_ptr<pending_binary> pending_;
    std::unique_ptr<asio::steady_timer> timer_;   // the connect timeout
};

/// One namespace socket over an Engine.IO session: the transport the gateway's socket holds.
class sio_socket final : public transport {
public:
    sio_socket(std::shared_ptr<sio_client> client, std::string nsp, http_request req, std::unique_ptr<codec> own_codec)
        : client_(std::move(client)), nsp_(std::move(nsp)), request_(std::move(req)), own_codec_(std::move(own_codec)) {}

    /// With recovery on: the private session id the client gets in the CONNECT reply.
    std::string pid;

    const std::string& nsp() const noexcept { return nsp_; }
    /// The codec for a namespace matched by pattern (its packets name this namespace), else null.
    const codec* own_codec() const noexcept { return own_codec_.get(); }

    // From the client.
    void deliver(message&& m) {
        if (ended_) return;
        if (sink_) sink_->on_message(std::move(m));
        else inbox_.push_back(std::move(m));
    }
    /// Teardown: lets go of the gateway's socket (which holds this transport) with no callback.
    void abandon() {
        ended_ = true;
        sink_.reset();
        inbox_.clear();
    }
    /// Ends it for reason, a literal or the session's reason (both outlive it).
    void end(std::string_view reason) {
        if (ended_) return;
        ended_ = true;
        reason_ = reason;
        inbox_.clear();
        if (auto sink = std::move(sink_)) sink->on_end();   // the gateway's socket holds this transport: let go
    }

    // transport
    void start(std::shared_ptr<transport_sink> sink) override {
        sink_ = std::move(sink);
        while (!inbox_.empty() && !ended_) {
            auto m = std::move(inbox_.front());
            inbox_.pop_front();
            sink_->on_message(std::move(m));
        }
        if (ended_) std::move(sink_)->on_end();
    }
    void send_text(std::string text, bool compress = true) override {
        if (!is_open()) throw std::system_error(errc::closed);
        client_->send(std::move(text), compress);
    }
    void send_prepared(const std::shared_ptr<const prepared>& p, bool droppable) override {
        if (is_open()) client_->send_prepared(p, droppable);
    }
    std::size_t buffered() const noexcept override { return client_->engine()->buffered(); }
    bool above_high_water() const noexcept override { return client_->engine()->above_high_water(); }
    asio::awaitable<void> drained() override { return client_->engine()->drained(); }
    void on_drain(void (*callback)(void*), void* context) override {
        drain_callback_ = callback;
        drain_context_ = context;
    }
    void set_overflow(overflow policy) override { client_->engine()->set_overflow(policy); }
    bool is_open() const noexcept override { return !ended_ && client_->engine()->is_open(); }
    /// The server ends this namespace socket: a DISCONNECT packet, the session stays. A protocol
    /// error (a packet that did not decode) closes the whole session instead.
    void close_soon(close_code code, std::string_view reason) override {
        if (ended_) return;
        if (code == close_code::protocol_error) {
            client_->fail(reason);
            return;
        }
        if (client_->engine()->is_open()) {
            std::string bye;
            sio::write_head(bye, sio::packet_type::disconnect, nsp_);
            client_->send(std::move(bye));
        }
        client_->forget(this);
        end("server namespace disconnect");
    }
    asio::awaitable<void> close(close_code code, std::string_view reason) override {
        close_soon(code, reason);
        co_return;
    }
    asio::awaitable<std::string> settle() override { co_return std::string(reason_); }
    asio::awaitable<void> release() override { co_return; }
    asio::any_io_executor executor() const override { return client_->engine()->executor(); }
    bool on_own_thread() const noexcept override { return client_->engine()->on_own_thread(); }
    http_request& request() noexcept override { return request_; }
    /// The CONNECT reply: {"sid": the socket's id}, and its "pid" with recovery on.
    void opened(std::string_view socket_id) override {
        std::string reply;
        sio::write_head(reply, sio::packet_type::connect, nsp_);
        reply += "{\"sid\":";
        write_json_string(reply, socket_id);
        if (!pid.empty()) {
            reply += ",\"pid\":";
            write_json_string(reply, pid);
        }
        reply += '}';
        client_->send(std::move(reply));
    }
    std::string_view session_pid() const noexcept override { return pid; }

    void drained_now() {
        if (drain_callback_) drain_callback_(drain_context_);
    }

private:
    std::shared_ptr<sio_client> client_;
    std::string nsp_;
    http_request request_;
    std::unique_ptr<codec> own_codec_;
    std::shared_ptr<transport_sink> sink_;
    fifo<message> inbox_;   // what came before the gateway started reading
    std::string_view reason_;
    bool ended_ = false;
    void (*drain_callback_)(void*) = nullptr;
    void* drain_context_ = nullptr;
};

inline void sio_client::drained(void* self) {
    auto& c = *static_cast<sio_client*>(self);
    for (auto sockets = c.sockets_; auto& s : sockets) s->drained_now();
}

inline void sio_client::on_message(message&& m) {
    if (pending_) {   // the attachments of a binary packet come first, whatever else is said
        if (!m.binary) {
            fail("a text packet while attachments were expected");
            return;
        }
        sio::append_attachment(pending_->packet, m.data);
        if (--pending_->left > 0) return;
        auto done = std::move(pending_);
        done->to->deliver(message{std::move(done->packet), true});
        return;
    }
    if (m.binary) {
        fail("an attachment that no packet announced");
        return;
    }
    sio::packet_head h;
    if (auto bad = sio::parse_head(m.data, h, st_->socketio.max_attachments); !bad.empty()) {
        fail(bad);
        return;
    }
    if (auto bad = sio::check_data_shape(h.type, h.data); !bad.empty()) {
        fail(bad);
        return;
    }
    auto it = std::find_if(sockets_.begin(), sockets_.end(), [&](const auto& s) { return s->nsp() == h.nsp; });
    const bool joined = it != sockets_.end();
    switch (h.type) {
    case sio::packet_type::connect:
        if (joined) fail("a second CONNECT for " + std::string(h.nsp));
        else connect(h);
        return;
    case sio::packet_type::disconnect:
        if (!joined) {
            fail("DISCONNECT for a namespace not joined");
            return;
        }
        {
            auto s = std::move(*it);
            sockets_.erase(it);
            s->end("client namespace disconnect");
        }
        return;
    case sio::packet_type::connect_error: fail("CONNECT_ERROR from a client"); return;
    default: break;
    }
    if (!joined) {
        fail("a packet for a namespace not joined: " + std::string(h.nsp));
        return;
    }
    if (sio::is_binary(h.type)) {
        if (h.attachments == 0) {
            fail("a binary packet without attachments");
            return;
        }
        pending_ = std::make_unique<pending_binary>(pending_binary{std::move(m.data), h.attachments, *it});
        return;
    }
    (*it)->deliver(std::move(m));
}

inline void sio_client::abandon() {
    pending_.reset();
    auto sockets = std::move(sockets_);
    for (auto& s : sockets) s->abandon();   // the session already let go of this client: no cycle is left
}

inline void sio_client::on_end() {
    timer_.reset();   // its wait ends, aborted
    pending_.reset();
    auto sockets = std::move(sockets_);
    const std::string_view reason = engine_->reason();
    for (auto& s : sockets) s->end(reason.empty() ? "transport close" : reason);
}

inline void sio_client::connect(const sio::packet_head& h) {
    std::string nsp(h.nsp);
    namespace_state* ns = nsp.find('\0') == std::string::npos ? st_->find(nsp) : nullptr;
    if (!ns) {
        connect_error(nsp, json{{"message", "Invalid namespace"}});
        return;
    }
    http_request req = engine_->request();
    req.auth = h.data.empty() ? std::string("{}") : std::string(h.data);
    json auth = json::parse(req.auth, nullptr, false);
    if (auth.is_discarded() || !auth.is_object()) {
        fail("a CONNECT whose auth is not a JSON object");
        return;
    }
    if (auto token = auth.find("token"); token != auth.end() && token->is_string()) req.auth_token_ = token->get<std::string>();
    const auto worker = st_->current();
    if (!worker) {
        fail("a session on a thread that is none of the gateway's workers");
        return;
    }
    // What a client that comes back sends to recover: its private session id and last offset.
    std::string pid, offset;
    if (st_->socketio.recovery.enabled) {
        auto p = auth.find("pid"), o = auth.find("offset");
        if (p != auth.end() && p->is_string() && o != auth.end() && o->is_string()) {
            pid = p->get<std::string>();
            offset = o->get<std::string>();
        }
    }
    std::unique_ptr<codec> own;
    if (ns->path != nsp) own = std::make_unique<socketio_codec>(nsp, st_->socketio.max_attachments);
    auto t = std::make_shared<sio_socket>(shared_from_this(), nsp, std::move(req), std::move(own));
    // In the session's list at once: what the client sends meanwhile waits in the socket's inbox.
    sockets_.push_back(t);
    timer_.reset();   // its wait ends, aborted
    asio::co_spawn(engine_->executor(), join(shared_from_this(), ns, *worker, std::move(t), std::move(pid), std::move(offset)),
                   st_->log.report("a Socket.IO CONNECT"));
}

inline asio::awaitable<void> sio_client::join(std::shared_ptr<sio_client> self, namespace_state* ns, std::size_t worker,
                                              std::shared_ptr<sio_socket> t, std::string pid, std::string offset) {
    const auto& rec = self->st_->socketio.recovery;
    std::optional<session_record> restored;
    std::vector<kept_broadcast> missed;
    if (!pid.empty() && rec.store) {
        auto r = co_await rec.store->restore(pid);
        // A record without a namespace (kept by Node's streams adapter, which stores none) is the
        // one of the namespace the client reconnects to, as the private session id was.
        if (r && r->nsp.empty()) r->nsp = ns->path;
        if (r && r->nsp == ns->path && !offset.empty()) {
            r->offset = std::move(offset);
            if (auto m = co_await rec.store->missed(*r)) {
                restored = std::move(r);
                missed = std::move(*m);
            }
        }
    }
    if (!t->is_open()) co_return;   // the session ended meanwhile
    if (!restored || !rec.skip_middlewares) {
        if (auto refused = ns->admit(t->request())) {
            std::string message = refused->body;
            while (!message.empty() && (message.back() == '\n' || message.back() == '\r' || message.back() == ' ')) message.pop_back();
            if (message.empty()) message = std::string(status_text(refused->status));
            self->connect_error(t->nsp(), json{{"message", std::move(message)}, {"data", {{"status", refused->status}}}});
            self->forget(t.get());
            t->end("refused");
            co_return;
        }
    }
    if (rec.enabled) t->pid = restored ? std::move(pid) : random_id();
    // The events it missed go before the CONNECT reply; the client delivers them once connected.
    for (const auto& b : missed) self->send_prepared(b.message, false);
    const codec* wire = t->own_codec() ? t->own_codec() : ns->sio_wire.get();
    co_await dispatcher::serve(self->st_, ns, worker, std::move(t), wire, std::move(restored));
}

} // namespace detail

} // namespace gw::v0
#endif
