// A Redis client on one of the gateway's event loops: gw::redis::client for commands (pipelined,
// buffered while Redis is away) and gw::redis::subscriber for pub/sub (resubscribes by itself).
// hiredis reads RESP; Asio does all the I/O, on the caller's executor: no thread, no blocking call.
// Behind the GATEWAY_REDIS knob; link with hiredis.
#pragma once
#include "../detail/asio.hpp"
#include "../core/vocabulary.hpp"
#include "../net/tls.hpp"
#include "../protocol/redis.hpp"

#if !__has_include(<hiredis/hiredis.h>)
#error "GATEWAY_REDIS needs hiredis (Debian: libhiredis-dev), and linking with -lhiredis"
#endif
#include <hiredis/hiredis.h>   // redisReaderCreate, freeReplyObject, redisReply
#include <hiredis/read.h>      // redisReaderFeed, redisReaderGetReply, REDIS_REPLY_*

#include <asio/experimental/awaitable_operators.hpp>   // a connection's reader and writer awaited together
#include <random>   // reconnect jitter
#include <ranges>   // command(range)
#include <set>      // a subscriber's channels and patterns

namespace gw::inline v0::redis {

/// How a client or subscriber connects, reconnects and buffers. Every field has a default.
struct options {
    /// Commands not yet written (all of them while Redis is away) may take this many bytes; one that
    /// does not fit is dropped and counted (a lone command larger than this still goes). 4 MiB: a few
    /// seconds of a busy node's broadcasts, without letting an outage take the memory.
    std::size_t max_buffered_bytes = 4 << 20;
    /// Reconnect delays start here and double up to reconnect_max, each picked at random in its upper
    /// half so that nodes that lost Redis together do not come back in lockstep. 50 ms: a restarted
    /// Redis is found at once.
    std::chrono::milliseconds reconnect_min{50};
    /// 2 s: an outage costs at most one attempt per link every 2 s, and a returning Redis is in use
    /// again within 2 s.
    std::chrono::milliseconds reconnect_max{2'000};
    /// Resolving, connecting, TLS, AUTH and SELECT must finish within this: a host that drops packets
    /// cannot hold a link forever.
    std::chrono::milliseconds connect_timeout{5'000};
    /// For rediss://: nullptr verifies the server against the system's CAs and its host name.
    std::shared_ptr<asio::ssl::context> tls{};
    /// Told when the link is up (true: after AUTH and SELECT and, for a subscriber, with its
    /// subscriptions sent again) and when it is down (false, with the reason: once when a connection
    /// is lost, once when the first attempt fails). Called on the executor's thread.
    std::function<void(bool up, std::string_view why)> on_state{};
    /// Log lines: links lost and found, refused AUTH, errors of send()'s commands, exceptions of
    /// handlers. Unset (the default): silent.
    std::function<void(log_level, std::string_view)> log{};
};

/// A link's counters, readable from any thread.
struct stats {
    bool connected = false;        ///< connected, AUTH and SELECT done
    std::uint64_t reconnects = 0;  ///< connections made after a lost one
    std::uint64_t dropped = 0;     ///< commands never sent: over max_buffered_bytes, or refused at AUTH
};

/// A message a subscriber received.
struct message {
    std::string channel{};   ///< the channel it was published to
    std::string payload{};   ///< its bytes (binary-safe)
    std::string pattern{};   ///< the psubscribe pattern that matched; empty for subscribe and ssubscribe
    bool sharded = false;    ///< received through ssubscribe (SPUBLISH)
};

namespace detail {

/// Where an awaiting caller's result lands; the timer wakes it.
struct waiter {
    explicit waiter(const asio::any_io_executor& ex) : timer(ex, asio::steady_timer::time_point::max()) {}
    void finish(reply r) {
        if (then) {   // nobody awaits: the reply is handed on (a cluster's MOVED, say)
            auto f = std::move(then);
            then = nullptr;
            done = true;
            f(std::move(r));
            return;
        }
        value = std::move(r);
        done = true;
        timer.cancel();
    }
    void fail(std::error_code e, std::string why) {
        ec = e;
        what = std::move(why);
        done = true;
        timer.cancel();
    }
    asio::steady_timer timer;
    bool done = false;
    std::error_code ec{};
    std::string what{};
    reply value{};
    /// Set: the reply goes here instead of to an awaiting caller.
    std::function<void(reply&&)> then{};
};

inline asio::awaitable<reply> wait_for(std::shared_ptr<waiter> w) {
    if (!w->done) co_await w->timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    if (!w->done) throw std::system_error(asio::error::operation_aborted, "waiting for Redis");
    if (w->ec) throw std::system_error(w->ec, w->what);
    co_return std::move(w->value);
}

inline asio::awaitable<void> wait_done(std::shared_ptr<waiter> w) {
    co_await wait_for(std::move(w));
}

inline reply from_hiredis(const redisReply& r) {
    reply out;
    switch (r.type) {
    case REDIS_REPLY_STRING: out.type = reply::kind::string; out.str.assign(r.str, r.len); break;
    case REDIS_REPLY_STATUS: out.type = reply::kind::status; out.str.assign(r.str, r.len); break;
    case REDIS_REPLY_ERROR: out.type = reply::kind::error; out.str.assign(r.str, r.len); break;
    case REDIS_REPLY_INTEGER: out.type = reply::kind::integer; out.integer = r.integer; break;
    case REDIS_REPLY_ARRAY:
        out.type = reply::kind::array;
        out.elements.reserve(r.elements);
        for (std::size_t i = 0; i < r.elements; ++i) out.elements.push_back(from_hiredis(*r.element[i]));
        break;
    default: break;   // nil, and a nil array
    }
    return out;
}

inline std::shared_ptr<asio::ssl::context> default_tls() {
    static const std::shared_ptr<asio::ssl::context> ctx = tls_client_context();
    return ctx;
}

/// What AUTH, SELECT and PING look like for this URL; names[i] says which step reply i answers.
inline std::string hello(const url& u, bool select, std::vector<std::string>& names) {
    std::string out;
    if (!u.password.empty()) {
        if (u.user.empty()) {
            const std::string_view args[] = {"AUTH", u.password};
            append_command(out, args);
        } else {
            const std::string_view args[] = {"AUTH", u.user, u.password};
            append_command(out, args);
        }
        names.push_back("AUTH");
    }
    const std::string db = std::to_string(u.db);
    if (select && u.db != 0) {
        const std::string_view args[] = {"SELECT", db};
        append_command(out, args);
        names.push_back("SELECT " + db);
    }
    // PING proves the link works end to end before it is called up (and says NOAUTH clearly when
    // the server wants a password the URL lacks).
    const std::string_view ping[] = {"PING"};
    append_command(out, ping);
    names.push_back("PING");
    return out;
}

/// One connection to Redis that keeps itself connected: resolve, connect, TLS, AUTH, SELECT, then a
/// reader and a batching writer until the connection fails; then backoff and again, until close().
/// The client and the subscriber say what replies mean. Everything runs on ex_'s thread.
class link : public std::enable_shared_from_this<link> {
public:
    link(asio::any_io_executor ex, url where, options opts, bool select, std::string name)
        : ex_(std::move(ex)), url_(std::move(where)), opts_(std::move(opts)), select_(select), name_(std::move(name)),
          resolver_(ex_), sock_(ex_), wake_(ex_, asio::steady_timer::time_point::max()), backoff_(ex_),
          deadline_(ex_), reader_(redisReaderCreate()), rng_(std::random_device{}()) {
        if (!reader_) throw std::bad_alloc();
    }
    link(const link&) = delete;
    link& operator=(const link&) = delete;
    virtual ~link() { redisReaderFree(reader_); }

    void start() {
        asio::co_spawn(ex_, run(shared_from_this()), [log = opts_.log, name = name_](std::exception_ptr e) {
            if (!e || !log) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                log(log_level::error, name + " stopped: " + x.what());
            } catch (...) {
                log(log_level::error, name + " stopped by an unknown exception");
            }
        });
    }

    /// Stops at once: every pending operation completes (aborted) on the loop's next turns, and
    /// every awaiting caller gets errc::closed.
    void close() {
        if (closed_) return;
        closed_ = true;
        connected_ = false;
        std::error_code ignored;
        resolver_.cancel();
        backoff_.cancel();
        deadline_.cancel();
        wake_.cancel();
        sock_.close(ignored);
        on_close();
    }

    stats counters() const noexcept {
        return {connected_.load(std::memory_order_relaxed), reconnects_.load(std::memory_order_relaxed),
                dropped_.load(std::memory_order_relaxed)};
    }
    bool connected() const noexcept { return connected_.load(std::memory_order_relaxed); }
    std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }

protected:
    /// A reply arrived on a connection that is up; false: it makes no sense (the link is dropped).
    virtual bool on_reply(reply&& r) = 0;
    /// The link is up: out_ is about to be written.
    virtual void on_up() {}
    /// What was in out_ has been handed to the writer.
    virtual void on_batch() {}
    /// The connection that was up ended.
    virtual void on_down() {}
    /// A connection was refused at AUTH, SELECT or PING.
    virtual void on_refused(const std::string&) {}
    /// close() was called.
    virtual void on_close() {}

    void log(log_level level, const std::string& line) const {
        if (opts_.log) opts_.log(level, line);
    }
    void wake_writer() {
        if (writer_waiting_) wake_.cancel();
    }
    std::string where() const {
        const bool v6 = url_.host.find(':') != std::string::npos;
        return (url_.tls ? "rediss://" : "redis://") + (v6 ? "[" + url_.host + "]" : url_.host) + ":" +
               std::to_string(url_.port);
    }

    asio::any_io_executor ex_;
    url url_;
    options opts_;
    bool select_;
    std::string name_;
    std::string out_;            // commands encoded and not yet handed to the writer
    bool up_ = false;            // connected, AUTH and SELECT done: out_ is being written
    bool closed_ = false;
    std::atomic<std::uint64_t> dropped_{0};

private:
    using tls_stream = asio::ssl::stream<asio::ip::tcp::socket&>;

    asio::awaitable<void> run(std::shared_ptr<link> self) {
        unsigned attempt = 0;
        bool ever_up = false, down_reported = false;
        while (!closed_) {
            std::string why;
            bool refused = false;
            const bool ok = co_await open(why, refused);
            if (closed_) break;
            if (ok) {
                attempt = 0;
                if (ever_up) reconnects_.fetch_add(1, std::memory_order_relaxed);
                ever_up = true;
                down_reported = false;
                up_ = true;
                ended_ = false;
                connected_ = true;
                on_up();
                log(log_level::info, name_ + " connected to " + where());
                state(true, {});
                co_await serve();
                up_ = false;
                connected_ = false;
                on_down();
                why = why_;
            } else if (refused) {
                on_refused(why);
            }
            teardown();
            if (closed_) break;
            if (!down_reported) {
                down_reported = true;
                log(log_level::warn, name_ + ": " + why);
                state(false, why);
            } else {
                log(log_level::debug, name_ + ": " + why);
            }
            backoff_.expires_after(delay(attempt++));
            co_await backoff_.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
        }
        teardown();
        (void)self;
    }

    /// One connection attempt up to a working link; false with the reason otherwise (refused: Redis
    /// answered AUTH, SELECT or PING with an error).
    asio::awaitable<bool> open(std::string& why, bool& refused) {
        using asio::experimental::as_tuple;
        const auto gen = ++gen_;
        timed_out_ = false;
        connecting_ = true;
        deadline_.expires_after(opts_.connect_timeout);
        deadline_.async_wait([self = shared_from_this(), gen](std::error_code ec) {
            if (ec || self->gen_ != gen || !self->connecting_) return;
            self->timed_out_ = true;
            self->resolver_.cancel();
            std::error_code ignored;
            self->sock_.close(ignored);
        });
        struct stop_deadline {
            link& l;
            ~stop_deadline() {
                l.connecting_ = false;
                l.deadline_.cancel();
            }
        } guard{*this};
        auto failed = [&](std::string_view step, std::error_code ec) {
            why = std::string(step) + " " + where() + ": " +
                  (timed_out_ ? std::string("no answer within connect_timeout") : ec.message());
            return false;
        };
        auto [rec, endpoints] = co_await resolver_.async_resolve(url_.host, std::to_string(url_.port),
                                                                 as_tuple(asio::use_awaitable));
        if (rec || closed_) co_return failed("resolve", rec);
        auto [cec, ep] = co_await asio::async_connect(sock_, endpoints, as_tuple(asio::use_awaitable));
        if (cec || closed_) co_return failed("connect to", cec);
        std::error_code ignored;
        sock_.set_option(asio::ip::tcp::no_delay(true), ignored);
        // Keepalive: a peer that vanished without a FIN is noticed even on a subscriber that only
        // reads; probed after 15 s idle, every 5 s, 3 times (the system's 2 h would hide an outage).
        sock_.set_option(asio::socket_base::keep_alive(true), ignored);
#if defined(TCP_KEEPIDLE) && defined(TCP_KEEPINTVL) && defined(TCP_KEEPCNT)
        sock_.set_option(asio::detail::socket_option::integer<IPPROTO_TCP, TCP_KEEPIDLE>(15), ignored);
        sock_.set_option(asio::detail::socket_option::integer<IPPROTO_TCP, TCP_KEEPINTVL>(5), ignored);
        sock_.set_option(asio::detail::socket_option::integer<IPPROTO_TCP, TCP_KEEPCNT>(3), ignored);
#endif
        if (url_.tls) {
            auto ctx = opts_.tls ? opts_.tls : default_tls();
            tls_ = std::make_unique<tls_stream>(sock_, *ctx);
            std::error_code not_ip;
            (void)asio::ip::make_address(url_.host, not_ip);
            if (not_ip && !SSL_set_tlsext_host_name(tls_->native_handle(), url_.host.c_str()))
                co_return failed("set the TLS server name of", make_error_code(errc::handshake_failed));
            tls_->set_verify_callback(asio::ssl::host_name_verification(url_.host));
            auto [hec] = co_await tls_->async_handshake(asio::ssl::stream_base::client, as_tuple(asio::use_awaitable));
            if (hec || closed_) co_return failed("TLS handshake with", hec);
        }
        std::vector<std::string> steps;
        const std::string bytes = hello(url_, select_, steps);
        if (auto ec = co_await write_all(bytes); ec || closed_) co_return failed("write to", ec);
        for (const auto& step : steps) {
            reply r;
            int got = next_reply(r);
            while (got == 0) {
                if (auto ec = co_await read_more(); ec || closed_) co_return failed("read from", ec);
                got = next_reply(r);
            }
            if (got < 0) co_return failed("read from", make_error_code(errc::protocol_error));
            if (r.is_error()) {
                refused = true;
                why = step + " refused by " + where() + ": " + r.str;
                co_return false;
            }
        }
        co_return true;
    }

    /// The reader and the writer of a connection that is up, until it ends.
    asio::awaitable<void> serve() {
        using namespace asio::experimental::awaitable_operators;
        // Neither throws and each ends the connection when it stops, so && simply waits for both.
        co_await (read_loop() && write_loop());
    }

    asio::awaitable<void> read_loop() {
        for (;;) {
            for (;;) {
                reply r;
                const int got = next_reply(r);
                if (got == 0) break;
                if (got < 0 || !on_reply(std::move(r))) {
                    end("Redis sent an invalid or unexpected reply on " + where());
                    co_return;
                }
                if (ended_ || closed_) co_return;
            }
            if (auto ec = co_await read_more(); ec) {
                end("lost the connection to " + where() + ": " + ec.message());
                co_return;
            }
        }
    }

    asio::awaitable<void> write_loop() {
        while (!ended_ && !closed_) {
            if (out_.empty()) {
                writer_waiting_ = true;
                co_await wake_.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
                writer_waiting_ = false;
                continue;
            }
            // One write carries everything queued since the last one: pipelining in batches.
            writing_.swap(out_);
            on_batch();
            auto ec = co_await write_all(writing_);
            writing_.clear();
            // A burst (an outage's buffer, say) does not keep its memory once written.
            if (writing_.capacity() > (256u << 10)) std::string().swap(writing_);
            if (ec) end("lost the connection to " + where() + ": " + ec.message());
        }
    }

    asio::awaitable<std::error_code> write_all(const std::string& bytes) {
        using asio::experimental::as_tuple;
        if (tls_) {
            auto [ec, n] = co_await asio::async_write(*tls_, asio::buffer(bytes), as_tuple(asio::use_awaitable));
            co_return ec;
        }
        auto [ec, n] = co_await asio::async_write(sock_, asio::buffer(bytes), as_tuple(asio::use_awaitable));
        co_return ec;
    }

    /// Reads what is there and hands it to hiredis.
    asio::awaitable<std::error_code> read_more() {
        using asio::experimental::as_tuple;
        std::error_code ec;
        std::size_t n = 0;
        if (tls_) {
            auto [e, m] = co_await tls_->async_read_some(asio::buffer(buf_), as_tuple(asio::use_awaitable));
            ec = e;
            n = m;
        } else {
            auto [e, m] = co_await sock_.async_read_some(asio::buffer(buf_), as_tuple(asio::use_awaitable));
            ec = e;
            n = m;
        }
        if (ec) co_return ec;
        if (redisReaderFeed(reader_, buf_.data(), n) != REDIS_OK) co_return make_error_code(errc::protocol_error);
        co_return std::error_code{};
    }

    /// 1: a reply in r; 0: more bytes needed; -1: not RESP.
    int next_reply(reply& r) {
        void* raw = nullptr;
        if (redisReaderGetReply(reader_, &raw) != REDIS_OK) return -1;
        if (!raw) return 0;
        r = from_hiredis(*static_cast<redisReply*>(raw));
        freeReplyObject(raw);
        return 1;
    }

    /// Ends the connection that is up: the reader and the writer both stop.
    void end(std::string why) {
        if (ended_) return;
        ended_ = true;
        why_ = std::move(why);
        std::error_code ignored;
        sock_.close(ignored);
        wake_.cancel();
    }

    /// Between connections: a fresh socket and a fresh reply reader (a half-read reply is garbage).
    void teardown() {
        tls_.reset();
        std::error_code ignored;
        sock_.close(ignored);
        sock_ = asio::ip::tcp::socket(ex_);
        redisReaderFree(reader_);
        reader_ = redisReaderCreate();
        if (!reader_) throw std::bad_alloc();
    }

    std::chrono::milliseconds delay(unsigned attempt) {
        const long long lo = std::max<long long>(opts_.reconnect_min.count(), 1);
        const long long hi = std::max<long long>(opts_.reconnect_max.count(), lo);
        long long d = lo;
        for (unsigned i = 0; i < attempt && d < hi; ++i) d *= 2;
        d = std::min(d, hi);
        std::uniform_int_distribution<long long> pick(d / 2, d);
        return std::chrono::milliseconds(pick(rng_));
    }

    void state(bool up, std::string_view why) {
        if (!opts_.on_state) return;
        try {
            opts_.on_state(up, why);
        } catch (const std::exception& e) {
            log(log_level::error, name_ + ": on_state threw: " + e.what());
        }
    }

    asio::ip::tcp::resolver resolver_;
    asio::ip::tcp::socket sock_;
    std::unique_ptr<tls_stream> tls_;
    asio::steady_timer wake_;       // the writer waits on it while out_ is empty
    asio::steady_timer backoff_;
    asio::steady_timer deadline_;   // connect_timeout of the attempt in progress
    redisReader* reader_;
    std::minstd_rand rng_;
    std::array<char, 16 << 10> buf_{};
    std::string writing_;           // the batch being written
    std::string why_;               // why the connection that was up ended
    std::uint64_t gen_ = 0;         // connection attempts, so that a late deadline spares the next
    bool connecting_ = false, timed_out_ = false, ended_ = false, writer_waiting_ = false;
    std::atomic<bool> connected_{false};
    std::atomic<std::uint64_t> reconnects_{0};
};

class client_link final : public link {
public:
    client_link(asio::any_io_executor ex, url where, options opts)
        : link(std::move(ex), std::move(where), std::move(opts), true, "Redis client") {}

    /// Queues a command; w (null for send()) learns its fate. False when it was dropped.
    bool enqueue(std::span<const std::string_view> args, std::shared_ptr<waiter> w) {
        if (closed_) {
            if (w) w->fail(errc::closed, "Redis client closed");
            return false;
        }
        const std::size_t before = out_.size();
        append_command(out_, args);
        if (before > 0 && out_.size() > opts_.max_buffered_bytes) {
            out_.resize(before);
            dropped_.fetch_add(1, std::memory_order_relaxed);
            if (w) w->fail(errc::dropped, "Redis command dropped: over max_buffered_bytes");
            return false;
        }
        waiting_.push_back(std::move(w));
        if (up_) wake_writer();
        return true;
    }

    asio::awaitable<reply> command(std::span<const std::string_view> args) {
        auto w = std::make_shared<waiter>(ex_);
        enqueue(args, w);
        return wait_for(std::move(w));
    }

private:
    bool on_reply(reply&& r) override {
        if (inflight_.empty()) return false;
        auto w = std::move(inflight_.front());
        inflight_.pop_front();
        if (w) w->finish(std::move(r));
        else if (r.is_error()) log(log_level::warn, "Redis refused a command sent without waiting: " + r.str);
        return true;
    }
    void on_batch() override {
        for (auto& w : waiting_) inflight_.push_back(std::move(w));
        waiting_.clear();
    }
    void on_down() override {
        // Written but unanswered: they may or may not have run, so they are not sent again.
        fail_all(inflight_, errc::connection_lost, "the connection to Redis ended before the reply came");
    }
    void on_refused(const std::string& why) override {
        dropped_.fetch_add(waiting_.size(), std::memory_order_relaxed);
        fail_all(waiting_, errc::handshake_failed, why);
        out_.clear();
    }
    void on_close() override {
        fail_all(inflight_, errc::closed, "Redis client closed");
        fail_all(waiting_, errc::closed, "Redis client closed");
        out_.clear();
    }
    static void fail_all(std::deque<std::shared_ptr<waiter>>& q, errc e, const std::string& why) {
        auto all = std::move(q);
        q.clear();
        for (auto& w : all)
            if (w) w->fail(e, why);
    }

    std::deque<std::shared_ptr<waiter>> waiting_;    // in out_, in order
    std::deque<std::shared_ptr<waiter>> inflight_;   // written, replies due in this order
};

class subscriber_link final : public link {
public:
    subscriber_link(asio::any_io_executor ex, url where, std::function<void(const message&)> on_message, options opts)
        // Channels are the same in every database, so a subscriber does not SELECT.
        : link(std::move(ex), std::move(where), std::move(opts), false, "Redis subscriber"),
          on_message_(std::move(on_message)) {}

    /// In a Redis Cluster a shard channel can leave this node: Redis drops it when its slot moves
    /// (an unsolicited sunsubscribe: why empty) or refuses an ssubscribe (why: the error, MOVED
    /// say). With f set (before start()), such a channel leaves this link's set and f is told, so
    /// that whoever knows the cluster's topology subscribes it where it lives now; unset, the link
    /// subscribes it again itself (one Redis). Called on the link's thread.
    void on_shard_lost(std::function<void(const std::string& channel, const std::string& why)> f) {
        on_shard_lost_ = std::move(f);
    }

    /// verb: subscribe, psubscribe, ssubscribe or one of the unsubscribe forms.
    asio::awaitable<void> change(std::string_view verb, std::string_view name) {
        auto w = std::make_shared<waiter>(ex_);
        if (closed_) {
            w->fail(errc::closed, "Redis subscriber closed");
            return wait_done(std::move(w));
        }
        const bool add = !verb.ends_with("unsubscribe");
        auto& set = set_of(verb);
        if (add) set.emplace(name);
        else set.erase(std::string(name));
        if (up_) {
            const std::string_view names[] = {name};
            ask(verb, names);
            confirms_.emplace(std::pair{std::string(verb), std::string(name)}, w);
        } else if (add) {
            confirms_.emplace(std::pair{std::string(verb), std::string(name)}, w);   // when the next link is up
        } else {
            w->finish({});   // the next link will not subscribe it: nothing to undo on a server
        }
        return wait_done(std::move(w));
    }

private:
    std::set<std::string>& set_of(std::string_view verb) {
        if (verb.starts_with("p")) return patterns_;
        if (verb.starts_with("s") && verb != "subscribe") return shards_;
        return channels_;
    }

    /// Queues verb with names, and remembers it: Redis confirms each name, or refuses the command
    /// with one error, in the order the commands went.
    void ask(std::string_view verb, std::span<const std::string_view> names) {
        std::vector<std::string_view> args;
        args.reserve(names.size() + 1);
        args.push_back(verb);
        args.insert(args.end(), names.begin(), names.end());
        append_command(out_, args);
        sent_.push_back({std::string(verb), std::vector<std::string>(names.begin(), names.end())});
        wake_writer();
    }

    void on_up() override {
        // Subscriptions follow the sets, not whatever was queued before: everything is asked anew.
        out_.clear();
        sent_.clear();
        auto all = [&](std::string_view verb, const std::set<std::string>& names) {
            if (names.empty()) return;
            const std::vector<std::string_view> views(names.begin(), names.end());
            ask(verb, views);
        };
        all("subscribe", channels_);
        all("psubscribe", patterns_);
        // One SSUBSCRIBE per channel: in a cluster, one command's channels must share a slot.
        for (const auto& n : shards_) {
            const std::string_view one[] = {n};
            ask("ssubscribe", one);
        }
    }

    /// Redis refused the oldest command still unconfirmed (SSUBSCRIBE on Redis 6, an ACL without
    /// the channel, ...): its names are dropped from the sets and their callers get the error.
    void refused(const std::string& error) {
        log(log_level::warn, "Redis refused a subscription: " + error);
        if (sent_.empty()) return;
        auto cmd = std::move(sent_.front());
        sent_.pop_front();
        for (const auto& name : cmd.names) {
            if (!cmd.verb.ends_with("unsubscribe")) set_of(cmd.verb).erase(name);
            auto [from, to] = confirms_.equal_range(std::pair{cmd.verb, name});
            std::vector<std::shared_ptr<waiter>> failed;
            for (auto it = from; it != to; ++it) failed.push_back(std::move(it->second));
            confirms_.erase(from, to);
            for (auto& w : failed) w->fail(errc::refused, "Redis refused " + cmd.verb + " " + name + ": " + error);
            if (on_shard_lost_ && cmd.verb == "ssubscribe") on_shard_lost_(name, error);
        }
    }

    /// One name of the oldest command is confirmed.
    void confirmed(const std::string& verb, const std::string& name) {
        if (sent_.empty() || sent_.front().verb != verb) return;   // unsolicited (a moved slot's sunsubscribe)
        auto& names = sent_.front().names;
        if (auto it = std::find(names.begin(), names.end(), name); it != names.end()) names.erase(it);
        if (names.empty()) sent_.pop_front();
    }

    bool on_reply(reply&& r) override {
        if (r.is_error()) {
            refused(r.str);
            return true;
        }
        if (!r.is_array() || r.elements.empty()) return false;
        auto& e = r.elements;
        const std::string& kind = e[0].str;
        if (kind == "message" && e.size() == 3) {
            if (channels_.count(e[1].str)) deliver(message{std::move(e[1].str), std::move(e[2].str), {}, false});
        } else if (kind == "smessage" && e.size() == 3) {
            if (shards_.count(e[1].str)) deliver(message{std::move(e[1].str), std::move(e[2].str), {}, true});
        } else if (kind == "pmessage" && e.size() == 4) {
            if (patterns_.count(e[1].str))
                deliver(message{std::move(e[2].str), std::move(e[3].str), std::move(e[1].str), false});
        } else if (e.size() == 3 && kind.ends_with("subscribe")) {
            confirmed(kind, e[1].str);
            auto [from, to] = confirms_.equal_range(std::pair{kind, e[1].str});
            const bool awaited = from != to;
            std::vector<std::shared_ptr<waiter>> done;
            for (auto it = from; it != to; ++it) done.push_back(std::move(it->second));
            confirms_.erase(from, to);
            for (auto& w : done) w->finish({});
            // Redis drops a sharded subscription itself when its slot moves: take it again if wanted.
            if (!awaited && kind == "sunsubscribe" && shards_.count(e[1].str)) {
                if (on_shard_lost_) {
                    shards_.erase(e[1].str);
                    on_shard_lost_(e[1].str, std::string());
                } else {
                    const std::string_view one[] = {e[1].str};
                    ask("ssubscribe", one);
                }
            }
        }
        return true;   // "pong", and what a newer Redis may add
    }

    void deliver(const message& m) {
        if (!on_message_) return;
        try {
            on_message_(m);
        } catch (const std::exception& x) {
            log(log_level::error, "Redis subscriber: the message handler threw: " + std::string(x.what()));
        } catch (...) {
            log(log_level::error, "Redis subscriber: the message handler threw");
        }
    }

    void on_down() override {
        sent_.clear();
        // An unsubscribe is done once the link is gone: the next one will not ask for it.
        for (auto it = confirms_.begin(); it != confirms_.end();) {
            if (it->first.first.ends_with("unsubscribe")) {
                auto w = std::move(it->second);
                it = confirms_.erase(it);
                w->finish({});
            } else {
                ++it;
            }
        }
    }
    void on_refused(const std::string& why) override { fail_confirms(errc::handshake_failed, why); }
    void on_close() override { fail_confirms(errc::closed, "Redis subscriber closed"); }
    void fail_confirms(errc e, const std::string& why) {
        auto all = std::move(confirms_);
        confirms_.clear();
        for (auto& [key, w] : all) w->fail(e, why);
    }

    std::function<void(const message&)> on_message_;
    std::function<void(const std::string&, const std::string&)> on_shard_lost_;
    std::set<std::string> channels_, patterns_, shards_;
    std::multimap<std::pair<std::string, std::string>, std::shared_ptr<waiter>> confirms_;   // (verb, name)
    struct sent_command {
        std::string verb;
        std::vector<std::string> names;   // not confirmed yet
    };
    std::deque<sent_command> sent_;   // on the link that is up, oldest first
};

template <class... A>
concept string_args = sizeof...(A) > 0 && (std::convertible_to<const A&, std::string_view> && ...);

template <class R>
concept string_range = std::ranges::input_range<const R&> && !std::convertible_to<const R&, std::string_view> &&
                       std::convertible_to<std::ranges::range_reference_t<const R&>, std::string_view>;

template <class R> std::vector<std::string_view> views_of(const R& args) {
    std::vector<std::string_view> out;
    for (auto&& a : args) out.emplace_back(a);
    return out;
}

} // namespace detail

/// A connection for commands, kept up by itself. Commands are pipelined: each is written at once
/// (with whatever else is queued, in one write) and replies are matched in order. While Redis is
/// away they are buffered up to options::max_buffered_bytes and sent, after AUTH and SELECT, when it
/// is back; what does not fit is dropped and counted. Commands written but unanswered when the
/// connection drops are not sent again (they may have run): their callers get errc::connection_lost.
/// As with node-redis, PUBLISHes buffered during an outage race the other nodes' resubscription
/// after it: a subscriber that is not back yet misses them. Use it on its executor's thread only;
/// close() or destroy it before its execution context.
class client {
public:
    /// Starts connecting at once to where (see gw::redis::url).
    client(asio::any_io_executor ex, const url& where, options opts = {})
        : link_(std::make_shared<detail::client_link>(std::move(ex), where, std::move(opts))) {
        link_->start();
    }
    /// Parses the URL first (std::system_error with errc::bad_url when it is not one).
    client(asio::any_io_executor ex, std::string_view where, options opts = {})
        : client(std::move(ex), url::parse(where), std::move(opts)) {}
    client(client&&) noexcept = default;
    client& operator=(client&& other) noexcept {
        if (this != &other) {
            close();
            link_ = std::move(other.link_);
        }
        return *this;
    }
    ~client() { close(); }

    /// Runs a command: co_await c.command("SET", key, value). Arguments are binary-safe and copied
    /// before this returns. A Redis error is a reply (reply::kind::error); std::system_error with
    /// errc::connection_lost (written, no reply: it may have run), dropped, handshake_failed (AUTH
    /// refused while it waited) or closed when no reply will come.
    template <class... A>
        requires detail::string_args<A...>
    asio::awaitable<reply> command(const A&... args) {
        const std::string_view views[] = {std::string_view(args)...};
        return link_->command(views);
    }
    /// The same with the arguments in a range of strings.
    template <class R>
        requires detail::string_range<R>
    asio::awaitable<reply> command(const R& args) {
        const auto views = detail::views_of(args);
        return link_->command(views);
    }
    /// Queues a command whose reply nobody waits for (PUBLISH, say): false when it was dropped. A
    /// Redis error in its reply is logged.
    template <class... A>
        requires detail::string_args<A...>
    bool send(const A&... args) {
        const std::string_view views[] = {std::string_view(args)...};
        return link_->enqueue(views, nullptr);
    }
    /// The same with the arguments in a range of strings.
    template <class R>
        requires detail::string_range<R>
    bool send(const R& args) {
        const auto views = detail::views_of(args);
        return link_->enqueue(views, nullptr);
    }

    /// Stops reconnecting and closes the connection; awaiting callers get errc::closed.
    void close() {
        if (link_) link_->close();
    }
    /// Up: connected, AUTH and SELECT done.
    bool connected() const noexcept { return link_ && link_->connected(); }
    /// Commands never sent: over max_buffered_bytes, or refused at AUTH.
    std::uint64_t dropped() const noexcept { return link_ ? link_->dropped() : 0; }
    stats counters() const noexcept { return link_ ? link_->counters() : stats{}; }

private:
    std::shared_ptr<detail::client_link> link_;
};

/// A connection in pub/sub mode, kept up by itself: after a reconnect it subscribes everything again.
/// on_message receives each message of the channels, patterns and shard channels subscribed. Use it
/// on its executor's thread only; close() or destroy it before its execution context.
class subscriber {
public:
    /// Starts connecting at once.
    subscriber(asio::any_io_executor ex, const url& where, std::function<void(const message&)> on_message,
               options opts = {})
        : link_(std::make_shared<detail::subscriber_link>(std::move(ex), where, std::move(on_message), std::move(opts))) {
        link_->start();
    }
    subscriber(asio::any_io_executor ex, std::string_view where, std::function<void(const message&)> on_message,
               options opts = {})
        : subscriber(std::move(ex), url::parse(where), std::move(on_message), std::move(opts)) {}
    subscriber(subscriber&&) noexcept = default;
    subscriber& operator=(subscriber&& other) noexcept {
        if (this != &other) {
            close();
            link_ = std::move(other.link_);
        }
        return *this;
    }
    ~subscriber() { close(); }

    /// SUBSCRIBE channel; completes when Redis confirms it (while Redis is away: once a connection
    /// did). The subscription holds from this call on, whether or not the caller waits.
    asio::awaitable<void> subscribe(std::string_view channel) { return link_->change("subscribe", channel); }
    /// PSUBSCRIBE pattern (glob-style); messages carry the pattern.
    asio::awaitable<void> psubscribe(std::string_view pattern) { return link_->change("psubscribe", pattern); }
    /// SSUBSCRIBE channel (Redis 7 sharded pub/sub; SPUBLISH reaches it).
    asio::awaitable<void> ssubscribe(std::string_view channel) { return link_->change("ssubscribe", channel); }
    /// UNSUBSCRIBE channel; no message of it is delivered from this call on.
    asio::awaitable<void> unsubscribe(std::string_view channel) { return link_->change("unsubscribe", channel); }
    asio::awaitable<void> punsubscribe(std::string_view pattern) { return link_->change("punsubscribe", pattern); }
    asio::awaitable<void> sunsubscribe(std::string_view channel) { return link_->change("sunsubscribe", channel); }

    /// Stops reconnecting and closes the connection; awaiting callers get errc::closed.
    void close() {
        if (link_) link_->close();
    }
    bool connected() const noexcept { return link_ && link_->connected(); }
    stats counters() const noexcept { return link_ ? link_->counters() : stats{}; }

private:
    std::shared_ptr<detail::subscriber_link> link_;
};

} // namespace gw::v0::redis
