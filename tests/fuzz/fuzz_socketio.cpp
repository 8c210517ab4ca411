// libFuzzer target: the Socket.IO v5 packet head, gw::detail::sio::parse_head(), write_head() and
// check_data_shape(). The input is the text of a packet (what follows Engine.IO's '4').
//
// A second reading of the grammar, written here differently (find the '-', then check the digits
// before it; std::from_chars for the numbers), must agree with parse_head() on success, on every
// part of the head, and for three attachment limits. A head written back from what was read must
// read the same, and the shape check must agree with a judgement of the first JSON character.
// Built from include/gw/protocol/ alone, as the protocol tests are: it needs nothing else.
#include "include/gw/protocol/socketio.hpp"

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

namespace sio = gw::detail::sio;

/// Stops the run when an invariant fails: abort() is a crash to libFuzzer, which saves the input.
void require(bool ok, const char* what) {
    if (ok) return;
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
}

bool all_digits(std::string_view s) { return s.find_first_not_of("0123456789") == std::string_view::npos; }

/// The grammar as the protocol document states it, read another way.
bool model_parse(std::string_view t, std::size_t max_attachments, sio::packet_head& h) {
    h = sio::packet_head{};
    if (t.empty() || t[0] < '0' || t[0] > '6') return false;
    h.type = static_cast<sio::packet_type>(t[0] - '0');
    t.remove_prefix(1);
    if (h.type == sio::packet_type::binary_event || h.type == sio::packet_type::binary_ack) {
        const auto dash = t.find('-');
        if (dash == std::string_view::npos) return false;
        const auto digits = t.substr(0, dash);
        if (digits.empty() || digits.size() > 10 || !all_digits(digits)) return false;
        std::uint64_t n = 0;
        std::from_chars(digits.data(), digits.data() + digits.size(), n);
        if (n > max_attachments) return false;
        h.attachments = static_cast<std::size_t>(n);
        t.remove_prefix(dash + 1);
    }
    if (t.starts_with('/')) {
        const auto comma = t.find(',');
        h.nsp = t.substr(0, comma);
        t.remove_prefix(comma == std::string_view::npos ? t.size() : comma + 1);
    }
    const auto digits = std::min(t.find_first_not_of("0123456789"), t.size());
    if (digits > 18) return false;
    if (digits > 0) std::from_chars(t.data(), t.data() + digits, h.id);
    h.data = t.substr(digits);
    return true;
}

bool same_head(const sio::packet_head& a, const sio::packet_head& b) {
    return a.type == b.type && a.attachments == b.attachments && a.nsp == b.nsp && a.id == b.id && a.data == b.data;
}

/// What each type allows of its JSON, judged by the first character after JSON's whitespace.
bool model_shape_ok(sio::packet_type type, std::string_view data) {
    std::size_t i = 0;
    while (i < data.size() && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r')) ++i;
    const int first = i < data.size() ? static_cast<unsigned char>(data[i]) : -1;
    switch (static_cast<int>(type)) {
    case 0: return data.empty() || first == '{';
    case 1: return data.empty();
    case 2: case 3: case 5: case 6: return first == '[';
    case 4: return first == '{' || first == '"';
    default: return false;
    }
}

bool inside(std::string_view part, std::string_view text) {
    return part.data() >= text.data() && part.data() + part.size() <= text.data() + text.size();
}

void check_parse(std::string_view text, std::size_t limit) {
    sio::packet_head got;
    const std::string_view error = sio::parse_head(text, got, limit);
    sio::packet_head want;
    const bool ok = model_parse(text, limit, want);
    require(error.empty() == ok, "parse_head() and the grammar disagree on success");
    if (!ok) {
        require(error.size() < 60, "a reason that is not short");
        for (char c : error) require(c >= ' ' && c < 0x7F, "a reason that is not plain text");
        return;
    }
    require(same_head(got, want), "parse_head() and the grammar read different heads");
    require(got.nsp == "/" || inside(got.nsp, text), "the namespace is not a view into the text");
    require(got.nsp.starts_with('/') && got.nsp.find(',') == std::string_view::npos, "a namespace with a ','");
    require(inside(got.data, text) && got.data.data() + got.data.size() == text.data() + text.size(),
            "the data is not the end of the text");
    require(got.id >= -1 && got.id < 1'000'000'000'000'000'000, "an id out of range");
    require(got.attachments <= limit, "more attachments than allowed");

    // Written back, the head reads the same. One text has no writing: the main namespace named
    // explicitly ("2/,") before data that starts with '/', which would then read as a namespace.
    if (got.nsp == "/" && got.data.starts_with('/')) return;
    std::string again;
    sio::write_head(again, got.type, got.nsp, got.id, got.attachments);
    again += got.data;
    sio::packet_head back;
    require(sio::parse_head(again, back, limit).empty(), "a written head does not parse");
    require(same_head(back, got), "a head changed on its way through write_head() and parse_head()");
    std::string third;
    sio::write_head(third, back.type, back.nsp, back.id, back.attachments);
    third += back.data;
    require(third == again, "writing a head is not stable");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);   // exact size: ASan sees overreads
    for (std::size_t limit : {std::size_t{0}, std::size_t{10}, SIZE_MAX}) check_parse(text, limit);

    // A tighter limit never accepts what a looser one refuses.
    sio::packet_head h;
    const bool at0 = sio::parse_head(text, h, 0).empty();
    const bool at10 = sio::parse_head(text, h, 10).empty();
    const bool atmax = sio::parse_head(text, h, SIZE_MAX).empty();
    require((!at0 || at10) && (!at10 || atmax), "a tighter attachment limit accepted more");

    // The shape check, for every type and one that is none, on the whole text and on the parsed data.
    for (int t = 0; t <= 7; ++t) {
        const auto type = static_cast<sio::packet_type>(t);
        require(sio::check_data_shape(type, text).empty() == model_shape_ok(type, text), "check_data_shape() misjudged");
    }
    if (atmax) require(sio::check_data_shape(h.type, h.data).empty() == model_shape_ok(h.type, h.data),
                       "check_data_shape() misjudged a parsed packet");

    // The reserved names: the six, and nothing else.
    const bool reserved = text == "connect" || text == "connect_error" || text == "disconnect" ||
                          text == "disconnecting" || text == "newListener" || text == "removeListener";
    require(sio::is_reserved_event(text) == reserved, "is_reserved_event() misjudged");
    return 0;
}
