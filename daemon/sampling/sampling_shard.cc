#include "daemon/sampling/sampling_shard.h"

#include <chrono>

#include "daemon/common/thread_role.h"

namespace spanrelay::sampling {

namespace {
std::uint64_t wall_clock_unix_nano() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}
}  // namespace

SamplingShard::SamplingShard(const config::SamplingConfig& config, std::uint64_t max_traces,
                             std::uint64_t max_bytes, const PolicyHandle& policies,
                             batching::Batcher& batcher, SamplingMetrics& metrics)
    : config_(config),
      max_traces_(max_traces),
      max_bytes_(max_bytes),
      policies_(policies),
      batcher_(batcher),
      metrics_(metrics),
      cache_(config.decision_cache_size) {}

SamplingShard::~SamplingShard() { stop(); }

void SamplingShard::start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { run(); });
}

void SamplingShard::submit(ShardWork&& work) {
  bool was_empty = false;
  {
    std::lock_guard lock(mutex_);
    was_empty = inbox_.empty();
    inbox_.push_back(std::move(work));
  }
  // Only the first item wakes the shard: it takes the whole inbox under the
  // lock and looks again before it sleeps, so later items need no wake-up
  // (a futex call and a context switch each, a tenth of the CPU under load).
  if (was_empty) wake_.notify_one();
}

void SamplingShard::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) {
    thread_.join();
  } else {
    // Never started: still settle what was submitted, on this thread.
    run();
  }
}

void SamplingShard::run() {
  set_current_thread_role("sr-sampler", ThreadRole::kBackground);
  std::vector<ShardWork> work;
  for (;;) {
    bool stopping = false;
    {
      std::unique_lock lock(mutex_);
      if (inbox_.empty() && !stopping_) {
        if (arrivals_.empty()) {
          wake_.wait(lock, [&] { return !inbox_.empty() || stopping_; });
        } else {
          wake_.wait_until(lock, arrivals_.front().second + config_.decision_wait,
                           [&] { return !inbox_.empty() || stopping_; });
        }
      }
      work.swap(inbox_);
      stopping = stopping_;
    }
    const auto now = Clock::now();
    current_ = policies_.load();
    for (const auto& item : work) process(item, now);
    work.clear();
    decide_due(now);
    enforce_bounds(now);
    if (stopping) {
      // Decide everything still buffered: policies apply, errors are kept.
      while (!traces_.empty()) decide(traces_.begin(), now);
      arrivals_.clear();
      return;
    }
  }
}

void SamplingShard::process(const ShardWork& work, Clock::time_point now) {
  const auto& request = *work.request;
  for (const auto index : work.span_indices) accept_span(work.request, request.spans[index], now);
}

void SamplingShard::accept_span(const std::shared_ptr<const otlp::ScannedRequest>& request,
                                const otlp::SpanView& span, Clock::time_point now) {
  const std::uint64_t reserved = batching::Batcher::reservation_for(span.bytes.length);
  if (auto decided = cache_.find(span.trace_id)) {
    if (*decided) {
      metrics_.late_kept.add();
      const batching::Batcher::AdmittedSpan admitted{request.get(), &span};
      batcher_.add_admitted(std::span(&admitted, 1));
    } else {
      metrics_.late_dropped.add();
      metrics_.sampled_out_spans.add();
      release(1, reserved);
    }
    return;
  }
  auto [it, inserted] = traces_.try_emplace(span.trace_id);
  auto& entry = it->second;
  if (inserted) {
    entry.first_seen = now;
    arrivals_.emplace_back(span.trace_id, now);
    metrics_.traces_in_flight.add(1);
    // A child span ending well before this trace could have started waiting
    // here most likely belongs to a trace decided and forgotten already.
    if (span.has_parent) {
      const auto wait_ns = static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(config_.decision_wait).count());
      const auto now_ns = wall_clock_unix_nano();
      if (span.end_time_unix_nano != 0 && span.end_time_unix_nano + 2 * wait_ns < now_ns) {
        metrics_.late_cache_miss.add();
      }
    }
  }
  if (entry.holds.empty() || entry.holds.back() != request) entry.holds.push_back(request);
  entry.spans.push_back(BufferedSpan{request.get(), &span});
  entry.bytes += reserved;
  buffered_bytes_ += reserved;
  metrics_.buffered_bytes.add(static_cast<std::int64_t>(reserved));
  if (current_->set.decides_early(*request, span)) {
    metrics_.early_decide_early.add();
    decide(it, now);
  }
}

void SamplingShard::decide(TraceTable::iterator it, Clock::time_point now) {
  auto& entry = it->second;
  const auto& active = *current_;
  const auto decision = active.set.decide(it->first, entry.spans, now);
  const std::size_t label =
      decision.policy == Decision::kNoPolicy ? active.kept.size() - 1 : decision.policy;
  if (decision.keep) {
    active.kept[label]->add();
    kept_scratch_.clear();
    for (const auto& buffered : entry.spans)
      kept_scratch_.push_back({buffered.request, buffered.span});
    batcher_.add_admitted(kept_scratch_);
  } else {
    active.dropped[label]->add();
    metrics_.sampled_out_spans.add(entry.spans.size());
    release(entry.spans.size(), entry.bytes);
  }
  cache_.remember(it->first, decision.keep);
  buffered_bytes_ -= entry.bytes;
  metrics_.buffered_bytes.add(-static_cast<std::int64_t>(entry.bytes));
  metrics_.traces_in_flight.add(-1);
  traces_.erase(it);
}

void SamplingShard::decide_due(Clock::time_point now) {
  while (!arrivals_.empty() && arrivals_.front().second + config_.decision_wait <= now) {
    const auto [trace_id, seen] = arrivals_.front();
    arrivals_.pop_front();
    auto it = traces_.find(trace_id);
    // Already decided early (and maybe seen again since): only the arrival
    // that opened the current entry decides it.
    if (it != traces_.end() && it->second.first_seen == seen) decide(it, now);
  }
}

void SamplingShard::enforce_bounds(Clock::time_point now) {
  while (!arrivals_.empty() && (traces_.size() > max_traces_ || buffered_bytes_ > max_bytes_)) {
    const bool over_traces = traces_.size() > max_traces_;
    const auto [trace_id, seen] = arrivals_.front();
    arrivals_.pop_front();
    auto it = traces_.find(trace_id);
    if (it == traces_.end() || it->second.first_seen != seen) continue;
    (over_traces ? metrics_.early_max_traces : metrics_.early_max_bytes).add();
    decide(it, now);
  }
}

void SamplingShard::release(std::uint64_t spans, std::uint64_t reserved_bytes) {
  metrics_.pending_spans.add(-static_cast<std::int64_t>(spans));
  batcher_.release_reservation(reserved_bytes);
}

}  // namespace spanrelay::sampling
