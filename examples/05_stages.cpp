// 05_stages: NestJS's enhancers on a small note store. Handshake middleware admits a socket; guards,
// pipes, interceptors and exception filters wrap its events, attached to one handler (stages |
// handler), to a namespace (ns.apply) or to every namespace (app.apply). Usage: 05_stages PORT
// Connect to ws://HOST:PORT/notes?user=NAME and send {"event": "add", "data": {"text": "hi"}, "id": 1},
// "get" {"index": 0}, "list", and "clear" (user admin only). See README.md, "Enhancer stages".
#include "gateway.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

using gw::json;

/// Handshake middleware: no ?user=NAME (letters and digits), no WebSocket; the name becomes socket.data().
void require_user(gw::http_request& request) {
    auto user = request.query_param("user");
    if (!user || user->empty() || user->size() > 32 ||
        !std::all_of(user->begin(), user->end(), [](unsigned char c) { return std::isalnum(c) != 0; }))
        throw gw::http_refusal(401, "?user=NAME (letters and digits) is required\n");
    request.attachment = *user;
}

std::string user_of(gw::socket& s) { return s.data_as<std::string>(); }

int main(int argc, char** argv) {
    char* end = nullptr;
    const long port = argc == 2 ? std::strtol(argv[1], &end, 10) : -1;
    if (argc != 2 || *argv[1] == '\0' || *end != '\0' || port < 0 || port > 65535) {
        std::fprintf(stderr, "usage: %s PORT   (PORT 0-65535; 0 picks a free port)\n", argv[0]);
        return 2;
    }
    asio::io_context io{1};
    gw::gateway app{io, {.port = static_cast<std::uint16_t>(port)}};
    std::vector<std::string> store;   // one event loop: handlers never run at once, so no lock

    // Guards and pipes run global first, then the namespace's, then the handler's own; interceptors
    // and exception filters run the other way round, the handler's own first.

    // Global: an interceptor logs every event with the time its pipes and handler took, and a filter
    // answers a lookup that missed (std::out_of_range) with "notFound" instead of "Internal server error".
    app.apply(gw::intercept([](gw::socket& s, const gw::event& e, const json* reply, std::chrono::nanoseconds took) {
                  std::printf("%s %s: %s in %lld us\n", s.nsp().c_str(), e.name.c_str(), reply ? "replied" : "no reply",
                              static_cast<long long>(took.count() / 1000));
                  std::fflush(stdout);
              }) |
              gw::filter<std::out_of_range>([](const std::out_of_range&) { return gw::response{"notFound", nullptr}; }));

    auto notes = app.of("/notes");
    notes.use(require_user);
    // Namespace: every event of /notes carries an object, or nothing.
    notes.apply(gw::validate([](const json& d) { return d.is_object() || d.is_null(); }, "data must be an object"));

    // Handler: pipes check, then rewrite the payload (trimmed text); a pipe refuses by throwing gw::ws_exception.
    notes.on("add", gw::validate([](const json& d) { return d.contains("text") && d["text"].is_string(); }, "text is required") |
                        gw::pipe([](json& d) {
                            auto& text = d["text"].get_ref<std::string&>();
                            text.erase(0, text.find_first_not_of(" \t"));
                            text.erase(text.find_last_not_of(" \t") + 1);
                            if (text.empty()) throw gw::ws_exception("text is blank");
                        }) |
                        [&store](gw::socket&, json d) {
                            store.push_back(d["text"].get<std::string>());
                            return store.size() - 1;   // the reply: the new note's index
                        });

    // No stage of its own: a missing "index" is an invalid payload; one past the end throws
    // std::out_of_range from vector::at, which the global filter answers.
    notes.on("get", [&store](gw::socket&, json d) { return store.at(d.at("index").get<std::size_t>()); });
    notes.on("list", [&store](gw::socket&) { return store; });

    // Handler: a guard (anyone but admin gets "Forbidden resource") and an interceptor that logs who cleared.
    notes.on("clear", gw::guard([](gw::socket& s) { return user_of(s) == "admin"; }) |
                          gw::intercept([](gw::socket& s, const gw::event&, const json*, std::chrono::nanoseconds) {
                              std::printf("notes cleared by %s\n", user_of(s).c_str());
                          }) |
                          [&store](gw::socket&) {
                              store.clear();
                              return "cleared";
                          });

    app.on_init([&] {
        std::printf("listening on port %u\n", static_cast<unsigned>(app.port()));
        std::fflush(stdout);
    });
    asio::signal_set signals{io, SIGINT, SIGTERM};
    // A graceful exit: every connection gets 1001 after what was queued for it (at most 10 s).
    signals.async_wait([&](std::error_code, int) {
        asio::co_spawn(io, app.stop(), [&](std::exception_ptr) { io.stop(); });
    });
    io.run();
    return 0;
}
