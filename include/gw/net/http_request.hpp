// gw::http_request: a request head (protocol/http.hpp) with where it came from, and what the
// application attaches to it while upgrading.
#pragma once
#include "../detail/asio.hpp"
#include "../protocol/http.hpp"

namespace gw::inline v0 {

class server;

/// An HTTP request: the upgrade request a connection was opened with, or a plain HTTP request.
/// Owns its bytes; every view it returns lives as long as the request. Its head's accessors
/// (method, path, query, header, has_token, protocols, query_param, cookie, bearer_token) are
/// detail::request_head's.
class http_request : public detail::request_head {
public:
    const asio::ip::tcp::endpoint& remote_endpoint() const noexcept { return remote_; }

    /// What the application attaches while upgrading (the authenticated user, say); it stays with
    /// the connection as its request does.
    std::any attachment;

private:
    asio::ip::tcp::endpoint remote_;
    friend class server;
};

} // namespace gw::v0
