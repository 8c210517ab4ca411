// alloc_count: heap allocations the server makes per message, in steady state. The server's event
// loop runs on one thread and only that thread's allocations are counted; the clients run on
// another (gw::connect) and are not. After a warm-up, each workload sends a fixed number of
// messages, and the count over them is divided by the messages (or deliveries) the server handled.
// Usage: alloc_count [MESSAGES]   prints one "result workload=allocs ..." line per case (bench/run.sh)
#include "gateway.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <thread>

namespace {

std::atomic<std::uint64_t> server_allocs{0};
thread_local bool counted = false;   // true on the server's thread

} // namespace

void* operator new(std::size_t n) {
    if (counted) server_allocs.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

/// Runs a server on its own counted thread; stops it when destroyed.
struct server_thread {
    asio::io_context io{1};
    asio::executor_work_guard<asio::io_context::executor_type> busy = asio::make_work_guard(io);
    std::thread thread;
    void start() {
        thread = std::thread([this] {
            counted = true;
            io.run();
        });
    }
    void stop() {
        busy.reset();
        io.stop();
        if (thread.joinable()) thread.join();
    }
    ~server_thread() { stop(); }
};

/// Sends `total` messages over `conns` connections, `window` in flight each, waiting for `replies`
/// answers per message; counts the server's allocations over the second half (the first warms up).
struct measure {
    std::uint64_t allocs = 0, messages = 0;
};

asio::awaitable<void> pump(gw::connection& c, std::string text, int count, int window, int replies) {
    int sent = 0, received = 0;
    while (received < count * replies) {
        while (sent < count && sent - received / replies < window) {
            co_await c.send(text);
            ++sent;
        }
        auto m = co_await c.receive();
        if (!m) throw std::runtime_error("connection closed early");
        ++received;
    }
}

/// Opens conns clients to url, then runs two rounds of `per_conn` messages each; returns the
/// second round's count. `extra` clients only receive (broadcast members).
measure run(const std::string& url, std::string text, int conns, int per_conn, int window, int members,
            std::string join_text) {
    asio::io_context client_io{1};
    measure result;
    auto body = [&]() -> asio::awaitable<void> {
        std::vector<gw::connection> senders, listeners;
        for (int i = 0; i < conns; ++i) senders.push_back(co_await gw::connect(url));
        for (int i = 0; i < members; ++i) {
            listeners.push_back(co_await gw::connect(url));
            co_await listeners.back().send(join_text);
            co_await listeners.back().receive();   // the join's reply
        }
        const int replies = members > 0 ? 0 : 1;
        for (int round = 0; round < 2; ++round) {
            const auto before = server_allocs.load();
            for (auto& c : senders) {
                if (members > 0) {
                    for (int k = 0; k < per_conn; ++k) co_await c.send(text);
                } else {
                    co_await pump(c, text, per_conn, window, replies);
                }
            }
            if (members > 0)   // every member receives every broadcast
                for (auto& l : listeners)
                    for (int k = 0; k < conns * per_conn; ++k) co_await l.receive();
            if (round == 1) {
                result.allocs = server_allocs.load() - before;
                result.messages = static_cast<std::uint64_t>(conns) * per_conn * (members > 0 ? members : 1);
            }
        }
        for (auto& c : senders) co_await c.close();
        for (auto& c : listeners) co_await c.close();
    };
    std::exception_ptr failed;
    asio::co_spawn(client_io, body(), [&](std::exception_ptr e) { failed = e; });
    client_io.run();
    if (failed) std::rethrow_exception(failed);
    return result;
}

/// One result line in bench/run.sh's format.
void report(const char* name, const char* proto, const measure& m, const char* unit) {
    std::printf("result workload=allocs mode=allocs server=%s proto=%s per_unit=%.3f unit=%s allocations=%llu units=%llu\n",
                name, proto, m.messages ? static_cast<double>(m.allocs) / static_cast<double>(m.messages) : 0.0, unit,
                static_cast<unsigned long long>(m.allocs), static_cast<unsigned long long>(m.messages));
    std::fflush(stdout);
}

} // namespace

int main(int argc, char** argv) {
    const int messages = argc > 1 ? std::atoi(argv[1]) : 20000;
    if (messages < 100) {
        std::fprintf(stderr, "usage: %s [MESSAGES >= 100]\n", argv[0]);
        return 2;
    }
    const std::string text64(64, 'x');
    const std::string event64 = R"({"event":"echo","data":")" + std::string(40, 'x') + R"("})";
    const std::string broadcast64 = R"({"event":"broadcast","data":")" + std::string(35, 'x') + R"("})";
    const std::string join = R"({"event":"join","data":"bench"})";
    try {
        {   // the core's echo, as examples/01_echo serves it
            server_thread st;
            gw::options o{.host = "127.0.0.1"};
            o.on_connection = [](gw::connection c) {
                auto ex = c.get_executor();
                asio::co_spawn(ex, [](gw::connection c) -> asio::awaitable<void> {
                    while (auto m = co_await c.receive()) co_await c.send(std::move(*m));
                }(std::move(c)), [](std::exception_ptr) {});
            };
            gw::server srv{st.io, std::move(o)};
            st.start();
            report("echo-raw-64", "raw", run("ws://127.0.0.1:" + std::to_string(srv.port()), text64, 10, messages / 10, 10, 0, {}),
                   "message");
            st.stop();   // before the server goes: its loop must not run meanwhile
        }
        {   // the gateway's event echo, join and broadcast, as bench/gateway_echo serves them
            server_thread st;
            gw::gateway app{st.io, {.host = "127.0.0.1"}};
            auto ns = app.of("/");
            ns.on("echo", [](gw::socket&, gw::event& e) {
                return gw::response{e.id.is_null() ? "echo" : "", std::move(e.data)};
            });
            ns.on("join", [](gw::socket& s, std::string room) {
                s.join(room);
                return gw::response{"join", std::move(room)};
            });
            ns.on("broadcast", [ns](gw::socket&, gw::json data) -> asio::awaitable<void> {
                co_await ns.to("bench").emit("broadcast", data);
            });
            st.start();
            const std::string url = "ws://127.0.0.1:" + std::to_string(app.port());
            report("echo-events-64", "events", run(url, event64, 10, messages / 10, 10, 0, {}), "message");
            report("broadcast-1-to-100", "events", run(url, broadcast64, 1, messages / 100, 1, 100, join), "delivery");
            st.stop();
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "alloc_count: %s\n", e.what());
        return 1;
    }
    return 0;
}
