// permessage-deflate (RFC 7692) without sockets: the options, the negotiation (a client's offers
// parsed and the server's answer chosen; a client's own offer and its check of the answer), and the
// zlib streams that compress a message and inflate one within a limit. Also HTTP's gzip and deflate
// bodies, which Engine.IO's polling responses use. The zlib parts need the GATEWAY_DEFLATE knob.
#pragma once
#include "../detail/config.hpp"
#include "text.hpp"
#include "ws_frame.hpp"

namespace gw::inline v0 {

/// How a connection uses permessage-deflate (RFC 7692).
enum class deflate_mode : std::uint8_t {
    /// Not negotiated: the default, as Socket.IO's and uWebSockets'. Compression costs CPU and, with
    /// context takeover, memory per connection, and it can leak secrets (README: Compression).
    off,
    /// No context takeover either way: each message is compressed on its own, so a broadcast is
    /// compressed once and the same bytes go to every recipient, and sockets hold no zlib state.
    shared,
    /// A compressor per socket that keeps its history between messages (better ratios for chatty
    /// traffic): about (1 << (window_bits + 2)) + (1 << (mem_level + 9)) bytes per socket once it
    /// sends a compressed message. Broadcasts are compressed per recipient.
    dedicated,
};

/// permessage-deflate's settings, a server's (gw::options::deflate) or a client's.
struct deflate_options {
    deflate_mode mode = deflate_mode::off;   ///< off, as Socket.IO and uWebSockets: see deflate_mode
    std::size_t threshold = 1024;   ///< shorter messages go uncompressed (ws's and Socket.IO's 1024): they gain little
    int level = 6;                  ///< zlib's level, 1 (fast) to 9 (small); 6 is zlib's default
    int window_bits = 15;           ///< dedicated: the compressor's window, 9-15 (1 << bits bytes of history)
    int mem_level = 8;              ///< zlib's memLevel, 1-9: its hash table takes 1 << (mem_level + 9) bytes
};

namespace detail {

// ---- negotiation (RFC 7692 section 7.1, the header grammar of RFC 6455 section 9.1) ----

/// What a handshake agreed. Window sizes are in bits (8-15).
struct deflate_params {
    bool server_no_context_takeover = false;
    bool client_no_context_takeover = false;
    std::uint8_t server_max_window_bits = 15;
    std::uint8_t client_max_window_bits = 15;
};

/// One extension of a Sec-WebSocket-Extensions list: its name, and its parameters with their
/// values unquoted (nullopt for a parameter without one). valid is false when the element broke
/// the grammar: it is then declined, and the others are still read.
struct extension_offer {
    std::string name;
    std::vector<std::pair<std::string, std::optional<std::string>>> params;
    bool valid = true;
};

inline bool is_tchar(char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

/// Parses a Sec-WebSocket-Extensions value (all its header lines joined with ", "): extensions
/// separated by commas, each a token with ";"-separated parameters, each a token with an optional
/// "=" and a token or quoted string (whose unquoted text must itself be a token).
inline std::vector<extension_offer> parse_extensions(std::string_view s) {
    std::vector<extension_offer> out;
    std::size_t i = 0;
    auto skip_space = [&] {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    };
    auto token = [&] {
        const std::size_t from = i;
        while (i < s.size() && is_tchar(s[i])) ++i;
        return std::string(s.substr(from, i - from));
    };
    // A quoted string's text, or nullopt when it is not closed.
    auto quoted = [&]() -> std::optional<std::string> {
        std::string v;
        for (++i; i < s.size(); ++i) {
            if (s[i] == '"') {
                ++i;
                return v;
            }
            if (s[i] == '\\') {
                if (++i == s.size()) return std::nullopt;
            }
            v.push_back(s[i]);
        }
        return std::nullopt;
    };
    while (i < s.size()) {
        skip_space();
        if (i < s.size() && s[i] == ',') {   // an empty element (RFC 7230's #rule allows them)
            ++i;
            continue;
        }
        if (i == s.size()) break;
        extension_offer e;
        e.name = token();
        e.valid = !e.name.empty();
        skip_space();
        while (e.valid && i < s.size() && s[i] == ';') {
            ++i;
            skip_space();
            std::string name = token();
            skip_space();
            std::optional<std::string> value;
            if (!name.empty() && i < s.size() && s[i] == '=') {
                ++i;
                skip_space();
                if (i < s.size() && s[i] == '"') {
                    value = quoted();
                    if (!value || value->empty() || !std::all_of(value->begin(), value->end(), is_tchar)) name.clear();
                } else {
                    value = token();
                    if (value->empty()) name.clear();
                }
                skip_space();
            }
            if (name.empty()) {
                e.valid = false;
                break;
            }
            e.params.emplace_back(std::move(name), std::move(value));
        }
        if (i < s.size() && s[i] != ',') e.valid = false;
        // Whatever is left of a broken element goes with it, up to the next comma outside quotes.
        bool in_quotes = false;
        for (; i < s.size() && (in_quotes || s[i] != ','); ++i) {
            if (s[i] == '\\' && in_quotes) ++i;
            else if (s[i] == '"') in_quotes = !in_quotes;
        }
        out.push_back(std::move(e));
    }
    return out;
}

/// A window size parameter's value: 8-15 in decimal, without leading zeros; 0 when it is not.
inline std::uint8_t window_bits_value(std::string_view v) noexcept {
    if (v.size() == 1 && v[0] == '8') return 8;
    if (v.size() == 1 && v[0] == '9') return 9;
    if (v.size() == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5') return static_cast<std::uint8_t>(10 + (v[1] - '0'));
    return 0;
}

/// Which window parameters an element named (the rest read_deflate_params() keeps in its result).
struct window_params_named {
    bool server = false, client = false;
};

/// A permessage-deflate element's parameters as a server reads an offer or a client an answer:
/// each known at most once, with a value where one is required and none where none is allowed
/// (client_max_window_bits may come bare in an offer only).
inline std::optional<deflate_params> read_deflate_params(const extension_offer& e, bool offer, window_params_named& named) {
    if (!e.valid || !iequals(e.name, "permessage-deflate")) return std::nullopt;
    deflate_params p;
    bool seen[4] = {false, false, false, false};
    for (const auto& [name, value] : e.params) {
        int which = iequals(name, "server_no_context_takeover")   ? 0
                    : iequals(name, "client_no_context_takeover") ? 1
                    : iequals(name, "server_max_window_bits")     ? 2
                    : iequals(name, "client_max_window_bits")     ? 3
                                                                  : -1;
        if (which < 0 || seen[which]) return std::nullopt;   // unknown or repeated: the element is declined
        seen[which] = true;
        if (which < 2) {
            if (value) return std::nullopt;
            (which == 0 ? p.server_no_context_takeover : p.client_no_context_takeover) = true;
            continue;
        }
        (which == 2 ? named.server : named.client) = true;
        if (!value) {
            if (which == 2 || !offer) return std::nullopt;
            continue;
        }
        const std::uint8_t bits = window_bits_value(*value);
        if (!bits) return std::nullopt;
        (which == 2 ? p.server_max_window_bits : p.client_max_window_bits) = bits;
    }
    return p;
}

/// What a server agreed to and the Sec-WebSocket-Extensions value it answers with.
struct deflate_agreement {
    deflate_params params;
    std::string response;
};

/// The server's choice among a client's offers (the Sec-WebSocket-Extensions value): the first
/// permessage-deflate offer it can accept, or nullopt (the extension is declined; the handshake
/// goes on). Offers with unknown, repeated or malformed parameters are declined, as are those
/// asking for a server window of 8 bits, which zlib cannot make. In shared mode the answer asks for
/// no context takeover both ways (a server may add client_no_context_takeover unasked, section
/// 7.1.1.2), so neither side's connection keeps zlib state.
inline std::optional<deflate_agreement> accept_deflate(std::string_view offers, const deflate_options& o) {
    if (o.mode == deflate_mode::off) return std::nullopt;
    for (const auto& e : parse_extensions(offers)) {
        window_params_named named;
        auto offered = read_deflate_params(e, true, named);
        if (!offered) continue;
        const bool asked_server_window = named.server;
        if (asked_server_window && offered->server_max_window_bits < 9) continue;
        deflate_agreement a;
        auto& p = a.params;
        const bool shared = o.mode == deflate_mode::shared;
        p.server_no_context_takeover = offered->server_no_context_takeover || shared;
        p.client_no_context_takeover = offered->client_no_context_takeover || shared;
        int window = shared ? 15 : std::clamp(o.window_bits, 9, 15);
        window = std::min<int>(window, offered->server_max_window_bits);
        p.server_max_window_bits = static_cast<std::uint8_t>(window);
        p.client_max_window_bits = offered->client_max_window_bits;   // we inflate with any window
        a.response = "permessage-deflate";
        if (p.server_no_context_takeover) a.response += "; server_no_context_takeover";
        if (p.client_no_context_takeover) a.response += "; client_no_context_takeover";
        if (asked_server_window || window < 15) a.response += "; server_max_window_bits=" + std::to_string(window);
        return a;
    }
    return std::nullopt;
}

/// A client's offer. It does not offer client_max_window_bits, so no server can ask it for a
/// window of 8 bits, which zlib cannot make; shared mode offers client_no_context_takeover.
inline std::string deflate_offer(const deflate_options& o) {
    if (o.mode == deflate_mode::off) return {};
    return o.mode == deflate_mode::shared ? "permessage-deflate; client_no_context_takeover" : "permessage-deflate";
}

/// A client's check of the server's Sec-WebSocket-Extensions answer to deflate_offer(o): the
/// agreed parameters, or an error saying what was wrong (the client then fails the connection, as
/// section 7.1 requires).
inline std::optional<deflate_params> check_deflate_answer(std::string_view answer, const deflate_options& o, std::string& error) {
    const auto list = parse_extensions(answer);
    if (o.mode == deflate_mode::off || list.size() != 1 || !iequals(list[0].name, "permessage-deflate")) {
        error = "server chose an extension that was not offered";
        return std::nullopt;
    }
    window_params_named named;
    auto p = read_deflate_params(list[0], false, named);
    if (!p || named.client) {   // we never offer client_max_window_bits: the answer may not name it
        error = "malformed permessage-deflate answer";
        return std::nullopt;
    }
    if (o.mode == deflate_mode::shared) p->client_no_context_takeover = true;   // as offered
    return p;
}

// ---- HTTP bodies (Engine.IO polling: the reference server's httpCompression) ----

enum class http_encoding : std::uint8_t { identity, gzip, deflate };

/// The encoding an Accept-Encoding value prefers among gzip and deflate (by q-value, gzip on a
/// tie; "*" stands for both), or identity when it accepts neither.
inline http_encoding pick_encoding(std::string_view accept) {
    double q_gzip = -1, q_deflate = -1, q_any = -1;
    std::size_t i = 0;
    while (i < accept.size()) {
        std::size_t end = accept.find(',', i);
        if (end == std::string_view::npos) end = accept.size();
        std::string_view item = trim(accept.substr(i, end - i));
        i = end + 1;
        double q = 1;
        if (auto semi = item.find(';'); semi != std::string_view::npos) {
            std::string_view param = trim(item.substr(semi + 1));
            item = trim(item.substr(0, semi));
            if (param.size() > 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
                const std::string v(param.substr(2));
                char* stop = nullptr;
                q = std::strtod(v.c_str(), &stop);
                if (stop == v.c_str()) q = 0;
            }
        }
        if (iequals(item, "gzip") || iequals(item, "x-gzip")) q_gzip = std::max(q_gzip, q);
        else if (iequals(item, "deflate")) q_deflate = std::max(q_deflate, q);
        else if (item == "*") q_any = std::max(q_any, q);
    }
    if (q_gzip < 0) q_gzip = q_any;
    if (q_deflate < 0) q_deflate = q_any;
    if (q_gzip <= 0 && q_deflate <= 0) return http_encoding::identity;
    return q_gzip >= q_deflate ? http_encoding::gzip : http_encoding::deflate;
}

inline std::string_view encoding_name(http_encoding e) noexcept {
    return e == http_encoding::gzip ? "gzip" : e == http_encoding::deflate ? "deflate" : "identity";
}

/// True when this build can compress (the GATEWAY_DEFLATE knob, with zlib).
#if defined(GATEWAY_DEFLATE)
inline constexpr bool deflate_built = true;
#else
inline constexpr bool deflate_built = false;
#endif

/// How inflating a message went: too_big passed the limit, bad_data is not DEFLATE.
enum class inflate_status : std::uint8_t { ok, too_big, bad_data };

#if defined(GATEWAY_DEFLATE)

// ---- zlib streams ----

/// Bytes zlib holds for this process's streams (their windows and tables): a metric.
inline std::atomic<std::int64_t>& zlib_bytes() noexcept {
    static std::atomic<std::int64_t> n{0};
    return n;
}
/// Streams open now: a metric.
inline std::atomic<std::int64_t>& zlib_streams() noexcept {
    static std::atomic<std::int64_t> n{0};
    return n;
}

/// zlib's allocator, counting what it holds: each block carries its size in front.
inline voidpf zlib_alloc(voidpf, uInt items, uInt size) {
    constexpr std::size_t front = alignof(std::max_align_t);
    const std::size_t n = std::size_t{items} * size;
    auto* p = static_cast<unsigned char*>(std::malloc(n + front));
    if (!p) return Z_NULL;
    std::memcpy(p, &n, sizeof n);
    zlib_bytes().fetch_add(static_cast<std::int64_t>(n), std::memory_order_relaxed);
    return p + front;
}
inline void zlib_free(voidpf, voidpf block) {
    if (!block) return;
    constexpr std::size_t front = alignof(std::max_align_t);
    auto* p = static_cast<unsigned char*>(block) - front;
    std::size_t n;
    std::memcpy(&n, p, sizeof n);
    zlib_bytes().fetch_sub(static_cast<std::int64_t>(n), std::memory_order_relaxed);
    std::free(p);
}

/// A raw DEFLATE compressor (no zlib header), as permessage-deflate uses; windowBits 16 + 15 makes
/// gzip, 15 zlib's format (HTTP's "deflate").
class deflate_stream {
public:
    /// window_bits: 9-15 raw; 15 + 16 gzip; 15 + 32 is not a compressor's. Throws std::bad_alloc.
    deflate_stream(int level, int window_bits, int mem_level, bool raw = true) {
        z_.zalloc = zlib_alloc;
        z_.zfree = zlib_free;
        if (deflateInit2(&z_, std::clamp(level, 0, 9), Z_DEFLATED, raw ? -std::clamp(window_bits, 9, 15) : window_bits,
                         std::clamp(mem_level, 1, 9), Z_DEFAULT_STRATEGY) != Z_OK)
            throw std::bad_alloc();
        zlib_streams().fetch_add(1, std::memory_order_relaxed);
    }
    deflate_stream(const deflate_stream&) = delete;
    deflate_stream& operator=(const deflate_stream&) = delete;
    ~deflate_stream() {
        deflateEnd(&z_);
        zlib_streams().fetch_sub(1, std::memory_order_relaxed);
    }

    /// Appends one message compressed to out, flushed to a byte boundary and without the
    /// 00 00 ff ff that ends the flush (section 7.2.1); reset: the next message starts without
    /// this one's history (no context takeover). prefix: bytes the message starts with (an
    /// Engine.IO packet's type), compressed with it without being copied in front of it.
    void compress(std::string_view in, std::string& out, bool reset, std::string_view prefix = {}) {
        const std::size_t start = out.size();
        if (!prefix.empty()) run(prefix, out, Z_NO_FLUSH);
        run(in, out, Z_SYNC_FLUSH);
        if (out.size() - start >= 4 && std::string_view(out).substr(out.size() - 4) == std::string_view("\0\0\xff\xff", 4))
            out.resize(out.size() - 4);
        if (out.size() == start) out.push_back('\0');   // an empty message: one empty block (section 7.2.3.6)
        if (reset) deflateReset(&z_);
    }

    /// Appends a whole stream (HTTP's gzip or deflate body) and resets.
    void finish(std::string_view in, std::string& out) {
        run(in, out, Z_FINISH);
        deflateReset(&z_);
    }

private:
    void run(std::string_view in, std::string& out, int flush) {
        z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
        z_.avail_in = static_cast<uInt>(in.size());
        std::size_t used = out.size();
        out.resize(used + deflateBound(&z_, static_cast<uLong>(in.size())) + 16);
        for (;;) {
            if (used == out.size()) out.resize(out.size() * 2);
            z_.next_out = reinterpret_cast<Bytef*>(out.data() + used);
            z_.avail_out = static_cast<uInt>(out.size() - used);
            const int r = deflate(&z_, flush);
            used = out.size() - z_.avail_out;
            if (r == Z_STREAM_END || (r != Z_OK && r != Z_BUF_ERROR)) break;
            if (z_.avail_out != 0 && (flush != Z_FINISH || r == Z_BUF_ERROR)) break;   // all taken (and flushed): room was left
        }
        out.resize(used);
    }
    z_stream z_{};
};

/// A raw DEFLATE decompressor with a window of 15 bits, which reads streams of any window.
class inflate_stream {
public:
    inflate_stream() {
        z_.zalloc = zlib_alloc;
        z_.zfree = zlib_free;
        if (inflateInit2(&z_, -15) != Z_OK) throw std::bad_alloc();
        zlib_streams().fetch_add(1, std::memory_order_relaxed);
    }
    inflate_stream(const inflate_stream&) = delete;
    inflate_stream& operator=(const inflate_stream&) = delete;
    ~inflate_stream() {
        inflateEnd(&z_);
        zlib_streams().fetch_sub(1, std::memory_order_relaxed);
    }

    /// Inflates one message's payload (the 00 00 ff ff tail is added here) into out, replacing
    /// it. Stops as soon as the output would pass limit bytes (too_big), and never holds more than
    /// limit + 1: a small message cannot make it allocate what it would inflate to. reset: the next
    /// message starts without this one's history (no context takeover).
    inflate_status inflate(std::string_view in, std::size_t limit, std::string& out, bool reset) {
        static constexpr char tail[4] = {0, 0, '\xff', '\xff'};
        const std::string_view parts[2] = {in, std::string_view(tail, 4)};
        out.clear();
        std::size_t used = 0;
        inflate_status status = inflate_status::ok;
        for (std::string_view part : parts) {
            z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(part.data()));
            z_.avail_in = static_cast<uInt>(part.size());
            while (status == inflate_status::ok) {
                if (used == out.size()) {
                    if (used > limit) {
                        status = inflate_status::too_big;
                        break;
                    }
                    out.resize(std::min(limit + 1, std::max<std::size_t>(used * 2, used + 4096)));
                }
                z_.next_out = reinterpret_cast<Bytef*>(out.data() + used);
                z_.avail_out = static_cast<uInt>(std::min<std::size_t>(out.size() - used, UINT_MAX));
                const int r = ::inflate(&z_, Z_SYNC_FLUSH);
                used += static_cast<std::size_t>(reinterpret_cast<char*>(z_.next_out) - (out.data() + used));
                if (used > limit) status = inflate_status::too_big;
                else if (r == Z_STREAM_END) inflateReset(&z_);   // a final block (section 7.2.3.3): a new stream may follow
                else if (r != Z_OK && r != Z_BUF_ERROR) status = inflate_status::bad_data;
                else if (z_.avail_in == 0 && z_.avail_out != 0) break;   // all taken, all given
                if (r == Z_STREAM_END && z_.avail_in == 0) break;
            }
        }
        out.resize(std::min(used, out.size()));
        if (reset || status != inflate_status::ok) inflateReset(&z_);
        return status;
    }

private:
    z_stream z_{};
};

/// The thread's compressor for messages sent without context takeover, for one set of settings:
/// shared by every connection of the thread (and by a broadcast's shared compressed form).
inline deflate_stream& thread_deflater(int level, int window_bits, int mem_level) {
    thread_local std::vector<std::pair<int, std::unique_ptr<deflate_stream>>> made;
    const int key = (level << 16) | (window_bits << 8) | mem_level;
    for (auto& [k, s] : made)
        if (k == key) return *s;
    made.emplace_back(key, std::make_unique<deflate_stream>(level, window_bits, mem_level));
    return *made.back().second;
}

/// The thread's decompressor for messages received without context takeover.
inline inflate_stream& thread_inflater() {
    thread_local inflate_stream s;
    return s;
}

#endif // GATEWAY_DEFLATE

/// Refuses settings this build cannot honour: a mode other than off without the knob.
inline void require_deflate_built(const deflate_options& o) {
    if (o.mode != deflate_mode::off && !deflate_built)
        throw std::invalid_argument("permessage-deflate needs gateway.hpp built with GATEWAY_DEFLATE (and zlib)");
}

/// Connections that agreed permessage-deflate now, in this process: a metric.
inline std::atomic<std::int64_t>& deflate_sessions() noexcept {
    static std::atomic<std::int64_t> n{0};
    return n;
}

/// One connection's permessage-deflate: what its handshake agreed, and the zlib streams it holds
/// while it needs them. None when neither side keeps context (shared mode): the thread's streams
/// serve. Made only for a connection that negotiated the extension, so others pay a null pointer.
class deflate_session {
public:
    deflate_session(const deflate_params& p, const deflate_options& o, role side)
        : threshold_(o.threshold), level_(static_cast<std::uint8_t>(std::clamp(o.level, 0, 9))),
          mem_level_(static_cast<std::uint8_t>(std::clamp(o.mem_level, 1, 9))),
          our_window_(side == role::server ? p.server_max_window_bits : p.client_max_window_bits),
          our_reset_(side == role::server ? p.server_no_context_takeover : p.client_no_context_takeover),
          peer_reset_(side == role::server ? p.client_no_context_takeover : p.server_no_context_takeover) {
        if (our_window_ < 9) our_window_ = 9;   // the client side's offer never allows 8 (deflate_offer)
        deflate_sessions().fetch_add(1, std::memory_order_relaxed);
    }
    deflate_session(const deflate_session&) = delete;
    deflate_session& operator=(const deflate_session&) = delete;
    ~deflate_session() { deflate_sessions().fetch_sub(1, std::memory_order_relaxed); }

    /// True when a message of n bytes goes compressed: compression is allowed for it (a per-emit
    /// choice) and it is not under the threshold.
    bool wants(std::size_t n, bool allowed) const noexcept { return allowed && n >= threshold_; }
    /// True when this connection's compressed messages are those of any connection with the same
    /// settings (no context, the full window): a broadcast's shared compressed form serves it.
    bool shares_frames() const noexcept { return our_reset_ && our_window_ == 15; }
    int level() const noexcept { return level_; }
    int mem_level() const noexcept { return mem_level_; }

#if defined(GATEWAY_DEFLATE)
    /// Appends message (after prefix) compressed as this connection sends it.
    void compress(std::string_view message, std::string& out, std::string_view prefix = {}) {
        if (our_reset_) {
            thread_deflater(level_, our_window_, mem_level_).compress(message, out, true, prefix);
            return;
        }
        if (!tx_) tx_ = std::make_unique<deflate_stream>(level_, our_window_, mem_level_);
        tx_->compress(message, out, false, prefix);
    }
    /// Inflates a received message into out (see inflate_stream::inflate).
    inflate_status inflate(std::string_view payload, std::size_t limit, std::string& out) {
        if (peer_reset_) return thread_inflater().inflate(payload, limit, out, true);
        if (!rx_) rx_ = std::make_unique<inflate_stream>();
        return rx_->inflate(payload, limit, out, false);
    }
#else
    void compress(std::string_view message, std::string& out, std::string_view prefix = {}) { out.append(prefix).append(message); }
    inflate_status inflate(std::string_view, std::size_t, std::string&) { return inflate_status::bad_data; }
#endif

private:
    std::size_t threshold_;
    std::uint8_t level_, mem_level_, our_window_;
    bool our_reset_, peer_reset_;
#if defined(GATEWAY_DEFLATE)
    std::unique_ptr<deflate_stream> tx_;
    std::unique_ptr<inflate_stream> rx_;
#endif
};

/// A whole HTTP body compressed as Content-Encoding e (gzip, or deflate: zlib's format).
inline std::string http_compress(std::string_view body, http_encoding e, int level = 6) {
#if defined(GATEWAY_DEFLATE)
    thread_local deflate_stream gzip(level, 15 + 16, 8, false), zlib(level, 15, 8, false);
    std::string out;
    (e == http_encoding::gzip ? gzip : zlib).finish(body, out);
    return out;
#else
    (void)e;
    (void)level;
    return std::string(body);
#endif
}

} // namespace detail
} // namespace gw::v0
