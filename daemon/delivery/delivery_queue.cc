#include "daemon/delivery/delivery_queue.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

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
using Clock = std::chrono::steady_clock;
}  // namespace

DeliveryQueue::DeliveryQueue(std::shared_ptr<exporters::Exporter> exporter,
                             const config::ExporterConfig& config, MemoryBudget& budget,
                             telemetry::Registry& metrics, Spool* spool)
    : exporter_(std::move(exporter)),
      config_(config),
      budget_(budget),
      metrics_(metrics),
      spool_(spool),
      sent_spans_(metrics.counter("spanrelay_exporter_sent_spans_total",
                                  "Spans the upstream acknowledged.")),
      sent_requests_(metrics.counter("spanrelay_exporter_sent_requests_total",
                                     "Export requests the upstream acknowledged.")),
      retries_(metrics.counter("spanrelay_exporter_retries_total",
                               "Export attempts that were retries of a failed attempt.")),
      spooled_batches_(metrics.counter("spanrelay_spool_appended_batches_total",
                                       "Batches written to the disk spool.")),
      pending_spans_(metrics.gauge(kQueueSpans, kQueueSpansHelp)),
      export_seconds_(metrics.histogram("spanrelay_export_seconds",
                                        "Duration of one export attempt to the upstream.",
                                        {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30})),
      shared_policy_(config.retry, std::random_device{}()) {
  for (const char* reason : {"retry_exhausted", "non_retryable", "upstream_rejected",
                             "shutdown_timeout", "spool_full", "spool_corrupt"}) {
    dropped(reason);
  }
  metrics.callback_gauge("spanrelay_queue_bytes",
                         "Bytes of accepted spans held in memory (open batch and queue).",
                         [&budget] { return static_cast<double>(budget.used()); });
  metrics.callback_gauge("spanrelay_queue_capacity_bytes", "The memory budget for accepted spans.",
                         [&budget] { return static_cast<double>(budget.limit()); });
  metrics.callback_gauge("spanrelay_queue_batches", "Batches waiting in the memory queue.",
                         [this] { return static_cast<double>(queued_batches()); });
  if (spool_) {
    metrics.callback_gauge("spanrelay_spool_spans",
                           "Spans in the disk spool, waiting for the upstream.",
                           [spool] { return static_cast<double>(spool->stats().spans); });
  }
}

std::shared_ptr<exporters::Exporter> DeliveryQueue::current_exporter() const {
  std::lock_guard lock(exporter_mutex_);
  return exporter_;
}

void DeliveryQueue::replace_exporter(std::shared_ptr<exporters::Exporter> exporter) {
  std::lock_guard lock(exporter_mutex_);
  exporter_ = std::move(exporter);
}

DeliveryQueue::~DeliveryQueue() { shutdown(Clock::now()); }

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
  if (spool_) {
    bool to_spool = false;
    {
      std::lock_guard lock(mutex_);
      // Waiting batches belong on disk: while the upstream fails, and when
      // the memory queue has used most of its share.
      to_spool = Clock::now() < backoff_until_ ||
                 queued_bytes_ + batch.reserved_bytes > config_.queue.memory_limit * 3 / 4;
    }
    if (to_spool && spill(batch)) {
      wake_.notify_one();
      return;
    }
  }
  {
    std::lock_guard lock(mutex_);
    queued_bytes_ += batch.reserved_bytes;
    queue_.push_back(std::move(batch));
  }
  wake_.notify_one();
}

bool DeliveryQueue::spill(batching::Batch& batch) {
  auto result = spool_->append(batch.request, batch.spans);
  if (result.evicted_spans > 0) dropped("spool_full").add(result.evicted_spans);
  if (result.status != Spool::AppendStatus::kOk) {
    if (result.status == Spool::AppendStatus::kError) {
      if (auto suppressed = log_limiter_.allow("spool_write")) {
        spdlog::error("cannot write to the spool: {} ({} similar suppressed)", result.error,
                      *suppressed);
      }
    }
    return false;
  }
  spooled_batches_.add();
  finish(batch);  // its memory is free; the spool holds the spans now
  return true;
}

bool DeliveryQueue::spill_request(std::string_view request, std::uint32_t spans) {
  if (!spool_) return false;
  auto result = spool_->append(request, spans);
  if (result.evicted_spans > 0) dropped("spool_full").add(result.evicted_spans);
  if (result.status != Spool::AppendStatus::kOk) return false;
  spooled_batches_.add();
  wake_.notify_one();
  return true;
}

std::uint64_t DeliveryQueue::queued_batches() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void DeliveryQueue::shutdown(Clock::time_point deadline) {
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(mutex_);
    if (!draining_) deadline_ = deadline;
    draining_ = true;
    workers.swap(workers_);
  }
  wake_.notify_all();
  for (auto& worker : workers) worker.join();
  // What is left (the deadline passed, or no worker ever ran) goes to the
  // spool, or without one is gone for good.
  std::deque<batching::Batch> left;
  {
    std::lock_guard lock(mutex_);
    left.swap(queue_);
    queued_bytes_ = 0;
  }
  for (auto& batch : left) {
    if (!(spool_ && spill(batch))) drop(batch, "shutdown_timeout");
  }
}

void DeliveryQueue::worker_loop(unsigned index) {
  for (;;) {
    std::optional<batching::Batch> batch;
    {
      std::unique_lock lock(mutex_);
      for (;;) {
        const auto now = Clock::now();
        if (draining_ && (queue_.empty() || now >= deadline_)) return;
        // While the upstream fails (spool mode), nobody sends until the back-off ends.
        if (now < backoff_until_ && !draining_) {
          wake_.wait_until(lock, backoff_until_);
          continue;
        }
        if (!queue_.empty()) {
          batch = std::move(queue_.front());
          queue_.pop_front();
          queued_bytes_ -= batch->reserved_bytes;
          break;
        }
        if (spool_ && !draining_) break;  // look for spooled work outside the lock
        wake_.wait(lock);
      }
    }
    if (batch) {
      deliver(*batch, index);
      continue;
    }
    if (auto record = spool_->lease_next()) {
      deliver_spooled(*record);
      continue;
    }
    // Nothing anywhere: sleep until new work is pushed or spilled. The
    // timeout covers records that a failing sender releases back.
    std::unique_lock lock(mutex_);
    if (queue_.empty() && !draining_) wake_.wait_for(lock, std::chrono::seconds(1));
  }
}

DeliveryQueue::Attempt DeliveryQueue::attempt(std::string_view request, std::uint32_t spans,
                                              std::optional<std::chrono::milliseconds>& retry_after,
                                              exporters::ExportResult& result) {
  const auto started = Clock::now();
  result = current_exporter()->export_request(request, spans);
  export_seconds_.observe(std::chrono::duration<double>(Clock::now() - started).count());
  using exporters::ExportDisposition;
  if (result.disposition == ExportDisposition::kSuccess) {
    const auto rejected =
        static_cast<std::uint64_t>(std::clamp<std::int64_t>(result.rejected_spans, 0, spans));
    sent_spans_.add(spans - rejected);
    sent_requests_.add();
    if (rejected > 0) {
      if (auto suppressed = log_limiter_.allow("rejected")) {
        spdlog::warn("upstream rejected {} of {} spans: {} ({} similar suppressed)", rejected,
                     spans, result.message, *suppressed);
      }
      dropped("upstream_rejected").add(rejected);
    }
    note_success();
    return Attempt::kDone;
  }
  failed(result.code.empty() ? "unknown" : result.code).add();
  if (result.disposition == ExportDisposition::kPermanent) {
    if (auto suppressed = log_limiter_.allow("permanent:" + result.code)) {
      spdlog::error(
          "upstream refused a batch of {} spans for good ({}): {} ({} similar suppressed)", spans,
          result.code, result.message, *suppressed);
    }
    dropped("non_retryable").add(spans);
    return Attempt::kDone;
  }
  retry_after = result.retry_after;
  return Attempt::kRetryLater;
}

void DeliveryQueue::note_success() {
  std::lock_guard lock(mutex_);
  consecutive_failures_ = 0;
}

void DeliveryQueue::note_failure(const exporters::ExportResult& result) {
  std::lock_guard lock(mutex_);
  // With a spool there is no max_elapsed: records wait on disk while it has room.
  const auto delay =
      shared_policy_
          .next_delay(consecutive_failures_++, std::chrono::milliseconds(0), result.retry_after)
          .value_or(config_.retry.max_interval);
  backoff_until_ = std::max(backoff_until_, Clock::now() + delay);
  if (auto suppressed = log_limiter_.allow("failed:" + result.code)) {
    spdlog::warn(
        "export failed ({}: {}); upstream back-off {} ms, new batches go to the spool ({} similar "
        "suppressed)",
        result.code, result.message, delay.count(), *suppressed);
  }
}

void DeliveryQueue::deliver_spooled(SpoolRecord& record) {
  if (record.corrupt) {
    dropped("spool_corrupt").add(record.spans);
    spool_->ack(record.id);
    return;
  }
  std::optional<std::chrono::milliseconds> retry_after;
  exporters::ExportResult result;
  if (attempt(record.request, record.spans, retry_after, result) == Attempt::kDone) {
    spool_->ack(record.id);
    return;
  }
  retries_.add();
  spool_->release(record.id);
  note_failure(result);
}

bool DeliveryQueue::wait_before_retry(std::chrono::milliseconds delay) {
  std::unique_lock lock(mutex_);
  const auto until = Clock::now() + delay;
  // Shutdown wakes us so that a long back-off does not outlive the deadline.
  while (Clock::now() < until) {
    if (draining_ && Clock::now() >= deadline_) return false;
    wake_.wait_until(lock, draining_ ? std::min(until, deadline_) : until);
  }
  return !(draining_ && Clock::now() >= deadline_);
}

void DeliveryQueue::deliver(batching::Batch& batch, unsigned worker_index) {
  RetryPolicy policy(config_.retry, std::random_device{}() ^ (std::uint64_t{worker_index} << 32));
  const auto first_attempt = Clock::now();
  for (unsigned n = 0;; ++n) {
    if (n > 0) retries_.add();
    std::optional<std::chrono::milliseconds> retry_after;
    exporters::ExportResult result;
    if (attempt(batch.request, batch.spans, retry_after, result) == Attempt::kDone) {
      finish(batch);
      return;
    }
    if (spool_) {
      // The spool keeps it while the upstream recovers; this worker is free.
      note_failure(result);
      if (spill(batch)) return;
    }
    const auto elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - first_attempt);
    const auto delay = policy.next_delay(n, elapsed, retry_after);
    if (!delay) {
      if (auto suppressed = log_limiter_.allow("exhausted")) {
        spdlog::error(
            "giving up on a batch of {} spans after {} attempts ({}): {} ({} similar suppressed)",
            batch.spans, n + 1, result.code, result.message, *suppressed);
      }
      drop(batch, "retry_exhausted");
      return;
    }
    if (auto suppressed = log_limiter_.allow("failed:" + result.code)) {
      spdlog::warn("export failed ({}: {}), retry {} in {} ms ({} similar suppressed)", result.code,
                   result.message, n + 1, delay->count(), *suppressed);
    }
    if (!wait_before_retry(*delay)) {
      if (!(spool_ && spill(batch))) drop(batch, "shutdown_timeout");
      return;
    }
  }
}

void DeliveryQueue::drop(const batching::Batch& batch, const std::string& reason) {
  dropped(reason).add(batch.spans);
  finish(batch);
}

void DeliveryQueue::finish(const batching::Batch& batch) {
  pending_spans_.add(-static_cast<std::int64_t>(batch.spans));
  budget_.release(batch.reserved_bytes);
}

}  // namespace spanrelay::delivery
