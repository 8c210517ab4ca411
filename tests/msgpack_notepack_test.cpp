// gw::sio_redis's msgpack against notepack.io 3.0.1, the one @socket.io/redis-adapter and
// @socket.io/redis-emitter use, in a real Node (tests/interop/notepack_check.mjs, whose path is the
// first argument): notepack's bytes for every integer width, floats, strings and binary at each
// length boundary, nested maps and arrays, a Date and undefined decode here to the JSON a Node peer
// means; our bytes for the same JSON decode in notepack to the same values, and are notepack's very
// bytes wherever JavaScript allows it. notepack 2 is not installed: its extensions (undefined,
// Date, ArrayBuffer as ext 0) are covered by hand-made bytes in protocol/socketio_redis_test.cpp.
#include <gateway.hpp>

#include "node_process.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <map>

namespace {

std::string script;

std::string to_hex(std::string_view bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

std::string from_hex(std::string_view hex) {
    std::string out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
    return out;
}

/// Binary as the script writes it, {"$bin": "<hex>"}, so both sides compare as JSON.
gw::json plain(const gw::json& v) {
    if (v.is_binary()) {
        const auto& b = v.get_binary();
        return {{"$bin", to_hex(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()))}};
    }
    if (v.is_array()) {
        gw::json out = gw::json::array();
        for (const auto& e : v) out.push_back(plain(e));
        return out;
    }
    if (v.is_object()) {
        if (v.size() == 1 && v.contains("$bin")) return v;
        gw::json out = gw::json::object();
        for (const auto& [k, e] : v.items()) out[k] = plain(e);
        return out;
    }
    return v;
}

/// The inverse: {"$bin": hex} becomes json::binary again.
gw::json unplain(const gw::json& v) {
    if (v.is_object() && v.size() == 1 && v.contains("$bin")) {
        const std::string bytes = from_hex(v["$bin"].get<std::string>());
        return gw::json::binary(std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
    }
    if (v.is_array()) {
        gw::json out = gw::json::array();
        for (const auto& e : v) out.push_back(unplain(e));
        return out;
    }
    if (v.is_object()) {
        gw::json out = gw::json::object();
        for (const auto& [k, e] : v.items()) out[k] = unplain(e);
        return out;
    }
    return v;
}

TEST(MsgpackNotepack, BothWays) {
    test::line_process node({"node", script});
    struct one_case {
        gw::json want;   // the JSON a Node peer means
        std::string notepack_hex;
        bool same = false;
    };
    std::map<std::string, one_case> cases;
    std::vector<std::string> order;
    for (;;) {
        auto line = node.read_line();
        ASSERT_TRUE(line) << "notepack_check.mjs stopped before listing its cases";
        const auto v = gw::json::parse(*line);
        if (v.contains("end")) break;
        const auto name = v["name"].get<std::string>();
        order.push_back(name);
        cases[name] = {v["json"], v["hex"].get<std::string>(), v["same"].get<bool>()};
    }
    ASSERT_GE(cases.size(), 50u);

    // notepack -> gw
    std::string replies;
    for (const auto& name : order) {
        const auto& c = cases[name];
        std::string error;
        const auto got = gw::sio_redis::from_msgpack(from_hex(c.notepack_hex), error);
        EXPECT_TRUE(got.has_value()) << name << ": " << error;
        if (got) {
            EXPECT_EQ(plain(*got), c.want) << name << ": notepack wrote " << c.notepack_hex.substr(0, 80);
        }
        // gw -> notepack: our encoding of the JSON the peer meant.
        const std::string ours = gw::sio_redis::to_msgpack(unplain(c.want));
        if (c.same) {
            EXPECT_EQ(to_hex(ours), c.notepack_hex) << name << ": gw's bytes differ from notepack's";
        }
        replies += gw::json{{"name", name}, {"hex", to_hex(ours)}}.dump() + "\n";
    }
    ASSERT_TRUE(node.write(replies));
    node.close_stdin();

    std::size_t answered = 0;
    for (;;) {
        auto line = node.read_line();
        ASSERT_TRUE(line) << "notepack_check.mjs stopped before answering every case";
        const auto v = gw::json::parse(*line);
        if (v.contains("done")) {
            EXPECT_EQ(v["done"], order.size());
            break;
        }
        ++answered;
        EXPECT_TRUE(v["equal"].get<bool>()) << v["name"] << ": notepack decoded gw's bytes to " << v.value("got", gw::json()).dump().substr(0, 200);
        if (cases[v["name"].get<std::string>()].same) {
            EXPECT_TRUE(v["same_bytes"].get<bool>()) << v["name"];
        }
    }
    EXPECT_EQ(answered, order.size());
    EXPECT_EQ(node.wait(), 0);
}

} // namespace

int main(int argc, char** argv) {
    testing::InitGoogleTest(&argc, argv);
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s PATH/TO/notepack_check.mjs\n", argv[0]);
        return 2;
    }
    script = argv[1];
    return RUN_ALL_TESTS();
}
