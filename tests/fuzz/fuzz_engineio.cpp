// libFuzzer target: Engine.IO v4 polling payloads, gw::detail::eio::decode_payload(), with
// base64_decode() and append_to_payload() under it, and decode_packet() for WebSocket messages.
// The input is a POST body.
//
// A second reading, written here differently (split on 0x1E first, then judge each record; a
// base64 decoder of its own, a table and shifts where the library calls OpenSSL), must agree on
// how many packets come out, on each one, and on success. Packets written back with
// append_to_payload() read the same, and any bytes survive base64 both ways.
// Built from include/gw/protocol/ alone, as the protocol tests are: it needs nothing else.
#include "include/gw/protocol/engineio.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace eio = gw::detail::eio;

/// Stops the run when an invariant fails: abort() is a crash to libFuzzer, which saves the input.
void require(bool ok, const char* what) {
    if (ok) return;
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
}

int sextet(char c) {
    static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const auto at = alphabet.find(c);
    return at == std::string_view::npos ? -1 : static_cast<int>(at);
}

/// Standard base64, padded: whole quads, '=' only as the last one or two characters.
std::optional<std::string> model_base64(std::string_view in) {
    if (in.size() % 4 != 0) return std::nullopt;
    std::size_t pad = 0;
    while (pad < 2 && pad < in.size() && in[in.size() - 1 - pad] == '=') ++pad;
    std::string out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (std::size_t i = 0; i < in.size() - pad; ++i) {
        const int v = sextet(in[i]);
        if (v < 0) return std::nullopt;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xFF);
        }
    }
    return out;
}

std::optional<eio::packet> model_record(std::string_view r) {
    if (r.empty()) return std::nullopt;
    if (r[0] == 'b') {
        auto bytes = model_base64(r.substr(1));
        if (!bytes) return std::nullopt;
        return eio::packet{eio::packet_type::message, true, std::move(*bytes)};
    }
    if (r[0] < '0' || r[0] > '6') return std::nullopt;
    return eio::packet{static_cast<eio::packet_type>(r[0]), false, std::string(r.substr(1))};
}

/// The records of a body, in order; a body is at least one record.
std::vector<std::string_view> records(std::string_view body) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= body.size(); ++i) {
        if (i == body.size() || body[i] == eio::separator) {
            out.push_back(body.substr(start, i - start));
            start = i + 1;
        }
    }
    return out;
}

bool same_packet(const eio::packet& a, const eio::packet& b) {
    return a.type == b.type && a.binary == b.binary && a.data == b.data;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string body(reinterpret_cast<const char*>(data), size);   // exact size: ASan sees overreads

    // The payload, against the second reading. Packets already in the vector stay in front.
    std::vector<eio::packet> got{eio::packet{eio::packet_type::noop, false, "before"}};
    const bool ok = eio::decode_payload(body, got);
    require(!got.empty() && same_packet(got[0], eio::packet{eio::packet_type::noop, false, "before"}),
            "decode_payload() touched what was already there");
    got.erase(got.begin());

    std::vector<eio::packet> want;
    bool model_ok = !body.empty();
    if (model_ok) {
        for (std::string_view r : records(body)) {
            auto p = model_record(r);
            if (!p) {
                model_ok = false;
                break;
            }
            // Text is read as UTF-8 as Node reads it: ill-formed parts become U+FFFD.
            if (!p->binary && !gw::detail::is_valid_utf8(p->data)) p->data = gw::detail::utf8_repaired(p->data);
            want.push_back(std::move(*p));
        }
    }
    require(ok == model_ok, "decode_payload() and the second reading disagree on success");
    require(got.size() == want.size(), "decode_payload() and the second reading kept different packets");
    for (std::size_t i = 0; i < got.size(); ++i)
        require(same_packet(got[i], want[i]), "decode_payload() and the second reading read a packet differently");

    // Written back, the packets read the same; a body of text records only comes back byte for byte.
    if (ok) {
        std::string again;
        bool any_binary = false;
        for (const auto& p : got) {
            eio::append_to_payload(again, p.type, p.data, p.binary);
            any_binary |= p.binary;
        }
        std::vector<eio::packet> back;
        require(eio::decode_payload(again, back), "a written payload does not decode");
        require(back.size() == got.size(), "a written payload decodes to another number of packets");
        for (std::size_t i = 0; i < got.size(); ++i)
            require(same_packet(back[i], got[i]), "a packet changed on its way through a payload");
        if (!any_binary && gw::detail::is_valid_utf8(body)) require(again == body, "a text-only payload was not written back as it came");
    }

    // One WebSocket message: a binary one is always a message of its bytes; a text one is one record.
    const auto bin = eio::decode_packet(body, true);
    require(bin && same_packet(*bin, eio::packet{eio::packet_type::message, true, body}), "a binary message changed");
    const auto text = eio::decode_packet(body, false);
    const bool text_ok = !body.empty() && body[0] >= '0' && body[0] <= '6';
    require(text.has_value() == text_ok, "decode_packet() misjudged a text message");
    if (text) require(text->type == static_cast<eio::packet_type>(body[0]) && text->data == body.substr(1),
                      "decode_packet() read a text message wrongly");
    if (text) require(eio::encode_text(text->type, text->data) == body, "encode_text() did not give the message back");

    // base64 both ways: the body as text to decode, the body as bytes to encode and decode back.
    std::string decoded;
    const bool b64_ok = eio::base64_decode(body, decoded);
    const auto model = model_base64(body);
    require(b64_ok == model.has_value(), "base64_decode() and the second decoder disagree on validity");
    if (b64_ok) require(decoded == *model, "base64_decode() and the second decoder decode differently");
    std::string one;
    eio::append_to_payload(one, eio::packet_type::message, body, true);
    require(one.starts_with('b'), "a binary packet without its 'b'");
    require(eio::base64_decode(std::string_view(one).substr(1), decoded) && decoded == body, "bytes lost through base64");
    return 0;
}
