#pragma once
// Durations ("250ms", "1m30s") and sizes ("4MiB", "512KB", "1024") as written
// in config/spanrelay.yaml. The parsers are strict on purpose: a config value
// that reads one way to a person and another way to the daemon ("5 S", "1.5s",
// "4mb") is rejected with a message listing what is accepted, rather than
// guessed at.
#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/common/result.h"
#include "daemon/config/config.h"

namespace spanrelay::config {

// Whole numbers with units h, m, s, ms, largest unit first, each at most once,
// no spaces or signs: "250ms", "5s", "1m", "1h", "1m30s", "1h0m5s". A bare "0"
// is accepted as zero (as Go's time.ParseDuration does) so "max_elapsed: 0"
// reads naturally. Errors carry the reason only; the loader adds file:line.
Result<Duration> parse_duration(std::string_view text);

// A whole number of bytes, optionally followed (no space) by a unit: B, or
// binary KiB/MiB/GiB/TiB (1024-based), or decimal KB/MB/GB/TB (1000-based).
// Units are case-sensitive ("mb" would be millibits). Overflow is an error.
Result<std::uint64_t> parse_size(std::string_view text);

// Inverse of the parsers, for log lines and error messages: the shortest exact
// spelling that parse_duration / parse_size read back to the same value
// (90000ms -> "1m30s", 4194304 -> "4MiB", 1500 -> "1500B").
std::string format_duration(Duration duration);
std::string format_size(std::uint64_t bytes);

// `text` in double quotes with control characters and quotes escaped, cut at
// 64 bytes, for echoing user input into an error message safely.
std::string quoted(std::string_view text);

}  // namespace spanrelay::config
