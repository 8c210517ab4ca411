// 04_chat: the chat of the NestJS lessons, on path /chat. Usage: 04_chat PORT [WORKERS]
// Connect to ws://HOST:PORT/chat?token=NAME (letters and digits); NAME becomes your user id.
// Socket.IO clients: io("http://HOST:PORT/chat", {auth: {token: NAME}}). A browser opens
// http://HOST:PORT/ for a chat page that uses socket.io-client's own bundle, served from the file
// $SOCKET_IO_CLIENT (default node_modules/socket.io-client/dist/socket.io.min.js; run from where
// `npm install socket.io-client` put it).
// WORKERS event loops (default 1) serve the clients. The protocol is in README.md, "The 04_chat example".
// With REDIS_URL set (redis://host:port), and built with the Redis parts (GATEWAY_REDIS), it joins
// that Redis' cluster: rooms, private messages and the online count span every instance (README,
// "Cluster").
#include "gateway.hpp"

#include <csignal>
#include <cstdio>
#include <cctype>
#include <cstdlib>
#include <fstream>     // reading socket.io-client's bundle
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <memory>
#include <string>
#include <string_view>

using gw::json;

/// Demo authentication: the token is the user's name. A real server would verify a signed token.
/// It comes as ?token=NAME, or as a bearer token (a header, or a browser's subprotocol pair).
void authenticate(gw::http_request& request) {
    auto token = request.query_param("token");
    if (!token) token = request.bearer_token();
    if (!token || token->empty() || token->size() > 64)
        throw gw::http_refusal(401, "a token of letters and digits is required\n");
    for (char c : *token)
        if (!std::isalnum(static_cast<unsigned char>(c))) throw gw::http_refusal(401, "a token of letters and digits is required\n");
    request.attachment = *token;
}

std::string user_of(gw::socket& s) { return s.data_as<std::string>(); }

bool is_string_field(const json& d, const char* name) { return d.is_object() && d.contains(name) && d[name].is_string(); }

/// The gateway room behind a chat room a client names. Clients' rooms live under "room:", apart from
/// the "user:" rooms that carry private messages, so no room name can tap or drop those.
std::string chat_room(const json& d) { return "room:" + d["room"].get<std::string>(); }

/// A number in [low, high] from a command-line argument, or -1.
long number(const char* arg, long low, long high) {
    char* end = nullptr;
    const long n = std::strtol(arg, &end, 10);
    return *arg == '\0' || *end != '\0' || n < low || n > high ? -1 : n;
}

/// The page at /: a chat over socket.io-client, whose bundle this server also serves.
constexpr std::string_view chat_page = R"html(<!doctype html>
<meta charset="utf-8">
<title>04_chat</title>
<script src="/socket.io.min.js"></script>
<p><input id="token" placeholder="your name"> <button id="connect">connect</button>
<p><input id="room" value="lobby"> <button id="join">join room</button>
<p><input id="text" placeholder="message"> <button id="send">send to room</button>
<pre id="log"></pre>
<script>
  const $ = (id) => document.getElementById(id);
  const log = (...parts) => {
    $('log').textContent += parts.map((p) => typeof p === 'string' ? p : JSON.stringify(p)).join(' ') + '\n';
  };
  let socket = null;
  $('connect').onclick = () => {
    socket?.disconnect();
    const token = $('token').value;
    socket = io('/chat', { auth: { token } });
    socket.on('connect', () => log('connected as', token));
    socket.on('connect_error', (err) => log('refused:', err.message, err.data));
    socket.on('disconnect', (reason) => log('disconnected:', reason));
    socket.onAny((event, data) => log(event, data));
  };
  $('join').onclick = () => socket?.emit('joinRoom', { room: $('room').value });
  $('send').onclick = () => socket?.emit('roomMessage', { room: $('room').value, message: $('text').value });
</script>
)html";

/// A file's bytes, or nullopt when it cannot be read.
std::optional<std::string> file_bytes(const char* path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (in.bad()) return std::nullopt;
    return bytes;
}

int main(int argc, char** argv) {
    const long port = argc >= 2 ? number(argv[1], 0, 65535) : -1;
    const long workers = argc == 3 ? number(argv[2], 1, 256) : 1;
    if (argc < 2 || argc > 3 || port < 0 || workers < 0) {
        std::fprintf(stderr, "usage: %s PORT [WORKERS]   (PORT 0-65535, 0 picks a free port; WORKERS 1-256, default 1)\n", argv[0]);
        return 2;
    }
    asio::io_context io{1};
    gw::options opts{};
    opts.port = static_cast<std::uint16_t>(port);
    opts.workers = static_cast<std::size_t>(workers);
    // permessage-deflate for WsAdapter and Socket.IO clients alike: messages of 1 KiB or more go
    // compressed, a broadcast once for all its recipients (README: Compression).
    opts.deflate.mode = gw::deflate_mode::shared;
    gw::gateway_options limits{};
    limits.socketio.engine.per_message_deflate.mode = gw::deflate_mode::shared;
    // socket.io-client's bundle is read once, here: no event loop ever waits on the disk, and with
    // several workers the hook only reads a string that nothing writes.
    const char* env = std::getenv("SOCKET_IO_CLIENT");
    const std::string bundle_path = env && *env ? env : "node_modules/socket.io-client/dist/socket.io.min.js";
    opts.on_http = [bundle = file_bytes(bundle_path.c_str()),
                    missing = "socket.io-client's bundle is not at " + bundle_path +
                              " (run `npm install socket.io-client` there, or set SOCKET_IO_CLIENT)\n"](
                       const gw::http_request& r) -> std::optional<gw::http_response> {
        if (r.method() != "GET") return std::nullopt;
        if (r.path() == "/" || r.path() == "/index.html")
            return gw::http_response{200, std::string(chat_page), "text/html; charset=utf-8"};
        if (r.path() == "/socket.io.min.js")
            return bundle ? gw::http_response{200, *bundle, "text/javascript; charset=utf-8"} : gw::http_response{404, missing};
        return std::nullopt;   // anything else: 426 Upgrade Required, as before
    };
    gw::gateway app{io, opts, limits};
    // The hooks of sockets on different workers run on different threads: shared state is locked.
    std::mutex online_lock;
    std::map<std::string, int> online;   // user id -> connected sockets (one user, several devices)

    auto chat = app.of("/chat");
    chat.use(authenticate);
    chat.on_connect([&](gw::socket& s) {
        s.join("user:" + user_of(s));   // private messages reach every device of a user
        std::lock_guard hold(online_lock);
        ++online[user_of(s)];
    });
    chat.on_disconnect([&](gw::socket& s, std::string_view) {
        std::lock_guard hold(online_lock);
        if (--online[user_of(s)] == 0) online.erase(user_of(s));
    });

    chat.on("message", gw::validate([](const json& d) { return is_string_field(d, "text"); }, "text is required") |
                           [chat](gw::socket& s, json d) -> asio::awaitable<void> {
                               json out = {{"from", user_of(s)}, {"text", d["text"]}};
                               co_await chat.emit("receiveMessage", out);
                           });
    chat.on("joinRoom", gw::validate([](const json& d) { return is_string_field(d, "room"); }, "room is required") |
                            [](gw::socket& s, json d) -> asio::awaitable<void> {
                                const std::string room = chat_room(d);
                                if (s.in(room)) co_return;
                                s.join(room);
                                json out = {{"userId", user_of(s)}, {"room", d["room"]}};
                                co_await s.to(room).emit("userJoined", out);
                            });
    chat.on("leaveRoom", gw::validate([](const json& d) { return is_string_field(d, "room"); }, "room is required") |
                             [](gw::socket& s, json d) -> asio::awaitable<void> {
                                 const std::string room = chat_room(d);
                                 if (!s.in(room)) co_return;
                                 s.leave(room);
                                 json out = {{"userId", user_of(s)}, {"room", d["room"]}};
                                 co_await s.to(room).emit("userLeft", out);
                             });
    chat.on("roomMessage",
            gw::validate([](const json& d) { return is_string_field(d, "room") && is_string_field(d, "message"); },
                         "room and message are required") |
                [](gw::socket& s, json d) -> asio::awaitable<void> {
                    json out = {{"from", user_of(s)}, {"room", d["room"]}, {"message", d["message"]}};
                    co_await s.to(chat_room(d)).emit("receiveRoomMessage", out);
                });
    chat.on("privateMessage",
            gw::validate([](const json& d) { return is_string_field(d, "toUserId") && is_string_field(d, "message"); },
                         "toUserId and message are required") |
                [chat](gw::socket& s, json d) -> asio::awaitable<void> {
                    json out = {{"from", user_of(s)}, {"message", d["message"]}};
                    co_await chat.to("user:" + d["toUserId"].get<std::string>()).emit("receivePrivateMessage", out);
                });
#if defined(GATEWAY_REDIS)
    // Made after the gateway, so destroyed before it.
    std::unique_ptr<gw::redis::cluster> cluster;
    if (const char* url = std::getenv("REDIS_URL"); url && *url) {
        cluster = std::make_unique<gw::redis::cluster>(app, gw::redis::cluster_options{.url = url});
        std::printf("cluster: %s\n", url);
    }
#endif
    chat.on("onlineCount", [&, chat](gw::socket&) -> asio::awaitable<std::size_t> {
#if defined(GATEWAY_REDIS)
        if (cluster) {   // the users of every instance: each socket is in its user's room
            std::set<std::string> users;
            for (const auto& s : co_await chat.sockets().fetch_sockets())
                for (const auto& r : s.rooms)
                    if (r.starts_with("user:")) users.insert(r);
            co_return users.size();
        }
#endif
        std::lock_guard hold(online_lock);
        co_return online.size();
    });
    chat.on("secret", gw::guard([](gw::socket& s) { return user_of(s) == "admin"; }) |
                          [](gw::socket&) { return json{{"secret", "the admin password is not in this example"}}; });

    std::printf("listening on port %u\n", static_cast<unsigned>(app.port()));
    std::fflush(stdout);
    asio::signal_set signals{io, SIGINT, SIGTERM};
    // A graceful exit: every connection gets 1001 after what was queued for it (at most 10 s).
    signals.async_wait([&](std::error_code, int) {
        asio::co_spawn(io, app.stop(), [&](std::exception_ptr) { io.stop(); });
    });
    io.run();
    return 0;
}
