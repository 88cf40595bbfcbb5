#include "daemon/batching/batcher.h"

#include "daemon/common/thread_role.h"

namespace spanrelay::batching {

namespace {
constexpr std::size_t kMaxSpareWriters = 4;
}  // namespace

Batcher::Batcher(config::BatchConfig config, delivery::MemoryBudget& budget, BatchSink sink,
                 telemetry::Registry& metrics)
    : config_(config),
      budget_(budget),
      sink_(std::move(sink)),
      batch_spans_(metrics.histogram("spanrelay_batch_spans", "Spans per batch handed to delivery.",
                                     {1, 8, 32, 128, 512, 1024, 2048, 8192})),
      pending_spans_(metrics.gauge("spanrelay_queue_spans",
                                   "Spans accepted and not yet delivered or dropped (open batch, "
                                   "queue, in flight, retrying).")) {}

Batcher::~Batcher() { shutdown(); }

void Batcher::start() {
  std::lock_guard lock(mutex_);
  if (timer_.joinable() || stopping_) return;
  timer_ = std::thread([this] { timer_loop(); });
}

void Batcher::shutdown() {
  {
    std::lock_guard lock(mutex_);
    admitting_ = false;
    stopping_ = true;
  }
  wake_.notify_all();
  if (timer_.joinable()) timer_.join();
  flush();
}

receivers::Admission Batcher::reserve(std::uint64_t bytes, std::uint64_t spans) {
  std::lock_guard lock(mutex_);
  if (!admitting_) return {false, "shutting_down", std::chrono::seconds(1)};
  if (!budget_.try_reserve(bytes)) return {false, "memory_limit", std::chrono::seconds(1)};
  pending_spans_.add(static_cast<std::int64_t>(spans));
  return {};
}

receivers::Admission Batcher::consume(otlp::ScannedRequest&& request) {
  std::uint64_t needed = 0;
  for (const auto& span : request.spans) needed += reservation_for(span.bytes.length);
  auto admission = reserve(needed, request.spans.size());
  if (admission.accepted) {
    add_admitted(request, request.spans);
  } else if (admission.reason == "memory_limit" && overflow_ &&
             overflow_(*request.payload, static_cast<std::uint32_t>(request.spans.size()))) {
    // The request itself is a valid ExportTraceServiceRequest: it goes to
    // disk as it came, and the app is acked without waiting for memory.
    return {};
  }
  return admission;
}

void Batcher::add_admitted(const otlp::ScannedRequest& request,
                           std::span<const otlp::SpanView> spans) {
  std::vector<ClosedBatch> ready;
  bool was_empty = false;
  {
    std::lock_guard lock(mutex_);
    was_empty = writer_->empty();
    for (const auto& span : spans) add_locked(request, span, ready);
  }
  // The timer sleeps while no batch is open: tell it one opened.
  if (was_empty) wake_.notify_one();
  deliver(ready);
}

void Batcher::add_admitted(std::span<const AdmittedSpan> spans) {
  std::vector<ClosedBatch> ready;
  bool was_empty = false;
  {
    std::lock_guard lock(mutex_);
    was_empty = writer_->empty();
    for (const auto& admitted : spans) add_locked(*admitted.request, *admitted.span, ready);
  }
  if (was_empty) wake_.notify_one();
  deliver(ready);
}

void Batcher::add_locked(const otlp::ScannedRequest& request, const otlp::SpanView& span,
                         std::vector<ClosedBatch>& ready) {
  const auto& scope = request.scope_of(span);
  const auto& resource = request.resources[scope.resource_index];
  const auto span_bytes = request.span_bytes(span);
  // Close the open batch first if this span would push it past max_bytes.
  if (!writer_->empty() && writer_->encoded_size() + span_bytes.size() +
                                   resource.header_bytes.size() + scope.header_bytes.size() + 16 >
                               config_.max_bytes) {
    if (auto batch = close_batch_locked()) ready.push_back(std::move(*batch));
  }
  if (writer_->empty()) open_since_ = std::chrono::steady_clock::now();
  writer_->add_span(resource.header_bytes, scope.header_bytes, span_bytes);
  open_reserved_ += reservation_for(span_bytes.size());
  if (writer_->span_count() >= config_.max_spans) {
    if (auto batch = close_batch_locked()) ready.push_back(std::move(*batch));
  }
}

std::optional<Batcher::ClosedBatch> Batcher::close_batch_locked() {
  if (writer_->empty()) return std::nullopt;
  ClosedBatch closed;
  closed.spans = static_cast<std::uint32_t>(writer_->span_count());
  closed.reserved_bytes = open_reserved_;
  closed.created = open_since_;
  closed.writer = std::move(writer_);
  if (spare_writers_.empty()) {
    writer_ = std::make_unique<otlp::RequestWriter>();
  } else {
    writer_ = std::move(spare_writers_.back());
    spare_writers_.pop_back();
  }
  open_reserved_ = 0;
  return closed;
}

void Batcher::deliver(ClosedBatch&& closed) {
  Batch batch;
  batch.spans = closed.spans;
  batch.request = closed.writer->finish();  // leaves the writer empty, buffers kept
  batch.reserved_bytes = closed.reserved_bytes;
  batch.created = closed.created;
  batch_spans_.observe(batch.spans);
  {
    std::lock_guard lock(mutex_);
    // One spare per concurrent writer is enough; more would only hold memory.
    if (spare_writers_.size() < kMaxSpareWriters)
      spare_writers_.push_back(std::move(closed.writer));
  }
  sink_(std::move(batch));
}

void Batcher::deliver(std::vector<ClosedBatch>& closed) {
  for (auto& batch : closed) deliver(std::move(batch));
}

void Batcher::update_config(const config::BatchConfig& config) {
  {
    std::lock_guard lock(mutex_);
    config_ = config;
  }
  wake_.notify_all();  // a shorter timeout may already be due
}

void Batcher::flush() {
  std::optional<ClosedBatch> batch;
  {
    std::lock_guard lock(mutex_);
    batch = close_batch_locked();
  }
  if (batch) deliver(std::move(*batch));
}

void Batcher::timer_loop() {
  set_current_thread_role("sr-batch-timer", ThreadRole::kBackground);
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (writer_->empty()) {
      wake_.wait(lock);
      continue;
    }
    const auto due = open_since_ + config_.timeout;
    if (std::chrono::steady_clock::now() < due) {
      wake_.wait_until(lock, due);
      continue;
    }
    auto batch = close_batch_locked();
    lock.unlock();
    if (batch) deliver(std::move(*batch));
    lock.lock();
  }
}

}  // namespace spanrelay::batching
