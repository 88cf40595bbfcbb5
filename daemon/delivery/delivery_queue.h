#pragma once
// Delivery: batches wait in a memory queue (bounded by the shared
// MemoryBudget, which admission already charged) and `max_in_flight` workers
// send them with retry. With a disk spool, batches that would wait (the
// upstream is failing, or the memory queue is full) go to the spool instead
// and are replayed from it, after a restart too. A batch leaves only when the
// upstream acknowledged it or when it is lost for good, and then it is
// counted with a reason: a retried batch is not a dropped batch.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "daemon/batching/batch.h"
#include "daemon/config/config.h"
#include "daemon/delivery/memory_budget.h"
#include "daemon/delivery/retry_policy.h"
#include "daemon/delivery/spool.h"
#include "daemon/exporters/exporter.h"
#include "daemon/telemetry/log_setup.h"
#include "daemon/telemetry/metrics.h"

namespace spanrelay::delivery {

// What a load balancer needs from the queue of one of its members; the one
// upstream of a plain relay leaves it all empty.
struct DeliveryQueueOptions {
  // Labels of this queue's own series (sent spans and requests, retries,
  // failed requests, export time, spooled batches), e.g. {endpoint="..."}.
  // A labelled queue registers no gauges: the owner registers per-member ones.
  // dropped{reason} and spanrelay_queue_spans stay shared and unlabelled.
  telemetry::Labels labels;
  // Health, called without locks held: after each retryable failed attempt
  // with the number of such attempts in a row, and after the first success
  // that ends such a run. (A permanent refusal is an answer: it counts as
  // neither.)
  std::function<void(unsigned consecutive_failures)> on_failure;
  std::function<void()> on_recovered;
  // While the queue is suspended (its member left the ring), a batch that
  // failed an attempt or is waiting to retry is offered here instead of being
  // retried or spooled. Returning true takes it, with its memory reservation
  // and its share of spanrelay_queue_spans; false leaves it to this queue.
  std::function<bool(batching::Batch& batch)> give_back;
};

class DeliveryQueue {
 public:
  // `spool` may be null (memory queue only); it must outlive the queue.
  DeliveryQueue(std::shared_ptr<exporters::Exporter> exporter, const config::ExporterConfig& config,
                MemoryBudget& budget, telemetry::Registry& metrics, Spool* spool,
                DeliveryQueueOptions options = {});
  ~DeliveryQueue();

  void start();
  // Always takes the batch: its memory was reserved at admission.
  void push(batching::Batch&& batch);
  // Admission's last resort when the memory budget is full: the request goes
  // straight to the spool. False when there is no spool or it is full.
  bool spill_request(std::string_view request, std::uint32_t spans);
  // Sends what is queued in memory until `deadline`; what is still unsent
  // then goes to the spool, or without one is dropped with reason
  // shutdown_timeout. Safe twice and without start().
  void shutdown(std::chrono::steady_clock::time_point deadline);
  // The first half of shutdown(): workers finish the memory queue until
  // `deadline` and then stop; returns at once. Lets several queues drain in
  // parallel before each one's shutdown() joins.
  void begin_shutdown(std::chrono::steady_clock::time_point deadline);

  std::uint64_t queued_batches() const;
  std::uint64_t queued_bytes() const;

  // Load balancing. Suspended: workers take nothing from the memory queue or
  // the spool, a pushed batch is given back at once (options.give_back), and
  // attempts in flight give their batch back when they fail. Resumed: back to
  // normal. Safe to call at any time and repeatedly.
  void suspend();
  void resume();
  bool suspended() const;
  // Takes every batch waiting in the memory queue (not those in flight); the
  // caller takes over their memory reservations and pending span counts.
  std::vector<batching::Batch> take_queued();

  // Reload: the next export attempt uses this exporter (new endpoint,
  // headers, timeout, compression); attempts in flight finish on the old one.
  void replace_exporter(std::shared_ptr<exporters::Exporter> exporter);

 private:
  enum class Attempt { kDone, kRetryLater };
  void worker_loop(unsigned index);
  // Sends a memory batch; with a spool, a retryable failure spools it.
  void deliver(batching::Batch& batch, unsigned worker_index);
  // One attempt for a spooled record; acks or releases it.
  void deliver_spooled(SpoolRecord& record);
  // Sends once and settles the outcome's counters; kRetryLater carries the delay.
  Attempt attempt(std::string_view request, std::uint32_t spans,
                  std::optional<std::chrono::milliseconds>& retry_after,
                  exporters::ExportResult& result);
  bool spill(batching::Batch& batch);
  void note_failure(const exporters::ExportResult& result);
  void note_success();
  void drop(const batching::Batch& batch, const std::string& reason);
  void finish(const batching::Batch& batch);
  enum class Wait { kRetry, kDeadlinePassed, kSuspended };
  // Waits up to `delay` unless shutdown's deadline passes first or the queue
  // is suspended with somewhere to give batches back to.
  Wait wait_before_retry(std::chrono::milliseconds delay, bool wake_on_suspend);
  // Offers the batch to options_.give_back while suspended; true when taken.
  bool try_give_back(batching::Batch& batch);
  telemetry::Counter& dropped(const std::string& reason);
  telemetry::Counter& failed(const std::string& code);

  std::shared_ptr<exporters::Exporter> current_exporter() const;

  mutable std::mutex exporter_mutex_;
  std::shared_ptr<exporters::Exporter> exporter_;
  config::ExporterConfig config_;
  DeliveryQueueOptions options_;
  MemoryBudget& budget_;
  telemetry::Registry& metrics_;
  Spool* spool_;

  telemetry::Counter& sent_spans_;
  telemetry::Counter& sent_requests_;
  telemetry::Counter& retries_;
  telemetry::Counter& spooled_batches_;
  telemetry::Gauge& pending_spans_;
  telemetry::Histogram& export_seconds_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<batching::Batch> queue_;
  std::uint64_t queued_bytes_ = 0;
  bool draining_ = false;  // shutdown began: finish the memory queue, then stop
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  // With a spool: while the upstream fails, workers wait until this instant
  // and new batches go straight to the spool.
  std::chrono::steady_clock::time_point backoff_until_{};
  unsigned consecutive_failures_ = 0;
  bool suspended_ = false;
  // Retryable failures in a row, for options_.on_failure (memory and spool
  // attempts alike, unlike consecutive_failures_).
  std::atomic<unsigned> health_failures_{0};
  RetryPolicy shared_policy_;
  std::vector<std::thread> workers_;
  // An upstream outage fails every attempt: one line per kind per 10 s.
  telemetry::RateLimitedLog log_limiter_;
};

}  // namespace spanrelay::delivery
