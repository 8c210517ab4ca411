// Errors: gw::errc and its std::error_category. Awaitables throw std::system_error with these,
// as Asio does; a normal close is a value, not an error.
#pragma once
#include "../detail/config.hpp"

namespace gw::inline v0 {


/// Errors reported by gateway.hpp, in the category gw::error_category().
enum class errc {
    closed = 1,            ///< the connection is closed or closing; nothing more can be sent
    protocol_error,        ///< the peer broke RFC 6455 (we closed with 1002)
    invalid_payload,       ///< text or close reason that is not UTF-8 (we closed with 1007)
    message_too_big,       ///< a message over max_message_bytes (we closed with 1009)
    connection_lost,       ///< the TCP connection ended without a closing handshake (1006)
    handshake_failed,      ///< the HTTP upgrade was refused or its answer was invalid
    handshake_timeout,     ///< the HTTP upgrade did not complete in time
    bad_url,               ///< connect() got a URL that is not ws:// or wss://
    receive_in_progress,   ///< receive() called while another receive() on it is pending
    ping_timeout,          ///< the peer did not answer the server's ping within ping_timeout
    policy_violation,      ///< the peer broke a limit of the server's (we closed with 1008)
    slow_consumer,         ///< the peer read too slowly: its outbox passed max_outbox_bytes (we closed with 1008)
};


} // namespace gw::v0

template <> struct std::is_error_code_enum<gw::errc> : std::true_type {};

namespace gw::inline v0 {

/// The category of gw::errc.
inline const std::error_category& error_category() noexcept {
    struct category final : std::error_category {
        const char* name() const noexcept override { return "gateway"; }
        std::string message(int e) const override {
            switch (static_cast<errc>(e)) {
            case errc::closed: return "the WebSocket connection is closed";
            case errc::protocol_error: return "the peer violated the WebSocket protocol";
            case errc::invalid_payload: return "the peer sent text that is not valid UTF-8";
            case errc::message_too_big: return "the peer sent a message over the size limit";
            case errc::connection_lost: return "the connection ended without a closing handshake";
            case errc::handshake_failed: return "the WebSocket handshake failed";
            case errc::handshake_timeout: return "the WebSocket handshake timed out";
            case errc::bad_url: return "the URL is not a valid ws:// or wss:// URL";
            case errc::receive_in_progress: return "another receive() is already pending";
            case errc::ping_timeout: return "ping timeout";
            case errc::policy_violation: return "the peer broke a limit of the server's";
            case errc::slow_consumer: return "slow consumer";
            }
            return "unknown gateway error";
        }
    };
    static const category instance;
    return instance;
}

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), error_category()}; }

} // namespace gw::v0
