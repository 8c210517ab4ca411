// Redis test support: a real redis-server on a free loopback port, started and stopped by the test,
// and a signal a coroutine can wait on until a callback says something happened.
#pragma once

#include "support.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace test::redis {

/// A loopback port nobody listens on (bound once and released).
inline std::uint16_t free_port() {
    asio::io_context io;
    asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
    return a.local_endpoint().port();
}

/// True when redis-server is on the PATH.
inline bool available() {
    return std::system("command -v redis-server >/dev/null 2>&1") == 0;
}

/// redis-server on 127.0.0.1 without persistence. start() waits until it says it is ready (by its
/// log on stdout); the destructor stops it (SIGTERM, then waits for it). It can be stopped and
/// started again on the same port.
class server {
public:
    explicit server(std::vector<std::string> extra = {}, bool tls = false)
        : port_(free_port()), extra_(std::move(extra)), tls_(tls) {
        start();
    }
    /// On a port of the caller's: one that a client already tries to reach.
    explicit server(std::uint16_t port) : port_(port), tls_(false) { start(); }
    server(const server&) = delete;
    server& operator=(const server&) = delete;
    ~server() { stop(); }

    void start() {
        std::vector<std::string> argv{"redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"};
        if (tls_) {
            argv.insert(argv.end(), {"--port", "0", "--tls-port", std::to_string(port_)});
        } else {
            argv.insert(argv.end(), {"--port", std::to_string(port_)});
        }
        argv.insert(argv.end(), extra_.begin(), extra_.end());
        int out[2];
        if (pipe(out) != 0) throw std::runtime_error("pipe failed");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        posix_spawn_file_actions_adddup2(&fa, out[1], 2);
        posix_spawn_file_actions_addclose(&fa, out[0]);
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(a.data());
        args.push_back(nullptr);
        const int rc = posix_spawnp(&pid_, args[0], &fa, nullptr, args.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        ::close(out[1]);
        if (rc != 0) {
            ::close(out[0]);
            pid_ = -1;
            throw std::runtime_error("cannot start redis-server");
        }
        stdout_ = out[0];
        // Its log says when it accepts connections: no sleeping and polling.
        std::string seen, line;
        char ch;
        while (::read(stdout_, &ch, 1) == 1) {
            if (ch != '\n') {
                line += ch;
                continue;
            }
            seen += line + "\n";
            if (line.find("Ready to accept connections") != std::string::npos) return;
            line.clear();
        }
        stop();
        throw std::runtime_error("redis-server exited before it was ready:\n" + seen + line);
    }

    /// Stops it with sig (SIGTERM: a clean shutdown; SIGKILL: as if it crashed) and waits for it.
    void stop(int sig = SIGTERM) {
        if (pid_ > 0) {
            ::kill(pid_, sig);
            int status = 0;
            waitpid(pid_, &status, 0);
            pid_ = -1;
        }
        if (stdout_ >= 0) ::close(stdout_);
        stdout_ = -1;
    }

    std::uint16_t port() const { return port_; }
    /// redis://127.0.0.1:PORT with optional "user:password@" and "/db".
    std::string url(const std::string& userinfo = {}, const std::string& db = {}) const {
        return std::string(tls_ ? "rediss://" : "redis://") + (userinfo.empty() ? "" : userinfo + "@") + "127.0.0.1:" +
               std::to_string(port_) + (db.empty() ? "" : "/" + db);
    }

private:
    std::uint16_t port_;
    std::vector<std::string> extra_;
    bool tls_;
    pid_t pid_ = -1;
    int stdout_ = -1;
};

/// Wakes a waiting coroutine when a callback notifies; the coroutine checks its condition each time.
struct event {
    asio::steady_timer timer;
    explicit event(asio::io_context& io) : timer(io, asio::steady_timer::time_point::max()) {}
    void notify() { timer.cancel(); }
    template <class F> asio::awaitable<void> until(F done) {
        while (!done()) co_await timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    }
};

} // namespace test::redis

#define REQUIRE_REDIS_SERVER()                                                   \
    do {                                                                         \
        if (!test::redis::available()) GTEST_SKIP() << "redis-server not found"; \
    } while (0)
