// The WebSocket opening handshake (RFC 6455 section 4) without sockets: what a server answers to
// a request head, what a client sends and how it checks the answer. The server and the client
// keep only the I/O; these are tested byte by byte and fuzzed.
#pragma once
#include "../detail/config.hpp"
#include "http.hpp"
#include "text.hpp"
#include "deflate.hpp"

namespace gw::inline v0::detail {

inline constexpr std::string_view websocket_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

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

/// What check_upgrade() decided about a parsed request.
struct upgrade_decision {
    bool is_upgrade = false;    ///< false: a plain HTTP request
    http_error error;           ///< set when the upgrade must be refused
    std::string_view key;       ///< Sec-WebSocket-Key when accepted
};

inline upgrade_decision check_upgrade(const request_head& req) {
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


/// True when allowed is empty, lists the request's Origin (without regard to case), or the request
/// has none: browsers always send one, and other clients could send any.
inline bool origin_allowed(const std::vector<std::string>& allowed, const request_head& req) {
    if (allowed.empty()) return true;
    auto origin = req.header("Origin");
    if (!origin) return true;
    const auto have = trim(*origin);
    return std::any_of(allowed.begin(), allowed.end(), [&](const std::string& ok) { return iequals(ok, have); });
}

/// What the server knows about a request besides its head.
struct upgrade_context {
    int full = 0;                 ///< 0, or the connection limits' refusal: 503 (server) or 429 (address)
    bool origin_ok = true;        ///< origin_allowed()
    const deflate_options* deflate = nullptr;   ///< permessage-deflate's settings, when the server offers it
};

/// Every Sec-WebSocket-Extensions line of a request, joined as one list.
inline std::string extensions_offered(const request_head& req) {
    std::string all;
    req.for_each_header([&](std::string_view name, std::string_view value) {
        if (!iequals(name, "Sec-WebSocket-Extensions")) return;
        if (!all.empty()) all += ", ";
        all += value;
    });
    return all;
}

/// How a server answers a request head: with 101 (accepted) or with an HTTP response.
struct handshake_answer {
    bool accepted = false;
    std::string head;             ///< accepted: the 101 response, bytes as they go out
    std::string subprotocol;      ///< accepted: the one chosen, or ""
    std::optional<deflate_agreement> deflate;   ///< accepted: permessage-deflate, when agreed
    http_response refusal;        ///< not accepted: the answer
    bool counted = false;         ///< not accepted: a refusal to count (an upgrade, or a status >= 400)
    std::string hook_error;       ///< what an application hook threw, for the log (answered with 500)
};

/// The 101 answer to an accepted upgrade.
inline std::string switching_protocols(std::string_view key, std::string_view subprotocol, std::string_view extensions = {}) {
    std::string out = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ";
    out += accept_key(key);
    if (!subprotocol.empty()) out.append("\r\nSec-WebSocket-Protocol: ").append(subprotocol);
    if (!extensions.empty()) out.append("\r\nSec-WebSocket-Extensions: ").append(extensions);
    out += "\r\n\r\n";
    return out;
}

/// Decides the answer to a parsed request. hooks supplies what the server and the application
/// say, each returning an optional: plain(req) answers a request that is not an upgrade (nullopt:
/// 426), upgrade(req) may refuse an upgrade (on_upgrade), subprotocol(req) picks one of the
/// offered (nullopt: "access_token" when offered, else none). A hook that throws gets 500.
/// In order: the protocol's checks, the connection limits, the origin, the application.
template <class Hooks> handshake_answer answer_handshake(request_head& req, const upgrade_context& ctx, Hooks&& hooks) {
    handshake_answer a;
    const upgrade_decision d = check_upgrade(req);
    std::optional<http_response> answer;
    try {
        if (!d.is_upgrade) {
            answer = hooks.plain(req);
            if (!answer) answer = http_response{426, "this is a WebSocket endpoint\n", "text/plain; charset=utf-8", {{"Upgrade", "websocket"}}};
        } else if (d.error.status) {
            answer = http_response{d.error.status, std::string(d.error.reason) + "\n"};
            if (d.error.status == 426) answer->headers.emplace_back("Sec-WebSocket-Version", "13");
            if (d.error.status == 405) answer->headers.emplace_back("Allow", "GET");
        } else if (ctx.full) {
            answer = http_response{ctx.full, ctx.full == 503 ? "the server is at its connection limit\n" : "too many connections from this address\n"};
            if (ctx.full == 503) answer->headers.emplace_back("Retry-After", "1");
        } else if (!ctx.origin_ok) {
            answer = http_response{403, "origin not allowed\n"};
        } else {
            answer = hooks.upgrade(req);
        }
        if (!answer) {
            const auto offered = req.protocols();
            std::optional<std::string> chosen = hooks.subprotocol(req);
            if (!chosen && std::find(offered.begin(), offered.end(), "access_token") != offered.end())
                chosen = "access_token";   // a token offered as a subprotocol: browsers need one chosen
            if (chosen && !chosen->empty() && std::find(offered.begin(), offered.end(), *chosen) == offered.end())
                answer = http_response{500, "the server chose a subprotocol the client did not offer\n"};
            else if (chosen)
                a.subprotocol = std::move(*chosen);
        }
    } catch (const std::exception& e) {
        a.hook_error = e.what();
        answer = http_response{500, "internal server error\n"};
    }
    if (!answer) {
        a.accepted = true;
        if (ctx.deflate) a.deflate = accept_deflate(extensions_offered(req), *ctx.deflate);
        a.head = switching_protocols(d.key, a.subprotocol, a.deflate ? std::string_view(a.deflate->response) : std::string_view());
        return a;
    }
    // RFC 7235: a 401 names the scheme that would be accepted. Bearer tokens are what
    // http_request::bearer_token() reads; an application may name another.
    auto& h = answer->headers;
    if (answer->status == 401 && std::none_of(h.begin(), h.end(), [](const auto& kv) { return iequals(kv.first, "WWW-Authenticate"); }))
        h.emplace_back("WWW-Authenticate", "Bearer");
    a.counted = d.is_upgrade || answer->status >= 400;
    a.refusal = std::move(*answer);
    return a;
}

/// A client's upgrade request for a URL, with its key, the subprotocols and extensions it offers
/// and extra headers.
inline std::string upgrade_request(const url_parts& u, std::string_view key, const std::vector<std::string>& subprotocols,
                                   const std::vector<std::pair<std::string, std::string>>& headers,
                                   std::string_view extensions = {}) {
    std::string req;
    req.append("GET ").append(u.target).append(" HTTP/1.1\r\nHost: ").append(u.host_header);
    req.append("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ").append(key);
    req.append("\r\nSec-WebSocket-Version: 13\r\n");
    if (!subprotocols.empty()) {
        req += "Sec-WebSocket-Protocol: ";
        for (std::size_t i = 0; i < subprotocols.size(); ++i) req.append(i ? ", " : "").append(subprotocols[i]);
        req += "\r\n";
    }
    if (!extensions.empty()) req.append("Sec-WebSocket-Extensions: ").append(extensions).append("\r\n");
    for (const auto& [k, v] : headers) req.append(k).append(": ").append(v).append("\r\n");
    req += "\r\n";
    return req;
}

/// What a client makes of the server's answer to its upgrade request.
struct upgrade_reply {
    std::string error;         ///< empty when the upgrade is accepted; else why not
    std::string subprotocol;   ///< the one the server chose, or ""
    std::optional<deflate_params> deflate;   ///< permessage-deflate, when the server agreed to the offer
};

/// Checks a server's answer (its head, up to the blank line) to an upgrade request sent with key
/// and offering the subprotocols offered.
/// deflate: the client's permessage-deflate settings (what it offered, unless off).
inline upgrade_reply check_upgrade_response(std::string_view head, std::string_view key, const std::vector<std::string>& offered,
                                            const deflate_options& deflate = {}) {
    upgrade_reply r;
    // The status line, then header lines parsed as a request's are.
    const auto eol = head.find("\r\n");
    const std::string_view status_line = head.substr(0, eol);
    if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || status_line.substr(8, 5) != " 101 ") {
        r.error = "server answered: " + std::string(status_line);
        return r;
    }
    request_head resp;
    if (eol == std::string_view::npos || request_parser::parse("GET / HTTP/1.1" + std::string(head.substr(eol)), resp).status) {
        r.error = "malformed upgrade response";
        return r;
    }
    if (!resp.has_token("Upgrade", "websocket") || !resp.has_token("Connection", "upgrade")) {
        r.error = "response is not a WebSocket upgrade";
        return r;
    }
    auto accept = resp.header("Sec-WebSocket-Accept");
    if (!accept || *accept != accept_key(key)) {
        r.error = "wrong Sec-WebSocket-Accept";
        return r;
    }
    if (resp.header("Sec-WebSocket-Extensions")) {
        r.deflate = check_deflate_answer(extensions_offered(resp), deflate, r.error);
        if (!r.deflate) return r;
    }
    if (auto proto = resp.header("Sec-WebSocket-Protocol")) {
        if (std::find(offered.begin(), offered.end(), *proto) == offered.end()) {
            r.error = "server chose a subprotocol that was not offered";
            return r;
        }
        r.subprotocol = std::string(*proto);
    }
    return r;
}

} // namespace gw::v0::detail
