#pragma once
// Tail sampling: receivers hand requests here; spans are admitted (memory
// reserved, so sampling never makes an app wait) and routed by trace id to N
// shards, each deciding whole traces with the PolicySet. Kept traces go to
// the Batcher whole; sampled-out spans are counted and their memory returned.
#include <atomic>
#include <memory>
#include <vector>

#include "daemon/batching/batcher.h"
#include "daemon/config/config.h"
#include "daemon/receivers/span_consumer.h"
#include "daemon/sampling/policy_set.h"
#include "daemon/sampling/sampling_metrics.h"
#include "daemon/sampling/sampling_shard.h"
#include "daemon/telemetry/metrics.h"

namespace spanrelay::sampling {

class Sampler final : public receivers::SpanConsumer {
 public:
  // `policies` is built from config.policies by the caller (it reports errors).
  Sampler(config::SamplingConfig config, PolicySet policies, batching::Batcher& batcher,
          telemetry::Registry& metrics);
  ~Sampler() override;

  void start();
  // Stops admitting, decides every buffered trace and hands kept spans to the
  // batcher. Safe twice and without start().
  void shutdown();

  receivers::Admission consume(otlp::ScannedRequest&& request) override;

  // Reload: the next decisions use these policies (buffered traces included).
  void replace_policies(PolicySet policies);

 private:
  std::size_t shard_of(const otlp::TraceId& trace_id) const;

  config::SamplingConfig config_;
  batching::Batcher& batcher_;
  telemetry::Registry& registry_;
  PolicyHandle policies_;
  SamplingMetrics metrics_;
  std::vector<std::unique_ptr<SamplingShard>> shards_;
  std::atomic<bool> stopped_{false};
};

}  // namespace spanrelay::sampling
