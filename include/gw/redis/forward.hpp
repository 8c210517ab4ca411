// Engine.IO long-polling without sticky sessions: in a cluster, each node's sids start with its
// 4-character tag, and a polling request that reaches a node which does not hold its session is
// carried over Redis to the node that does (its channel <key>-forward#<tag>#), run there against
// the session as if it had come directly, and the answer carried back. A round-robin balancer then
// serves polling clients too. The cluster (redis/adapter.hpp) installs it behind Engine.IO's seam
// (detail::eio_remote), so Engine.IO itself knows nothing of Redis. Behind GATEWAY_REDIS.
#pragma once
#include "../detail/asio.hpp"
#include "../protocol/engineio.hpp"
#include "../net/engineio.hpp"
#include "client.hpp"

namespace gw::inline v0::redis::detail {

using gw::detail::eio_remote_answer;
using gw::detail::eio_remote_request;

/// A node's channel for forwarding: requests for its sessions, and answers to its own requests.
inline std::string forward_channel(std::string_view key, std::string_view tag) {
    std::string out(key);
    out += "-forward#";
    out += tag;
    out += '#';
    return out;
}

/// 4 random characters of URL-safe base64: a node's tag, the start of its sids. 2^24 of them: two
/// nodes rarely share one, and when they do both answer, and the one holding the session wins.
inline std::string node_tag() {
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char raw[4];
    RAND_bytes(raw, sizeof raw);
    std::string out;
    for (unsigned char c : raw) out += alphabet[c & 63];
    return out;
}

// The messages, our own (only gateway.hpp nodes forward): header fields on lines, the body last and
// raw, so a payload is carried byte for byte without escaping.
//   request: "q" \n origin-tag \n id \n method \n sid \n ("o": octet-stream | "-") \n body
//   answer:  "a" \n id \n status \n ("k": the session was there | "u") \n content-type \n body
//   abort:   "x" \n sid          (the client of a forwarded GET went away while the owner held it)

inline std::string encode_forward_request(std::string_view origin, std::uint64_t id, const eio_remote_request& r) {
    std::string out;
    out.reserve(48 + r.body.size());
    out.append("q\n").append(origin).append("\n").append(std::to_string(id)).append("\n");
    out.append(r.method).append("\n").append(r.sid).append("\n").append(r.octet_stream ? "o" : "-").append("\n");
    out += r.body;
    return out;
}

inline std::string encode_forward_answer(std::uint64_t id, const eio_remote_answer& a) {
    std::string out;
    out.reserve(48 + a.body.size());
    out.append("a\n").append(std::to_string(id)).append("\n").append(std::to_string(a.status)).append("\n");
    out.append(a.known ? "k" : "u").append("\n").append(a.content_type).append("\n");
    out += a.body;
    return out;
}

/// Splits the first n lines off text into fields; the rest is the body. False when there are fewer.
inline bool split_fields(std::string_view text, std::size_t n, std::vector<std::string_view>& fields, std::string_view& body) {
    fields.clear();
    for (std::size_t i = 0; i < n; ++i) {
        const auto nl = text.find('\n');
        if (nl == std::string_view::npos) return false;
        fields.push_back(text.substr(0, nl));
        text.remove_prefix(nl + 1);
    }
    body = text;
    return true;
}

template <class T> bool number_of(std::string_view text, T& out) {
    return !text.empty() && std::from_chars(text.data(), text.data() + text.size(), out).ec == std::errc{} &&
           std::to_string(out).size() == text.size();
}

/// Forwarding for one gateway's Engine.IO endpoint. Its Redis work and its table run on the links'
/// loop (io); forward() is called on any loop and hops there.
class forwarder final : public gw::detail::eio_remote, public std::enable_shared_from_this<forwarder> {
public:
    /// PUBLISH that says how many subscribers got the message (-1: it failed); on io.
    using counted_publish = std::function<asio::awaitable<long long>(std::string channel, std::string payload)>;
    /// PUBLISH whose reply nobody waits for; from any thread.
    using plain_publish = std::function<void(std::string channel, std::string payload)>;

    forwarder(asio::io_context& io, std::string key, std::string tag, std::weak_ptr<gw::detail::eio_state> st,
              std::chrono::milliseconds timeout, std::size_t max_in_flight, counted_publish publish, plain_publish send,
              std::function<void(log_level, std::string_view)> log)
        : io_(io), key_(std::move(key)), tag_(std::move(tag)), channel_(forward_channel(key_, tag_)), st_(std::move(st)),
          timeout_(timeout), max_(std::max<std::size_t>(max_in_flight, 1)), publish_(std::move(publish)), send_(std::move(send)),
          log_(std::move(log)) {
        unsigned char raw[8];
        RAND_bytes(raw, sizeof raw);   // ids from a random start: nodes that share a tag share a channel
        for (unsigned char c : raw) next_id_ = next_id_ << 8 | c;
    }

    const std::string& channel() const noexcept { return channel_; }
    const std::string& tag() const noexcept { return tag_; }

    /// Counters, readable from any thread.
    std::atomic<std::uint64_t> forwarded{0};    // requests sent to their session's node
    std::atomic<std::uint64_t> served{0};       // requests of other nodes run here
    std::atomic<std::uint64_t> unanswered{0};   // forwarded, and no node had the session (or none answered in time)
    std::atomic<std::uint64_t> refused{0};      // over max_in_flight, here or at the owner: answered 503

    asio::awaitable<std::optional<eio_remote_answer>> forward(eio_remote_request r) override {
        if (closed_) co_return std::nullopt;
        if (in_flight_.fetch_add(1, std::memory_order_relaxed) >= max_) {
            in_flight_.fetch_sub(1, std::memory_order_relaxed);
            refused.fetch_add(1, std::memory_order_relaxed);
            co_return busy();
        }
        struct release {
            std::atomic<std::size_t>& n;
            ~release() { n.fetch_sub(1, std::memory_order_relaxed); }
        } hold{in_flight_};
        forwarded.fetch_add(1, std::memory_order_relaxed);
        auto self = shared_from_this();
        auto a = co_await asio::co_spawn(io_, exchange(self, std::move(r)), asio::use_awaitable);
        if (!a) unanswered.fetch_add(1, std::memory_order_relaxed);
        co_return a;
    }

    void abort(std::string sid) override {
        if (closed_) return;
        const auto tag = gw::detail::eio::node_tag_of(sid);
        if (tag.empty()) return;
        send_(forward_channel(key_, tag), "x\n" + sid);   // posted to io by the cluster's publish
    }

    /// A message on this node's channel (on io).
    void on_message(const message& m) {
        if (closed_ || m.payload.empty()) return;
        std::vector<std::string_view> f;
        std::string_view body;
        if (m.payload[0] == 'q' && split_fields(m.payload, 6, f, body)) {
            std::uint64_t id = 0;
            if (!number_of(f[2], id) || !gw::detail::eio::is_node_tag(f[1])) return;
            eio_remote_request r;
            r.method = std::string(f[3]);
            r.sid = std::string(f[4]);
            r.octet_stream = f[5] == "o";
            r.body = std::string(body);
            take_request(std::string(f[1]), id, std::move(r));
        } else if (m.payload[0] == 'a' && split_fields(m.payload, 5, f, body)) {
            std::uint64_t id = 0;
            eio_remote_answer a;
            if (!number_of(f[1], id) || !number_of(f[2], a.status)) return;
            auto it = waiting_.find(id);
            if (it == waiting_.end()) return;   // late (its deadline passed), or another node's that shares the tag
            a.known = f[3] == "k";
            a.content_type = std::string(f[4]);
            a.body = std::string(body);
            auto& p = *it->second;
            if (a.known) p.answer = std::move(a);
            else ++p.unknowns;
            p.timer.cancel();
        } else if (m.payload[0] == 'x' && m.payload.size() == 22 && m.payload[1] == '\n') {
            auto st = st_.lock();
            auto s = st ? st->find(m.payload.substr(2)) : nullptr;
            if (s) asio::post(s->executor(), [s] { s->abort_forwarded_poll(); });
        }
    }

    /// The cluster goes (on io): requests waiting for answers end now, unanswered.
    void close() {
        closed_ = true;
        for (auto& [id, p] : waiting_) p->timer.cancel();
    }

private:
    /// A forwarded request waiting for its answer.
    struct pending {
        explicit pending(const asio::any_io_executor& ex) : timer(ex) {}
        asio::steady_timer timer;
        std::optional<long long> receivers;   // the PUBLISH's count, once known (-1: it failed)
        std::size_t unknowns = 0;             // answers "not here" so far
        std::optional<eio_remote_answer> answer;
        bool done() const noexcept {
            return answer.has_value() || (receivers && *receivers >= 0 && unknowns >= static_cast<std::size_t>(*receivers));
        }
    };

    static eio_remote_answer busy() {
        eio_remote_answer a;
        a.status = 503;
        a.content_type = "text/plain; charset=utf-8";
        a.body = "too many forwarded requests\n";
        a.known = true;
        return a;
    }

    /// On io: publishes the request to the owner's channel and waits for its answer.
    static asio::awaitable<std::optional<eio_remote_answer>> exchange(std::shared_ptr<forwarder> self, eio_remote_request r) {
        if (self->closed_) co_return std::nullopt;
        const std::uint64_t id = self->next_id_++;
        auto p = std::make_shared<pending>(self->io_.get_executor());
        self->waiting_.emplace(id, p);
        std::string channel = forward_channel(self->key_, gw::detail::eio::node_tag_of(r.sid));
        std::string payload = encode_forward_request(self->tag_, id, r);
        // The count of subscribers says how many nodes answer: none (the owner is gone), and the
        // session is unknown at once, without waiting for the deadline.
        asio::co_spawn(self->io_, count(self, p, std::move(channel), std::move(payload)), [self](std::exception_ptr e) {
            if (e) self->report(e, "publishing a forwarded request");
        });
        const auto deadline = std::chrono::steady_clock::now() + self->timeout_;
        p->timer.expires_at(deadline);
        while (!p->done() && !self->closed_ && std::chrono::steady_clock::now() < deadline)
            co_await p->timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
        self->waiting_.erase(id);
        co_return std::move(p->answer);
    }

    static asio::awaitable<void> count(std::shared_ptr<forwarder> self, std::shared_ptr<pending> p, std::string channel,
                                       std::string payload) {
        const long long n = co_await self->publish_(std::move(channel), std::move(payload));
        p->receivers = n;
        p->timer.cancel();
    }

    /// A request of another node (on io): run against the session here, answered on its channel.
    void take_request(std::string origin, std::uint64_t id, eio_remote_request r) {
        auto st = st_.lock();
        if (!st || !st->find(r.sid)) {   // not here (ended, or a node that shares our tag asked): say so at once
            const auto unknown = gw::detail::eio_error_answer(gw::detail::eio::error_code::session_unknown, false);
            send_(forward_channel(key_, origin), encode_forward_answer(id, unknown));
            return;
        }
        if (serving_ >= max_) {
            refused.fetch_add(1, std::memory_order_relaxed);
            send_(forward_channel(key_, origin), encode_forward_answer(id, busy()));
            return;
        }
        ++serving_;
        served.fetch_add(1, std::memory_order_relaxed);
        auto self = shared_from_this();
        asio::co_spawn(io_, serve(self, std::move(st), std::move(origin), id, std::move(r)), [self](std::exception_ptr e) {
            --self->serving_;
            if (e) self->report(e, "serving a forwarded request");
        });
    }

    static asio::awaitable<void> serve(std::shared_ptr<forwarder> self, std::shared_ptr<gw::detail::eio_state> st, std::string origin,
                                       std::uint64_t id, eio_remote_request r) {
        auto a = co_await gw::detail::eio_serve_forwarded(std::move(st), std::move(r));
        self->send_(forward_channel(self->key_, origin), encode_forward_answer(id, a));
    }

    void report(std::exception_ptr e, std::string_view what) const {
        if (!log_) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            log_(log_level::error, std::string(what) + ": " + x.what());
        } catch (...) {
            log_(log_level::error, std::string(what) + ": an exception");
        }
    }

    asio::io_context& io_;
    std::string key_, tag_, channel_;
    std::weak_ptr<gw::detail::eio_state> st_;
    std::chrono::milliseconds timeout_;
    std::size_t max_;
    counted_publish publish_;
    plain_publish send_;
    std::function<void(log_level, std::string_view)> log_;
    std::atomic<bool> closed_{false};                  // read by forward() on any loop
    std::atomic<std::size_t> in_flight_{0};            // forwarded, not answered yet (any loop)
    std::size_t serving_ = 0;                          // others' requests running here (io)
    std::uint64_t next_id_ = 0;                        // io
    std::unordered_map<std::uint64_t, std::shared_ptr<pending>> waiting_;   // by id (io)
};

} // namespace gw::v0::redis::detail
