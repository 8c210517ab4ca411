// What a connection sends, as it waits to be written: frames whose payload is owned or shared
// with other connections (a broadcast), gathered into one write; and the per-thread buffer reads
// land in.
#pragma once
#include "../detail/asio.hpp"
#include "../protocol/ws_frame.hpp"

namespace gw::inline v0::detail {

/// A frame waiting in an outbox: its header and its payload, owned or shared with other connections.
struct out_frame {
    std::array<unsigned char, max_frame_header> head{};
    std::uint8_t head_size = 0;
    std::string payload;
    std::shared_ptr<const std::string> shared;
    asio::const_buffer payload_buffer() const noexcept { return shared ? asio::buffer(*shared) : asio::buffer(payload); }
};

/// A batch of frames as one buffer sequence (header, payload, header, payload, ...) for one gathered
/// write, built on the fly: no vector of buffers to allocate or keep.
struct frame_buffers {
    const out_frame* first;
    const out_frame* last;

    class iterator {
    public:
        using iterator_category = std::bidirectional_iterator_tag;
        using value_type = asio::const_buffer;
        using difference_type = std::ptrdiff_t;
        using pointer = const asio::const_buffer*;
        using reference = asio::const_buffer;

        iterator() = default;
        iterator(const out_frame* f, bool body) : f_(f), body_(body) {}
        asio::const_buffer operator*() const noexcept {
            return body_ ? f_->payload_buffer() : asio::const_buffer(f_->head.data(), f_->head_size);
        }
        iterator& operator++() noexcept {
            if (body_) ++f_;
            body_ = !body_;
            return *this;
        }
        iterator operator++(int) noexcept {
            auto old = *this;
            ++*this;
            return old;
        }
        iterator& operator--() noexcept {
            if (!body_) --f_;
            body_ = !body_;
            return *this;
        }
        iterator operator--(int) noexcept {
            auto old = *this;
            --*this;
            return old;
        }
        bool operator==(const iterator&) const = default;

    private:
        const out_frame* f_ = nullptr;
        bool body_ = false;
    };
    iterator begin() const noexcept { return {first, false}; }
    iterator end() const noexcept { return {last, false}; }
};

/// The per-thread buffer plain-TCP reads land in: bytes leave it before the reader suspends, so an
/// idle connection holds no read buffer at all.
inline std::span<unsigned char> read_scratch() {
    constexpr std::size_t size = 64 << 10;
    thread_local std::unique_ptr<unsigned char[]> buf{new unsigned char[size]};
    return {buf.get(), size};
}

} // namespace gw::v0::detail
