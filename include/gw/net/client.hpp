
namespace detail {

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
    // Appended rather than "/" + std::string(rest): GCC 12 at -O3 warns wrongly (-Wrestrict) on the latter.
    if (rest.empty() || rest.front() == '?') u.target = "/";
    u.target.append(rest);
    u.host_header = std::string(authority);
    return u;
}

inline std::shared_ptr<asio::ssl::context> default_client_tls() {
    static const std::shared_ptr<asio::ssl::context> ctx = tls_client_context();
    return ctx;
}

} // namespace detail

/// Opens a client connection to a ws:// or wss:// URL. Throws std::system_error: gw::errc::bad_url,
/// handshake_failed, handshake_timeout, or the transport's error.
inline asio::awaitable<connection> connect(std::string_view url, client_options opts = {}) {
    using asio::experimental::as_tuple;
    auto u = detail::parse_url(url);
    if (!u) throw std::system_error(errc::bad_url, std::string(url));
    auto ex = co_await asio::this_coro::executor;
    asio::ip::tcp::resolver resolver(ex);
    auto endpoints = co_await resolver.async_resolve(u->host, u->port, asio::use_awaitable);
    asio::ip::tcp::socket sock(ex);
    auto c = std::make_shared<detail::connection_impl>(std::move(sock), detail::role::client,
                                                       detail::frame_limits{opts.max_message_bytes, opts.max_message_bytes},
                                                       opts.close_timeout);
    bool timed_out = false;
    asio::steady_timer deadline(ex, opts.handshake_timeout);
    deadline.async_wait([w = std::weak_ptr<detail::connection_impl>(c), &timed_out](std::error_code e) {
        if (e) return;
        if (auto p = w.lock()) {
            timed_out = true;
            std::error_code ignored;
            p->sock_.close(ignored);
        }
    });
    struct cancel_on_exit {
        asio::steady_timer& t;
        ~cancel_on_exit() { t.cancel(); }
    } guard{deadline};
    auto fail = [&](std::error_code ec, const std::string& what) -> std::system_error {
        if (timed_out) return std::system_error(errc::handshake_timeout, std::string(url));
        return std::system_error(ec, what);
    };
    auto [cec, ep] = co_await asio::async_connect(c->sock_, endpoints, as_tuple(asio::use_awaitable));
    if (cec) throw fail(cec, "connect to " + std::string(url));
    std::error_code ec;
    c->sock_.set_option(asio::ip::tcp::no_delay(true), ec);
    if (u->tls) {
        auto ctx = opts.tls ? opts.tls : detail::default_client_tls();
        c->tls_ = std::make_unique<detail::connection_impl::tls_state>(c->sock_, *ctx);
        if (!SSL_set_tlsext_host_name(c->tls_->stream.native_handle(), u->host.c_str()))
            throw std::system_error(errc::handshake_failed, "cannot set TLS server name");
        c->tls_->stream.set_verify_callback(asio::ssl::host_name_verification(u->host));
        auto [hec] = co_await c->tls_->stream.async_handshake(asio::ssl::stream_base::client, as_tuple(asio::use_awaitable));
        if (hec) throw fail(hec, "TLS handshake with " + std::string(url));
    }
    std::array<unsigned char, 16> nonce;
    detail::random_bytes(nonce.data(), nonce.size());
    const std::string key = detail::base64_encode(nonce);
    std::string req = "GET " + u->target + " HTTP/1.1\r\nHost: " + u->host_header +
                      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
                      "\r\nSec-WebSocket-Version: 13\r\n";
    if (!opts.subprotocols.empty()) {
        req += "Sec-WebSocket-Protocol: ";
        for (std::size_t i = 0; i < opts.subprotocols.size(); ++i) req += (i ? ", " : "") + opts.subprotocols[i];
        req += "\r\n";
    }
    for (const auto& [k, v] : opts.headers) req.append(k).append(": ").append(v).append("\r\n");
    req += "\r\n";
    ec = co_await c->write_raw(req);
    if (ec) throw fail(ec, "send upgrade request");
    std::string head, rest;
    bool too_big = false;
    if (!co_await detail::read_head(*c, opts.max_header_bytes, head, rest, too_big))
        throw fail(too_big ? make_error_code(errc::handshake_failed) : make_error_code(errc::connection_lost),
                   too_big ? "upgrade response too large" : "read upgrade response");
    // The status line, then header lines parsed as a request's are.
    auto eol = head.find("\r\n");
    std::string_view status_line = std::string_view(head).substr(0, eol);
    if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || status_line.substr(8, 5) != " 101 ")
        throw std::system_error(errc::handshake_failed, "server answered: " + std::string(status_line));
    http_request resp;
    if (detail::request_parser::parse("GET / HTTP/1.1" + head.substr(eol), resp).status)
        throw std::system_error(errc::handshake_failed, "malformed upgrade response");
    if (!resp.has_token("Upgrade", "websocket") || !resp.has_token("Connection", "upgrade"))
        throw std::system_error(errc::handshake_failed, "response is not a WebSocket upgrade");
    auto accept = resp.header("Sec-WebSocket-Accept");
    if (!accept || *accept != detail::accept_key(key))
        throw std::system_error(errc::handshake_failed, "wrong Sec-WebSocket-Accept");
    if (resp.header("Sec-WebSocket-Extensions"))
        throw std::system_error(errc::handshake_failed, "server chose an extension that was not offered");
    if (auto proto = resp.header("Sec-WebSocket-Protocol")) {
        if (std::find(opts.subprotocols.begin(), opts.subprotocols.end(), *proto) == opts.subprotocols.end())
            throw std::system_error(errc::handshake_failed, "server chose a subprotocol that was not offered");
        c->subprotocol_ = std::string(*proto);
    }
    c->consume_early(rest);
    co_return connection(std::move(c));
}

#ifndef GATEWAY_NO_JSON

