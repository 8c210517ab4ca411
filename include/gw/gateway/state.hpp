// What a gateway keeps: its namespaces (handlers, hooks, middleware) and, per worker, their
// sockets and rooms; joining and leaving; a socket's own sends.
#pragma once
#include "../detail/asio.hpp"
#include "../detail/json.hpp"
#include "../net/server.hpp"
#include "../net/engineio.hpp"
#include "options.hpp"
#include "../net/transport.hpp"
#include "adapter.hpp"
#include "codec.hpp"
#include "handlers.hpp"
#include "socket.hpp"

#ifndef GATEWAY_NO_JSON
namespace gw::inline v0 {

namespace detail {

struct gateway_state;

/// A namespace: its handlers, hooks and middleware (set up before the loops run, read-only after),
/// and its members (its adapter).
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
    std::unique_ptr<adapter> members;   // its sockets and rooms: a local adapter, or one that wraps it
    std::unique_ptr<codec> sio_wire;    // Socket.IO packets of this namespace (gateway/socketio.hpp)
    std::atomic<std::size_t> connected{0};   // on every worker: changes per connection, not per message
    std::atomic<std::size_t> connected_socketio{0};   // of those, Socket.IO clients

    void join(socket& s, const std::string& room);
    void leave(socket& s, const std::string& room);

    /// The handshake middleware on a request: nullopt to let it in, else the refusal.
    std::optional<http_response> admit(http_request& req) const {
        try {
            for (auto& m : middleware)
                if (auto refused = m(req)) return refused;
        } catch (const http_refusal& r) {
            return r.response();
        }
        return std::nullopt;
    }
};

struct gateway_state : std::enable_shared_from_this<gateway_state> {
    explicit gateway_state(asio::io_context& io_) : io(io_) {}
    asio::io_context& io;
    std::unique_ptr<server> srv;   // made once the routing hook can point back here
    std::unique_ptr<engineio::server> eio;   // Socket.IO's sessions (socketio.hpp), when enabled
    socketio_options socketio;
    bool default_store = false;   // socketio.recovery.store is the memory store the gateway made itself
    std::vector<asio::io_context*> loops;   // the server's workers; loop 0 is io
    std::unique_ptr<codec> wire = std::make_unique<nest_codec>();
    std::vector<std::unique_ptr<namespace_state>> spaces;
    std::vector<hook<>> on_init;
    stages around;   // enhancers of every handler in every namespace
    std::size_t max_rooms = 1000;          // options.max_rooms_per_socket
    double rate = 0, burst = 0;            // options.message_rate and message_burst (resolved)
    overflow over_rate = overflow::drop;   // gateway_options::over_rate
    server_log log;   // options.log
    /// Set by a cluster (gw::redis::cluster): wraps each namespace's local adapter, those made
    /// before it and after it.
    std::function<std::unique_ptr<adapter>(namespace_state&, std::unique_ptr<adapter>)> wrap_adapter;
    /// Set by a cluster: its part of the metrics (and of /healthz).
    std::function<void(gw::metrics&)> cluster_metrics;

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
    members->add(s, room);
}

inline void detail::namespace_state::leave(socket& s, const std::string& room) {
    if (room == s.id_) {
        s.in_own_room_ = false;
        return;
    }
    auto it = std::find(s.rooms_.begin(), s.rooms_.end(), room);
    if (it == s.rooms_.end()) return;
    s.rooms_.erase(it);
    members->remove(s, room);
}

inline void socket::send_event(std::string_view event, const json& data, const json& id, std::int64_t ack, bool spread,
                               bool compress) {
    if (ack == 0 && !transport_->session_pid().empty()) {
        // Connection-state recovery: kept, with an offset, as a broadcast to its id-room would be.
        kept_broadcast b;
        b.rooms.push_back(id_);
        auto kept = ns_.owner->socketio.recovery.store->append(ns_.path, std::move(b), [&](std::string_view offset) {
            return codec_->prepare_kept(event, data, spread, offset, compress);
        });
        if (kept) {
            send_text(kept->text(), compress);
            return;
        }
        // A store kept in the cluster: the emit is a broadcast to its id-room, which the
        // namespace's adapter keeps there and delivers with the offset it got.
        const std::vector<std::string> own{id_}, none;
        const std::vector<const socket*> nobody;
        ns_.members->broadcast(std::make_shared<const broadcast_message>(std::string(event), data, ns_.owner->wire.get(),
                                                                         ns_.sio_wire.get(), nullptr, spread, compress),
                               selection_spec{own, none, nobody}, false);
        return;
    }
    send_text(codec_->encode(event, data, id, ack, spread), compress);
}

inline void socket::send_text(std::string text, bool compress) {
    if (transport_->on_own_thread()) {
        transport_->send_text(std::move(text), compress);
        return;
    }
    asio::post(transport_->executor(), [t = transport_, text = std::move(text), compress]() mutable {
        if (!t->is_open()) return;   // gone meanwhile, as a broadcast would skip it
        t->send_text(std::move(text), compress);
    });
}

inline void socket::answer(const event& request, detail::outcome&& out) {
    if (!connected()) return;   // the client left while its handler ran
    if (auto text = codec_->reply(request, out.event, out.data, out.spread)) send_text(std::move(*text));
}

inline void socket::answer_exception(const json& data, const json& id) {
    if (connected()) send_event("exception", data, id);
}

} // namespace gw::v0
#endif
