#include "daemon/delivery/delivery_queue.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

#include "daemon/common/thread_role.h"

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

telemetry::Labels with_label(telemetry::Labels labels, std::string key, std::string value) {
  labels.emplace_back(std::move(key), std::move(value));
  return labels;
}
}  // namespace

DeliveryQueue::DeliveryQueue(std::shared_ptr<exporters::Exporter> exporter,
                             const config::ExporterConfig& config, MemoryBudget& budget,
                             telemetry::Registry& metrics, Spool* spool,
                             DeliveryQueueOptions options)
    : exporter_(std::move(exporter)),
      config_(config),
      options_(std::move(options)),
      budget_(budget),
      metrics_(metrics),
      spool_(spool),
      sent_spans_(metrics.counter("spanrelay_exporter_sent_spans_total",
                                  "Spans the upstream acknowledged.", options_.labels)),
      sent_requests_(metrics.counter("spanrelay_exporter_sent_requests_total",
                                     "Export requests the upstream acknowledged.",
                                     options_.labels)),
      retries_(metrics.counter("spanrelay_exporter_retries_total",
                               "Export attempts that were retries of a failed attempt.",
                               options_.labels)),
      spooled_batches_(metrics.counter("spanrelay_spool_appended_batches_total",
                                       "Batches written to the disk spool.", options_.labels)),
      pending_spans_(metrics.gauge(kQueueSpans, kQueueSpansHelp)),
      export_seconds_(metrics.histogram(
          "spanrelay_export_seconds", "Duration of one export attempt to the upstream.",
          {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30}, options_.labels)),
      shared_policy_(config.retry, std::random_device{}()) {
  for (const char* reason : {"retry_exhausted", "non_retryable", "upstream_rejected",
                             "shutdown_timeout", "spool_full", "spool_corrupt"}) {
    dropped(reason);
  }
  // A load-balanced member's owner registers its gauges: they must outlive
  // the member, which a resolver may remove while the registry lives on.
  if (!options_.labels.empty()) return;
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
  return metrics_.counter(kFailed, kFailedHelp, with_label(options_.labels, "code", code));
}

void DeliveryQueue::start() {
  std::lock_guard lock(mutex_);
  if (!workers_.empty() || draining_) return;
  for (unsigned i = 0; i < config_.max_in_flight; ++i) {
    workers_.emplace_back([this, i] { worker_loop(i); });
  }
}

void DeliveryQueue::push(batching::Batch&& batch) {
  if (try_give_back(batch)) return;
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

std::uint64_t DeliveryQueue::queued_bytes() const {
  std::lock_guard lock(mutex_);
  return queued_bytes_;
}

void DeliveryQueue::suspend() {
  {
    std::lock_guard lock(mutex_);
    suspended_ = true;
  }
  wake_.notify_all();  // retry waits end early and give their batch back
}

void DeliveryQueue::resume() {
  {
    std::lock_guard lock(mutex_);
    suspended_ = false;
  }
  wake_.notify_all();
}

bool DeliveryQueue::suspended() const {
  std::lock_guard lock(mutex_);
  return suspended_;
}

std::vector<batching::Batch> DeliveryQueue::take_queued() {
  std::lock_guard lock(mutex_);
  std::vector<batching::Batch> taken(std::make_move_iterator(queue_.begin()),
                                     std::make_move_iterator(queue_.end()));
  queue_.clear();
  queued_bytes_ = 0;
  return taken;
}

bool DeliveryQueue::try_give_back(batching::Batch& batch) {
  if (!options_.give_back || !suspended()) return false;
  return options_.give_back(batch);
}

void DeliveryQueue::begin_shutdown(Clock::time_point deadline) {
  {
    std::lock_guard lock(mutex_);
    if (!draining_) deadline_ = deadline;
    draining_ = true;
  }
  wake_.notify_all();
}

void DeliveryQueue::shutdown(Clock::time_point deadline) {
  begin_shutdown(deadline);
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(mutex_);
    workers.swap(workers_);
  }
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
    if (try_give_back(batch)) continue;
    if (!(spool_ && spill(batch))) drop(batch, "shutdown_timeout");
  }
}

void DeliveryQueue::worker_loop(unsigned index) {
  set_current_thread_role("sr-export-" + std::to_string(index), ThreadRole::kBackground);
  for (;;) {
    std::optional<batching::Batch> batch;
    {
      std::unique_lock lock(mutex_);
      for (;;) {
        const auto now = Clock::now();
        if (draining_ && (queue_.empty() || now >= deadline_)) return;
        // Out of the ring: whatever arrives is given back by push().
        if (suspended_ && !draining_) {
          wake_.wait(lock);
          continue;
        }
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
    if (health_failures_.exchange(0) > 0 && options_.on_recovered) options_.on_recovered();
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
  const unsigned in_a_row = health_failures_.fetch_add(1) + 1;
  if (options_.on_failure) options_.on_failure(in_a_row);
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

DeliveryQueue::Wait DeliveryQueue::wait_before_retry(std::chrono::milliseconds delay,
                                                     bool wake_on_suspend) {
  std::unique_lock lock(mutex_);
  const auto until = Clock::now() + delay;
  // Shutdown wakes us so that a long back-off does not outlive the deadline;
  // suspension, so that the batch goes to the member that now owns its keys.
  const bool can_give_back = wake_on_suspend && static_cast<bool>(options_.give_back);
  while (Clock::now() < until) {
    if (draining_ && Clock::now() >= deadline_) return Wait::kDeadlinePassed;
    if (suspended_ && can_give_back) return Wait::kSuspended;
    wake_.wait_until(lock, draining_ ? std::min(until, deadline_) : until);
  }
  return draining_ && Clock::now() >= deadline_ ? Wait::kDeadlinePassed : Wait::kRetry;
}

void DeliveryQueue::deliver(batching::Batch& batch, unsigned worker_index) {
  RetryPolicy policy(config_.retry, std::random_device{}() ^ (std::uint64_t{worker_index} << 32));
  const auto first_attempt = Clock::now();
  bool give_back_refused = false;  // the balancer is shutting down: retry here
  for (unsigned n = 0;; ++n) {
    if (n > 0) retries_.add();
    std::optional<std::chrono::milliseconds> retry_after;
    exporters::ExportResult result;
    if (attempt(batch.request, batch.spans, retry_after, result) == Attempt::kDone) {
      finish(batch);
      return;
    }
    // Ejected from the ring: another member owns these keys now.
    if (try_give_back(batch)) return;
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
    const Wait waited = wait_before_retry(*delay, !give_back_refused);
    if (waited == Wait::kSuspended) {
      if (try_give_back(batch)) return;
      give_back_refused = true;
    }
    if (waited == Wait::kDeadlinePassed) {
      // A member leaving the balancer ends with a deadline of "now": its
      // batches go back to the balancer rather than to the spool or the floor.
      if (try_give_back(batch)) return;
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
