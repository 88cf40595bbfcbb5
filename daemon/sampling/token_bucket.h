#pragma once
// A token bucket for the rate_limit sampling policy: `rate` tokens per second,
// holding at most `burst` = max(1, rate) tokens (one second's worth, and room
// for at least one trace), full at the first call. Time is passed in, so the
// tests drive it without sleeping and a caller reads the clock once per
// decision.
#include <chrono>
#include <mutex>
#include <optional>

namespace spanrelay::sampling {

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;

  explicit TokenBucket(double tokens_per_second);

  TokenBucket(const TokenBucket&) = delete;
  TokenBucket& operator=(const TokenBucket&) = delete;

  // Takes one token if there is one at `now`. Thread-safe. Shard threads read
  // their clocks independently, so `now` may be a little older than the time
  // seen by a previous call: such a call refills nothing, and the bucket's
  // clock never moves backwards.
  bool try_take(Clock::time_point now);

  double rate() const { return rate_; }
  double burst() const { return burst_; }

 private:
  const double rate_;
  const double burst_;
  std::mutex mutex_;
  double tokens_;                          // guarded by mutex_
  std::optional<Clock::time_point> last_;  // guarded by mutex_; unset until the first call
};

}  // namespace spanrelay::sampling
