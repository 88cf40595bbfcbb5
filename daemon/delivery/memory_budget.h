#pragma once
// The memory budget shared by everything that holds accepted spans before the
// upstream acknowledged them (the open batch and the delivery queue). Admission
// reserves from it without blocking; delivery releases. A reservation that
// does not fit is refused at once, so an app is never made to wait.
#include <atomic>
#include <cstdint>

namespace spanrelay::delivery {

class MemoryBudget {
 public:
  explicit MemoryBudget(std::uint64_t limit_bytes) : limit_(limit_bytes) {}

  bool try_reserve(std::uint64_t bytes) {
    std::uint64_t used = used_.load(std::memory_order_relaxed);
    do {
      if (used + bytes > limit_) return false;
    } while (!used_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed));
    return true;
  }
  void release(std::uint64_t bytes) { used_.fetch_sub(bytes, std::memory_order_relaxed); }

  std::uint64_t used() const { return used_.load(std::memory_order_relaxed); }
  std::uint64_t limit() const { return limit_; }

 private:
  const std::uint64_t limit_;
  std::atomic<std::uint64_t> used_{0};
};

}  // namespace spanrelay::delivery
