#pragma once
// The trace-id ratio rule of the OpenTelemetry SDKs (TraceIdRatioBased, as in
// the Python SDK): keep a trace when the last 8 bytes of its id, read as a
// big-endian unsigned 64-bit integer, are below round(ratio * 2^64). Applying
// the same rule as the SDKs means every host that sees a part of a trace takes
// the same baseline decision, so baseline traces stay whole across hosts.
#include <cstdint>

#include "daemon/otlp/span_view.h"

namespace spanrelay::sampling {

// The last 8 bytes of a trace id as a big-endian integer (the part that W3C
// Trace Context level 2 calls random, and that TraceIdRatioBased compares).
constexpr std::uint64_t trace_id_low_bits(const otlp::TraceId& id) {
  std::uint64_t value = 0;
  for (std::size_t i = 8; i < 16; ++i) value = (value << 8) | id[i];
  return value;
}

// A ratio compiled once into its 64-bit threshold.
class RatioRule {
 public:
  // ratio <= 0 (or NaN) keeps nothing; ratio >= 1 keeps every trace, including
  // the one whose low bits are 0xffffffffffffffff (2^64 does not fit the
  // threshold, hence the separate flag).
  static constexpr RatioRule from_ratio(double ratio) {
    constexpr double kTwoTo64 = 18446744073709551616.0;
    RatioRule rule;
    if (!(ratio > 0)) return rule;           // also catches NaN
    const double scaled = ratio * kTwoTo64;  // exact: a power-of-two scaling
    if (!(scaled < kTwoTo64)) {
      rule.keeps_all_ = true;
      return rule;
    }
    rule.threshold_ = round_half_to_even(scaled);
    return rule;
  }

  constexpr bool keeps(const otlp::TraceId& id) const {
    return keeps_all_ || trace_id_low_bits(id) < threshold_;
  }

  // Traces whose low bits are below this are kept (unless keeps_all()).
  constexpr std::uint64_t threshold() const { return threshold_; }
  constexpr bool keeps_all() const { return keeps_all_; }

 private:
  // Python's round() on a float rounds half to even; 0 <= value < 2^64.
  // Only values below 2^53 can have a fraction, so the subtraction is exact.
  static constexpr std::uint64_t round_half_to_even(double value) {
    const auto whole = static_cast<std::uint64_t>(value);
    const double fraction = value - static_cast<double>(whole);
    if (fraction > 0.5 || (fraction == 0.5 && (whole & 1) != 0)) return whole + 1;
    return whole;
  }

  std::uint64_t threshold_ = 0;
  bool keeps_all_ = false;
};

// One-off form of the rule; prefer a precomputed RatioRule on the hot path.
constexpr bool ratio_keeps(const otlp::TraceId& id, double ratio) {
  return RatioRule::from_ratio(ratio).keeps(id);
}

}  // namespace spanrelay::sampling
