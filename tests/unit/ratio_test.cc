#include "daemon/sampling/ratio.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

namespace spanrelay::sampling {
namespace {

// A trace id whose last 8 bytes are `low` (big-endian) and whose first 8 are
// `high`: the first half must never matter.
constexpr otlp::TraceId id_with_low_bits(std::uint64_t low, std::uint64_t high = 0) {
  otlp::TraceId id{};
  for (int i = 0; i < 8; ++i) {
    id[7 - i] = static_cast<std::uint8_t>(high >> (8 * i));
    id[15 - i] = static_cast<std::uint8_t>(low >> (8 * i));
  }
  return id;
}

constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

// The rule is constexpr: thresholds can be checked at compile time.
static_assert(RatioRule::from_ratio(0.5).threshold() == (std::uint64_t{1} << 63));
static_assert(ratio_keeps(id_with_low_bits((std::uint64_t{1} << 63) - 1), 0.5));
static_assert(!ratio_keeps(id_with_low_bits(std::uint64_t{1} << 63), 0.5));

TEST_CASE("ratio: the low bits are the last 8 bytes of the trace id, big-endian") {
  otlp::TraceId id{};
  for (std::size_t i = 0; i < id.size(); ++i) id[i] = static_cast<std::uint8_t>(i);
  CHECK(trace_id_low_bits(id) == 0x08090a0b0c0d0e0full);
  CHECK(trace_id_low_bits(id_with_low_bits(42, kMax)) == 42);
}

TEST_CASE("ratio: 0 keeps nothing, 1 keeps everything") {
  const RatioRule none = RatioRule::from_ratio(0);
  CHECK_FALSE(none.keeps(id_with_low_bits(0)));
  CHECK_FALSE(none.keeps(id_with_low_bits(1)));
  CHECK_FALSE(none.keeps(id_with_low_bits(kMax)));

  const RatioRule all = RatioRule::from_ratio(1);
  CHECK(all.keeps_all());
  CHECK(all.keeps(id_with_low_bits(0)));
  CHECK(all.keeps(id_with_low_bits(kMax)));  // 2^64 - 1 < 2^64
  CHECK(all.keeps(id_with_low_bits(kMax, kMax)));
}

TEST_CASE("ratio: out-of-range and NaN ratios clamp to keeping nothing or everything") {
  CHECK_FALSE(RatioRule::from_ratio(-0.5).keeps(id_with_low_bits(0)));
  CHECK_FALSE(RatioRule::from_ratio(std::nan("")).keeps(id_with_low_bits(0)));
  CHECK(RatioRule::from_ratio(2.0).keeps(id_with_low_bits(kMax)));
  CHECK(RatioRule::from_ratio(std::numeric_limits<double>::infinity()).keeps_all());
}

TEST_CASE("ratio: boundary ids at 0.5, 0.25 and 0.01 (threshold - 1 kept, threshold dropped)") {
  struct Vector {
    double ratio;
    std::uint64_t threshold;  // round(ratio * 2^64), worked out by hand
  };
  // 0.01 is the double 5764607523034235 / 2^59, so 0.01 * 2^64 is exactly
  // 5764607523034235 * 32 = 184467440737095520 = 0x028f5c28f5c28f60.
  const Vector vectors[] = {
      {0.5, 0x8000000000000000ull},
      {0.25, 0x4000000000000000ull},
      {0.01, 184467440737095520ull},
  };
  for (const Vector& vector : vectors) {
    CAPTURE(vector.ratio);
    const RatioRule rule = RatioRule::from_ratio(vector.ratio);
    CHECK_FALSE(rule.keeps_all());
    CHECK(rule.threshold() == vector.threshold);
    CHECK(rule.keeps(id_with_low_bits(0)));
    CHECK(rule.keeps(id_with_low_bits(vector.threshold - 1)));
    CHECK(rule.keeps(id_with_low_bits(vector.threshold - 1, kMax)));
    CHECK_FALSE(rule.keeps(id_with_low_bits(vector.threshold)));
    CHECK_FALSE(rule.keeps(id_with_low_bits(vector.threshold, 0x0123456789abcdefull)));
    CHECK_FALSE(rule.keeps(id_with_low_bits(kMax)));
  }
}

TEST_CASE("ratio: the threshold rounds like Python's round(), half to even, without overflow") {
  // 2^-64 * 2^64 = 1: only the id with low bits 0 is kept.
  const RatioRule one = RatioRule::from_ratio(std::ldexp(1.0, -64));
  CHECK(one.threshold() == 1);
  CHECK(one.keeps(id_with_low_bits(0)));
  CHECK_FALSE(one.keeps(id_with_low_bits(1)));
  // 0.5 rounds to 0, 1.5 to 2, 2.5 to 2.
  CHECK(RatioRule::from_ratio(std::ldexp(1.0, -65)).threshold() == 0);
  CHECK(RatioRule::from_ratio(std::ldexp(3.0, -65)).threshold() == 2);
  CHECK(RatioRule::from_ratio(std::ldexp(5.0, -65)).threshold() == 2);
  CHECK(RatioRule::from_ratio(std::ldexp(3.0, -66)).threshold() == 1);  // 0.75
  // The largest double below 1 is 1 - 2^-53: the threshold is 2^64 - 2^11.
  const RatioRule almost = RatioRule::from_ratio(std::nextafter(1.0, 0.0));
  CHECK_FALSE(almost.keeps_all());
  CHECK(almost.threshold() == kMax - 2047);
  CHECK(almost.keeps(id_with_low_bits(kMax - 2048)));
  CHECK_FALSE(almost.keeps(id_with_low_bits(kMax - 2047)));
}

TEST_CASE("ratio: 0.01 keeps a binomial share of 100000 random trace ids") {
  constexpr int kTraces = 100000;
  constexpr double kRatio = 0.01;
  const RatioRule rule = RatioRule::from_ratio(kRatio);
  std::mt19937_64 random(20240601);
  int kept = 0;
  for (int i = 0; i < kTraces; ++i) {
    if (rule.keeps(id_with_low_bits(random(), random()))) ++kept;
  }
  const double mean = kTraces * kRatio;                             // 1000
  const double sigma = std::sqrt(kTraces * kRatio * (1 - kRatio));  // ~31.5
  CAPTURE(kept);
  CHECK(std::abs(kept - mean) < 5 * sigma);
}

}  // namespace
}  // namespace spanrelay::sampling
