// The gateway's words: an event, the replies a handler may give (a value, gw::response, a
// gw::stream), and the exceptions that answer a client (gw::ws_exception, gw::http_refusal).
#pragma once
#include "../detail/asio.hpp"
#include "../detail/json.hpp"
#include "../net/http_request.hpp"

#ifndef GATEWAY_NO_JSON
namespace gw::inline v0 {

/// One event: what a client sent, or what the server emits.
struct event {
    std::string name;
    json data;
    json id;                ///< the client's request id (number or string), echoed in the reply; null when none
    std::int64_t ack = 0;   ///< in a client's "ack" event: the number of the server's emit_with_ack it answers
    /// Socket.IO: data is the event's list of arguments (an array), because the client sent none or
    /// several; one argument arrives as data itself. An emit or reply with spread set sends the
    /// array's elements as its arguments.
    bool spread = false;
};


/// Thrown by a handler to answer with an exception event: {"status": "error", "message": what} for a
/// string, or the given JSON as the event's data.
class ws_exception : public std::runtime_error {
public:
    explicit ws_exception(const std::string& message)
        : std::runtime_error(message), data_({{"status", "error"}, {"message", message}}) {}
    explicit ws_exception(const char* message) : ws_exception(std::string(message)) {}
    explicit ws_exception(json data) : std::runtime_error(data.dump()), data_(std::move(data)) {}
    const json& data() const noexcept { return data_; }

private:
    json data_;
};

/// A reply that names its own event: return gw::response{"pong", data} from a handler.
struct response {
    std::string event;   ///< empty: a reply to the request itself (Socket.IO: its acknowledgement)
    json data;
    bool spread = false;   ///< Socket.IO: data is a list of arguments (see gw::event::spread)
};

/// Several replies from one handler: a coroutine that co_yields values, each sent to the client in
/// order as a reply to the request (same event, same id). When the client goes, the coroutine is
/// destroyed at its co_yield and runs no further.
template <class T = json> class stream {
public:
    struct promise_type {
        std::optional<T> current;
        std::exception_ptr error;
        stream get_return_object() { return stream(std::coroutine_handle<promise_type>::from_promise(*this)); }
        std::suspend_always initial_suspend() noexcept { return {}; }
        std::suspend_always final_suspend() noexcept { return {}; }
        template <class U> std::suspend_always yield_value(U&& value) {
            current.emplace(std::forward<U>(value));
            return {};
        }
        void return_void() noexcept {}
        void unhandled_exception() noexcept { error = std::current_exception(); }
    };

    stream(stream&& other) noexcept : h_(std::exchange(other.h_, {})) {}
    stream& operator=(stream other) noexcept {
        std::swap(h_, other.h_);
        return *this;
    }
    ~stream() {
        if (h_) h_.destroy();
    }

    /// Runs to the next co_yield: its value, or nullopt once the coroutine returned. Rethrows what it threw.
    std::optional<T> next() {
        if (!h_ || h_.done()) return std::nullopt;
        h_.promise().current.reset();
        h_.resume();
        if (h_.promise().error) std::rethrow_exception(std::exchange(h_.promise().error, nullptr));
        if (h_.done()) return std::nullopt;
        return std::move(h_.promise().current);
    }

private:
    explicit stream(std::coroutine_handle<promise_type> h) : h_(h) {}
    std::coroutine_handle<promise_type> h_;
};


/// Thrown by handshake middleware to refuse an upgrade with an HTTP status and body.
class http_refusal : public std::runtime_error {
public:
    explicit http_refusal(int status, std::string body = {})
        : std::runtime_error("upgrade refused with " + std::to_string(status)), response_{status, std::move(body)} {}
    const http_response& response() const noexcept { return response_; }

private:
    http_response response_;
};

/// A realtime gateway, as NestJS's: namespaces of event handlers, rooms, lifecycle hooks and

} // namespace gw::v0
#endif
