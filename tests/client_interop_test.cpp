// gateway.hpp's client against a server nobody here wrote: Node's `ws`, plain and TLS.
// The test runner passes the path of tests/interop/node_server.mjs as the first argument.
#include "support.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>

using asio::awaitable;

namespace {

std::string node_server_script;

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

} // namespace

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
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s PATH/TO/node_server.mjs\n", argv[0]);
        return 2;
    }
    node_server_script = argv[1];
    return RUN_ALL_TESTS();
}
