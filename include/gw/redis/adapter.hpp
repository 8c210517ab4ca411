// The Redis adapter: several gateway.hpp processes, and Node Socket.IO servers using
// @socket.io/redis-adapter 8.x (or @socket.io/redis-streams-adapter 0.3.x, in streams mode) with the
// same Redis and key, serve one cluster. Each namespace's
// local adapter is wrapped: what it does locally it still does (so a Redis outage still delivers
// locally), and broadcasts, requests and answers go through Redis in the adapter's wire format
// (protocol/socketio_redis.hpp). Behind GATEWAY_REDIS.
#pragma once
#include "../detail/asio.hpp"
#include "../detail/json.hpp"
#include "../protocol/socketio_redis.hpp"
#include "../gateway/facade.hpp"
#include "client.hpp"
#include "shards.hpp"
#include "forward.hpp"

namespace gw::inline v0::redis {

/// How the nodes talk through Redis.
enum class cluster_mode {
    /// @socket.io/redis-adapter's createAdapter: PUBLISH and PSUBSCRIBE, msgpack broadcasts,
    /// requests on their own channels. Any Redis.
    classic,
    /// Its createShardedAdapter (Redis 7): SPUBLISH and SSUBSCRIBE, the ClusterAdapter's messages
    /// on the namespace's channel, and a channel per room subscribed while the room has members
    /// here (its "dynamic" subscription mode). One Redis or a Redis Cluster, found out by itself
    /// (CLUSTER SLOTS): in a cluster each channel is published, subscribed and counted at the
    /// master serving its hash slot, following MOVED and slot migrations.
    sharded,
    /// @socket.io/redis-streams-adapter's createAdapter (0.3.x): broadcasts, joins, leaves and
    /// disconnects are entries of a capped Redis stream that every node reads; requests and answers
    /// go by pub/sub. A broadcast's offset is its entry id, and sessions wait in Redis, so that
    /// connection-state recovery works on any node, after the death of the one a client was on.
    streams,
};

/// How a gateway joins a cluster. Every field has a default.
struct cluster_options {
    /// Where Redis is; empty: the REDIS_URL environment variable, else redis://localhost:6379
    /// (node-redis' default), so one binary runs alone or in a cluster by its environment.
    std::string url{};
    /// The channels' prefix: the adapter's `key` option; nodes with the same key and Redis form a cluster.
    std::string key = "socket.io";
    /// classic, as createAdapter's default; sharded for Redis 7's sharded pub/sub; streams for
    /// recovery across nodes.
    cluster_mode mode = cluster_mode::classic;
    /// streams: the stream's name and the length it is capped at (XADD MAXLEN ~), the streams
    /// adapter's streamName and maxLen: a client can recover what the last 10000 entries hold.
    std::string stream = "socket.io";
    std::size_t stream_max_len = 10'000;
    /// streams: the sessions' keys (the streams adapter's sessionKeyPrefix): a dropped socket's under
    /// PREFIX<pid>; the live sockets of a node under PREFIXnode:<uid>, refreshed while it lives, so
    /// that they can be recovered after it dies.
    std::string session_prefix = "sio:session:";
    /// How long a cluster-wide request (fetch_sockets, count, ids, emit_with_ack, server-side
    /// emits with acks) waits for the other nodes before it returns what came: the adapter's
    /// requestsTimeout.
    std::chrono::milliseconds requests_timeout{5'000};
    /// Engine.IO long-polling without sticky sessions: a polling request that reaches a node which
    /// does not hold its session is run at the node that does, through Redis (each node's sids
    /// start with its tag). Off: such a request gets 400 "Session ID unknown", as without a cluster.
    bool forward_polling = true;
    /// How long a forwarded request waits for the session's node; 0: the Engine.IO options'
    /// ping_interval + ping_timeout (a held poll is answered by the next ping at the latest, and a
    /// node silent that long has lost its sessions anyway). No answer in time: 400 "Session ID unknown".
    std::chrono::milliseconds forward_timeout{0};
    /// Forwarded requests in flight at once per node, each way (sent, and served for others); more
    /// are answered 503. Each is a held poll of a client on the wrong node, so about the number of
    /// polling clients over the node count.
    std::size_t max_forwarded = 10'000;
    /// The Redis links' reconnection and buffering (see gw::redis::options); its log and on_state
    /// default to the gateway's log.
    options link{};
};

/// What a cluster did, readable from any thread.
struct cluster_stats {
    bool connected = false;         ///< the Redis links are up (sharded over a Redis Cluster: every master's)
    std::uint64_t published = 0;    ///< messages published (broadcasts, requests, answers)
    std::uint64_t received = 0;     ///< messages received from other nodes and emitters
    std::uint64_t dropped = 0;      ///< publishes that did not fit the buffer while Redis was away
    std::uint64_t reconnects = 0;   ///< Redis connections made again after a loss
    std::uint64_t timeouts = 0;     ///< cluster-wide requests that returned partial results
    std::uint64_t forwarded = 0;          ///< polling requests sent to their session's node
    std::uint64_t forwards_served = 0;    ///< polling requests of other nodes run here
    std::uint64_t forwards_unanswered = 0;   ///< forwarded, and no node had the session in time: 400
    std::uint64_t forwards_refused = 0;   ///< over max_forwarded (here or at the owner): 503
};

namespace detail {

/// 6 random letters and digits: a node's uid in a namespace, as the adapter makes them.
inline std::string node_uid() {
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char raw[6];
    RAND_bytes(raw, sizeof raw);
    std::string out;
    for (unsigned char c : raw) out += alphabet[c % 62];
    return out;
}

/// 16 hex digits: a node's uid in the sharded adapter's format.
inline std::string hex_uid() {
    unsigned char raw[8];
    RAND_bytes(raw, sizeof raw);
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : raw) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

/// The strings of a JSON list (rooms): anything else in it is skipped.
inline std::vector<std::string> strings_of(const json& v) {
    std::vector<std::string> out;
    if (v.is_array())
        for (const auto& r : v)
            if (r.is_string()) out.push_back(r.get<std::string>());
    return out;
}

/// An event's arguments from [event, ...args], as a broadcast_message carries them: [event, x] is
/// x itself; no argument or several are the list, spread.
inline json arguments_of(const json& packet_data, bool& spread) {
    spread = packet_data.size() != 2;
    if (!spread) return packet_data[1];
    json args = json::array();
    for (std::size_t i = 1; i < packet_data.size(); ++i) args.push_back(packet_data[i]);
    return args;
}

/// Sockets as the adapters answer a fetch: [{id, handshake, rooms, data}].
inline json sockets_json(const std::vector<socket_info>& found) {
    json sockets = json::array();
    for (const auto& s : found)
        sockets.push_back(json{{"id", s.id}, {"handshake", s.handshake}, {"rooms", s.rooms}, {"data", s.data}});
    return sockets;
}

/// How long a broadcast's recipients may take to acknowledge: its flags.timeout, else the default.
inline std::chrono::milliseconds ack_timeout(const sio_redis::selection& opts, std::chrono::milliseconds fallback) {
    if (opts.flags.is_object() && opts.flags.contains("timeout") && opts.flags["timeout"].is_number())
        return std::chrono::milliseconds(opts.flags["timeout"].get<std::int64_t>());
    return fallback;
}

struct space;

/// The Redis links of a cluster, on the gateway's first loop, and the namespaces using them.
struct cluster_link : std::enable_shared_from_this<cluster_link> {
    cluster_link(asio::io_context& io_, const url& where, const cluster_options& o)
        : io(io_), key(o.key), mode(o.mode), timeout(o.requests_timeout),
          stream(o.stream), max_len(std::to_string(o.stream_max_len)), session_prefix(o.session_prefix),
          read_started(io_, asio::steady_timer::time_point::max()), beat(io_),
          reader_up(std::make_shared<asio::steady_timer>(io_, asio::steady_timer::time_point::max())) {
        // Every mode has a command link and a subscriber to the URL's server (forwarded polling
        // requests, the streams mode's sessions); the sharded mode routes its channels by slot too.
        pub.emplace(io.get_executor(), where, o.link);
        sub.emplace(io.get_executor(), where, [this](const message& m) { on_message(m); }, o.link);
        if (mode == cluster_mode::sharded) {
            shards = std::make_shared<shard_router>(io.get_executor(), where, o.link, [this](const message& m) { on_message(m); });
            shards->start();
        }
        if (mode != cluster_mode::streams) return;
        options ro = o.link;
        ro.on_state = [told = o.link.on_state, up_timer = reader_up](bool up, std::string_view why) {
            if (told) told(up, why);
            if (up) up_timer->cancel();   // ready() waits for the reader too
        };
        reader = std::make_unique<client>(io_.get_executor(), where, std::move(ro));
    }

    asio::io_context& io;   // the links' loop: every member below but the counters is used there only
    std::string key;
    cluster_mode mode;
    std::chrono::milliseconds timeout;
    /// classic: a command link and a subscriber.
    std::optional<client> pub;
    std::optional<subscriber> sub;
    /// sharded: one Redis 7 or a Redis Cluster's masters, found out at run time.
    std::shared_ptr<shard_router> shards;
    /// The namespaces, owned by their adapters (a namespace's adapter lives as long as its gateway).
    std::vector<std::weak_ptr<space>> spaces;
    /// Those alive now.
    std::vector<std::shared_ptr<space>> live() const {
        std::vector<std::shared_ptr<space>> out;
        for (const auto& w : spaces)
            if (auto sp = w.lock()) out.push_back(std::move(sp));
        return out;
    }
    std::atomic<bool> closed{false};   // read by metrics on any worker
    /// serverSideEmit's handlers by (namespace, event): set before the loops run, read on the link's loop.
    std::map<std::pair<std::string, std::string>, std::function<json(const json&)>> server_handlers;
    std::atomic<std::uint64_t> published{0}, received{0}, timeouts{0};
    /// Engine.IO polling forwarding (options.forward_polling, Socket.IO enabled); else null.
    std::shared_ptr<forwarder> forward;

    // The streams mode.
    std::unique_ptr<client> reader;   // the blocking XREAD, on a connection of its own
    std::string stream, max_len, session_prefix;
    std::string node = hex_uid();     // this process: the hash of its live sessions is PREFIXnode:<node>
    std::string last_read;            // the entry read last (known once reading has started)
    bool reading = false;
    asio::steady_timer read_started;  // cancelled once reading has started: ready() waits for it
    /// Sessions are kept in Redis (the gateway recovers connections, and left the store to the
    /// cluster), for this long after a socket drops.
    bool keeps_sessions = false;
    /// Which socket holds each pid's entry in the live hash. A recovered socket takes it over while
    /// its predecessor's farewell may still run: the predecessor's room leaves and removal must not
    /// overwrite or delete the entry (a socket's identity, only compared, never dereferenced).
    std::unordered_map<std::string, const void*> live_holders;
    std::chrono::milliseconds window{120'000};
    asio::steady_timer beat;          // refreshes the live sessions' expiry
    std::shared_ptr<asio::steady_timer> reader_up;   // cancelled each time the reader's connection is up
    std::string live_key() const { return session_prefix + "node:" + node; }
    std::string nodes_key() const { return session_prefix + "nodes"; }
    /// The live sessions' hash outlives its last refresh by the recovery window.
    std::string live_ttl() const { return std::to_string((window + 2 * beat_every).count()); }
    static constexpr std::chrono::milliseconds beat_every{10'000};
    /// An entry of the stream (not of this node's: the namespace skips those) for its namespace.
    void on_entry(std::string id, json m);

    /// Runs f on the links' loop: now when called there, else posted.
    template <class F> void on_loop(F&& f) {
        if (io.get_executor().running_in_this_thread()) f();
        else asio::post(io, std::forward<F>(f));
    }

    /// PUBLISH (SPUBLISH, at the master serving the channel, when sharded) from any thread.
    void publish(std::string channel, std::string payload, bool sharded = false) {
        on_loop([self = shared_from_this(), channel = std::move(channel), payload = std::move(payload), sharded]() mutable {
            if (self->closed) return;
            const bool sent = sharded && self->shards ? self->shards->spublish(channel, std::move(payload))
                                                      : self->pub && self->pub->send("PUBLISH", channel, payload);
            if (sent) self->published.fetch_add(1, std::memory_order_relaxed);
        });
    }

    void on_message(const message& m);
    void close() {
        closed = true;
        if (forward) forward->close();
        if (pub) pub->close();
        if (sub) sub->close();
        if (shards) shards->close();
        if (reader) reader->close();
        beat.cancel();
        read_started.cancel();
        reader_up->cancel();
    }
};

/// What a node waits for after a request: the answers, until `expected` came or the timeout.
struct pending_request {
    explicit pending_request(const asio::any_io_executor& ex) : timer(ex, asio::steady_timer::time_point::max()) {}
    std::size_t expected = 0;
    std::vector<json> answers;
    asio::steady_timer timer;
    /// broadcast with acks: each node says how many clients it asked (type 8), then each answer
    /// comes alone (type 9).
    bool acks = false;
    std::size_t counts = 0;   // type-8 answers so far
    std::size_t clients = 0;  // the clients they announced
    void check() {
        const bool done = acks ? counts >= expected && answers.size() >= clients : answers.size() >= expected;
        if (done) timer.cancel();
    }
};

/// One namespace in the cluster: its channels, its uid, the requests it waits for. Shared by its
/// adapter and the coroutines that serve it, so that none outlives what it uses.
struct space : std::enable_shared_from_this<space> {
    std::weak_ptr<gw::detail::gateway_state> owner;
    gw::detail::namespace_state* ns = nullptr;   // lives as long as owner does
    gw::detail::local_adapter* local = nullptr;  // ns's own, wrapped
    std::shared_ptr<cluster_link> link;
    std::string nsp, uid;
    /// classic: requests, shared answers, answers to this node. sharded: the namespace's channel
    /// (everything but answers) in request_channel, answers to this node in own_response_channel.
    std::string request_channel, response_channel, own_response_channel;
    bool sharded = false, streams = false;
    /// The messages are the ClusterAdapter's {uid, nsp, type, data} (sharded and streams modes).
    bool clustered() const noexcept { return sharded || streams; }
    std::unordered_map<std::string, std::size_t> room_members;   // sharded: members here, per room (link's loop)
    /// What the cluster sent, handled one after the other on the link's loop: a join, a leave or a
    /// disconnect is applied on every worker before the next broadcast is delivered on any.
    struct inbound {
        enum class kind : std::uint8_t { broadcast, request, cluster } what;
        std::string payload;   // a broadcast's bytes
        json message;          // a request, or a ClusterAdapter message
        std::string offset{};  // streams: the entry it was
    };
    std::deque<inbound> inbox;
    bool draining = false;
    void enqueue(inbound in);
    asio::awaitable<void> drain();
    std::unordered_map<std::string, std::shared_ptr<pending_request>> waiting;   // by requestId, link's loop
    bool gone = false;

    void on_message(const message& m);
    void on_broadcast(const std::string& payload);
    void on_response(json response);
    asio::awaitable<void> answer_request(json request);
    /// Publishes request (a requestId is added) and collects the answers of the other nodes;
    /// count_self: the node count includes this one (fetch and rooms ask every subscriber).
    asio::awaitable<std::vector<json>> ask(json request, bool msgpack, bool acks, std::chrono::milliseconds timeout);
    /// A broadcast of another node to this node's sockets; with its offset (streams) when
    /// connection-state recovery keeps it.
    void deliver(const sio_redis::broadcast& b, const std::string& offset = {}) const;
    /// A broadcast of this node's, to its own sockets, once the stream gave it an offset (none:
    /// Redis was away).
    void deliver_own(std::shared_ptr<const broadcast_message> message, const sio_redis::selection& opts, bool as_volatile,
                     const std::string& offset) const;
    /// Connection-state recovery (streams): a broadcast's Socket.IO form with its entry id as its
    /// last argument; nullptr when it has none, recovery is off here, or it is volatile.
    std::shared_ptr<const prepared> kept_form(const std::string& name, const json& args, bool spread, const std::string& offset,
                                              bool as_volatile, bool compress = true) const;
    /// A broadcast of the stream (entry id) as recovery replays it to the session r, or nullopt when
    /// it did not reach r's socket (not its rooms, volatile, with an acknowledgement).
    std::optional<kept_broadcast> missed_one(const json& m, const std::string& id, const session_record& r) const;

    // The sharded and streams modes: ClusterAdapter messages {uid, nsp, type, data}.
    void on_cluster_message(json m);
    asio::awaitable<void> answer_cluster(json m, std::string offset);
    void on_cluster_response(const json& m);
    /// A message of this node in the ClusterAdapter's format.
    json cluster_message(int type, json data) const {
        json m{{"uid", uid}, {"nsp", nsp}, {"type", type}};
        m["data"] = std::move(data);
        return m;
    }
    /// Publishes a ClusterAdapter message to the namespace's channel, or to a room's: SPUBLISH,
    /// JSON unless it holds binary (sharded); PUBLISH, msgpack (streams).
    void publish_cluster(const json& m, const std::string& channel) const {
        if (streams) link->publish(channel, sio_redis::to_msgpack(m));
        else link->publish(channel, sio_redis::encode_cluster(m), true);
    }
    /// Streams: appends a ClusterAdapter message to the stream; then(entry id, or empty when Redis
    /// did not take it) runs on the links' loop once Redis answered. From any thread.
    void append(const json& m, std::function<void(std::string)> then = nullptr) const;
    /// A room with its first member here, or its last gone: its channel subscribed or not.
    void room_changed(const std::string& room, bool joined);
};

inline void cluster_link::on_message(const message& m) {
    received.fetch_add(1, std::memory_order_relaxed);
    if (forward && m.pattern.empty() && m.channel == forward->channel()) {
        forward->on_message(m);
        return;
    }
    for (const auto& sp : live()) sp->on_message(m);
}

inline void space::on_message(const message& m) {
    if (gone) return;
    if (m.sharded || streams) {
        if (m.channel != request_channel && m.channel != own_response_channel &&
            !(m.channel.starts_with(request_channel) && m.channel.size() > request_channel.size()))
            return;
        std::string error;
        auto v = sio_redis::decode_message(m.payload, error);
        if (v && v->is_object()) on_cluster_message(std::move(*v));
        return;
    }
    if (!m.pattern.empty()) {
        if (sio_redis::room_of(m.channel, link->key, nsp)) enqueue({inbound::kind::broadcast, m.payload, json()});
        return;
    }
    if (m.channel != request_channel && m.channel != response_channel && m.channel != own_response_channel) return;
    std::string error;
    auto v = sio_redis::decode_message(m.payload, error);
    if (!v || !v->is_object()) return;   // not a message of the adapter's: ignored, as the adapter does
    // Requests wait their turn behind the broadcasts Redis delivered before them; answers to this
    // node's own requests are taken at once.
    if (m.channel == request_channel) enqueue({inbound::kind::request, std::string(), std::move(*v)});
    else on_response(std::move(*v));
}

inline void space::enqueue(inbound in) {
    inbox.push_back(std::move(in));
    if (draining) return;
    draining = true;
    auto self = shared_from_this();
    asio::co_spawn(link->io, drain(), [self](std::exception_ptr e) {
        if (!e) return;   // drain() let go of the queue itself
        self->draining = false;
        if (auto g = self->owner.lock()) g->log.report("handling a cluster message")(e);
    });
}

inline asio::awaitable<void> space::drain() {
    auto self = shared_from_this();
    while (!inbox.empty() && !gone) {
        inbound in = std::move(inbox.front());
        inbox.pop_front();
        try {
            switch (in.what) {
            case inbound::kind::broadcast: on_broadcast(in.payload); break;
            case inbound::kind::request:
                if (in.message.value("uid", std::string()) != uid) co_await answer_request(std::move(in.message));
                break;   // this node's own: applied locally already
            case inbound::kind::cluster: co_await answer_cluster(std::move(in.message), std::move(in.offset)); break;
            }
        } catch (const std::exception& e) {   // one bad message does not stop the ones behind it
            if (auto g = owner.lock()) g->log.say(log_level::error, std::string("a cluster message: ") + e.what());
        }
    }
    draining = false;
}

inline std::shared_ptr<const prepared> space::kept_form(const std::string& name, const json& args, bool spread,
                                                        const std::string& offset, bool as_volatile, bool compress) const {
    if (offset.empty() || !link->keeps_sessions || as_volatile) return nullptr;
    return ns->sio_wire->prepare_kept(name, args, spread, offset, compress);
}

inline void space::deliver(const sio_redis::broadcast& b, const std::string& offset) const {
    auto g = owner.lock();
    if (!g) return;
    // [event] sends no argument, [event, x] one: x itself; more: the list, spread.
    bool spread = false;
    json args = arguments_of(b.data, spread);
    std::string name = b.data[0].get<std::string>();
    auto kept = kept_form(name, args, spread, offset, b.opts.is_volatile(), b.opts.compress());
    auto message = std::make_shared<const broadcast_message>(std::move(name), std::move(args), g->wire.get(), ns->sio_wire.get(),
                                                             std::move(kept), spread, b.opts.compress());
    const std::vector<const socket*> none;
    local->broadcast(std::move(message), selection_spec{b.opts.rooms, b.opts.except, none, true}, b.opts.is_volatile());
}

inline void space::deliver_own(std::shared_ptr<const broadcast_message> message, const sio_redis::selection& opts,
                               bool as_volatile, const std::string& offset) const {
    auto g = owner.lock();
    if (!g || gone) return;
    if (auto kept = kept_form(message->name(), message->data(), message->spread(), offset, as_volatile, message->compress()))
        message = std::make_shared<const broadcast_message>(message->name(), message->data(), g->wire.get(), ns->sio_wire.get(),
                                                            std::move(kept), message->spread(), message->compress());
    const std::vector<const socket*> none;
    local->broadcast(std::move(message), selection_spec{opts.rooms, opts.except, none, true}, as_volatile);
}

inline std::optional<kept_broadcast> space::missed_one(const json& m, const std::string& id, const session_record& r) const {
    const json data = m.value("data", json());
    if (!data.is_object() || data.contains("requestId")) return std::nullopt;
    const json packet = data.value("packet", json());
    if (!packet.is_object() || packet.value("type", 2) != 2 || packet.contains("id")) return std::nullopt;
    const json d = packet.value("data", json());
    if (!d.is_array() || d.empty() || !d[0].is_string()) return std::nullopt;
    sio_redis::selection opts;
    if (!sio_redis::selection::read(data.value("opts", json()), opts) || opts.is_volatile()) return std::nullopt;
    kept_broadcast b;
    b.offset = id;
    b.rooms = std::move(opts.rooms);
    b.except_rooms = std::move(opts.except);
    if (!gw::detail::reached(b, r)) return std::nullopt;
    bool spread = false;
    json args = arguments_of(d, spread);
    b.message = ns->sio_wire->prepare_kept(d[0].get<std::string>(), args, spread, id);
    return b;
}

inline void space::append(const json& m, std::function<void(std::string)> then) const {
    std::vector<std::string> args;
    args.push_back("XADD");
    args.push_back(link->stream);
    args.push_back("MAXLEN");
    args.push_back("~");
    args.push_back(link->max_len);
    args.push_back("*");
    for (auto& f : sio_redis::stream_fields(m)) args.push_back(std::move(f));
    auto go = [l = link, args = std::move(args), then = std::move(then)]() -> asio::awaitable<void> {
        std::string id;
        try {
            auto r = co_await l->pub->command(args);
            if (r.is_string()) {
                id = std::move(r.str);
                l->published.fetch_add(1, std::memory_order_relaxed);
            }
        } catch (const std::system_error&) {   // Redis away, or the command dropped: no offset
        }
        if (then) then(std::move(id));
    };
    asio::co_spawn(link->io, std::move(go), [o = owner](std::exception_ptr e) {
        if (auto g = o.lock()) g->log.report("a broadcast to the cluster's stream")(e);
    });
}

inline void cluster_link::on_entry(std::string id, json m) {
    received.fetch_add(1, std::memory_order_relaxed);
    const std::string nsp = m.value("nsp", std::string()), from = m.value("uid", std::string());
    for (const auto& sp : live())
        if (sp->nsp == nsp && sp->uid != from && !sp->gone) sp->enqueue({space::inbound::kind::cluster, std::string(), m, id});
}

inline void space::on_broadcast(const std::string& payload) {
    std::string error;
    auto b = sio_redis::broadcast::decode(payload, error);
    if (!b || b->uid == uid || b->nsp != nsp) return;
    deliver(*b);
}

inline asio::awaitable<void> space::answer_request(json request) {
    auto self = shared_from_this();   // lives until this answer is sent
    auto g = owner.lock();
    if (!g) co_return;
    const int type = request.value("type", -1);
    const json request_id = request.value("requestId", json());
    sio_redis::selection opts;
    sio_redis::selection::read(request.value("opts", json()), opts);
    const std::vector<const socket*> none;
    const selection_spec which{opts.rooms, opts.except, none, true};
    auto respond = [&](json answer, bool msgpack) {
        answer["requestId"] = request_id;
        link->publish(response_channel, msgpack ? sio_redis::to_msgpack(answer) : answer.dump());
    };
    using t = sio_redis::request_type;
    switch (static_cast<t>(type)) {
    case t::sockets: {   // legacy: ids in rooms
        sio_redis::selection legacy;
        legacy.rooms = strings_of(request.value("rooms", json()));
        const selection_spec in_rooms{legacy.rooms, legacy.except, none, true};
        auto ids = co_await local->ids(in_rooms);
        respond(json{{"sockets", ids}}, false);
        break;
    }
    case t::all_rooms: {
        auto rooms = co_await local->all_rooms(true);
        respond(json{{"rooms", rooms}}, false);
        break;
    }
    case t::remote_join:
    case t::remote_leave: {
        if (request.contains("sid")) {   // legacy form: one socket, one room, answered
            sio_redis::selection one;
            one.rooms.push_back(request.value("sid", std::string()));
            const selection_spec sid{one.rooms, one.except, none, true};
            std::vector<std::string> room{request.value("room", std::string())};
            if (type == 2) co_await local->join(sid, std::move(room));
            else co_await local->leave(sid, std::move(room));
            respond(json::object(), false);
            break;
        }
        auto rooms = strings_of(request.value("rooms", json()));
        if (type == 2) co_await local->join(which, std::move(rooms));
        else co_await local->leave(which, std::move(rooms));
        break;
    }
    case t::remote_disconnect: co_await local->disconnect(which, request.value("close", false)); break;
    case t::remote_fetch: {
        auto found = co_await local->fetch(which);
        respond(json{{"sockets", sockets_json(found)}}, false);
        break;
    }
    case t::server_side_emit: {
        const json data = request.value("data", json::array());
        if (!data.is_array() || data.empty() || !data[0].is_string()) break;
        auto h = link->server_handlers.find({nsp, data[0].get<std::string>()});
        if (h == link->server_handlers.end()) break;   // no listener: no answer, as a Node server gives none
        json args = json::array();
        for (std::size_t i = 1; i < data.size(); ++i) args.push_back(data[i]);
        json result = h->second(args);
        if (!request_id.is_null()) {
            json answer{{"type", 6}, {"data", std::move(result)}};
            answer["requestId"] = request_id;
            link->publish(response_channel, answer.dump());   // always the shared channel
        }
        break;
    }
    case t::broadcast: {   // with acknowledgements
        const json packet = request.value("packet", json());
        if (!packet.is_object() || !packet.contains("data")) break;
        const json& d = packet["data"];
        if (!d.is_array() || d.empty() || !d[0].is_string()) break;
        bool spread = false;
        json args = arguments_of(d, spread);
        const auto wait = ack_timeout(opts, link->timeout);
        auto l = link;
        const std::string channel = response_channel;
        auto on_reply = [l, channel, request_id](std::optional<json> reply) {
            if (!reply) return;   // no answer from that client: nothing is sent, as from a Node server
            json answer{{"type", 9}, {"packet", std::move(*reply)}};
            answer["requestId"] = request_id;
            l->publish(channel, sio_redis::to_msgpack(answer));
        };
        const std::size_t n = co_await local->ask_each(which, d[0].get<std::string>(), std::move(args), spread, wait, on_reply);
        respond(json{{"type", 8}, {"clientCount", n}}, false);
        break;
    }
    default: break;   // responses and unknown types are not requests
    }
}

inline void space::on_response(json response) {
    const json id = response.value("requestId", json());
    if (!id.is_string() && !id.is_number()) return;
    auto it = waiting.find(id.is_string() ? id.get<std::string>() : id.dump());
    if (it == waiting.end()) return;   // another node's, or too late
    auto& p = *it->second;
    const int type = response.value("type", -1);
    if (p.acks) {
        if (type == 8) {
            ++p.counts;
            p.clients += response.value("clientCount", std::size_t{0});
        } else if (type == 9) {
            p.answers.push_back(response.value("packet", json()));
        }
    } else {
        p.answers.push_back(std::move(response));
    }
    p.check();
}

inline void space::on_cluster_message(json m) {
    if (m.value("uid", std::string()) == uid || m.value("nsp", std::string()) != nsp) return;   // ours, or another namespace's
    const int type = m.value("type", -1);
    if (type == 8 || type == 10 || type == 11 || type == 12) {
        on_cluster_response(m);
        return;
    }
    enqueue({inbound::kind::cluster, std::string(), std::move(m)});
}

inline asio::awaitable<void> space::answer_cluster(json m, std::string offset) {
    auto self = shared_from_this();
    auto g = owner.lock();
    if (!g) co_return;
    const int type = m.value("type", -1);
    const std::string from = m.value("uid", std::string());
    json data = m.value("data", json::object());
    if (!data.is_object()) co_return;
    const json request_id = data.value("requestId", json());
    sio_redis::selection opts;
    sio_redis::selection::read(data.value("opts", json()), opts);
    const std::vector<const socket*> none;
    const selection_spec which{opts.rooms, opts.except, none, true};
    const std::string reply_to = sio_redis::room_channel(link->key, nsp, from);
    auto respond = [&](int reply_type, json body) {
        body["requestId"] = request_id;
        publish_cluster(cluster_message(reply_type, std::move(body)), reply_to);
    };
    using t = sio_redis::cluster_type;
    switch (static_cast<t>(type)) {
    case t::broadcast: {
        const json packet = data.value("packet", json());
        if (!packet.is_object()) break;
        const json d = packet.value("data", json());
        if (!d.is_array() || d.empty() || !d[0].is_string()) break;
        if (request_id.is_null()) {
            sio_redis::broadcast b;
            b.uid = from;
            b.nsp = nsp;
            b.data = d;
            b.opts = opts;
            deliver(b, offset);
            break;
        }
        bool spread = false;
        json args = arguments_of(d, spread);
        const auto wait = ack_timeout(opts, link->timeout);
        auto on_reply = [self, reply_to, request_id](std::optional<json> reply) {
            if (!reply) return;
            json body{{"packet", std::move(*reply)}};
            body["requestId"] = request_id;
            self->publish_cluster(self->cluster_message(12, std::move(body)), reply_to);
        };
        const std::size_t n = co_await local->ask_each(which, d[0].get<std::string>(), std::move(args), spread, wait, on_reply);
        respond(11, json{{"clientCount", n}});
        break;
    }
    case t::sockets_join: co_await local->join(which, strings_of(data.value("rooms", json()))); break;
    case t::sockets_leave: co_await local->leave(which, strings_of(data.value("rooms", json()))); break;
    case t::disconnect_sockets: co_await local->disconnect(which, data.value("close", false)); break;
    case t::fetch_sockets: {
        auto found = co_await local->fetch(which);
        respond(8, json{{"sockets", sockets_json(found)}});
        break;
    }
    case t::server_side_emit: {
        const json packet = data.value("packet", json());
        if (!packet.is_array() || packet.empty() || !packet[0].is_string()) break;
        auto h = link->server_handlers.find({nsp, packet[0].get<std::string>()});
        if (h == link->server_handlers.end()) break;
        json args = json::array();
        for (std::size_t i = 1; i < packet.size(); ++i) args.push_back(packet[i]);
        json result = h->second(args);
        if (!request_id.is_null()) respond(10, json{{"packet", std::move(result)}});
        break;
    }
    default: break;   // heartbeats and the adapter's close: the Redis adapters send none
    }
}

inline void space::on_cluster_response(const json& m) {
    const json data = m.value("data", json());
    if (!data.is_object()) return;
    const json id = data.value("requestId", json());
    if (!id.is_string()) return;
    auto it = waiting.find(id.get<std::string>());
    if (it == waiting.end()) return;
    auto& p = *it->second;
    switch (m.value("type", -1)) {
    case 8: p.answers.push_back(data); break;   // {requestId, sockets}, as the classic answer reads
    case 10: p.answers.push_back(json{{"data", data.value("packet", json())}}); break;
    case 11:
        ++p.counts;
        p.clients += data.value("clientCount", std::size_t{0});
        break;
    case 12: p.answers.push_back(data.value("packet", json())); break;
    default: return;
    }
    p.check();
}

inline void space::room_changed(const std::string& room, bool joined) {
    auto& n = room_members[room];
    if (joined ? ++n != 1 : (n == 0 || --n != 0)) return;
    if (!joined) room_members.erase(room);
    const std::string channel = sio_redis::room_channel(link->key, nsp, room);
    auto change = [l = link, channel, joined]() -> asio::awaitable<void> {
        if (joined) co_await l->shards->ssubscribe(channel);
        else co_await l->shards->sunsubscribe(channel);
    };
    asio::co_spawn(link->io, std::move(change), [self = shared_from_this()](std::exception_ptr e) {
        if (auto g = self->owner.lock()) g->log.report("a room's cluster channel")(e);
    });
}

inline asio::awaitable<std::vector<json>> space::ask(json request, bool msgpack, bool acks, std::chrono::milliseconds timeout) {
    auto self = shared_from_this();
    // Every node subscribed to the request channel is counted, this one too.
    std::size_t others = 0;
    try {
        // Sharded, the master serving the channel counts (a Redis Cluster node counts its own).
        reply r;
        if (sharded) r = co_await link->shards->shardnumsub(request_channel);
        else r = co_await link->pub->command("PUBSUB", "NUMSUB", request_channel);
        if (r.is_array() && r.elements.size() == 2 && r.elements[1].integer > 1)
            others = static_cast<std::size_t>(r.elements[1].integer - 1);
    } catch (const std::system_error&) {   // Redis away: this node's part only
        co_return std::vector<json>();
    }
    if (others == 0) co_return std::vector<json>();
    const std::string id = node_uid() + node_uid() + node_uid();
    request["uid"] = uid;
    if (clustered()) {
        request["nsp"] = nsp;
        request["data"]["requestId"] = id;
    } else {
        request["requestId"] = id;
    }
    auto p = std::make_shared<pending_request>(link->io.get_executor());
    p->expected = others;
    p->acks = acks;
    waiting.emplace(id, p);
    if (clustered()) publish_cluster(request, request_channel);
    else link->publish(request_channel, msgpack ? sio_redis::to_msgpack(request) : request.dump());
    p->timer.expires_after(timeout);
    co_await p->timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    waiting.erase(id);
    const bool complete = acks ? p->counts >= p->expected && p->answers.size() >= p->clients : p->answers.size() >= p->expected;
    if (!complete) link->timeouts.fetch_add(1, std::memory_order_relaxed);
    co_return std::move(p->answers);
}

/// Reads the stream from the links' loop until the link closes: each entry to its namespace, in
/// order. Starts after the stream's last entry at the time (ready() waits for that), and goes on
/// after an outage from the last entry it read, so that what came meanwhile is not lost (as far as
/// the stream's cap allows).
inline asio::awaitable<void> read_stream(std::shared_ptr<cluster_link> l) {
    asio::steady_timer pause(l->io);
    auto back_off = [&]() -> asio::awaitable<void> {   // after an error Redis answered: not in a tight loop
        pause.expires_after(std::chrono::milliseconds(200));
        co_await pause.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    };
    while (!l->closed && l->last_read.empty()) {
        bool failed = false;
        try {
            auto r = co_await l->reader->command("XREVRANGE", l->stream, "+", "-", "COUNT", "1");
            if (r.is_array() && r.elements.empty()) l->last_read = "0-0";
            else if (r.is_array() && r.elements[0].is_array() && !r.elements[0].elements.empty())
                l->last_read = r.elements[0].elements[0].str;
            else failed = true;
        } catch (const std::system_error&) {
            failed = true;
        }
        if (failed && !l->closed) co_await back_off();
    }
    l->reading = true;
    l->read_started.cancel();
    while (!l->closed) {
        bool failed = false;
        try {
            auto r = co_await l->reader->command("XREAD", "BLOCK", "5000", "COUNT", "100", "STREAMS", l->stream, l->last_read);
            if (r.is_error()) failed = true;
            // [[stream, [[id, [field, value, ...]], ...]]], or nil when nothing came within the block
            if (r.is_array())
                for (auto& st : r.elements) {
                    if (!st.is_array() || st.elements.size() != 2) continue;
                    for (auto& e : st.elements[1].elements) {
                        if (!e.is_array() || e.elements.size() != 2 || !e.elements[0].is_string()) continue;
                        l->last_read = e.elements[0].str;
                        std::vector<std::string> fields;
                        for (auto& f : e.elements[1].elements) fields.push_back(std::move(f.str));
                        std::string error;
                        if (auto m = sio_redis::from_stream_fields(fields, error)) l->on_entry(l->last_read, std::move(*m));
                    }
                }
        } catch (const std::system_error&) {   // the connection dropped: read again once it is back
            if (l->closed) break;
        }
        if (failed && !l->closed) co_await back_off();
    }
}

/// A session as Redis keeps it (the streams adapter's format).
inline sio_redis::stored_session stored_of(const session_record& r, std::string_view pid) {
    return sio_redis::stored_session{r.id, std::string(pid), r.nsp, r.rooms, r.data};
}

/// Streams: keeps this node's hash of live sessions alive (and known) while the node lives.
inline asio::awaitable<void> keep_beating(std::shared_ptr<cluster_link> l) {
    while (!l->closed) {
        l->pub->send("SADD", l->nodes_key(), l->node);
        l->pub->send("PEXPIRE", l->live_key(), l->live_ttl());
        l->beat.expires_after(cluster_link::beat_every);
        co_await l->beat.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    }
}

/// Connection-state recovery's session store in Redis, with the streams mode: a dropped socket's
/// session under PREFIX<pid> for the window (as the streams adapter keeps it), its missed broadcasts
/// read back from the stream after its offset. A socket of a node that died is found in that node's
/// hash of live sessions until the hash expires.
class stream_store final : public session_store {
public:
    explicit stream_store(std::shared_ptr<cluster_link> l) : link_(std::move(l)) {}

    asio::awaitable<void> save(std::string pid, session_record record, std::chrono::milliseconds window) override {
        auto go = [l = link_, pid, key = link_->session_prefix + pid, value = stored_of(record, pid).encode(),
                   ms = std::to_string(window.count())]() -> asio::awaitable<void> {
            // The socket let its live entry go before its save (both on this loop, in that order):
            // if the pid still has one, a recovered successor holds it, and this copy would be stale.
            if (l->live_holders.contains(pid)) co_return;
            auto r = co_await l->pub->command("SET", key, value, "PX", ms);
            if (r.is_error()) throw std::runtime_error("Redis refused to keep a session: " + r.str);
        };
        co_await asio::co_spawn(link_->io, std::move(go), asio::use_awaitable);
    }

    asio::awaitable<std::optional<session_record>> restore(std::string pid) override {
        auto go = [l = link_, pid = std::move(pid)]() -> asio::awaitable<std::optional<session_record>> {
            // Its own key (it dropped, and its node kept it), else a live hash: its node died. Taken
            // once, atomically; the hashes of nodes gone for longer than the window are forgotten.
            static constexpr std::string_view script =
                "local v = redis.call('GET', KEYS[1]) "
                "if v then redis.call('DEL', KEYS[1]) return v end "
                "for _, n in ipairs(redis.call('SMEMBERS', KEYS[2])) do "
                "  local h = ARGV[2] .. n "
                "  if redis.call('EXISTS', h) == 0 then redis.call('SREM', KEYS[2], n) "
                "  else v = redis.call('HGET', h, ARGV[1]) "
                "    if v then redis.call('HDEL', h, ARGV[1]) return v end end "
                "end "
                "return false";
            std::optional<session_record> out;
            reply r;
            try {
                r = co_await l->pub->command("EVAL", script, "2", l->session_prefix + pid, l->nodes_key(), pid,
                                            l->session_prefix + "node:");
            } catch (const std::system_error&) {   // Redis away: nothing to recover from
                co_return out;
            }
            if (!r.is_string()) co_return out;
            auto s = sio_redis::stored_session::decode(r.str);
            if (!s) co_return out;
            out = session_record{std::move(s->sid), std::move(s->nsp), std::move(s->rooms), std::move(s->data), {}};
            co_return out;
        };
        co_return co_await asio::co_spawn(link_->io, std::move(go), asio::use_awaitable);
    }

    std::shared_ptr<const prepared> append(std::string_view, kept_broadcast,
                                           const std::function<std::shared_ptr<const prepared>(std::string_view)>&) override {
        return nullptr;   // the stream keeps the broadcasts: the adapter appends them
    }

    asio::awaitable<std::optional<std::vector<kept_broadcast>>> missed(session_record record) override {
        auto go = [l = link_, record = std::move(record)]() -> asio::awaitable<std::optional<std::vector<kept_broadcast>>> {
            std::optional<std::vector<kept_broadcast>> out;
            if (!sio_redis::is_stream_id(record.offset)) co_return out;
            std::shared_ptr<space> sp;
            for (auto& s : l->live())
                if (s->nsp == record.nsp) sp = s;
            if (!sp) co_return out;
            try {
                // The offset must still be in the stream: else what followed it may be gone too.
                auto at = co_await l->pub->command("XRANGE", l->stream, record.offset, record.offset);
                if (!at.is_array() || at.elements.empty()) co_return out;
                std::vector<kept_broadcast> found;
                std::string from = record.offset;
                for (int round = 0; round < 100; ++round) {   // the streams adapter's bound: 100 x 100 entries
                    auto r = co_await l->pub->command("XRANGE", l->stream, "(" + from, "+", "COUNT", "100");
                    if (!r.is_array() || r.elements.empty()) break;
                    for (auto& e : r.elements) {
                        if (!e.is_array() || e.elements.size() != 2) continue;
                        from = e.elements[0].str;
                        std::vector<std::string> fields;
                        for (auto& f : e.elements[1].elements) fields.push_back(std::move(f.str));
                        std::string error;
                        auto m = sio_redis::from_stream_fields(fields, error);
                        if (!m || m->value("nsp", std::string()) != record.nsp || m->value("type", 0) != 3) continue;
                        if (auto b = sp->missed_one(*m, from, record)) found.push_back(std::move(*b));
                    }
                }
                out = std::move(found);
            } catch (const std::system_error&) {   // Redis away: nothing can be recovered
            }
            co_return out;
        };
        co_return co_await asio::co_spawn(link_->io, std::move(go), asio::use_awaitable);
    }

private:
    std::shared_ptr<cluster_link> link_;
};

/// A namespace's adapter in a cluster: the local one, plus Redis.
class redis_adapter final : public adapter {
public:
    redis_adapter(std::unique_ptr<adapter> local, std::shared_ptr<space> sp) : local_(std::move(local)), space_(std::move(sp)) {}
    ~redis_adapter() override {
        auto sp = space_;
        sp->gone = true;
    }

    void add_socket(socket& s) override {
        local_->add_socket(s);
        keep_live(s, true);
    }
    void remove_socket(socket& s) override {
        local_->remove_socket(s);
        forget_live(s);
    }
    void add(socket& s, const std::string& room) override {
        local_->add(s, room);
        if (space_->sharded) room_changed(room, true);
        keep_live(s);
    }
    void remove(socket& s, const std::string& room) override {
        local_->remove(s, room);
        if (space_->sharded) room_changed(room, false);
        keep_live(s);
    }
    socket* find(std::size_t worker, std::string_view id) const override { return local_->find(worker, id); }
    std::size_t rooms() const noexcept override { return local_->rooms(); }

    void broadcast(std::shared_ptr<const broadcast_message> message, const selection_spec& which, bool as_volatile) override {
        if (!which.local) {
            sio_redis::broadcast b;
            b.uid = space_->uid;
            b.nsp = space_->nsp;
            b.data = json::array({message->name()});
            if (message->spread() && message->data().is_array())
                for (const auto& a : message->data()) b.data.push_back(a);
            else b.data.push_back(message->data());
            b.opts = selection_of(which);
            if (as_volatile) b.opts.flags["volatile"] = true;
            if (!message->compress()) b.opts.flags["compress"] = false;
            const auto& key = space_->link->key;
            if (!space_->clustered()) {
                space_->link->publish(b.channel(key), b.encode());
            } else {
                json packet{{"type", 2}, {"nsp", b.nsp}};
                packet["data"] = std::move(b.data);
                json data = json::object();
                data["opts"] = b.opts.to_json();
                data["packet"] = std::move(packet);
                if (space_->streams) {
                    // An entry of the stream; this node's sockets get it once Redis has given it its
                    // id, their offset (the streams adapter's order), or at once while Redis is away.
                    const auto m = space_->cluster_message(3, std::move(data));
                    if (!space_->link->pub->connected()) {
                        space_->append(m);
                        local_->broadcast(std::move(message), which, as_volatile);
                        return;
                    }
                    space_->append(m, [sp = space_, message = std::move(message), opts = std::move(b.opts), as_volatile](std::string id) {
                        sp->deliver_own(message, opts, as_volatile, id);
                    });
                    return;
                }
                // One room that is not a socket's id (20 characters): the room's channel, which only
                // the nodes with members subscribe to.
                const bool one_room = b.opts.rooms.size() == 1 && b.opts.rooms.front().size() != 20;
                space_->publish_cluster(space_->cluster_message(3, std::move(data)),
                                        one_room ? sio_redis::room_channel(key, b.nsp, b.opts.rooms.front()) : space_->request_channel);
            }
        }
        local_->broadcast(std::move(message), which, as_volatile);
    }

    asio::awaitable<std::vector<socket_info>> fetch(const selection_spec& which) override {
        return fetch_all(space_, which.local ? nullptr : request_of(which, space_->clustered() ? 7 : 5), local_->fetch(which));
    }
    asio::awaitable<std::size_t> count(const selection_spec& which) override {
        return count_all(fetch(which));
    }
    asio::awaitable<std::vector<std::string>> ids(const selection_spec& which) override {
        return ids_all(fetch(which));
    }
    asio::awaitable<acks> broadcast_with_ack(std::string event, json data, const selection_spec& which,
                                             std::chrono::milliseconds timeout) override {
        std::shared_ptr<json> request;
        if (!which.local) {
            request = request_of(which, space_->clustered() ? 3 : 7);
            json& body = space_->clustered() ? (*request)["data"] : *request;
            body["opts"]["flags"] = json{{"timeout", timeout.count()}};
            body["packet"] = json{{"type", 2}, {"data", json::array({event, data})}, {"nsp", space_->nsp}};
        }
        return acks_all(space_, std::move(request), local_->broadcast_with_ack(std::move(event), std::move(data), which, timeout), timeout);
    }
    asio::awaitable<void> join(const selection_spec& which, std::vector<std::string> rooms) override {
        if (!which.local) {
            auto r = request_of(which, space_->clustered() ? 4 : 2);
            (space_->clustered() ? (*r)["data"] : *r)["rooms"] = rooms;
            publish_request(*r);
        }
        return local_->join(which, std::move(rooms));
    }
    asio::awaitable<void> leave(const selection_spec& which, std::vector<std::string> rooms) override {
        if (!which.local) {
            auto r = request_of(which, space_->clustered() ? 5 : 3);
            (space_->clustered() ? (*r)["data"] : *r)["rooms"] = rooms;
            publish_request(*r);
        }
        return local_->leave(which, std::move(rooms));
    }
    asio::awaitable<void> disconnect(const selection_spec& which, bool close) override {
        if (!which.local) {
            auto r = request_of(which, space_->clustered() ? 6 : 4);
            (space_->clustered() ? (*r)["data"] : *r)["close"] = close;
            publish_request(*r);
        }
        return local_->disconnect(which, close);
    }
    asio::awaitable<std::vector<std::string>> all_rooms(bool local) override {
        // The ClusterAdapter has no such request: there, this node's rooms.
        const bool ask = !local && !space_->clustered();
        json request{{"type", 1}};
        return rooms_all(space_, ask ? std::make_shared<json>(std::move(request)) : nullptr, local_->all_rooms(true));
    }

private:
    static sio_redis::selection selection_of(const selection_spec& which) {
        sio_redis::selection opts;
        opts.rooms = which.rooms;
        opts.except = which.except_rooms;
        for (const socket* s : which.except_sockets) opts.except.push_back(s->id());
        return opts;
    }
    /// A request naming the selection: {uid, type, opts: {rooms, except}}; sharded, the
    /// ClusterAdapter's {uid, nsp, type, data: {opts: {rooms, except, flags}}}.
    std::shared_ptr<json> request_of(const selection_spec& which, int type) const {
        const auto opts = selection_of(which);
        if (space_->clustered()) {
            json data = json::object();
            data["opts"] = opts.to_json();
            return std::make_shared<json>(space_->cluster_message(type, std::move(data)));
        }
        auto r = std::make_shared<json>(json{{"uid", space_->uid}, {"type", type}});
        (*r)["opts"] = opts.to_json(false);
        return r;
    }
    void publish_request(const json& r) const {
        if (space_->streams) space_->append(r);   // joins, leaves and disconnects are entries of the stream
        else if (space_->sharded) space_->publish_cluster(r, space_->request_channel);
        else space_->link->publish(space_->request_channel, r.dump());
    }
    /// Streams, with sessions kept in Redis: a socket's session as it is now, in its node's hash of
    /// live sessions, so that its client can recover on another node if this one dies. Written when
    /// it connects (`joining`: it holds its pid's entry from then on) and when its rooms change; its
    /// data as of then.
    void keep_live(const socket& s, bool joining = false) const {
        const auto& l = space_->link;
        const auto pid = gw::detail::dispatcher::pid_of(s);
        if (!l->keeps_sessions || pid.empty()) return;
        l->on_loop([l, pid = std::string(pid), value = stored_of(gw::detail::dispatcher::record_of(s), pid).encode(),
                    who = static_cast<const void*>(&s), joining] {
            if (l->closed) return;
            if (joining) l->live_holders[pid] = who;
            else if (auto it = l->live_holders.find(pid); it == l->live_holders.end() || it->second != who) return;
            const std::string key = l->live_key();
            l->pub->send("HSET", key, pid, value);
            l->pub->send("PEXPIRE", key, l->live_ttl());
        });
    }
    /// The socket left: no longer live (a recoverable one waits under its own key meanwhile).
    void forget_live(const socket& s) const {
        const auto& l = space_->link;
        const auto pid = gw::detail::dispatcher::pid_of(s);
        if (!l->keeps_sessions || pid.empty()) return;
        l->on_loop([l, pid = std::string(pid), who = static_cast<const void*>(&s)] {
            auto it = l->live_holders.find(pid);
            if (it == l->live_holders.end() || it->second != who) return;   // a recovered successor holds it
            l->live_holders.erase(it);
            if (!l->closed) l->pub->send("HDEL", l->live_key(), pid);
        });
    }
    /// Sharded: a room's first member here, or its last gone (from the socket's worker).
    void room_changed(const std::string& room, bool joined) const {
        space_->link->on_loop([sp = space_, room, joined] {
            if (!sp->gone) sp->room_changed(room, joined);
        });
    }

    /// Runs ask() on the links' loop, from whichever thread asks.
    static asio::awaitable<std::vector<json>> ask_on_loop(std::shared_ptr<space> sp, json request, bool msgpack, bool acks,
                                                          std::chrono::milliseconds timeout) {
        auto go = [sp, request = std::move(request), msgpack, acks, timeout]() mutable {
            return sp->ask(std::move(request), msgpack, acks, timeout);
        };
        co_return co_await asio::co_spawn(sp->link->io, std::move(go), asio::use_awaitable);
    }

    static asio::awaitable<std::vector<socket_info>> fetch_all(std::shared_ptr<space> sp, std::shared_ptr<json> request,
                                                                asio::awaitable<std::vector<socket_info>> mine) {
        auto out = co_await std::move(mine);
        if (!request || sp->link->closed) co_return out;
        auto answers = co_await ask_on_loop(sp, std::move(*request), false, false, sp->link->timeout);
        for (const auto& a : answers) {
            const json sockets = a.value("sockets", json::array());
            if (!sockets.is_array()) continue;
            for (const auto& s : sockets) {
                if (!s.is_object() || !s.contains("id") || !s["id"].is_string()) continue;
                socket_info info;
                info.id = s["id"].get<std::string>();
                info.handshake = s.value("handshake", json());
                for (const auto& r : s.value("rooms", json::array()))
                    if (r.is_string()) info.rooms.push_back(r.get<std::string>());
                info.data = s.value("data", json());
                out.push_back(std::move(info));
            }
        }
        co_return out;
    }
    static asio::awaitable<std::size_t> count_all(asio::awaitable<std::vector<socket_info>> all) {
        auto found = co_await std::move(all);
        co_return found.size();
    }
    static asio::awaitable<std::vector<std::string>> ids_all(asio::awaitable<std::vector<socket_info>> all) {
        auto found = co_await std::move(all);
        std::vector<std::string> out;
        for (auto& s : found) out.push_back(std::move(s.id));
        co_return out;
    }
    static asio::awaitable<acks> acks_all(std::shared_ptr<space> sp, std::shared_ptr<json> request, asio::awaitable<acks> mine,
                                          std::chrono::milliseconds timeout) {
        // The others are asked first, so that their clients answer while this node's do.
        std::vector<json> theirs;
        if (request && !sp->link->closed) {
            auto go = [sp, request, timeout]() { return sp->ask(std::move(*request), true, true, timeout); };
            theirs = co_await asio::co_spawn(sp->link->io, std::move(go), asio::use_awaitable);
        }
        auto out = co_await std::move(mine);
        for (auto& a : theirs) out.replies.push_back(std::move(a));
        co_return out;
    }
    static asio::awaitable<std::vector<std::string>> rooms_all(std::shared_ptr<space> sp, std::shared_ptr<json> request,
                                                               asio::awaitable<std::vector<std::string>> mine) {
        auto out = co_await std::move(mine);
        if (!request || sp->link->closed) co_return out;
        auto answers = co_await ask_on_loop(sp, std::move(*request), false, false, sp->link->timeout);
        std::set<std::string> all(out.begin(), out.end());
        for (const auto& a : answers)
            for (const auto& r : a.value("rooms", json::array()))
                if (r.is_string()) all.insert(r.get<std::string>());
        co_return std::vector<std::string>(all.begin(), all.end());
    }

    std::unique_ptr<adapter> local_;
    std::shared_ptr<space> space_;
};

} // namespace detail

/// Joins a gateway to a cluster: every namespace, those declared already and those declared
/// later, gets a Redis adapter around its local one. Make it after the gateway and before its
/// loops run; destroy it before the gateway (its namespaces then deliver locally only). Wire-
/// compatible with @socket.io/redis-adapter 8.x (classic mode): Node Socket.IO servers with the
/// same Redis and key are nodes of the same cluster, and @socket.io/redis-emitter reaches its
/// clients. Namespaces declared by pattern ("/tenant-*") stay local.
class cluster {
public:
    explicit cluster(gateway& g, cluster_options o = {}) : g_(g.st_) {
        if (o.url.empty()) {
            const char* env = std::getenv("REDIS_URL");
            o.url = env && *env ? env : "redis://localhost:6379";
        }
        const url where = url::parse(o.url);
        if (!o.link.log) o.link.log = [st = std::weak_ptr<gw::detail::gateway_state>(g_)](log_level l, std::string_view what) {
            if (auto s = st.lock()) s->log.say(l, std::string("redis: ").append(what));
        };
        link_ = std::make_shared<detail::cluster_link>(g_->io, where, o);
        auto wrap = [link = link_, owner = std::weak_ptr<gw::detail::gateway_state>(g_)](
                        gw::detail::namespace_state& ns, std::unique_ptr<adapter> local) -> std::unique_ptr<adapter> {
            if (ns.path.ends_with('*')) return local;
            auto sp = std::make_shared<detail::space>();
            sp->owner = owner;
            sp->ns = &ns;
            sp->local = static_cast<gw::detail::local_adapter*>(local.get());
            sp->link = link;
            sp->nsp = ns.path;
            sp->sharded = link->mode == cluster_mode::sharded;
            sp->streams = link->mode == cluster_mode::streams;
            if (sp->clustered()) {   // the ClusterAdapter's uid: 16 hex digits
                sp->uid = detail::hex_uid();
                sp->request_channel = sio_redis::broadcast_channel(link->key, ns.path);
                sp->own_response_channel = sio_redis::room_channel(link->key, ns.path, sp->uid);
            } else {
                sp->uid = detail::node_uid();
                sp->request_channel = sio_redis::request_channel(link->key, ns.path);
                sp->response_channel = sio_redis::response_channel(link->key, ns.path);
                sp->own_response_channel = sio_redis::response_channel(link->key, ns.path, sp->uid);
            }
            link->spaces.push_back(sp);
            // The subscriptions hold from now on; ready() awaits their confirmations.
            asio::co_spawn(link->io, subscribe(link, sp), [owner](std::exception_ptr e) {
                if (auto g = owner.lock()) g->log.report("subscribing to the cluster's channels")(e);
            });
            return std::make_unique<detail::redis_adapter>(std::move(local), std::move(sp));
        };
        for (auto& ns : g_->spaces) ns->members = wrap(*ns, std::move(ns->members));
        if (link_->reader) {
            // Streams: sessions in Redis, unless the application chose a store of its own.
            if (auto& rec = g_->socketio.recovery; rec.enabled && g_->default_store) {
                rec.store = std::make_shared<detail::stream_store>(link_);
                g_->default_store = false;
                link_->keeps_sessions = true;
                link_->window = rec.max_disconnection;
                asio::co_spawn(link_->io, detail::keep_beating(link_), g_->log.report("refreshing the live sessions in Redis"));
            }
            asio::co_spawn(link_->io, detail::read_stream(link_), g_->log.report("reading the cluster's stream"));
        }
        if (o.forward_polling && g_->eio) install_forwarding(o);
        // Read on any worker for /metrics and /healthz, as long as the gateway lives: it holds the link.
        g_->cluster_metrics = [link = link_](gw::metrics& m) {
            m.cluster = true;
            const auto s = stats_of(*link);
            m.cluster_connected = s.connected;
            m.cluster_published = s.published;
            m.cluster_received = s.received;
            m.cluster_dropped = s.dropped;
            m.cluster_reconnects = s.reconnects;
            m.cluster_timeouts = s.timeouts;
            m.cluster_forwarded = s.forwarded;
            m.cluster_forwards_served = s.forwards_served;
            m.cluster_forwards_unanswered = s.forwards_unanswered;
            m.cluster_forwards_refused = s.forwards_refused;
        };
        g_->wrap_adapter = std::move(wrap);
    }
    cluster(const cluster&) = delete;
    cluster& operator=(const cluster&) = delete;
    ~cluster() {
        g_->wrap_adapter = nullptr;
        auto link = link_;
        asio::post(link->io, [link] { link->close(); });
    }

    /// Completes once Redis has confirmed the subscriptions of every namespace known now: the
    /// cluster's messages reach this node from then on. While Redis is away, it waits until it is
    /// back, with every link up again (the publishing one too, which may still be waiting out its
    /// reconnection delay when the subscriptions are confirmed). Await it on the gateway's first loop.
    asio::awaitable<void> ready() {
        auto link = link_;
        const auto spaces = link->live();
        for (std::size_t i = 0; i < spaces.size(); ++i) co_await subscribe(link, spaces[i]);
        if (link->reader && !link->reading) co_await link->read_started.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
        if (link->reader && !link->reader->connected() && !link->closed)
            co_await link->reader_up->async_wait(asio::experimental::as_tuple(asio::use_awaitable));
        if (link->forward) co_await link->sub->subscribe(link->forward->channel());
        // A command waits for its link: the answer to a PING says the publisher is up. A failure
        // (closed, refused, dropped) ends the wait; metrics tell the state then.
        if (!link->closed && !link->pub->connected()) {
            try {
                co_await link->pub->command("PING");
            } catch (const std::system_error&) {
            }
        }
    }

    /// Handles serverSideEmit(event, ...args) of the other nodes in namespace nsp (declared before
    /// or after): f gets the arguments as a list and returns the acknowledgement (ignored when none
    /// is wanted). Runs on the gateway's first loop. Set before the loops run.
    cluster& on_server_event(std::string nsp, std::string event, std::function<json(const json& args)> f) {
        if (nsp.empty() || nsp.front() != '/') nsp.insert(nsp.begin(), '/');
        link_->server_handlers[{std::move(nsp), std::move(event)}] = std::move(f);
        return *this;
    }
    /// Sends an event to the other nodes (Socket.IO's serverSideEmit), no acknowledgement.
    void server_side_emit(std::string_view nsp, std::string event, json args = json::array()) {
        for (auto& sp : link_->live()) {
            if (sp->nsp != nsp) continue;
            json data = json::array({std::move(event)});
            for (auto& a : args) data.push_back(std::move(a));
            if (sp->clustered()) sp->publish_cluster(sp->cluster_message(9, json{{"packet", std::move(data)}}), sp->request_channel);
            else link_->publish(sp->request_channel, json{{"uid", sp->uid}, {"type", 6}, {"data", std::move(data)}}.dump());
            return;
        }
    }
    /// The same, waiting up to requests_timeout for every other node's acknowledgement; returns
    /// those that came (a node without a handler for the event does not answer).
    asio::awaitable<std::vector<json>> server_side_emit_with_ack(std::string nsp, std::string event, json args = json::array()) {
        std::shared_ptr<detail::space> sp;
        for (auto& s : link_->live())
            if (s->nsp == nsp) sp = s;
        if (!sp) co_return std::vector<json>();
        json data = json::array({std::move(event)});
        for (auto& a : args) data.push_back(std::move(a));
        json request{{"type", sp->clustered() ? 9 : 6}};
        if (sp->clustered()) request["data"] = json{{"packet", std::move(data)}};
        else request["data"] = std::move(data);
        auto go = [sp, request = std::move(request)]() mutable {
            return sp->ask(std::move(request), false, false, sp->link->timeout);
        };
        auto answers = co_await asio::co_spawn(link_->io, std::move(go), asio::use_awaitable);
        std::vector<json> out;
        for (auto& a : answers) out.push_back(a.value("data", json()));
        co_return out;
    }

    cluster_stats counters() const noexcept { return stats_of(*link_); }

    /// This node's tag: its Engine.IO sids start with it ("" without forwarding).
    std::string node_tag() const { return link_->forward ? link_->forward->tag() : std::string(); }

private:
    /// Engine.IO's sids start with this node's tag from now on, and its requests for other nodes'
    /// sessions go through Redis to them (redis/forward.hpp).
    void install_forwarding(const cluster_options& o) {
        const auto& st = gw::detail::eio_access::state(*g_->eio);
        auto timeout = o.forward_timeout.count() > 0 ? o.forward_timeout : st->opts.ping_interval + st->opts.ping_timeout;
        std::weak_ptr<detail::cluster_link> w = link_;
        auto counted = [w](std::string channel, std::string payload) { return publish_counted(w, std::move(channel), std::move(payload)); };
        auto plain = [w](std::string channel, std::string payload) {
            if (auto link = w.lock()) link->publish(std::move(channel), std::move(payload));
        };
        auto log = [g = std::weak_ptr<gw::detail::gateway_state>(g_)](log_level l, std::string_view what) {
            if (auto s = g.lock()) s->log.say(l, std::string("cluster forwarding: ").append(what));
        };
        auto f = std::make_shared<detail::forwarder>(link_->io, link_->key, detail::node_tag(), st, timeout, o.max_forwarded,
                                                     std::move(counted), std::move(plain), std::move(log));
        link_->forward = f;
        st->node_tag = f->tag();
        st->remote = f;
        asio::co_spawn(link_->io, subscribe_forward(link_), [owner = std::weak_ptr<gw::detail::gateway_state>(g_)](std::exception_ptr e) {
            if (auto g = owner.lock()) g->log.report("subscribing to the cluster's forwarding channel")(e);
        });
    }
    static asio::awaitable<void> subscribe_forward(std::shared_ptr<detail::cluster_link> link) {
        co_await link->sub->subscribe(link->forward->channel());
    }
    /// PUBLISH on the links' loop, with Redis' count of the subscribers that got it (-1: failed).
    static asio::awaitable<long long> publish_counted(std::weak_ptr<detail::cluster_link> w, std::string channel, std::string payload) {
        auto link = w.lock();
        if (!link || link->closed) co_return -1;
        long long n = -1;
        try {
            auto r = co_await link->pub->command("PUBLISH", channel, payload);
            link->published.fetch_add(1, std::memory_order_relaxed);
            if (r.type == reply::kind::integer) n = r.integer;
        } catch (const std::system_error&) {   // Redis away, or the cluster closing: the deadline decides
        }
        co_return n;
    }

    /// The channels of a namespace, subscribed (again: Redis confirms a repeated subscription).
    static asio::awaitable<void> subscribe(std::shared_ptr<detail::cluster_link> link, std::shared_ptr<detail::space> sp) {
        if (sp->sharded) {
            co_await link->shards->ssubscribe(sp->request_channel);
            co_await link->shards->ssubscribe(sp->own_response_channel);
            co_return;
        }
        if (sp->streams) {
            co_await link->sub->subscribe(sp->request_channel);
            co_await link->sub->subscribe(sp->own_response_channel);
            co_return;
        }
        co_await link->sub->psubscribe(sio_redis::broadcast_pattern(link->key, sp->nsp));
        co_await link->sub->subscribe(sp->request_channel);
        co_await link->sub->subscribe(sp->response_channel);
        co_await link->sub->subscribe(sp->own_response_channel);
    }

    static cluster_stats stats_of(const detail::cluster_link& link) noexcept {
        cluster_stats s;
        if (link.shards) {
            const auto r = link.shards->counters();
            const auto p = link.pub->counters(), q = link.sub->counters();
            s.connected = !link.closed && r.connected && p.connected && q.connected;
            s.dropped = r.dropped;
            s.reconnects = r.reconnects;
        } else {
            const auto p = link.pub->counters(), q = link.sub->counters();
            s.connected = !link.closed && p.connected && q.connected && (!link.reader || link.reader->connected());
            s.dropped = p.dropped;
            s.reconnects = p.reconnects + q.reconnects;
        }
        s.published = link.published.load(std::memory_order_relaxed);
        s.received = link.received.load(std::memory_order_relaxed);
        s.timeouts = link.timeouts.load(std::memory_order_relaxed);
        if (const auto& f = link.forward) {
            s.forwarded = f->forwarded.load(std::memory_order_relaxed);
            s.forwards_served = f->served.load(std::memory_order_relaxed);
            s.forwards_unanswered = f->unanswered.load(std::memory_order_relaxed);
            s.forwards_refused = f->refused.load(std::memory_order_relaxed);
        }
        return s;
    }

    std::shared_ptr<gw::detail::gateway_state> g_;
    std::shared_ptr<detail::cluster_link> link_;
};

} // namespace gw::v0::redis
