// libFuzzer target: the gateway's wire format, gw::nest_codec, and the JSON scanner under it.
// The input is the text of a message. decode() must never throw; on text that is valid UTF-8 (as
// every text frame is by the time it is decoded) it must agree with nlohmann/json's own parser,
// its scanner must accept exactly what json::accept() accepts, and an event it returns must encode
// to what json::dump() prints and decode back to the same event.
#include "fuzz_support.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace {

using fuzz::require;
using gw::json;

/// The envelope as the library reads it: {"event": string, "data"?: any, "id"?: number | string,
/// "ack"?: positive integer}, with the errors nest_codec reports.
std::optional<gw::event> library_decode(std::string_view text, std::string& error) {
    const json j = json::parse(text, nullptr, false);
    if (j.is_discarded()) {
        error = "malformed JSON";
        return std::nullopt;
    }
    const auto name = j.is_object() ? j.find("event") : j.end();
    if (name == j.end() || !name->is_string()) {
        error = "expected {\"event\": string, \"data\": any}";
        return std::nullopt;
    }
    gw::event e;
    e.name = name->get<std::string>();
    if (const auto data = j.find("data"); data != j.end()) e.data = *data;
    if (const auto id = j.find("id"); id != j.end() && !id->is_null()) {
        if (!id->is_number() && !id->is_string()) {
            error = "\"id\" must be a number or a string";
            return std::nullopt;
        }
        e.id = *id;
    }
    if (const auto ack = j.find("ack"); ack != j.end()) {
        if (!ack->is_number_integer() || ack->get<std::int64_t>() <= 0) {
            error = "\"ack\" must be a positive integer";
            return std::nullopt;
        }
        e.ack = ack->get<std::int64_t>();
    }
    return e;
}

/// Equal, and of the same types: json's == takes 1 and 1.0 for equal, dump() does not.
bool same_event(const gw::event& a, const gw::event& b) {
    // Printed as JavaScript prints numbers: 1.0 reads back as 1, the same number for a client.
    auto text = [](const json& j) {
        std::string out;
        gw::detail::write_json(out, j);
        return out;
    };
    return a.name == b.name && a.data == b.data && text(a.data) == text(b.data) && a.id == b.id && text(a.id) == text(b.id) &&
           a.ack == b.ack;
}

/// What encode() must print: the library's own dump() of each part (numbers as JavaScript writes
/// them, which write_json does), in NestJS's key order.
std::string dumped(const gw::event& e) {
    constexpr auto replace = json::error_handler_t::replace;
    std::string data, id;
    gw::detail::write_json(data, e.data);
    gw::detail::write_json(id, e.id);
    std::string out = "{\"event\":" + json(e.name).dump(-1, ' ', false, replace) + ",\"data\":" + data;
    if (!e.id.is_null()) out += ",\"id\":" + id;
    if (e.ack > 0) out += ",\"ack\":" + std::to_string(e.ack);
    return out + "}";
}

void check_round_trip(const gw::nest_codec& codec, const gw::event& e) {
    const std::string text = codec.encode(e.name, e.data, e.id, e.ack);
    require(text == dumped(e), "encode() does not print what json::dump() prints");
    std::string error;
    const auto back = codec.decode(gw::message{text, false}, error);
    require(back.has_value(), "an encoded event does not decode");
    require(same_event(*back, e), "an event changed on its way through encode() and decode()");
}

bool scans(std::string_view text) {
    gw::detail::json_scanner scanner(text);
    return scanner.value() && scanner.at_end();
}

/// What nlohmann/json reads of a text: it skips a byte order mark at the start and takes a NUL byte
/// for the end. JSON has neither, and JSON.parse (so NestJS) refuses both.
std::string_view library_view(std::string_view text) {
    if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
    return text.substr(0, text.find('\0'));
}

void check_text(const gw::nest_codec& codec, const std::string& text) {
    std::string error;
    const auto got = codec.decode(gw::message{text, false}, error);
    require(got.has_value() == error.empty(), "decode() must fail with a reason or succeed without one");

    if (const auto seen = library_view(text); seen.size() != text.size()) {
        require(!got.has_value() && !scans(text), "accepted a byte order mark or a NUL byte as JSON");
        check_text(codec, std::string(seen));   // the comparison goes on with what the library reads
        return;
    }

    require(scans(text) == json::accept(text), "the scanner and json::accept() disagree");

    std::string expected_error;
    const auto want = library_decode(text, expected_error);
    require(got.has_value() == want.has_value(), "decode() and the library disagree on success");
    if (!got) {
        require(error == expected_error, "decode() and the library fail for different reasons");
        return;
    }
    require(same_event(*got, *want), "decode() and the library read different events");
    check_round_trip(codec, *got);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const gw::nest_codec codec;
    const std::string raw(reinterpret_cast<const char*>(data), size);
    std::string error;

    // A binary message is refused, whatever it holds.
    require(!codec.decode(gw::message{raw, true}, error).has_value() && !error.empty(), "a binary message decoded");

    // Through the public interface, as the gateway calls it; any bytes at all must not throw.
    const gw::codec& any = codec;
    error.clear();
    if (auto e = any.decode(gw::message{raw, false}, error); e && fuzz::is_utf8(raw)) check_round_trip(codec, *e);

    // The properties that hold for what a text frame can carry: valid UTF-8.
    check_text(codec, fuzz::is_utf8(raw) ? raw : fuzz::to_utf8(raw));
    return 0;
}
