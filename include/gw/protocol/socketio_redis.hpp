// The Redis adapter's wire format, as @socket.io/redis-adapter 8.x and @socket.io/redis-emitter 5.x
// write it: channel names, msgpack (with notepack.io's quirks), the broadcast message and the
// requests, JSON or msgpack. Pure: no sockets, no Redis; byte-testable. The adapter that uses it is
// redis/adapter.hpp.
#pragma once
#include "../detail/json.hpp"
#include "engineio.hpp"
#include "text.hpp"

#ifndef GATEWAY_NO_JSON
namespace gw::inline v0::sio_redis {

// ==== msgpack ====

namespace detail {

inline void put_be(std::string& out, std::uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

inline void put_length(std::string& out, std::size_t n, unsigned char fix_base, std::size_t fix_max,
                       unsigned char op8, unsigned char op16) {
    if (n <= fix_max && fix_base != 0) out += static_cast<char>(fix_base | n);
    else if (n < 0x100 && op8 != 0) {
        out += static_cast<char>(op8);
        put_be(out, n, 1);
    } else if (n < 0x10000) {
        out += static_cast<char>(op16);
        put_be(out, n, 2);
    } else {
        out += static_cast<char>(op16 + 1);   // the 32-bit form follows the 16-bit one in every family
        put_be(out, n, 4);
    }
}

inline void put_uint(std::string& out, std::uint64_t v) {
    if (v < 0x80) out += static_cast<char>(v);
    else if (v < 0x100) { out += '\xcc'; put_be(out, v, 1); }
    else if (v < 0x10000) { out += '\xcd'; put_be(out, v, 2); }
    else if (v < 0x100000000ull) { out += '\xce'; put_be(out, v, 4); }
    else { out += '\xcf'; put_be(out, v, 8); }
}

inline void put_int(std::string& out, std::int64_t v) {
    if (v >= 0) return put_uint(out, static_cast<std::uint64_t>(v));
    const auto u = static_cast<std::uint64_t>(v);
    if (v >= -32) out += static_cast<char>(v);
    else if (v >= INT8_MIN) { out += '\xd0'; put_be(out, u, 1); }
    else if (v >= INT16_MIN) { out += '\xd1'; put_be(out, u, 2); }
    else if (v >= INT32_MIN) { out += '\xd2'; put_be(out, u, 4); }
    else { out += '\xd3'; put_be(out, u, 8); }
}

} // namespace detail

/// Appends v as msgpack the way notepack.io encodes the same JavaScript value: integral numbers
/// as the smallest integer, other numbers as float64, binary as bin, null as nil.
inline void write_msgpack(std::string& out, const json& v) {
    using t = json::value_t;
    switch (v.type()) {
    case t::null:
    case t::discarded: out += '\xc0'; break;
    case t::boolean: out += v.get<bool>() ? '\xc3' : '\xc2'; break;
    case t::number_unsigned: detail::put_uint(out, v.get<std::uint64_t>()); break;
    case t::number_integer: detail::put_int(out, v.get<std::int64_t>()); break;
    case t::number_float: {
        const double d = v.get<double>();
        // JavaScript has one number type: 2.0 is the integer 2 to notepack.
        if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 9007199254740992.0) {
            detail::put_int(out, static_cast<std::int64_t>(d));
            break;
        }
        out += '\xcb';
        detail::put_be(out, std::bit_cast<std::uint64_t>(d), 8);
        break;
    }
    case t::string: {
        const auto& s = v.get_ref<const std::string&>();
        detail::put_length(out, s.size(), 0xa0, 31, 0xd9, 0xda);
        out += s;
        break;
    }
    case t::binary: {
        const auto& b = v.get_binary();
        detail::put_length(out, b.size(), 0, 0, 0xc4, 0xc5);
        out.append(reinterpret_cast<const char*>(b.data()), b.size());
        break;
    }
    case t::array:
        detail::put_length(out, v.size(), 0x90, 15, 0, 0xdc);
        for (const auto& e : v) write_msgpack(out, e);
        break;
    case t::object:
        detail::put_length(out, v.size(), 0x80, 15, 0, 0xde);
        for (const auto& [k, e] : v.items()) {
            detail::put_length(out, k.size(), 0xa0, 31, 0xd9, 0xda);
            out += k;
            write_msgpack(out, e);
        }
        break;
    }
}

/// v as msgpack (see write_msgpack).
inline std::string to_msgpack(const json& v) {
    std::string out;
    write_msgpack(out, v);
    return out;
}

namespace detail {

/// JavaScript's Date#toJSON for a time in milliseconds since the epoch: 2024-05-01T12:00:00.000Z.
inline std::string iso_time(std::int64_t ms) {
    using namespace std::chrono;
    const auto tp = sys_time<milliseconds>(milliseconds(ms));
    const auto day = floor<days>(tp);
    const year_month_day ymd(day);
    const hh_mm_ss hms(tp - day);
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()), static_cast<int>(hms.subseconds().count()));
    return buf;
}

/// A msgpack reader over untrusted bytes: every length is checked against what is left, nesting is
/// bounded, and nothing is reserved that the input cannot fill.
class msgpack_reader {
public:
    explicit msgpack_reader(std::string_view in) : in_(in) {}

    /// One value; a value_t::discarded json stands for JavaScript's undefined (notepack 2's `d4 00 00`).
    bool value(json& out, int depth = 0) {
        if (depth > max_depth) return fail("nested too deeply");
        std::uint8_t op;
        if (!byte(op)) return false;
        if (op <= 0x7f) { out = static_cast<std::uint64_t>(op); return true; }
        if (op >= 0xe0) { out = static_cast<std::int64_t>(static_cast<std::int8_t>(op)); return true; }
        if ((op & 0xf0) == 0x80) return map(out, op & 0x0f, depth);
        if ((op & 0xf0) == 0x90) return array(out, op & 0x0f, depth);
        if ((op & 0xe0) == 0xa0) return str(out, op & 0x1f);
        std::uint64_t n = 0;
        switch (op) {
        case 0xc0: out = nullptr; return true;
        case 0xc2: out = false; return true;
        case 0xc3: out = true; return true;
        case 0xc4: case 0xc5: case 0xc6: return be(n, 1 << (op - 0xc4)) && bin(out, n);
        case 0xc7: case 0xc8: case 0xc9: return be(n, 1 << (op - 0xc7)) && ext(out, n, op);
        case 0xca: {
            if (!be(n, 4)) return false;
            out = static_cast<double>(std::bit_cast<float>(static_cast<std::uint32_t>(n)));
            return true;
        }
        case 0xcb: {
            if (!be(n, 8)) return false;
            const double d = std::bit_cast<double>(n);
            if (std::isfinite(d)) out = d;
            else out = nullptr;   // NaN and the infinities are null in JSON, as JSON.stringify writes them
            return true;
        }
        case 0xcc: case 0xcd: case 0xce: case 0xcf:
            if (!be(n, 1 << (op - 0xcc))) return false;
            out = n;
            return true;
        case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
            const int w = 1 << (op - 0xd0);
            if (!be(n, w)) return false;
            const int shift = 64 - 8 * w;   // sign-extend from w bytes
            out = static_cast<std::int64_t>(n << shift) >> shift;
            return true;
        }
        case 0xd4: return ext(out, 1, op);
        case 0xd5: return ext(out, 2, op);
        case 0xd6: return ext(out, 4, op);
        case 0xd7: return ext(out, 8, op);
        case 0xd8: return ext(out, 16, op);
        case 0xd9: case 0xda: case 0xdb: return be(n, 1 << (op - 0xd9)) && str(out, n);
        case 0xdc: case 0xdd: return be(n, op == 0xdc ? 2 : 4) && array(out, n, depth);
        case 0xde: case 0xdf: return be(n, op == 0xde ? 2 : 4) && map(out, n, depth);
        default: return fail("0xc1 is not a msgpack type");
        }
    }

    bool at_end() const noexcept { return in_.empty(); }
    const std::string& error() const noexcept { return error_; }
    bool fail(std::string why) {
        if (error_.empty()) error_ = std::move(why);
        return false;
    }

private:
    static constexpr int max_depth = 64;

    bool byte(std::uint8_t& b) {
        if (in_.empty()) return fail("truncated");
        b = static_cast<std::uint8_t>(in_.front());
        in_.remove_prefix(1);
        return true;
    }
    bool be(std::uint64_t& v, int bytes) {
        if (in_.size() < static_cast<std::size_t>(bytes)) return fail("truncated");
        v = 0;
        for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<std::uint8_t>(in_[static_cast<std::size_t>(i)]);
        in_.remove_prefix(static_cast<std::size_t>(bytes));
        return true;
    }
    bool take(std::string_view& span, std::uint64_t n) {
        if (in_.size() < n) return fail("truncated");
        span = in_.substr(0, static_cast<std::size_t>(n));
        in_.remove_prefix(static_cast<std::size_t>(n));
        return true;
    }
    bool str(json& out, std::uint64_t n) {
        std::string_view s;
        if (!take(s, n)) return false;
        out = std::string(s);
        return true;
    }
    bool bin(json& out, std::uint64_t n) {
        std::string_view s;
        if (!take(s, n)) return false;
        out = json::binary(std::vector<std::uint8_t>(s.begin(), s.end()));
        return true;
    }
    bool ext(json& out, std::uint64_t n, std::uint8_t op) {
        std::uint8_t type;
        std::string_view s;
        if (!byte(type) || !take(s, n)) return false;
        auto u = [&](std::size_t at, int w) {
            std::uint64_t v = 0;
            for (int i = 0; i < w; ++i) v = (v << 8) | static_cast<std::uint8_t>(s[at + static_cast<std::size_t>(i)]);
            return v;
        };
        if (type == 0 && op == 0xd4) {   // notepack 2: undefined
            out = json(json::value_t::discarded);
            return true;
        }
        if (type == 0 && op == 0xd7) {   // notepack 2: a Date, int64 milliseconds
            out = iso_time(static_cast<std::int64_t>(u(0, 8)));
            return true;
        }
        if (type == 0xff) {   // the msgpack timestamp (notepack 3's Date)
            std::int64_t secs = 0, nanos = 0;
            if (n == 4) secs = static_cast<std::int64_t>(u(0, 4));
            else if (n == 8) {
                const auto v = u(0, 8);
                nanos = static_cast<std::int64_t>(v >> 34);
                secs = static_cast<std::int64_t>(v & 0x3ffffffffull);
            } else if (n == 12) {
                nanos = static_cast<std::int64_t>(u(0, 4));
                secs = static_cast<std::int64_t>(u(4, 8));
            } else return fail("a timestamp of an unknown size");
            out = iso_time(secs * 1000 + nanos / 1'000'000);
            return true;
        }
        if (type == 1) {   // notepack 3: a BigInt as decimal text
            out = std::string(s);
            return true;
        }
        // notepack 2 writes an ArrayBuffer as ext type 0: bytes, as every other extension.
        out = json::binary(std::vector<std::uint8_t>(s.begin(), s.end()));
        return true;
    }
    bool array(json& out, std::uint64_t n, int depth) {
        if (n > in_.size()) return fail("truncated");   // each element takes a byte at least
        out = json::array();
        for (std::uint64_t i = 0; i < n; ++i) {
            json e;
            if (!value(e, depth + 1)) return false;
            if (e.is_discarded()) e = nullptr;   // [undefined] is [null] in JSON
            out.push_back(std::move(e));
        }
        return true;
    }
    bool map(json& out, std::uint64_t n, int depth) {
        if (n > in_.size() / 2) return fail("truncated");
        out = json::object();
        for (std::uint64_t i = 0; i < n; ++i) {
            json k, e;
            if (!value(k, depth + 1) || !value(e, depth + 1)) return false;
            std::string key;
            if (k.is_string()) key = k.get<std::string>();
            else if (k.is_number_integer()) key = k.dump();   // JavaScript's keys are text
            else return fail("a map key that is neither text nor an integer");
            if (e.is_discarded()) continue;   // {a: undefined} is {} in JSON
            out[key] = std::move(e);
        }
        return true;
    }

    std::string_view in_;
    std::string error_;
};

} // namespace detail

/// Reads one msgpack value that must fill bytes. Accepts every integer and float width, notepack
/// 2's extensions (undefined, Date, ArrayBuffer) and notepack 3's (timestamp, BigInt): a Date
/// becomes its ISO text, as JSON.stringify writes it. nullopt, with error saying why, on bytes that
/// are not one complete value.
inline std::optional<json> from_msgpack(std::string_view bytes, std::string& error) {
    detail::msgpack_reader r(bytes);
    json out;
    if (!r.value(out) || (!r.at_end() && !r.fail("bytes after the value"))) {
        error = "msgpack: " + r.error();
        return std::nullopt;
    }
    if (out.is_discarded()) out = nullptr;
    return out;
}

/// True when v holds binary anywhere (the adapters send such messages as msgpack, others as JSON).
inline bool has_binary(const json& v) {
    if (v.is_binary()) return true;
    if (v.is_array() || v.is_object())
        for (const auto& e : v)
            if (has_binary(e)) return true;
    return false;
}

/// A message on a request or response channel: JSON text when it starts with '{', else msgpack
/// (the adapter's rule). nullopt, with error set, when it is neither.
inline std::optional<json> decode_message(std::string_view bytes, std::string& error) {
    if (!bytes.empty() && bytes.front() == '{') {
        json v = json::parse(bytes, nullptr, false);
        if (v.is_discarded()) {
            error = "malformed JSON";
            return std::nullopt;
        }
        return v;
    }
    return from_msgpack(bytes, error);
}

// ==== Channels ====

/// Escapes the glob characters of a PSUBSCRIBE pattern (`*?[]\`), so that a key or a namespace
/// that holds one matches itself only.
inline std::string glob_escape(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
        out += c;
    }
    return out;
}

/// key#nsp#: broadcasts to a whole namespace or to several rooms; sharded mode's main channel.
inline std::string broadcast_channel(std::string_view key, std::string_view nsp) {
    return std::string(key).append("#").append(nsp).append("#");
}
/// key#nsp#room#: broadcasts to exactly one room.
inline std::string room_channel(std::string_view key, std::string_view nsp, std::string_view room) {
    return broadcast_channel(key, nsp).append(room).append("#");
}
/// The PSUBSCRIBE pattern of a namespace's broadcasts: key#nsp#* with key and nsp escaped.
inline std::string broadcast_pattern(std::string_view key, std::string_view nsp) {
    return glob_escape(key).append("#").append(glob_escape(nsp)).append("#*");
}
/// key-request#nsp#: requests to every node.
inline std::string request_channel(std::string_view key, std::string_view nsp) {
    return std::string(key).append("-request#").append(nsp).append("#");
}
/// key-response#nsp#: answers to requests (and, with uid, publishOnSpecificResponseChannel's).
inline std::string response_channel(std::string_view key, std::string_view nsp, std::string_view uid = {}) {
    auto out = std::string(key).append("-response#").append(nsp).append("#");
    if (!uid.empty()) out.append(uid).append("#");
    return out;
}
/// The room a broadcast channel of this namespace names: empty for the namespace's own channel,
/// nullopt when the channel is not one of the namespace's broadcast channels.
inline std::optional<std::string_view> room_of(std::string_view channel, std::string_view key, std::string_view nsp) {
    if (channel.size() < key.size() + nsp.size() + 2 || !channel.starts_with(key)) return std::nullopt;
    channel.remove_prefix(key.size());
    if (channel.front() != '#' || !channel.substr(1).starts_with(nsp)) return std::nullopt;
    channel.remove_prefix(1 + nsp.size());
    if (channel.empty() || channel.front() != '#') return std::nullopt;
    channel.remove_prefix(1);
    if (channel.empty()) return channel;
    if (channel.back() != '#') return std::nullopt;
    return channel.substr(0, channel.size() - 1);
}

// ==== Messages ====

/// Which sockets a broadcast or a request names (the adapter's `opts`): the union of rooms (all
/// when empty), less those in except (rooms, or socket ids, which are rooms too).
struct selection {
    std::vector<std::string> rooms{};
    std::vector<std::string> except{};
    json flags = json::object();   ///< volatile, compress, timeout...: receivers read volatile and compress

    bool is_volatile() const { return flags.is_object() && flags.value("volatile", false); }
    bool compress() const { return !flags.is_object() || flags.value("compress", true); }
    /// {rooms, except} (and flags when with_flags), as the adapter writes opts.
    json to_json(bool with_flags = true) const {
        json out = json::object();
        out["rooms"] = rooms;
        out["except"] = except;
        if (with_flags) out["flags"] = flags.is_object() ? flags : json::object();
        return out;
    }
    /// Reads opts as any writer sends it: missing members are empty; rooms that are numbers are
    /// their decimal text (a room is any value to Socket.IO, text to us). False when malformed.
    static bool read(const json& opts, selection& out) {
        if (opts.is_null()) return true;
        if (!opts.is_object()) return false;
        auto list = [](const json& v, std::vector<std::string>& to) {
            if (v.is_null()) return true;
            if (!v.is_array()) return false;
            for (const auto& e : v) {
                if (e.is_string()) to.push_back(e.get<std::string>());
                else if (e.is_number()) to.push_back(e.dump());
                else return false;
            }
            return true;
        };
        if (!list(opts.value("rooms", json()), out.rooms) || !list(opts.value("except", json()), out.except))
            return false;
        if (auto f = opts.find("flags"); f != opts.end() && f->is_object()) out.flags = *f;
        return true;
    }
};

/// A broadcast as the classic adapter and the emitter publish it: msgpack [uid, packet, opts], the
/// packet {type: 2, data: [event, ...args], nsp}.
struct broadcast {
    std::string uid{};        ///< the sender's (the emitter's is "emitter")
    std::string nsp = "/";
    json data = json::array();   ///< [event, ...args]
    selection opts{};

    /// The channel it goes to: the room's when it names exactly one room, else the namespace's.
    std::string channel(std::string_view key) const {
        return opts.rooms.size() == 1 ? room_channel(key, nsp, opts.rooms.front()) : broadcast_channel(key, nsp);
    }
    std::string encode() const {
        std::string out;
        out += '\x93';
        write_msgpack(out, uid);
        out += '\x83';
        write_msgpack(out, "type");
        write_msgpack(out, 2);
        write_msgpack(out, "data");
        write_msgpack(out, data);
        write_msgpack(out, "nsp");
        write_msgpack(out, nsp);
        // opts in the adapter's key order (a json object would sort them)
        out += '\x83';
        write_msgpack(out, "rooms");
        write_msgpack(out, opts.rooms);
        write_msgpack(out, "except");
        write_msgpack(out, opts.except);
        write_msgpack(out, "flags");
        write_msgpack(out, opts.flags.is_object() ? opts.flags : json::object());
        return out;
    }
    /// Reads a published broadcast. nullopt, with error set, for anything but [uid, event packet,
    /// opts]; a packet without nsp is the main namespace's, as the adapter reads it.
    static std::optional<broadcast> decode(std::string_view bytes, std::string& error) {
        auto v = from_msgpack(bytes, error);
        if (!v) return std::nullopt;
        auto bad = [&](const char* why) -> std::optional<broadcast> {
            error = why;
            return std::nullopt;
        };
        if (!v->is_array() || v->size() < 2) return bad("a broadcast is [uid, packet, opts]");
        broadcast b;
        if ((*v)[0].is_string()) b.uid = (*v)[0].get<std::string>();
        const json& packet = (*v)[1];
        if (!packet.is_object()) return bad("a broadcast's packet must be a map");
        const json type = packet.value("type", json());
        if (type != 2 && type != 5) return bad("a broadcast's packet must be an event (type 2 or 5)");
        if (auto n = packet.find("nsp"); n != packet.end() && n->is_string()) b.nsp = n->get<std::string>();
        auto d = packet.find("data");
        if (d == packet.end() || !d->is_array() || d->empty() || !(*d)[0].is_string())
            return bad("a broadcast's data must be [event, ...args]");
        b.data = std::move(*d);
        if (v->size() > 2 && !selection::read((*v)[2], b.opts)) return bad("a broadcast's opts are malformed");
        return b;
    }
};

/// The classic adapter's request and response types (the `type` of a message on the request or
/// response channel).
enum class request_type : int {
    sockets = 0,            ///< legacy: the ids in some rooms
    all_rooms = 1,          ///< every room of every node
    remote_join = 2,        ///< sockets of a selection join rooms (every node, the sender too)
    remote_leave = 3,       ///< ... leave rooms
    remote_disconnect = 4,  ///< ... are disconnected
    remote_fetch = 5,       ///< the sockets of a selection, with their handshake, rooms and data
    server_side_emit = 6,   ///< an event to the other servers, maybe with an ack
    broadcast = 7,          ///< a broadcast whose recipients acknowledge (msgpack)
    broadcast_client_count = 8,   ///< response: how many clients a node sent it to
    broadcast_ack = 9,      ///< response: one client's acknowledgement (msgpack)
};

/// The sharded (ClusterAdapter) message types: {uid, nsp, type, data}.
enum class cluster_type : int {
    initial_heartbeat = 1,
    heartbeat = 2,
    broadcast = 3,
    sockets_join = 4,
    sockets_leave = 5,
    disconnect_sockets = 6,
    fetch_sockets = 7,
    fetch_sockets_response = 8,
    server_side_emit = 9,
    server_side_emit_response = 10,
    broadcast_client_count = 11,
    broadcast_ack = 12,
    adapter_close = 13,
};

/// A ClusterAdapter message as the sharded adapter publishes it: msgpack when data holds binary,
/// else JSON text.
inline std::string encode_cluster(const json& message) {
    return has_binary(message) ? to_msgpack(message) : message.dump();
}


// ==== The streams adapter (@socket.io/redis-streams-adapter 0.3.x) ====

/// v as msgpack, in base64: how the streams adapter puts binary data and sessions in text fields.
inline std::string base64_msgpack(const json& v) {
    const std::string packed = to_msgpack(v);
    return gw::detail::base64_encode({reinterpret_cast<const unsigned char*>(packed.data()), packed.size()});
}

/// A ClusterAdapter message as a stream entry's fields, in the streams adapter's order: uid, nsp,
/// type (decimal text), and data when there is some: JSON text, or base64 of msgpack when it holds
/// binary.
inline std::vector<std::string> stream_fields(const json& message) {
    std::vector<std::string> f;
    f.push_back("uid");
    f.push_back(message.value("uid", std::string()));
    f.push_back("nsp");
    f.push_back(message.value("nsp", std::string("/")));
    f.push_back("type");
    f.push_back(std::to_string(message.value("type", 0)));
    if (auto d = message.find("data"); d != message.end() && !d->is_null()) {
        f.push_back("data");
        f.push_back(has_binary(*d) ? base64_msgpack(*d) : d->dump());
    }
    return f;
}

/// A stream entry's fields (name, value, name, value...) back to the message {uid, nsp, type,
/// data}; nullopt, with error set, when they are not the adapter's (no nsp, a type that is not a
/// number, data that is neither JSON nor base64 msgpack).
inline std::optional<json> from_stream_fields(const std::vector<std::string>& fields, std::string& error) {
    json m = json::object();
    std::string_view data;
    bool has_data = false, has_nsp = false, has_type = false;
    for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
        const std::string& name = fields[i];
        const std::string& value = fields[i + 1];
        if (name == "uid") m["uid"] = value;
        else if (name == "nsp") {
            m["nsp"] = value;
            has_nsp = true;
        } else if (name == "type") {
            int t = 0;
            const auto r = std::from_chars(value.data(), value.data() + value.size(), t);
            if (r.ec != std::errc{} || r.ptr != value.data() + value.size()) {
                error = "type is not a number";
                return std::nullopt;
            }
            m["type"] = t;
            has_type = true;
        } else if (name == "data") {
            data = value;
            has_data = true;
        }
    }
    if (!has_nsp || !has_type) {
        error = "no nsp or type";
        return std::nullopt;
    }
    if (has_data) {
        if (!data.empty() && data.front() == '{') {
            json v = json::parse(data, nullptr, false);
            if (v.is_discarded()) {
                error = "malformed JSON";
                return std::nullopt;
            }
            m["data"] = std::move(v);
        } else {
            std::string packed;
            if (!gw::detail::eio::base64_decode(data, packed)) {
                error = "data is neither JSON nor base64";
                return std::nullopt;
            }
            auto v = from_msgpack(packed, error);
            if (!v) return std::nullopt;
            m["data"] = std::move(*v);
        }
    }
    return m;
}

/// True when text is a stream entry id ("1700000000000-0"): the only offsets the streams adapter
/// restores from.
inline bool is_stream_id(std::string_view text) {
    const auto dash = text.find('-');
    if (dash == 0 || dash == std::string_view::npos || dash + 1 == text.size()) return false;
    for (std::size_t i = 0; i < text.size(); ++i)
        if (i != dash && (text[i] < '0' || text[i] > '9')) return false;
    return true;
}

/// A session kept for connection-state recovery as the streams adapter keeps it under
/// `sio:session:<pid>`: base64 of msgpack {sid, pid, rooms (its id-room among them), data}. nsp is
/// ours (the adapter ignores members it does not know).
struct stored_session {
    std::string sid, pid, nsp;
    std::vector<std::string> rooms;   ///< without the id-room
    json data;

    std::string encode() const {
        json v = json::object();
        v["sid"] = sid;
        v["pid"] = pid;
        json r = json::array({sid});
        for (const auto& room : rooms) r.push_back(room);
        v["rooms"] = std::move(r);
        v["data"] = data;
        v["nsp"] = nsp;
        return base64_msgpack(v);
    }
    /// nullopt when text is not such a session (no sid).
    static std::optional<stored_session> decode(std::string_view text) {
        std::string packed, error;
        if (!gw::detail::eio::base64_decode(text, packed)) return std::nullopt;
        auto v = from_msgpack(packed, error);
        if (!v || !v->is_object() || !v->contains("sid") || !(*v)["sid"].is_string()) return std::nullopt;
        stored_session s;
        s.sid = (*v)["sid"].get<std::string>();
        s.pid = v->value("pid", std::string());
        s.nsp = v->value("nsp", std::string());
        if (auto r = v->find("rooms"); r != v->end() && r->is_array())
            for (const auto& room : *r)
                if (room.is_string() && room.get<std::string>() != s.sid) s.rooms.push_back(room.get<std::string>());
        s.data = v->value("data", json());
        return s;
    }
};

} // namespace gw::v0::sio_redis
#endif
