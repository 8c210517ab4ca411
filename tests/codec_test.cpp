// The gateway's wire format as pure functions: the envelope reader and the JSON writer against
// nlohmann/json itself, on hand-picked inputs and on many generated and mutated ones.
#include "gateway.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <random>
#include <string>
#include <vector>

using gw::json;

namespace {

/// The envelope as the library's own parser reads it: what nest_codec must agree with.
std::optional<gw::event> reference_decode(std::string_view text, std::string& error) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded()) {
        error = "malformed JSON";
        return std::nullopt;
    }
    if (!j.is_object() || !j.contains("event") || !j["event"].is_string()) {
        error = "expected {\"event\": string, \"data\": any}";
        return std::nullopt;
    }
    gw::event e;
    e.name = j["event"].get<std::string>();
    if (auto it = j.find("data"); it != j.end()) e.data = *it;
    if (auto it = j.find("id"); it != j.end() && !it->is_null()) {
        if (!it->is_number() && !it->is_string()) {
            error = "\"id\" must be a number or a string";
            return std::nullopt;
        }
        e.id = *it;
    }
    if (auto it = j.find("ack"); it != j.end()) {
        if (!it->is_number_integer() || it->get<std::int64_t>() <= 0) {
            error = "\"ack\" must be a positive integer";
            return std::nullopt;
        }
        e.ack = it->get<std::int64_t>();
    }
    return e;
}

/// Decodes text both ways and expects the same outcome: the same fields, or the same error.
void expect_same_decoding(const std::string& text) {
    gw::nest_codec codec;
    std::string error, expected_error;
    auto got = codec.decode(gw::message{text, false}, error);
    auto want = reference_decode(text, expected_error);
    ASSERT_EQ(got.has_value(), want.has_value()) << text << "\n  ours: " << error << "\n  library: " << expected_error;
    if (!want) {
        EXPECT_EQ(error, expected_error) << text;
        return;
    }
    EXPECT_EQ(got->name, want->name) << text;
    EXPECT_EQ(got->data, want->data) << text;
    EXPECT_EQ(got->data.dump(), want->data.dump()) << text;   // the same types too (1 vs 1.0 vs "1")
    EXPECT_EQ(got->id, want->id) << text;
    EXPECT_EQ(got->ack, want->ack) << text;
}

const std::vector<std::string> envelopes = {
    R"({"event":"ping","data":{"n":1}})",
    R"({"event":"ping"})",
    R"({"data":[1,2,3],"event":"sum","id":7})",
    R"(  {  "event" : "a" , "data" : "text" , "id" : "req-1" }  )",
    "{\n\t\"event\":\"nl\",\r\n\"data\":\n1\n}\n",
    R"({"event":"e","data":null,"id":null})",
    R"({"event":"e","data":"with \"quotes\" and \\ and \n and \u00e9 and \ud83d\ude00"})",
    R"({"event":"caf\u00e9","data":1})",
    R"({"\u0065vent":"escaped key","data":2})",
    R"({"event":"first","event":"second"})",
    R"({"event":"e","data":1,"data":2})",
    R"({"event":1})",
    R"({"event":null,"data":1})",
    R"({"data":1})",
    R"({})",
    R"([])",
    R"("event")",
    R"(42)",
    R"(null)",
    "",
    " ",
    R"({"event":"e",})",
    R"({"event":"e" "data":1})",
    R"({"event":"e","data":})",
    R"({"event":"e","data":1}})",
    R"({"event":"e","data":1} x)",
    R"({"event":"e","data":01})",
    R"({"event":"e","data":-})",
    R"({"event":"e","data":1.})",
    R"({"event":"e","data":.5})",
    R"({"event":"e","data":1e})",
    R"({"event":"e","data":+1})",
    R"({"event":"e","data":-0})",
    R"({"event":"e","data":-0.0e-0})",
    R"({"event":"e","data":1E+2})",
    R"({"event":"e","data":123456789012345678901234567890})",
    R"({"event":"e","data":-9223372036854775808})",
    R"({"event":"e","data":9223372036854775807})",
    R"({"event":"e","data":9223372036854775808})",
    R"({"event":"e","data":18446744073709551616})",
    R"({"event":"e","data":tru})",
    R"({"event":"e","data":true})",
    R"({"event":"e","data":falsey})",
    R"({"event":"e","data":"\x"})",
    R"({"event":"e","data":"\u12"})",
    R"({"event":"e","data":"\ud800"})",
    R"({"event":"e","data":"\udc00"})",
    R"({"event":"e","data":"\ud800\u0041"})",
    "{\"event\":\"e\",\"data\":\"tab\there\"}",
    R"({"event":"e","data":[1,[2,[3,{"a":[]}]],{}]})",
    R"({"event":"e","data":[1,]})",
    R"({"event":"e","data":{"a":1,}})",
    R"({"event":"e","data":{"a"}})",
    R"({"event":"e","data":{1:2}})",
    R"({"event":"e","other":{"deep":[[[[[]]]]]},"data":3})",
    R"({"event":"e","data":9e999})",
    R"({"event":"e","other":-1.5E+400,"data":1})",
    R"({"event":"e","data":1e-400})",
    R"({"event":"e","data":0.000000e999})",
    R"({"event":"e","data":-0.00001e-330})",
    R"({"event":"e","data":1797693134862315708145274237317043567981e269})",
    "{\"event\":\"e\",\"data\":" + std::string(400, '7') + "}",
    "{\"event\":\"e\",\"data\":0." + std::string(400, '0') + "1}",
    R"({"event":"e","id":1.5})",
    R"({"event":"e","id":true})",
    R"({"event":"e","id":[1]})",
    R"({"event":"ack","ack":3,"data":"reply"})",
    R"({"event":"ack","ack":0})",
    R"({"event":"ack","ack":-2})",
    R"({"event":"ack","ack":2.0})",
    R"({"event":"ack","ack":"2"})",
    std::string(200, '[') + std::string(200, ']'),
    "{\"event\":\"deep\",\"data\":" + std::string(3000, '[') + std::string(3000, ']') + "}",
    "{\"event\":\"deep\",\"x\":" + std::string(3000, '[') + std::string(2999, ']') + "}",
};

} // namespace

TEST(Envelope, HandPickedInputsDecodeAsTheLibraryReadsThem) {
    for (const auto& text : envelopes) expect_same_decoding(text);
}

TEST(Envelope, MutatedInputsDecodeAsTheLibraryReadsThem) {
    // Single-byte edits of valid envelopes reach most ways JSON can break. Text frames are valid
    // UTF-8 by the time they are decoded, so edits stay within ASCII.
    std::mt19937 rng(20261122);
    const std::string alphabet = "{}[]:,\"\\/ -+.0123456789eEtrufalsnbu\n\tx";
    std::size_t checked = 0;
    for (int round = 0; round < 20000; ++round) {
        std::string text = envelopes[rng() % 8];
        const int edits = 1 + static_cast<int>(rng() % 3);
        for (int k = 0; k < edits && !text.empty(); ++k) {
            const std::size_t at = rng() % text.size();
            const char c = alphabet[rng() % alphabet.size()];
            switch (rng() % 3) {
            case 0: text[at] = c; break;
            case 1: text.insert(text.begin() + static_cast<std::ptrdiff_t>(at), c); break;
            default: text.erase(at, 1); break;
            }
        }
        if (!gw::detail::is_valid_utf8(text)) continue;
        expect_same_decoding(text);
        ++checked;
        if (::testing::Test::HasFailure()) break;
    }
    EXPECT_GT(checked, 19000u);
}

namespace {

/// A random JSON value: every type, strings with escapes, control characters, multi-byte and
/// invalid UTF-8, numbers at the edges of their types.
json random_value(std::mt19937& rng, int depth) {
    switch (rng() % (depth > 3 ? 6 : 8)) {
    case 0: return nullptr;
    case 1: return rng() % 2 == 0;
    case 2: {
        const std::int64_t picks[] = {0, -1, 1, 42, -42, INT64_MIN, INT64_MAX, 1000000007};
        return picks[rng() % 8];
    }
    case 3: {
        const std::uint64_t picks[] = {0, 1, UINT64_MAX, 1ull << 63};
        return picks[rng() % 4];
    }
    case 4: {
        const double picks[] = {0.5, -0.0, 1e300, 3.141592653589793, 1.0, -2.5e-8, 100.0};
        return picks[rng() % 7];
    }
    case 5: {
        const std::string pieces[] = {"a",      "plain text", "\"",  "\\",   "/",      "\n",  "\t", "\b",
                                      "\f",     "\r",         "\x01", "\x1f", "\x7f",  "é",   "€",  "😀",
                                      "\xff",   "\xc3",       "\xed\xa0\x80", "",     "\0"};
        std::string s;
        const int n = static_cast<int>(rng() % 6);
        for (int i = 0; i < n; ++i) s += std::string(pieces[rng() % 21]) + (rng() % 4 == 0 ? std::string(1, '\0') : "");
        return s;
    }
    case 6: {
        json a = json::array();
        const int n = static_cast<int>(rng() % 4);
        for (int i = 0; i < n; ++i) a.push_back(random_value(rng, depth + 1));
        return a;
    }
    default: {
        json o = json::object();
        const int n = static_cast<int>(rng() % 4);
        for (int i = 0; i < n; ++i) o[random_value(rng, 9).dump(-1, ' ', false, json::error_handler_t::replace)] = random_value(rng, depth + 1);
        return o;
    }
    }
}

} // namespace

bool has_float(const json& j) {
    if (j.is_number_float()) return true;
    if (j.is_array() || j.is_object())
        for (const auto& v : j)
            if (has_float(v)) return true;
    return false;
}

TEST(Envelope, WriterPrintsWhatDumpPrints) {
    // What dump() prints, but numbers as JavaScript writes them (JSON.stringify): those read back equal.
    std::mt19937 rng(7);
    for (int round = 0; round < 20000; ++round) {
        json v = random_value(rng, 0);
        std::string out;
        gw::detail::write_json(out, v);
        const std::string dumped = v.dump(-1, ' ', false, json::error_handler_t::replace);
        if (!has_float(v)) {
            ASSERT_EQ(out, dumped);
        }
        ASSERT_EQ(json::parse(out), json::parse(dumped)) << out;
    }
}

TEST(Envelope, NumbersAsJavaScriptWritesThem) {
    // ECMAScript's Number::toString, as JSON.stringify uses it (values checked against Node).
    const std::pair<double, const char*> cases[] = {
        {1.0, "1"}, {1.5, "1.5"}, {-2.25, "-2.25"}, {0.1, "0.1"}, {100.0, "100"}, {1e21, "1e+21"}, {1e-7, "1e-7"},
        {1.5e-7, "1.5e-7"}, {0.000001, "0.000001"}, {123456789012345680000.0, "123456789012345680000"},
        {1e300, "1e+300"}, {5e-324, "5e-324"}, {-0.0, "0"}, {0.0, "0"}, {2.5e21, "2.5e+21"}, {1234.5678, "1234.5678"},
        {std::numeric_limits<double>::quiet_NaN(), "null"}, {std::numeric_limits<double>::infinity(), "null"}};
    for (const auto& [v, want] : cases) {
        std::string out;
        gw::detail::write_js_number(out, v);
        EXPECT_EQ(out, want) << v;
    }
}

TEST(Envelope, StringsWithOneSpecialByteAtEveryOffset) {
    // The writer and the scanner look at eight bytes at a time: put each kind of byte at every
    // offset of runs longer than a word.
    const std::string specials[] = {"\"", "\\", "\x01", "\x1f", " ", "\x7f", "\xc3\xa9", "\xe2\x82\xac", "\xff", "/"};
    for (std::size_t len : {7u, 8u, 9u, 15u, 16u, 17u, 31u}) {
        for (std::size_t at = 0; at <= len; ++at) {
            for (const auto& sp : specials) {
                std::string v = std::string(at, 'a') + sp + std::string(len - at, 'b');
                std::string out;
                gw::detail::write_json(out, json(v));
                ASSERT_EQ(out, json(v).dump(-1, ' ', false, json::error_handler_t::replace)) << len << " " << at;
                expect_same_decoding(R"({"event":"e","data":)" + out + "}");
                if (gw::detail::is_valid_utf8(v))   // as a text frame brings it: raw, unescaped
                    expect_same_decoding("{\"event\":\"e\",\"data\":\"" + v + "\"}");
            }
        }
    }
}

TEST(Envelope, EncodeKeepsNestJsKeyOrderAndRoundTrips) {
    gw::nest_codec codec;
    json data = json::parse(R"({"b":[1,"two"],"a":null})");
    EXPECT_EQ(codec.encode("ev", data, nullptr, 0), R"({"event":"ev","data":{"a":null,"b":[1,"two"]}})");
    EXPECT_EQ(codec.encode("ev", "x", 7, 0), R"({"event":"ev","data":"x","id":7})");
    EXPECT_EQ(codec.encode("ev", 1, "r", 3), R"({"event":"ev","data":1,"id":"r","ack":3})");
    EXPECT_EQ(codec.encode("q\"uote\n", nullptr, nullptr, 0), R"({"event":"q\"uote\n","data":null})");
    EXPECT_EQ(codec.encode("bad\xff", nullptr, nullptr, 0), "{\"event\":\"bad\xef\xbf\xbd\",\"data\":null}");
    std::string error;
    auto back = codec.decode(gw::message{codec.encode("round", data, "id-1", 0), false}, error);
    ASSERT_TRUE(back.has_value()) << error;
    EXPECT_EQ(back->name, "round");
    EXPECT_EQ(back->data, data);
    EXPECT_EQ(back->id, "id-1");
}
