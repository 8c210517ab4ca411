// Redis without sockets: the REDIS_URL grammar, RESP request encoding and the owned reply value
// the Redis client hands out. Pure and byte-testable; hiredis (which reads replies) stays in
// redis/client.hpp, behind the GATEWAY_REDIS knob.
#pragma once
#include "../detail/config.hpp"

namespace gw::inline v0::redis {

/// Errors of the Redis client, in the category gw::redis::error_category().
enum class errc {
    bad_url = 1,       ///< url::parse got something that is not a redis:// or rediss:// URL
    connection_lost,   ///< the command was written but the connection ended before its reply came
    dropped,           ///< the command did not fit in options::max_buffered_bytes and was not sent
    closed,            ///< close() was called before the command completed
    handshake_failed,  ///< Redis refused AUTH, SELECT or the first PING (a wrong password, say)
    protocol_error,    ///< Redis sent bytes that are not RESP, or a reply nobody asked for
    refused,           ///< Redis answered a subscription with an error (SSUBSCRIBE before Redis 7, say)
};

} // namespace gw::v0::redis

template <> struct std::is_error_code_enum<gw::redis::errc> : std::true_type {};

namespace gw::inline v0::redis {

/// The category of gw::redis::errc.
inline const std::error_category& error_category() noexcept {
    struct category final : std::error_category {
        const char* name() const noexcept override { return "gateway.redis"; }
        std::string message(int e) const override {
            switch (static_cast<errc>(e)) {
            case errc::bad_url: return "not a valid redis:// or rediss:// URL";
            case errc::connection_lost: return "the connection to Redis was lost before the reply came";
            case errc::dropped: return "the command did not fit in the buffer while Redis was away";
            case errc::closed: return "the Redis client was closed";
            case errc::handshake_failed: return "Redis refused the connection's AUTH, SELECT or PING";
            case errc::protocol_error: return "Redis sent something that is not a valid reply";
            case errc::refused: return "Redis refused the subscription";
            }
            return "unknown Redis client error";
        }
    };
    static const category instance;
    return instance;
}

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), error_category()}; }

/// Where a Redis server is and how to log in: redis://[[user]:password@]host[:port][/db], or
/// rediss:// for TLS. Defaults: localhost, 6379, database 0, no AUTH.
struct url {
    bool tls = false;               ///< rediss://
    std::string host = "localhost"; ///< a name, an IPv4 address or an IPv6 address (without brackets)
    std::uint16_t port = 6379;      ///< Redis' registered port
    std::string user{};             ///< ACL user (Redis 6+); empty: AUTH with the password alone
    std::string password{};         ///< empty: no AUTH
    int db = 0;                     ///< SELECTed on every connection when not 0

    /// Parses a URL. User name and password are percent-decoded. Throws std::system_error
    /// (errc::bad_url) whose message names what is wrong.
    static url parse(std::string_view text) {
        auto fail = [&](std::string_view why) -> std::system_error {
            return {errc::bad_url, std::string(why) + " in \"" + mask_password(text) + "\""};
        };
        url out;
        std::string_view rest = text;
        if (rest.starts_with("redis://")) rest.remove_prefix(8);
        else if (rest.starts_with("rediss://")) {
            rest.remove_prefix(9);
            out.tls = true;
        } else throw fail("the scheme must be redis:// or rediss://");
        if (rest.find_first_of("?#") != std::string_view::npos) throw fail("query and fragment are not supported");
        std::string_view path;
        if (auto slash = rest.find('/'); slash != std::string_view::npos) {
            path = rest.substr(slash + 1);
            rest = rest.substr(0, slash);
        }
        if (auto at = rest.rfind('@'); at != std::string_view::npos) {
            std::string_view info = rest.substr(0, at);
            rest = rest.substr(at + 1);
            auto colon = info.find(':');
            if (colon == std::string_view::npos)
                throw fail("a user name needs a password (write redis://:password@host for a password alone)");
            if (!percent_decode(info.substr(0, colon), out.user)) throw fail("bad percent-encoding in the user name");
            if (!percent_decode(info.substr(colon + 1), out.password))
                throw fail("bad percent-encoding in the password");
            if (out.password.empty()) throw fail("the password is empty");
        }
        std::string_view port;
        if (rest.starts_with('[')) {
            auto close = rest.find(']');
            if (close == std::string_view::npos) throw fail("an IPv6 address needs its closing ]");
            out.host = std::string(rest.substr(1, close - 1));
            if (out.host.empty()) throw fail("the IPv6 address is empty");
            rest.remove_prefix(close + 1);
            if (!rest.empty() && !rest.starts_with(':')) throw fail("only :port may follow ]");
            if (!rest.empty()) port = rest.substr(1);
            if (!rest.empty() && port.empty()) throw fail("the port is empty");
        } else {
            auto colon = rest.find(':');
            if (colon != std::string_view::npos) {
                if (rest.find(':', colon + 1) != std::string_view::npos)
                    throw fail("an IPv6 address must be written in brackets: [::1]:6379");
                port = rest.substr(colon + 1);
                if (port.empty()) throw fail("the port is empty");
                rest = rest.substr(0, colon);
            }
            if (!rest.empty()) out.host = std::string(rest);
        }
        if (!port.empty()) {
            unsigned value = 0;
            auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
            if (ec != std::errc{} || end != port.data() + port.size() || value == 0 || value > 65535)
                throw fail("the port must be a number from 1 to 65535");
            out.port = static_cast<std::uint16_t>(value);
        }
        if (!path.empty()) {
            auto [end, ec] = std::from_chars(path.data(), path.data() + path.size(), out.db);
            if (ec != std::errc{} || end != path.data() + path.size() || out.db < 0)
                throw fail("the database must be a number (redis://host:6379/0)");
        }
        return out;
    }

    /// The URL with its password replaced by "***": for logs and error messages.
    static std::string mask_password(std::string_view text) {
        auto scheme = text.find("://");
        auto at = text.rfind('@');
        if (scheme == std::string_view::npos || at == std::string_view::npos || at < scheme) return std::string(text);
        auto colon = text.find(':', scheme + 3);
        if (colon == std::string_view::npos || colon > at) return std::string(text);
        return std::string(text.substr(0, colon + 1)) + "***" + std::string(text.substr(at));
    }

private:
    static bool percent_decode(std::string_view in, std::string& out) {
        auto hex = [](char c) -> int {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            if (c >= 'A' && c <= 'F') return c - 'A' + 10;
            return -1;
        };
        out.clear();
        for (std::size_t i = 0; i < in.size(); ++i) {
            if (in[i] != '%') {
                out += in[i];
                continue;
            }
            if (i + 2 >= in.size()) return false;
            int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
            if (hi < 0 || lo < 0) return false;
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
        }
        return true;
    }
};

/// One Redis reply, owned: nil, a status line (+OK), an error (-ERR ...), an integer, a bulk string
/// (binary-safe) or an array of replies. A Redis error is a value like the others, not an exception.
struct reply {
    enum class kind : std::uint8_t { nil, status, error, integer, string, array };
    kind type = kind::nil;
    std::string str{};               ///< status, error or bulk string bytes
    long long integer = 0;           ///< kind::integer
    std::vector<reply> elements{};   ///< kind::array

    bool is_nil() const noexcept { return type == kind::nil; }
    bool is_error() const noexcept { return type == kind::error; }
    bool is_string() const noexcept { return type == kind::string; }
    bool is_array() const noexcept { return type == kind::array; }
};

namespace detail {

/// Appends one command in RESP (an array of bulk strings) to out. Binary-safe: lengths, not
/// terminators, delimit the arguments.
inline void append_command(std::string& out, std::span<const std::string_view> args) {
    char num[24];
    auto put_len = [&](char lead, std::size_t n) {
        out += lead;
        auto [end, ec] = std::to_chars(num, num + sizeof num, n);
        (void)ec;
        out.append(num, end);
        out += "\r\n";
    };
    put_len('*', args.size());
    for (auto a : args) {
        put_len('$', a.size());
        out.append(a);
        out += "\r\n";
    }
}

} // namespace detail

} // namespace gw::v0::redis
