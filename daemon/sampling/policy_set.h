#pragma once
// The tail-sampling policies of spanrelay, compiled from config and evaluated
// per trace (see DESIGN.md "Tail sampling"). A decision is made from the spans
// of the trace that this host buffered; the policies read the spans through
// the wire view, never through parsed objects.
//
// How a trace is decided, in this order:
//  (a) drop: if any `drop` policy matches (a span attribute, or the attribute
//      of a span's resource, named `key` equals one of `values` or matches
//      `regex` as a whole), the trace is dropped; `policy` = the first drop
//      policy in config order that matched. Drop beats every keep: it is how
//      health checks and synthetic traffic are silenced even when they fail.
//  (b) signal keeps: otherwise the first policy in config order among
//      status_code, latency, attribute and always that matches keeps the trace:
//        status_code: some span's status code is one of `status_codes`;
//        latency:     some span (scope any) or some local root (scope root)
//                     lasted end - start >= `threshold`. A local root is a span
//                     with no parent, or whose parent is not among the trace's
//                     buffered spans (its parent ran on another host);
//        attribute:   as drop;
//        always:      every trace.
//  (c) baseline: otherwise the ratio and rate_limit policies form one chain,
//      and the trace is kept when it passes every one of them. The ratio rules
//      (the SDK's TraceIdRatioBased rule, see ratio.h) are pure, so they are
//      checked first whatever their place in the config; the rate limiters are
//      then tried in config order, each only when everything before it passed,
//      so that tokens are spent only on traces that reach them. Kept: `policy`
//      = the last baseline policy in config order. Rejected: `policy` = the
//      baseline policy that rejected it. So ratio + rate_limit = a capped
//      baseline, rate_limit alone = at most N traces/s, ratio alone = the SDK
//      rule. With no baseline policy, a trace nothing matched is sampled out
//      with kNoPolicy.
//
// Attribute values compare by their text form (see otlp/attribute_reader.h):
// `values: ["200"]` matches the int 200 and the string "200"; bytes, array and
// kvlist values never match. `regex` uses RE2 syntax (the common ECMAScript
// subset: no backreferences, no lookaround) and must match the whole value; RE2
// runs in linear time, so an app cannot stall or crash a shard with a long value.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "daemon/common/result.h"
#include "daemon/config/config.h"
#include "daemon/otlp/span_view.h"

namespace spanrelay::sampling {

// One buffered span of a trace and the request it arrived in (which owns the
// span's bytes and its resource's bytes).
struct BufferedSpan {
  const otlp::ScannedRequest* request;
  const otlp::SpanView* span;
};

struct Decision {
  static constexpr std::size_t kNoPolicy = static_cast<std::size_t>(-1);

  // Which step of the order above settled the trace.
  enum class Reason : std::uint8_t {
    kNoMatch,     // nothing matched and there is no baseline: sampled out, kNoPolicy
    kDropPolicy,  // a drop policy matched (keep = false)
    kKeepPolicy,  // a signal keep policy matched (keep = true)
    kBaseline,    // the baseline chain kept or rejected it
  };

  bool keep = false;
  // Index into policy_names(): the drop policy that dropped it, the keep
  // policy that kept it, or the baseline policy that kept (the last of the
  // chain) or rejected it; kNoPolicy when sampled out because nothing matched.
  std::size_t policy = kNoPolicy;
  Reason reason = Reason::kNoMatch;
};

class PolicySet {
 public:
  // Compiles the policies (regexes, ratio thresholds, rate limiters). Errors
  // name the policy: unknown status code, bad regex, ratio outside [0, 1],
  // rate <= 0, attribute/drop policy without key or without values/regex,
  // duplicate names.
  static Result<PolicySet> create(const config::SamplingConfig& config);

  PolicySet(PolicySet&&) noexcept;
  PolicySet& operator=(PolicySet&&) noexcept;
  ~PolicySet();

  // Evaluated when a span arrives: true when this span alone settles "keep"
  // for its trace, i.e. a status_code policy with decide_early lists this
  // span's status. The caller then decides the trace at once with decide(),
  // which still applies the drop policies to the spans buffered so far (spans
  // that arrive later follow the cached decision). O(1).
  bool decides_early(const otlp::ScannedRequest& request, const otlp::SpanView& span) const;

  // The decision for a whole trace from its buffered spans. Thread-safe: only
  // the rate limiters have state, and they lock. `now` feeds the rate limiters.
  Decision decide(const otlp::TraceId& trace_id, std::span<const BufferedSpan> spans,
                  std::chrono::steady_clock::time_point now) const;

  // Policy names in config order (the `policy` label of the sampling metrics).
  const std::vector<std::string>& policy_names() const { return names_; }

 private:
  struct Policy;

  PolicySet();

  bool matches_signal(const Policy& policy, std::span<const BufferedSpan> spans) const;
  Decision decide_baseline(const otlp::TraceId& trace_id,
                           std::chrono::steady_clock::time_point now) const;

  std::vector<std::string> names_;
  std::vector<Policy> policies_;                  // config order
  std::vector<std::size_t> drop_policies_;        // indices, config order
  std::vector<std::size_t> signal_policies_;      // indices, config order
  std::vector<std::size_t> ratio_policies_;       // indices, config order
  std::vector<std::size_t> rate_limit_policies_;  // indices, config order
  std::size_t last_baseline_policy_ = Decision::kNoPolicy;
  std::uint8_t early_status_mask_ = 0;  // bit per otlp::StatusCode
};

}  // namespace spanrelay::sampling
