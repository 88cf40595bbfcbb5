#pragma once
// Remembers the decision of recently decided traces so that late spans (they
// arrive after their trace was decided) follow it: a kept trace stays whole,
// a dropped trace stays dropped. Bounded: the oldest entry is forgotten first.
// Owned by one sampling shard: no locking.
#include <cstdint>
#include <deque>
#include <memory_resource>
#include <optional>
#include <unordered_map>

#include "daemon/otlp/span_view.h"
#include "daemon/sampling/trace_id_hash.h"

namespace spanrelay::sampling {

class DecisionCache {
 public:
  explicit DecisionCache(std::size_t capacity) : capacity_(capacity) {}

  void remember(const otlp::TraceId& trace_id, bool keep);
  // The decision for this trace, if it is still remembered.
  std::optional<bool> find(const otlp::TraceId& trace_id) const;
  std::size_t size() const { return decisions_.size(); }

 private:
  std::size_t capacity_;
  // Nodes from a pool of our own: one is freed for each one remembered, so
  // the pool recycles them instead of going to malloc (issue 6 profile).
  std::pmr::unsynchronized_pool_resource nodes_;  // before decisions_: outlives it
  std::pmr::unordered_map<otlp::TraceId, bool, TraceIdHash> decisions_{&nodes_};
  std::deque<otlp::TraceId> order_;  // oldest first
};

}  // namespace spanrelay::sampling
