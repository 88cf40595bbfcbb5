#include "daemon/sampling/sampling_metrics.h"

namespace spanrelay::sampling {

namespace {
constexpr const char* kTraces = "spanrelay_sampling_traces_total";
constexpr const char* kTracesHelp =
    "Traces decided by tail sampling, by decision and deciding policy.";
constexpr const char* kLate = "spanrelay_sampling_late_spans_total";
constexpr const char* kLateHelp =
    "Spans that arrived after their trace was decided, by outcome (kept, dropped, cache_miss).";
constexpr const char* kEarly = "spanrelay_sampling_early_decisions_total";
constexpr const char* kEarlyHelp =
    "Traces decided before decision_wait ended, by reason (max_traces, max_buffered_bytes, "
    "decide_early).";
}  // namespace

SamplingMetrics::SamplingMetrics(telemetry::Registry& registry)
    : sampled_out_spans(registry.counter("spanrelay_sampling_sampled_out_spans_total",
                                         "Spans not exported because their trace was sampled out "
                                         "(intended, not a loss).")),
      late_kept(registry.counter(kLate, kLateHelp, {{"outcome", "kept"}})),
      late_dropped(registry.counter(kLate, kLateHelp, {{"outcome", "dropped"}})),
      late_cache_miss(registry.counter(kLate, kLateHelp, {{"outcome", "cache_miss"}})),
      early_max_traces(registry.counter(kEarly, kEarlyHelp, {{"reason", "max_traces"}})),
      early_max_bytes(registry.counter(kEarly, kEarlyHelp, {{"reason", "max_buffered_bytes"}})),
      early_decide_early(registry.counter(kEarly, kEarlyHelp, {{"reason", "decide_early"}})),
      traces_in_flight(registry.gauge("spanrelay_traces_in_flight",
                                      "Traces buffered in tail sampling, waiting for a decision.")),
      buffered_bytes(registry.gauge("spanrelay_sampling_buffered_bytes",
                                    "Span bytes buffered in tail sampling.")),
      pending_spans(registry.gauge("spanrelay_queue_spans",
                                   "Spans accepted and not yet delivered or dropped (open batch, "
                                   "queue, in flight, retrying).")) {}

}  // namespace spanrelay::sampling
