// The Redis adapter: several gateway.hpp processes, and Node Socket.IO servers using
// @socket.io/redis-adapter 8.x with the same Redis and key, serve one cluster. Each namespace's
// local adapter is wrapped: what it does locally it still does (so a Redis outage still delivers
// locally), and broadcasts, requests and answers go through Redis in the adapter's wire format
// (protocol/socketio_redis.hpp). Behind GATEWAY_REDIS.
#pragma once
#include "../detail/asio.hpp"
#include "../detail/json.hpp"
#include "../protocol/socketio_redis.hpp"
#include "../gateway/facade.hpp"
#include "client.hpp"

namespace gw::inline v0::redis {

/// How a gateway joins a cluster. Every field has a default.
struct cluster_options {
    /// Where Redis is; empty: the REDIS_URL environment variable, else redis://localhost:6379
    /// (node-redis' default), so one binary runs alone or in a cluster by its environment.
    std::string url{};
    /// The channels' prefix: the adapter's `key` option; nodes with the same key and Redis form a cluster.
    std::string key = "socket.io";
    /// How long a cluster-wide request (fetch_sockets, count, ids, emit_with_ack, server-side
    /// emits with acks) waits for the other nodes before it returns what came: the adapter's
    /// requestsTimeout.
    std::chrono::milliseconds requests_timeout{5'000};
    /// The Redis links' reconnection and buffering (see gw::redis::options); its log and on_state
    /// default to the gateway's log.
    options link{};
};

/// What a cluster did, readable from any thread.
struct cluster_stats {
    bool connected = false;         ///< both Redis links are up
    std::uint64_t published = 0;    ///< messages published (broadcasts, requests, answers)
    std::uint64_t received = 0;     ///< messages received from other nodes and emitters
    std::uint64_t dropped = 0;      ///< publishes that did not fit the buffer while Redis was away
    std::uint64_t reconnects = 0;   ///< Redis connections made again after a loss
    std::uint64_t timeouts = 0;     ///< cluster-wide requests that returned partial results
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

struct space;

/// The two Redis links of a cluster, on the gateway's first loop, and the namespaces using them.
struct cluster_link : std::enable_shared_from_this<cluster_link> {
    cluster_link(asio::io_context& io_, const url& where, const cluster_options& o)
        : io(io_), key(o.key), timeout(o.requests_timeout), pub(io_.get_executor(), where, o.link),
          sub(io_.get_executor(), where, [this](const message& m) { on_message(m); }, o.link) {}

    asio::io_context& io;   // the links' loop: every member below but the counters is used there only
    std::string key;
    std::chrono::milliseconds timeout;
    client pub;
    subscriber sub;
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
    std::atomic<std::uint64_t> published{0}, received{0}, timeouts{0};

    /// PUBLISH from any thread: posted to the links' loop.
    void publish(std::string channel, std::string payload) {
        auto go = [self = shared_from_this(), channel = std::move(channel), payload = std::move(payload)] {
            if (self->closed) return;
            if (self->pub.send("PUBLISH", channel, payload)) self->published.fetch_add(1, std::memory_order_relaxed);
        };
        if (io.get_executor().running_in_this_thread()) go();
        else asio::post(io, std::move(go));
    }

    void on_message(const message& m);
    void close() {
        closed = true;
        pub.close();
        sub.close();
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
    std::string nsp, uid, request_channel, response_channel, own_response_channel;
    std::unordered_map<std::string, std::shared_ptr<pending_request>> waiting;   // by requestId, link's loop
    std::unordered_map<std::string, std::function<json(const json&)>> server_handlers;   // serverSideEmit's
    bool gone = false;

    void on_message(const message& m);
    void on_broadcast(std::string_view room, const std::string& payload);
    void on_request(json request);
    void on_response(json response);
    asio::awaitable<void> answer_request(json request);
    /// Publishes request (a requestId is added) and collects the answers of the other nodes;
    /// count_self: the node count includes this one (fetch and rooms ask every subscriber).
    asio::awaitable<std::vector<json>> ask(json request, bool msgpack, bool acks, std::chrono::milliseconds timeout);
    void deliver(const sio_redis::broadcast& b) const;
};

inline void cluster_link::on_message(const message& m) {
    received.fetch_add(1, std::memory_order_relaxed);
    for (const auto& sp : live()) sp->on_message(m);
}

inline void space::on_message(const message& m) {
    if (gone) return;
    if (!m.pattern.empty()) {
        // Posted, as requests are (below): both kinds run in the order Redis delivered them.
        if (auto room = sio_redis::room_of(m.channel, link->key, nsp))
            asio::post(link->io, [self = shared_from_this(), room = std::string(*room), payload = m.payload] {
                if (!self->gone) self->on_broadcast(room, payload);
            });
        return;
    }
    if (m.channel != request_channel && m.channel != response_channel && m.channel != own_response_channel) return;
    std::string error;
    auto v = sio_redis::decode_message(m.payload, error);
    if (!v || !v->is_object()) return;   // not a message of the adapter's: ignored, as the adapter does
    if (m.channel == request_channel) {
        // Posted behind the broadcasts that came before it: co_spawn alone may start the answer at
        // once (Asio 1.22 dispatches), and a leave or disconnect would overtake an earlier event.
        asio::post(link->io, [self = shared_from_this(), request = std::move(*v)]() mutable {
            if (!self->gone) self->on_request(std::move(request));
        });
    } else {
        on_response(std::move(*v));
    }
}

inline void space::deliver(const sio_redis::broadcast& b) const {
    auto g = owner.lock();
    if (!g) return;
    // [event] sends no argument, [event, x] one: x itself; more: the list, spread.
    const json& d = b.data;
    std::string name = d[0].get<std::string>();
    const bool spread = d.size() != 2;
    json args = spread ? json(json::array()) : d[1];
    if (spread)
        for (std::size_t i = 1; i < d.size(); ++i) args.push_back(d[i]);
    auto message = std::make_shared<const broadcast_message>(std::move(name), std::move(args), g->wire.get(), ns->sio_wire.get(),
                                                             nullptr, spread);
    const std::vector<const socket*> none;
    local->broadcast(std::move(message), selection_spec{b.opts.rooms, b.opts.except, none, true}, b.opts.is_volatile());
}

inline void space::on_broadcast(std::string_view room, const std::string& payload) {
    std::string error;
    auto b = sio_redis::broadcast::decode(payload, error);
    if (!b || b->uid == uid || b->nsp != nsp) return;
    (void)room;   // the rooms are in opts; the channel only lets Redis route it
    deliver(*b);
}

inline void space::on_request(json request) {
    if (request.value("uid", std::string()) == uid) return;   // ours: applied locally already
    auto self = shared_from_this();
    asio::co_spawn(link->io, answer_request(std::move(request)), [self](std::exception_ptr e) {
        if (!e) return;
        if (auto g = self->owner.lock()) g->log.report("answering a cluster request")(e);
    });
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
    auto rooms_of = [&](const json& v) {
        std::vector<std::string> out;
        if (v.is_array())
            for (const auto& r : v)
                if (r.is_string()) out.push_back(r.get<std::string>());
        return out;
    };
    using t = sio_redis::request_type;
    switch (static_cast<t>(type)) {
    case t::sockets: {   // legacy: ids in rooms
        sio_redis::selection legacy;
        legacy.rooms = rooms_of(request.value("rooms", json()));
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
        auto rooms = rooms_of(request.value("rooms", json()));
        if (type == 2) co_await local->join(which, std::move(rooms));
        else co_await local->leave(which, std::move(rooms));
        break;
    }
    case t::remote_disconnect: co_await local->disconnect(which, request.value("close", false)); break;
    case t::remote_fetch: {
        auto found = co_await local->fetch(which);
        json sockets = json::array();
        for (auto& s : found)
            sockets.push_back(json{{"id", s.id}, {"handshake", s.handshake}, {"rooms", s.rooms}, {"data", s.data}});
        respond(json{{"sockets", std::move(sockets)}}, false);
        break;
    }
    case t::server_side_emit: {
        const json data = request.value("data", json::array());
        if (!data.is_array() || data.empty() || !data[0].is_string()) break;
        auto h = server_handlers.find(data[0].get<std::string>());
        if (h == server_handlers.end()) break;   // no listener: no answer, as a Node server gives none
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
        const bool spread = d.size() != 2;
        json args = spread ? json(json::array()) : d[1];
        if (spread)
            for (std::size_t i = 1; i < d.size(); ++i) args.push_back(d[i]);
        auto wait = link->timeout;
        if (opts.flags.is_object() && opts.flags.contains("timeout") && opts.flags["timeout"].is_number())
            wait = std::chrono::milliseconds(opts.flags["timeout"].get<std::int64_t>());
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

inline asio::awaitable<std::vector<json>> space::ask(json request, bool msgpack, bool acks, std::chrono::milliseconds timeout) {
    auto self = shared_from_this();
    // Every node subscribed to the request channel is counted, this one too.
    std::size_t others = 0;
    try {
        auto r = co_await link->pub.command("PUBSUB", "NUMSUB", request_channel);
        if (r.is_array() && r.elements.size() == 2 && r.elements[1].integer > 1)
            others = static_cast<std::size_t>(r.elements[1].integer - 1);
    } catch (const std::system_error&) {   // Redis away: this node's part only
        co_return std::vector<json>();
    }
    if (others == 0) co_return std::vector<json>();
    const std::string id = node_uid() + node_uid() + node_uid();
    request["uid"] = uid;
    request["requestId"] = id;
    auto p = std::make_shared<pending_request>(link->io.get_executor());
    p->expected = others;
    p->acks = acks;
    waiting.emplace(id, p);
    link->publish(request_channel, msgpack ? sio_redis::to_msgpack(request) : request.dump());
    p->timer.expires_after(timeout);
    co_await p->timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    waiting.erase(id);
    const bool complete = acks ? p->counts >= p->expected && p->answers.size() >= p->clients : p->answers.size() >= p->expected;
    if (!complete) link->timeouts.fetch_add(1, std::memory_order_relaxed);
    co_return std::move(p->answers);
}

/// A namespace's adapter in a cluster: the local one, plus Redis.
class redis_adapter final : public adapter {
public:
    redis_adapter(std::unique_ptr<adapter> local, std::shared_ptr<space> sp) : local_(std::move(local)), space_(std::move(sp)) {}
    ~redis_adapter() override {
        auto sp = space_;
        sp->gone = true;
    }

    void add_socket(socket& s) override { local_->add_socket(s); }
    void remove_socket(socket& s) override { local_->remove_socket(s); }
    void add(socket& s, const std::string& room) override { local_->add(s, room); }
    void remove(socket& s, const std::string& room) override { local_->remove(s, room); }
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
            b.opts.rooms = which.rooms;
            b.opts.except = which.except_rooms;
            for (const socket* s : which.except_sockets) b.opts.except.push_back(s->id());
            if (as_volatile) b.opts.flags["volatile"] = true;
            space_->link->publish(b.channel(space_->link->key), b.encode());
        }
        local_->broadcast(std::move(message), which, as_volatile);
    }

    asio::awaitable<std::vector<socket_info>> fetch(const selection_spec& which) override {
        return fetch_all(space_, which.local ? nullptr : request_of(which, 5), local_->fetch(which));
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
            request = request_of(which, 7);
            (*request)["opts"]["flags"] = json{{"timeout", timeout.count()}};
            (*request)["packet"] = json{{"type", 2}, {"data", json::array({event, data})}, {"nsp", space_->nsp}};
        }
        return acks_all(space_, std::move(request), local_->broadcast_with_ack(std::move(event), std::move(data), which, timeout), timeout);
    }
    asio::awaitable<void> join(const selection_spec& which, std::vector<std::string> rooms) override {
        if (!which.local) {
            auto r = request_of(which, 2);
            (*r)["rooms"] = rooms;
            publish_request(*r);
        }
        return local_->join(which, std::move(rooms));
    }
    asio::awaitable<void> leave(const selection_spec& which, std::vector<std::string> rooms) override {
        if (!which.local) {
            auto r = request_of(which, 3);
            (*r)["rooms"] = rooms;
            publish_request(*r);
        }
        return local_->leave(which, std::move(rooms));
    }
    asio::awaitable<void> disconnect(const selection_spec& which, bool close) override {
        if (!which.local) {
            auto r = request_of(which, 4);
            (*r)["close"] = close;
            publish_request(*r);
        }
        return local_->disconnect(which, close);
    }
    asio::awaitable<std::vector<std::string>> all_rooms(bool local) override {
        json request{{"type", 1}};
        return rooms_all(space_, local ? nullptr : std::make_shared<json>(std::move(request)), local_->all_rooms(true));
    }

private:
    /// A request naming the selection: {uid, type, opts: {rooms, except}}.
    std::shared_ptr<json> request_of(const selection_spec& which, int type) const {
        sio_redis::selection opts;
        opts.rooms = which.rooms;
        opts.except = which.except_rooms;
        for (const socket* s : which.except_sockets) opts.except.push_back(s->id());
        auto r = std::make_shared<json>(json{{"uid", space_->uid}, {"type", type}});
        (*r)["opts"] = opts.to_json(false);
        return r;
    }
    void publish_request(const json& r) const { space_->link->publish(space_->request_channel, r.dump()); }

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
            sp->uid = detail::node_uid();
            sp->request_channel = sio_redis::request_channel(link->key, ns.path);
            sp->response_channel = sio_redis::response_channel(link->key, ns.path);
            sp->own_response_channel = sio_redis::response_channel(link->key, ns.path, sp->uid);
            link->spaces.push_back(sp);
            // The subscriptions hold from now on; ready() awaits their confirmations.
            auto subscribe = [link, sp]() -> asio::awaitable<void> {
                co_await link->sub.psubscribe(sio_redis::broadcast_pattern(link->key, sp->nsp));
                co_await link->sub.subscribe(sp->request_channel);
                co_await link->sub.subscribe(sp->response_channel);
                co_await link->sub.subscribe(sp->own_response_channel);
            };
            asio::co_spawn(link->io, subscribe, [owner](std::exception_ptr e) {
                if (auto g = owner.lock()) g->log.report("subscribing to the cluster's channels")(e);
            });
            return std::make_unique<detail::redis_adapter>(std::move(local), std::move(sp));
        };
        for (auto& ns : g_->spaces) ns->members = wrap(*ns, std::move(ns->members));
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
    /// back. Await it on the gateway's first loop.
    asio::awaitable<void> ready() {
        auto link = link_;
        const auto spaces = link->live();
        for (std::size_t i = 0; i < spaces.size(); ++i) {
            auto sp = spaces[i];
            co_await link->sub.psubscribe(sio_redis::broadcast_pattern(link->key, sp->nsp));
            co_await link->sub.subscribe(sp->request_channel);
            co_await link->sub.subscribe(sp->response_channel);
            co_await link->sub.subscribe(sp->own_response_channel);
        }
    }

    /// Handles serverSideEmit(event, ...args) of the other nodes in namespace nsp: f gets the
    /// arguments as a list and returns the acknowledgement (null when none is wanted). Runs on the
    /// gateway's first loop. Set before the loops run.
    cluster& on_server_event(std::string nsp, std::string event, std::function<json(const json& args)> f) {
        for (auto& sp : link_->live())
            if (sp->nsp == nsp) sp->server_handlers[std::move(event)] = std::move(f);
        return *this;
    }
    /// Sends an event to the other nodes (Socket.IO's serverSideEmit), no acknowledgement.
    void server_side_emit(std::string_view nsp, std::string event, json args = json::array()) {
        for (auto& sp : link_->live()) {
            if (sp->nsp != nsp) continue;
            json data = json::array({std::move(event)});
            for (auto& a : args) data.push_back(std::move(a));
            link_->publish(sp->request_channel, json{{"uid", sp->uid}, {"type", 6}, {"data", std::move(data)}}.dump());
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
        json request{{"type", 6}};
        request["data"] = std::move(data);
        auto go = [sp, request = std::move(request)]() mutable {
            return sp->ask(std::move(request), false, false, sp->link->timeout);
        };
        auto answers = co_await asio::co_spawn(link_->io, std::move(go), asio::use_awaitable);
        std::vector<json> out;
        for (auto& a : answers) out.push_back(a.value("data", json()));
        co_return out;
    }

    cluster_stats counters() const noexcept { return stats_of(*link_); }

private:
    static cluster_stats stats_of(const detail::cluster_link& link) noexcept {
        cluster_stats s;
        const auto p = link.pub.counters(), q = link.sub.counters();
        s.connected = !link.closed && p.connected && q.connected;
        s.published = link.published.load(std::memory_order_relaxed);
        s.received = link.received.load(std::memory_order_relaxed);
        s.dropped = p.dropped;
        s.reconnects = p.reconnects + q.reconnects;
        s.timeouts = link.timeouts.load(std::memory_order_relaxed);
        return s;
    }

    std::shared_ptr<gw::detail::gateway_state> g_;
    std::shared_ptr<detail::cluster_link> link_;
};

} // namespace gw::v0::redis
