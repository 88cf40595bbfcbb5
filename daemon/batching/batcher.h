#pragma once
// Batching: accepted spans are copied into the open batch (a RequestWriter)
// and the batch is handed to delivery when it reaches max_spans or max_bytes,
// or when its oldest span has waited `timeout`. Copying at admission lets the
// request buffer go at once (see DESIGN.md, hot path).
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "daemon/batching/batch.h"
#include "daemon/config/config.h"
#include "daemon/delivery/memory_budget.h"
#include "daemon/otlp/request_writer.h"
#include "daemon/receivers/span_consumer.h"
#include "daemon/telemetry/metrics.h"

namespace spanrelay::batching {

class Batcher final : public receivers::SpanConsumer {
 public:
  // Receives every finished batch; called without the batcher's lock held.
  using BatchSink = std::function<void(Batch&&)>;

  Batcher(config::BatchConfig config, delivery::MemoryBudget& budget, BatchSink sink,
          telemetry::Registry& metrics);
  ~Batcher() override;

  void start();
  // Stops admitting (refusals say "shutting_down"), flushes the open batch.
  // Safe twice and without start().
  void shutdown();

  // Pass-through admission: reserves the spans' memory and batches them all.
  receivers::Admission consume(otlp::ScannedRequest&& request) override;

  // Spans that an earlier stage (tail sampling) already admitted: their
  // memory is reserved (reservation_for each span) and counted in
  // spanrelay_queue_spans; the batch takes both over.
  struct AdmittedSpan {
    const otlp::ScannedRequest* request;
    const otlp::SpanView* span;
  };
  void add_admitted(std::span<const AdmittedSpan> spans);
  void add_admitted(const otlp::ScannedRequest& request, std::span<const otlp::SpanView> spans);

  // Where pass-through admission sends a whole request when the memory budget
  // is full (the disk spool); returns false when that is full too. Set before
  // start().
  using Overflow = std::function<bool(std::string_view request, std::uint32_t spans)>;
  void set_overflow(Overflow overflow) { overflow_ = std::move(overflow); }

  // Gives back memory an earlier stage reserved for spans it then dropped
  // (sampled out): they will never reach a batch.
  void release_reservation(std::uint64_t bytes) { budget_.release(bytes); }
  // Reserves memory for spans about to be admitted by an earlier stage, and
  // counts them as pending; false (nothing reserved) when over the budget or
  // shutting down.
  receivers::Admission reserve(std::uint64_t bytes, std::uint64_t spans);

  // Reload: new limits apply from the next span; the open batch is kept.
  void update_config(const config::BatchConfig& config);

  // Flushes the open batch now (used by shutdown and tests).
  void flush();

  // Bytes reserved from the budget for a span: its bytes plus a fixed share for
  // the headers and framing it will need in a batch.
  static std::uint64_t reservation_for(std::size_t span_bytes) { return span_bytes + 32; }

 private:
  // A closed batch whose bytes are not written yet: writing (a copy of up to
  // max_bytes) happens after the lock is released, so receivers adding spans
  // never wait for it.
  struct ClosedBatch {
    std::unique_ptr<otlp::RequestWriter> writer;
    std::uint32_t spans = 0;
    std::uint64_t reserved_bytes = 0;
    std::chrono::steady_clock::time_point created{};
  };
  void add_locked(const otlp::ScannedRequest& request, const otlp::SpanView& span,
                  std::vector<ClosedBatch>& ready);
  std::optional<ClosedBatch> close_batch_locked();
  // Writes closed batches and hands them to the sink; without the lock.
  void deliver(std::vector<ClosedBatch>& closed);
  void deliver(ClosedBatch&& closed);
  void timer_loop();

  config::BatchConfig config_;
  delivery::MemoryBudget& budget_;
  BatchSink sink_;
  Overflow overflow_;
  telemetry::Histogram& batch_spans_;
  telemetry::Gauge& pending_spans_;  // shared with delivery: accepted, not yet done

  std::mutex mutex_;
  std::condition_variable wake_;
  std::unique_ptr<otlp::RequestWriter> writer_ = std::make_unique<otlp::RequestWriter>();
  // Writers whose batch was written, kept for their buffers' capacity.
  std::vector<std::unique_ptr<otlp::RequestWriter>> spare_writers_;
  std::uint64_t open_reserved_ = 0;
  std::chrono::steady_clock::time_point open_since_{};
  bool stopping_ = false;
  bool admitting_ = true;
  std::thread timer_;
};

}  // namespace spanrelay::batching
