// gw::prepared: a message encoded once (by a codec) and framed lazily, at most once per kind of
// recipient: a plain WebSocket text frame, or an Engine.IO message packet in a WebSocket frame (a
// polling session takes the text itself); a compressed frame is a kind to come. A broadcast shares
// one prepared message across its sockets, workers and nodes.
#pragma once
#include "../detail/config.hpp"
#include "ws_frame.hpp"

namespace gw::inline v0 {

/// An encoded message and the wire forms made of it, each made once, on first use, by whichever
/// thread needs it first. Immutable once made, apart from those forms; share it by shared_ptr.
class prepared {
public:
    explicit prepared(std::string text) : text_(std::move(text)) {}
    prepared(const prepared&) = delete;
    prepared& operator=(const prepared&) = delete;

    /// The message as the codec wrote it (a text message's payload).
    const std::string& text() const noexcept { return text_; }

    /// The whole WebSocket frame (header and payload, unmasked: a server's), made on first call.
    const std::shared_ptr<const std::string>& websocket_frame() const { return websocket_.get(text_, {}); }
    /// The same message as an Engine.IO message packet ('4' before the text) in a WebSocket frame.
    const std::shared_ptr<const std::string>& engineio_frame() const { return engineio_.get(text_, "4"); }

private:
    /// One wire form: made under a once_flag; after that, one acquiring load answers every
    /// recipient of a broadcast.
    struct form {
        std::once_flag once;
        std::atomic<bool> ready{false};
        std::shared_ptr<const std::string> bytes;

        const std::shared_ptr<const std::string>& get(const std::string& text, std::string_view prefix) {
            if (ready.load(std::memory_order_acquire)) return bytes;
            std::call_once(once, [&] {
                auto frame = std::make_shared<std::string>();
                const std::size_t size = prefix.size() + text.size();
                frame->resize(detail::max_frame_header);
                frame->resize(detail::encode_header(reinterpret_cast<unsigned char*>(frame->data()), opcode::text, true, size));
                frame->reserve(frame->size() + size);
                frame->append(prefix);
                frame->append(text);
                bytes = std::move(frame);
                ready.store(true, std::memory_order_release);
            });
            return bytes;
        }
    };
    std::string text_;
    mutable form websocket_, engineio_;
};

} // namespace gw::v0
