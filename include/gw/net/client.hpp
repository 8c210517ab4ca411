// gw::connect: opens a client connection to a ws:// or wss:// URL.
#pragma once
#include "../detail/asio.hpp"
#include "../protocol/http.hpp"
#include "../protocol/ws_handshake.hpp"
#include "connection.hpp"
#include "handshake_io.hpp"
#include "options.hpp"
#include "tls.hpp"

namespace gw::inline v0 {

namespace detail {

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
    detail::require_deflate_built(opts.deflate);
    auto ex = co_await asio::this_coro::executor;
    asio::ip::tcp::resolver resolver(ex);
    auto endpoints = co_await resolver.async_resolve(u->host, u->port, asio::use_awaitable);
    asio::ip::tcp::socket sock(ex);
    const detail::connection_settings settings{detail::role::client,
                                               detail::frame_limits{opts.max_message_bytes, opts.max_message_bytes},
                                               opts.close_timeout};
    auto c = std::make_shared<detail::connection_impl>(std::move(sock), settings);
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
    const std::string req = detail::upgrade_request(*u, key, opts.subprotocols, opts.headers, detail::deflate_offer(opts.deflate));
    ec = co_await c->write_raw(req);
    if (ec) throw fail(ec, "send upgrade request");
    std::string head, rest;
    bool too_big = false;
    if (!co_await detail::read_head(*c, opts.max_header_bytes, head, rest, too_big))
        throw fail(too_big ? make_error_code(errc::handshake_failed) : make_error_code(errc::connection_lost),
                   too_big ? "upgrade response too large" : "read upgrade response");
    auto reply = detail::check_upgrade_response(head, key, opts.subprotocols, opts.deflate);
    if (!reply.error.empty()) throw std::system_error(errc::handshake_failed, reply.error);
    c->subprotocol_ = std::move(reply.subprotocol);
    if (reply.deflate) c->deflate_ = std::make_unique<detail::deflate_session>(*reply.deflate, opts.deflate, detail::role::client);
    c->consume_early(rest);
    co_return connection(std::move(c));
}

} // namespace gw::v0
