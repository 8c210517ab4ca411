// gw::http_request: a request head (protocol/http.hpp) with where it came from, and what the
// application attaches to it while upgrading.
#pragma once
#include "../detail/asio.hpp"
#include "../protocol/http.hpp"

namespace gw::inline v0 {

class server;
namespace detail {
struct sio_client;
}

/// An HTTP request: the upgrade request a connection was opened with, or a plain HTTP request.
/// Owns its bytes; every view it returns lives as long as the request. Its head's accessors
/// (method, path, query, header, has_token, protocols, query_param, cookie, bearer_token) are
/// detail::request_head's.
class http_request : public detail::request_head {
public:
    const asio::ip::tcp::endpoint& remote_endpoint() const noexcept { return remote_; }
    /// When its head arrived (Socket.IO's handshake.issued and handshake.time).
    std::chrono::system_clock::time_point issued() const noexcept { return issued_; }
    /// True when it came over TLS (Socket.IO's handshake.secure).
    bool secure() const noexcept { return secure_; }
    /// True when it names an Origin (Socket.IO's handshake.xdomain: a browser on another site, or
    /// any client that says where it runs).
    bool cross_origin() const noexcept { return header("origin").has_value(); }

    /// What the application attaches while upgrading (the authenticated user, say); it stays with
    /// the connection as its request does.
    std::any attachment;

    /// Socket.IO: the CONNECT packet's auth payload as JSON text ("{}" when the client sent none);
    /// empty for a WebSocket connection. gw::socket::auth() parses it.
    std::string auth;

    /// A bearer token: Socket.IO's auth.token (io(url, {auth: {token}})) when it is a string, else
    /// what request_head::bearer_token() finds (Authorization header, subprotocol, query).
    std::optional<std::string> bearer_token() const {
        if (auth_token_) return auth_token_;
        return request_head::bearer_token();
    }

private:
    asio::ip::tcp::endpoint remote_;
    std::chrono::system_clock::time_point issued_{};
    bool secure_ = false;
    std::optional<std::string> auth_token_;   // auth.token, set by the Socket.IO layer
    friend class server;
    friend struct detail::sio_client;
};

} // namespace gw::v0
