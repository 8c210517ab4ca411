// Echo server on WebSocket++ (asio_no_tls config), a peer for gateway.hpp's
// benchmark. Usage: websocketpp_echo PORT   (PORT 0 picks a free port)
// Prints "listening on port N" once listening; exits 0 on SIGINT/SIGTERM.
// Single thread; access and error logging off; echoes text as text and
// binary as binary.

#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/server.hpp>

#include <csignal>
#include <cstdlib>
#include <iostream>

using server_t = websocketpp::server<websocketpp::config::asio>;

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: websocketpp_echo PORT\n";
        return 2;
    }
    const int port = std::atoi(argv[1]);
    if (port < 0 || port > 65535) {
        std::cerr << "bad port\n";
        return 2;
    }

    server_t server;
    server.clear_access_channels(websocketpp::log::alevel::all);
    server.clear_error_channels(websocketpp::log::elevel::all);
    server.init_asio();
    server.set_reuse_addr(true);
    server.set_max_message_size(64 * 1024 * 1024);
    server.set_listen_backlog(4096);
    server.set_socket_init_handler([](websocketpp::connection_hdl, websocketpp::lib::asio::ip::tcp::socket& s) {
        websocketpp::lib::asio::error_code ec;
        s.set_option(websocketpp::lib::asio::ip::tcp::no_delay(true), ec);
    });
    server.set_message_handler([&server](websocketpp::connection_hdl hdl, server_t::message_ptr msg) {
        websocketpp::lib::error_code ec;
        server.send(hdl, msg->get_payload(), msg->get_opcode(), ec);
    });

    websocketpp::lib::asio::ip::tcp::endpoint ep(websocketpp::lib::asio::ip::address_v4::loopback(),
                                                 static_cast<unsigned short>(port));
    websocketpp::lib::error_code ec;
    server.listen(ep, ec);
    if (ec) {
        std::cerr << "listen: " << ec.message() << "\n";
        return 1;
    }
    websocketpp::lib::asio::error_code aec;
    const auto local = server.get_local_endpoint(aec);
    if (aec) {
        std::cerr << "local endpoint: " << aec.message() << "\n";
        return 1;
    }
    server.start_accept(ec);
    if (ec) {
        std::cerr << "accept: " << ec.message() << "\n";
        return 1;
    }

    websocketpp::lib::asio::signal_set signals(server.get_io_service(), SIGINT, SIGTERM);
    signals.async_wait([&server](const websocketpp::lib::asio::error_code&, int) { server.stop(); });

    std::cout << "listening on port " << local.port() << std::endl;
    server.run();
    return 0;
}
