// gw::prepared: a message encoded once (by a codec) and framed lazily, at most once per kind of
// recipient: a plain WebSocket text frame, or an Engine.IO message packet in a WebSocket frame (a
// polling session takes the text itself), each also compressed (permessage-deflate without context
// takeover) for the connections that share compressed frames. A broadcast shares one prepared
// message across its sockets, workers and nodes.
#pragma once
#include "../detail/config.hpp"
#include "ws_frame.hpp"
#include "deflate.hpp"

namespace gw::inline v0 {

/// An encoded message and the wire forms made of it, each made once, on first use, by whichever
/// thread needs it first. Immutable once made, apart from those forms; share it by shared_ptr.
class prepared {
public:
    /// compress: false when the emit asked for no compression (compress(false)).
    explicit prepared(std::string text, bool compress = true) : text_(std::move(text)), compress_(compress) {}
    prepared(const prepared&) = delete;
    prepared& operator=(const prepared&) = delete;

    /// The message as the codec wrote it (a text message's payload).
    const std::string& text() const noexcept { return text_; }

    /// The whole WebSocket frame (header and payload, unmasked: a server's), made on first call.
    const std::shared_ptr<const std::string>& websocket_frame() const { return websocket_.get(text_, {}); }
    /// The same message as an Engine.IO message packet ('4' before the text) in a WebSocket frame.
    const std::shared_ptr<const std::string>& engineio_frame() const { return engineio_.get(text_, "4"); }
    /// False when the emit asked for no compression.
    bool compress() const noexcept { return compress_; }

    /// The WebSocket frame compressed without context takeover (window 15, RSV1 set): the same
    /// bytes serve every connection whose deflate_session::shares_frames(). The first caller's
    /// compression level and memory level make it.
    const std::shared_ptr<const std::string>& deflated_websocket_frame(const detail::deflate_session& d) const {
        return deflated_websocket_.get(text_, {}, &d);
    }
    /// The Engine.IO message packet the same way.
    const std::shared_ptr<const std::string>& deflated_engineio_frame(const detail::deflate_session& d) const {
        return deflated_engineio_.get(text_, "4", &d);
    }

private:
    /// One wire form: made under a once_flag; after that, one acquiring load answers every
    /// recipient of a broadcast.
    struct form {
        std::once_flag once;
        std::atomic<bool> ready{false};
        std::shared_ptr<const std::string> bytes;

        /// deflate: compressed as that session's settings say (nullptr: as it is).
        const std::shared_ptr<const std::string>& get(const std::string& text, std::string_view prefix,
                                                      const detail::deflate_session* deflate = nullptr) {
            if (ready.load(std::memory_order_acquire)) return bytes;
            std::call_once(once, [&] {
                auto frame = std::make_shared<std::string>();
                std::string compressed;
                std::string_view body = text;
#if defined(GATEWAY_DEFLATE)
                if (deflate) {
                    detail::thread_deflater(deflate->level(), 15, deflate->mem_level()).compress(text, compressed, true, prefix);
                    body = compressed;
                    prefix = {};
                }
#endif
                const std::size_t size = prefix.size() + body.size();
                frame->resize(detail::max_frame_header);
                frame->resize(detail::encode_header(reinterpret_cast<unsigned char*>(frame->data()), opcode::text, true, size,
                                                    nullptr, deflate != nullptr));
                frame->reserve(frame->size() + size);
                frame->append(prefix);
                frame->append(body);
                bytes = std::move(frame);
                ready.store(true, std::memory_order_release);
            });
            return bytes;
        }
    };
    std::string text_;
    bool compress_ = true;
    mutable form websocket_, engineio_, deflated_websocket_, deflated_engineio_;
};

} // namespace gw::v0
