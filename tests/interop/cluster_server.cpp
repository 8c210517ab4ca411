// cluster_server PORT: our node of a Socket.IO cluster over Redis (gw::redis::cluster, REDIS_URL
// from the environment, the adapter's default key "socket.io"), for mixed_cluster.mjs beside Node
// peers (node_cluster_peer.mjs, whose protocol this mirrors on "/" and "/chat"):
//   on connect      auth.room (or ?room= in the query) is joined;
//   join ROOM       joined; replies true;
//   say {room,text}       ns.to(room).emit("said", {room, text, from: id, nsp}); replies true;
//   shout {room,text}     s.to(room): the same, the sender left out; replies true;
//   announce TEXT         s.broadcast().emit("announced", {text, from: id, nsp}); replies true;
//   whisper {to,text}     ns.to(to).emit("whisper", {text, from: id, nsp}) (to: a socket id); replies true;
//   fetch ROOM      replies with the ids of the room's sockets on every node;
//   count           replies with the number of the namespace's sockets on every node;
//   whoami          replies {id, port, recovered, data}: data is {user} from auth.user at its first connection.
// CLUSTER_MODE=sharded: the sharded mode; CLUSTER_MODE=streams: the streams mode, with
// connection-state recovery on (the sessions in Redis), as node_cluster_peer.mjs with the streams adapter.
// (Node's serverSideEmit has no counterpart here.) PORT 0 picks a free port. Prints "listening on
// port N" once the cluster's subscriptions are confirmed; exits 0 on SIGINT or SIGTERM.
#include "gateway.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>

using gw::json;

namespace {

std::string text_field(const json& m, const char* name) {
    return m.is_object() && m.contains(name) && m[name].is_string() ? m[name].get<std::string>() : std::string();
}

void serve(gw::namespace_ref ns, gw::redis::cluster& cluster, unsigned port) {
    // serverSideEmit, as the Node peer does it: sent on request, printed when another node sends it.
    ns.on("server-emit", [ns, &cluster](gw::socket&, json payload) {
        json args = json::array();
        args.push_back(std::move(payload));
        cluster.server_side_emit(ns.path(), "ping-servers", std::move(args));
        return true;
    });
    cluster.on_server_event(ns.path(), "ping-servers", [nsp = ns.path()](const json& args) {
        // In the Node peer's key order (a json object would sort them).
        const std::string line = R"({"serverSideEvent":"ping-servers","nsp":)" + json(nsp).dump() +
                                 R"(,"payload":)" + (args.empty() ? json() : args[0]).dump() + "}";
        std::printf("%s\n", line.c_str());
        std::fflush(stdout);
        return json();
    });
    ns.on_connect([](gw::socket& s) {
        if (const std::string user = text_field(s.auth(), "user"); !user.empty() && !s.recovered()) s.data() = json{{"user", user}};
        std::string room = text_field(s.auth(), "room");
        if (room.empty()) room = s.handshake().query_param("room").value_or("");
        if (!room.empty()) s.join(room);
    });
    ns.on("join", [](gw::socket& s, std::string room) {
        if (room.empty()) return false;
        s.join(room);
        return true;
    });
    ns.on("say", [ns](gw::socket& s, json m) -> asio::awaitable<bool> {
        const std::string room = text_field(m, "room");
        if (room.empty()) co_return false;
        const json out = {{"room", room}, {"text", m["text"]}, {"from", s.id()}, {"nsp", ns.path()}};
        co_await ns.to(room).emit("said", out);
        co_return true;
    });
    ns.on("shout", [ns](gw::socket& s, json m) -> asio::awaitable<bool> {
        const std::string room = text_field(m, "room");
        if (room.empty()) co_return false;
        const json out = {{"room", room}, {"text", m["text"]}, {"from", s.id()}, {"nsp", ns.path()}};
        co_await s.to(room).emit("said", out);
        co_return true;
    });
    ns.on("announce", [ns](gw::socket& s, json text) -> asio::awaitable<bool> {
        const json out = {{"text", text}, {"from", s.id()}, {"nsp", ns.path()}};
        co_await s.broadcast().emit("announced", out);
        co_return true;
    });
    ns.on("whisper", [ns](gw::socket& s, json m) -> asio::awaitable<bool> {
        const std::string to = text_field(m, "to");
        if (to.empty()) co_return false;
        const json out = {{"text", m["text"]}, {"from", s.id()}, {"nsp", ns.path()}};
        co_await ns.to(to).emit("whisper", out);
        co_return true;
    });
    ns.on("whoami", [port](gw::socket& s) {
        const auto* data = std::any_cast<json>(&s.data());
        return json{{"id", s.id()}, {"port", port}, {"recovered", s.recovered()}, {"data", data ? *data : json()}};
    });
    ns.on("fetch", [ns](gw::socket&, std::string room) -> asio::awaitable<json> {
        co_return json(co_await ns.to(room).ids());
    });
    // The namespace's sockets everywhere: everybody but the asker, and the asker.
    ns.on("count", [](gw::socket& s) -> asio::awaitable<json> { co_return json(co_await s.broadcast().count() + 1); });
}

long port_of(const char* arg) {
    char* end = nullptr;
    const long n = std::strtol(arg, &end, 10);
    return *arg == '\0' || *end != '\0' || n < 0 || n > 65535 ? -1 : n;
}

} // namespace

int main(int argc, char** argv) {
    const long port = argc == 2 ? port_of(argv[1]) : -1;
    if (port < 0) {
        std::fprintf(stderr, "usage: %s PORT   (PORT 0-65535; 0 picks a free port; REDIS_URL from the environment)\n", argv[0]);
        return 2;
    }
    try {
        asio::io_context io{1};
        // url: REDIS_URL; CLUSTER_MODE=sharded: Redis 7's sharded pub/sub, as the Node peer's;
        // CLUSTER_MODE=streams: a Redis stream, and recovery across nodes.
        gw::redis::cluster_options co;
        const std::string_view mode = std::getenv("CLUSTER_MODE") ? std::getenv("CLUSTER_MODE") : "";
        if (mode == "sharded") co.mode = gw::redis::cluster_mode::sharded;
        if (mode == "streams") co.mode = gw::redis::cluster_mode::streams;
        gw::gateway_options own;
        own.socketio.recovery.enabled = mode == "streams";
        gw::gateway app{io, {.port = static_cast<std::uint16_t>(port)}, own};
        gw::redis::cluster cluster(app, co);
        serve(app.of("/"), cluster, app.port());
        serve(app.of("/chat"), cluster, app.port());
        std::exception_ptr failed;
        // Listening is announced once subscribed, so that nothing published after the line is missed.
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                co_await cluster.ready();
                std::printf("listening on port %u\n", static_cast<unsigned>(app.port()));
                std::fflush(stdout);
            },
            [&](std::exception_ptr e) {
                if (!e) return;
                failed = e;
                io.stop();
            });
        asio::signal_set signals{io, SIGINT, SIGTERM};
        signals.async_wait([&](std::error_code, int) {
            asio::co_spawn(io, app.stop(std::chrono::seconds(2)), [&](std::exception_ptr) { io.stop(); });
        });
        io.run();
        if (failed) std::rethrow_exception(failed);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
        return 1;
    }
}
