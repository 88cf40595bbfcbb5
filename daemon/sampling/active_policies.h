#pragma once
// The policies in force and their per-policy counters, swapped whole when the
// configuration is reloaded (SIGHUP). Shards take a reference once per wake
// and decide with it; traces buffered under the old policies are decided by
// the new ones, and nothing buffered is lost.
#include <memory>
#include <mutex>
#include <vector>

#include "daemon/sampling/policy_set.h"
#include "daemon/telemetry/metrics.h"

namespace spanrelay::sampling {

struct ActivePolicies {
  PolicySet set;
  // spanrelay_sampling_traces_total{decision,policy}: one per policy, then policy="none".
  std::vector<telemetry::Counter*> kept;
  std::vector<telemetry::Counter*> dropped;

  static std::shared_ptr<const ActivePolicies> make(PolicySet set, telemetry::Registry& registry);
};

class PolicyHandle {
 public:
  void store(std::shared_ptr<const ActivePolicies> policies) {
    std::lock_guard lock(mutex_);
    current_ = std::move(policies);
  }
  std::shared_ptr<const ActivePolicies> load() const {
    std::lock_guard lock(mutex_);
    return current_;
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const ActivePolicies> current_;
};

}  // namespace spanrelay::sampling
