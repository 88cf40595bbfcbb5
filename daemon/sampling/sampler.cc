#include "daemon/sampling/sampler.h"

#include <algorithm>
#include <thread>

namespace spanrelay::sampling {

Sampler::Sampler(config::SamplingConfig config, PolicySet policies, batching::Batcher& batcher,
                 telemetry::Registry& metrics)
    : config_(std::move(config)), batcher_(batcher), registry_(metrics), metrics_(metrics) {
  policies_.store(ActivePolicies::make(std::move(policies), registry_));
  const std::size_t shards =
      config_.shards > 0 ? config_.shards : std::max(1u, std::thread::hardware_concurrency());
  // The bounds are per host; each shard owns an equal share.
  const std::uint64_t max_traces = std::max<std::uint64_t>(1, config_.max_traces / shards);
  const std::uint64_t max_bytes = std::max<std::uint64_t>(1, config_.max_buffered_bytes / shards);
  for (std::size_t i = 0; i < shards; ++i) {
    shards_.push_back(std::make_unique<SamplingShard>(config_, max_traces, max_bytes, policies_,
                                                      batcher_, metrics_));
  }
}

Sampler::~Sampler() { shutdown(); }

void Sampler::replace_policies(PolicySet policies) {
  policies_.store(ActivePolicies::make(std::move(policies), registry_));
}

void Sampler::start() {
  for (auto& shard : shards_) shard->start();
}

void Sampler::shutdown() {
  if (stopped_.exchange(true)) return;
  for (auto& shard : shards_) shard->stop();
}

std::size_t Sampler::shard_of(const otlp::TraceId& trace_id) const {
  return TraceIdHash{}(trace_id) % shards_.size();
}

receivers::Admission Sampler::consume(otlp::ScannedRequest&& request) {
  if (stopped_) return {false, "shutting_down", std::chrono::seconds(1)};
  std::uint64_t needed = 0;
  for (const auto& span : request.spans)
    needed += batching::Batcher::reservation_for(span.bytes.length);
  auto admission = batcher_.reserve(needed, request.spans.size());
  if (!admission.accepted) return admission;

  auto shared = std::make_shared<const otlp::ScannedRequest>(std::move(request));
  const auto& spans = shared->spans;
  if (shards_.size() == 1) {
    ShardWork work{shared, {}};
    work.span_indices.resize(spans.size());
    for (std::uint32_t i = 0; i < spans.size(); ++i) work.span_indices[i] = i;
    shards_[0]->submit(std::move(work));
    return admission;
  }
  std::vector<ShardWork> per_shard(shards_.size());
  for (std::uint32_t i = 0; i < spans.size(); ++i) {
    per_shard[shard_of(spans[i].trace_id)].span_indices.push_back(i);
  }
  for (std::size_t s = 0; s < per_shard.size(); ++s) {
    if (per_shard[s].span_indices.empty()) continue;
    per_shard[s].request = shared;
    shards_[s]->submit(std::move(per_shard[s]));
  }
  return admission;
}

}  // namespace spanrelay::sampling
