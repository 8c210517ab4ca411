// The words every part shares: close codes and opcodes of RFC 6455, a message, the overflow
// policy, log levels.
#pragma once
#include "../detail/config.hpp"

namespace gw::inline v0 {

/// What happens to a message that would take a connection's outbox past max_outbox_bytes.
enum class overflow : std::uint8_t {
    close,   ///< the slow consumer is closed with 1008 "slow consumer"; what was queued for it is dropped
    drop,    ///< the message is dropped for that connection, which stays
};

/// Close status codes of RFC 6455 section 7.4.1.
enum class close_code : std::uint16_t {
    normal = 1000,
    going_away = 1001,
    protocol_error = 1002,
    unsupported_data = 1003,
    no_status = 1005,          ///< never sent: the peer's close frame carried no code
    abnormal = 1006,           ///< never sent: the TCP connection ended without a close frame
    invalid_payload = 1007,
    policy_violation = 1008,
    message_too_big = 1009,
    mandatory_extension = 1010,
    internal_error = 1011,
};

/// Frame opcodes of RFC 6455 section 5.2.
enum class opcode : std::uint8_t { continuation = 0, text = 1, binary = 2, close = 8, ping = 9, pong = 10 };

/// One complete WebSocket message: text (valid UTF-8) or binary.
struct message {
    std::string data;      ///< the payload, reassembled from all fragments
    bool binary = false;   ///< false: text frame(s); true: binary frame(s)
};

/// How much a log line matters (options.log).
enum class log_level : std::uint8_t { debug, info, warn, error };

} // namespace gw::v0
