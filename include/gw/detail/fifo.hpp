// A first-in first-out queue that costs nothing while it is empty: std::deque allocates a map and
// a 512-byte block at construction, which an idle session pays three times over.
#pragma once
#include "config.hpp"

namespace gw::inline v0::detail {

/// A queue over a vector and the index of its front: push_back, front, pop_front, iteration from
/// front to back. Its storage goes when it empties, unless it is small (a queue that takes one
/// item at a time keeps its one slot).
template <class T> class fifo {
public:
    bool empty() const noexcept { return head_ == items_.size(); }
    std::size_t size() const noexcept { return items_.size() - head_; }
    T& front() noexcept { return items_[head_]; }
    T& back() noexcept { return items_.back(); }
    void push_back(T item) { items_.push_back(std::move(item)); }
    void pop_front() {
        items_[head_] = T{};   // what it holds goes now, not when the queue next empties
        if (++head_ == items_.size()) clear();
        else if (head_ >= 32 && head_ * 2 >= items_.size()) {   // never drained: the consumed half goes
            items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
            head_ = 0;
        }
    }
    void clear() noexcept {
        head_ = 0;
        if (items_.capacity() > keep) std::vector<T>().swap(items_);
        else items_.clear();
    }
    auto begin() noexcept { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
    auto end() noexcept { return items_.end(); }

private:
    static constexpr std::size_t keep = 4;
    std::vector<T> items_;
    std::size_t head_ = 0;
};

} // namespace gw::inline v0::detail
