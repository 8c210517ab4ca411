// Echo server on Boost.Beast with C++20 coroutines, a peer for gateway.hpp's
// benchmark. Usage: beast_echo PORT   (PORT 0 picks a free port)
// Prints "listening on port N" once listening; exits 0 on SIGINT/SIGTERM.
// Single thread; echoes text as text and binary as binary.

// <utility> first: Boost 1.74's awaitable.hpp uses std::exchange without it.
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <csignal>
#include <cstdlib>
#include <exception>
#include <iostream>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

asio::awaitable<void> session(tcp::socket socket) {
    socket.set_option(tcp::no_delay(true));
    websocket::stream<tcp::socket> ws(std::move(socket));
    ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws.read_message_max(64 * 1024 * 1024);
    ws.auto_fragment(false);
    try {
        co_await ws.async_accept(asio::use_awaitable);
        beast::flat_buffer buffer;
        for (;;) {
            co_await ws.async_read(buffer, asio::use_awaitable);
            ws.text(ws.got_text());
            co_await ws.async_write(buffer.data(), asio::use_awaitable);
            buffer.consume(buffer.size());
        }
    } catch (const std::exception&) {
        // closed, reset or protocol error: end the session quietly
    }
}

asio::awaitable<void> listener(tcp::acceptor& acceptor) {
    for (;;) {
        boost::system::error_code ec;
        tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            if (ec == asio::error::operation_aborted) co_return;
            continue;  // e.g. EMFILE: keep serving the connections we have
        }
        asio::co_spawn(acceptor.get_executor(), session(std::move(socket)), asio::detached);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: beast_echo PORT\n";
        return 2;
    }
    const int port = std::atoi(argv[1]);
    if (port < 0 || port > 65535) {
        std::cerr << "bad port\n";
        return 2;
    }
    try {
        asio::io_context ioc(1);
        tcp::acceptor acceptor(ioc);
        const tcp::endpoint ep(asio::ip::address_v4::loopback(), static_cast<unsigned short>(port));
        acceptor.open(ep.protocol());
        acceptor.set_option(asio::socket_base::reuse_address(true));
        acceptor.bind(ep);
        acceptor.listen(4096);

        asio::signal_set signals(ioc, SIGINT, SIGTERM);
        signals.async_wait([&ioc](const boost::system::error_code&, int) { ioc.stop(); });

        asio::co_spawn(ioc, listener(acceptor), asio::detached);
        std::cout << "listening on port " << acceptor.local_endpoint().port() << std::endl;
        ioc.run();
    } catch (const std::exception& e) {
        std::cerr << "beast_echo: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
