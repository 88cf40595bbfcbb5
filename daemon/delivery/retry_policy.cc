#include "daemon/delivery/retry_policy.h"

#include <algorithm>

namespace spanrelay::delivery {

RetryPolicy::RetryPolicy(config::RetryConfig config, std::uint64_t seed)
    : config_(config), rng_(seed) {}

std::optional<std::chrono::milliseconds> RetryPolicy::next_delay(
    unsigned attempt, std::chrono::milliseconds elapsed,
    std::optional<std::chrono::milliseconds> requested_by_upstream) {
  using std::chrono::milliseconds;
  if (!config_.enabled) return std::nullopt;
  milliseconds delay;
  if (requested_by_upstream) {
    // Honour the upstream, but never beyond max_interval: a bogus Retry-After
    // of a day must not park a batch that long.
    delay = std::min(*requested_by_upstream, config_.max_interval);
  } else {
    const auto shift = std::min(attempt, 30u);
    const auto ceiling_ms =
        std::min<std::int64_t>(config_.max_interval.count(),
                               config_.initial_interval.count() * (std::int64_t{1} << shift));
    std::uniform_int_distribution<std::int64_t> jitter(0, std::max<std::int64_t>(ceiling_ms, 1));
    delay = milliseconds(jitter(rng_));
  }
  if (config_.max_elapsed.count() > 0 && elapsed + delay > config_.max_elapsed) return std::nullopt;
  return delay;
}

}  // namespace spanrelay::delivery
