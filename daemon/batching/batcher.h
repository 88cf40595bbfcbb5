#pragma once
// Batching: accepted spans are copied into the open batch (a RequestWriter)
// and the batch is handed to delivery when it reaches max_spans or max_bytes,
// or when its oldest span has waited `timeout`. Copying at admission lets the
// request buffer go at once (see DESIGN.md, hot path).
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

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

  receivers::Admission consume(otlp::ScannedRequest&& request) override;

  // Flushes the open batch now (used by shutdown and tests).
  void flush();

  // Bytes reserved from the budget for a span: its bytes plus a fixed share for
  // the headers and framing it will need in a batch.
  static std::uint64_t reservation_for(std::size_t span_bytes) { return span_bytes + 32; }

 private:
  std::optional<Batch> take_batch_locked();
  void timer_loop();

  config::BatchConfig config_;
  delivery::MemoryBudget& budget_;
  BatchSink sink_;
  telemetry::Histogram& batch_spans_;
  telemetry::Gauge& pending_spans_;  // shared with delivery: accepted, not yet done

  std::mutex mutex_;
  std::condition_variable wake_;
  otlp::RequestWriter writer_;
  std::uint64_t open_reserved_ = 0;
  std::chrono::steady_clock::time_point open_since_{};
  bool stopping_ = false;
  bool admitting_ = true;
  std::thread timer_;
};

}  // namespace spanrelay::batching
