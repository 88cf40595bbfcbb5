#pragma once
// The metrics registry: counters, gauges and histograms declared once, with a
// fixed, low-cardinality label set each, rendered in the Prometheus text
// exposition format (0.0.4). Hot-path updates are one relaxed atomic add on a
// cache-line-sized cell picked by thread, so threads do not contend; a scrape
// sums the cells.
#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace spanrelay::telemetry {

using Labels = std::vector<std::pair<std::string, std::string>>;

namespace detail {
constexpr std::size_t kCells = 16;
struct alignas(64) Cell {
  std::atomic<std::uint64_t> value{0};
};
std::size_t this_thread_cell();
}  // namespace detail

class Counter {
 public:
  void add(std::uint64_t n = 1) {
    cells_[detail::this_thread_cell()].value.fetch_add(n, std::memory_order_relaxed);
  }
  std::uint64_t value() const;

 private:
  std::array<detail::Cell, detail::kCells> cells_;
};

// A value that goes up and down (queue bytes, traces in flight).
class Gauge {
 public:
  void set(std::int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void add(std::int64_t n) { value_.fetch_add(n, std::memory_order_relaxed); }
  std::int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> value_{0};
};

// Fixed upper bounds; observe() is lock-free.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  struct Snapshot {
    std::vector<std::uint64_t> cumulative_counts;  // one per bound, then +Inf
    std::uint64_t count = 0;
    double sum = 0;
  };
  Snapshot snapshot() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<std::uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

class Registry {
 public:
  // The same name + labels returns the same instrument; references stay valid
  // for the registry's lifetime.
  Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& histogram(const std::string& name, const std::string& help, std::vector<double> bounds,
                       const Labels& labels = {});
  // A gauge computed at scrape time (process RSS, queue sizes owned elsewhere).
  void callback_gauge(const std::string& name, const std::string& help, std::function<double()> fn,
                      const Labels& labels = {});
  // A counter whose total is kept elsewhere and read at scrape time (CPU
  // seconds from /proc). `fn` must never decrease. A name is either this or
  // counter(), never both.
  void callback_counter(const std::string& name, const std::string& help,
                        std::function<double()> fn, const Labels& labels = {});

  // Prometheus text exposition format.
  std::string render() const;

  // Value of a counter or gauge series, for tests and the accounting check; 0 if absent.
  double value(const std::string& name, const Labels& labels = {}) const;

 private:
  enum class Kind { kCounter, kGauge, kHistogram };
  struct Series {
    Labels labels;
    Counter* counter = nullptr;
    Gauge* gauge = nullptr;
    Histogram* histogram = nullptr;
    std::function<double()> callback;
  };
  struct Family {
    Kind kind;
    std::string help;
    std::vector<Series> series;
  };
  Series* find(const std::string& name, const Labels& labels);
  Family& family(const std::string& name, const std::string& help, Kind kind);

  mutable std::mutex mutex_;
  std::map<std::string, Family> families_;
  std::deque<Counter> counters_;
  std::deque<Gauge> gauges_;
  std::deque<Histogram> histograms_;
};

}  // namespace spanrelay::telemetry
