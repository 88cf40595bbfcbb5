#include "daemon/telemetry/metrics.h"

#include <charconv>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace spanrelay::telemetry {

namespace detail {
std::size_t this_thread_cell() {
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t cell = next.fetch_add(1, std::memory_order_relaxed) % kCells;
  return cell;
}
}  // namespace detail

std::uint64_t Counter::value() const {
  std::uint64_t total = 0;
  for (const auto& cell : cells_) total += cell.value.load(std::memory_order_relaxed);
  return total;
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {}

void Histogram::observe(double value) {
  std::size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  double expected = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(expected, expected + value, std::memory_order_relaxed)) {
  }
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot snap;
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    snap.cumulative_counts.push_back(running);
  }
  snap.count = running;
  snap.sum = sum_.load(std::memory_order_relaxed);
  return snap;
}

Registry::Family& Registry::family(const std::string& name, const std::string& help, Kind kind) {
  auto [it, inserted] = families_.try_emplace(name, Family{kind, help, {}});
  if (!inserted && it->second.kind != kind) {
    throw std::logic_error("metric " + name + " registered with two kinds");
  }
  return it->second;
}

Registry::Series* Registry::find(const std::string& name, const Labels& labels) {
  auto it = families_.find(name);
  if (it == families_.end()) return nullptr;
  for (auto& series : it->second.series) {
    if (series.labels == labels) return &series;
  }
  return nullptr;
}

Counter& Registry::counter(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mutex_);
  auto& fam = family(name, help, Kind::kCounter);
  if (auto* s = find(name, labels)) return *s->counter;
  auto& c = counters_.emplace_back();
  fam.series.push_back(Series{labels, &c, nullptr, nullptr, {}});
  return c;
}

Gauge& Registry::gauge(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mutex_);
  auto& fam = family(name, help, Kind::kGauge);
  if (auto* s = find(name, labels); s && s->gauge) return *s->gauge;
  auto& g = gauges_.emplace_back();
  fam.series.push_back(Series{labels, nullptr, &g, nullptr, {}});
  return g;
}

Histogram& Registry::histogram(const std::string& name, const std::string& help,
                               std::vector<double> bounds, const Labels& labels) {
  std::lock_guard lock(mutex_);
  auto& fam = family(name, help, Kind::kHistogram);
  if (auto* s = find(name, labels)) return *s->histogram;
  auto& h = histograms_.emplace_back(std::move(bounds));
  fam.series.push_back(Series{labels, nullptr, nullptr, &h, {}});
  return h;
}

void Registry::callback_gauge(const std::string& name, const std::string& help,
                              std::function<double()> fn, const Labels& labels) {
  std::lock_guard lock(mutex_);
  auto& fam = family(name, help, Kind::kGauge);
  if (auto* s = find(name, labels)) {
    s->callback = std::move(fn);
    return;
  }
  fam.series.push_back(Series{labels, nullptr, nullptr, nullptr, std::move(fn)});
}

void Registry::callback_counter(const std::string& name, const std::string& help,
                                std::function<double()> fn, const Labels& labels) {
  std::lock_guard lock(mutex_);
  auto& fam = family(name, help, Kind::kCounter);
  if (auto* s = find(name, labels)) {
    if (s->counter) throw std::logic_error("metric " + name + " is already a plain counter");
    s->callback = std::move(fn);
    return;
  }
  fam.series.push_back(Series{labels, nullptr, nullptr, nullptr, std::move(fn)});
}

namespace {

std::string escape_label_value(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string format_labels(const Labels& labels, const std::string& extra_key = {},
                          const std::string& extra_value = {}) {
  if (labels.empty() && extra_key.empty()) return {};
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k + "=\"" + escape_label_value(v) + "\"";
  }
  if (!extra_key.empty()) {
    if (!first) out += ',';
    out += extra_key + "=\"" + extra_value + "\"";
  }
  return out + "}";
}

std::string format_number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  // Shortest text that reads back to the same double ("0.1", not "0.1000000001").
  std::array<char, 32> buf{};
  const auto result = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  return std::string(buf.data(), result.ptr);
}

}  // namespace

std::string Registry::render() const {
  std::lock_guard lock(mutex_);
  std::ostringstream out;
  for (const auto& [name, fam] : families_) {
    const char* type = fam.kind == Kind::kCounter ? "counter"
                       : fam.kind == Kind::kGauge ? "gauge"
                                                  : "histogram";
    out << "# HELP " << name << ' ' << fam.help << '\n' << "# TYPE " << name << ' ' << type << '\n';
    for (const auto& s : fam.series) {
      if (s.counter) {
        out << name << format_labels(s.labels) << ' ' << s.counter->value() << '\n';
      } else if (s.gauge) {
        out << name << format_labels(s.labels) << ' ' << s.gauge->value() << '\n';
      } else if (s.callback) {
        out << name << format_labels(s.labels) << ' ' << format_number(s.callback()) << '\n';
      } else if (s.histogram) {
        const auto snap = s.histogram->snapshot();
        const auto& bounds = s.histogram->bounds();
        for (std::size_t i = 0; i <= bounds.size(); ++i) {
          const std::string le = i < bounds.size() ? format_number(bounds[i]) : "+Inf";
          out << name << "_bucket" << format_labels(s.labels, "le", le) << ' '
              << snap.cumulative_counts[i] << '\n';
        }
        out << name << "_sum" << format_labels(s.labels) << ' ' << format_number(snap.sum) << '\n';
        out << name << "_count" << format_labels(s.labels) << ' ' << snap.count << '\n';
      }
    }
  }
  return out.str();
}

double Registry::value(const std::string& name, const Labels& labels) const {
  std::lock_guard lock(mutex_);
  auto it = families_.find(name);
  if (it == families_.end()) return 0;
  for (const auto& s : it->second.series) {
    if (s.labels != labels) continue;
    if (s.counter) return static_cast<double>(s.counter->value());
    if (s.gauge) return static_cast<double>(s.gauge->value());
    if (s.callback) return s.callback();
  }
  return 0;
}

}  // namespace spanrelay::telemetry
