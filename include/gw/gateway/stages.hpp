// Enhancer stages, as NestJS's guards, pipes, interceptors and exception filters, composed with |.
#pragma once
#include "../detail/json.hpp"
#include "socket.hpp"
#include "vocabulary.hpp"

#ifndef GATEWAY_NO_JSON
namespace gw::inline v0 {

/// Enhancers around handlers, as NestJS's: guards decide whether a handler runs, pipes validate and
/// transform its payload, interceptors see the request, the reply and the time taken, and exception
/// filters map what was thrown to what the client receives. Built by gw::guard, gw::validate,
/// gw::pipe, gw::intercept and gw::filter; `a | b` runs both (a's kind-mates first); `stages | handler`
/// attaches them to one handler; namespace_ref::apply and gateway::apply attach them to a namespace or
/// to everything. Each stage is a plain callable, testable alone.
struct stages {
    std::vector<std::function<bool(socket&, const event&)>> guards;
    std::vector<std::function<void(json&)>> pipes;
    std::vector<std::function<void(socket&, const event&, const json* reply, std::chrono::nanoseconds took)>> interceptors;
    std::vector<std::function<std::optional<response>(std::exception_ptr)>> filters;
};

template <class T> inline constexpr bool is_stages_v = std::is_same_v<std::remove_cvref_t<T>, stages>;

inline stages operator|(stages a, stages b) {
    auto append = [](auto& to, auto& from) { to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end())); };
    append(a.guards, b.guards);
    append(a.pipes, b.pipes);
    append(a.interceptors, b.interceptors);
    append(a.filters, b.filters);
    return a;
}

/// A handler with its own stages: what `stages | handler` makes.
template <class F> struct decorated {
    stages around;
    F handler;
};

template <class F>
    requires(!is_stages_v<F>)
decorated<F> operator|(stages s, F handler) {
    return {std::move(s), std::move(handler)};
}

/// A guard: pred(socket&, const json& data) or pred(socket&) returns false to deny; the client gets
/// the exception "Forbidden resource".
template <class P> stages guard(P pred) {
    static_assert(std::is_invocable_r_v<bool, P&, socket&, const json&> || std::is_invocable_r_v<bool, P&, socket&>,
                  "a guard must be callable as (gw::socket&, const gw::json&) or (gw::socket&) and return bool");
    stages s;
    s.guards.emplace_back([p = std::move(pred)](socket& so, const event& e) mutable -> bool {
        if constexpr (std::is_invocable_r_v<bool, P&, socket&, const json&>) return p(so, e.data);
        else return p(so);
    });
    return s;
}

/// A validating pipe: pred(const json& data) returns false to refuse the event with `message`.
template <class P> stages validate(P pred, std::string message = "Validation failed") {
    static_assert(std::is_invocable_r_v<bool, P&, const json&>, "a validator must be callable as (const gw::json&) and return bool");
    stages s;
    s.pipes.emplace_back([p = std::move(pred), m = std::move(message)](json& data) mutable {
        if (!p(static_cast<const json&>(data))) throw ws_exception(m);
    });
    return s;
}

/// A transforming pipe: f(json& data) rewrites the payload, or throws gw::ws_exception naming what
/// was wrong.
template <class F> stages pipe(F f) {
    static_assert(std::is_invocable_v<F&, json&>, "a pipe must be callable as (gw::json&)");
    stages s;
    s.pipes.emplace_back(std::move(f));
    return s;
}

/// An interceptor: f(socket&, const event& request, const json* reply, std::chrono::nanoseconds took)
/// after the handler (reply is null when it returned nothing or threw).
template <class F> stages intercept(F f) {
    static_assert(std::is_invocable_v<F&, socket&, const event&, const json*, std::chrono::nanoseconds>,
                  "an interceptor must be callable as (gw::socket&, const gw::event&, const gw::json* reply, "
                  "std::chrono::nanoseconds took)");
    stages s;
    s.interceptors.emplace_back(std::move(f));
    return s;
}

/// An exception filter for exceptions of type E: f(const E&) returns what the client receives (a
/// gw::response, or JSON for the data of an "exception" event). Others pass to the next filter.
template <class E, class F> stages filter(F f) {
    using R = std::invoke_result_t<F&, const E&>;
    static_assert(std::is_same_v<R, response> || std::is_constructible_v<json, R>,
                  "an exception filter must be callable as (const E&) and return gw::response or gw::json");
    stages s;
    s.filters.emplace_back([f = std::move(f)](std::exception_ptr p) mutable -> std::optional<response> {
        try {
            std::rethrow_exception(p);
        } catch (const E& e) {
            if constexpr (std::is_same_v<R, response>) return f(e);
            else return response{"exception", json(f(e))};
        } catch (...) {
            return std::nullopt;
        }
    });
    return s;
}

} // namespace gw::v0
#endif
