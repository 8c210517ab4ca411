// TLS contexts for wss:// servers and clients (OpenSSL through Asio).
#pragma once
#include "../detail/asio.hpp"

namespace gw::inline v0 {

/// A TLS 1.2+ server context from a PEM certificate chain and private key.
inline std::shared_ptr<asio::ssl::context> tls_server_context(const std::string& cert_chain_file,
                                                              const std::string& private_key_file) {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1 |
                     asio::ssl::context::single_dh_use);
    ctx->use_certificate_chain_file(cert_chain_file);
    ctx->use_private_key_file(private_key_file, asio::ssl::context::pem);
    return ctx;
}

/// A TLS 1.2+ client context that verifies servers: against ca_file when given, else the system's CAs.
inline std::shared_ptr<asio::ssl::context> tls_client_context(const std::string& ca_file = {}) {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    if (ca_file.empty()) ctx->set_default_verify_paths();
    else ctx->load_verify_file(ca_file);
    ctx->set_verify_mode(asio::ssl::verify_peer);
    return ctx;
}

} // namespace gw::v0
