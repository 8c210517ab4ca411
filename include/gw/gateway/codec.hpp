// Wire formats: a codec turns messages into events and events into text. nest_codec speaks
// NestJS WsAdapter's {event, data, id} envelope.
#pragma once
#include "../detail/json.hpp"
#include "../core/vocabulary.hpp"
#include "../protocol/json_fast.hpp"
#include "../protocol/prepared.hpp"
#include "../net/transport.hpp"
#include "vocabulary.hpp"

#ifndef GATEWAY_NO_JSON
namespace gw::inline v0 {

/// A wire format: turns messages into events and events into messages. The gateway's handlers never
/// see it, so one set of handlers can serve several formats.
/// A session's decoding state, for formats whose events may span several messages (Socket.IO's
/// binary attachments follow their event as messages of their own).
class decoder {
public:
    virtual ~decoder() = default;
    /// Takes one message: the event once it is complete; nullopt with error empty while parts are
    /// still to come, or with error saying what was wrong.
    virtual std::optional<event> feed(message&& m, std::string& error) = 0;
};

/// A wire format: the stateless half (decode one message, encode an event) and, where events span
/// messages, a decoder per session.
class codec {
public:
    virtual ~codec() = default;
    /// A decoder for one session; nullptr (the default) when decode() alone will do, so a session
    /// of a format like NestJS's costs no allocation for it.
    virtual std::unique_ptr<decoder> make_decoder() const { return nullptr; }
    /// An event encoded once for many recipients (a broadcast): no id, no acknowledgement.
    /// compress: false when the emit asked for no compression.
    std::shared_ptr<const prepared> prepare(std::string_view name, const json& data, bool spread = false, bool compress = true) const {
        return std::make_shared<const prepared>(encode(name, data, nullptr, 0, spread), compress);
    }
    /// Decodes a message; on failure returns nullopt and says what was wrong in error.
    virtual std::optional<event> decode(const message& m, std::string& error) const = 0;
    /// The text of a message carrying an event (its id too, unless null; ack, unless 0, asks the
    /// client to acknowledge; spread: data is a list of arguments, see gw::event::spread).
    virtual std::string encode(std::string_view name, const json& data, const json& id, std::int64_t ack, bool spread = false) const = 0;
    /// The text answering request with a handler's reply (name: the reply's event; empty for the
    /// request's own), or nullopt when the format sends nothing. NestJS's envelope always answers:
    /// the event with the request's id.
    virtual std::optional<std::string> reply(const event& request, std::string_view name, const json& data, bool spread) const {
        return encode(name.empty() ? std::string_view(request.name) : name, data, request.id, 0, spread);
    }
    /// A broadcast kept for connection-state recovery, with its offset: Socket.IO sends the offset
    /// as the event's last argument (the client remembers it); other formats ignore it.
    virtual std::shared_ptr<const prepared> prepare_kept(std::string_view name, const json& data, bool spread, std::string_view offset,
                                                         bool compress = true) const {
        (void)offset;
        return prepare(name, data, spread, compress);
    }
    /// True when a message that does not decode ends the connection (Socket.IO's rule), false when
    /// the client is told with an exception event (NestJS's).
    virtual bool closes_on_error() const noexcept { return false; }
    /// True when an event without a handler, or an acknowledgement no emit waits for, is answered
    /// with an exception event (NestJS's way); false when it is ignored (Socket.IO's).
    virtual bool answers_unknown() const noexcept { return true; }
};

/// A broadcast's event, encoded at most once per wire format it meets, by whichever worker needs
/// it first: the gateway's own format, and the Socket.IO format of the namespace it goes to.
class broadcast_message {
public:
    /// second_made: the second codec's form when it is made already (a broadcast kept for recovery);
    /// spread: data is a list of arguments (gw::event::spread), as a broadcast from another node may be.
    /// compress: false when the emit asked for no compression (compress(false)).
    broadcast_message(std::string name, json data, const codec* first, const codec* second,
                      std::shared_ptr<const prepared> second_made = nullptr, bool spread = false, bool compress = true)
        : name_(std::move(name)), data_(std::move(data)), codecs_{first, second}, spread_(spread), compress_(compress) {
        if (second_made) {
            forms_[1].made = std::move(second_made);
            forms_[1].ready.store(true, std::memory_order_release);
        }
    }

    const std::string& name() const noexcept { return name_; }
    const json& data() const noexcept { return data_; }
    bool spread() const noexcept { return spread_; }
    bool compress() const noexcept { return compress_; }

    /// The message as recipients of codec c share it, or nullptr when c is neither of the two
    /// (the caller encodes it for its one recipient).
    const std::shared_ptr<const prepared>* shared_for(const codec& c) const {
        for (std::size_t i = 0; i < 2; ++i) {
            if (codecs_[i] != &c) continue;
            auto& f = forms_[i];
            if (!f.ready.load(std::memory_order_acquire))
                std::call_once(f.once, [&] {
                    f.made = c.prepare(name_, data_, spread_, compress_);
                    f.ready.store(true, std::memory_order_release);
                });
            return &f.made;
        }
        return nullptr;
    }
    /// The message for a recipient of codec c.
    void send_to(transport& t, const codec& c, bool droppable) const {
        if (auto* p = shared_for(c)) t.send_prepared(*p, droppable);
        else t.send_prepared(c.prepare(name_, data_, spread_, compress_), droppable);
    }

private:
    struct form {
        std::once_flag once;
        std::atomic<bool> ready{false};
        std::shared_ptr<const prepared> made;
    };
    std::string name_;
    json data_;
    std::array<const codec*, 2> codecs_;
    bool spread_ = false, compress_ = true;
    mutable std::array<form, 2> forms_;
};

/// NestJS WsAdapter's format: a text frame holding {"event": string, "data": any, "id"?: number|string}.
/// Acknowledgements the server asks for: it sends {"event", "data", "ack": n}; the client answers
/// {"event": "ack", "ack": n, "data": reply}.
class nest_codec final : public codec {
public:
    std::optional<event> decode(const message& m, std::string& error) const override {
        if (m.binary) {
            error = "expected a text message holding a JSON object";
            return std::nullopt;
        }
        try {   // the scan validates the text, so the library's parser agrees; a throw must still not escape
            return decode_text(m.data, error);
        } catch (const json::exception&) {
            error = "malformed JSON";
            return std::nullopt;
        }
    }

    /// {"event":...,"data":...} in NestJS's key order, written directly: no JSON tree is built or copied.
    std::string encode(std::string_view name, const json& data, const json& id, std::int64_t ack, bool = false) const override {
        std::string out;
        out.reserve(64 + name.size() + (data.is_string() ? data.get_ref<const std::string&>().size() : 0));
        out += "{\"event\":";
        detail::write_json_string(out, name);
        out += ",\"data\":";
        detail::write_json(out, data);
        if (!id.is_null()) {
            out += ",\"id\":";
            detail::write_json(out, id);
        }
        if (ack > 0) out.append(",\"ack\":").append(std::to_string(ack));
        out += '}';
        return out;
    }

private:
    static std::optional<event> decode_text(std::string_view text, std::string& error) {
        // One validating pass finds the members; only "data", "id" and "ack" become JSON values.
        std::string_view name, data, id, ack;
        bool name_escaped = false, has_name = false;
        detail::json_scanner in(text);
        bool valid = in.take('{');
        if (valid && !in.take('}')) {
            do {
                std::string_view key;
                bool key_escaped = false;
                if (!(valid = in.string(key, key_escaped) && in.take(':'))) break;
                std::string key_text;
                if (key_escaped) key = key_text = detail::json_string_text(key, true);
                if (key == "event") {   // the last of repeated keys counts, as for the library's parser
                    has_name = in.next_is('"');
                    if (!(valid = has_name ? in.string(name, name_escaped) : in.value())) break;
                    continue;
                }
                std::string_view span;
                if (!(valid = in.value(span))) break;
                if (key == "data") data = span;
                else if (key == "id") id = span;
                else if (key == "ack") ack = span;
            } while (in.take(','));
            valid = valid && in.take('}');
        }
        valid = valid && in.at_end();
        static constexpr const char* shape = "expected {\"event\": string, \"data\": any}";
        if (!valid) {
            // Valid JSON of another shape says so. The scanner decides, not json::accept: that one
            // skips a byte-order mark and stops at a NUL, which JSON.parse (and the scan) refuse.
            detail::json_scanner whole(text);
            error = whole.value() && whole.at_end() ? shape : "malformed JSON";
            return std::nullopt;
        }
        if (!has_name) {
            error = shape;
            return std::nullopt;
        }
        event e;
        e.name = detail::json_string_text(name, name_escaped);
        if (!data.empty()) e.data = detail::json_value(data);
        json id_value = id.empty() ? json() : detail::json_value(id);
        if (!id_value.is_null() && !id_value.is_number() && !id_value.is_string()) {
            error = "\"id\" must be a number or a string";
            return std::nullopt;
        }
        e.id = std::move(id_value);
        if (!ack.empty()) {
            json ack_value = detail::json_value(ack);
            if (!ack_value.is_number_integer() || ack_value.get<std::int64_t>() <= 0) {
                error = "\"ack\" must be a positive integer";
                return std::nullopt;
            }
            e.ack = ack_value.get<std::int64_t>();
        }
        return e;
    }
};

} // namespace gw::v0
#endif
