#include "daemon/sampling/token_bucket.h"

#include <algorithm>

namespace spanrelay::sampling {
namespace {

// Refills are computed in floating point (elapsed seconds * rate), so a
// refill meant to add exactly one token may add 0.9999999999. Counting a token
// as present from 1 - kTolerance keeps the bucket exact for the rates and
// intervals people write down, at a negligible cost in precision.
constexpr double kTolerance = 1e-9;

}  // namespace

TokenBucket::TokenBucket(double tokens_per_second)
    : rate_(std::max(0.0, tokens_per_second)),
      burst_(std::max(1.0, tokens_per_second)),
      tokens_(burst_) {}

bool TokenBucket::try_take(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (!last_) {
    last_ = now;
  } else if (now > *last_) {
    const std::chrono::duration<double> elapsed = now - *last_;
    tokens_ = std::min(burst_, tokens_ + elapsed.count() * rate_);
    last_ = now;
  }
  if (tokens_ < 1.0 - kTolerance) return false;
  tokens_ = std::max(0.0, tokens_ - 1.0);
  return true;
}

}  // namespace spanrelay::sampling
