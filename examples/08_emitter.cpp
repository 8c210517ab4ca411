// 08_emitter: emits one event to the clients of a cluster from a process that serves none, as
// @socket.io/redis-emitter does. Usage: 08_emitter NSP ROOM EVENT JSON   (ROOM "-" for everyone)
// Redis is $REDIS_URL, else redis://localhost:6379. Try it with two 04_chat instances started with
// REDIS_URL set: 08_emitter /chat room:lobby receiveRoomMessage '{"from":"ops","message":"hi"}'
#include "gateway.hpp"

#include <cstdio>
#include <string>

using gw::json;

/// Publishes the event and returns once Redis has taken it: the process may exit then.
asio::awaitable<void> notify(asio::any_io_executor ex, std::string nsp, std::string room, std::string event, json data) {
    gw::redis::emitter io(ex);   // $REDIS_URL or localhost
    auto target = io.of(nsp);
    if (room != "-") target = target.to(room);
    if (!target.emit(event, data)) throw std::runtime_error("the emitter's buffer dropped the event");
    co_await io.flush();   // safe to exit now
}

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: %s NSP ROOM EVENT JSON   (ROOM - for the whole namespace)\n", argv[0]);
        return 2;
    }
    json data = json::parse(argv[4], nullptr, false);
    if (data.is_discarded()) {
        std::fprintf(stderr, "%s: JSON expected, got %s\n", argv[0], argv[4]);
        return 2;
    }
    asio::io_context io;
    int status = 0;
    // The emitter waits for a Redis that is away (it buffers meanwhile); a command line does not.
    asio::steady_timer deadline(io, std::chrono::seconds(5));
    deadline.async_wait([&](std::error_code ec) {
        if (ec) return;
        std::fprintf(stderr, "%s: Redis did not answer within 5 s\n", argv[0]);
        status = 1;
        io.stop();
    });
    asio::co_spawn(io, notify(io.get_executor(), argv[1], argv[2], argv[3], std::move(data)), [&](std::exception_ptr e) {
        deadline.cancel();
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            std::fprintf(stderr, "%s: %s\n", argv[0], x.what());
        }
        status = 1;
    });
    io.run();
    return status;
}
