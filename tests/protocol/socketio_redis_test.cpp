// The Redis adapter's wire format byte by byte: msgpack as notepack.io writes and reads it (both
// majors' extensions), the channel names, the broadcast message and its refusals. Hand-made bytes,
// no Redis.

#include <gw/protocol/socketio_redis.hpp>

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <string_view>

namespace {

using gw::json;
namespace sr = gw::sio_redis;

std::string bytes(std::initializer_list<int> list) {
    std::string out;
    for (int b : list) out += static_cast<char>(b);
    return out;
}

json decode(const std::string& in) {
    std::string error;
    auto v = sr::from_msgpack(in, error);
    EXPECT_TRUE(v) << error;
    return v ? *v : json();
}

std::string refused(const std::string& in) {
    std::string error;
    EXPECT_FALSE(sr::from_msgpack(in, error));
    return error;
}

TEST(Msgpack, IntegersTakeTheSmallestForm) {
    EXPECT_EQ(sr::to_msgpack(0), bytes({0x00}));
    EXPECT_EQ(sr::to_msgpack(127), bytes({0x7f}));
    EXPECT_EQ(sr::to_msgpack(128), bytes({0xcc, 0x80}));
    EXPECT_EQ(sr::to_msgpack(256), bytes({0xcd, 0x01, 0x00}));
    EXPECT_EQ(sr::to_msgpack(65536), bytes({0xce, 0x00, 0x01, 0x00, 0x00}));
    EXPECT_EQ(sr::to_msgpack(4294967296ll), bytes({0xcf, 0, 0, 0, 1, 0, 0, 0, 0}));
    EXPECT_EQ(sr::to_msgpack(-1), bytes({0xff}));
    EXPECT_EQ(sr::to_msgpack(-32), bytes({0xe0}));
    EXPECT_EQ(sr::to_msgpack(-33), bytes({0xd0, 0xdf}));
    EXPECT_EQ(sr::to_msgpack(-129), bytes({0xd1, 0xff, 0x7f}));
    EXPECT_EQ(sr::to_msgpack(-32769), bytes({0xd2, 0xff, 0xff, 0x7f, 0xff}));
}

TEST(Msgpack, NumbersAsJavaScriptHasThem) {
    EXPECT_EQ(sr::to_msgpack(2.0), bytes({0x02}));   // an integral number is an integer to notepack
    EXPECT_EQ(sr::to_msgpack(-3.0), bytes({0xfd}));
    EXPECT_EQ(sr::to_msgpack(1.5), bytes({0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0}));
    EXPECT_EQ(decode(bytes({0xca, 0x3f, 0xc0, 0, 0})), json(1.5));   // float32, which notepack never writes
    EXPECT_EQ(decode(bytes({0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0})), json(nullptr));   // NaN
    EXPECT_EQ(decode(bytes({0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe})), json(-2));
    EXPECT_EQ(decode(bytes({0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})), json(18446744073709551615ull));
}

TEST(Msgpack, TextBinaryAndContainers) {
    EXPECT_EQ(sr::to_msgpack("a"), bytes({0xa1, 'a'}));
    EXPECT_EQ(sr::to_msgpack(std::string(32, 'x')).substr(0, 2), bytes({0xd9, 0x20}));
    EXPECT_EQ(sr::to_msgpack(std::string(256, 'x')).substr(0, 3), bytes({0xda, 0x01, 0x00}));
    EXPECT_EQ(sr::to_msgpack(json::binary({1, 2, 3})), bytes({0xc4, 0x03, 1, 2, 3}));
    EXPECT_EQ(sr::to_msgpack(json::array({1, nullptr, true, false})), bytes({0x94, 0x01, 0xc0, 0xc3, 0xc2}));
    EXPECT_EQ(sr::to_msgpack(json{{"a", 1}}), bytes({0x81, 0xa1, 'a', 0x01}));
    json big = json::array();
    for (int i = 0; i < 16; ++i) big.push_back(i);
    EXPECT_EQ(sr::to_msgpack(big).substr(0, 3), bytes({0xdc, 0x00, 0x10}));
    const json round = {{"text", "héllo"}, {"n", -70000}, {"f", 0.25}, {"bin", json::binary({0, 255})},
                        {"list", json::array({json::object(), json::array(), "x"})}};
    EXPECT_EQ(decode(sr::to_msgpack(round)), round);
}

TEST(Msgpack, NotepackExtensionsAreRead) {
    // notepack 2: undefined is d4 00 00; a key holding it is dropped, a list item is null.
    EXPECT_EQ(decode(bytes({0x82, 0xa1, 'a', 0xd4, 0x00, 0x00, 0xa1, 'b', 0x01})), (json{{"b", 1}}));
    EXPECT_EQ(decode(bytes({0x91, 0xd4, 0x00, 0x00})), json::array({nullptr}));
    // notepack 2: a Date is fixext8 type 0 with int64 milliseconds; it reads as Date#toJSON's text.
    EXPECT_EQ(decode(bytes({0xd7, 0x00, 0, 0, 0x01, 0x8f, 0x31, 0x73, 0x70, 0x00})), json("2024-05-01T00:00:00.000Z"));
    // notepack 3: the timestamp extension (-1), 32-bit seconds.
    EXPECT_EQ(decode(bytes({0xd6, 0xff, 0x66, 0x31, 0x86, 0x00})), json("2024-05-01T00:00:00.000Z"));
    // notepack 2: an ArrayBuffer is ext8 type 0: bytes.
    EXPECT_EQ(decode(bytes({0xc7, 0x02, 0x00, 0xaa, 0xbb})), json::binary({0xaa, 0xbb}));
    // notepack 3: a BigInt's decimal text.
    EXPECT_EQ(decode(bytes({0xc7, 0x02, 0x01, '4', '2'})), json("42"));
    // Integer keys are text, as in JavaScript.
    EXPECT_EQ(decode(bytes({0x81, 0x07, 0x01})), (json{{"7", 1}}));
}

TEST(Msgpack, BadBytesAreRefusedWithoutAllocating) {
    EXPECT_NE(refused(bytes({0xc1})).find("not a msgpack type"), std::string::npos);
    EXPECT_NE(refused(bytes({0xa3, 'a'})).find("truncated"), std::string::npos);
    EXPECT_NE(refused(bytes({0xc4, 0x05, 1})).find("truncated"), std::string::npos);
    // An array claiming 2^32-1 items in 5 bytes is refused before anything is reserved.
    EXPECT_NE(refused(bytes({0xdd, 0xff, 0xff, 0xff, 0xff})).find("truncated"), std::string::npos);
    EXPECT_NE(refused(bytes({0xdf, 0xff, 0xff, 0xff, 0xff, 0x01})).find("truncated"), std::string::npos);
    EXPECT_NE(refused(std::string(200, '\x91')).find("nested too deeply"), std::string::npos);
    EXPECT_NE(refused(bytes({0x01, 0x02})).find("bytes after"), std::string::npos);
    EXPECT_NE(refused(bytes({0x81, 0xc3, 0x01})).find("map key"), std::string::npos);
    EXPECT_NE(refused("").find("truncated"), std::string::npos);
}

TEST(Channels, NamesAsTheAdapterWritesThem) {
    EXPECT_EQ(sr::broadcast_channel("socket.io", "/"), "socket.io#/#");
    EXPECT_EQ(sr::room_channel("socket.io", "/chat", "general"), "socket.io#/chat#general#");
    EXPECT_EQ(sr::request_channel("socket.io", "/"), "socket.io-request#/#");
    EXPECT_EQ(sr::response_channel("socket.io", "/"), "socket.io-response#/#");
    EXPECT_EQ(sr::response_channel("socket.io", "/", "Ab12cd"), "socket.io-response#/#Ab12cd#");
    EXPECT_EQ(sr::broadcast_pattern("socket.io", "/"), "socket.io#/#*");
    EXPECT_EQ(sr::broadcast_pattern("a*b", "/x?[y]\\"), "a\\*b#/x\\?\\[y\\]\\\\#*");
}

TEST(Channels, RoomOfABroadcastChannel) {
    EXPECT_EQ(sr::room_of("socket.io#/#", "socket.io", "/"), std::optional<std::string_view>(""));
    EXPECT_EQ(sr::room_of("socket.io#/#general#", "socket.io", "/"), std::optional<std::string_view>("general"));
    EXPECT_EQ(sr::room_of("socket.io#/#a#b#", "socket.io", "/"), std::optional<std::string_view>("a#b"));
    EXPECT_FALSE(sr::room_of("socket.io#/chat#", "socket.io", "/"));
    EXPECT_FALSE(sr::room_of("socket.io#/#general", "socket.io", "/"));
    EXPECT_FALSE(sr::room_of("socket.io-request#/#", "socket.io", "/"));
    EXPECT_FALSE(sr::room_of("other#/#", "socket.io", "/"));
    EXPECT_EQ(sr::room_of("socket.io#/chat#r#", "socket.io", "/chat"), std::optional<std::string_view>("r"));
}

TEST(Broadcast, EncodedAsTheAdapterPublishesIt) {
    sr::broadcast b;
    b.uid = "abc123";
    b.nsp = "/";
    b.data = json::array({"hi", 1});
    b.opts.rooms = {"r"};
    EXPECT_EQ(b.channel("socket.io"), "socket.io#/#r#");
    const std::string expected =
        bytes({0x93, 0xa6}) + "abc123" + bytes({0x83, 0xa4}) + "type" + bytes({0x02, 0xa4}) + "data" +
        bytes({0x92, 0xa2}) + "hi" + bytes({0x01, 0xa3}) + "nsp" + bytes({0xa1, '/', 0x83, 0xa5}) + "rooms" +
        bytes({0x91, 0xa1, 'r', 0xa6}) + "except" + bytes({0x90, 0xa5}) + "flags" + bytes({0x80});
    EXPECT_EQ(b.encode(), expected);
    b.opts.rooms = {"a", "b"};
    EXPECT_EQ(b.channel("socket.io"), "socket.io#/#");
    b.opts.rooms.clear();
    EXPECT_EQ(b.channel("socket.io"), "socket.io#/#");
}

TEST(Broadcast, TheEmittersMessageIsRead) {
    // @socket.io/redis-emitter: ["emitter", {type:2, data:["hello", <bin 01 02>], nsp:"/"},
    // {rooms:["room1", 7], flags:{volatile:true}, except:["sid"]}], keys in the emitter's order.
    const std::string in = bytes({0x93, 0xa7}) + "emitter" + bytes({0x83, 0xa4}) + "type" + bytes({0x02, 0xa4}) +
                           "data" + bytes({0x92, 0xa5}) + "hello" + bytes({0xc4, 0x02, 0x01, 0x02, 0xa3}) + "nsp" +
                           bytes({0xa1, '/', 0x83, 0xa5}) + "rooms" + bytes({0x92, 0xa5}) + "room1" +
                           bytes({0x07, 0xa5}) + "flags" + bytes({0x81, 0xa8}) + "volatile" + bytes({0xc3, 0xa6}) +
                           "except" + bytes({0x91, 0xa3}) + "sid";
    std::string error;
    auto b = sr::broadcast::decode(in, error);
    ASSERT_TRUE(b) << error;
    EXPECT_EQ(b->uid, "emitter");
    EXPECT_EQ(b->nsp, "/");
    EXPECT_EQ(b->data, json::array({"hello", json::binary({1, 2})}));
    EXPECT_EQ(b->opts.rooms, (std::vector<std::string>{"room1", "7"}));
    EXPECT_EQ(b->opts.except, (std::vector<std::string>{"sid"}));
    EXPECT_TRUE(b->opts.is_volatile());
    EXPECT_TRUE(b->opts.compress());
}

TEST(Broadcast, ShapesOtherThanAnEventAreRefused) {
    std::string error;
    auto refuse = [&](const json& v) {
        error.clear();
        EXPECT_FALSE(sr::broadcast::decode(sr::to_msgpack(v), error)) << v.dump();
        return error;
    };
    EXPECT_FALSE(refuse(json::object()).empty());
    EXPECT_FALSE(refuse(json::array({"u", {{"type", 3}, {"data", json::array({"e"})}}})).empty());
    EXPECT_FALSE(refuse(json::array({"u", {{"type", 2}, {"data", json::array({1})}}})).empty());
    EXPECT_FALSE(refuse(json::array({"u", {{"type", 2}, {"data", json::array({"e"})}}, {{"rooms", "x"}}})).empty());
    // No nsp: the main namespace's, as the adapter reads it; no opts: everyone.
    auto b = sr::broadcast::decode(sr::to_msgpack(json::array({"u", {{"type", 2}, {"data", json::array({"e"})}}})), error);
    ASSERT_TRUE(b) << error;
    EXPECT_EQ(b->nsp, "/");
    EXPECT_TRUE(b->opts.rooms.empty());
}

TEST(Requests, JsonOrMsgpackByTheFirstByte) {
    std::string error;
    auto j = sr::decode_message(R"({"uid":"emitter","type":6,"data":["x",1]})", error);
    ASSERT_TRUE(j) << error;
    EXPECT_EQ((*j)["type"], 6);
    auto m = sr::decode_message(sr::to_msgpack(json{{"type", 9}, {"requestId", "r1"}, {"packet", json::binary({1})}}), error);
    ASSERT_TRUE(m) << error;
    EXPECT_EQ((*m)["packet"], json::binary({1}));
    EXPECT_FALSE(sr::decode_message("{oops", error));
    EXPECT_EQ(sr::encode_cluster(json{{"type", 3}}), R"({"type":3})");
    EXPECT_EQ(sr::encode_cluster(json{{"d", json::binary({1})}}), bytes({0x81, 0xa1, 'd', 0xc4, 0x01, 0x01}));
}

TEST(Selection, ReadsWhatAnyWriterSends) {
    sr::selection s;
    EXPECT_TRUE(sr::selection::read(json{{"rooms", json::array({"a", 3})}}, s));
    EXPECT_EQ(s.rooms, (std::vector<std::string>{"a", "3"}));
    EXPECT_TRUE(s.except.empty());
    sr::selection t;
    EXPECT_TRUE(sr::selection::read(nullptr, t));
    EXPECT_FALSE(sr::selection::read(json{{"except", json::array({json::object()})}}, t));
    EXPECT_FALSE(sr::selection::read(json::array(), t));
    EXPECT_EQ(s.to_json(false), (json{{"rooms", json::array({"a", "3"})}, {"except", json::array()}}));
}

TEST(Streams, AnEntrysFieldsAsTheStreamsAdapterWritesThem) {
    json m{{"uid", "0123456789abcdef"}, {"nsp", "/chat"}, {"type", 3}};
    m["data"] = json{{"packet", json{{"type", 2}, {"data", json::array({"hi", 1})}}}};
    const std::vector<std::string> want{"uid", "0123456789abcdef", "nsp", "/chat", "type", "3",
                                        "data", R"({"packet":{"data":["hi",1],"type":2}})"};
    EXPECT_EQ(sr::stream_fields(m), want);
    // No data: no field (the adapter writes none); binary: base64 of msgpack.
    EXPECT_EQ(sr::stream_fields(json{{"uid", "u"}, {"nsp", "/"}, {"type", 6}}).size(), 6u);
    json bin{{"uid", "u"}, {"nsp", "/"}, {"type", 3}};
    bin["data"] = json{{"x", json::binary({1, 2})}};
    EXPECT_EQ(sr::stream_fields(bin).back(), "gaF4xAIBAg==");
}

TEST(Streams, EntriesAreReadBackAndBadOnesRefused) {
    std::string error;
    const std::vector<std::string> text{"uid", "u", "nsp", "/", "type", "4", "data", R"({"rooms":["a"]})"};
    auto m = sr::from_stream_fields(text, error);
    ASSERT_TRUE(m) << error;
    EXPECT_EQ((*m)["type"], 4);
    EXPECT_EQ((*m)["data"]["rooms"][0], "a");
    const std::vector<std::string> packed{"uid", "u", "nsp", "/", "type", "3", "data", "gaF4xAIBAg=="};
    m = sr::from_stream_fields(packed, error);
    ASSERT_TRUE(m) << error;
    EXPECT_EQ((*m)["data"]["x"], json::binary({1, 2}));
    const std::vector<std::string> no_nsp{"uid", "u", "type", "3"}, bad_type{"nsp", "/", "type", "three"},
        bad_data{"nsp", "/", "type", "3", "data", "not base64!"};
    EXPECT_FALSE(sr::from_stream_fields(no_nsp, error));
    EXPECT_FALSE(sr::from_stream_fields(bad_type, error));
    EXPECT_FALSE(sr::from_stream_fields(bad_data, error));
}

TEST(Streams, OnlyEntryIdsAreOffsets) {
    EXPECT_TRUE(sr::is_stream_id("1700000000000-0"));
    EXPECT_TRUE(sr::is_stream_id("0-1"));
    EXPECT_FALSE(sr::is_stream_id("12"));
    EXPECT_FALSE(sr::is_stream_id("-1"));
    EXPECT_FALSE(sr::is_stream_id("1-"));
    EXPECT_FALSE(sr::is_stream_id("1-2-3"));
    EXPECT_FALSE(sr::is_stream_id("PZ5xnFq"));
    EXPECT_FALSE(sr::is_stream_id(""));
}

TEST(Streams, ASessionAsNodeKeepsItAndAsWeDo) {
    // msgpack {sid: "s1", pid: "p1", rooms: ["s1", "lobby"], data: {user: "ada"}}, base64, as the
    // streams adapter writes it under sio:session:p1.
    auto node = sr::stored_session::decode("hKNzaWSiczGjcGlkonAxpXJvb21zkqJzMaVsb2JieaRkYXRhgaR1c2Vyo2FkYQ==");
    ASSERT_TRUE(node);
    EXPECT_EQ(node->sid, "s1");
    EXPECT_EQ(node->pid, "p1");
    EXPECT_EQ(node->rooms, std::vector<std::string>{"lobby"});   // the id-room aside
    EXPECT_EQ(node->data["user"], "ada");
    EXPECT_TRUE(node->nsp.empty());
    sr::stored_session ours{"s2", "p2", "/chat", {"a", "b"}, json{{"n", 1}}};
    auto back = sr::stored_session::decode(ours.encode());
    ASSERT_TRUE(back);
    EXPECT_EQ(back->sid, "s2");
    EXPECT_EQ(back->nsp, "/chat");
    EXPECT_EQ(back->rooms, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(back->data, (json{{"n", 1}}));
    std::string packed;
    ASSERT_TRUE(gw::detail::eio::base64_decode(ours.encode(), packed));
    std::string error;
    auto v = sr::from_msgpack(packed, error);
    ASSERT_TRUE(v);
    EXPECT_EQ((*v)["rooms"], json::array({"s2", "a", "b"}));   // with its id-room, as the adapter restores them
    EXPECT_FALSE(sr::stored_session::decode("gaF4xAIBAg=="));   // no sid
    EXPECT_FALSE(sr::stored_session::decode("%%%"));
}

} // namespace
