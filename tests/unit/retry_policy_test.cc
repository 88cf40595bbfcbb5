#include "daemon/delivery/retry_policy.h"

#include <doctest/doctest.h>

using namespace std::chrono_literals;
using spanrelay::delivery::RetryPolicy;

namespace {
spanrelay::config::RetryConfig retry(std::chrono::milliseconds initial,
                                     std::chrono::milliseconds max,
                                     std::chrono::milliseconds elapsed) {
  spanrelay::config::RetryConfig c;
  c.initial_interval = initial;
  c.max_interval = max;
  c.max_elapsed = elapsed;
  return c;
}
}  // namespace

TEST_CASE("retry_policy: full jitter stays under the exponential ceiling and the cap") {
  RetryPolicy policy(retry(100ms, 1000ms, 0ms), 42);
  for (unsigned attempt = 0; attempt < 12; ++attempt) {
    const auto ceiling = std::min<std::int64_t>(1000, 100 << std::min(attempt, 20u));
    for (int i = 0; i < 200; ++i) {
      auto d = policy.next_delay(attempt, 0ms, std::nullopt);
      REQUIRE(d.has_value());
      CHECK(d->count() >= 0);
      CHECK(d->count() <= ceiling);
    }
  }
}

TEST_CASE("retry_policy: jitter actually spreads the delays") {
  RetryPolicy policy(retry(1000ms, 30000ms, 0ms), 7);
  std::int64_t lo = 1 << 30, hi = 0;
  for (int i = 0; i < 500; ++i) {
    auto d = policy.next_delay(3, 0ms, std::nullopt)->count();
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  CHECK(lo < 2000);
  CHECK(hi > 6000);
}

TEST_CASE("retry_policy: the upstream's delay wins, capped at max_interval") {
  RetryPolicy policy(retry(100ms, 5000ms, 0ms), 1);
  CHECK(policy.next_delay(0, 0ms, 3000ms) == 3000ms);
  CHECK(policy.next_delay(0, 0ms, 86400000ms) == 5000ms);
}

TEST_CASE("retry_policy: gives up once max_elapsed would be exceeded, never when it is 0") {
  RetryPolicy bounded(retry(100ms, 1000ms, 10000ms), 3);
  CHECK_FALSE(bounded.next_delay(5, 9500ms, 1000ms).has_value());
  CHECK(bounded.next_delay(5, 8000ms, 1000ms).has_value());
  RetryPolicy forever(retry(100ms, 1000ms, 0ms), 3);
  CHECK(forever.next_delay(50, std::chrono::hours(24), std::nullopt).has_value());
}

TEST_CASE("retry_policy: disabled retry never retries") {
  auto c = retry(100ms, 1000ms, 0ms);
  c.enabled = false;
  RetryPolicy policy(c, 3);
  CHECK_FALSE(policy.next_delay(0, 0ms, std::nullopt).has_value());
}
