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

/// Redis Cluster's hash slots: 16384, a key's slot being its CRC16 modulo that.
inline constexpr std::uint16_t slot_count = 16384;

/// CRC16-XMODEM (polynomial 0x1021, initial value 0, no reflection), the checksum Redis Cluster
/// hashes keys and shard channels with: crc16("123456789") is 0x31C3.
constexpr std::uint16_t crc16(std::string_view bytes) noexcept {
    std::uint16_t crc = 0;
    for (char ch : bytes) {
        crc = static_cast<std::uint16_t>(crc ^ (static_cast<std::uint16_t>(static_cast<unsigned char>(ch)) << 8));
        for (int bit = 0; bit < 8; ++bit)
            crc = static_cast<std::uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

/// The hash slot of a key or a shard channel. When the key has a "{...}" with at least one byte
/// between the first '{' and the next '}', only those bytes are hashed (the hashtag rule: keys
/// sharing a tag share a slot); otherwise the whole key.
constexpr std::uint16_t key_slot(std::string_view key) noexcept {
    if (const auto open = key.find('{'); open != std::string_view::npos) {
        const auto close = key.find('}', open + 1);
        if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
    }
    return static_cast<std::uint16_t>(crc16(key) % slot_count);
}

/// A cluster node's address as the cluster announces it.
struct node_address {
    std::string host{};
    std::uint16_t port = 0;
    /// "host:port": a node's name in logs and maps.
    std::string name() const { return host + ":" + std::to_string(port); }
    friend bool operator==(const node_address&, const node_address&) = default;
};

/// Slots first..last (inclusive), served by master.
struct slot_range {
    std::uint16_t first = 0, last = 0;
    node_address master{};
    friend bool operator==(const slot_range&, const slot_range&) = default;
};

/// A host in CLUSTER SLOTS or MOVED: empty means "the one you asked" (a node that does not know
/// its own address), and so does "?" (Redis 7's unknown endpoint).
inline std::string announced_host(std::string_view host, std::string_view asked_host) {
    return host.empty() || host == "?" ? std::string(asked_host) : std::string(host);
}

/// CLUSTER SLOTS' reply, [[first, last, [host, port, id, ...], replicas...], ...], as ranges
/// served by masters; nullopt when it is not such a reply (an error, say "cluster support
/// disabled"). asked_host replaces an empty or unknown host.
inline std::optional<std::vector<slot_range>> parse_cluster_slots(const reply& r, std::string_view asked_host) {
    if (!r.is_array()) return std::nullopt;
    std::vector<slot_range> out;
    for (const auto& e : r.elements) {
        if (!e.is_array() || e.elements.size() < 3) return std::nullopt;
        const auto& first = e.elements[0];
        const auto& last = e.elements[1];
        const auto& master = e.elements[2];
        if (first.type != reply::kind::integer || last.type != reply::kind::integer || !master.is_array() ||
            master.elements.size() < 2 || master.elements[1].type != reply::kind::integer)
            return std::nullopt;
        if (first.integer < 0 || last.integer < first.integer || last.integer >= slot_count) return std::nullopt;
        const auto& host = master.elements[0];
        if (!host.is_string() && !host.is_nil()) return std::nullopt;
        if (master.elements[1].integer <= 0 || master.elements[1].integer > 65535) return std::nullopt;
        slot_range range;
        range.first = static_cast<std::uint16_t>(first.integer);
        range.last = static_cast<std::uint16_t>(last.integer);
        range.master.host = announced_host(host.str, asked_host);
        range.master.port = static_cast<std::uint16_t>(master.elements[1].integer);
        out.push_back(std::move(range));
    }
    return out;
}

/// A cluster's redirection: "MOVED slot host:port" (the slot lives there now) or "ASK slot
/// host:port" (this once, during a migration).
struct redirect {
    bool ask = false;
    std::uint16_t slot = 0;
    node_address to{};
};

/// The redirection an error reply names; nullopt for any other error. The host may be an IPv6
/// address (the port follows the last ':'), or empty: asked_host.
inline std::optional<redirect> parse_redirect(std::string_view error, std::string_view asked_host) {
    redirect out;
    if (error.starts_with("MOVED ")) error.remove_prefix(6);
    else if (error.starts_with("ASK ")) {
        error.remove_prefix(4);
        out.ask = true;
    } else return std::nullopt;
    const auto space = error.find(' ');
    if (space == std::string_view::npos) return std::nullopt;
    const auto slot = error.substr(0, space);
    const auto where = error.substr(space + 1);
    unsigned n = 0;
    auto [end, ec] = std::from_chars(slot.data(), slot.data() + slot.size(), n);
    if (ec != std::errc{} || end != slot.data() + slot.size() || n >= slot_count) return std::nullopt;
    out.slot = static_cast<std::uint16_t>(n);
    const auto colon = where.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    const auto port = where.substr(colon + 1);
    unsigned p = 0;
    auto [pend, pec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (pec != std::errc{} || pend != port.data() + port.size() || p == 0 || p > 65535) return std::nullopt;
    out.to.host = announced_host(where.substr(0, colon), asked_host);
    out.to.port = static_cast<std::uint16_t>(p);
    return out;
}

/// Which master serves each slot: the routing table of a cluster client, filled from CLUSTER
/// SLOTS and corrected by MOVED.
class slot_table {
public:
    /// Replaces the table with these ranges; slots in none of them have no owner.
    void assign(const std::vector<slot_range>& ranges) {
        masters_.clear();
        owner_.assign(slot_count, none);
        for (const auto& r : ranges) {
            const auto i = index_of(r.master);
            for (std::size_t s = r.first; s <= r.last; ++s) owner_[s] = i;
        }
    }
    /// One slot moved (a MOVED reply): the rest stays as it was.
    void move(std::uint16_t slot, const node_address& to) {
        if (owner_.empty()) owner_.assign(slot_count, none);
        owner_[slot % slot_count] = index_of(to);
    }
    /// The master serving slot; nullptr when none does (not known yet, or a cluster not covering it).
    const node_address* owner(std::uint16_t slot) const noexcept {
        if (owner_.empty() || owner_[slot % slot_count] == none) return nullptr;
        return &masters_[owner_[slot % slot_count]];
    }
    /// The masters serving at least one slot, in the order they were first named.
    std::vector<node_address> masters() const {
        std::vector<bool> used(masters_.size(), false);
        for (auto i : owner_)
            if (i != none) used[i] = true;
        std::vector<node_address> out;
        for (std::size_t i = 0; i < masters_.size(); ++i)
            if (used[i]) out.push_back(masters_[i]);
        return out;
    }
    /// Every slot has an owner.
    bool complete() const noexcept {
        return !owner_.empty() && std::find(owner_.begin(), owner_.end(), none) == owner_.end();
    }

private:
    static constexpr std::uint16_t none = 0xffff;
    std::uint16_t index_of(const node_address& a) {
        for (std::size_t i = 0; i < masters_.size(); ++i)
            if (masters_[i] == a) return static_cast<std::uint16_t>(i);
        masters_.push_back(a);
        return static_cast<std::uint16_t>(masters_.size() - 1);
    }
    std::vector<node_address> masters_;    // every address named so far (few: one per master)
    std::vector<std::uint16_t> owner_;     // per slot, an index into masters_; empty until assigned
};

} // namespace detail

} // namespace gw::v0::redis
