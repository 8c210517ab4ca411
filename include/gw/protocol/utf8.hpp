// UTF-8 validation (RFC 3629), incremental so a text message fails at its first bad byte.
#pragma once
#include "../detail/config.hpp"

namespace gw::inline v0::detail {

/// Incremental UTF-8 validator (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF).
/// feed() fails at the first byte that no valid continuation could follow, so a text message is
/// rejected as soon as it goes wrong, even in the middle of a fragment.
class utf8_validator {
public:
    bool feed(std::span<const unsigned char> bytes) noexcept {
        const unsigned char* p = bytes.data();
        const unsigned char* end = p + bytes.size();
        while (p < end) {
            if (need_ == 0) {
                // ASCII runs a word at a time.
                while (end - p >= 8) {
                    std::uint64_t w;
                    std::memcpy(&w, p, 8);
                    if (w & 0x8080808080808080ull) break;
                    p += 8;
                }
                if (p == end) break;
                unsigned char b = *p++;
                if (b < 0x80) continue;
                if (b >= 0xC2 && b <= 0xDF) { need_ = 1; lo_ = 0x80; hi_ = 0xBF; }
                else if (b == 0xE0) { need_ = 2; lo_ = 0xA0; hi_ = 0xBF; }
                else if (b == 0xED) { need_ = 2; lo_ = 0x80; hi_ = 0x9F; }        // no surrogates
                else if (b >= 0xE1 && b <= 0xEF) { need_ = 2; lo_ = 0x80; hi_ = 0xBF; }
                else if (b == 0xF0) { need_ = 3; lo_ = 0x90; hi_ = 0xBF; }
                else if (b >= 0xF1 && b <= 0xF3) { need_ = 3; lo_ = 0x80; hi_ = 0xBF; }
                else if (b == 0xF4) { need_ = 3; lo_ = 0x80; hi_ = 0x8F; }        // up to U+10FFFF
                else return false;
            } else {
                unsigned char b = *p++;
                if (b < lo_ || b > hi_) return false;
                lo_ = 0x80, hi_ = 0xBF;
                --need_;
            }
        }
        return true;
    }
    bool feed(std::string_view s) noexcept {
        return feed({reinterpret_cast<const unsigned char*>(s.data()), s.size()});
    }
    /// True when the bytes so far end on a character boundary.
    bool complete() const noexcept { return need_ == 0; }
    void reset() noexcept { need_ = 0; }

private:
    std::uint8_t need_ = 0, lo_ = 0x80, hi_ = 0xBF;
};

inline bool is_valid_utf8(std::string_view s) noexcept {
    utf8_validator v;
    return v.feed(s) && v.complete();
}

/// The text with each ill-formed UTF-8 sequence (each maximal part of one) replaced by U+FFFD, as
/// a WHATWG decoder (Node's) reads bytes that are not UTF-8.
inline std::string utf8_repaired(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 8);
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            out += s[i++];
            continue;
        }
        int need = 0;
        unsigned char lo = 0x80, hi = 0xBF;   // the range of the byte after the lead
        if (c >= 0xC2 && c <= 0xDF) need = 1;
        else if (c >= 0xE0 && c <= 0xEF) need = 2, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        else if (c >= 0xF0 && c <= 0xF4) need = 3, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        std::size_t j = i + 1;
        int got = 0;
        while (got < need && j < s.size()) {
            const auto d = static_cast<unsigned char>(s[j]);
            if (d < lo || d > hi) break;
            lo = 0x80, hi = 0xBF;
            ++got, ++j;
        }
        if (need > 0 && got == need) out.append(s.substr(i, j - i));
        else out += "\xEF\xBF\xBD";
        i = j;
    }
    return out;
}

} // namespace gw::v0::detail
