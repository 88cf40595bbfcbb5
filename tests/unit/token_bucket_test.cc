#include "daemon/sampling/token_bucket.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace spanrelay::sampling {
namespace {

using namespace std::chrono_literals;
using Clock = TokenBucket::Clock;

// A fixed origin: the bucket only looks at differences between time points.
const Clock::time_point kStart = Clock::time_point(1000s);

int take_all(TokenBucket& bucket, Clock::time_point now, int attempts = 1000) {
  int taken = 0;
  for (int i = 0; i < attempts; ++i) taken += bucket.try_take(now) ? 1 : 0;
  return taken;
}

TEST_CASE("token_bucket: starts full with one second's worth of tokens") {
  TokenBucket bucket(5);
  CHECK(bucket.burst() == 5);
  CHECK(take_all(bucket, kStart) == 5);
  CHECK_FALSE(bucket.try_take(kStart));
}

TEST_CASE("token_bucket: refills at the rate and never beyond the burst") {
  TokenBucket bucket(5);  // one token every 200 ms
  REQUIRE(take_all(bucket, kStart) == 5);
  CHECK_FALSE(bucket.try_take(kStart + 199ms));
  CHECK(bucket.try_take(kStart + 200ms));
  CHECK_FALSE(bucket.try_take(kStart + 200ms));
  CHECK(take_all(bucket, kStart + 600ms) == 2);
  // A long idle time fills the bucket to its burst, no more.
  CHECK(take_all(bucket, kStart + 1h) == 5);
}

TEST_CASE("token_bucket: refills add up exactly despite floating point") {
  TokenBucket bucket(10);  // 0.1 s per token: 0.1 is not exact in binary
  REQUIRE(take_all(bucket, kStart) == 10);
  int taken = 0;
  for (int step = 1; step <= 100; ++step) taken += take_all(bucket, kStart + step * 100ms);
  CHECK(taken == 100);

  // 0.1 added ten times is 0.9999999999999999 in binary floating point; the
  // tenth second must still bring the token.
  TokenBucket slow(0.1);
  REQUIRE(slow.try_take(kStart));
  for (int second = 1; second < 10; ++second) CHECK_FALSE(slow.try_take(kStart + second * 1s));
  CHECK(slow.try_take(kStart + 10s));
}

TEST_CASE("token_bucket: a rate below one per second still allows one trace") {
  TokenBucket bucket(0.5);  // one token every 2 s, burst 1
  CHECK(bucket.burst() == 1);
  CHECK(bucket.try_take(kStart));
  CHECK_FALSE(bucket.try_take(kStart + 1s));
  CHECK_FALSE(bucket.try_take(kStart + 1999ms));
  CHECK(bucket.try_take(kStart + 2s));
  CHECK_FALSE(bucket.try_take(kStart + 2s));
}

TEST_CASE("token_bucket: an older time point refills nothing and does not rewind the clock") {
  TokenBucket bucket(5);
  REQUIRE(take_all(bucket, kStart) == 5);
  CHECK_FALSE(bucket.try_take(kStart - 1s));
  // Had the clock moved back to kStart - 1s, this would find 6 tokens' worth.
  CHECK(take_all(bucket, kStart + 200ms) == 1);
}

TEST_CASE("token_bucket: threads racing at one instant take exactly the burst") {
  constexpr int kThreads = 8;
  constexpr int kAttemptsPerThread = 500;
  TokenBucket bucket(1000);
  std::atomic<int> taken{0};
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();  // start together
      taken.fetch_add(take_all(bucket, kStart, kAttemptsPerThread));
    });
  }
  for (std::thread& thread : threads) thread.join();
  CHECK(taken.load() == 1000);
  CHECK_FALSE(bucket.try_take(kStart));
}

}  // namespace
}  // namespace spanrelay::sampling
