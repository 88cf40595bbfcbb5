#pragma once
// One tail-sampling shard: one thread owning a trace table, an arrival-ordered
// list for decision_wait, and a decision cache, so nothing inside needs a
// lock. Work arrives as span batches (a request and the indices of its spans
// that hash to this shard) through a mutex-guarded inbox that the thread
// swaps out whole, so the lock is taken once per batch, not per span.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <memory_resource>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "daemon/batching/batcher.h"
#include "daemon/config/config.h"
#include "daemon/otlp/span_view.h"
#include "daemon/sampling/active_policies.h"
#include "daemon/sampling/decision_cache.h"
#include "daemon/sampling/sampling_metrics.h"
#include "daemon/sampling/trace_id_hash.h"

namespace spanrelay::sampling {

struct ShardWork {
  std::shared_ptr<const otlp::ScannedRequest> request;
  std::vector<std::uint32_t> span_indices;
};

class SamplingShard {
 public:
  using Clock = std::chrono::steady_clock;

  SamplingShard(const config::SamplingConfig& config, std::uint64_t max_traces,
                std::uint64_t max_bytes, const PolicyHandle& policies, batching::Batcher& batcher,
                SamplingMetrics& metrics);
  ~SamplingShard();

  void start();
  void submit(ShardWork&& work);
  // Takes what is in the inbox, decides every buffered trace (policies still
  // apply), and stops the thread.
  void stop();

 private:
  struct TraceEntry {
    std::vector<BufferedSpan> spans;
    // Keeps the requests the spans point into alive until the decision.
    std::vector<std::shared_ptr<const otlp::ScannedRequest>> holds;
    Clock::time_point first_seen;
    std::uint64_t bytes = 0;
  };
  // Nodes come from a pool owned by the shard (one thread, no locking): a
  // trace table turns over every trace within decision_wait, and malloc was
  // a tenth of the daemon's CPU under tail sampling (issue 6 profile).
  using TraceTable = std::pmr::unordered_map<otlp::TraceId, TraceEntry, TraceIdHash>;

  void run();
  void process(const ShardWork& work, Clock::time_point now);
  void accept_span(const std::shared_ptr<const otlp::ScannedRequest>& request,
                   const otlp::SpanView& span, Clock::time_point now);
  void decide(TraceTable::iterator it, Clock::time_point now);
  void decide_due(Clock::time_point now);
  void enforce_bounds(Clock::time_point now);
  void release(std::uint64_t spans, std::uint64_t reserved_bytes);

  const config::SamplingConfig& config_;
  const std::uint64_t max_traces_;
  const std::uint64_t max_bytes_;
  const PolicyHandle& policies_;
  std::shared_ptr<const ActivePolicies> current_;  // taken once per wake
  batching::Batcher& batcher_;
  SamplingMetrics& metrics_;

  // Owned by the shard thread.
  std::pmr::unsynchronized_pool_resource trace_nodes_;  // before traces_: outlives it
  TraceTable traces_{TraceTable::allocator_type(&trace_nodes_)};
  std::deque<std::pair<otlp::TraceId, Clock::time_point>> arrivals_;  // oldest first
  DecisionCache cache_;
  std::uint64_t buffered_bytes_ = 0;
  std::vector<batching::Batcher::AdmittedSpan> kept_scratch_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<ShardWork> inbox_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace spanrelay::sampling
