#include "bench/loadgen/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace spanrelay::loadgen {

void Tally::add(const SendOutcome& outcome, std::int64_t latency_ns, std::size_t spans) {
  latencies_ns.push_back(latency_ns);
  ++by_code[outcome.code];
  spans_sent += spans;
  switch (outcome.category) {
    case SendOutcome::Category::kOk:
      ++ok;
      spans_acked += spans;
      break;
    case SendOutcome::Category::kRefused:
      ++refused;
      break;
    case SendOutcome::Category::kError:
      ++errors;
      break;
  }
}

void Tally::merge(Tally&& other) {
  latencies_ns.insert(latencies_ns.end(), other.latencies_ns.begin(), other.latencies_ns.end());
  for (const auto& [code, count] : other.by_code) by_code[code] += count;
  ok += other.ok;
  refused += other.refused;
  errors += other.errors;
  spans_sent += other.spans_sent;
  spans_acked += other.spans_acked;
}

double percentile_us(const std::vector<std::int64_t>& sorted_ns, double q) {
  if (sorted_ns.empty()) return std::nan("");
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted_ns.size())));
  const std::size_t index = std::min(sorted_ns.size() - 1, rank == 0 ? 0 : rank - 1);
  return static_cast<double>(sorted_ns[index]) / 1000.0;
}

namespace {

std::string format(const char* pattern, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, pattern, value);
  return buffer;
}

std::string encoding_name(BodyEncoding encoding) {
  return encoding == BodyEncoding::kJson ? "json" : "protobuf";
}

}  // namespace

std::string format_report(const LoadgenOptions& options, const RequestPool& pool,
                          RunSummary& summary) {
  Tally& tally = summary.tally;
  std::sort(tally.latencies_ns.begin(), tally.latencies_ns.end());
  const double elapsed = summary.elapsed_s > 0 ? summary.elapsed_s : std::nan("");
  const std::uint64_t requests = tally.ok + tally.refused + tally.errors;
  const double requests_per_s = static_cast<double>(requests) / elapsed;
  const double spans_per_s = static_cast<double>(tally.spans_acked) / elapsed;
  const double p50 = percentile_us(tally.latencies_ns, 0.50);
  const double p99 = percentile_us(tally.latencies_ns, 0.99);
  const double p999 = percentile_us(tally.latencies_ns, 0.999);
  const double max = percentile_us(tally.latencies_ns, 1.0);
  const std::size_t pool_requests = std::max<std::size_t>(1, pool.requests.size());
  const std::size_t pool_spans = std::max<std::size_t>(1, pool.spans);

  std::string out;
  out += "spanrelay-loadgen: " + options.target.text +
         "  encoding=" + encoding_name(options.encoding) +
         " compression=" + std::string(codec_name(options.compression)) + "\n";
  out += "  load        " + std::to_string(options.concurrency) + " workers, " +
         std::to_string(options.spans_per_request) + " spans/request (" +
         std::to_string(options.spans_per_trace) + "/trace), pool of " +
         std::to_string(pool.requests.size()) +
         " requests: " + format("%.0f", static_cast<double>(pool.body_bytes) / pool_requests) +
         " B/request on the wire, " +
         format("%.0f", static_cast<double>(pool.span_bytes) / pool_spans) + " B/span\n";
  out += "  elapsed     " + format("%.2f", elapsed) + " s\n";
  out += "  offered     " +
         (options.rate > 0 ? format("%.1f", options.rate) + " requests/s (open loop)"
                           : std::string("unlimited (closed loop: next request on ack)")) +
         "\n";
  out += "  achieved    " + format("%.1f", requests_per_s) + " requests/s, " +
         format("%.0f", spans_per_s) + " acked spans/s\n";
  out += "  results     ok=" + std::to_string(tally.ok) +
         " refused=" + std::to_string(tally.refused) + " error=" + std::to_string(tally.errors) +
         "\n";
  out += "  by code    ";
  for (const auto& [code, count] : tally.by_code) out += " " + code + "=" + std::to_string(count);
  out += "\n";
  out += "  ack latency p50=" + format("%.0f", p50) + " p99=" + format("%.0f", p99) +
         " p99.9=" + format("%.0f", p999) + " max=" + format("%.0f", max) + " us\n";

  double cpu_per_mspans = std::nan("");
  if (summary.daemon_cpu_s) {
    cpu_per_mspans = tally.spans_acked > 0
                         ? *summary.daemon_cpu_s / (static_cast<double>(tally.spans_acked) / 1e6)
                         : std::nan("");
    out += "  daemon cpu  " + format("%.2f", *summary.daemon_cpu_s) + " s (" +
           format("%.3f", cpu_per_mspans) + " s per million acked spans, " +
           format("%.0f", 100.0 * *summary.daemon_cpu_s / elapsed) + "% of one core)\n";
  }
  if (summary.daemon_peak_rss_kib) {
    out += "  daemon rss  peak " + std::to_string(*summary.daemon_peak_rss_kib) + " KiB (VmHWM)\n";
  }
  if (!summary.daemon_note.empty()) out += "  daemon      " + summary.daemon_note + "\n";

  const auto value = [](double v, const char* pattern) {
    return std::isnan(v) ? std::string("nan") : format(pattern, v);
  };
  out += "RESULT spans_per_s=" + value(spans_per_s, "%.0f") + " p50_us=" + value(p50, "%.0f") +
         " p99_us=" + value(p99, "%.0f") + " p999_us=" + value(p999, "%.0f") +
         " cpu_s_per_mspans=" + value(cpu_per_mspans, "%.4f") + " peak_rss_kib=" +
         (summary.daemon_peak_rss_kib ? std::to_string(*summary.daemon_peak_rss_kib) : "nan") +
         " errors=" + std::to_string(tally.refused + tally.errors) +
         " refused=" + std::to_string(tally.refused) +
         " requests_per_s=" + value(requests_per_s, "%.1f") + "\n";
  return out;
}

}  // namespace spanrelay::loadgen
