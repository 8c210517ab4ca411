// gateway.hpp's client against servers nobody here wrote: Node's `ws`, plain and TLS, and with
// permessage-deflate both `ws` and Python's `websockets` (NodeWsServerDeflate.*,
// PythonWebsocketsServerDeflate.*: they skip without node, or without a python3 that has websockets).
// The test runner passes the paths of tests/interop/node_server.mjs and tests/interop/py_server.py;
// $PYTHON names the interpreter (default python3). Exit status 77 when every test run was skipped.
#include "support.hpp"
#include "node_process.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

using asio::awaitable;

namespace {

std::string node_server_script, py_server_script;

/// Writes a throwaway certificate to a temporary directory for the Node server to load.
struct cert_files {
    test::certificate cert = test::certificate::make();
    std::filesystem::path dir;
    cert_files() {
        std::string templ = (std::filesystem::temp_directory_path() / "gw-cert-XXXXXX").string();
        dir = mkdtemp(templ.data());
        std::ofstream(dir / "cert.pem") << cert.cert_pem;
        std::ofstream(dir / "key.pem") << cert.key_pem;
    }
    ~cert_files() { std::filesystem::remove_all(dir); }
};

awaitable<void> exercise(std::string url, gw::client_options opts) {
    gw::connection c = co_await gw::connect(url, std::move(opts));
    EXPECT_EQ(c.subprotocol(), "chat.v2");
    co_await c.send("protocol?");
    EXPECT_EQ((co_await c.receive())->data, "chat.v2");

    const std::vector<gw::message> sent = {{"hello from C++", false}, {test::all_bytes(), true}, {"κόσμε 🙂", false},
                                           {std::string(70000, 'x'), false}, {std::string(1 << 20, '\x01'), true}};
    co_await test::expect_echoes(c, sent);
    // The server pings; our client answers by itself, and the server reports the pong it got.
    co_await c.send("ping-me");
    EXPECT_EQ((co_await c.receive())->data, "pong:abc");
    // The server starts the close; receive() ends cleanly with its code and reason.
    co_await c.send("close-me");
    auto end = co_await c.receive();
    EXPECT_FALSE(end.has_value());
    EXPECT_EQ(c.peer_close_code(), 4002);
    EXPECT_EQ(c.peer_close_reason(), "server says bye");
}

// ---- permessage-deflate ----

/// The text of the next message, which must be text.
awaitable<std::string> next_text(gw::connection& c) {
    auto m = co_await c.receive();
    if (!m) throw std::runtime_error("the server closed instead of answering");
    EXPECT_FALSE(m->binary);
    co_return std::move(m->data);
}

/// Bytes the server has read from us so far (its "bytes?" command).
awaitable<std::size_t> server_read(gw::connection& c) {
    co_await c.send("bytes?");
    co_return std::stoull(co_await next_text(c));
}

/// A JSON record as a chat sends them: similar from one message to the next.
std::string record(int i) {
    return R"({"seq":)" + std::to_string(i) + R"(,"user":"user-)" + std::to_string(i % 7) +
           R"(","room":"lobby","text":"message number )" + std::to_string(i) + " about the weather in r\u00e9gion " +
           std::to_string(i % 13) + R"(: ☀ then 🌧","tags":["interop","deflate","t)" + std::to_string(i % 5) +
           R"("],"at":)" + std::to_string(1700000000000LL + i * 250LL) + "}";
}

/// One connection with our client in opts.deflate's mode to a server (script's "extensions?",
/// "bytes?", echo, "ping-me", "protocol?", "close-me") that accepts permessage-deflate.
awaitable<void> exercise_deflate(std::string url, gw::client_options opts) {
    const auto mode = opts.deflate.mode;
    [[maybe_unused]] const bool every = opts.deflate.threshold == 0;
    gw::connection c = co_await gw::connect(url, std::move(opts));
    // Agreed, with the parameters our offer asked for: shared offers client_no_context_takeover
    // ("permessage-deflate; client_no_context_takeover"), dedicated only "permessage-deflate".
    co_await c.send("extensions?");
    const std::string answer = co_await next_text(c);
    std::printf("server answered: Sec-WebSocket-Extensions: %s\n", answer.c_str());
    EXPECT_TRUE(answer.starts_with("permessage-deflate")) << answer;
    EXPECT_EQ(answer.find("client_no_context_takeover") != std::string::npos, mode == gw::deflate_mode::shared) << answer;
    EXPECT_EQ(answer.find("client_max_window_bits"), std::string::npos) << answer;   // not offered: not allowed
    co_await c.send("protocol?");
    EXPECT_EQ(co_await next_text(c), "none");

    std::string json = "[";
    for (int i = 0; i < 1500; ++i) json += (i ? "," : "") + record(i);
    json += "]";
    std::string utf8;   // 1-, 2-, 3- and 4-byte sequences, 1 MiB of them
    while (utf8.size() < (1u << 20)) utf8 += "aé日😀";
    std::string random(1 << 20, '\0');   // incompressible: a stored block, larger than the message
    std::uint32_t x = 0x9e3779b9;
    for (auto& ch : random) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        ch = static_cast<char>(x);
    }
    const std::vector<gw::message> sent = {
        {"hi", false}, {"", false}, {"", true}, {json, false}, {test::all_bytes(), true}, {"κόσμε 🙂 日本語", false},
        {utf8, false}, {random, true}, {std::string(70000, 'x'), false}, {std::string(1 << 20, '\x01'), true}};
    co_await test::expect_echoes(c, sent);

    // A compressible megabyte reaches the server in far fewer bytes: our client compressed it.
    std::size_t before = co_await server_read(c);
    const std::vector<gw::message> big = {{utf8, false}};   // named: GCC 12 cannot keep a braced list in a coroutine frame
    co_await test::expect_echoes(c, big);
    std::size_t took = co_await server_read(c) - before;
    EXPECT_LT(took, 64u << 10) << "1 MiB of UTF-8 text took " << took << " bytes on the wire";

    // Many similar messages, text and binary, in order; with context takeover (dedicated) each
    // refers to those before, so together they take far less than compressed one by one.
    std::vector<gw::message> records;
    for (int i = 0; i < 1000; ++i) records.push_back({record(i), i % 5 == 4});
    before = co_await server_read(c);
    co_await test::expect_echoes(c, records);
    took = co_await server_read(c) - before;   // and a "bytes?" of a few bytes
#if defined(GATEWAY_DEFLATE)
    if (every) {
        std::size_t alone = 0;   // our frames: 2 bytes of header, 4 of mask
        gw::detail::deflate_stream z(6, 15, 8);
        for (const auto& m : records) {
            std::string out;
            z.compress(m.data, out, true);
            alone += out.size() + 6;
        }
        std::printf("1000 records: %zu bytes on the wire, %zu compressed one by one\n", took, alone);
        if (mode == gw::deflate_mode::dedicated)
            EXPECT_LT(took, alone / 2) << "no sign of context takeover: " << took << " bytes, " << alone << " one by one";
        else
            EXPECT_GE(took, alone * 9 / 10) << "shared mode must compress each message alone: " << took << " bytes, " << alone;
    }
#endif

    co_await c.send("ping-me");
    EXPECT_EQ(co_await next_text(c), "pong:abc");
    co_await c.send("close-me");
    EXPECT_FALSE((co_await c.receive()).has_value());
    EXPECT_EQ(c.peer_close_code(), 4002);
    EXPECT_EQ(c.peer_close_reason(), "server says bye");
}

/// Runs exercise_deflate against the server that `command` starts, in mode, with our threshold
/// at 0 (every message compressed) and at its default (short ones go plain, between compressed
/// ones); tls: serve wss:// with a throwaway certificate (command takes "--tls CERT KEY").
void deflate_round(std::vector<std::string> command, gw::deflate_mode mode, bool tls = false) {
    if (!gw::detail::deflate_built) GTEST_SKIP() << "built without GATEWAY_DEFLATE";
    std::optional<cert_files> files;
    if (tls) {
        files.emplace();
        command.insert(command.end(), {"--tls", (files->dir / "cert.pem").string(), (files->dir / "key.pem").string()});
    }
    test::line_process server(command);
    std::optional<std::string> line;
    while ((line = server.read_line()) && !line->starts_with("listening on port ")) {
    }
    ASSERT_TRUE(line) << command[0] << " " << command[1] << " did not say \"listening on port N\"";
    const std::string url = std::string(tls ? "wss://localhost:" : "ws://127.0.0.1:") + line->substr(18) + "/";
    for (std::size_t threshold : {std::size_t{0}, gw::deflate_options{}.threshold}) {
        SCOPED_TRACE("threshold " + std::to_string(threshold));
        asio::io_context io;
        gw::client_options opts;
        opts.deflate = {.mode = mode, .threshold = threshold};
        opts.max_message_bytes = 4 << 20;
        if (files) opts.tls = files->cert.client_context();
        test::run(io, exercise_deflate(url, std::move(opts)), std::chrono::seconds(60));
    }
    server.close_stdin();
    EXPECT_EQ(server.wait(), 0);
}

/// True when the shell finds `command` and it succeeds.
bool runs(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()) == 0; }

std::vector<std::string> node_deflate_server() {
    if (!runs("node --version")) return {};
    return {"node", node_server_script, "--deflate"};
}

std::vector<std::string> python_server() {
    const char* env = std::getenv("PYTHON");
    const std::string python = env && *env ? env : "python3";
    if (!runs("'" + python + "' -c 'import websockets'")) return {};
    return {python, py_server_script};
}

} // namespace

TEST(NodeWsServerDeflate, OurClientShared) {
    auto cmd = node_deflate_server();
    if (cmd.empty()) GTEST_SKIP() << "node not found";
    deflate_round(cmd, gw::deflate_mode::shared);
}

TEST(NodeWsServerDeflate, OurClientDedicated) {
    auto cmd = node_deflate_server();
    if (cmd.empty()) GTEST_SKIP() << "node not found";
    deflate_round(cmd, gw::deflate_mode::dedicated);
}

// Over TLS, and with ws's own threshold (1024 bytes): the server's short messages come uncompressed
// between compressed ones, which must not disturb the context our client inflates with.
TEST(NodeWsServerDeflate, OurClientDedicatedOverTls) {
    auto cmd = node_deflate_server();
    if (cmd.empty()) GTEST_SKIP() << "node not found";
    cmd.insert(cmd.end(), {"--deflate-threshold", "1024"});
    deflate_round(cmd, gw::deflate_mode::dedicated, true);
}

TEST(PythonWebsocketsServerDeflate, OurClientShared) {
    auto cmd = python_server();
    if (cmd.empty()) GTEST_SKIP() << "no python3 with the websockets module (set PYTHON)";
    deflate_round(cmd, gw::deflate_mode::shared);
}

TEST(PythonWebsocketsServerDeflate, OurClientDedicated) {
    auto cmd = python_server();
    if (cmd.empty()) GTEST_SKIP() << "no python3 with the websockets module (set PYTHON)";
    deflate_round(cmd, gw::deflate_mode::dedicated);
}

TEST(NodeWsServer, OurClientOverPlainTcp) {
    test::child server({"node", node_server_script});
    const auto port = server.wait_for_port();
    asio::io_context io;
    gw::client_options opts;
    opts.subprotocols = {"chat.v1", "chat.v2"};
    test::run(io, exercise("ws://127.0.0.1:" + std::to_string(port) + "/", std::move(opts)));
    test::run(io, [&]() -> awaitable<void> {   // and a close started by our side
        auto c = co_await gw::connect("ws://127.0.0.1:" + std::to_string(port) + "/bye");
        co_await c.close(static_cast<gw::close_code>(4100), "client leaving");
        EXPECT_EQ(c.peer_close_code(), 4100);
        EXPECT_EQ(c.peer_close_reason(), "client leaving");
    }());
    EXPECT_EQ(server.terminate(), 0);
}

TEST(NodeWsServer, OurClientOverTls) {
    cert_files files;
    test::child server({"node", node_server_script, "--tls", (files.dir / "cert.pem").string(),
                        (files.dir / "key.pem").string()});
    const auto port = server.wait_for_port();
    asio::io_context io;
    gw::client_options opts;
    opts.subprotocols = {"chat.v2"};
    opts.tls = files.cert.client_context();
    test::run(io, exercise("wss://localhost:" + std::to_string(port) + "/", std::move(opts)));
    EXPECT_EQ(server.terminate(), 0);
}

int main(int argc, char** argv) {
    testing::InitGoogleTest(&argc, argv);
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s PATH/TO/node_server.mjs PATH/TO/py_server.py\n", argv[0]);
        return 2;
    }
    node_server_script = argv[1];
    py_server_script = argv[2];
    const int rc = RUN_ALL_TESTS();
    const auto& run = *testing::UnitTest::GetInstance();
    return rc == 0 && run.test_to_run_count() > 0 && run.skipped_test_count() == run.test_to_run_count() ? 77 : rc;
}
