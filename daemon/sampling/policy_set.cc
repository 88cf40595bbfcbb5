#include "daemon/sampling/policy_set.h"

#include <re2/re2.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <set>
#include <string_view>

#include "daemon/otlp/attribute_reader.h"
#include "daemon/sampling/ratio.h"
#include "daemon/sampling/token_bucket.h"

namespace spanrelay::sampling {

using config::LatencyScope;
using config::PolicyType;

namespace {

constexpr std::uint8_t status_bit(otlp::StatusCode code) {
  return static_cast<std::uint8_t>(1u << static_cast<unsigned>(code));
}

// Names as in OTLP trace.proto Status.StatusCode, without the STATUS_CODE_ prefix.
std::optional<otlp::StatusCode> parse_status_code(std::string_view name) {
  if (name == "ERROR") return otlp::StatusCode::kError;
  if (name == "OK") return otlp::StatusCode::kOk;
  if (name == "UNSET") return otlp::StatusCode::kUnset;
  return std::nullopt;
}

std::uint64_t duration_ns(const otlp::SpanView& span) {
  // A span that ends before it starts (clock skew, bad data) lasted nothing.
  return span.end_time_unix_nano > span.start_time_unix_nano
             ? span.end_time_unix_nano - span.start_time_unix_nano
             : 0;
}

bool is_baseline(PolicyType type) {
  return type == PolicyType::kRatio || type == PolicyType::kRateLimit;
}

// attribute / drop: attribute `key` of a span or of its resource equals one
// of `values` or matches `regex` as a whole.
struct AttributeMatcher {
  std::string key;
  std::vector<std::string> values;
  std::unique_ptr<re2::RE2> regex;  // RE2 objects do not move

  bool value_matches(std::string_view text) const {
    for (const std::string& value : values) {
      if (value == text) return true;
    }
    return regex && re2::RE2::FullMatch(text, *regex);
  }

  bool matches(std::span<const BufferedSpan> spans) const;
};

bool AttributeMatcher::matches(std::span<const BufferedSpan> spans) const {
  // Spans of one request usually share a resource: look each one up once in a row.
  const otlp::ScannedRequest* last_request = nullptr;
  std::uint32_t last_resource = 0;
  for (const BufferedSpan& buffered : spans) {
    const otlp::ScannedRequest& request = *buffered.request;
    const auto span_value = otlp::find_attribute_text(request.span_bytes(*buffered.span),
                                                      otlp::kSpanAttributesField, key);
    if (span_value && value_matches(span_value->view())) return true;

    const std::uint32_t resource = request.scope_of(*buffered.span).resource_index;
    if (&request == last_request && resource == last_resource) continue;
    last_request = &request;
    last_resource = resource;
    const auto resource_value =
        otlp::find_attribute_text(request.bytes_of(request.resources[resource].resource),
                                  otlp::kResourceAttributesField, key);
    if (resource_value && value_matches(resource_value->view())) return true;
  }
  return false;
}

bool any_span_lasts(std::uint64_t threshold_ns, std::span<const BufferedSpan> spans) {
  return std::any_of(spans.begin(), spans.end(), [&](const BufferedSpan& buffered) {
    return duration_ns(*buffered.span) >= threshold_ns;
  });
}

// A local root is a span without a parent, or whose parent this host has not
// seen (the caller ran in another process, e.g. on another host).
bool any_local_root_lasts(std::uint64_t threshold_ns, std::span<const BufferedSpan> spans) {
  if (!any_span_lasts(threshold_ns, spans)) return false;  // spares building the id set
  // Reused per shard thread so that a decision does not allocate in steady state.
  thread_local std::vector<otlp::SpanId> span_ids;
  span_ids.clear();
  for (const BufferedSpan& buffered : spans) span_ids.push_back(buffered.span->span_id);
  std::sort(span_ids.begin(), span_ids.end());
  return std::any_of(spans.begin(), spans.end(), [&](const BufferedSpan& buffered) {
    const otlp::SpanView& span = *buffered.span;
    if (duration_ns(span) < threshold_ns) return false;
    return !span.has_parent ||
           !std::binary_search(span_ids.begin(), span_ids.end(), span.parent_span_id);
  });
}

}  // namespace

struct PolicySet::Policy {
  PolicyType type = PolicyType::kAlways;
  std::uint8_t status_mask = 0;  // status_code: bit per otlp::StatusCode
  std::uint64_t threshold_ns = 0;
  LatencyScope scope = LatencyScope::kAnySpan;
  AttributeMatcher attribute;  // attribute / drop
  RatioRule ratio;
  std::unique_ptr<TokenBucket> bucket;  // rate_limit; behind a pointer: a mutex does not move
};

PolicySet::PolicySet() = default;
PolicySet::PolicySet(PolicySet&&) noexcept = default;
PolicySet& PolicySet::operator=(PolicySet&&) noexcept = default;
PolicySet::~PolicySet() = default;

Result<PolicySet> PolicySet::create(const config::SamplingConfig& config) {
  PolicySet set;
  std::set<std::string, std::less<>> seen_names;
  for (std::size_t index = 0; index < config.policies.size(); ++index) {
    const config::SamplingPolicyConfig& source = config.policies[index];
    const std::string where =
        "sampling.policies[" + std::to_string(index) + "] (\"" + source.name + "\"): ";
    if (source.name.empty()) return Error{where + "name must not be empty"};
    if (!seen_names.insert(source.name).second) return Error{where + "duplicate policy name"};

    Policy policy;
    policy.type = source.type;
    switch (source.type) {
      case PolicyType::kStatusCode: {
        if (source.status_codes.empty()) policy.status_mask = status_bit(otlp::StatusCode::kError);
        for (const std::string& name : source.status_codes) {
          const auto code = parse_status_code(name);
          if (!code) {
            return Error{where + "unknown status code \"" + name +
                         "\" (expected ERROR, OK or UNSET)"};
          }
          policy.status_mask |= status_bit(*code);
        }
        if (source.decide_early) set.early_status_mask_ |= policy.status_mask;
        break;
      }
      case PolicyType::kLatency:
        if (source.threshold.count() < 0) return Error{where + "threshold must not be negative"};
        // Saturating: a threshold beyond ~292 years of nanoseconds is "never".
        policy.threshold_ns =
            source.threshold >
                    std::chrono::duration_cast<config::Duration>(std::chrono::nanoseconds::max())
                ? std::numeric_limits<std::uint64_t>::max()
                : static_cast<std::uint64_t>(
                      std::chrono::duration_cast<std::chrono::nanoseconds>(source.threshold)
                          .count());
        policy.scope = source.scope;
        break;
      case PolicyType::kAttribute:
      case PolicyType::kDrop:
        if (source.key.empty()) return Error{where + "key must not be empty"};
        if (source.values.empty() && source.regex.empty()) {
          return Error{where + "needs values or regex"};
        }
        policy.attribute.key = source.key;
        policy.attribute.values = source.values;
        if (!source.regex.empty()) {
          // RE2, not std::regex: libstdc++'s matcher recurses once per input
          // character and overflows the stack on a ~100 KiB attribute value,
          // and backtracking engines can be made to take exponential time.
          // RE2 matches in linear time with bounded memory.
          re2::RE2::Options options;
          options.set_log_errors(false);
          auto regex = std::make_unique<re2::RE2>(source.regex, options);
          if (!regex->ok()) {
            return Error{where + "invalid regex \"" + source.regex + "\": " + regex->error()};
          }
          policy.attribute.regex = std::move(regex);
        }
        break;
      case PolicyType::kRatio:
        if (!(source.ratio >= 0 && source.ratio <= 1)) {
          return Error{where + "ratio must be between 0 and 1"};
        }
        policy.ratio = RatioRule::from_ratio(source.ratio);
        break;
      case PolicyType::kRateLimit:
        if (!(source.traces_per_second > 0) || !std::isfinite(source.traces_per_second)) {
          return Error{where + "traces_per_second must be a positive number"};
        }
        policy.bucket = std::make_unique<TokenBucket>(source.traces_per_second);
        break;
      case PolicyType::kAlways:
        break;
    }

    if (source.type == PolicyType::kDrop) {
      set.drop_policies_.push_back(index);
    } else if (source.type == PolicyType::kRatio) {
      set.ratio_policies_.push_back(index);
    } else if (source.type == PolicyType::kRateLimit) {
      set.rate_limit_policies_.push_back(index);
    } else {
      set.signal_policies_.push_back(index);
    }
    if (is_baseline(source.type)) set.last_baseline_policy_ = index;
    set.names_.push_back(source.name);
    set.policies_.push_back(std::move(policy));
  }
  return set;
}

bool PolicySet::decides_early(const otlp::ScannedRequest& /*request*/,
                              const otlp::SpanView& span) const {
  return (early_status_mask_ & status_bit(span.status)) != 0;
}

bool PolicySet::matches_signal(const Policy& policy, std::span<const BufferedSpan> spans) const {
  switch (policy.type) {
    case PolicyType::kStatusCode:
      return std::any_of(spans.begin(), spans.end(), [&](const BufferedSpan& buffered) {
        return (policy.status_mask & status_bit(buffered.span->status)) != 0;
      });
    case PolicyType::kLatency:
      return policy.scope == LatencyScope::kRoot ? any_local_root_lasts(policy.threshold_ns, spans)
                                                 : any_span_lasts(policy.threshold_ns, spans);
    case PolicyType::kAttribute:
      return policy.attribute.matches(spans);
    case PolicyType::kAlways:
      return true;
    case PolicyType::kDrop:
    case PolicyType::kRatio:
    case PolicyType::kRateLimit:
      break;
  }
  return false;
}

Decision PolicySet::decide_baseline(const otlp::TraceId& trace_id,
                                    std::chrono::steady_clock::time_point now) const {
  if (last_baseline_policy_ == Decision::kNoPolicy) return Decision{};
  for (const std::size_t index : ratio_policies_) {
    if (!policies_[index].ratio.keeps(trace_id)) {
      return Decision{false, index, Decision::Reason::kBaseline};
    }
  }
  for (const std::size_t index : rate_limit_policies_) {
    if (!policies_[index].bucket->try_take(now)) {
      return Decision{false, index, Decision::Reason::kBaseline};
    }
  }
  return Decision{true, last_baseline_policy_, Decision::Reason::kBaseline};
}

Decision PolicySet::decide(const otlp::TraceId& trace_id, std::span<const BufferedSpan> spans,
                           std::chrono::steady_clock::time_point now) const {
  for (const std::size_t index : drop_policies_) {
    if (policies_[index].attribute.matches(spans)) {
      return Decision{false, index, Decision::Reason::kDropPolicy};
    }
  }
  for (const std::size_t index : signal_policies_) {
    if (matches_signal(policies_[index], spans)) {
      return Decision{true, index, Decision::Reason::kKeepPolicy};
    }
  }
  return decide_baseline(trace_id, now);
}

}  // namespace spanrelay::sampling
