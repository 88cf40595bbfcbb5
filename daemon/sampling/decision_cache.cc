#include "daemon/sampling/decision_cache.h"

namespace spanrelay::sampling {

void DecisionCache::remember(const otlp::TraceId& trace_id, bool keep) {
  if (capacity_ == 0) return;
  auto [it, inserted] = decisions_.try_emplace(trace_id, keep);
  if (!inserted) {
    it->second = keep;
    return;
  }
  order_.push_back(trace_id);
  while (decisions_.size() > capacity_) {
    decisions_.erase(order_.front());
    order_.pop_front();
  }
}

std::optional<bool> DecisionCache::find(const otlp::TraceId& trace_id) const {
  auto it = decisions_.find(trace_id);
  if (it == decisions_.end()) return std::nullopt;
  return it->second;
}

}  // namespace spanrelay::sampling
