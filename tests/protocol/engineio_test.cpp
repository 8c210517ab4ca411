// Engine.IO v4 without sockets: packets over WebSocket, polling payloads (records split by 0x1E,
// binary as "b" + base64), session ids, the open packet, refusals and their bodies, and how a
// request is classified. The protocol document's examples byte for byte, and what must be refused.

#include <gw/protocol/engineio.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace eio = gw::detail::eio;
using eio::packet;
using eio::packet_type;

using namespace std::string_literals;

/// Bytes as a string, NULs included.
std::string raw(std::initializer_list<int> list) {
    std::string out;
    for (int b : list) out += static_cast<char>(b);
    return out;
}

std::optional<std::string> b64(std::string_view in) {
    std::string out = "garbage that must go";
    if (!eio::base64_decode(in, out)) return std::nullopt;
    return out;
}

struct payload_result {
    bool ok;
    std::vector<packet> packets;
};

payload_result split(std::string_view body) {
    payload_result r;
    r.ok = eio::decode_payload(body, r.packets);
    return r;
}

void expect_packet(const packet& p, packet_type type, bool binary, std::string_view data) {
    EXPECT_EQ(p.type, type);
    EXPECT_EQ(p.binary, binary);
    EXPECT_EQ(p.data, data);
}

// ---- Packet types ----

TEST(EngineIoPacket, TypeCharacters) {
    EXPECT_EQ(static_cast<char>(packet_type::open), '0');
    EXPECT_EQ(static_cast<char>(packet_type::close), '1');
    EXPECT_EQ(static_cast<char>(packet_type::ping), '2');
    EXPECT_EQ(static_cast<char>(packet_type::pong), '3');
    EXPECT_EQ(static_cast<char>(packet_type::message), '4');
    EXPECT_EQ(static_cast<char>(packet_type::upgrade), '5');
    EXPECT_EQ(static_cast<char>(packet_type::noop), '6');
    EXPECT_EQ(eio::separator, '\x1e');
}

// ---- base64 ----

TEST(EngineIoBase64, DocumentExample) { EXPECT_EQ(b64("AQIDBA=="), raw({1, 2, 3, 4})); }

TEST(EngineIoBase64, Rfc4648Vectors) {
    EXPECT_EQ(b64(""), "");
    EXPECT_EQ(b64("Zg=="), "f");
    EXPECT_EQ(b64("Zm8="), "fo");
    EXPECT_EQ(b64("Zm9v"), "foo");
    EXPECT_EQ(b64("Zm9vYg=="), "foob");
    EXPECT_EQ(b64("Zm9vYmE="), "fooba");
    EXPECT_EQ(b64("Zm9vYmFy"), "foobar");
}

TEST(EngineIoBase64, EveryByteAndBothExtraCharacters) {
    EXPECT_EQ(b64("AAAA"), raw({0, 0, 0}));
    EXPECT_EQ(b64("////"), raw({0xFF, 0xFF, 0xFF}));
    EXPECT_EQ(b64("+++/"), raw({0xFB, 0xEF, 0xBF}));
    EXPECT_EQ(b64("AA=="), raw({0}));
    EXPECT_EQ(b64("AAA="), raw({0, 0}));
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    const std::string text = gw::detail::base64_encode({reinterpret_cast<const unsigned char*>(all.data()), all.size()});
    EXPECT_EQ(b64(text), all);
}

TEST(EngineIoBase64, Refused) {
    for (std::string_view bad : {"A", "AQ", "AQI", "AQIDB", "AQ=", "AQIDBA=", "AQIDBA===",   // not whole quads
                                 "====", "A===", "AQ=A", "=AQI", "AQ==AQ==",                  // '=' out of place
                                 "AQ-_", "AQ_=", " AQI", "AQI ", "AQ\nI",  // other characters
                                 "\xC3\xA9\xC3\xA9"}) {
        SCOPED_TRACE(std::string(bad));
        EXPECT_FALSE(b64(bad).has_value());
    }
    EXPECT_FALSE(b64(std::string_view("AQI\0", 4)).has_value());
}

// ---- One packet (WebSocket) ----

TEST(EngineIoDecodePacket, Text) {
    auto p = eio::decode_packet("4hello", false);
    ASSERT_TRUE(p);
    expect_packet(*p, packet_type::message, false, "hello");
    p = eio::decode_packet("2probe", false);
    ASSERT_TRUE(p);
    expect_packet(*p, packet_type::ping, false, "probe");
    p = eio::decode_packet("3probe", false);
    ASSERT_TRUE(p);
    expect_packet(*p, packet_type::pong, false, "probe");
    p = eio::decode_packet("5", false);
    ASSERT_TRUE(p);
    expect_packet(*p, packet_type::upgrade, false, "");
    p = eio::decode_packet("1", false);
    ASSERT_TRUE(p);
    expect_packet(*p, packet_type::close, false, "");
    p = eio::decode_packet("4", false);   // an empty message is a message
    ASSERT_TRUE(p);
    expect_packet(*p, packet_type::message, false, "");
    p = eio::decode_packet("42[\"hey\",\"Jude\"]", false);
    ASSERT_TRUE(p);
    expect_packet(*p, packet_type::message, false, "2[\"hey\",\"Jude\"]");
    p = eio::decode_packet("0{\"sid\":\"x\"}", false);
    ASSERT_TRUE(p);
    expect_packet(*p, packet_type::open, false, "{\"sid\":\"x\"}");
    p = eio::decode_packet("6", false);
    ASSERT_TRUE(p);
    expect_packet(*p, packet_type::noop, false, "");
    p = eio::decode_packet(std::string_view("4a\0b", 4), false);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->data, std::string_view("a\0b", 3));
}

TEST(EngineIoDecodePacket, TextRefused) {
    // Empty, or an unknown first character: the session closes with "parse error".
    for (std::string_view bad : {"", "7", "9x", "abc", "b", "bAQIDBA==", "/", " 4hello", "\x1e"})
        EXPECT_FALSE(eio::decode_packet(bad, false).has_value()) << bad;
}

TEST(EngineIoDecodePacket, Binary) {
    // A binary frame is a message of raw bytes, no type byte: whatever it starts with.
    const std::string bytes = raw({1, 2, 3, 4});
    auto p = eio::decode_packet(bytes, true);
    ASSERT_TRUE(p);
    expect_packet(*p, packet_type::message, true, bytes);
    p = eio::decode_packet("4hello", true);
    ASSERT_TRUE(p);
    expect_packet(*p, packet_type::message, true, "4hello");
    p = eio::decode_packet("", true);
    ASSERT_TRUE(p);
    expect_packet(*p, packet_type::message, true, "");
}

// ---- Polling payloads ----

TEST(EngineIoPayload, DocumentExamples) {
    auto r = split("4hello\x1e" "4world");
    ASSERT_TRUE(r.ok);
    ASSERT_EQ(r.packets.size(), 2u);
    expect_packet(r.packets[0], packet_type::message, false, "hello");
    expect_packet(r.packets[1], packet_type::message, false, "world");

    r = split("bAQIDBA==");
    ASSERT_TRUE(r.ok);
    ASSERT_EQ(r.packets.size(), 1u);
    expect_packet(r.packets[0], packet_type::message, true, raw({1, 2, 3, 4}));

    // A binary attachment after its Socket.IO head, as a client's POST carries them.
    r = split("451-[\"a\",{\"_placeholder\":true,\"num\":0}]\x1e" "bAQIDBA==");
    ASSERT_TRUE(r.ok);
    ASSERT_EQ(r.packets.size(), 2u);
    expect_packet(r.packets[0], packet_type::message, false, "51-[\"a\",{\"_placeholder\":true,\"num\":0}]");
    expect_packet(r.packets[1], packet_type::message, true, raw({1, 2, 3, 4}));

    // What a GET finds after the server closed: a noop then a close.
    r = split("6\x1e" "1");
    ASSERT_TRUE(r.ok);
    ASSERT_EQ(r.packets.size(), 2u);
    expect_packet(r.packets[0], packet_type::noop, false, "");
    expect_packet(r.packets[1], packet_type::close, false, "");
}

TEST(EngineIoPayload, SingleAndMany) {
    auto r = split("1");
    ASSERT_TRUE(r.ok);
    ASSERT_EQ(r.packets.size(), 1u);
    expect_packet(r.packets[0], packet_type::close, false, "");

    r = split("4\x1e" "4\x1e" "b\x1e" "3probe");
    ASSERT_TRUE(r.ok);
    ASSERT_EQ(r.packets.size(), 4u);
    expect_packet(r.packets[0], packet_type::message, false, "");
    expect_packet(r.packets[1], packet_type::message, false, "");
    expect_packet(r.packets[2], packet_type::message, true, "");   // "b": no bytes, as the reference reads it
    expect_packet(r.packets[3], packet_type::pong, false, "probe");

    std::string body;
    for (int i = 0; i < 40; ++i) {   // appended piece by piece: GCC 12 -O3 warns falsely on "43" + string
        if (i) body += '\x1e';
        body.append("43").append(std::to_string(i)).append("[]");
    }
    r = split(body);
    ASSERT_TRUE(r.ok);
    ASSERT_EQ(r.packets.size(), 40u);   // no cap on the number of packets
    EXPECT_EQ(r.packets[39].data, "339[]");
}

TEST(EngineIoPayload, Appends) {
    std::vector<packet> out;
    out.push_back(packet{packet_type::ping, false, "kept"});
    ASSERT_TRUE(eio::decode_payload("4a", out));
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].data, "kept");
    expect_packet(out[1], packet_type::message, false, "a");
}

TEST(EngineIoPayload, StopsAtTheFirstBadRecord) {
    // The packets before the fault stay, to be processed as the reference does.
    struct bad_case {
        std::string_view body;
        std::size_t kept;
    };
    const bad_case cases[] = {
        {"", 0},
        {"abc", 0},
        {"9x", 0},
        {"\x1e", 0},
        {"4a\x1e", 1},                  // a trailing separator: an empty record
        {"4a\x1e\x1e" "4b", 1},
        {"4a\x1e" "7\x1e" "4b", 1},
        {"4a\x1e" "4b\x1e" "x", 2},
        {"b!!!!", 0},
        {"bAQIDBA=", 0},                // base64 that is not whole quads
        {"4a\x1e" "bAQ-_", 1},          // URL-safe base64 is not the polling alphabet
        {"\x1e" "4a", 0},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(std::string(c.body));
        const auto r = split(c.body);
        EXPECT_FALSE(r.ok);
        EXPECT_EQ(r.packets.size(), c.kept);
    }
}

TEST(EngineIoPayload, AppendToPayload) {
    std::string payload;
    eio::append_to_payload(payload, packet_type::message, "hello", false);
    EXPECT_EQ(payload, "4hello");
    eio::append_to_payload(payload, packet_type::message, "world", false);
    EXPECT_EQ(payload, "4hello\x1e" "4world");

    payload.clear();
    eio::append_to_payload(payload, packet_type::message, raw({1, 2, 3, 4}), true);
    EXPECT_EQ(payload, "bAQIDBA==");
    eio::append_to_payload(payload, packet_type::message, "", true);
    EXPECT_EQ(payload, "bAQIDBA==\x1e" "b");
    eio::append_to_payload(payload, packet_type::message, raw({0xFB, 0xEF, 0xBF}), true);
    EXPECT_EQ(payload, "bAQIDBA==\x1e" "b\x1e" "b+++/");   // the standard alphabet: '+' and '/'

    payload.clear();
    eio::append_to_payload(payload, packet_type::noop, "", false);
    eio::append_to_payload(payload, packet_type::close, "", false);
    EXPECT_EQ(payload, "6\x1e" "1");

    payload.clear();
    eio::append_to_payload(payload, packet_type::ping, "", false);
    EXPECT_EQ(payload, "2");
}

TEST(EngineIoPayload, RoundTrip) {
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    const std::vector<packet> sent = {
        {packet_type::open, false, "{\"sid\":\"lv_VI97HAXpY6yYWAAAC\"}"},
        {packet_type::message, false, "2[\"hey\",\"Jude\"]"},
        {packet_type::message, true, raw({1, 2, 3, 4})},
        {packet_type::message, true, all},
        {packet_type::message, true, ""},
        {packet_type::ping, false, ""},
        {packet_type::message, false, "caf\xC3\xA9"},
        {packet_type::close, false, ""},
    };
    std::string payload;
    for (const auto& p : sent) eio::append_to_payload(payload, p.type, p.data, p.binary);
    const auto r = split(payload);
    ASSERT_TRUE(r.ok);
    ASSERT_EQ(r.packets.size(), sent.size());
    for (std::size_t i = 0; i < sent.size(); ++i) {
        SCOPED_TRACE(i);
        expect_packet(r.packets[i], sent[i].type, sent[i].binary, sent[i].data);
    }
}

TEST(EngineIoEncode, Text) {
    EXPECT_EQ(eio::encode_text(packet_type::message, "hello"), "4hello");
    EXPECT_EQ(eio::encode_text(packet_type::pong, "probe"), "3probe");
    EXPECT_EQ(eio::encode_text(packet_type::ping, ""), "2");
    EXPECT_EQ(eio::encode_text(packet_type::noop, ""), "6");
    EXPECT_EQ(eio::encode_text(packet_type::message, "0/admin,{\"sid\":\"x\"}"), "40/admin,{\"sid\":\"x\"}");
    EXPECT_EQ(eio::encode_text(packet_type::message, std::string_view("\0", 1)), "4\0"s);
}

// ---- Session ids ----

TEST(EngineIoSid, ShapeAndUniqueness) {
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        const std::string sid = eio::make_sid();
        ASSERT_EQ(sid.size(), 20u);
        for (char c : sid)
            ASSERT_TRUE((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')
                << sid;
        seen.insert(sid);
    }
    EXPECT_EQ(seen.size(), 1000u);
}

// ---- Refusals ----

TEST(EngineIoErrors, MessagesAndStatuses) {
    using eio::error_code;
    EXPECT_EQ(eio::error_message(error_code::transport_unknown), "Transport unknown");
    EXPECT_EQ(eio::error_message(error_code::session_unknown), "Session ID unknown");
    EXPECT_EQ(eio::error_message(error_code::bad_handshake_method), "Bad handshake method");
    EXPECT_EQ(eio::error_message(error_code::bad_request), "Bad request");
    EXPECT_EQ(eio::error_message(error_code::forbidden), "Forbidden");
    EXPECT_EQ(eio::error_message(error_code::unsupported_protocol_version), "Unsupported protocol version");
    for (int c = 0; c <= 5; ++c) {
        const auto code = static_cast<error_code>(c);
        EXPECT_EQ(eio::error_status(code), code == error_code::forbidden ? 403 : 400) << c;
    }
}

TEST(EngineIoErrors, Bodies) {
    using eio::error_code;
    EXPECT_EQ(eio::error_body(error_code::transport_unknown), R"({"code":0,"message":"Transport unknown"})");
    EXPECT_EQ(eio::error_body(error_code::session_unknown), R"({"code":1,"message":"Session ID unknown"})");
    EXPECT_EQ(eio::error_body(error_code::bad_handshake_method), R"({"code":2,"message":"Bad handshake method"})");
    EXPECT_EQ(eio::error_body(error_code::bad_request), R"({"code":3,"message":"Bad request"})");
    EXPECT_EQ(eio::error_body(error_code::forbidden), R"({"code":4,"message":"Forbidden"})");
    EXPECT_EQ(eio::error_body(error_code::unsupported_protocol_version),
              R"({"code":5,"message":"Unsupported protocol version"})");
    // allowRequest's own message replaces the code's.
    EXPECT_EQ(eio::error_body(error_code::forbidden, "no thanks"), R"({"code":4,"message":"no thanks"})");
    EXPECT_EQ(eio::error_body(error_code::forbidden, "say \"please\"\\\n\t\x01"),
              R"({"code":4,"message":"say \"please\"\\\n\t\u0001"})");
}

TEST(EngineIoErrors, JsonStrings) {
    auto json = [](std::string_view s) {
        std::string out;
        eio::append_json_string(out, s);
        return out;
    };
    EXPECT_EQ(json(""), R"("")");
    EXPECT_EQ(json("plain"), R"("plain")");
    EXPECT_EQ(json("\"\\/"), R"("\"\\/")");   // '/' stays, as JSON.stringify leaves it
    EXPECT_EQ(json("\b\f\n\r\t"), R"("\b\f\n\r\t")");
    EXPECT_EQ(json(raw({0x00, 0x1f, 0x7f})), "\"\\u0000\\u001f\x7f\"");   // lowercase hex; DEL as is
    EXPECT_EQ(json("caf\xC3\xA9 \xE2\x82\xAC"), "\"caf\xC3\xA9 \xE2\x82\xAC\"");   // non-ASCII as is
    std::string out = "x";
    eio::append_json_string(out, "y");
    EXPECT_EQ(out, "x\"y\"");
}

// ---- The open packet ----

TEST(EngineIoOpen, DocumentExample) {
    const std::string data = eio::open_packet_data("lv_VI97HAXpY6yYWAAAC", {"websocket"}, 25000, 20000, 1000000);
    EXPECT_EQ("0" + data, R"(0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,)"
                          R"("pingTimeout":20000,"maxPayload":1000000})");
}

TEST(EngineIoOpen, UpgradesListed) {
    EXPECT_EQ(eio::open_packet_data("s", {}, 1, 2, 3),
              R"({"sid":"s","upgrades":[],"pingInterval":1,"pingTimeout":2,"maxPayload":3})");
    EXPECT_EQ(eio::open_packet_data("s", {"websocket", "webtransport"}, 0, 0, 0),
              R"({"sid":"s","upgrades":["websocket","webtransport"],"pingInterval":0,"pingTimeout":0,"maxPayload":0})");
    EXPECT_EQ(eio::open_packet_data("s", {}, 18446744073709551615u, 0, 0),
              R"({"sid":"s","upgrades":[],"pingInterval":18446744073709551615,"pingTimeout":0,"maxPayload":0})");
}

// ---- Requests ----

eio::request_checks handshake(std::string_view transport, std::string_view method = "GET") {
    eio::request_checks r;
    r.method = method;
    r.eio = "4";
    r.transport = std::string(transport);
    return r;
}

TEST(EngineIoClassify, Handshakes) {
    auto k = eio::classify(handshake("polling"));
    EXPECT_FALSE(k.refused);
    EXPECT_EQ(k.transport, eio::transport_kind::polling);
    EXPECT_EQ(k.sid, "");

    auto ws = handshake("websocket");
    ws.is_upgrade = true;
    k = eio::classify(ws);
    EXPECT_FALSE(k.refused);
    EXPECT_EQ(k.transport, eio::transport_kind::websocket);
}

TEST(EngineIoClassify, TransportFirst) {
    using eio::error_code;
    for (std::optional<std::string> t : {std::optional<std::string>{}, std::optional<std::string>{""},
                                         std::optional<std::string>{"webtransport"}, std::optional<std::string>{"Polling"},
                                         std::optional<std::string>{"flashsocket"}}) {
        auto r = handshake("", "POST");   // the transport is judged before the method
        r.transport = t;
        EXPECT_EQ(eio::classify(r).refused, error_code::transport_unknown);
    }
    auto r = handshake("polling");
    r.polling_enabled = false;
    EXPECT_EQ(eio::classify(r).refused, error_code::transport_unknown);
    r = handshake("websocket");
    r.is_upgrade = true;
    r.websocket_enabled = false;
    EXPECT_EQ(eio::classify(r).refused, error_code::transport_unknown);
}

TEST(EngineIoClassify, HandshakeRefusals) {
    using eio::error_code;
    EXPECT_EQ(eio::classify(handshake("polling", "POST")).refused, error_code::bad_handshake_method);
    EXPECT_EQ(eio::classify(handshake("polling", "OPTIONS")).refused, error_code::bad_handshake_method);
    EXPECT_EQ(eio::classify(handshake("polling", "get")).refused, error_code::bad_handshake_method);
    // A WebSocket handshake only as an upgrade.
    EXPECT_EQ(eio::classify(handshake("websocket")).refused, error_code::bad_request);
    auto r = handshake("websocket", "POST");
    r.is_upgrade = true;
    EXPECT_EQ(eio::classify(r).refused, error_code::bad_handshake_method);
    // The revision is not classify's: allow_request runs before it.
    r = handshake("polling");
    r.eio = "3";
    EXPECT_FALSE(eio::classify(r).refused);
}

TEST(EngineIoClassify, WithSid) {
    using eio::error_code;
    auto r = handshake("polling", "POST");
    r.sid = "lv_VI97HAXpY6yYWAAAC";
    auto k = eio::classify(r);
    EXPECT_FALSE(k.refused);
    EXPECT_EQ(k.sid, "lv_VI97HAXpY6yYWAAAC");
    EXPECT_EQ(k.transport, eio::transport_kind::polling);

    r = handshake("websocket");
    r.sid = "abc";
    r.eio = std::nullopt;   // nothing more is checked here with a sid
    k = eio::classify(r);
    EXPECT_FALSE(k.refused);
    EXPECT_EQ(k.transport, eio::transport_kind::websocket);
    EXPECT_EQ(k.sid, "abc");

    r.sid = "";
    EXPECT_EQ(eio::classify(r).refused, error_code::session_unknown);
}

TEST(EngineIoRevision, OnlyFour) {
    EXPECT_TRUE(eio::supported_revision(std::string("4")));
    EXPECT_FALSE(eio::supported_revision(std::nullopt));
    // Built one by one: GCC 12 at -O3 sees a false overlap in a list of optional<string> temporaries.
    for (const char* v : {"", "3", "abc", "4 ", "04", "5"}) {
        std::optional<std::string> given;
        given.emplace(v);
        EXPECT_FALSE(eio::supported_revision(given)) << v;
    }
}

} // namespace

// A polling body is read as UTF-8 as the reference server reads it: what is passed on is valid.
TEST(EngineIoPayloadText, IllFormedUtf8BecomesReplacementCharacters) {
    std::vector<gw::detail::eio::packet> out;
    ASSERT_TRUE(gw::detail::eio::decode_payload("4h\xE9llo\x1e" "4ok", out));
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].data, "h\xEF\xBF\xBDllo");
    EXPECT_EQ(out[1].data, "ok");
}
