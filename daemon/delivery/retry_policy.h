#pragma once
// Exponential backoff with full jitter (delay drawn uniformly from
// [0, min(max_interval, initial_interval * 2^attempt)]), so that many relays
// recovering from the same upstream outage do not retry in lock step. A delay
// the upstream asked for (RetryInfo / Retry-After) takes precedence.
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>

#include "daemon/config/config.h"

namespace spanrelay::delivery {

class RetryPolicy {
 public:
  using Clock = std::chrono::steady_clock;

  RetryPolicy(config::RetryConfig config, std::uint64_t seed);

  // The delay before retry number `attempt` (0-based), or nullopt when the
  // batch has been retried for max_elapsed already (or retry is disabled).
  std::optional<std::chrono::milliseconds> next_delay(
      unsigned attempt, std::chrono::milliseconds elapsed,
      std::optional<std::chrono::milliseconds> requested_by_upstream);

 private:
  config::RetryConfig config_;
  std::mt19937_64 rng_;
};

}  // namespace spanrelay::delivery
