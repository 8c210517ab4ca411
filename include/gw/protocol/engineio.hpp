// Engine.IO v4 without sockets: packets, polling payloads (records separated by 0x1E, binary as
// "b" + base64), session ids, the open packet and the error bodies of refused requests.
#pragma once
#include "../detail/config.hpp"
#include "text.hpp"
#include "utf8.hpp"

namespace gw::inline v0::detail::eio {

/// A packet's type, as its first character on the wire.
enum class packet_type : char { open = '0', close = '1', ping = '2', pong = '3', message = '4', upgrade = '5', noop = '6' };

/// One Engine.IO packet. A binary packet is always a message; its data are the raw bytes.
struct packet {
    packet_type type = packet_type::message;
    bool binary = false;
    std::string data;
};

/// The record separator between the packets of a polling payload.
inline constexpr char separator = '\x1e';

/// Standard base64 (with padding) back to bytes; false when the text is not base64.
inline bool base64_decode(std::string_view in, std::string& out) {
    out.clear();
    if (in.size() % 4 != 0) return false;
    if (in.empty()) return true;
    std::size_t pad = 0;
    if (in.back() == '=') ++pad;
    if (in.size() >= 2 && in[in.size() - 2] == '=') ++pad;
    // EVP_DecodeBlock ignores leading and trailing blanks and takes '=' anywhere: check strictly here.
    for (std::size_t i = 0; i < in.size() - pad; ++i) {
        const char c = in[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/')) return false;
    }
    out.resize(in.size() / 4 * 3);
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(in.data()),
                                  static_cast<int>(in.size()));
    if (n < 0 || static_cast<std::size_t>(n) < pad) return false;
    out.resize(static_cast<std::size_t>(n) - pad);
    return true;
}

/// One packet from a WebSocket message: a text one is its type character and data; a binary
/// one is a message. nullopt when the text is empty or its type unknown. Takes the message's
/// bytes: the packet's data is them, less the type (no copy).
inline std::optional<packet> decode_packet_in_place(std::string&& text, bool binary) {
    if (binary) return packet{packet_type::message, true, std::move(text)};
    if (text.empty() || text.front() < '0' || text.front() > '6') return std::nullopt;
    const auto type = static_cast<packet_type>(text.front());
    text.erase(0, 1);
    return packet{type, false, std::move(text)};
}
/// The same from a view (a record of a polling payload).
inline std::optional<packet> decode_packet(std::string_view text, bool binary) {
    return decode_packet_in_place(std::string(text), binary);
}

/// Splits a polling POST body into packets, appended to out in order. Stops at the first record
/// that is not a packet and returns false (the packets before it stay in out, to be processed as
/// the reference server does). An empty body is malformed. Text is read as UTF-8 as the reference
/// server reads it: an ill-formed sequence becomes U+FFFD, so what is passed on is valid UTF-8.
inline bool decode_payload(std::string_view body, std::vector<packet>& out) {
    if (body.empty()) return false;
    for (;;) {
        const auto end = body.find(separator);
        const std::string_view record = body.substr(0, end);
        if (!record.empty() && record.front() == 'b') {
            packet p{packet_type::message, true, {}};
            if (!base64_decode(record.substr(1), p.data)) return false;
            out.push_back(std::move(p));
        } else if (auto p = decode_packet(record, false)) {
            if (!is_valid_utf8(p->data)) p->data = utf8_repaired(p->data);
            out.push_back(std::move(*p));
        } else {
            return false;
        }
        if (end == std::string_view::npos) return true;
        body.remove_prefix(end + 1);
    }
}

/// Appends a packet to a polling payload, after a separator unless it is the first.
inline void append_to_payload(std::string& payload, packet_type type, std::string_view data, bool binary) {
    if (!payload.empty()) payload += separator;
    if (binary) {
        payload += 'b';
        payload += base64_encode({reinterpret_cast<const unsigned char*>(data.data()), data.size()});
        return;
    }
    payload += static_cast<char>(type);
    payload += data;
}

/// A packet as a WebSocket text message, in data's own storage (its spare capacity, usually: no
/// allocation): its type character, then its data.
inline std::string encode_text_in_place(packet_type type, std::string&& data) {
    data.insert(data.begin(), static_cast<char>(type));
    return std::move(data);
}
/// The same from a view.
inline std::string encode_text(packet_type type, std::string_view data) {
    std::string out;
    out.reserve(1 + data.size());
    out += static_cast<char>(type);
    out += data;
    return out;
}

/// A session id as the reference server makes them: 15 random bytes in URL-safe base64, 20
/// characters. Unguessable (it is the session's only credential over polling).
inline std::string make_sid() {
    std::array<unsigned char, 15> raw;
    random_bytes(raw.data(), raw.size());
    std::string id = base64_encode(raw);
    for (char& c : id) c = c == '+' ? '-' : c == '/' ? '_' : c;
    return id;
}

/// Only URL-safe base64's characters: what make_sid makes.
inline bool is_sid_text(std::string_view text) noexcept {
    for (char c : text)
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) return false;
    return true;
}

/// A node tag: 4 of those characters, so that a sid made with one stays URL-safe.
inline bool is_node_tag(std::string_view tag) noexcept { return tag.size() == 4 && is_sid_text(tag); }

/// A session id that names its node, for a cluster where any node may receive the session's
/// requests: the node's 4-character tag, then 12 random bytes in URL-safe base64. Still 20
/// characters, as clients expect, and still 96 random bits (as many as the reference's ids, whose
/// last 3 bytes are a counter).
inline std::string make_sid(std::string_view tag) {
    if (!is_node_tag(tag)) return make_sid();
    std::array<unsigned char, 12> raw;
    random_bytes(raw.data(), raw.size());
    std::string id(tag);
    id += base64_encode(raw);
    for (char& c : id) c = c == '+' ? '-' : c == '/' ? '_' : c;
    return id;
}

/// The node tag of a sid made by make_sid(tag); "" when the sid cannot be one (its length, its
/// characters), so that what a cluster carries onwards is a plain 20-character id.
inline std::string_view node_tag_of(std::string_view sid) noexcept {
    if (sid.size() != 20 || !is_sid_text(sid)) return {};
    return sid.substr(0, 4);
}

/// Why a request is refused (the "code" of the error body).
enum class error_code : int {
    transport_unknown = 0,
    session_unknown = 1,
    bad_handshake_method = 2,
    bad_request = 3,
    forbidden = 4,
    unsupported_protocol_version = 5,
};

/// The reference server's message for each code.
inline std::string_view error_message(error_code c) noexcept {
    switch (c) {
    case error_code::transport_unknown: return "Transport unknown";
    case error_code::session_unknown: return "Session ID unknown";
    case error_code::bad_handshake_method: return "Bad handshake method";
    case error_code::bad_request: return "Bad request";
    case error_code::forbidden: return "Forbidden";
    case error_code::unsupported_protocol_version: return "Unsupported protocol version";
    }
    return "Bad request";
}

/// The HTTP status of a refusal over polling: 403 for forbidden, else 400.
inline int error_status(error_code c) noexcept { return c == error_code::forbidden ? 403 : 400; }

/// Appends s as a JSON string: quotes, backslash and control characters escaped, the rest as is.
inline void append_json_string(std::string& out, std::string_view s) {
    out += '"';
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20) {
                static constexpr char hex[] = "0123456789abcdef";
                out += "\\u00";
                out += hex[c >> 4];
                out += hex[c & 15];
            } else {
                out += ch;
            }
        }
    }
    out += '"';
}

/// A polling refusal's body, {"code":N,"message":"..."}; message empty means the code's own.
inline std::string error_body(error_code c, std::string_view message = {}) {
    std::string out = "{\"code\":";
    out += std::to_string(static_cast<int>(c));
    out += ",\"message\":";
    append_json_string(out, message.empty() ? error_message(c) : message);
    out += '}';
    return out;
}

/// The open packet's data (after the '0'): the keys in the reference server's order.
inline std::string open_packet_data(std::string_view sid, const std::vector<std::string_view>& upgrades,
                                    std::uint64_t ping_interval_ms, std::uint64_t ping_timeout_ms, std::size_t max_payload) {
    std::string out = "{\"sid\":";
    append_json_string(out, sid);
    out += ",\"upgrades\":[";
    for (std::size_t i = 0; i < upgrades.size(); ++i) {
        if (i) out += ',';
        append_json_string(out, upgrades[i]);
    }
    out += "],\"pingInterval\":" + std::to_string(ping_interval_ms);
    out += ",\"pingTimeout\":" + std::to_string(ping_timeout_ms);
    out += ",\"maxPayload\":" + std::to_string(max_payload) + "}";
    return out;
}

/// The transports a request may name.
enum class transport_kind : std::uint8_t { polling, websocket };

/// What a request asks of the Engine.IO endpoint, read off its method, query and upgrade headers,
/// before any session is looked up.
struct request_kind {
    std::optional<error_code> refused;   ///< set when the request is refused outright
    transport_kind transport = transport_kind::polling;
    std::string sid;                     ///< empty: a handshake
};

/// Classifies a request in the reference server's order: the transport, then (with a sid) nothing
/// more here, or (without one) the method, a WebSocket handshake only as an upgrade, and the
/// protocol revision. allow_request runs between the last two (the caller's part).
struct request_checks {
    std::string_view method;
    std::optional<std::string> eio, transport, sid;
    bool is_upgrade = false;
    bool polling_enabled = true, websocket_enabled = true;
};
inline request_kind classify(const request_checks& r) {
    request_kind k;
    if (r.transport == "polling" && r.polling_enabled) k.transport = transport_kind::polling;
    else if (r.transport == "websocket" && r.websocket_enabled) k.transport = transport_kind::websocket;
    else {
        k.refused = error_code::transport_unknown;
        return k;
    }
    if (r.sid) {
        k.sid = *r.sid;
        if (k.sid.empty()) k.refused = error_code::session_unknown;
        return k;
    }
    if (r.method != "GET") k.refused = error_code::bad_handshake_method;
    else if (k.transport == transport_kind::websocket && !r.is_upgrade) k.refused = error_code::bad_request;
    return k;
}

/// The protocol revision check of a handshake (after allow_request): only "4" is spoken.
inline bool supported_revision(const std::optional<std::string>& eio) noexcept {
    return eio && eio->size() == 1 && eio->front() == '4';
}

} // namespace gw::v0::detail::eio
