// Benchmark peer on Boost.Beast with C++20 coroutines for gateway.hpp, following
// bench/PROTOCOL.md. Usage: beast_echo PORT [raw|events]   (PORT 0 picks a free port)
//   raw (default): echoes text as text and binary as binary.
//   events: JSON envelopes {"event": E, "data": X}: echo, join (a room), broadcast
//           (to room "bench"); needs nlohmann/json at build time (PEER_HAS_JSON).
// Prints "listening on port N" once listening. On SIGINT/SIGTERM it stops accepting, closes
// its sessions with 1001 (going away), gives them 1 s to answer, and exits 0.
// Single thread.

// <utility> first: Boost 1.74's awaitable.hpp uses std::exchange without it.
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#ifdef PEER_HAS_JSON
#include <nlohmann/json.hpp>
#endif

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

enum class mode { raw, events };

class session;

// What the sessions of the one server thread share; no locking needed. Sessions are listed by
// raw pointer: each takes itself off every list when its reader ends, before it can be freed.
struct hub {
    mode how = mode::raw;
    std::unordered_set<session*> live;  // so that a signal can close them
    std::unordered_map<std::string, std::unordered_set<session*>> rooms;
    bool stopping = false;
    asio::steady_timer* deadline = nullptr;  // armed while stopping
};

// One WebSocket connection. In raw mode a single coroutine reads and writes in turn. In events
// mode a message may be owed to a session by another one (a broadcast), so every outgoing
// message goes through the outbox, drained by that session's own writer coroutine: Beast
// allows one write in flight per stream, and the writer is the only one that writes.
class session : public std::enable_shared_from_this<session> {
public:
    using message = std::shared_ptr<const std::string>;

    session(tcp::socket socket, hub& h) : ws_(std::move(socket)), wake_(ws_.get_executor()), hub_(h) {
        wake_.expires_at(asio::steady_timer::time_point::max());
        hub_.live.insert(this);
    }

    static asio::awaitable<void> run(std::shared_ptr<session> self) {
        try {
            co_await self->start();
            if (self->hub_.how == mode::events) {
                asio::co_spawn(self->ws_.get_executor(), write_loop(self), asio::detached);
                co_await self->read_events();
            } else {
                co_await self->echo_raw();
            }
        } catch (...) {
            // closed, reset or protocol error: end the session quietly. Whatever it was,
            // finish() must run, or the rooms would keep a pointer to a freed session.
        }
        self->finish();
    }

    // Queues a message for the writer. Several sessions may hold the same string.
    void send(message m) {
        if (closing_ || ended_) return;
        outbox_.push_back(std::move(m));
        if (parked_) wake_.cancel();
    }

    // Says goodbye (1001) without cutting a write short; the reader ends when the peer answers.
    void shutdown() {
        if (!open_) {
            abort();  // still in the opening handshake: nothing to say goodbye on
            return;
        }
        if (closing_) return;
        closing_ = true;
        if (hub_.how == mode::events) {
            if (parked_) wake_.cancel();  // the writer flushes its outbox, then closes
        } else if (!writing_) {
            close_raw();  // the raw echo loop is reading; Beast allows a close beside a read
        }
    }

private:
    asio::awaitable<void> start() {
        beast::get_lowest_layer(ws_).set_option(tcp::no_delay(true));
        ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
        ws_.read_message_max(64 * 1024 * 1024);
        ws_.auto_fragment(false);
        co_await ws_.async_accept(asio::use_awaitable);
        open_ = true;
        if (hub_.stopping) shutdown();  // accepted while the signal was being handled
    }

    asio::awaitable<void> echo_raw() {
        beast::flat_buffer buffer;
        for (;;) {
            co_await ws_.async_read(buffer, asio::use_awaitable);
            // Once the close frame is out, Beast takes no more writes.
            if (!closing_) {
                ws_.text(ws_.got_text());
                writing_ = true;
                co_await ws_.async_write(buffer.data(), asio::use_awaitable);
                writing_ = false;
                if (closing_) close_raw();  // the signal came during the write
            }
            buffer.consume(buffer.size());
        }
    }

    void close_raw() {
        ws_.async_close(websocket::close_code::going_away, [self = shared_from_this()](beast::error_code) {});
    }

    asio::awaitable<void> read_events();

    static asio::awaitable<void> write_loop(std::shared_ptr<session> self) {
        session& s = *self;
        s.ws_.text(true);
        std::vector<message> batch;
        beast::error_code ec;
        for (;;) {
            while (s.outbox_.empty() && !s.closing_ && !s.ended_) {
                s.parked_ = true;
                co_await s.wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
                s.parked_ = false;
            }
            if (s.ended_) co_return;
            if (s.outbox_.empty()) {  // closing, and everything queued before it is written
                co_await s.ws_.async_close(websocket::close_code::going_away,
                                           asio::redirect_error(asio::use_awaitable, ec));
                co_return;
            }
            // Swap rather than pop one by one: messages queued during these writes land in
            // the (empty) vector swapped in, and keep their order.
            batch.swap(s.outbox_);
            for (const message& m : batch) {
                co_await s.ws_.async_write(asio::buffer(*m), asio::redirect_error(asio::use_awaitable, ec));
                if (ec || s.ended_) {
                    s.abort();  // wakes the reader if it is still waiting
                    co_return;
                }
            }
            batch.clear();
        }
    }

    void abort() {
        beast::error_code ignored;
        beast::get_lowest_layer(ws_).close(ignored);
    }

    // The reader is done: nothing more can be delivered to this session.
    void finish() {
        ended_ = true;
        outbox_.clear();
        wake_.cancel();
        for (const std::string& name : joined_) {
            auto room = hub_.rooms.find(name);
            if (room == hub_.rooms.end()) continue;
            room->second.erase(this);
            if (room->second.empty()) hub_.rooms.erase(room);
        }
        joined_.clear();
        hub_.live.erase(this);
        if (hub_.stopping && hub_.live.empty() && hub_.deadline) hub_.deadline->cancel();
    }

    websocket::stream<tcp::socket> ws_;
    asio::steady_timer wake_;  // the parked writer waits on it; cancel() wakes it
    hub& hub_;
    std::vector<message> outbox_;
    std::vector<std::string> joined_;
    bool open_ = false;     // opening handshake done
    bool writing_ = false;  // raw mode: a write is in flight
    bool parked_ = false;   // events mode: the writer waits for work
    bool closing_ = false;  // a close was asked for: no more messages
    bool ended_ = false;    // the reader has finished

    friend void on_event(session&, std::string_view);
};

#ifdef PEER_HAS_JSON

// ordered_json keeps the keys of an object in the order they came: X is echoed unchanged, where
// nlohmann::json would sort them.
using json = nlohmann::ordered_json;

// dump() recurses once per nesting level, so a deep enough array in one message (the size limit
// allows millions of '[') would overflow the stack when echoed. Deeper messages are ignored.
constexpr int max_depth = 512;

// The envelope is written by hand around the serialized data: "event" comes first as the
// protocol asks, and data is not copied into a second object just to be dumped.
session::message envelope(std::string_view event, const json& data) {
    std::string out = R"({"event":")";
    out += event;
    out += R"(","data":)";
    // replace, not throw: a handler must not throw. Input strings were checked as UTF-8 by
    // both Beast and the parser, so nothing is replaced in practice.
    out += data.dump(-1, ' ', false, json::error_handler_t::replace);
    out += '}';
    return std::make_shared<const std::string>(std::move(out));
}

void on_event(session& s, std::string_view text) {
    bool too_deep = false;
    const json::parser_callback_t depth_guard = [&too_deep](int depth, json::parse_event_t, json&) {
        if (depth <= max_depth) return true;
        too_deep = true;
        return false;  // drop the value; the message is ignored below anyway
    };
    const json msg = json::parse(text.begin(), text.end(), depth_guard, /*allow_exceptions=*/false);
    if (too_deep || !msg.is_object()) return;  // a parse error gives a discarded value: not an object
    const auto event = msg.find("event");
    if (event == msg.end() || !event->is_string()) return;
    static const json absent;  // a missing "data" counts as null
    const auto found = msg.find("data");
    const json& data = found != msg.end() ? *found : absent;
    const auto& name = event->get_ref<const std::string&>();

    hub& h = s.hub_;
    if (name == "echo") {
        s.send(envelope("echo", data));
    } else if (name == "join") {
        if (!data.is_string()) return;
        const auto& room = data.get_ref<const std::string&>();
        if (h.rooms[room].insert(&s).second) s.joined_.push_back(room);
        s.send(envelope("join", data));
    } else if (name == "broadcast") {
        const auto room = h.rooms.find("bench");
        if (room == h.rooms.end()) return;
        const session::message frame = envelope("broadcast", data);
        for (session* member : room->second) member->send(frame);
    }
}

asio::awaitable<void> session::read_events() {
    beast::flat_buffer buffer;
    for (;;) {
        co_await ws_.async_read(buffer, asio::use_awaitable);
        if (ws_.got_text() && !closing_) {
            const auto bytes = buffer.cdata();
            try {
                on_event(*this, std::string_view(static_cast<const char*>(bytes.data()), bytes.size()));
            } catch (const std::exception&) {
                // e.g. bad_alloc: drop this message, keep the session and the server
            }
        }
        buffer.consume(buffer.size());
    }
}

#else

asio::awaitable<void> session::read_events() {
    co_return;  // unreachable: main refuses events mode without nlohmann/json
}

#endif  // PEER_HAS_JSON

asio::awaitable<void> listener(tcp::acceptor& acceptor, hub& h) {
    for (;;) {
        boost::system::error_code ec;
        tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            if (ec == asio::error::operation_aborted || h.stopping) co_return;
            continue;  // e.g. EMFILE: keep serving the connections we have
        }
        if (h.stopping) co_return;  // accepted just before the acceptor closed
        auto s = std::make_shared<session>(std::move(socket), h);
        asio::co_spawn(acceptor.get_executor(), session::run(std::move(s)), asio::detached);
    }
}

int usage() {
    std::cerr << "usage: beast_echo PORT [raw|events]\n";
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || argc > 3) return usage();
    char* end = nullptr;
    const long port = std::strtol(argv[1], &end, 10);
    if (end == argv[1] || *end != '\0' || port < 0 || port > 65535) return usage();
    const std::string_view mode_arg = argc == 3 ? argv[2] : "raw";
    // Declared before the io_context: coroutine frames still suspended when it is destroyed
    // are destroyed with it, and the sessions in them point here.
    hub h;
    if (mode_arg == "raw") {
        h.how = mode::raw;
    } else if (mode_arg == "events") {
        h.how = mode::events;
    } else {
        return usage();
    }
#ifndef PEER_HAS_JSON
    if (h.how == mode::events) {
        std::cerr << "beast_echo: built without nlohmann/json, so events mode is unavailable\n";
        return 2;
    }
#endif
    try {
        asio::io_context ioc(1);
        tcp::acceptor acceptor(ioc);
        const tcp::endpoint ep(asio::ip::address_v4::loopback(), static_cast<unsigned short>(port));
        acceptor.open(ep.protocol());
        acceptor.set_option(asio::socket_base::reuse_address(true));
        acceptor.bind(ep);
        acceptor.listen(4096);

        // A client that never answers the close frame must not keep the process alive.
        asio::steady_timer deadline(ioc);
        h.deadline = &deadline;
        asio::signal_set signals(ioc, SIGINT, SIGTERM);
        signals.async_wait([&](const boost::system::error_code& error, int) {
            if (error) return;
            h.stopping = true;
            boost::system::error_code ignored;
            acceptor.close(ignored);
            if (h.live.empty()) return;  // nothing else keeps run() going
            // Walk a copy: shutdown() only starts operations, but a session ending would
            // edit the set under the loop.
            const std::vector<session*> live(h.live.begin(), h.live.end());
            for (session* s : live) s->shutdown();
            deadline.expires_after(std::chrono::seconds(1));
            deadline.async_wait([&ioc](const boost::system::error_code& e) {
                if (!e) ioc.stop();
            });
        });

        asio::co_spawn(ioc, listener(acceptor, h), asio::detached);
        std::cout << "listening on port " << acceptor.local_endpoint().port() << std::endl;
        ioc.run();
        h.deadline = nullptr;
    } catch (const std::exception& e) {
        std::cerr << "beast_echo: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
