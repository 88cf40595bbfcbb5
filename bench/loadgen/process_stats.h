#pragma once
// What the daemon under load costs, read from /proc (Linux only).
#include <sys/types.h>

#include <cstdint>

#include "daemon/common/result.h"

namespace spanrelay::loadgen {

// User + system CPU time the process has used so far, in seconds
// (utime + stime of /proc/PID/stat, in clock ticks of sysconf(_SC_CLK_TCK)).
Result<double> process_cpu_seconds(pid_t pid);

// Peak resident set size over the process's life (VmHWM of /proc/PID/status).
Result<std::int64_t> process_peak_rss_kib(pid_t pid);

}  // namespace spanrelay::loadgen
