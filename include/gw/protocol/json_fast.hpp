// JSON read and written fast, without sockets: the envelope's strings and numbers directly, the
// rest through nlohmann/json, with output byte for byte what json::dump() prints.
#pragma once
#include "../detail/config.hpp"
#include "../detail/json.hpp"
#include "text.hpp"
#include "utf8.hpp"

#ifndef GATEWAY_NO_JSON
namespace gw::inline v0::detail {

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

/// Appends a number as JavaScript's JSON.stringify writes it (ECMAScript's Number::toString): the
/// shortest digits that read back the same, fixed notation for exponents from -7 to 20, else
/// "1e-7" / "1.5e+21"; NaN and the infinities as null, as JSON has no word for them.
inline void write_js_number(std::string& out, double v) {
    if (!std::isfinite(v)) {
        out += "null";
        return;
    }
    if (v == 0) {
        out += '0';   // -0 too
        return;
    }
    char buf[40];
    const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
    std::string_view sci(buf, static_cast<std::size_t>(r.ptr - buf));   // [-]d[.ddd]e[+-]XX
    if (sci.front() == '-') {
        out += '-';
        sci.remove_prefix(1);
    }
    const auto e = sci.find('e');
    std::string digits;
    for (char c : sci.substr(0, e))
        if (c != '.') digits += c;
    int exponent = 0;
    std::from_chars(sci.data() + e + (sci[e + 1] == '+' ? 2 : 1), sci.data() + sci.size(), exponent);
    const int k = static_cast<int>(digits.size()), n = exponent + 1;
    if (k <= n && n <= 21) {
        out += digits;
        out.append(static_cast<std::size_t>(n - k), '0');
    } else if (0 < n && n <= 21) {
        out.append(digits, 0, static_cast<std::size_t>(n));
        out += '.';
        out.append(digits, static_cast<std::size_t>(n));
    } else if (-6 < n && n <= 0) {
        out += "0.";
        out.append(static_cast<std::size_t>(-n), '0');
        out += digits;
    } else {
        out += digits[0];
        if (k > 1) {
            out += '.';
            out.append(digits, 1);
        }
        out += 'e';
        out += n - 1 >= 0 ? '+' : '-';
        out += std::to_string(std::abs(n - 1));
    }
}

/// Appends j as json::dump() prints it (compact, U+FFFD for invalid UTF-8), without a temporary;
/// numbers as JavaScript writes them (write_js_number), which is what a JSON.parse on the other
/// side reads back exactly.
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
    case json::value_t::number_float: write_js_number(out, j.get<double>()); return;
    default: break;   // binary: the library's printer
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

} // namespace gw::v0::detail
#endif
