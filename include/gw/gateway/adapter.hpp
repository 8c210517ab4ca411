// The adapter seam (Socket.IO's word): a namespace's members and rooms, and its broadcasts,
// between the gateway and wherever the members are. The local adapter (local_adapter.hpp) keeps
// them per worker; a cluster adapter (Redis) will wrap a local one, so that an outage of the
// cluster still delivers locally.
#pragma once
#include "../detail/asio.hpp"
#include "../detail/json.hpp"
#include "../protocol/prepared.hpp"
#include "codec.hpp"

#ifndef GATEWAY_NO_JSON
namespace gw::inline v0 {

class socket;

/// Which sockets of a namespace an operation names: the union of rooms (every socket when there
/// is none), less the sockets in except_rooms and the sockets excepted. Views of the caller's
/// vectors, valid during the call; the sockets excepted are the calling worker's to compare.
struct selection_spec {
    const std::vector<std::string>& rooms;
    const std::vector<std::string>& except_rooms;
    const std::vector<const socket*>& except_sockets;
    /// This process's sockets only (Socket.IO's `local` flag): a cluster adapter tells no other
    /// node. The local adapter knows no other sockets.
    bool local = false;
};

/// What an emit with acknowledgements to many sockets collected (gw::target::emit_with_ack): the
/// answer of each socket that answered within the timeout, in the order they came, and how many
/// did not (they left, or were too slow). Socket.IO's `io.timeout(t).emit(..., (err, responses))`.
struct acks {
    std::vector<json> replies;
    std::size_t missing = 0;
};

/// A socket as any node can describe it (Socket.IO's fetchSockets): its id, its handshake as
/// Socket.IO's socket.handshake has it, its rooms (its id-room first) and its data when that holds
/// a gw::json (null otherwise: other types do not cross a process).
struct socket_info {
    std::string id;
    json handshake;
    std::vector<std::string> rooms;
    json data;
};

/// A namespace's members as the gateway uses them. Membership calls come from the socket's own
/// worker; broadcast, count and ids from any worker (or from a thread of none, with one worker).
class adapter {
public:
    virtual ~adapter() = default;

    /// A socket connected: it is in its own id-room from now on.
    virtual void add_socket(socket& s) = 0;
    /// A socket is gone, after leaving its rooms.
    virtual void remove_socket(socket& s) = 0;
    /// A socket joins or leaves a room (not its id-room: the socket keeps that itself).
    virtual void add(socket& s, const std::string& room) = 0;
    virtual void remove(socket& s, const std::string& room) = 0;

    /// Queues message for every socket the selection names, on every worker (and node); volatile
    /// skips sockets above their high-water mark. Returns once queued on this worker.
    virtual void broadcast(std::shared_ptr<const broadcast_message> message, const selection_spec& which, bool as_volatile) = 0;
    /// How many sockets, and which, the selection names now. The selection is read before the
    /// awaitable is returned, so it may be a temporary.
    virtual asio::awaitable<std::size_t> count(const selection_spec& which) = 0;
    virtual asio::awaitable<std::vector<std::string>> ids(const selection_spec& which) = 0;
    /// Emits the event to every socket the selection names, each asked to acknowledge it, and
    /// collects their answers until each has answered or timeout has passed.
    virtual asio::awaitable<acks> broadcast_with_ack(std::string event, json data, const selection_spec& which,
                                                     std::chrono::milliseconds timeout) = 0;

    /// The sockets the selection names, described (cluster-wide with a cluster adapter).
    virtual asio::awaitable<std::vector<socket_info>> fetch(const selection_spec& which) = 0;
    /// The sockets the selection names join, or leave, rooms; or are disconnected (close: their
    /// whole connection, with every namespace, where the platform has several).
    virtual asio::awaitable<void> join(const selection_spec& which, std::vector<std::string> rooms) = 0;
    virtual asio::awaitable<void> leave(const selection_spec& which, std::vector<std::string> rooms) = 0;
    virtual asio::awaitable<void> disconnect(const selection_spec& which, bool close) = 0;
    /// Every room with members, the sockets' id-rooms included (Socket.IO's allRooms).
    virtual asio::awaitable<std::vector<std::string>> all_rooms(bool local) = 0;

    /// The socket with this id on a worker, or nullptr.
    virtual socket* find(std::size_t worker, std::string_view id) const = 0;
    /// Rooms with members (id-rooms aside), for metrics.
    virtual std::size_t rooms() const noexcept = 0;
};

} // namespace gw::v0
#endif
