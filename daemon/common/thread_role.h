#pragma once
// Names the calling thread (shown by top -H, ps -L, perf and gdb) and sets
// how it competes for CPU with the daemon's other threads.
//
// Why the priority: the app's export call waits for a receiver thread, while
// compressing and sending batches (1 MiB through zstd or gzip takes about a
// millisecond) can wait. On a host where the daemon gets one core, a receiver
// woken while an exporter compresses would otherwise queue behind it for a
// scheduler time slice, which is what the ack latency's p99 measured. So
// background threads run at a lower priority (a higher nice value) than the
// threads on the ack path; they still get every idle cycle, and under
// saturation the memory budget pushes back on the apps as before.
#include <string_view>

namespace spanrelay {

enum class ThreadRole {
  kAckPath,     // receivers, ingest: the app waits for these
  kBackground,  // exporters, sampling decisions, spool flushing, timers
};

// Nice offset of kBackground threads over the process's own nice value.
inline constexpr int kBackgroundNiceOffset = 5;

// `name`: at most 15 characters are kept (Linux's limit). Best effort: a
// failure (e.g. RLIMIT_NICE) changes nothing else.
void set_current_thread_role(std::string_view name, ThreadRole role);

}  // namespace spanrelay
