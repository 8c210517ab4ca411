// Redis test support: a real redis-server on a free loopback port, started and stopped by the test;
// a Redis Cluster of three masters made of such servers; and a signal a coroutine can wait on until a
// callback says something happened.
#pragma once

#include "support.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
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
    /// On a port of the caller's, with more arguments.
    server(std::uint16_t port, std::vector<std::string> extra) : port_(port), extra_(std::move(extra)), tls_(false) { start(); }
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

/// True when redis-server and redis-cli (which joins a Redis Cluster) are on the PATH.
inline bool cluster_available() {
    return available() && std::system("command -v redis-cli >/dev/null 2>&1") == 0;
}

/// One command on a fresh connection to 127.0.0.1:port, synchronously (for the test's own checks
/// and set-up, never on a loop the gateways run on while they wait for it): the reply, or an error
/// reply saying why there is none.
inline gw::redis::reply query(std::uint16_t port, const std::vector<std::string>& args) {
    gw::redis::reply out;
    out.type = gw::redis::reply::kind::error;
    const timeval limit{2, 0};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port, limit);
    if (!c || c->err) {
        out.str = c ? c->errstr : "cannot connect";
        if (c) redisFree(c);
        return out;
    }
    redisSetTimeout(c, limit);
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data()));
    if (r) {
        out = gw::redis::detail::from_hiredis(*r);
        freeReplyObject(r);
    } else {
        out.str = c->errstr;
    }
    redisFree(c);
    return out;
}

/// A Redis Cluster of `masters` masters, each with `replicas` replicas, on free loopback ports, its
/// files in a directory of its own: started, joined with `redis-cli --cluster create`, and waited
/// for until every node says cluster_state:ok and every replica's link to its master is up. A
/// node unreachable for 2 s is failed (cluster-node-timeout), and a replica always stands in for its
/// master. The destructor stops the servers and removes the directory.
class cluster {
public:
    explicit cluster(std::size_t masters = 3, std::size_t replicas = 0) {
        char dir[] = "/tmp/gw-redis-cluster-XXXXXX";
        if (!mkdtemp(dir)) throw std::runtime_error("mkdtemp failed");
        dir_ = dir;
        try {
            std::vector<std::string> create{"redis-cli", "--cluster", "create"};
            std::vector<std::uint16_t> taken;
            auto fresh_port = [&] {
                for (;;) {
                    const auto p = free_port();
                    if (std::find(taken.begin(), taken.end(), p) == taken.end()) {
                        taken.push_back(p);
                        return p;
                    }
                }
            };
            for (std::size_t i = 0; i < masters * (1 + replicas); ++i) {
                const auto port = fresh_port();
                // The bus port is chosen too: port + 10000, Redis' default, may be taken or past 65535.
                const auto bus = fresh_port();
                std::vector<std::string> extra{"--cluster-enabled", "yes", "--cluster-config-file",
                                               dir_ + "/nodes-" + std::to_string(port) + ".conf", "--cluster-port",
                                               std::to_string(bus), "--dir", dir_, "--cluster-node-timeout", "2000",
                                               "--cluster-replica-validity-factor", "0"};
                nodes_.push_back(std::make_unique<server>(port, std::move(extra)));
                create.push_back("127.0.0.1:" + std::to_string(port));
            }
            create.insert(create.end(), {"--cluster-replicas", std::to_string(replicas), "--cluster-yes"});
            run(create);
            wait_ok();
        } catch (...) {
            nodes_.clear();
            std::error_code ignored;
            std::filesystem::remove_all(dir_, ignored);
            throw;
        }
    }
    cluster(const cluster&) = delete;
    cluster& operator=(const cluster&) = delete;
    ~cluster() {
        nodes_.clear();
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }

    std::size_t size() const { return nodes_.size(); }
    std::uint16_t port(std::size_t i) const { return nodes_.at(i)->port(); }
    std::string url(std::size_t i = 0) const { return nodes_.at(i)->url(); }
    server& node(std::size_t i) { return *nodes_.at(i); }

    /// The node serving slot now, by index; size() when none does.
    std::size_t owner(std::uint16_t slot) const {
        for (std::size_t i = 0; i < nodes_.size(); ++i) {
            auto ranges = gw::redis::detail::parse_cluster_slots(query(port(i), {"CLUSTER", "SLOTS"}), "127.0.0.1");
            if (!ranges) continue;
            for (const auto& r : *ranges)
                if (slot >= r.first && slot <= r.last)
                    for (std::size_t j = 0; j < nodes_.size(); ++j)
                        if (r.master.port == port(j)) return j;
            return nodes_.size();
        }
        return nodes_.size();
    }
    /// The nodes that serve slots now (masters), by index.
    std::vector<std::size_t> masters() const {
        std::vector<std::size_t> out;
        for (std::size_t i = 0; i < size(); ++i) {
            auto ranges = gw::redis::detail::parse_cluster_slots(query(port(i), {"CLUSTER", "SLOTS"}), "127.0.0.1");
            if (!ranges) continue;
            for (std::size_t j = 0; j < size(); ++j)
                for (const auto& r : *ranges)
                    if (r.master.port == port(j) && std::find(out.begin(), out.end(), j) == out.end()) out.push_back(j);
            std::sort(out.begin(), out.end());
            return out;
        }
        return out;
    }
    /// The node's id in the cluster.
    std::string id(std::size_t i) const { return query(port(i), {"CLUSTER", "MYID"}).str; }

    /// Moves an empty slot from its master to node `to` (CLUSTER SETSLOT IMPORTING, MIGRATING,
    /// then NODE on every master), as redis-cli --cluster reshard does when the slot has no keys.
    void move_slot(std::uint16_t slot, std::size_t to) {
        const std::size_t from = owner(slot);
        if (from == to || from >= size()) throw std::runtime_error("move_slot: bad source");
        const std::string s = std::to_string(slot);
        expect_ok(query(port(to), {"CLUSTER", "SETSLOT", s, "IMPORTING", id(from)}));
        expect_ok(query(port(from), {"CLUSTER", "SETSLOT", s, "MIGRATING", id(to)}));
        expect_ok(query(port(to), {"CLUSTER", "SETSLOT", s, "NODE", id(to)}));
        expect_ok(query(port(from), {"CLUSTER", "SETSLOT", s, "NODE", id(to)}));
        for (std::size_t i = 0; i < size(); ++i)
            if (i != from && i != to) expect_ok(query(port(i), {"CLUSTER", "SETSLOT", s, "NODE", id(to)}));
    }

private:
    static void expect_ok(const gw::redis::reply& r) {
        if (r.is_error()) throw std::runtime_error("Redis Cluster set-up: " + r.str);
    }

    /// Runs a command to its end; throws with its output when it fails.
    static void run(std::vector<std::string> argv) {
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
        pid_t pid = -1;
        const int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        ::close(out[1]);
        std::string said;
        char buf[4096];
        for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;) said.append(buf, static_cast<std::size_t>(n));
        ::close(out[0]);
        if (rc != 0) throw std::runtime_error("cannot start " + argv[0]);
        int status = 0;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error(argv[0] + " failed:\n" + said);
    }

    /// Until every node says cluster_state:ok (it takes the nodes a moment to agree) and every
    /// replica's link to its master is up, 30 s at most.
    void wait_ok() const {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        for (;;) {
            bool ok = true;
            std::string last;
            for (std::size_t i = 0; i < size() && ok; ++i) {
                last = query(port(i), {"CLUSTER", "INFO"}).str;
                ok = last.find("cluster_state:ok") != std::string::npos;
                if (ok) {
                    last = query(port(i), {"INFO", "replication"}).str;
                    ok = last.find("role:slave") == std::string::npos || last.find("master_link_status:up") != std::string::npos;
                }
            }
            if (ok) return;
            if (std::chrono::steady_clock::now() > deadline)
                throw std::runtime_error("the Redis Cluster did not reach cluster_state:ok within 30 s:\n" + last);
            // Gossip has no event to wait on from here: ask again shortly.
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }

    std::string dir_;
    std::vector<std::unique_ptr<server>> nodes_;
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

#define REQUIRE_REDIS_CLUSTER()                                                                  \
    do {                                                                                         \
        if (!test::redis::cluster_available()) GTEST_SKIP() << "redis-server or redis-cli not found"; \
    } while (0)

#define REQUIRE_REDIS_SERVER()                                                   \
    do {                                                                         \
        if (!test::redis::available()) GTEST_SKIP() << "redis-server not found"; \
    } while (0)
