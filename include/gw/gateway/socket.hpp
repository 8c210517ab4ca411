// gw::socket: a client connected to a namespace: its id, handshake, data and rooms, and emit and
// emit_with_ack to it alone.
#pragma once
#include "../detail/asio.hpp"
#include "../detail/json.hpp"
#include "../net/transport.hpp"
#include "../protocol/text.hpp"
#include "codec.hpp"
#include "target.hpp"
#include "vocabulary.hpp"

#ifndef GATEWAY_NO_JSON
namespace gw::inline v0 {

namespace detail {

/// An awaitable that completes at once: what emit() returns after queueing.
inline asio::awaitable<void> done() { co_return; }

/// A socket id: 15 bytes from the CSPRNG, base64url (20 characters, as Socket.IO's ids).
inline std::string random_id() {
    std::array<unsigned char, 15> raw;
    random_bytes(raw.data(), raw.size());
    std::string id = base64_encode(raw);
    for (char& c : id) c = c == '+' ? '-' : c == '/' ? '_' : c;
    return id;
}

struct gateway_state;
struct outcome;

} // namespace detail

/// A client connected to a namespace: its id, its handshake, its data and its rooms.
class socket : public std::enable_shared_from_this<socket>, private transport_sink {
public:
    /// Unguessable: 120 random bits. Each socket is also in a room named by its id.
    const std::string& id() const noexcept { return id_; }
    /// The upgrade request: path, query, headers, cookies, remote address.
    const http_request& handshake() const { return transport_->request(); }
    /// The namespace's path.
    const std::string& nsp() const noexcept;
    /// Socket.IO: the CONNECT packet's auth payload ({} when none came); null for a WebSocket client.
    json auth() const {
        const auto& a = transport_->request().auth;
        return a.empty() ? json() : json::parse(a, nullptr, false);
    }
    /// What handshake middleware attached (see namespace_ref::use), or anything the application keeps.
    std::any& data() noexcept { return data_; }
    /// data() as T; throws std::bad_any_cast when it holds something else.
    template <class T> T& data_as() { return std::any_cast<T&>(data_); }

    /// Sends an event to this socket only. On the socket's worker it is queued before emit()
    /// returns, the awaitable completes once the socket's unsent bytes are below
    /// options.outbox_high_water (a streaming handler goes at its client's pace), and it throws
    /// gw::errc::closed once the connection closes. From another thread it is posted to the
    /// socket's worker (dropped if the socket has gone by then) and does not wait.
    asio::awaitable<void> emit(std::string_view event, const json& data = nullptr) { return emit_as(event, data, true); }

    /// What compress() returns: emit() as the socket's, with its compression choice.
    struct compressed_emitter {
        socket& s;
        bool compress;
        asio::awaitable<void> emit(std::string_view event, const json& data = nullptr) const { return s.emit_as(event, data, compress); }
    };
    /// Socket.IO's socket.compress(false).emit(...): with false, the emit goes uncompressed where
    /// permessage-deflate would compress it (a secret beside text an attacker chose; README:
    /// Compression).
    compressed_emitter compress(bool on) { return {*this, on}; }

    /// Bytes queued for this socket and not yet taken by the kernel.
    std::size_t buffered_amount() const noexcept { return transport_->buffered(); }

    /// Emits an event that asks the client to acknowledge it, and waits for its answer: the client's
    /// {"event": "ack", "ack": n, "data": reply} gives reply. Throws std::system_error with
    /// std::errc::timed_out when no answer comes within timeout (or the socket goes first).
    /// May be awaited on any thread; the wait itself runs on the socket's worker.
    /// spread: data is a list of arguments (Socket.IO's several arguments, see gw::event::spread).
    asio::awaitable<json> emit_with_ack(std::string event, json data, std::chrono::milliseconds timeout, bool spread = false) {
        auto self = shared_from_this();   // the socket outlives the wait even if the client leaves
        if (!transport_->on_own_thread()) {
            auto hop = [self, event = std::move(event), data = std::move(data), timeout, spread]() mutable {
                return self->emit_with_ack(std::move(event), std::move(data), timeout, spread);
            };
            co_return co_await asio::co_spawn(transport_->executor(), std::move(hop), asio::use_awaitable);
        }
        const std::int64_t n = ++last_ack_;
        auto waiter = std::make_shared<pending_ack>(transport_->executor(), timeout);
        if (!acks_) acks_ = std::make_unique<std::unordered_map<std::int64_t, std::shared_ptr<pending_ack>>>();
        acks_->emplace(n, waiter);
        send_event(event, data, nullptr, n, spread);
        co_await waiter->timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
        acks_->erase(n);
        if (!waiter->reply) throw std::system_error(std::make_error_code(std::errc::timed_out), "no acknowledgement of " + event);
        co_return std::move(*waiter->reply);
    }

    // A socket's rooms belong to its worker: join, leave, rooms() and in() are for the handlers and
    // hooks of this socket's namespace, which run there (any thread when workers is 1).
    void join(const std::string& room);
    void join(std::initializer_list<std::string> rooms) {
        for (const auto& r : rooms) join(r);
    }
    void leave(const std::string& room);
    void leave(std::initializer_list<std::string> rooms) {
        for (const auto& r : rooms) leave(r);
    }
    /// The rooms this socket is in, its own id-room first.
    std::vector<std::string> rooms() const {
        std::vector<std::string> all;
        all.reserve(rooms_.size() + 1);
        if (in_own_room_) all.push_back(id_);
        all.insert(all.end(), rooms_.begin(), rooms_.end());
        return all;
    }
    bool in(std::string_view room) const noexcept {
        return (in_own_room_ && room == id_) || std::find(rooms_.begin(), rooms_.end(), room) != rooms_.end();
    }

    /// Everyone in room except this socket.
    target to(std::string room) const;
    /// Everyone in the namespace except this socket.
    target broadcast() const;

    /// Closes the connection (on_disconnect runs once it is over).
    asio::awaitable<void> disconnect(close_code code = close_code::normal, std::string_view reason = {}) {
        closed_by_server_ = true;
        auto t = transport_;
        if (t->on_own_thread()) {
            co_await t->close(code, reason);
            co_return;
        }
        // A named callable, never a temporary inside co_await: GCC 12 destroys those twice.
        auto hop = [t, code, why = std::string(reason)]() -> asio::awaitable<void> { co_await t->close(code, why); };
        co_await asio::co_spawn(t->executor(), std::move(hop), asio::use_awaitable);
    }
    bool connected() const noexcept { return transport_->is_open(); }
    /// Socket.IO with connection-state recovery: true when this socket is one that had dropped and
    /// came back within the window, with its id, rooms and data (and the events it missed).
    bool recovered() const noexcept { return recovered_; }

    socket(const socket&) = delete;
    socket& operator=(const socket&) = delete;

private:
    socket(detail::namespace_state& ns, std::shared_ptr<detail::gateway_state> owner, std::size_t worker,
           std::shared_ptr<transport> t)
        : ns_(ns), worker_(worker), owner_(std::move(owner)), transport_(std::move(t)), id_(detail::random_id()) {}
    // What the transport reads goes to the gateway's dispatcher (dispatch.hpp).
    void on_message(message&& m) override;
    void on_end() override;
    friend class target;
    friend class gateway;
    friend struct detail::namespace_state;
    friend struct detail::dispatcher;
    friend class detail::local_adapter;
    using detail_outcome = detail::outcome;
    void send_event(std::string_view event, const json& data, const json& id, std::int64_t ack = 0, bool spread = false,
                    bool compress = true);
    void send_text(std::string text, bool compress = true);   // on the socket's thread, or posted there
    asio::awaitable<void> emit_as(std::string_view event, const json& data, bool compress) {
        send_event(event, data, nullptr, 0, false, compress);
        auto& t = *transport_;
        if (t.on_own_thread() && t.above_high_water()) return t.drained();
        return detail::done();
    }
    /// A handler's reply, or an exception event; dropped when the socket has closed meanwhile.
    void answer(const event& request, detail_outcome&& out);
    void answer_exception(const json& data, const json& id);

    detail::namespace_state& ns_;
    std::size_t worker_;   // the event loop it lives on, and its shard of the namespace
    std::shared_ptr<detail::gateway_state> owner_;   // the namespaces outlive their sockets
    std::shared_ptr<transport> transport_;   // a WebSocket connection, or any other transport
    const codec* codec_ = nullptr;           // the wire format its client speaks
    std::unique_ptr<decoder> decoder_;       // the codec's, when its events span messages
    std::string id_;
    std::any data_;
    std::vector<std::string> rooms_;   // joined by name; the id-room is kept apart, see in_own_room_
    /// In the room named by its id: reached through the shard's socket index, so that room costs
    /// no entry in the room map and no copy of the id.
    bool in_own_room_ = true;
    bool closed_by_server_ = false;
    bool recovered_ = false;
    bool gone_ = false;   // out of the namespace: rooms and lookups no longer know it
    // The message-rate bucket (options.message_rate): tokens left, as of when.
    double tokens_ = -1;   // -1: full, not yet used
    std::chrono::steady_clock::time_point tokens_at_{};

    struct pending_ack {
        pending_ack(const asio::any_io_executor& ex, std::chrono::milliseconds timeout) : timer(ex, timeout) {}
        asio::steady_timer timer;   // fires at the timeout; cancelled when the answer comes
        std::optional<json> reply;
    };
    std::int64_t last_ack_ = 0;
    /// Emits waiting for their acknowledgement, made on the first: most sockets never ask for one.
    std::unique_ptr<std::unordered_map<std::int64_t, std::shared_ptr<pending_ack>>> acks_;

    /// A client's "ack" event: true when it answered a pending emit_with_ack.
    bool acknowledge(event& e) {
        if (!acks_) return false;
        auto it = acks_->find(e.ack);
        if (it == acks_->end()) return false;
        it->second->reply = std::move(e.data);
        it->second->timer.cancel();
        return true;
    }
    /// The socket is gone: every wait for an acknowledgement ends now.
    void abandon_acks() {
        if (acks_)
            for (auto& [n, w] : *acks_) w->timer.cancel();
    }
};

} // namespace gw::v0
#endif
