#pragma once
// The daemon's log output: level and format (human text, or one JSON object
// per line for log collectors), and a limiter that keeps one repeated error
// (an upstream down, a client sending garbage in a loop) from flooding the log
// while still saying how many lines it held back.
#include <spdlog/formatter.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "daemon/common/result.h"

namespace spanrelay::telemetry {

enum class LogFormat { kText, kJson };

// "text" or "json".
Result<LogFormat> parse_log_format(std::string_view name);

// trace|debug|info|warn|warning|error|err|critical|off.
Result<spdlog::level::level_enum> parse_log_level(std::string_view name);

// Sets the level and format of the default logger (its sinks are kept).
// text: "2024-05-01T12:00:00.123+0000 info message"; json: one object per
// line, {"ts":"2024-05-01T12:00:00.123456Z","level":"info","msg":"..."}.
Status setup_logging(std::string_view level, std::string_view format);

// One JSON object per line: ts (RFC 3339, UTC, microseconds), level, msg,
// plus logger when the logger has a name. Strings are escaped per RFC 8259;
// bytes that are not valid UTF-8 become U+FFFD so the line always parses.
class JsonLogFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;
};

// Appends `text` to `out` as the inside of a JSON string (no quotes).
void append_json_escaped(std::string_view text, std::string& out);

// At most one log line per key per interval, and the count of the lines held
// back since the last one:
//
//   if (auto suppressed = limiter.allow("export_failed"))
//     spdlog::warn("export failed: {} ({} similar messages suppressed)", why, *suppressed);
//
// Keys name a kind of message (a fixed string, or one per endpoint), not its
// text. Thread-safe. At most `max_keys` keys are remembered: past that, new
// keys share one overflow key, so a key per message cannot grow memory.
class RateLimitedLog {
 public:
  using Clock = std::chrono::steady_clock;

  explicit RateLimitedLog(Clock::duration interval = std::chrono::seconds(10),
                          std::size_t max_keys = 256);

  // nullopt: do not log this one (it is counted). Otherwise: log it, with the
  // number suppressed since the key last logged (0 the first time).
  std::optional<std::uint64_t> allow(std::string_view key, Clock::time_point now = Clock::now());

 private:
  struct KeyState {
    Clock::time_point last_logged;
    std::uint64_t suppressed = 0;
  };

  const Clock::duration interval_;
  const std::size_t max_keys_;
  std::mutex mutex_;
  std::unordered_map<std::string, KeyState> keys_;
};

}  // namespace spanrelay::telemetry
