#pragma once
// The standard process_* series every Prometheus client library exports
// (CPU, memory, file descriptors, start time), read from /proc at scrape time
// so that dashboards and alerts written for any exporter work on spanrelay
// unchanged. Linux only: elsewhere nothing is registered.
#include <cstddef>
#include <string>
#include <string_view>

#include "daemon/common/result.h"
#include "daemon/telemetry/metrics.h"

namespace spanrelay::telemetry {

// The fields of /proc/<pid>/stat the process_* metrics need, in Prometheus units.
struct ProcessStat {
  double cpu_seconds = 0;               // utime + stime
  double virtual_memory_bytes = 0;      // vsize
  double resident_memory_bytes = 0;     // rss (pages) * page size
  double start_seconds_after_boot = 0;  // starttime (clock ticks) / ticks per second
};

// Parses the text of /proc/<pid>/stat (proc(5)). `ticks_per_second` is
// sysconf(_SC_CLK_TCK), `page_size` sysconf(_SC_PAGESIZE).
Result<ProcessStat> parse_proc_stat(std::string_view text, long ticks_per_second, long page_size);

// The boot time in unix seconds: the "btime" line of /proc/stat.
Result<double> parse_boot_time(std::string_view proc_stat_text);

// Open descriptors listed in `fd_dir` (/proc/self/fd), not counting the one
// used to list it; error when the directory cannot be read.
Result<std::size_t> count_open_fds(const std::string& fd_dir = "/proc/self/fd");

// Registers process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds and
// process_start_time_seconds on `registry`. Returns an error (and registers
// nothing) when /proc cannot be read, e.g. not on Linux; the daemon runs on.
Status register_process_metrics(Registry& registry);

}  // namespace spanrelay::telemetry
