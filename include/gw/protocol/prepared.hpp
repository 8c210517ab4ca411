// gw::prepared: a message encoded once (by a codec) and framed lazily, at most once per kind of
// recipient: a plain WebSocket text frame today; a compressed frame and an Engine.IO packet are
// kinds to come. A broadcast shares one prepared message across its sockets, workers and nodes.
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
    const std::shared_ptr<const std::string>& websocket_frame() const {
        // Every recipient of a broadcast asks: after the first, one acquiring load answers.
        if (websocket_ready_.load(std::memory_order_acquire)) return websocket_;
        std::call_once(websocket_once_, [this] {
            auto frame = std::make_shared<std::string>();
            frame->resize(detail::max_frame_header);
            frame->resize(detail::encode_header(reinterpret_cast<unsigned char*>(frame->data()), opcode::text, true, text_.size()));
            frame->append(text_);
            websocket_ = std::move(frame);
            websocket_ready_.store(true, std::memory_order_release);
        });
        return websocket_;
    }

private:
    std::string text_;
    mutable std::once_flag websocket_once_;
    mutable std::atomic<bool> websocket_ready_{false};
    mutable std::shared_ptr<const std::string> websocket_;
};

} // namespace gw::v0
