#pragma once
// Delivery: batches wait in a memory queue (bounded by the shared
// MemoryBudget, which admission already charged) and `max_in_flight` workers
// send them with retry. A batch leaves only when the upstream acknowledged it
// or when it is lost for good, and then it is counted with a reason:
// a retried batch is not a dropped batch.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon/batching/batch.h"
#include "daemon/config/config.h"
#include "daemon/delivery/memory_budget.h"
#include "daemon/exporters/exporter.h"
#include "daemon/telemetry/metrics.h"

namespace spanrelay::delivery {

class DeliveryQueue {
 public:
  DeliveryQueue(exporters::Exporter& exporter, const config::ExporterConfig& config,
                MemoryBudget& budget, telemetry::Registry& metrics);
  ~DeliveryQueue();

  void start();
  // Always takes the batch: its memory was reserved at admission.
  void push(batching::Batch&& batch);
  // Sends what is queued until `deadline`; what is still unsent then is
  // dropped with reason shutdown_timeout. Safe twice and without start().
  void shutdown(std::chrono::steady_clock::time_point deadline);

  std::uint64_t queued_batches() const;
  // Spans accepted and not yet delivered or dropped: the batcher adds to this
  // gauge at admission, delivery subtracts when a batch is done.
  std::int64_t pending_spans() const { return pending_spans_.value(); }

 private:
  void worker_loop(unsigned index);
  void deliver(batching::Batch& batch, unsigned worker_index);
  void drop(const batching::Batch& batch, std::uint64_t spans, const std::string& reason);
  void finish(const batching::Batch& batch);
  // Waits up to `delay` unless shutdown's deadline passes first; false when
  // the deadline has passed.
  bool wait_before_retry(std::chrono::milliseconds delay);
  telemetry::Counter& dropped(const std::string& reason);
  telemetry::Counter& failed(const std::string& code);

  exporters::Exporter& exporter_;
  config::ExporterConfig config_;
  MemoryBudget& budget_;
  telemetry::Registry& metrics_;

  telemetry::Counter& sent_spans_;
  telemetry::Counter& sent_requests_;
  telemetry::Counter& retries_;
  telemetry::Gauge& pending_spans_;
  telemetry::Histogram& export_seconds_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<batching::Batch> queue_;
  bool draining_ = false;  // shutdown began: finish the queue, then stop
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  std::vector<std::thread> workers_;
};

}  // namespace spanrelay::delivery
