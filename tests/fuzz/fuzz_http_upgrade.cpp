// libFuzzer target: the HTTP upgrade request parser, check_upgrade(), the server's whole decision
// (answer_handshake(), under every combination of limits and hooks), a client's check of the answer
// it would get, and the request's accessors. The input is a request head as a client would send it. Beyond "no crash", it checks that a
// parsed request prints back to a head that parses the same, that every name the request holds
// can be looked up, and that a head stays inside the parser's 16-bit offsets or is refused (431).
#include "fuzz_support.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using fuzz::require;
using gw::detail::request_parser;

/// parse() refuses longer heads: the request keeps its views as 16-bit offsets.
constexpr std::size_t parser_limit = 0xFFFF;

struct parsed {
    gw::http_request req;
    int status = 0;
};

parsed parse(std::string head) {
    parsed p;
    p.status = request_parser::parse(std::move(head), p.req).status;
    return p;
}

std::vector<std::pair<std::string_view, std::string_view>> fields(const gw::http_request& req) {
    std::vector<std::pair<std::string_view, std::string_view>> out;
    req.for_each_header([&](std::string_view name, std::string_view value) { out.emplace_back(name, value); });
    return out;
}

/// The head a parsed request stands for, without optional white space: never longer than the
/// head it was parsed from.
std::string print(const gw::http_request& req) {
    std::string out;
    out.append(req.method()).append(" ").append(req.target()).append(" HTTP/1.");
    out += static_cast<char>('0' + req.version_minor());
    out += "\r\n";
    for (const auto& [name, value] : fields(req)) out.append(name).append(":").append(value).append("\r\n");
    out += "\r\n";
    return out;
}

void check_same(const gw::http_request& a, const gw::http_request& b) {
    require(a.method() == b.method() && a.target() == b.target() && a.path() == b.path() && a.query() == b.query(),
            "request line changed when printed and parsed again");
    require(a.version_minor() == b.version_minor(), "HTTP version changed when printed and parsed again");
    require(fields(a) == fields(b), "header lines changed when printed and parsed again");
}

void check_request_line(const gw::http_request& req) {
    require(!req.method().empty(), "empty method accepted");
    for (unsigned char c : req.method()) require(gw::detail::is_token_char(c), "method is not a token");
    require(!req.path().empty() && req.path().front() == '/', "path does not start with '/'");
    require(req.version_minor() >= 0 && req.version_minor() <= 9, "HTTP minor version out of range");
    std::string target(req.path());
    if (req.target().size() > req.path().size()) target.append("?").append(req.query());
    require(req.target() == target, "target is not path, '?' and query");
}

void check_accessors(const gw::http_request& req) {
    // Every header the request holds can be found, and header() gives the first of its name.
    for (const auto& [name, value] : fields(req)) {
        require(!name.empty(), "empty header name accepted");
        require(value == gw::detail::trim(value), "header value not trimmed");
        auto first = req.header(name);
        require(first.has_value(), "header() misses a header the request holds");
        for (const auto& [n, v] : fields(req)) {
            if (!gw::detail::iequals(n, name)) continue;
            require(*first == v, "header() is not the first value of its name");
            break;
        }
    }
    for (std::string_view name : {"Host", "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version",
                                  "Origin", "Authorization", "Cookie"})
        (void)req.header(name);
    (void)req.has_token("Connection", "upgrade");
    (void)req.has_token("Upgrade", "websocket");

    for (std::string_view p : req.protocols()) {
        require(!p.empty(), "empty subprotocol listed");
        require(req.has_token("Sec-WebSocket-Protocol", p), "a listed subprotocol is not a token of its header");
    }

    // Every key in the query can be looked up.
    std::string_view q = req.query();
    while (!q.empty()) {
        const auto amp = q.find('&');
        const auto pair = q.substr(0, amp);
        require(req.query_param(gw::detail::url_decode(pair.substr(0, pair.find('=')))).has_value(),
                "query_param() misses a key of the query");
        if (amp == std::string_view::npos) break;
        q.remove_prefix(amp + 1);
    }
    (void)req.query_param("access_token");

    // Every cookie name can be looked up, from every Cookie line.
    for (const auto& [name, value] : fields(req)) {
        if (!gw::detail::iequals(name, "Cookie")) continue;
        std::string_view line = value;
        while (!line.empty()) {
            const auto semi = line.find(';');
            const auto pair = gw::detail::trim(line.substr(0, semi));
            if (const auto eq = pair.find('='); eq != std::string_view::npos) {
                require(req.cookie(gw::detail::trim(pair.substr(0, eq))).has_value(),
                        "cookie() misses a cookie of a Cookie line");
            }
            if (semi == std::string_view::npos) break;
            line.remove_prefix(semi + 1);
        }
    }
    (void)req.cookie("session");

    if (auto token = req.bearer_token()) require(!token->empty(), "bearer_token() gave an empty token");
}

void check_upgrade(const gw::http_request& req) {
    const auto d = gw::detail::check_upgrade(req);
    if (!d.is_upgrade) {
        require(d.error.status == 0, "a plain request was refused as an upgrade");
        return;
    }
    if (d.error.status) {
        const int s = d.error.status;
        require(s == 400 || s == 405 || s == 426, "unexpected status refusing an upgrade");
        require(!d.error.reason.empty(), "refusal without a reason");
        const std::string text = gw::detail::format_response({s, std::string(d.error.reason) + "\n"});
        require(text.starts_with("HTTP/1.1 " + std::to_string(s) + " "), "malformed refusal");
        return;
    }
    require(req.method() == "GET" && req.version_minor() >= 1, "accepted an upgrade that is not GET HTTP/1.1");
    require(gw::detail::is_valid_client_key(d.key), "accepted a key that is not base64 of 16 bytes");
    require(gw::detail::accept_key(d.key).size() == 28, "Sec-WebSocket-Accept is not 28 characters");
}

/// The server's whole decision on the request, with the limits and hooks chosen by `which`: an
/// accepted upgrade gives a 101 that our client's check accepts; a refusal is a well-formed answer.
void check_answer(gw::http_request& req, std::size_t which) {
    struct hooks {
        std::size_t which;
        std::optional<gw::http_response> plain(gw::detail::request_head&) const {
            if (which & 1) return gw::http_response{200, "ok\n"};
            return std::nullopt;
        }
        std::optional<gw::http_response> upgrade(gw::detail::request_head& r) const {
            if (which & 2) return gw::http_response{401, "no\n"};
            if (which & 16) throw std::runtime_error("hook failed");
            (void)r.bearer_token();
            return std::nullopt;
        }
        std::optional<std::string> subprotocol(gw::detail::request_head& r) const {
            if (!(which & 4)) return std::nullopt;
            auto offered = r.protocols();
            return offered.empty() ? std::string("chosen") : std::string(offered.back());
        }
    };
    const int full = (which & 8) ? ((which & 32) ? 503 : 429) : 0;
    const auto a = gw::detail::answer_handshake(req, {full, (which & 64) == 0}, hooks{which});
    const auto d = gw::detail::check_upgrade(req);
    if (!a.accepted) {
        const int s = a.refusal.status;
        require(s >= 200 && s <= 599, "refusal with a status out of range");
        require(!d.is_upgrade || s >= 400, "an upgrade refused without an error status");
        const std::string text = gw::detail::format_response(a.refusal);
        require(text.starts_with("HTTP/1.1 " + std::to_string(s) + " "), "malformed refusal");
        if (s == 401) {
            bool named = false;
            for (const auto& [k, v] : a.refusal.headers) named = named || gw::detail::iequals(k, "WWW-Authenticate");
            require(named, "a 401 without WWW-Authenticate");
        }
        return;
    }
    require(d.is_upgrade && !d.error.status && !full && !(which & 64), "accepted what the checks refuse");
    const auto offered = req.protocols();
    std::vector<std::string> ours(offered.begin(), offered.end());
    const auto reply = gw::detail::check_upgrade_response(a.head, d.key, ours);
    require(reply.error.empty(), "our client refuses the 101 our server sends");
    require(reply.subprotocol == a.subprotocol, "the client read another subprotocol than the server chose");
}

/// The same head with a padding header after the request line, so that it ends at 0xFFFE, 0xFFFF
/// or 0x10000 bytes: the last of them must be refused, the others parse with offsets near the top
/// of their 16-bit range.
void check_near_limit(std::string_view head, const parsed& plain, std::size_t which) {
    const auto eol = head.find("\r\n");
    if (eol == std::string_view::npos) return;
    const std::string_view name = "X-Fuzz-Pad:";
    const std::size_t fixed = head.size() + name.size() + 2;
    const std::size_t target = parser_limit - 1 + which % 3;
    if (fixed >= target) return;
    const std::size_t pad = target - fixed;
    std::string big;
    big.reserve(target);
    big.append(head.substr(0, eol + 2)).append(name).append(pad, 'p').append("\r\n").append(head.substr(eol + 2));
    const parsed p = parse(std::move(big));
    if (target > parser_limit) {
        require(p.status == 431, "a head over the limit was not refused with 431");
        return;
    }
    require(p.status == plain.status, "a valid padding header changed the outcome");
    if (p.status) return;
    auto f = fields(p.req);
    require(!f.empty() && f.front().first == "X-Fuzz-Pad" && f.front().second.size() == pad, "padding header misread");
    f.erase(f.begin());
    require(f == fields(plain.req), "headers after the padding misread");
    require(p.req.target() == plain.req.target() && p.req.method() == plain.req.method(), "request line misread");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string head(reinterpret_cast<const char*>(data), size);
    const parsed p = parse(head);
    if (size > parser_limit) require(p.status == 431, "a long head was not refused with 431");
    const int s = p.status;
    require(s == 0 || s == 400 || s == 431 || s == 505, "unexpected status from the parser");
    if (s == 0) {
        require(head.ends_with("\r\n\r\n"), "accepted a head without its blank line");
        check_request_line(p.req);
        const std::string printed = print(p.req);
        require(printed.size() <= head.size(), "the printed head is longer than the original");
        const parsed again = parse(printed);
        require(again.status == 0, "the printed head does not parse");
        check_same(p.req, again.req);
        check_accessors(p.req);
        check_upgrade(p.req);
        gw::http_request copy = p.req;
        check_answer(copy, size);
    }
    // One input in eight also goes to the edge of the parser's limit (64 KiB of copying: not all).
    if (size % 8 == 5) check_near_limit(head, p, size / 8);
    return 0;
}
