// gw::target: the recipients of an emit (a namespace or all, narrowed to rooms, less rooms and
// sockets), built with to() and except(). Its emit, count and ids go through each namespace's adapter (local_adapter.hpp).
#pragma once
#include "../detail/asio.hpp"
#include "../detail/json.hpp"
#include "adapter.hpp"

#ifndef GATEWAY_NO_JSON
namespace gw::inline v0 {

class socket;
class gateway;
class namespace_ref;

namespace detail {
struct namespace_state;
struct dispatcher;
class local_adapter;
} // namespace detail

/// The recipients of an emit: a namespace (or every namespace), narrowed to rooms, minus rooms and
/// sockets. Built with to()/except() from a socket, a namespace or the gateway; emit() serializes and
/// frames the event once and queues the same bytes for every recipient, on every worker.
class target {
public:
    /// Adds a room: the target becomes the union of its rooms (each socket receives once).
    target to(std::string room) && {
        rooms_.push_back(std::move(room));
        return std::move(*this);
    }
    target except(std::string room) && {
        except_rooms_.push_back(std::move(room));
        return std::move(*this);
    }
    target except(const socket& s) &&;
    /// Makes the emit volatile (Socket.IO's word): a recipient whose outbox is above its high-water
    /// mark misses it instead of queueing it. For what is stale by the time a slow client would
    /// read it (positions, typing indicators).
    target as_volatile() && {
        droppable_ = true;
        return std::move(*this);
    }
    /// Keeps the emit (or count, ids, emit_with_ack) to this process's sockets (Socket.IO's
    /// `local` flag): with a cluster adapter, the other nodes are not told. One process alone
    /// reaches the same sockets with or without it.
    target as_local() && {
        local_ = true;
        return std::move(*this);
    }
    /// compress(false) sends the emit uncompressed where permessage-deflate would compress it
    /// (Socket.IO's compress flag): for a message that carries a secret beside text an attacker
    /// chose (README: Compression). compress(true) is the default.
    target compress(bool on) && {
        compress_ = on;
        return std::move(*this);
    }

    /// Sends the event to every recipient: queued for those of this worker before emit() returns
    /// (so the target may be a temporary) and posted, once per worker, to the other workers; the
    /// awaitable completes at once.
    asio::awaitable<void> emit(std::string_view event, const json& data = nullptr) const;
    /// Emits the event to every recipient, each asked to acknowledge it, and waits until all have
    /// answered or timeout has passed: their answers, and how many did not answer. Each recipient
    /// gets its own acknowledgement id, so its event is encoded for it alone.
    asio::awaitable<acks> emit_with_ack(std::string_view event, const json& data, std::chrono::milliseconds timeout) const;
    /// How many sockets emit() would reach now, on every worker.
    asio::awaitable<std::size_t> count() const;
    /// The ids of the sockets emit() would reach now, on every worker.
    asio::awaitable<std::vector<std::string>> ids() const;
    /// The recipients described: id, handshake, rooms, data (Socket.IO's fetchSockets). With a
    /// cluster adapter, every node's (see gw::redis::cluster for the timeout).
    asio::awaitable<std::vector<socket_info>> fetch_sockets() const;
    /// Makes every recipient join rooms, or leave them (Socket.IO's socketsJoin, socketsLeave).
    asio::awaitable<void> sockets_join(std::vector<std::string> rooms) const;
    asio::awaitable<void> sockets_leave(std::vector<std::string> rooms) const;
    /// Disconnects every recipient (Socket.IO's disconnectSockets; close is passed on to Socket.IO
    /// peers in a cluster, whose sockets then close their whole connection).
    asio::awaitable<void> disconnect_sockets(bool close = false) const;

private:
    friend class socket;
    friend class namespace_ref;
    friend class gateway;
    std::vector<detail::namespace_state*> spaces_;
    std::vector<std::string> rooms_, except_rooms_;
    std::vector<const socket*> except_sockets_;
    bool droppable_ = false;   // as_volatile()
    bool local_ = false;       // as_local()
    bool compress_ = true;     // compress()
    selection_spec spec() const noexcept;   // the target as adapters read it
};

} // namespace gw::v0
#endif
