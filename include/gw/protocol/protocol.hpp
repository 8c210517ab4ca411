
namespace detail {

inline constexpr std::string_view websocket_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

inline bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        auto x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
        if (x >= 'A' && x <= 'Z') x |= 0x20;
        if (y >= 'A' && y <= 'Z') y |= 0x20;
        if (x != y) return false;
    }
    return true;
}

inline std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

/// Calls f(token) for each trimmed, non-empty element of a comma-separated list.
template <class F> void for_each_token(std::string_view list, F&& f) {
    while (!list.empty()) {
        auto comma = list.find(',');
        auto tok = trim(list.substr(0, comma));
        if (!tok.empty()) f(tok);
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
}

inline std::string base64_encode(std::span<const unsigned char> in) {
    std::string out(4 * ((in.size() + 2) / 3), '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), in.data(), static_cast<int>(in.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

/// True when key is the base64 encoding of exactly 16 bytes (RFC 6455 section 4.1).
inline bool is_valid_client_key(std::string_view key) noexcept {
    // 16 bytes encode as 22 alphabet characters and "==" (OpenSSL's decoder would take '=' anywhere).
    if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
    for (std::size_t i = 0; i < 22; ++i) {
        const char c = key[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/'))
            return false;
    }
    return true;
}

/// Sec-WebSocket-Accept for a client's Sec-WebSocket-Key.
inline std::string accept_key(std::string_view client_key) {
    std::string joined;
    joined.reserve(client_key.size() + websocket_guid.size());
    joined.append(client_key).append(websocket_guid);
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(joined.data()), joined.size(), digest);
    return base64_encode(digest);
}

/// Bytes from OpenSSL's CSPRNG, drawn in blocks so each masking key costs a copy, not a call.
inline void random_bytes(unsigned char* out, std::size_t n) {
    thread_local std::array<unsigned char, 256> pool;
    thread_local std::size_t used = pool.size();
    while (n > 0) {
        if (used == pool.size()) {
            if (RAND_bytes(pool.data(), static_cast<int>(pool.size())) != 1)
                throw std::system_error(std::make_error_code(std::errc::io_error), "RAND_bytes failed");
            used = 0;
        }
        std::size_t k = std::min(n, pool.size() - used);
        std::memcpy(out, pool.data() + used, k);
        used += k, out += k, n -= k;
    }
}

// ---- UTF-8 ----

/// Incremental UTF-8 validator (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF).
/// feed() fails at the first byte that no valid continuation could follow, so a text message is
/// rejected as soon as it goes wrong, even in the middle of a fragment.
class utf8_validator {
public:
    bool feed(std::span<const unsigned char> bytes) noexcept {
        const unsigned char* p = bytes.data();
        const unsigned char* end = p + bytes.size();
        while (p < end) {
            if (need_ == 0) {
                // ASCII runs a word at a time.
                while (end - p >= 8) {
                    std::uint64_t w;
                    std::memcpy(&w, p, 8);
                    if (w & 0x8080808080808080ull) break;
                    p += 8;
                }
                if (p == end) break;
                unsigned char b = *p++;
                if (b < 0x80) continue;
                if (b >= 0xC2 && b <= 0xDF) { need_ = 1; lo_ = 0x80; hi_ = 0xBF; }
                else if (b == 0xE0) { need_ = 2; lo_ = 0xA0; hi_ = 0xBF; }
                else if (b == 0xED) { need_ = 2; lo_ = 0x80; hi_ = 0x9F; }        // no surrogates
                else if (b >= 0xE1 && b <= 0xEF) { need_ = 2; lo_ = 0x80; hi_ = 0xBF; }
                else if (b == 0xF0) { need_ = 3; lo_ = 0x90; hi_ = 0xBF; }
                else if (b >= 0xF1 && b <= 0xF3) { need_ = 3; lo_ = 0x80; hi_ = 0xBF; }
                else if (b == 0xF4) { need_ = 3; lo_ = 0x80; hi_ = 0x8F; }        // up to U+10FFFF
                else return false;
            } else {
                unsigned char b = *p++;
                if (b < lo_ || b > hi_) return false;
                lo_ = 0x80, hi_ = 0xBF;
                --need_;
            }
        }
        return true;
    }
    bool feed(std::string_view s) noexcept {
        return feed({reinterpret_cast<const unsigned char*>(s.data()), s.size()});
    }
    /// True when the bytes so far end on a character boundary.
    bool complete() const noexcept { return need_ == 0; }
    void reset() noexcept { need_ = 0; }

private:
    std::uint8_t need_ = 0, lo_ = 0x80, hi_ = 0xBF;
};

inline bool is_valid_utf8(std::string_view s) noexcept {
    utf8_validator v;
    return v.feed(s) && v.complete();
}

// ---- Masking ----

/// XORs data with the 4-byte key, starting at key byte `phase` (0-3); returns the next phase.
/// Works a 64-bit word at a time.
inline std::size_t apply_mask(unsigned char* data, std::size_t n, std::array<unsigned char, 4> key,
                              std::size_t phase = 0) noexcept {
    phase &= 3;
    std::size_t i = 0;
    for (; i < n && ((phase + i) & 3) != 0; ++i) data[i] ^= key[(phase + i) & 3];
    // Now aligned to the key: key bytes 0..3 repeat from data + i.
    std::uint64_t word;
    unsigned char pattern[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
    std::memcpy(&word, pattern, 8);
    for (; i + 8 <= n; i += 8) {
        std::uint64_t v;
        std::memcpy(&v, data + i, 8);
        v ^= word;
        std::memcpy(data + i, &v, 8);
    }
    for (; i < n; ++i) data[i] ^= key[(phase + i) & 3];
    return (phase + n) & 3;
}

// ---- Frames ----

/// A decoded frame header (RFC 6455 section 5.2).
struct frame_header {
    bool fin = true;
    std::uint8_t rsv = 0;          ///< RSV1-3 as the top bits 0x70 of the first byte
    opcode op = opcode::text;
    bool masked = false;
    std::uint64_t length = 0;
    std::array<unsigned char, 4> mask{};
    std::size_t size = 0;          ///< bytes the header itself took
};

inline constexpr std::size_t max_frame_header = 14;

inline constexpr bool is_control(opcode op) noexcept { return (static_cast<std::uint8_t>(op) & 0x8) != 0; }
inline constexpr bool is_known_opcode(std::uint8_t op) noexcept { return op <= 2 || (op >= 8 && op <= 10); }

/// Header size announced by the first two bytes.
inline std::size_t header_size(unsigned char b1) noexcept {
    std::size_t n = 2;
    auto len7 = b1 & 0x7F;
    if (len7 == 126) n += 2;
    else if (len7 == 127) n += 8;
    if (b1 & 0x80) n += 4;
    return n;
}

enum class decode_status { ok, need_more, error };

/// Decodes a header from bytes. On error, *code says how to close.
/// Checks only what the header alone decides: reserved bits, opcodes, control frame rules, the
/// 64-bit length's top bit, and that frames from a client are masked (expect_masked) and frames
/// from a server are not.
inline decode_status decode_header(std::span<const unsigned char> in, bool expect_masked, frame_header& h,
                                   close_code& code) noexcept {
    if (in.size() < 2) return decode_status::need_more;
    const std::size_t size = header_size(in[1]);
    if (in.size() < size) return decode_status::need_more;
    const unsigned char b0 = in[0], b1 = in[1];
    h.fin = (b0 & 0x80) != 0;
    h.rsv = b0 & 0x70;
    h.masked = (b1 & 0x80) != 0;
    h.size = size;
    code = close_code::protocol_error;
    if (h.rsv != 0 || !is_known_opcode(b0 & 0x0F) || h.masked != expect_masked) return decode_status::error;
    h.op = static_cast<opcode>(b0 & 0x0F);
    std::size_t pos = 2;
    std::uint64_t len = b1 & 0x7F;
    if (len == 126) {
        len = (std::uint64_t{in[2]} << 8) | in[3];
        pos = 4;
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | in[2 + i];
        pos = 10;
        if (len >> 63) return decode_status::error;   // the most significant bit must be 0
    }
    h.length = len;
    if (is_control(h.op) && (!h.fin || len > 125)) return decode_status::error;
    if (h.masked) std::memcpy(h.mask.data(), in.data() + pos, 4);
    return decode_status::ok;
}

/// Writes a frame header to out (at least max_frame_header bytes); returns its size.
/// With a mask, the caller masks the payload with the same key.
inline std::size_t encode_header(unsigned char* out, opcode op, bool fin, std::uint64_t length,
                                 const std::array<unsigned char, 4>* mask = nullptr) noexcept {
    out[0] = static_cast<unsigned char>((fin ? 0x80 : 0) | static_cast<std::uint8_t>(op));
    const unsigned char m = mask ? 0x80 : 0;
    std::size_t n;
    if (length < 126) {
        out[1] = static_cast<unsigned char>(m | length);
        n = 2;
    } else if (length <= 0xFFFF) {
        out[1] = static_cast<unsigned char>(m | 126);
        out[2] = static_cast<unsigned char>(length >> 8);
        out[3] = static_cast<unsigned char>(length);
        n = 4;
    } else {
        out[1] = static_cast<unsigned char>(m | 127);
        for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<unsigned char>(length >> (56 - 8 * i));
        n = 10;
    }
    if (mask) {
        std::memcpy(out + n, mask->data(), 4);
        n += 4;
    }
    return n;
}

/// True for codes an endpoint may send in a close frame (RFC 6455 section 7.4).
inline constexpr bool is_valid_close_code(std::uint16_t c) noexcept {
    return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1011) || (c >= 3000 && c <= 4999);
}

/// Checks a received close frame's payload. Returns 0 when valid, else the code to fail with.
inline std::uint16_t check_close_payload(std::string_view payload) noexcept {
    if (payload.empty()) return 0;
    if (payload.size() == 1) return static_cast<std::uint16_t>(close_code::protocol_error);
    auto code = static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                           static_cast<unsigned char>(payload[1]));
    if (!is_valid_close_code(code)) return static_cast<std::uint16_t>(close_code::protocol_error);
    if (!is_valid_utf8(payload.substr(2))) return static_cast<std::uint16_t>(close_code::invalid_payload);
    return 0;
}

// ---- HTTP upgrade ----

inline bool is_token_char(unsigned char c) noexcept {
    if (c >= '0' && c <= '9') return true;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

inline int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') return (c | 0x20) - 'a' + 10;
    return -1;
}

/// Percent-decodes a query component ('+' is a space). Invalid escapes stay as they are.
inline std::string url_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') out += ' ';
        else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
        } else out += s[i];
    }
    return out;
}

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

/// A complete plain-HTTP response that closes the connection.
inline std::string format_response(const http_response& r) {
    std::string out;
    out.reserve(128 + r.body.size());
    out.append("HTTP/1.1 ").append(std::to_string(r.status)).append(" ").append(status_text(r.status));
    out.append("\r\nContent-Type: ").append(r.content_type);
    out.append("\r\nContent-Length: ").append(std::to_string(r.body.size()));
    out.append("\r\nConnection: close\r\n");
    for (const auto& [k, v] : r.headers) out.append(k).append(": ").append(v).append("\r\n");
    out.append("\r\n").append(r.body);
    return out;
}

/// What check_upgrade() decided about a parsed request.
struct upgrade_decision {
    bool is_upgrade = false;    ///< false: a plain HTTP request
    http_error error;           ///< set when the upgrade must be refused
    std::string_view key;       ///< Sec-WebSocket-Key when accepted
};

inline upgrade_decision check_upgrade(const http_request& req) {
    upgrade_decision d;
    d.is_upgrade = req.has_token("Upgrade", "websocket") || req.header("Sec-WebSocket-Key").has_value();
    if (!d.is_upgrade) return d;
    if (req.method() != "GET") { d.error = {405, "a WebSocket upgrade must use GET"}; return d; }
    if (req.version_minor() < 1) { d.error = {400, "a WebSocket upgrade needs HTTP/1.1"}; return d; }
    if (!req.header("Host")) { d.error = {400, "missing Host header"}; return d; }
    if (!req.has_token("Upgrade", "websocket")) { d.error = {400, "missing Upgrade: websocket"}; return d; }
    if (!req.has_token("Connection", "upgrade")) { d.error = {400, "missing Connection: Upgrade"}; return d; }
    auto version = req.header("Sec-WebSocket-Version");
    if (!version || trim(*version) != "13") { d.error = {426, "unsupported Sec-WebSocket-Version"}; return d; }
    auto key = req.header("Sec-WebSocket-Key");
    if (!key || !is_valid_client_key(trim(*key))) {
        d.error = {400, "Sec-WebSocket-Key must be base64 of 16 bytes"};
        return d;
    }
    d.key = trim(*key);
    return d;
}

} // namespace detail

namespace detail {

/// Parses an HTTP/1.x request head (everything up to and including the blank line).
struct request_parser {
    /// Fills req from raw (which must end with "\r\n\r\n"); returns the error to answer, if any.
    static detail::http_error parse(std::string raw, http_request& req) {
        using detail::http_error;
        if (raw.size() > 0xFFFF) return {431, "request header too large"};
        req.raw_ = std::move(raw);
        req.raw_.shrink_to_fit();   // kept for the connection's life: no slack from the read
        req.fields_.clear();
        const std::string_view all = req.raw_;
        auto at = [&](std::string_view part) {
            return http_request::span_{static_cast<std::uint16_t>(part.data() - all.data()),
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
            req.fields_.push_back({at(name), at(value)});
        }
        if (pos != all.size()) return {400, "bytes after the header block"};
        return {};
    }
};

} // namespace detail

template <class F> void http_request::for_each_value(std::string_view name, F&& f) const {
    for (const auto& h : fields_)
        if (detail::iequals(view(h.name), name)) f(view(h.value));
}

inline std::optional<std::string_view> http_request::header(std::string_view name) const noexcept {
    for (const auto& h : fields_)
        if (detail::iequals(view(h.name), name)) return view(h.value);
    return std::nullopt;
}

inline bool http_request::has_token(std::string_view name, std::string_view token) const noexcept {
    bool found = false;
    for_each_value(name, [&](std::string_view v) {
        detail::for_each_token(v, [&](std::string_view t) { found = found || detail::iequals(t, token); });
    });
    return found;
}

inline std::vector<std::string_view> http_request::protocols() const {
    std::vector<std::string_view> out;
    for_each_value("Sec-WebSocket-Protocol",
                   [&](std::string_view v) { detail::for_each_token(v, [&](std::string_view t) { out.push_back(t); }); });
    return out;
}

inline std::optional<std::string> http_request::query_param(std::string_view name) const {
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

inline std::optional<std::string_view> http_request::cookie(std::string_view name) const noexcept {
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

inline std::optional<std::string> http_request::bearer_token() const {
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

