#pragma once
// Tallies of one load run and the block printed at the end of it.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bench/loadgen/clients.h"
#include "bench/loadgen/loadgen_options.h"
#include "bench/loadgen/request_pool.h"

namespace spanrelay::loadgen {

// Kept per worker (no sharing while the load runs), merged at the end.
struct Tally {
  std::vector<std::int64_t> latencies_ns;  // one per answered or failed request
  std::map<std::string, std::uint64_t> by_code;
  std::uint64_t ok = 0;
  std::uint64_t refused = 0;
  std::uint64_t errors = 0;
  std::uint64_t spans_sent = 0;
  std::uint64_t spans_acked = 0;

  void add(const SendOutcome& outcome, std::int64_t latency_ns, std::size_t spans);
  void merge(Tally&& other);
};

struct RunSummary {
  double elapsed_s = 0;  // first send to last answer
  Tally tally;           // merged
  std::optional<double> daemon_cpu_s;
  std::optional<std::int64_t> daemon_peak_rss_kib;
  std::string daemon_note;  // why the daemon figures are missing, if they are
};

// Nearest-rank percentile (q in [0,1]) of sorted values, in microseconds.
double percentile_us(const std::vector<std::int64_t>& sorted_ns, double q);

// The human-readable block followed by the `RESULT key=value ...` line.
std::string format_report(const LoadgenOptions& options, const RequestPool& pool,
                          RunSummary& summary);

}  // namespace spanrelay::loadgen
