
using json = nlohmann::json;

namespace detail {

// The envelope costs more than the messages it carries when a general JSON library parses and
// prints it character by character, so the gateway reads and writes it itself: the parts it
// knows (strings without escapes, numbers, literals, the envelope's own keys) directly, anything
// else through nlohmann/json. Output is byte for byte what json::dump() would print.

/// How many bytes from i on need no attention inside a JSON string (no quote, backslash or control
/// character), a word at a time: text is mostly such bytes.
inline std::size_t plain_run(std::string_view s, std::size_t i) noexcept {
    constexpr std::uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    const std::size_t start = i;
    while (s.size() - i >= 8) {
        std::uint64_t w;
        std::memcpy(&w, s.data() + i, 8);
        const std::uint64_t quote = w ^ (ones * '"'), backslash = w ^ (ones * '\\');
        // A byte below 0x20 (bytes of 0x80 and above are masked out by ~w), or a zero byte in one of
        // the XORs: some byte of these eight needs a look.
        const std::uint64_t special = ((w - ones * 0x20) & ~w) | ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash);
        if (special & highs) break;
        i += 8;
    }
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == '"' || c == '\\') break;
        ++i;
    }
    return i - start;
}

/// Appends s as a JSON string; invalid UTF-8 goes through json::dump(), which substitutes U+FFFD as
/// it does everywhere else.
inline void write_json_string(std::string& out, std::string_view s) {
    if (!is_valid_utf8(s)) {
        out += json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
        return;
    }
    static constexpr char hex[] = "0123456789abcdef";
    out.reserve(out.size() + s.size() + 2);
    out.append(1, '"');
    std::size_t run = 0;   // start of the bytes not yet appended
    for (std::size_t i = 0; i < s.size(); ++i) {
        i += plain_run(s, i);
        if (i == s.size()) break;
        const auto c = static_cast<unsigned char>(s[i]);
        out.append(s.data() + run, i - run);
        run = i + 1;
        out += '\\';
        switch (c) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '\b': out += 'b'; break;
        case '\f': out += 'f'; break;
        case '\n': out += 'n'; break;
        case '\r': out += 'r'; break;
        case '\t': out += 't'; break;
        default: out.append("u00").append(1, hex[c >> 4]).append(1, hex[c & 0xF]);
        }
    }
    out.append(s.data() + run, s.size() - run);
    out.append(1, '"');
}

/// Appends j as json::dump() prints it (compact, U+FFFD for invalid UTF-8), without a temporary.
inline void write_json(std::string& out, const json& j) {
    switch (j.type()) {
    case json::value_t::null: out += "null"; return;
    case json::value_t::boolean: out += j.get<bool>() ? "true" : "false"; return;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: {
        char buf[24];
        auto r = j.is_number_unsigned() ? std::to_chars(buf, buf + sizeof buf, j.get<std::uint64_t>())
                                        : std::to_chars(buf, buf + sizeof buf, j.get<std::int64_t>());
        out.append(buf, r.ptr);
        return;
    }
    case json::value_t::string: write_json_string(out, j.get_ref<const std::string&>()); return;
    case json::value_t::array: {
        out += '[';
        bool first = true;
        for (const auto& v : j) {
            if (!first) out += ',';
            first = false;
            write_json(out, v);
        }
        out += ']';
        return;
    }
    case json::value_t::object: {
        out += '{';
        bool first = true;
        for (const auto& [k, v] : j.items()) {
            if (!first) out += ',';
            first = false;
            write_json_string(out, k);
            out += ':';
            write_json(out, v);
        }
        out += '}';
        return;
    }
    default: break;   // floating point (its shortest round-trip form) and binary: the library's printer
    }
    out += j.dump(-1, ' ', false, json::error_handler_t::replace);
}

/// A validating pass over JSON text that finds where values end without building them.
class json_scanner {
public:
    explicit json_scanner(std::string_view text) noexcept : s_(text) {}
    bool at_end() noexcept {
        skip_space();
        return i_ == s_.size();
    }
    /// True when c is next (after white space).
    bool next_is(char c) noexcept {
        skip_space();
        return i_ < s_.size() && s_[i_] == c;
    }
    /// Consumes c (after white space) if it is next.
    bool take(char c) noexcept {
        skip_space();
        if (i_ < s_.size() && s_[i_] == c) {
            ++i_;
            return true;
        }
        return false;
    }
    /// A string; raw is what stands between the quotes, escaped tells whether it holds a backslash.
    bool string(std::string_view& raw, bool& escaped) noexcept {
        skip_space();
        if (i_ >= s_.size() || s_[i_] != '"') return false;
        const std::size_t start = ++i_;
        escaped = false;
        while (i_ < s_.size()) {
            i_ += plain_run(s_, i_);
            if (i_ >= s_.size()) break;
            const auto c = static_cast<unsigned char>(s_[i_]);
            if (c == '"') {
                raw = s_.substr(start, i_ - start);
                ++i_;
                return true;
            }
            if (c < 0x20) return false;
            escaped = true;   // plain_run stops only at a quote, a control character or a backslash
            if (++i_ >= s_.size()) return false;
            const char e = s_[i_++];
            if (e == 'u') {
                unsigned cp = 0;
                if (!hex4(cp)) return false;
                if (cp >= 0xD800 && cp <= 0xDBFF) {   // a high surrogate must be followed by a low one
                    unsigned lo = 0;
                    if (i_ + 2 > s_.size() || s_[i_] != '\\' || s_[i_ + 1] != 'u') return false;
                    i_ += 2;
                    if (!hex4(lo) || lo < 0xDC00 || lo > 0xDFFF) return false;
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    return false;
                }
            } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
                return false;
            }
        }
        return false;
    }
    /// Any value; span is its text, without the white space around it.
    bool value(std::string_view& span) noexcept {
        skip_space();
        const std::size_t start = i_;
        if (!value()) return false;
        span = s_.substr(start, i_ - start);
        return true;
    }
    /// Any value, nested ones included (without recursion, so depth costs no stack).
    bool value() noexcept {
        std::string open;   // the brackets entered, innermost last
        for (;;) {
            skip_space();
            if (i_ >= s_.size()) return false;
            const char c = s_[i_];
            std::string_view raw;
            bool escaped = false;
            if (c == '{' || c == '[') {
                ++i_;
                open += c;
                if (take(c == '{' ? '}' : ']')) {
                    open.pop_back();
                } else {
                    if (c == '{' && !(string(raw, escaped) && take(':'))) return false;
                    continue;   // the first member's value, or the first element
                }
            } else if (c == '"') {
                if (!string(raw, escaped)) return false;
            } else if (c == 't' || c == 'f' || c == 'n') {
                if (!literal()) return false;
            } else if (!number()) {
                return false;
            }
            // A value is complete: close what ends here, or move to the next member or element.
            for (;;) {
                if (open.empty()) return true;
                const char close = open.back() == '{' ? '}' : ']';
                if (take(close)) {
                    open.pop_back();
                    continue;
                }
                if (!take(',')) return false;
                if (open.back() == '{' && !(string(raw, escaped) && take(':'))) return false;
                break;
            }
        }
    }

private:
    void skip_space() noexcept {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) ++i_;
    }
    bool hex4(unsigned& cp) noexcept {
        if (i_ + 4 > s_.size()) return false;
        for (int k = 0; k < 4; ++k) {
            const int h = hex_value(s_[i_++]);
            if (h < 0) return false;
            cp = cp << 4 | static_cast<unsigned>(h);
        }
        return true;
    }
    bool literal() noexcept {
        for (std::string_view w : {"true", "false", "null"})
            if (s_.substr(i_, w.size()) == w) {
                i_ += w.size();
                return true;
            }
        return false;
    }
    bool digits() noexcept {
        const std::size_t start = i_;
        while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
        return i_ > start;
    }
    bool number() noexcept {
        const std::size_t start = i_;
        if (i_ < s_.size() && s_[i_] == '-') ++i_;
        if (i_ < s_.size() && s_[i_] == '0') ++i_;
        else if (!digits()) return false;
        bool plain = true;
        if (i_ < s_.size() && s_[i_] == '.') {
            plain = false;
            if (++i_, !digits()) return false;
        }
        if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
            plain = false;
            ++i_;
            if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
            if (!digits()) return false;
        }
        // Like the library, refuse what no double can hold (1e999); what rounds to zero is fine.
        if (plain && i_ - start < 20) return true;
        const char* first = s_.data() + start + (s_[start] == '-');
        double v = 0;
        auto r = std::from_chars(first, s_.data() + i_, v);
        if (r.ec != std::errc::result_out_of_range) return true;
        return !overflows(std::string_view(first, static_cast<std::size_t>(s_.data() + i_ - first)));
    }
    /// Whether an out-of-range decimal is too large (not too small): its power of ten is positive.
    static bool overflows(std::string_view digits) noexcept {
        long long power = 0, exponent = 0;
        bool leading = true, fraction = false;
        std::size_t k = 0;
        for (; k < digits.size() && digits[k] != 'e' && digits[k] != 'E'; ++k) {
            if (digits[k] == '.') {
                fraction = true;
            } else if (leading && digits[k] == '0') {
                if (fraction) --power;
            } else {
                if (leading && fraction) --power;
                leading = false;
                if (!fraction) ++power;
            }
        }
        if (leading) return false;   // zero
        bool negative = false;
        if (++k < digits.size() && (digits[k] == '-' || digits[k] == '+')) negative = digits[k++] == '-';
        for (; k < digits.size() && exponent < 1'000'000'000; ++k) exponent = exponent * 10 + (digits[k] - '0');
        return power + (negative ? -exponent : exponent) > 0;
    }

    std::string_view s_;
    std::size_t i_ = 0;
};

/// The text of a JSON string the scanner found (raw: between its quotes, inside the scanned text).
inline std::string json_string_text(std::string_view raw, bool escaped) {
    if (!escaped) return std::string(raw);
    return json::parse(std::string_view(raw.data() - 1, raw.size() + 2)).get<std::string>();
}

/// The value of a JSON text known to be valid: simple strings and integers made directly, the
/// rest by the library's parser.
inline json json_value(std::string_view text) {
    if (text.size() >= 2 && text.front() == '"' && text.find('\\') == std::string_view::npos)
        return json(std::string(text.substr(1, text.size() - 2)));
    if (!text.empty() && (text.front() == '-' || (text.front() >= '0' && text.front() <= '9')) &&
        text.find_first_of(".eE") == std::string_view::npos) {
        std::int64_t v = 0;
        auto r = std::from_chars(text.data(), text.data() + text.size(), v);
        if (r.ec == std::errc() && r.ptr == text.data() + text.size()) return json(v);
    }
    return json::parse(text);
}

} // namespace detail

/// One event: what a client sent, or what the server emits.
struct event {
    std::string name;
    json data;
    json id;                ///< the client's request id (number or string), echoed in the reply; null when none
    std::int64_t ack = 0;   ///< in a client's "ack" event: the number of the server's emit_with_ack it answers
};

/// A wire format: turns messages into events and events into messages. The gateway's handlers never
/// see it, so one set of handlers can serve several formats.
class codec {
public:
    virtual ~codec() = default;
    /// Decodes a message; on failure returns nullopt and says what was wrong in error.
    virtual std::optional<event> decode(const message& m, std::string& error) const = 0;
    /// The text of a message carrying an event (its id too, unless null; ack, unless 0, asks the
    /// client to acknowledge).
    virtual std::string encode(std::string_view name, const json& data, const json& id, std::int64_t ack) const = 0;
};

/// NestJS WsAdapter's format: a text frame holding {"event": string, "data": any, "id"?: number|string}.
/// Acknowledgements the server asks for: it sends {"event", "data", "ack": n}; the client answers
/// {"event": "ack", "ack": n, "data": reply}.
class nest_codec final : public codec {
public:
    std::optional<event> decode(const message& m, std::string& error) const override {
        if (m.binary) {
            error = "expected a text message holding a JSON object";
            return std::nullopt;
        }
        try {   // the scan validates the text, so the library's parser agrees; a throw must still not escape
            return decode_text(m.data, error);
        } catch (const json::exception&) {
            error = "malformed JSON";
            return std::nullopt;
        }
    }

    /// {"event":...,"data":...} in NestJS's key order, written directly: no JSON tree is built or copied.
    std::string encode(std::string_view name, const json& data, const json& id, std::int64_t ack) const override {
        std::string out;
        out.reserve(64 + name.size() + (data.is_string() ? data.get_ref<const std::string&>().size() : 0));
        out += "{\"event\":";
        detail::write_json_string(out, name);
        out += ",\"data\":";
        detail::write_json(out, data);
        if (!id.is_null()) {
            out += ",\"id\":";
            detail::write_json(out, id);
        }
        if (ack > 0) out.append(",\"ack\":").append(std::to_string(ack));
        out += '}';
        return out;
    }

private:
    static std::optional<event> decode_text(std::string_view text, std::string& error) {
        // One validating pass finds the members; only "data", "id" and "ack" become JSON values.
        std::string_view name, data, id, ack;
        bool name_escaped = false, has_name = false;
        detail::json_scanner in(text);
        bool valid = in.take('{');
        if (valid && !in.take('}')) {
            do {
                std::string_view key;
                bool key_escaped = false;
                if (!(valid = in.string(key, key_escaped) && in.take(':'))) break;
                std::string key_text;
                if (key_escaped) key = key_text = detail::json_string_text(key, true);
                if (key == "event") {   // the last of repeated keys counts, as for the library's parser
                    has_name = in.next_is('"');
                    if (!(valid = has_name ? in.string(name, name_escaped) : in.value())) break;
                    continue;
                }
                std::string_view span;
                if (!(valid = in.value(span))) break;
                if (key == "data") data = span;
                else if (key == "id") id = span;
                else if (key == "ack") ack = span;
            } while (in.take(','));
            valid = valid && in.take('}');
        }
        valid = valid && in.at_end();
        static constexpr const char* shape = "expected {\"event\": string, \"data\": any}";
        if (!valid) {
            // Valid JSON of another shape says so. The scanner decides, not json::accept: that one
            // skips a byte-order mark and stops at a NUL, which JSON.parse (and the scan) refuse.
            detail::json_scanner whole(text);
            error = whole.value() && whole.at_end() ? shape : "malformed JSON";
            return std::nullopt;
        }
        if (!has_name) {
            error = shape;
            return std::nullopt;
        }
        event e;
        e.name = detail::json_string_text(name, name_escaped);
        if (!data.empty()) e.data = detail::json_value(data);
        json id_value = id.empty() ? json() : detail::json_value(id);
        if (!id_value.is_null() && !id_value.is_number() && !id_value.is_string()) {
            error = "\"id\" must be a number or a string";
            return std::nullopt;
        }
        e.id = std::move(id_value);
        if (!ack.empty()) {
            json ack_value = detail::json_value(ack);
            if (!ack_value.is_number_integer() || ack_value.get<std::int64_t>() <= 0) {
                error = "\"ack\" must be a positive integer";
                return std::nullopt;
            }
            e.ack = ack_value.get<std::int64_t>();
        }
        return e;
    }
};

/// Thrown by a handler to answer with an exception event: {"status": "error", "message": what} for a
/// string, or the given JSON as the event's data.
class ws_exception : public std::runtime_error {
public:
    explicit ws_exception(const std::string& message)
        : std::runtime_error(message), data_({{"status", "error"}, {"message", message}}) {}
    explicit ws_exception(const char* message) : ws_exception(std::string(message)) {}
    explicit ws_exception(json data) : std::runtime_error(data.dump()), data_(std::move(data)) {}
    const json& data() const noexcept { return data_; }

private:
    json data_;
};

/// A reply that names its own event: return gw::response{"pong", data} from a handler.
struct response {
    std::string event;
    json data;
};

/// Several replies from one handler: a coroutine that co_yields values, each sent to the client in
/// order as a reply to the request (same event, same id). When the client goes, the coroutine is
/// destroyed at its co_yield and runs no further.
template <class T = json> class stream {
public:
    struct promise_type {
        std::optional<T> current;
        std::exception_ptr error;
        stream get_return_object() { return stream(std::coroutine_handle<promise_type>::from_promise(*this)); }
        std::suspend_always initial_suspend() noexcept { return {}; }
        std::suspend_always final_suspend() noexcept { return {}; }
        template <class U> std::suspend_always yield_value(U&& value) {
            current.emplace(std::forward<U>(value));
            return {};
        }
        void return_void() noexcept {}
        void unhandled_exception() noexcept { error = std::current_exception(); }
    };

    stream(stream&& other) noexcept : h_(std::exchange(other.h_, {})) {}
    stream& operator=(stream other) noexcept {
        std::swap(h_, other.h_);
        return *this;
    }
    ~stream() {
        if (h_) h_.destroy();
    }

    /// Runs to the next co_yield: its value, or nullopt once the coroutine returned. Rethrows what it threw.
    std::optional<T> next() {
        if (!h_ || h_.done()) return std::nullopt;
        h_.promise().current.reset();
        h_.resume();
        if (h_.promise().error) std::rethrow_exception(std::exchange(h_.promise().error, nullptr));
        if (h_.done()) return std::nullopt;
        return std::move(h_.promise().current);
    }

private:
    explicit stream(std::coroutine_handle<promise_type> h) : h_(h) {}
    std::coroutine_handle<promise_type> h_;
};

