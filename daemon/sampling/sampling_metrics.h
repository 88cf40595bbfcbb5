#pragma once
// The tail-sampling metrics, declared once, resolved to instruments once so
// that shards never search the registry on the hot path.
#include <string>
#include <vector>

#include "daemon/telemetry/metrics.h"

namespace spanrelay::sampling {

struct SamplingMetrics {
  SamplingMetrics(telemetry::Registry& registry, const std::vector<std::string>& policy_names);

  // spanrelay_sampling_traces_total{decision,policy}; index = policy index,
  // and the last element is policy="none" (sampled out: nothing matched).
  std::vector<telemetry::Counter*> kept_by_policy;
  std::vector<telemetry::Counter*> dropped_by_policy;
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
