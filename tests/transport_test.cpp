// The transport seam (include/gw/net/transport.hpp) proved by a second implementation: a transport
// that lives in memory drives a namespace's handlers, hooks, rooms and acknowledgements with no
// socket at all, through gw::gateway::serve().
#include <gateway.hpp>

#include "support.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace {

using asio::awaitable;
using gw::json;

/// A client connection held in memory: the test delivers its messages and reads what the gateway
/// sent it; closing ends its reading as a peer's close would.
class memory_transport final : public gw::transport {
public:
    memory_transport(asio::io_context& io, std::string path) : io_(io), signal_(io) {
        signal_.expires_at(asio::steady_timer::time_point::max());
        const auto err = gw::detail::request_parser::parse("GET " + path + " HTTP/1.1\r\nHost: memory\r\n\r\n", request_);
        EXPECT_EQ(err.status, 0);
    }

    // ---- the test's side: the client ----
    void deliver(json envelope) { deliver_text(envelope.dump()); }
    void deliver_text(std::string text) {
        ASSERT_TRUE(sink_) << "not started";
        sink_->on_message(gw::message{std::move(text), false});
    }
    /// The client goes: reading ends, the gateway says farewell.
    void hang_up() {
        open_ = false;
        end_reading();
    }
    /// The next message the gateway sent this client, parsed.
    awaitable<json> next() {
        while (sent_.empty()) co_await signal_.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
        json j = json::parse(sent_.front());
        sent_.pop_front();
        co_return j;
    }
    /// Waits until the gateway released the transport: the socket's farewell is over.
    awaitable<void> until_released() {
        while (!released) co_await signal_.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    }
    std::size_t pending() const noexcept { return sent_.size(); }
    bool started() const noexcept { return sink_ != nullptr; }
    gw::close_code closed_with = gw::close_code::no_status;
    std::string closed_because;
    bool released = false;

    // ---- the transport ----
    void start(std::shared_ptr<gw::transport_sink> sink) override { sink_ = std::move(sink); }
    void send_text(std::string text, bool = true) override {
        if (!open_) throw std::system_error(gw::errc::closed);
        push(std::move(text));
    }
    void send_prepared(const std::shared_ptr<const gw::prepared>& p, bool) override {
        if (open_) push(p->text());
    }
    std::size_t buffered() const noexcept override { return 0; }
    bool above_high_water() const noexcept override { return false; }
    awaitable<void> drained() override { co_return; }
    void on_drain(void (*)(void*), void*) override {}
    void set_overflow(gw::overflow) override {}
    bool is_open() const noexcept override { return open_; }
    void close_soon(gw::close_code code, std::string_view reason) override {
        if (!open_) return;
        open_ = false;
        closed_with = code;
        closed_because = reason;
        // The peer answers at once; its reader then ends, as a WebSocket's would on the close frame.
        asio::post(io_, [this] { end_reading(); });
    }
    awaitable<void> close(gw::close_code code, std::string_view reason) override {
        close_soon(code, reason);
        co_return;
    }
    awaitable<std::string> settle() override { co_return std::string(); }
    awaitable<void> release() override {
        released = true;
        signal_.cancel();
        co_return;
    }
    asio::any_io_executor executor() const override { return io_.get_executor(); }
    bool on_own_thread() const noexcept override { return io_.get_executor().running_in_this_thread(); }
    gw::http_request& request() noexcept override { return request_; }

private:
    void push(std::string text) {
        sent_.push_back(std::move(text));
        signal_.cancel();
    }
    void end_reading() {
        if (auto s = std::move(sink_)) s->on_end();
    }
    asio::io_context& io_;
    asio::steady_timer signal_;   // cancelled whenever something was sent or released
    gw::http_request request_;
    std::shared_ptr<gw::transport_sink> sink_;
    std::deque<std::string> sent_;
    bool open_ = true;
};

gw::options local() {
    gw::options o;
    o.host = "127.0.0.1";
    return o;
}

json envelope(std::string_view event, json data, json id = nullptr) {
    json j{{"event", event}, {"data", std::move(data)}};
    if (!id.is_null()) j["id"] = std::move(id);
    return j;
}

TEST(Transport, InMemoryClientRunsHandlersAndHooks) {
    asio::io_context io;
    gw::gateway app{io, local()};
    std::vector<std::string> log;
    auto chat = app.of("/chat");
    chat.on_connect([&](gw::socket& s) -> awaitable<void> {
        log.push_back("connect " + std::string(s.handshake().path()));
        co_await s.emit("welcome", s.handshake().query_param("name").value_or(std::string("?")));
    });
    chat.on("echo", [](gw::socket&, json d) { return d; });
    chat.on("slow", [](gw::socket&, int n) -> awaitable<int> { co_return n * 2; });
    chat.on_disconnect([&](gw::socket&, std::string_view why) { log.push_back("disconnect " + std::string(why)); });

    auto t = std::make_shared<memory_transport>(io, "/chat?name=ada");
    // Braced lists stay out of the coroutines: GCC 12 cannot keep their arrays in a frame.
    const json object = {{"a", 1}};
    test::run(io, [&]() -> awaitable<void> {
        EXPECT_EQ(app.serve(t), std::nullopt);
        EXPECT_EQ(co_await t->next(), envelope("welcome", "ada"));
        EXPECT_TRUE(t->started());
        t->deliver(envelope("echo", object, 7));
        EXPECT_EQ(co_await t->next(), envelope("echo", object, 7));
        t->deliver(envelope("slow", 21, "x"));
        EXPECT_EQ(co_await t->next(), envelope("slow", 42, "x"));
        t->deliver(envelope("nobody", 1));
        const json missing = co_await t->next();
        EXPECT_EQ(missing["data"]["message"], std::string("There is no handler for event \"nobody\""));
        EXPECT_EQ(chat.count(), 1u);
        t->hang_up();
        co_await t->until_released();
        EXPECT_EQ(chat.count(), 0u);
    }());
    EXPECT_EQ(log, (std::vector<std::string>{"connect /chat", "disconnect client disconnect"}));
}

TEST(Transport, InMemoryClientsShareRoomsAndBroadcasts) {
    asio::io_context io;
    gw::gateway app{io, local()};
    auto ns = app.of("/");
    ns.on("join", [](gw::socket& s, std::string room) {
        s.join(room);
        return s.rooms().size();
    });
    ns.on("say", [](gw::socket& s, json d) -> awaitable<void> { co_await s.to(d["room"]).emit("said", d["text"]); });
    auto a = std::make_shared<memory_transport>(io, "/");
    auto b = std::make_shared<memory_transport>(io, "/");
    auto c = std::make_shared<memory_transport>(io, "/");
    const std::vector<std::shared_ptr<memory_transport>> all{a, b, c}, stay{a, c};
    const json hi = {{"room", "lobby"}, {"text", "hi"}};
    test::run(io, [&]() -> awaitable<void> {
        for (auto& t : all) EXPECT_EQ(app.serve(t), std::nullopt);
        a->deliver(envelope("join", "lobby"));
        b->deliver(envelope("join", "lobby"));
        EXPECT_EQ((co_await a->next())["data"], 2);   // its id-room and the lobby
        EXPECT_EQ((co_await b->next())["data"], 2);
        EXPECT_EQ(co_await ns.to("lobby").count(), 2u);
        // A room broadcast reaches the members but the sender; one encoding serves them all.
        a->deliver(envelope("say", hi));
        EXPECT_EQ(co_await b->next(), envelope("said", "hi"));
        co_await ns.to("lobby").emit("news", 1);
        EXPECT_EQ(co_await a->next(), envelope("news", 1));
        EXPECT_EQ(co_await b->next(), envelope("news", 1));
        co_await ns.emit("all", true);
        for (auto& t : all) EXPECT_EQ(co_await t->next(), envelope("all", true));
        EXPECT_EQ(c->pending(), 0u);   // not in the lobby: saw only the namespace-wide emit
        // Out of its rooms once gone.
        b->hang_up();
        co_await b->until_released();
        EXPECT_EQ(co_await ns.to("lobby").count(), 1u);
        for (auto& t : stay) t->hang_up();
        for (auto& t : stay) co_await t->until_released();
    }());
}

TEST(Transport, InMemoryClientAnswersAnEmitWithAck) {
    asio::io_context io;
    gw::gateway app{io, local()};
    json answer;
    app.of("/").on("ask", [&](gw::socket& s) -> awaitable<void> {
        answer = co_await s.emit_with_ack("question", "ready?", std::chrono::seconds(10));
    });
    auto t = std::make_shared<memory_transport>(io, "/");
    test::run(io, [&]() -> awaitable<void> {
        EXPECT_EQ(app.serve(t), std::nullopt);
        t->deliver(envelope("ask", nullptr));
        const json q = co_await t->next();
        EXPECT_EQ(q["event"], std::string("question"));
        EXPECT_TRUE(q.contains("ack"));
        json reply = json::object();
        reply["event"] = "ack";
        reply["ack"] = q["ack"];
        reply["data"] = "yes";
        t->deliver(reply);
        while (answer.is_null()) co_await asio::post(io, asio::use_awaitable);
        EXPECT_EQ(answer, json("yes"));
        t->hang_up();
        co_await t->until_released();
    }());
}

/// A format whose events take two messages, the event's name and then its JSON data: its decoder
/// keeps the name in between, one decoder per session.
class two_part_codec final : public gw::codec {
public:
    struct two_part_decoder final : gw::decoder {
        std::optional<std::string> name;
        std::optional<gw::event> feed(gw::message&& m, std::string& error) override {
            if (!name) {
                name = std::move(m.data);
                return std::nullopt;   // the data is still to come
            }
            gw::event e;
            e.name = std::move(*name);
            name.reset();
            if (!json::accept(m.data)) {
                error = "the data is not JSON";
                return std::nullopt;
            }
            e.data = json::parse(m.data);
            return e;
        }
    };
    std::unique_ptr<gw::decoder> make_decoder() const override { return std::make_unique<two_part_decoder>(); }
    std::optional<gw::event> decode(const gw::message&, std::string& error) const override {
        error = "a two-part event needs its session's decoder";
        return std::nullopt;
    }
    std::string encode(std::string_view name, const json& data, const json& id, std::int64_t ack, bool = false) const override {
        return gw::nest_codec().encode(name, data, id, ack);
    }
};

TEST(Transport, EachSessionDecodesWithItsOwnDecoder) {
    asio::io_context io;
    gw::gateway app{io, local()};
    app.set_codec(std::make_unique<two_part_codec>());
    app.of("/").on("sum", [](gw::socket&, std::vector<int> v) {
        int n = 0;
        for (int x : v) n += x;
        return n;
    });
    auto a = std::make_shared<memory_transport>(io, "/");
    auto b = std::make_shared<memory_transport>(io, "/");
    test::run(io, [&]() -> awaitable<void> {
        EXPECT_EQ(app.serve(a), std::nullopt);
        EXPECT_EQ(app.serve(b), std::nullopt);
        // The parts of two events interleave across the sessions: each decoder keeps its own.
        a->deliver_text("sum");
        b->deliver_text("sum");
        a->deliver_text("[1,2]");
        b->deliver_text("[30,40,50]");
        EXPECT_EQ(co_await a->next(), envelope("sum", 3));
        EXPECT_EQ(co_await b->next(), envelope("sum", 120));
        a->deliver_text("sum");
        a->deliver_text("not json");
        const json bad = co_await a->next();
        EXPECT_EQ(bad["event"], std::string("exception"));
        EXPECT_EQ(bad["data"]["message"], std::string("the data is not JSON"));
        EXPECT_EQ(a->pending() + b->pending(), 0u);
        a->hang_up();
        b->hang_up();
        co_await a->until_released();
        co_await b->until_released();
    }());
}

TEST(Transport, MiddlewareAndServerDisconnectGoThroughTheTransport) {
    asio::io_context io;
    gw::gateway app{io, local()};
    std::string reason;
    auto ns = app.of("/private");
    ns.use([](gw::http_request& req) -> std::optional<gw::http_response> {
        if (req.query_param("token") != "good") return gw::http_response{401, "no\n"};
        req.attachment = std::string("alice");
        return std::nullopt;
    });
    ns.on("whoami", [](gw::socket& s) { return s.data_as<std::string>(); });
    ns.on("leave", [](gw::socket& s) -> awaitable<void> { co_await s.disconnect(gw::close_code::normal, "bye"); });
    ns.on_disconnect([&](gw::socket&, std::string_view why) { reason = why; });
    auto nowhere = std::make_shared<memory_transport>(io, "/missing");
    auto refused = std::make_shared<memory_transport>(io, "/private?token=bad");
    auto t = std::make_shared<memory_transport>(io, "/private?token=good");
    test::run(io, [&]() -> awaitable<void> {
        auto r = app.serve(nowhere);
        EXPECT_TRUE(r && r->status == 404);
        r = app.serve(refused);
        EXPECT_TRUE(r && r->status == 401);
        EXPECT_FALSE(refused->started());
        EXPECT_EQ(app.serve(t), std::nullopt);
        t->deliver(envelope("whoami", nullptr, 1));
        EXPECT_EQ(co_await t->next(), envelope("whoami", "alice", 1));
        t->deliver(envelope("leave", nullptr));
        co_await t->until_released();
        EXPECT_EQ(t->closed_with, gw::close_code::normal);
        EXPECT_EQ(t->closed_because, std::string("bye"));
    }());
    EXPECT_EQ(reason, "server disconnect");
}

} // namespace
