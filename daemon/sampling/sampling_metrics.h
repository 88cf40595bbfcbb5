#pragma once
// The tail-sampling metrics, declared once, resolved to instruments once so
// that shards never search the registry on the hot path.
#include <string>
#include <vector>

#include "daemon/telemetry/metrics.h"

namespace spanrelay::sampling {

struct SamplingMetrics {
  // The per-policy trace counters live with the policies (ActivePolicies),
  // since a reload may rename them.
  explicit SamplingMetrics(telemetry::Registry& registry);

  telemetry::Counter& sampled_out_spans;
  telemetry::Counter& late_kept;
  telemetry::Counter& late_dropped;
  telemetry::Counter& late_cache_miss;
  telemetry::Counter& early_max_traces;
  telemetry::Counter& early_max_bytes;
  telemetry::Counter& early_decide_early;
  telemetry::Gauge& traces_in_flight;
  telemetry::Gauge& buffered_bytes;
  telemetry::Gauge& pending_spans;  // spanrelay_queue_spans, shared with batching and delivery
};

}  // namespace spanrelay::sampling
