// The Socket.IO v5 packet head: the protocol document's examples read part by part, the heads a
// decoder must refuse, heads written back byte for byte, the reserved event names, and the JSON
// shape each packet type allows. Hand-made text, no sockets and no JSON library.

#include <gw/protocol/socketio.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

using gw::detail::sio::check_data_shape;
using gw::detail::sio::is_reserved_event;
using gw::detail::sio::packet_head;
using gw::detail::sio::packet_type;
using gw::detail::sio::parse_head;
using gw::detail::sio::write_head;

struct parsed {
    std::string_view error;
    packet_head head;
};

parsed parse(std::string_view text, std::size_t max_attachments = 10) {
    parsed p;
    p.error = parse_head(text, p.head, max_attachments);
    return p;
}

/// Parses text that must be valid and checks every part of its head.
void expect_head(std::string_view text, packet_type type, std::size_t attachments, std::string_view nsp,
                 std::int64_t id, std::string_view data) {
    SCOPED_TRACE(std::string(text));
    const auto p = parse(text);
    ASSERT_EQ(p.error, "");
    EXPECT_EQ(p.head.type, type);
    EXPECT_EQ(p.head.attachments, attachments);
    EXPECT_EQ(p.head.nsp, nsp);
    EXPECT_EQ(p.head.id, id);
    EXPECT_EQ(p.head.data, data);
    // The views point into the text, not into a copy.
    if (!p.head.data.empty()) {
        EXPECT_EQ(p.head.data.data() + p.head.data.size(), text.data() + text.size());
    }
    if (p.head.nsp != "/") {
        EXPECT_GE(p.head.nsp.data(), text.data());
        EXPECT_LE(p.head.nsp.data() + p.head.nsp.size(), text.data() + text.size());
    }
}

std::string head(packet_type type, std::string_view nsp, std::int64_t id = -1, std::size_t attachments = 0) {
    std::string out;
    write_head(out, type, nsp, id, attachments);
    return out;
}

// ---- The protocol document's examples ----

TEST(SocketIoParse, Connect) {
    expect_head("0", packet_type::connect, 0, "/", -1, "");
    expect_head(R"(0{"token":"123"})", packet_type::connect, 0, "/", -1, R"({"token":"123"})");
    expect_head("0/admin,", packet_type::connect, 0, "/admin", -1, "");
    expect_head(R"(0/admin,{"token":"123"})", packet_type::connect, 0, "/admin", -1, R"({"token":"123"})");
}

TEST(SocketIoParse, Disconnect) { expect_head("1/admin,", packet_type::disconnect, 0, "/admin", -1, ""); }

TEST(SocketIoParse, Event) {
    expect_head(R"(2["hello",1])", packet_type::event, 0, "/", -1, R"(["hello",1])");
    expect_head(R"(2/admin,456["project:delete",123])", packet_type::event, 0, "/admin", 456,
                R"(["project:delete",123])");
}

TEST(SocketIoParse, Ack) { expect_head("3/admin,456[]", packet_type::ack, 0, "/admin", 456, "[]"); }

TEST(SocketIoParse, ConnectError) {
    expect_head(R"(4{"message":"Not authorized"})", packet_type::connect_error, 0, "/", -1,
                R"({"message":"Not authorized"})");
}

TEST(SocketIoParse, BinaryEvent) {
    expect_head(R"(51-["hello",{"_placeholder":true,"num":0}])", packet_type::binary_event, 1, "/", -1,
                R"(["hello",{"_placeholder":true,"num":0}])");
    // From the digest: two attachments, and one with an ack id.
    expect_head(R"(52-["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}])", packet_type::binary_event,
                2, "/", -1, R"(["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}])");
    expect_head(R"(62-789[])", packet_type::binary_ack, 2, "/", 789, "[]");
}

TEST(SocketIoParse, BinaryAck) {
    expect_head(R"(61-/admin,456[{"_placeholder":true,"num":0}])", packet_type::binary_ack, 1, "/admin", 456,
                R"([{"_placeholder":true,"num":0}])");
}

TEST(SocketIoParse, NamespaceWithoutComma) {
    // The reference decoder reads a namespace up to a ',' or the end of the text.
    expect_head("0/random", packet_type::connect, 0, "/random", -1, "");
    expect_head("2/admin", packet_type::event, 0, "/admin", -1, "");
    expect_head("2/", packet_type::event, 0, "/", -1, "");
    expect_head("0/,", packet_type::connect, 0, "/", -1, "");
}

TEST(SocketIoParse, NamespaceTakesAnythingButComma) {
    expect_head(R"(2/a b/c?d=1{[,7["x"])", packet_type::event, 0, R"(/a b/c?d=1{[)", 7, R"(["x"])");
    expect_head("2/\xC3\xA9t\xC3\xA9,[1]", packet_type::event, 0, "/\xC3\xA9t\xC3\xA9", -1, "[1]");
    // Only the first ',' ends it; the rest is data, even another namespace-like text.
    expect_head("2/a,/b,[]", packet_type::event, 0, "/a", -1, "/b,[]");
}

TEST(SocketIoParse, IdsAndData) {
    expect_head("30[]", packet_type::ack, 0, "/", 0, "[]");
    expect_head("2007[1]", packet_type::event, 0, "/", 7, "[1]");   // leading zeros, as Number() reads them
    expect_head("313", packet_type::ack, 0, "/", 13, "");           // an id, no data
    expect_head("2/chat,12", packet_type::event, 0, "/chat", 12, "");
    // The longest id accepted: 18 digits, above 2^53, below 2^63.
    expect_head("3999999999999999999[]", packet_type::ack, 0, "/", 999'999'999'999'999'999, "[]");
    expect_head("39007199254740993[]", packet_type::ack, 0, "/", 9'007'199'254'740'993, "[]");
    // Data is whatever follows; the head parser does not look inside it.
    expect_head("2 [1]", packet_type::event, 0, "/", -1, " [1]");
    expect_head("2abc", packet_type::event, 0, "/", -1, "abc");
    expect_head("0-", packet_type::connect, 0, "/", -1, "-");   // '-' means nothing outside binary types
    expect_head("21-[]", packet_type::event, 0, "/", 1, "-[]");
}

TEST(SocketIoParse, AttachmentCounts) {
    expect_head("50-[]", packet_type::binary_event, 0, "/", -1, "[]");
    expect_head("510-[]", packet_type::binary_event, 10, "/", -1, "[]");
    expect_head("6007-/x,3[]", packet_type::binary_ack, 7, "/x", 3, "[]");
    expect_head("51-", packet_type::binary_event, 1, "/", -1, "");

    // The limit is the caller's.
    EXPECT_EQ(parse("53-[]", 3).error, "");
    EXPECT_NE(parse("54-[]", 3).error, "");
    EXPECT_NE(parse("51-[]", 0).error, "");
    EXPECT_EQ(parse("50-[]", 0).error, "");
    EXPECT_EQ(parse("59999999999-[]", SIZE_MAX).head.attachments, 9'999'999'999u);
    EXPECT_NE(parse("510000000000-[]", SIZE_MAX).error, "");   // 11 digits
    EXPECT_NE(parse("500000000001-[]", SIZE_MAX).error, "");   // 11 digits, however small the count
}

// ---- What a decoder refuses ----

TEST(SocketIoParse, Invalid) {
    const std::string_view cases[] = {
        "",
        "7",
        "8[]",
        "9",
        "a",
        "/",
        " 2[]",
        "-1",
        R"(5["x"])",         // binary without a count
        R"(6["x"])",
        R"(5-["x"])",        // a '-' without digits
        "5",
        "6",
        "51",                // digits without '-'
        R"(51["x"])",
        "511-[]",            // over the default limit of 10
        R"(511-["x",{"_placeholder":true,"num":0}])",
        "599999999999999999999-[]",
        "5x-",
        "5 1-[]",
        "51 -[]",
        "5/admin,[]",
        "2" "1234567890123456789" "[]",   // a 19-digit id
        "3/admin," "9999999999999999999",
        "3" "00000000000000000001",        // 20 digits, small value
        "61-/admin," "1234567890123456789" "[]",
    };
    for (std::string_view text : cases) {
        SCOPED_TRACE(std::string(text));
        packet_head h;
        const auto error = parse_head(text, h);
        EXPECT_FALSE(error.empty());
        // A short English reason, not a buffer of anything.
        EXPECT_LT(error.size(), 60u);
        for (char c : error) EXPECT_TRUE(c >= ' ' && c < 0x7F);
    }
    // A NUL byte is a byte like any other, not the end of the text.
    EXPECT_NE(parse(std::string_view("\0", 1)).error, "");
    EXPECT_EQ(parse(std::string_view("2\0", 2)).head.data, std::string_view("\0", 1));
}

TEST(SocketIoParse, Reasons) {
    EXPECT_EQ(parse("").error, "empty packet");
    EXPECT_EQ(parse("7").error, "unknown packet type");
    EXPECT_EQ(parse("a").error, "unknown packet type");
    EXPECT_EQ(parse(R"(5["x"])").error, "missing attachment count");
    EXPECT_EQ(parse(R"(5-["x"])").error, "missing attachment count");
    EXPECT_EQ(parse("5x-").error, "missing attachment count");
    EXPECT_EQ(parse("51").error, "malformed attachment count");
    EXPECT_EQ(parse("51x-").error, "malformed attachment count");
    EXPECT_EQ(parse("511-[]").error, "too many attachments");
    EXPECT_EQ(parse("512345678901-[]").error, "attachment count too long");
    EXPECT_EQ(parse("21234567890123456789[]").error, "ack id too long");
}

TEST(SocketIoParse, ResetsTheHead) {
    packet_head h;
    h.type = packet_type::binary_ack;
    h.attachments = 3;
    h.nsp = "/old";
    h.id = 9;
    h.data = "old";
    ASSERT_EQ(parse_head("0", h), "");
    EXPECT_EQ(h.type, packet_type::connect);
    EXPECT_EQ(h.attachments, 0u);
    EXPECT_EQ(h.nsp, "/");
    EXPECT_EQ(h.id, -1);
    EXPECT_EQ(h.data, "");
}

// ---- Heads written ----

TEST(SocketIoWrite, EachType) {
    EXPECT_EQ(head(packet_type::connect, "/"), "0");
    EXPECT_EQ(head(packet_type::connect, "/admin"), "0/admin,");
    EXPECT_EQ(head(packet_type::disconnect, "/admin"), "1/admin,");
    EXPECT_EQ(head(packet_type::disconnect, ""), "1");
    EXPECT_EQ(head(packet_type::event, "/"), "2");
    EXPECT_EQ(head(packet_type::event, "/admin", 456), "2/admin,456");
    EXPECT_EQ(head(packet_type::ack, "/admin", 456), "3/admin,456");
    EXPECT_EQ(head(packet_type::ack, "/", 0), "30");
    EXPECT_EQ(head(packet_type::connect_error, "/"), "4");
    EXPECT_EQ(head(packet_type::connect_error, "/admin"), "4/admin,");
    EXPECT_EQ(head(packet_type::binary_event, "/", -1, 1), "51-");
    EXPECT_EQ(head(packet_type::binary_event, "/", -1, 0), "50-");
    EXPECT_EQ(head(packet_type::binary_ack, "/admin", 456, 1), "61-/admin,456");
    EXPECT_EQ(head(packet_type::binary_event, "/", 789, 2), "52-789");
    // Counts are for binary types only; negative ids mean none.
    EXPECT_EQ(head(packet_type::event, "/", -1, 3), "2");
    EXPECT_EQ(head(packet_type::ack, "/", -7), "3");
    EXPECT_EQ(head(packet_type::ack, "/", INT64_MAX), "39223372036854775807");
    EXPECT_EQ(head(packet_type::binary_ack, "/", -1, SIZE_MAX), "618446744073709551615-");
}

TEST(SocketIoWrite, Appends) {
    std::string out = "4";   // the Engine.IO message type in front, as on the wire
    write_head(out, packet_type::event, "/chat", 12);
    out += R"(["hi"])";
    EXPECT_EQ(out, R"(42/chat,12["hi"])");
}

TEST(SocketIoWrite, RoundTrips) {
    struct head_case {
        packet_type type;
        std::string_view nsp;
        std::int64_t id;
        std::size_t attachments;
        std::string_view data;
    };
    const head_case cases[] = {
        {packet_type::connect, "/", -1, 0, ""},
        {packet_type::connect, "/", -1, 0, R"({"token":"123"})"},
        {packet_type::connect, "/admin", -1, 0, R"({"sid":"oSO0OpakMV_3jnilAAAA"})"},
        {packet_type::disconnect, "/", -1, 0, ""},
        {packet_type::disconnect, "/admin", -1, 0, ""},
        {packet_type::event, "/", -1, 0, R"(["hello",1])"},
        {packet_type::event, "/admin", 456, 0, R"(["project:delete",123])"},
        {packet_type::event, "/", 0, 0, R"([1])"},
        {packet_type::ack, "/admin", 456, 0, "[]"},
        {packet_type::ack, "/", 999'999'999'999'999'999, 0, "[null]"},
        {packet_type::connect_error, "/", -1, 0, R"({"message":"Not authorized"})"},
        {packet_type::connect_error, "/admin", -1, 0, R"("legacy")"},
        {packet_type::binary_event, "/", -1, 1, R"(["hello",{"_placeholder":true,"num":0}])"},
        {packet_type::binary_event, "/x", 5, 10, "[]"},
        {packet_type::binary_ack, "/admin", 456, 1, R"([{"_placeholder":true,"num":0}])"},
        {packet_type::binary_ack, "/", 1, 0, "[]"},
    };
    for (const auto& c : cases) {
        std::string text;
        write_head(text, c.type, c.nsp, c.id, c.attachments);
        text += c.data;
        SCOPED_TRACE(text);
        packet_head h;
        ASSERT_EQ(parse_head(text, h), "");
        EXPECT_EQ(h.type, c.type);
        EXPECT_EQ(h.nsp, c.nsp);
        EXPECT_EQ(h.id, c.id);
        EXPECT_EQ(h.attachments, c.attachments);
        EXPECT_EQ(h.data, c.data);
        EXPECT_EQ(check_data_shape(h.type, h.data), "");
        // And back again, to the same bytes.
        std::string again;
        write_head(again, h.type, h.nsp, h.id, h.attachments);
        again += h.data;
        EXPECT_EQ(again, text);
    }
}

TEST(SocketIoWrite, EmptyNamespaceIsTheMainOne) {
    EXPECT_EQ(head(packet_type::event, "", 3), "23");
    EXPECT_EQ(head(packet_type::event, "/", 3), "23");
}

// ---- Reserved names ----

TEST(SocketIoReserved, TheSix) {
    for (std::string_view name : {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"})
        EXPECT_TRUE(is_reserved_event(name)) << name;
}

TEST(SocketIoReserved, OthersAreNot) {
    for (std::string_view name : {"", "message", "hello", "connection", "new_namespace", "error", "ping", "Connect",
                                  "CONNECT", "connect ", " connect", "connec", "connect_errors", "disconnected",
                                  "newlistener", "removelistener", "NewListener"})
        EXPECT_FALSE(is_reserved_event(name)) << name;
    EXPECT_FALSE(is_reserved_event(std::string_view("connect\0", 8)));
}

// ---- JSON shapes ----

TEST(SocketIoShape, Connect) {
    EXPECT_EQ(check_data_shape(packet_type::connect, ""), "");
    EXPECT_EQ(check_data_shape(packet_type::connect, "{}"), "");
    EXPECT_EQ(check_data_shape(packet_type::connect, R"({"token":"123"})"), "");
    EXPECT_EQ(check_data_shape(packet_type::connect, " \t\r\n{}"), "");
    EXPECT_NE(check_data_shape(packet_type::connect, "[]"), "");
    EXPECT_NE(check_data_shape(packet_type::connect, "null"), "");
    EXPECT_NE(check_data_shape(packet_type::connect, R"("x")"), "");
    EXPECT_NE(check_data_shape(packet_type::connect, "1"), "");
    EXPECT_NE(check_data_shape(packet_type::connect, " "), "");   // whitespace alone is no JSON
}

TEST(SocketIoShape, Disconnect) {
    EXPECT_EQ(check_data_shape(packet_type::disconnect, ""), "");
    EXPECT_NE(check_data_shape(packet_type::disconnect, "{}"), "");
    EXPECT_NE(check_data_shape(packet_type::disconnect, "[]"), "");
    EXPECT_NE(check_data_shape(packet_type::disconnect, " "), "");
}

TEST(SocketIoShape, Events) {
    for (auto t : {packet_type::event, packet_type::binary_event}) {
        EXPECT_EQ(check_data_shape(t, R"(["hello",1])"), "");
        EXPECT_EQ(check_data_shape(t, "[]"), "");   // the JSON level only: an empty array is the decoder's call
        EXPECT_EQ(check_data_shape(t, "\n [1]"), "");
        EXPECT_NE(check_data_shape(t, ""), "");     // "42": the reference ignores it, the spec says invalid
        EXPECT_NE(check_data_shape(t, "{}"), "");
        EXPECT_NE(check_data_shape(t, R"("hello")"), "");
        EXPECT_NE(check_data_shape(t, "null"), "");
        EXPECT_NE(check_data_shape(t, "\v[]"), "");   // not JSON whitespace
    }
}

TEST(SocketIoShape, Acks) {
    for (auto t : {packet_type::ack, packet_type::binary_ack}) {
        EXPECT_EQ(check_data_shape(t, "[]"), "");
        EXPECT_EQ(check_data_shape(t, R"([{"_placeholder":true,"num":0}])"), "");
        EXPECT_NE(check_data_shape(t, ""), "");
        EXPECT_NE(check_data_shape(t, "{}"), "");
        EXPECT_NE(check_data_shape(t, "1"), "");
    }
}

TEST(SocketIoShape, ConnectError) {
    EXPECT_EQ(check_data_shape(packet_type::connect_error, R"({"message":"Not authorized"})"), "");
    EXPECT_EQ(check_data_shape(packet_type::connect_error, R"("Not authorized")"), "");
    EXPECT_EQ(check_data_shape(packet_type::connect_error, R"( "x")"), "");
    EXPECT_NE(check_data_shape(packet_type::connect_error, ""), "");
    EXPECT_NE(check_data_shape(packet_type::connect_error, "[]"), "");
    EXPECT_NE(check_data_shape(packet_type::connect_error, "null"), "");
    EXPECT_NE(check_data_shape(packet_type::connect_error, "1"), "");
}

TEST(SocketIoShape, UnknownType) {
    EXPECT_NE(check_data_shape(static_cast<packet_type>(7), "[]"), "");
    EXPECT_NE(check_data_shape(static_cast<packet_type>(255), ""), "");
}

TEST(SocketIoShape, TheDocumentsPackets) {
    // Each example, head and data together, as a decoder takes it.
    for (std::string_view text : {"0", R"(0{"token":"123"})", "0/admin,", R"(0/admin,{"token":"123"})", "1/admin,",
                                  R"(2["hello",1])", R"(2/admin,456["project:delete",123])", "3/admin,456[]",
                                  R"(4{"message":"Not authorized"})", R"(51-["hello",{"_placeholder":true,"num":0}])",
                                  R"(61-/admin,456[{"_placeholder":true,"num":0}])", "0/random"}) {
        SCOPED_TRACE(std::string(text));
        packet_head h;
        ASSERT_EQ(parse_head(text, h), "");
        EXPECT_EQ(check_data_shape(h.type, h.data), "");
    }
    for (std::string_view text : {"2/admin", "2", "3", R"(1["x"])", R"(0["x"])", "4", R"(2{"a":1})"}) {
        SCOPED_TRACE(std::string(text));
        packet_head h;
        if (parse_head(text, h).empty()) {
            EXPECT_NE(check_data_shape(h.type, h.data), "");
        }
    }
}

} // namespace
