// recovery_server PORT: a Socket.IO server with connection-state recovery on, for
// socketio_recovery.mjs (socket.io-client's own recovery against ours). Namespace "/": "join" a
// room (acked true), "shout" {room, text} to a room as "heard" text (acked once queued). Prints
// "listening on port N"; exits 0 on SIGTERM.
#include "../gateway_server_main.hpp"

int main(int argc, char** argv) {
    gw::gateway_options own;
    own.socketio.recovery.enabled = true;
    return test::serve_gateway(argc, argv, own, [](gw::gateway& app) {
        auto ns = app.of("/");
        ns.on("join", [](gw::socket& s, std::string room) {
            s.join(room);
            return true;
        });
        ns.on("shout", [ns](gw::socket&, gw::json m) -> asio::awaitable<bool> {
            co_await ns.to(m.at("room").get<std::string>()).emit("heard", m.at("text"));
            co_return true;
        });
    });
}
