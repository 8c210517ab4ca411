// socketio_reference: the server the Socket.IO protocol's test suite expects, on a gw::gateway:
// Socket.IO at /socket.io/ with pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1000000,
// connectTimeout 1000 ms and CORS for any origin; namespaces "/" and "/custom", each emitting
// "auth" with the CONNECT payload on connection; "message" answered by "message-back" with the
// same arguments, "message-with-ack" acknowledged with the same arguments.
// Usage: socketio_reference PORT   (0 picks a free port)
// With GW_TEST_PATIENT set (non-empty), pingTimeout is 5 s instead of 200 ms and connectTimeout
// 5 s instead of 1 s: the third-party client runs (tests/interop/run_socketio_interop.sh) give a
// slow sanitized server and the clients' threads room, while the protocol suite keeps its values.
#include "../gateway_server_main.hpp"

#include <cstdlib>

int main(int argc, char** argv) {
    const char* patient = std::getenv("GW_TEST_PATIENT");
    const bool slow = patient && *patient;
    gw::gateway_options own;
    own.socketio.engine.ping_interval = std::chrono::milliseconds(300);
    own.socketio.engine.ping_timeout = std::chrono::milliseconds(slow ? 5000 : 200);
    own.socketio.engine.max_payload = 1'000'000;
    own.socketio.engine.cors.enabled = true;
    own.socketio.connect_timeout = std::chrono::milliseconds(slow ? 5000 : 1000);
    return test::serve_gateway(argc, argv, own, [](gw::gateway& app) {
        for (const char* path : {"/", "/custom"}) {
            app.of(path)
                .on_connect([](gw::socket& s) { return s.emit("auth", s.auth()); })
                // The arguments as they came: gw::event::spread keeps several (or none) apart.
                .on("message", [](gw::socket&, gw::event& e) { return gw::response{"message-back", std::move(e.data), e.spread}; })
                .on("message-with-ack", [](gw::socket&, gw::event& e) { return gw::response{{}, std::move(e.data), e.spread}; });
        }
    });
}
