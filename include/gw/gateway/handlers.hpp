// Handlers and hooks adapted from whatever the application registered (sync or coroutine, any
// payload type, any reply shape), and the stages of one call.
#pragma once
#include "../detail/asio.hpp"
#include "../detail/json.hpp"
#include "../core/metrics.hpp"
#include "socket.hpp"
#include "stages.hpp"
#include "vocabulary.hpp"

#ifndef GATEWAY_NO_JSON
namespace gw::inline v0 {

namespace detail {

/// What a handler produced: a reply (under the request's event unless it names one), or nothing.
struct outcome {
    std::string event;   // empty: reply under the request's event name
    json data;
    std::function<std::optional<json>()> more{};   // a stream: each further reply, pulled one by one
    bool spread = false;   // data is a list of arguments (gw::response::spread)
};

/// A handler, adapted from whatever the application registered: synchronous ones run inline,
/// coroutines are spawned so a slow handler never holds up the socket's other messages.
/// A handler made callable on an event. The bool says the event's payload may be moved into the
/// handler: nothing reads it after the handler (no interceptor).
/// A handler's latency histogram (metrics::latency's buckets), updated from any worker.
struct latency_histogram {
    std::array<std::atomic<std::uint64_t>, metrics::latency::bounds.size() + 1> buckets{};
    std::atomic<std::uint64_t> nanoseconds{0};
    void record(std::chrono::nanoseconds took) noexcept {
        const double seconds = std::chrono::duration<double>(took).count();
        std::size_t i = 0;
        while (i < metrics::latency::bounds.size() && seconds > metrics::latency::bounds[i]) ++i;
        buckets[i].fetch_add(1, std::memory_order_relaxed);
        nanoseconds.fetch_add(static_cast<std::uint64_t>(took.count()), std::memory_order_relaxed);
    }
};

struct handler {
    std::shared_ptr<latency_histogram> latency = std::make_shared<latency_histogram>();
    std::function<std::optional<outcome>(socket&, event&, bool)> sync;
    std::function<asio::awaitable<std::optional<outcome>>(socket&, event&, bool)> async;
    stages around;   // this handler's own enhancers
    explicit operator bool() const noexcept { return sync || async; }
};

template <class T> struct is_awaitable : std::false_type {};
template <class T, class E> struct is_awaitable<asio::awaitable<T, E>> : std::true_type {};
template <class T> struct awaitable_value { using type = T; };
template <class T, class E> struct awaitable_value<asio::awaitable<T, E>> { using type = T; };

/// The parameter list of a non-generic callable.
template <class F, class = void> struct params { using type = void; };
template <class C, class R, class... A> struct params<R (C::*)(A...) const> { using type = std::tuple<A...>; };
template <class C, class R, class... A> struct params<R (C::*)(A...)> { using type = std::tuple<A...>; };
template <class F> struct params<F, std::void_t<decltype(&F::operator())>> : params<decltype(&F::operator())> {};

/// The payload type a handler takes second, or json when it cannot tell (a generic lambda).
template <class F> struct payload_of { using type = json; };
template <class F>
    requires requires { typename std::tuple_size<typename params<F>::type>::type; }
struct payload_of<F> {
    using args = typename params<F>::type;
    using type = std::remove_cvref_t<std::tuple_element_t<std::tuple_size_v<args> == 2 ? 1 : 0, args>>;
};

/// Calls a handler with the socket and the payload converted to what it takes (the whole event,
/// for a catch-all).
template <bool WholeEvent, class F> decltype(auto) call_handler(F& f, socket& s, event& e, bool take) {
    if constexpr (WholeEvent) {
        return f(s, e);
    } else if constexpr (std::is_invocable_v<F&, socket&, json&&> && std::is_invocable_v<F&, socket&, json&>) {
        // A payload by value: moved in rather than copied when nothing reads it afterwards.
        return take ? f(s, std::move(e.data)) : f(s, e.data);
    } else if constexpr (std::is_invocable_v<F&, socket&, json&>) {
        return f(s, e.data);
    } else if constexpr (std::is_invocable_v<F&, socket&>) {
        return f(s);
    } else if constexpr (std::is_invocable_v<F&, socket&, event&>) {
        return f(s, e);   // the whole event: its id, and Socket.IO's argument list (event::spread)
    } else {
        using P = typename payload_of<F>::type;
        return f(s, e.data.template get<P>());   // a failed conversion throws json::exception
    }
}

template <class T> struct is_stream : std::false_type {};
template <class T> struct is_stream<stream<T>> : std::true_type {};

template <class R> std::optional<outcome> to_outcome(R&& r) {
    if constexpr (is_stream<std::remove_cvref_t<R>>::value)
        return outcome{{}, nullptr, [st = std::make_shared<std::remove_cvref_t<R>>(std::move(r))]() -> std::optional<json> {
                           auto v = st->next();
                           if (!v) return std::nullopt;
                           return json(std::move(*v));
                       }};
    else if constexpr (std::is_same_v<std::remove_cvref_t<R>, response>)
        return outcome{std::move(r.event), std::move(r.data), {}, r.spread};
    else
        return outcome{{}, json(std::forward<R>(r))};
}

template <bool WholeEvent = false, class F> handler make_handler(F f);

template <bool WholeEvent = false, class F> handler make_handler(decorated<F> d) {
    handler h = make_handler<WholeEvent>(std::move(d.handler));
    h.around = std::move(d.around) | std::move(h.around);
    return h;
}

template <bool WholeEvent, class F> handler make_handler(F f) {
    using P = typename payload_of<F>::type;
    static_assert(WholeEvent || std::is_invocable_v<F&, socket&, json&> || std::is_invocable_v<F&, socket&> ||
                      std::is_invocable_v<F&, socket&, event&> || std::is_invocable_v<F&, socket&, P>,
                  "a gateway handler must be callable as (gw::socket&), (gw::socket&, gw::json), "
                  "(gw::socket&, gw::event&) or (gw::socket&, T) with T convertible from JSON, and return void, a value convertible to "
                  "gw::json, a gw::response, a gw::stream, or an asio::awaitable of one of those");
    using R = decltype(call_handler<WholeEvent>(f, std::declval<socket&>(), std::declval<event&>(), true));
    handler h;
    if constexpr (is_awaitable<R>::value) {
        using V = typename awaitable_value<R>::type;
        static_assert(std::is_void_v<V> || std::is_same_v<V, response> || std::is_constructible_v<json, V>,
                      "a gateway handler's awaitable must yield void, a gw::response or a value convertible to gw::json");
        h.async = [f = std::move(f)](socket& s, event& e, bool take) mutable -> asio::awaitable<std::optional<outcome>> {
            if constexpr (std::is_void_v<V>) {
                co_await call_handler<WholeEvent>(f, s, e, take);
                co_return std::nullopt;
            } else {
                co_return to_outcome(co_await call_handler<WholeEvent>(f, s, e, take));
            }
        };
    } else {
        static_assert(std::is_void_v<R> || std::is_same_v<std::remove_cvref_t<R>, response> ||
                          is_stream<std::remove_cvref_t<R>>::value || std::is_constructible_v<json, R>,
                      "a gateway handler must return void, a gw::response, a value convertible to gw::json, "
                      "or an asio::awaitable of one of those");
        h.sync = [f = std::move(f)](socket& s, event& e, bool take) mutable -> std::optional<outcome> {
            if constexpr (std::is_void_v<R>) {
                call_handler<WholeEvent>(f, s, e, take);
                return std::nullopt;
            } else {
                return to_outcome(call_handler<WholeEvent>(f, s, e, take));
            }
        };
    }
    return h;
}

/// A lifecycle hook: a plain callable returning void or asio::awaitable<void>.
template <class... A> using hook = std::function<asio::awaitable<void>(A...)>;

template <class... A, class F> hook<A...> make_hook(F f) {
    static_assert(std::is_invocable_v<F&, A...>, "a hook must be callable with the arguments of its event");
    using R = std::invoke_result_t<F&, A...>;
    static_assert(std::is_void_v<R> || std::is_same_v<R, asio::awaitable<void>>,
                  "a hook must return void or asio::awaitable<void>");
    if constexpr (std::is_void_v<R>)
        return [f = std::move(f)](A... a) mutable -> asio::awaitable<void> {
            f(a...);
            co_return;
        };
    else
        return f;
}

/// The exception event's data for what a handler threw: a ws_exception's own data, a conversion
/// failure named, anything else "Internal server error" (its text never reaches the client).
inline json exception_data(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const ws_exception& x) {
        return x.data();
    } catch (const json::exception& x) {
        std::string what = x.what();
        if (auto at = what.find("] "); at != std::string::npos) what.erase(0, at + 2);   // nlohmann's tag
        return {{"status", "error"}, {"message", "invalid payload: " + what}};
    } catch (...) {
        return {{"status", "error"}, {"message", "Internal server error"}};
    }
}

/// The enhancers of one call: the gateway's, the namespace's and the handler's own. Guards and
/// pipes run outermost first (as NestJS runs global, then controller, then route); interceptors and
/// filters innermost first.
struct call_stages {
    const stages* levels[3];

    /// Throws "Forbidden resource" when a guard denies.
    void guard(socket& s, const event& e) const {
        for (const auto* l : levels)
            for (const auto& g : l->guards)
                if (!g(s, e)) throw ws_exception("Forbidden resource");
    }
    void pipe(event& e) const {
        for (const auto* l : levels)
            for (const auto& p : l->pipes) p(e.data);
    }
    /// True when an interceptor will see the event after its handler.
    bool observed() const noexcept {
        return std::any_of(std::begin(levels), std::end(levels), [](const stages* l) { return !l->interceptors.empty(); });
    }
    void after(socket& s, const event& e, const json* reply, std::chrono::nanoseconds took) const {
        for (int i = 2; i >= 0; --i)
            for (const auto& f : levels[i]->interceptors) f(s, e, reply, took);
    }
    response failure(std::exception_ptr p) const {
        for (int i = 2; i >= 0; --i)
            for (const auto& f : levels[i]->filters)
                if (auto r = f(p)) return std::move(*r);
        return response{"exception", exception_data(p)};
    }
};

} // namespace detail

} // namespace gw::v0
#endif
