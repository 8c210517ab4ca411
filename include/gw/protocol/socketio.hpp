// Socket.IO v5 packet heads without sockets or JSON: the type, the binary attachment count, the
// namespace and the ack id in front of a packet's JSON, read and written; the reserved event
// names; and the shape each type's JSON must have, judged by its first character.
#pragma once
#include "../detail/config.hpp"

namespace gw::inline v0::detail::sio {

/// A packet's type, the digit that starts it on the wire.
enum class packet_type : std::uint8_t { connect = 0, disconnect = 1, event = 2, ack = 3, connect_error = 4, binary_event = 5, binary_ack = 6 };

/// A packet's parts as views into the text it was parsed from.
struct packet_head {
    packet_type type = packet_type::event;
    std::size_t attachments = 0;   ///< binary_event / binary_ack: the binary messages that follow
    std::string_view nsp = "/";    ///< "/" when the packet names none
    std::int64_t id = -1;          ///< the ack id; -1 when none
    std::string_view data;         ///< the JSON text after the head; may be empty
};

inline constexpr bool is_binary(packet_type t) noexcept {
    return t == packet_type::binary_event || t == packet_type::binary_ack;
}

inline constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

/// Parses "<type>[<attachments>-][/<nsp>,][<id>][<json>]". Returns "" on success, else what is wrong
/// (a short English reason). Rules: type one digit 0-6; attachments only for types 5 and 6, where
/// they are mandatory: decimal digits then '-', at most max_attachments (a count above it is an error;
/// more than 10 digits is an error); nsp: if the next char is '/', up to the first ',' or the end of the
/// text (so "40/random" works, nsp "/random"; the ',' is consumed); the id: the run of digits that
/// follows (at most 18 digits, else error); data: the rest. Does not look inside data.
/// On failure out holds what was read before the fault.
inline std::string_view parse_head(std::string_view text, packet_head& out, std::size_t max_attachments = 10) {
    out = packet_head{};
    if (text.empty()) return "empty packet";
    if (text[0] < '0' || text[0] > '6') return "unknown packet type";
    out.type = static_cast<packet_type>(text[0] - '0');
    std::size_t i = 1;

    if (is_binary(out.type)) {
        // Ten digits hold any count up to 9'999'999'999: no overflow, whatever the limit.
        const std::size_t start = i;
        std::size_t n = 0;
        while (i < text.size() && is_digit(text[i]) && i - start < 11) n = n * 10 + static_cast<std::size_t>(text[i++] - '0');
        if (i - start > 10) return "attachment count too long";
        if (i == start) return "missing attachment count";
        if (i == text.size() || text[i] != '-') return "malformed attachment count";
        if (n > max_attachments) return "too many attachments";
        out.attachments = n;
        ++i;
    }

    if (i < text.size() && text[i] == '/') {
        // A namespace may hold anything but ','; without one, it runs to the end ("40/random").
        const auto comma = text.find(',', i);
        out.nsp = text.substr(i, comma == std::string_view::npos ? std::string_view::npos : comma - i);
        i = comma == std::string_view::npos ? text.size() : comma + 1;
    }

    // 18 digits stay below 2^63, and above the 2^53 that JavaScript clients can count to.
    const std::size_t start = i;
    std::int64_t id = 0;
    while (i < text.size() && is_digit(text[i])) {
        if (i - start == 18) return "ack id too long";
        id = id * 10 + (text[i++] - '0');
    }
    if (i > start) out.id = id;

    out.data = text.substr(i);
    return {};
}

/// Appends a head: type digit, "N-" for binary types, "/nsp," unless nsp is "/" (or empty), and the
/// id unless negative. nsp must start with '/' and hold no ',' (as the namespaces a server accepts).
inline void write_head(std::string& out, packet_type type, std::string_view nsp, std::int64_t id = -1,
                       std::size_t attachments = 0) {
    char buf[24];   // the longest of a 64-bit count or id, with room to spare
    out += static_cast<char>('0' + static_cast<int>(type));
    if (is_binary(type)) {
        out.append(buf, std::to_chars(buf, buf + sizeof buf, attachments).ptr);
        out += '-';
    }
    if (!nsp.empty() && nsp != "/") {
        out += nsp;
        out += ',';
    }
    if (id >= 0) out.append(buf, std::to_chars(buf, buf + sizeof buf, id).ptr);
}

/// The event names a client may not send and the server may not emit: connect, connect_error,
/// disconnect, disconnecting, newListener, removeListener.
inline bool is_reserved_event(std::string_view name) noexcept {
    return name == "connect" || name == "connect_error" || name == "disconnect" || name == "disconnecting" ||
           name == "newListener" || name == "removeListener";
}

/// Checks the data of a decoded packet against its type, at the JSON text level only (first non-space
/// char): connect: empty or an object ('{'); disconnect: empty; event/binary_event: an array ('[');
/// ack/binary_ack: an array; connect_error: an object or a string. Returns "" or the reason.
/// Stricter than the reference decoder on purpose: it lets "42" and "43" (no JSON) through, and
/// takes null or an array for a connect_error.
inline std::string_view check_data_shape(packet_type type, std::string_view data) {
    const auto first_at = data.find_first_not_of(" \t\n\r");   // JSON's whitespace
    const char first = first_at == std::string_view::npos ? '\0' : data[first_at];
    switch (type) {
    case packet_type::connect:
        return data.empty() || first == '{' ? std::string_view{} : "connect payload must be an object";
    case packet_type::disconnect:
        return data.empty() ? std::string_view{} : "disconnect carries no payload";
    case packet_type::event:
    case packet_type::binary_event:
        return first == '[' ? std::string_view{} : "event payload must be an array";
    case packet_type::ack:
    case packet_type::binary_ack:
        return first == '[' ? std::string_view{} : "ack payload must be an array";
    case packet_type::connect_error:
        return first == '{' || first == '"' ? std::string_view{} : "connect_error payload must be an object or a string";
    }
    return "unknown packet type";
}

} // namespace gw::v0::detail::sio
