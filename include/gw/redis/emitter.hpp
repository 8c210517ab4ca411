// Socket.IO's Redis emitter: emit to the clients of Socket.IO servers that share a Redis through the
// Redis adapter (Node's @socket.io/redis-adapter, or ours) from a process that serves no client: a
// worker, a cron job, a command-line tool. Wire-compatible with @socket.io/redis-emitter 5.1.0: the
// same channels and, byte for byte, the same messages. Behind the GATEWAY_REDIS knob.
#pragma once
#include "client.hpp"
#include "../protocol/socketio_redis.hpp"

#ifndef GATEWAY_NO_JSON
#include <cstdlib>            // std::getenv("REDIS_URL")
#include <initializer_list>   // to({"a", "b"})
#include <stdexcept>          // std::invalid_argument for reserved event names

namespace gw::inline v0::redis {

/// How an emitter that makes its own connection reaches the adapters.
struct emitter_options {
    /// The adapters' `key` option: channels are key#nsp#... "socket.io" is the adapters' default.
    std::string key = "socket.io";
    /// The emitter's connection: reconnecting, buffering while Redis is away, TLS, logging.
    options link{};
};

/// Emits to the clients of a Socket.IO cluster through Redis, like @socket.io/redis-emitter:
///
///     gw::redis::emitter io(ex);                          // $REDIS_URL, else redis://localhost:6379
///     io.to("room1").except("room2").emit("news", gw::json{{"id", 7}});
///     io.of("/admin").emit("stats", 42, gw::json::binary({1, 2, 3}));
///     co_await io.flush();                               // Redis has it: the process may exit
///
/// Values, not builders: of(), to(), in(), except(), volatile_() and compress() return a new emitter
/// and leave this one alone, so a base emitter can be kept and narrowed per call. Copies share one
/// Redis connection; use them on that connection's executor's thread only. Nothing waits for
/// Redis: emit() and the requests queue a PUBLISH and return (false: dropped, over the client's
/// options::max_buffered_bytes). There are no acknowledgements, as with the JS emitter: nobody
/// listens for the answers.
class emitter {
public:
    /// Connects to url; empty: the REDIS_URL environment variable, else redis://localhost:6379 (as
    /// the JS examples do). std::system_error with errc::bad_url when it is not a Redis URL.
    explicit emitter(asio::any_io_executor ex, std::string_view url = {}, emitter_options opts = {})
        : client_(std::make_shared<client>(std::move(ex), pick_url(url), std::move(opts.link))),
          key_(std::move(opts.key)) {}
    /// Publishes through an existing client (shared with the caller, who may use it too).
    explicit emitter(std::shared_ptr<client> c, std::string key = "socket.io")
        : client_(std::move(c)), key_(std::move(key)) {
        if (!client_) throw std::invalid_argument("gw::redis::emitter: the client is null");
    }

    /// The same emitter for another namespace, with no rooms, exceptions or flags (a leading '/' is
    /// added when missing, as the JS emitter does).
    emitter of(std::string_view nsp) const {
        emitter e(client_, key_);
        e.nsp_ = nsp.starts_with('/') ? std::string(nsp) : "/" + std::string(nsp);
        return e;
    }
    /// Only the clients in room (or in any of the rooms named so far). A socket's id is a room too.
    emitter to(std::string_view room) const {
        emitter e = *this;
        add(e.rooms_, room);
        return e;
    }
    /// The same for several rooms at once.
    template <class R>
        requires detail::string_range<R>
    emitter to(const R& rooms) const {
        emitter e = *this;
        for (auto&& r : rooms) add(e.rooms_, std::string_view(r));
        return e;
    }
    emitter to(std::initializer_list<std::string_view> rooms) const { return to<>(rooms); }
    /// Socket.IO's other name for to().
    emitter in(std::string_view room) const { return to(room); }
    template <class R>
        requires detail::string_range<R>
    emitter in(const R& rooms) const {
        return to(rooms);
    }
    emitter in(std::initializer_list<std::string_view> rooms) const { return to<>(rooms); }
    /// Not the clients in room, even when they are in a room named by to().
    emitter except(std::string_view room) const {
        emitter e = *this;
        add(e.except_, room);
        return e;
    }
    template <class R>
        requires detail::string_range<R>
    emitter except(const R& rooms) const {
        emitter e = *this;
        for (auto&& r : rooms) add(e.except_, std::string_view(r));
        return e;
    }
    emitter except(std::initializer_list<std::string_view> rooms) const { return except<>(rooms); }
    /// Servers may drop the event for a client that is not ready for it (JS: `.volatile`; the
    /// underscore because `volatile` is a C++ keyword).
    emitter volatile_() const {
        emitter e = *this;
        e.set_flag("volatile", true);
        return e;
    }
    /// Whether servers may compress the event (permessage-deflate); they do by default.
    emitter compress(bool on) const {
        emitter e = *this;
        e.set_flag("compress", on);
        return e;
    }

    /// Emits event with the given arguments (each a gw::json value, one Socket.IO argument each;
    /// json::binary reaches clients as binary) to the selected clients. std::invalid_argument for
    /// a name Socket.IO reserves (connect, connect_error, disconnect, disconnecting, newListener,
    /// removeListener). False when the client's buffer dropped it.
    template <class... A>
        requires(std::convertible_to<const A&, json> && ...)
    bool emit(std::string_view event, const A&... args) const {
        json data = json::array();
        data.push_back(std::string(event));
        (data.push_back(json(args)), ...);
        return publish_event(std::move(data));
    }
    /// The same with the arguments in a JSON array (a count known at run time only).
    bool emit_args(std::string_view event, const json& args) const {
        if (!args.is_array()) throw std::invalid_argument("gw::redis::emitter::emit_args: args must be a JSON array");
        json data = json::array();
        data.push_back(std::string(event));
        for (const auto& a : args) data.push_back(a);
        return publish_event(std::move(data));
    }

    /// The selected sockets join room (every server applies it; sockets connecting later do not).
    bool sockets_join(std::string_view room) const { return rooms_request(2, single(room)); }
    template <class R>
        requires detail::string_range<R>
    bool sockets_join(const R& rooms) const {
        return rooms_request(2, list(rooms));
    }
    bool sockets_join(std::initializer_list<std::string_view> rooms) const { return rooms_request(2, list(rooms)); }
    /// The selected sockets leave room.
    bool sockets_leave(std::string_view room) const { return rooms_request(3, single(room)); }
    template <class R>
        requires detail::string_range<R>
    bool sockets_leave(const R& rooms) const {
        return rooms_request(3, list(rooms));
    }
    bool sockets_leave(std::initializer_list<std::string_view> rooms) const { return rooms_request(3, list(rooms)); }
    /// The selected sockets are disconnected from the namespace; close: their whole connection (every
    /// namespace) is closed too.
    bool disconnect_sockets(bool close = false) const {
        return publish(sio_redis::request_channel(key_, nsp_),
                       head(4) + ",\"close\":" + (close ? "true" : "false") + "}");
    }

    /// Emits event to the servers themselves (their namespace's listeners for it, as Node's
    /// `io.on(event)` with serverSideEmit); rooms, exceptions and flags do not apply. JSON as the
    /// JS emitter writes it; with binary among the arguments msgpack instead (which the adapters
    /// also read), so that bytes stay bytes. std::invalid_argument for the names a Socket.IO
    /// namespace reserves (connect, connection, new_namespace): a server would take it for its own.
    template <class... A>
        requires(std::convertible_to<const A&, json> && ...)
    bool server_side_emit(std::string_view event, const A&... args) const {
        if (event == "connect" || event == "connection" || event == "new_namespace")
            throw std::invalid_argument("gw::redis::emitter::server_side_emit: \"" + std::string(event) +
                                        "\" is a reserved event name");
        json data = json::array();
        data.push_back(std::string(event));
        (data.push_back(json(args)), ...);
        std::string body;
        if (sio_redis::has_binary(data)) {
            body += '\x83';   // a map, keys in the JSON form's order
            put_str(body, "uid");
            put_str(body, uid);
            put_str(body, "type");
            body += '\x06';
            put_str(body, "data");
            sio_redis::write_msgpack(body, data);
        } else {
            body = std::string("{\"uid\":\"") + uid + "\",\"type\":6,\"data\":" + dump(data) + "}";
        }
        return publish(sio_redis::request_channel(key_, nsp_), body);
    }

    /// Completes when Redis has run everything queued before it (a PING, answered after the
    /// commands ahead of it on the same connection): a short-lived process awaits it before it
    /// exits. While Redis is away it waits for it to come back (bound it with a timer if needed).
    /// std::system_error when the connection broke with commands unanswered (they may be lost) or
    /// the client was closed.
    asio::awaitable<void> flush() const { return ping(client_); }

    /// The namespace emitted to ("/" unless of() said otherwise).
    const std::string& nsp() const noexcept { return nsp_; }
    /// The connection, shared by every copy of this emitter.
    const std::shared_ptr<client>& connection() const noexcept { return client_; }

private:
    static constexpr const char* uid = "emitter";   // the JS emitter's; adapters never take it for one of theirs

    static std::string pick_url(std::string_view url) {
        if (!url.empty()) return std::string(url);
        if (const char* env = std::getenv("REDIS_URL"); env && *env) return env;
        return "redis://localhost:6379";
    }
    /// Rooms are a set in Socket.IO: a room named twice is named once, in first-seen order.
    static void add(std::vector<std::string>& to, std::string_view room) {
        if (std::find(to.begin(), to.end(), room) == to.end()) to.emplace_back(room);
    }
    void set_flag(const char* name, bool value) {
        for (auto& f : flags_)
            if (f.first == name) {
                f.second = value;
                return;
            }
        flags_.emplace_back(name, value);   // JS keeps the order flags were first set in
    }
    static std::vector<std::string> single(std::string_view room) { return {std::string(room)}; }
    template <class R> static std::vector<std::string> list(const R& rooms) {
        std::vector<std::string> out;
        for (auto&& r : rooms) out.emplace_back(std::string_view(r));
        return out;
    }
    /// JSON.stringify never fails, and a room name that is not UTF-8 cannot be a JavaScript string
    /// anyway: bad bytes become U+FFFD, as Node's decoding of them would.
    static std::string dump(const json& v) { return v.dump(-1, ' ', false, json::error_handler_t::replace); }
    static void put_str(std::string& out, std::string_view s) {
        sio_redis::detail::put_length(out, s.size(), 0xa0, 31, 0xd9, 0xda);
        out += s;
    }
    static void put_list(std::string& out, const std::vector<std::string>& v) {
        sio_redis::detail::put_length(out, v.size(), 0x90, 15, 0, 0xdc);
        for (const auto& s : v) put_str(out, s);
    }

    bool publish(const std::string& channel, const std::string& body) const {
        return client_->send("PUBLISH", channel, body);
    }

    bool publish_event(json data) const {
        const auto& event = data.front().get_ref<const std::string&>();
        for (const char* reserved : {"connect", "connect_error", "disconnect", "disconnecting", "newListener",
                                     "removeListener"})
            if (event == reserved)
                throw std::invalid_argument("gw::redis::emitter::emit: \"" + event + "\" is a reserved event name");
        // ["emitter", {type, data, nsp}, {rooms, flags, except}], keys in the JS emitter's order.
        std::string body;
        body += '\x93';
        put_str(body, uid);
        body += '\x83';
        put_str(body, "type");
        body += '\x02';   // EVENT: binary arguments travel as msgpack bin, and each server re-encodes
        put_str(body, "data");
        sio_redis::write_msgpack(body, data);
        put_str(body, "nsp");
        put_str(body, nsp_);
        body += '\x83';
        put_str(body, "rooms");
        put_list(body, rooms_);
        put_str(body, "flags");
        sio_redis::detail::put_length(body, flags_.size(), 0x80, 15, 0, 0xde);
        for (const auto& [name, value] : flags_) {
            put_str(body, name);
            body += value ? '\xc3' : '\xc2';
        }
        put_str(body, "except");
        put_list(body, except_);
        // One room: that room's channel, so that adapters without the room drop it unread.
        const std::string channel = rooms_.size() == 1 ? sio_redis::room_channel(key_, nsp_, rooms_.front())
                                                       : sio_redis::broadcast_channel(key_, nsp_);
        return publish(channel, body);
    }

    /// {"type":T,"opts":{"rooms":[...],"except":[...]} without its closing brace: the JS emitter's
    /// requests, key order included (and, like them, without a uid).
    std::string head(int type) const {
        return "{\"type\":" + std::to_string(type) + ",\"opts\":{\"rooms\":" + dump(rooms_) +
               ",\"except\":" + dump(except_) + "}";
    }
    bool rooms_request(int type, const std::vector<std::string>& rooms) const {
        return publish(sio_redis::request_channel(key_, nsp_), head(type) + ",\"rooms\":" + dump(rooms) + "}");
    }

    static asio::awaitable<void> ping(std::shared_ptr<client> c) {
        const reply r = co_await c->command("PING");
        if (r.is_error()) throw std::system_error(make_error_code(errc::refused), "Redis refused PING: " + r.str);
    }

    std::shared_ptr<client> client_;
    std::string key_;
    std::string nsp_ = "/";
    std::vector<std::string> rooms_{};
    std::vector<std::string> except_{};
    std::vector<std::pair<std::string, bool>> flags_{};
};

} // namespace gw::v0::redis
#endif
