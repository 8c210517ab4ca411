// Benchmark peer on WebSocket++ (asio_no_tls config) for gateway.hpp, following
// bench/PROTOCOL.md. Usage: websocketpp_echo PORT [raw|events]   (PORT 0 picks a free port)
//   raw (default): echoes text as text and binary as binary.
//   events: JSON envelopes {"event": E, "data": X}: echo, join (a room), broadcast
//           (to room "bench"); needs nlohmann/json at build time (PEER_HAS_JSON).
// Prints "listening on port N" once listening. On SIGINT/SIGTERM it stops accepting, closes
// its connections with 1001 (going away), gives them 1 s to answer, and exits 0.
// Single thread; access and error logging off.

#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/server.hpp>

#ifdef PEER_HAS_JSON
#include <nlohmann/json.hpp>
#endif

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace {

// WebSocket++ derives its connection class from config::connection_base, so this is where a
// connection can remember the rooms it joined: closing it then leaves exactly those rooms.
struct peer_config : websocketpp::config::asio {
    struct connection_base {
        std::vector<std::string> joined;
    };
};

using server_t = websocketpp::server<peer_config>;
using connection_ptr = server_t::connection_ptr;
namespace wsasio = websocketpp::lib::asio;

enum class mode { raw, events };

// State shared by every connection of the one server thread; no locking needed.
struct peer_state {
    // Open connections, kept so that a signal can close them.
    std::unordered_set<connection_ptr> open;
    std::unordered_map<std::string, std::unordered_set<connection_ptr>> rooms;
    bool stopping = false;
};

void leave_rooms(peer_state& st, const connection_ptr& con) {
    for (const std::string& name : con->joined) {
        auto room = st.rooms.find(name);
        if (room == st.rooms.end()) continue;
        room->second.erase(con);
        if (room->second.empty()) st.rooms.erase(room);
    }
    con->joined.clear();
}

#ifdef PEER_HAS_JSON

// ordered_json keeps the keys of an object in the order they came: X is echoed unchanged, where
// nlohmann::json would sort them.
using json = nlohmann::ordered_json;

// dump() recurses once per nesting level, so a deep enough array in one message (the size limit
// allows millions of '[') would overflow the stack when echoed. Deeper messages are ignored.
constexpr int max_depth = 512;

// The envelope is written by hand around the serialized data: "event" comes first as the
// protocol asks, and data is not copied into a second object just to be dumped.
std::string envelope(std::string_view event, const json& data) {
    std::string out = R"({"event":")";
    out += event;
    out += R"(","data":)";
    // replace, not throw: a handler must not throw. Input strings were checked as UTF-8 by
    // both WebSocket++ and the parser, so nothing is replaced in practice.
    out += data.dump(-1, ' ', false, json::error_handler_t::replace);
    out += '}';
    return out;
}

// Frames a text message once for every recipient. Server frames are not masked, so the same
// header and payload suit all connections, and WebSocket++ sends a prepared message as it is.
server_t::message_ptr prepare_text(const connection_ptr& any, std::string payload) {
    auto msg = any->get_message(websocketpp::frame::opcode::text, payload.size());
    websocketpp::frame::basic_header head(websocketpp::frame::opcode::text, payload.size(), true, false);
    websocketpp::frame::extended_header ext(payload.size());
    msg->set_header(websocketpp::frame::prepare_header(head, ext));
    msg->get_raw_payload() = std::move(payload);
    msg->set_prepared(true);
    return msg;
}

void on_event(peer_state& st, const connection_ptr& con, const std::string& text) {
    bool too_deep = false;
    const json::parser_callback_t depth_guard = [&too_deep](int depth, json::parse_event_t, json&) {
        if (depth <= max_depth) return true;
        too_deep = true;
        return false;  // drop the value; the message is ignored below anyway
    };
    const json msg = json::parse(text, depth_guard, /*allow_exceptions=*/false);
    if (too_deep || !msg.is_object()) return;  // a parse error gives a discarded value: not an object
    const auto event = msg.find("event");
    if (event == msg.end() || !event->is_string()) return;
    static const json absent;  // a missing "data" counts as null
    const auto found = msg.find("data");
    const json& data = found != msg.end() ? *found : absent;
    const auto& name = event->get_ref<const std::string&>();

    // send() reports failures (a connection already closing) as a returned code: nothing to do.
    if (name == "echo") {
        con->send(envelope("echo", data), websocketpp::frame::opcode::text);
    } else if (name == "join") {
        if (!data.is_string()) return;
        const auto& room = data.get_ref<const std::string&>();
        if (st.rooms[room].insert(con).second) con->joined.push_back(room);
        con->send(envelope("join", data), websocketpp::frame::opcode::text);
    } else if (name == "broadcast") {
        const auto room = st.rooms.find("bench");
        if (room == st.rooms.end()) return;
        const auto frame = prepare_text(con, envelope("broadcast", data));
        for (const connection_ptr& member : room->second) member->send(frame);
    }
}

#endif  // PEER_HAS_JSON

int usage() {
    std::cerr << "usage: websocketpp_echo PORT [raw|events]\n";
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || argc > 3) return usage();
    char* end = nullptr;
    const long port = std::strtol(argv[1], &end, 10);
    if (end == argv[1] || *end != '\0' || port < 0 || port > 65535) return usage();
    const std::string_view mode_arg = argc == 3 ? argv[2] : "raw";
    mode how;
    if (mode_arg == "raw") {
        how = mode::raw;
    } else if (mode_arg == "events") {
        how = mode::events;
    } else {
        return usage();
    }
#ifndef PEER_HAS_JSON
    if (how == mode::events) {
        std::cerr << "websocketpp_echo: built without nlohmann/json, so events mode is unavailable\n";
        return 2;
    }
#endif

    server_t server;
    server.clear_access_channels(websocketpp::log::alevel::all);
    server.clear_error_channels(websocketpp::log::elevel::all);
    server.init_asio();
    server.set_reuse_addr(true);
    server.set_max_message_size(64 * 1024 * 1024);
    server.set_listen_backlog(4096);
    server.set_socket_init_handler([](websocketpp::connection_hdl, wsasio::ip::tcp::socket& s) {
        wsasio::error_code ec;
        s.set_option(wsasio::ip::tcp::no_delay(true), ec);
    });

    // Declared after the server so that it goes first: it holds connections, and they must not
    // outlive the io_service the server owns.
    peer_state st;

    server.set_open_handler([&server, &st](websocketpp::connection_hdl hdl) {
        websocketpp::lib::error_code ec;
        const connection_ptr con = server.get_con_from_hdl(hdl, ec);
        if (ec) return;
        st.open.insert(con);
        if (st.stopping) con->close(websocketpp::close::status::going_away, "", ec);
    });
    server.set_close_handler([&server, &st](websocketpp::connection_hdl hdl) {
        websocketpp::lib::error_code ec;
        const connection_ptr con = server.get_con_from_hdl(hdl, ec);
        if (ec) return;
        leave_rooms(st, con);
        st.open.erase(con);
        // Connections still in their opening handshake would hold run() until their own
        // timeout; nobody is waiting for them.
        if (st.stopping && st.open.empty()) server.stop();
    });

    if (how == mode::raw) {
        server.set_message_handler([&server](websocketpp::connection_hdl hdl, server_t::message_ptr msg) {
            websocketpp::lib::error_code ec;
            server.send(hdl, msg->get_payload(), msg->get_opcode(), ec);
        });
    }
#ifdef PEER_HAS_JSON
    else {
        server.set_message_handler([&server, &st](websocketpp::connection_hdl hdl, server_t::message_ptr msg) {
            if (msg->get_opcode() != websocketpp::frame::opcode::text) return;
            websocketpp::lib::error_code ec;
            const connection_ptr con = server.get_con_from_hdl(hdl, ec);
            if (ec) return;
            try {
                on_event(st, con, msg->get_payload());
            } catch (const std::exception&) {
                // e.g. bad_alloc: drop this message, keep the connection and the server
            }
        });
    }
#endif

    const wsasio::ip::tcp::endpoint ep(wsasio::ip::address_v4::loopback(), static_cast<unsigned short>(port));
    websocketpp::lib::error_code ec;
    server.listen(ep, ec);
    if (ec) {
        std::cerr << "listen: " << ec.message() << "\n";
        return 1;
    }
    wsasio::error_code aec;
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

    // A client that never answers the close frame must not keep the process alive.
    wsasio::steady_timer deadline(server.get_io_service());
    wsasio::signal_set signals(server.get_io_service(), SIGINT, SIGTERM);
    signals.async_wait([&](const wsasio::error_code& error, int) {
        if (error) return;
        st.stopping = true;
        websocketpp::lib::error_code ignored;
        server.stop_listening(ignored);
        if (st.open.empty()) {
            server.stop();
            return;
        }
        // Walk a copy in case close() ends a connection, and so runs the close handler that
        // edits the set, before it returns.
        const std::vector<connection_ptr> open(st.open.begin(), st.open.end());
        for (const connection_ptr& con : open) con->close(websocketpp::close::status::going_away, "", ignored);
        deadline.expires_after(std::chrono::seconds(1));
        deadline.async_wait([&server](const wsasio::error_code& e) {
            if (!e) server.stop();
        });
    });

    std::cout << "listening on port " << local.port() << std::endl;
    server.run();
    return 0;
}
