#include "daemon/delivery/delivery_queue.h"

#include <spdlog/spdlog.h>

#include <random>

#include "daemon/delivery/retry_policy.h"

namespace spanrelay::delivery {

namespace {
constexpr const char* kDropped = "spanrelay_dropped_spans_total";
constexpr const char* kDroppedHelp =
    "Spans accepted and then lost for good, by reason (a retried span is not dropped).";
constexpr const char* kQueueSpans = "spanrelay_queue_spans";
constexpr const char* kQueueSpansHelp =
    "Spans accepted and not yet delivered or dropped (open batch, queue, in flight, retrying).";
constexpr const char* kFailed = "spanrelay_exporter_failed_requests_total";
constexpr const char* kFailedHelp =
    "Export attempts that failed, by gRPC status name or HTTP code.";
}  // namespace

DeliveryQueue::DeliveryQueue(exporters::Exporter& exporter, const config::ExporterConfig& config,
                             MemoryBudget& budget, telemetry::Registry& metrics)
    : exporter_(exporter),
      config_(config),
      budget_(budget),
      metrics_(metrics),
      sent_spans_(metrics.counter("spanrelay_exporter_sent_spans_total",
                                  "Spans the upstream acknowledged.")),
      sent_requests_(metrics.counter("spanrelay_exporter_sent_requests_total",
                                     "Export requests the upstream acknowledged.")),
      retries_(metrics.counter("spanrelay_exporter_retries_total",
                               "Export attempts that were retries of a failed attempt.")),
      pending_spans_(metrics.gauge(kQueueSpans, kQueueSpansHelp)),
      export_seconds_(metrics.histogram("spanrelay_export_seconds",
                                        "Duration of one export attempt to the upstream.",
                                        {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30})) {
  for (const char* reason :
       {"retry_exhausted", "non_retryable", "upstream_rejected", "shutdown_timeout"}) {
    dropped(reason);
  }
  metrics.callback_gauge("spanrelay_queue_bytes",
                         "Bytes of accepted spans held in memory (open batch and queue).",
                         [&budget] { return static_cast<double>(budget.used()); });
  metrics.callback_gauge("spanrelay_queue_capacity_bytes",
                         "The memory budget (queue.memory_limit).",
                         [&budget] { return static_cast<double>(budget.limit()); });
  metrics.callback_gauge("spanrelay_queue_batches", "Batches waiting in the memory queue.",
                         [this] { return static_cast<double>(queued_batches()); });
}

DeliveryQueue::~DeliveryQueue() { shutdown(std::chrono::steady_clock::now()); }

telemetry::Counter& DeliveryQueue::dropped(const std::string& reason) {
  return metrics_.counter(kDropped, kDroppedHelp, {{"reason", reason}});
}

telemetry::Counter& DeliveryQueue::failed(const std::string& code) {
  return metrics_.counter(kFailed, kFailedHelp, {{"code", code}});
}

void DeliveryQueue::start() {
  std::lock_guard lock(mutex_);
  if (!workers_.empty() || draining_) return;
  for (unsigned i = 0; i < config_.max_in_flight; ++i) {
    workers_.emplace_back([this, i] { worker_loop(i); });
  }
}

void DeliveryQueue::push(batching::Batch&& batch) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(batch));
  }
  wake_.notify_one();
}

std::uint64_t DeliveryQueue::queued_batches() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void DeliveryQueue::shutdown(std::chrono::steady_clock::time_point deadline) {
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(mutex_);
    if (!draining_) deadline_ = deadline;
    draining_ = true;
    workers.swap(workers_);
  }
  wake_.notify_all();
  for (auto& worker : workers) worker.join();
  // Whatever is left (no workers ran, or the deadline passed) is gone for good.
  std::deque<batching::Batch> left;
  {
    std::lock_guard lock(mutex_);
    left.swap(queue_);
  }
  for (auto& batch : left) drop(batch, batch.spans, "shutdown_timeout");
}

void DeliveryQueue::worker_loop(unsigned index) {
  for (;;) {
    batching::Batch batch;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return !queue_.empty() || draining_; });
      if (queue_.empty()) return;  // draining and nothing left
      if (draining_ && std::chrono::steady_clock::now() >= deadline_) return;
      batch = std::move(queue_.front());
      queue_.pop_front();
    }
    deliver(batch, index);
  }
}

bool DeliveryQueue::wait_before_retry(std::chrono::milliseconds delay) {
  std::unique_lock lock(mutex_);
  const auto until = std::chrono::steady_clock::now() + delay;
  // Shutdown wakes us so that a long back-off does not outlive the deadline.
  while (std::chrono::steady_clock::now() < until) {
    const auto limit = draining_ ? std::min(until, deadline_) : until;
    if (draining_ && std::chrono::steady_clock::now() >= deadline_) return false;
    wake_.wait_until(lock, limit);
  }
  return !(draining_ && std::chrono::steady_clock::now() >= deadline_);
}

void DeliveryQueue::deliver(batching::Batch& batch, unsigned worker_index) {
  RetryPolicy policy(config_.retry, std::random_device{}() ^ (std::uint64_t{worker_index} << 32));
  const auto first_attempt = std::chrono::steady_clock::now();
  for (unsigned attempt = 0;; ++attempt) {
    if (attempt > 0) retries_.add();
    const auto started = std::chrono::steady_clock::now();
    auto result = exporter_.export_request(batch.request, batch.spans);
    export_seconds_.observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());

    using exporters::ExportDisposition;
    if (result.disposition == ExportDisposition::kSuccess) {
      const auto rejected = static_cast<std::uint64_t>(
          std::clamp<std::int64_t>(result.rejected_spans, 0, batch.spans));
      sent_spans_.add(batch.spans - rejected);
      sent_requests_.add();
      if (rejected > 0) {
        spdlog::warn("upstream rejected {} of {} spans: {}", rejected, batch.spans, result.message);
        dropped("upstream_rejected").add(rejected);
      }
      finish(batch);
      return;
    }
    failed(result.code.empty() ? "unknown" : result.code).add();
    if (result.disposition == ExportDisposition::kPermanent) {
      spdlog::error("upstream refused a batch of {} spans for good ({}): {}", batch.spans,
                    result.code, result.message);
      drop(batch, batch.spans, "non_retryable");
      return;
    }
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - first_attempt);
    const auto delay = policy.next_delay(attempt, elapsed, result.retry_after);
    if (!delay) {
      spdlog::error("giving up on a batch of {} spans after {} attempts ({}): {}", batch.spans,
                    attempt + 1, result.code, result.message);
      drop(batch, batch.spans, "retry_exhausted");
      return;
    }
    spdlog::warn("export failed ({}: {}), retry {} in {} ms", result.code, result.message,
                 attempt + 1, delay->count());
    if (!wait_before_retry(*delay)) {
      drop(batch, batch.spans, "shutdown_timeout");
      return;
    }
  }
}

void DeliveryQueue::drop(const batching::Batch& batch, std::uint64_t spans,
                         const std::string& reason) {
  dropped(reason).add(spans);
  finish(batch);
}

void DeliveryQueue::finish(const batching::Batch& batch) {
  pending_spans_.add(-static_cast<std::int64_t>(batch.spans));
  budget_.release(batch.reserved_bytes);
}

}  // namespace spanrelay::delivery
