// HTTP/1.1 without sockets: a request head parsed in place (the upgrade request, a plain GET),
// answers formatted, status texts, and ws:// URLs split for the client.
#pragma once
#include "../detail/config.hpp"
#include "text.hpp"

namespace gw::inline v0 {

/// A plain HTTP answer: a refused upgrade, or the application's answer to a plain GET.
struct http_response {
    int status = 200;
    std::string body;
    std::string content_type = "text/plain; charset=utf-8";
    std::vector<std::pair<std::string, std::string>> headers{};   ///< extra header lines
};

namespace detail {

struct request_parser;

/// An HTTP/1.x request head: its bytes, owned, and where the parts stand in them. gw::http_request
/// is this plus where the request came from; the pure checks of the handshake take the head alone.
/// Every view it returns lives as long as the head.
class request_head {
public:
    std::string_view method() const noexcept { return view(method_); }
    std::string_view target() const noexcept { return view(target_); }   ///< path and query as sent
    std::string_view path() const noexcept { return view(path_); }       ///< without the query
    std::string_view query() const noexcept { return view(query_); }     ///< after '?', not decoded
    int version_minor() const noexcept { return minor_; }                ///< HTTP/1.x

    /// The first value of a header, by case-insensitive name.
    std::optional<std::string_view> header(std::string_view name) const noexcept;
    /// Calls f(name, value) for every header line, in order.
    template <class F> void for_each_header(F&& f) const {
        for (std::size_t i = 0; i < count_; ++i) {
            const field h = field_at(i);
            f(view(h.name), view(h.value));
        }
    }
    /// True when a comma-separated header (all its lines) holds token, case-insensitively.
    bool has_token(std::string_view name, std::string_view token) const noexcept;
    /// The subprotocols the client offered in Sec-WebSocket-Protocol, in order.
    std::vector<std::string_view> protocols() const;
    /// A query parameter, percent-decoded ('+' as space); nullopt when absent.
    std::optional<std::string> query_param(std::string_view name) const;
    /// A cookie from the Cookie header(s) (RFC 6265: "a=1; b=2", a quoted value unquoted); nullopt
    /// when absent.
    std::optional<std::string_view> cookie(std::string_view name) const noexcept;
    /// A bearer token (RFC 6750) from, in this order: "Authorization: Bearer T"; the subprotocol
    /// offered after "access_token" (browsers cannot set headers: new WebSocket(url, ["access_token",
    /// T])); the query parameter access_token. nullopt when none carries one.
    std::optional<std::string> bearer_token() const;

private:
    struct span_ { std::uint16_t off = 0, len = 0; };
    struct field { span_ name, value; };
    std::string_view view(span_ s) const noexcept {
        return bytes_ ? std::string_view(*bytes_).substr(s.off, s.len) : std::string_view();
    }
    field field_at(std::size_t i) const noexcept {
        field f;
        std::memcpy(&f, bytes_->data() + size_ + i * sizeof(field), sizeof(field));
        return f;
    }
    template <class F> void for_each_value(std::string_view name, F&& f) const;

    // The head's bytes, then its table of header lines (a field each): one block, shared by every
    // copy of the request (an Engine.IO session's and each of its namespace sockets').
    std::shared_ptr<const std::string> bytes_;
    std::uint16_t size_ = 0, count_ = 0;
    span_ method_, target_, path_, query_;
    int minor_ = 1;
    friend struct request_parser;
};

/// Why a request cannot be upgraded: an HTTP status and a short reason for the body.
struct http_error {
    int status = 0;    ///< 0: no error
    std::string_view reason;
};

inline std::string_view status_text(int status) noexcept {
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 408: return "Request Timeout";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return status < 400 ? "OK" : status < 500 ? "Bad Request" : "Internal Server Error";
    }
}

/// A complete plain-HTTP response: one that closes the connection, unless keep_alive (the
/// client may send its next request on it: Engine.IO's polling).
inline std::string format_response(const http_response& r, bool keep_alive = false) {
    std::string out;
    out.reserve(128 + r.body.size());
    out.append("HTTP/1.1 ").append(std::to_string(r.status)).append(" ").append(status_text(r.status));
    out.append("\r\nContent-Type: ").append(r.content_type);
    out.append("\r\nContent-Length: ").append(std::to_string(r.body.size()));
    out.append(keep_alive ? "\r\nConnection: keep-alive\r\n" : "\r\nConnection: close\r\n");
    for (const auto& [k, v] : r.headers) out.append(k).append(": ").append(v).append("\r\n");
    out.append("\r\n").append(r.body);
    return out;
}

/// Parses an HTTP/1.x request head (everything up to and including the blank line).
struct request_parser {
    /// Fills req from raw (which must end with "\r\n\r\n"); returns the error to answer, if any.
    static detail::http_error parse(std::string raw, request_head& req) {
        if (raw.size() > 0xFFFF) return {431, "request header too large"};
        std::vector<request_head::field> fields;
        const auto error = parse(raw, req, fields);
        // Kept for the connection's life, even when refused (the log names its target): the bytes,
        // then the table, with no slack from the read.
        req.size_ = static_cast<std::uint16_t>(raw.size());
        req.count_ = static_cast<std::uint16_t>(fields.size());
        raw.append(reinterpret_cast<const char*>(fields.data()), fields.size() * sizeof(request_head::field));
        raw.shrink_to_fit();
        req.bytes_ = std::make_shared<const std::string>(std::move(raw));
        return error;
    }

private:
    static detail::http_error parse(std::string_view all, request_head& req, std::vector<request_head::field>& fields) {
        using detail::http_error;
        auto at = [&](std::string_view part) {
            return request_head::span_{static_cast<std::uint16_t>(part.data() - all.data()),
                                       static_cast<std::uint16_t>(part.size())};
        };
        std::size_t eol = all.find("\r\n");
        if (eol == std::string_view::npos) return {400, "malformed request line"};
        std::string_view line = all.substr(0, eol);
        // METHOD SP request-target SP HTTP/1.x
        auto sp1 = line.find(' ');
        if (sp1 == std::string_view::npos || sp1 == 0) return {400, "malformed request line"};
        auto method = line.substr(0, sp1);
        for (unsigned char c : method)
            if (!detail::is_token_char(c)) return {400, "malformed request line"};
        auto sp2 = line.find(' ', sp1 + 1);
        if (sp2 == std::string_view::npos || sp2 == sp1 + 1) return {400, "malformed request line"};
        auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
        auto version = line.substr(sp2 + 1);
        if (target.front() != '/') return {400, "request target must be a path"};
        for (unsigned char c : target)
            if (c <= 0x20 || c == 0x7F) return {400, "malformed request target"};
        if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' || version[5] < '0' ||
            version[5] > '9' || version[7] < '0' || version[7] > '9')
            return {400, "malformed HTTP version"};
        if (version[5] != '1') return {505, "only HTTP/1.x is supported"};
        req.minor_ = version[7] - '0';
        req.method_ = at(method);
        req.target_ = at(target);
        auto q = target.find('?');
        req.path_ = at(target.substr(0, q));
        req.query_ = q == std::string_view::npos ? at(target.substr(target.size())) : at(target.substr(q + 1));
        // Header lines until the empty line.
        std::size_t pos = eol + 2;
        for (;;) {
            eol = all.find("\r\n", pos);
            if (eol == std::string_view::npos) return {400, "header block not terminated"};
            line = all.substr(pos, eol - pos);
            pos = eol + 2;
            if (line.empty()) break;
            if (line.front() == ' ' || line.front() == '\t') return {400, "obsolete header folding"};
            auto colon = line.find(':');
            if (colon == std::string_view::npos || colon == 0) return {400, "malformed header line"};
            auto name = line.substr(0, colon);
            for (unsigned char c : name)
                if (!detail::is_token_char(c)) return {400, "malformed header name"};
            auto value = detail::trim(line.substr(colon + 1));
            for (unsigned char c : value)
                if ((c < 0x20 && c != '\t') || c == 0x7F) return {400, "malformed header value"};
            fields.push_back({at(name), at(value)});
        }
        if (pos != all.size()) return {400, "bytes after the header block"};
        return {};
    }
};


template <class F> void request_head::for_each_value(std::string_view name, F&& f) const {
    for (std::size_t i = 0; i < count_; ++i)
        if (const field h = field_at(i); detail::iequals(view(h.name), name)) f(view(h.value));
}

inline std::optional<std::string_view> request_head::header(std::string_view name) const noexcept {
    for (std::size_t i = 0; i < count_; ++i)
        if (const field h = field_at(i); detail::iequals(view(h.name), name)) return view(h.value);
    return std::nullopt;
}

inline bool request_head::has_token(std::string_view name, std::string_view token) const noexcept {
    bool found = false;
    for_each_value(name, [&](std::string_view v) {
        detail::for_each_token(v, [&](std::string_view t) { found = found || detail::iequals(t, token); });
    });
    return found;
}

inline std::vector<std::string_view> request_head::protocols() const {
    std::vector<std::string_view> out;
    for_each_value("Sec-WebSocket-Protocol",
                   [&](std::string_view v) { detail::for_each_token(v, [&](std::string_view t) { out.push_back(t); }); });
    return out;
}

inline std::optional<std::string> request_head::query_param(std::string_view name) const {
    std::string_view q = query();
    while (!q.empty()) {
        auto amp = q.find('&');
        auto pair = q.substr(0, amp);
        auto eq = pair.find('=');
        if (detail::url_decode(pair.substr(0, eq)) == name)
            return eq == std::string_view::npos ? std::string() : detail::url_decode(pair.substr(eq + 1));
        if (amp == std::string_view::npos) break;
        q.remove_prefix(amp + 1);
    }
    return std::nullopt;
}

inline std::optional<std::string_view> request_head::cookie(std::string_view name) const noexcept {
    std::optional<std::string_view> found;
    for_each_value("Cookie", [&](std::string_view line) {
        while (!found && !line.empty()) {
            auto semi = line.find(';');
            auto pair = detail::trim(line.substr(0, semi));
            auto eq = pair.find('=');
            if (eq != std::string_view::npos && detail::trim(pair.substr(0, eq)) == name) {
                auto value = detail::trim(pair.substr(eq + 1));
                if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
                found = value;
            }
            if (semi == std::string_view::npos) break;
            line.remove_prefix(semi + 1);
        }
    });
    return found;
}

inline std::optional<std::string> request_head::bearer_token() const {
    if (auto auth = header("Authorization")) {
        auto v = detail::trim(*auth);
        if (v.size() > 7 && detail::iequals(v.substr(0, 7), "Bearer ")) {
            auto token = detail::trim(v.substr(7));
            if (!token.empty()) return std::string(token);
        }
    }
    auto offered = protocols();
    for (std::size_t i = 0; i + 1 < offered.size(); ++i)
        if (offered[i] == "access_token") return std::string(offered[i + 1]);
    if (auto q = query_param("access_token"); q && !q->empty()) return q;
    return std::nullopt;
}

/// A ws:// or wss:// URL, split for connecting and for the request line.
struct url_parts {
    bool tls = false;
    std::string host;      // without brackets
    std::string port;
    std::string target;    // path and query
    std::string host_header;
};

inline std::optional<url_parts> parse_url(std::string_view url) {
    url_parts u;
    auto scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) return std::nullopt;
    auto scheme = url.substr(0, scheme_end);
    if (iequals(scheme, "wss")) u.tls = true;
    else if (!iequals(scheme, "ws")) return std::nullopt;
    url.remove_prefix(scheme_end + 3);
    if (url.find('#') != std::string_view::npos) return std::nullopt;
    for (unsigned char c : url)   // nothing that could end the request line or inject a header
        if (c <= 0x20 || c == 0x7F) return std::nullopt;
    auto slash = url.find_first_of("/?");
    auto authority = url.substr(0, slash);
    std::string_view rest = slash == std::string_view::npos ? std::string_view() : url.substr(slash);
    if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
    std::string_view port;
    if (authority.front() == '[') {
        auto close = authority.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        u.host = std::string(authority.substr(1, close - 1));
        auto after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return std::nullopt;
            port = after.substr(1);
        }
    } else {
        auto colon = authority.find(':');
        u.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    }
    if (u.host.empty()) return std::nullopt;
    if (!port.empty()) {
        unsigned value = 0;
        for (char ch : port) {
            if (ch < '0' || ch > '9') return std::nullopt;
            value = value * 10 + static_cast<unsigned>(ch - '0');
            if (value > 65535) return std::nullopt;
        }
        if (value == 0) return std::nullopt;
        u.port = std::string(port);
    } else {
        u.port = u.tls ? "443" : "80";
    }
    // Built by push_back and append: GCC 12 at -O3 warns wrongly (-Wrestrict) on "/" + std::string(rest)
    // and, inlined into some callers, on assigning "/".
    if (rest.empty() || rest.front() == '?') u.target.push_back('/');
    u.target.append(rest);
    u.host_header = std::string(authority);
    return u;
}

} // namespace detail
} // namespace gw::v0
