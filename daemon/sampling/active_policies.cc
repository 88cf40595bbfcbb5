#include "daemon/sampling/active_policies.h"

namespace spanrelay::sampling {

namespace {
constexpr const char* kTraces = "spanrelay_sampling_traces_total";
constexpr const char* kTracesHelp =
    "Traces decided by tail sampling, by decision and deciding policy.";
}  // namespace

std::shared_ptr<const ActivePolicies> ActivePolicies::make(PolicySet set,
                                                           telemetry::Registry& registry) {
  auto active = std::make_shared<ActivePolicies>(ActivePolicies{std::move(set), {}, {}});
  auto names = active->set.policy_names();
  names.push_back("none");
  for (const auto& name : names) {
    active->kept.push_back(
        &registry.counter(kTraces, kTracesHelp, {{"decision", "kept"}, {"policy", name}}));
    active->dropped.push_back(
        &registry.counter(kTraces, kTracesHelp, {{"decision", "dropped"}, {"policy", name}}));
  }
  return active;
}

}  // namespace spanrelay::sampling
