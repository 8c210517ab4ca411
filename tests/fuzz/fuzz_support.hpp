// What the fuzz targets share: a failed check that libFuzzer reports as a crash, and a UTF-8
// checker of their own, written differently from gateway.hpp's so that one can judge the other.
#pragma once

#include "gateway.hpp"

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace fuzz {

/// Stops the run when an invariant fails: abort() is a crash to libFuzzer, which saves the input.
inline void require(bool ok, const char* what) {
    if (ok) return;
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
}

/// The length of the well-formed UTF-8 sequence at s[i] (RFC 3629), or 0 when there is none.
/// Decodes the code point and then judges it, where gateway.hpp checks byte ranges.
inline std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept {
    const auto lead = static_cast<unsigned char>(s[i]);
    if (lead < 0x80) return 1;
    std::size_t len;
    char32_t cp;
    if ((lead & 0xE0) == 0xC0) len = 2, cp = lead & 0x1F;
    else if ((lead & 0xF0) == 0xE0) len = 3, cp = lead & 0x0F;
    else if ((lead & 0xF8) == 0xF0) len = 4, cp = lead & 0x07;
    else return 0;
    if (s.size() - i < len) return 0;
    for (std::size_t k = 1; k < len; ++k) {
        const auto c = static_cast<unsigned char>(s[i + k]);
        if ((c & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (c & 0x3F);
    }
    constexpr char32_t shortest[] = {0, 0, 0x80, 0x800, 0x10000};   // below these: overlong
    if (cp < shortest[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

inline bool is_utf8(std::string_view s) noexcept {
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = utf8_sequence(s, i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

/// s with every byte that starts no well-formed sequence replaced by '?': mutated inputs stay
/// useful to code that only ever sees valid UTF-8.
inline std::string to_utf8(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = utf8_sequence(s, i);
        if (n == 0) {
            out += '?';
            ++i;
        } else {
            out.append(s.substr(i, n));
            i += n;
        }
    }
    return out;
}

} // namespace fuzz
