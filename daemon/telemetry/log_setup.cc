#include "daemon/telemetry/log_setup.h"

#include <spdlog/spdlog.h>

#include <ctime>
#include <iterator>

namespace spanrelay::telemetry {

namespace {

// Local time with its offset: what an operator reading a terminal expects.
constexpr const char* kTextPattern = "%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v";

constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Length of the well-formed UTF-8 sequence starting at text[i] (Unicode
// table 3-7: no overlong forms, no surrogates, nothing past U+10FFFF), or 0.
std::size_t utf8_sequence_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[i + k]); };
  const unsigned char lead = byte(0);
  std::size_t length = 0;
  unsigned char second_min = 0x80, second_max = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) second_min = 0xA0;  // overlong
    if (lead == 0xED) second_max = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) second_min = 0x90;  // overlong
    if (lead == 0xF4) second_max = 0x8F;  // past U+10FFFF
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  if (byte(1) < second_min || byte(1) > second_max) return 0;
  for (std::size_t k = 2; k < length; ++k) {
    if (!is_continuation(byte(k))) return 0;
  }
  return length;
}

std::string_view level_name(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "critical";
    default:
      return "off";
  }
}

void append(spdlog::memory_buf_t& dest, std::string_view text) {
  dest.append(text.data(), text.data() + text.size());
}

}  // namespace

Result<LogFormat> parse_log_format(std::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return Error{"log format must be text or json, got '" + std::string(name) + "'"};
}

Result<spdlog::level::level_enum> parse_log_level(std::string_view name) {
  using spdlog::level::level_enum;
  if (name == "trace") return level_enum::trace;
  if (name == "debug") return level_enum::debug;
  if (name == "info") return level_enum::info;
  if (name == "warn" || name == "warning") return level_enum::warn;
  if (name == "error" || name == "err") return level_enum::err;
  if (name == "critical") return level_enum::critical;
  if (name == "off") return level_enum::off;
  return Error{"log level must be trace, debug, info, warn, error, critical or off, got '" +
               std::string(name) + "'"};
}

Status setup_logging(std::string_view level, std::string_view format) {
  auto parsed_level = parse_log_level(level);
  if (!parsed_level.ok()) return parsed_level.error();
  auto parsed_format = parse_log_format(format);
  if (!parsed_format.ok()) return parsed_format.error();
  spdlog::set_level(parsed_level.value());
  if (parsed_format.value() == LogFormat::kJson) {
    spdlog::set_formatter(std::make_unique<JsonLogFormatter>());
  } else {
    spdlog::set_pattern(kTextPattern);
  }
  return Ok{};
}

void append_json_escaped(std::string_view text, std::string& out) {
  constexpr char kHex[] = "0123456789abcdef";
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const std::size_t length = utf8_sequence_length(text, i);
      if (length == 0) {
        out += kReplacementCharacter;
        ++i;
      } else {
        out.append(text.substr(i, length));
        i += length;
      }
      continue;
    }
    ++i;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {  // RFC 8259 section 7: control characters must be escaped
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
}

void JsonLogFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  using namespace std::chrono;
  const auto since_epoch = msg.time.time_since_epoch();
  const auto seconds = duration_cast<std::chrono::seconds>(since_epoch);
  const auto micros = duration_cast<microseconds>(since_epoch - seconds).count();
  const std::time_t t = seconds.count();
  std::tm utc{};
  ::gmtime_r(&t, &utc);
  fmt::format_to(std::back_inserter(dest),
                 "{{\"ts\":\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z\"", utc.tm_year + 1900,
                 utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, micros);
  append(dest, ",\"level\":\"");
  append(dest, level_name(msg.level));
  std::string escaped;
  if (msg.logger_name.size() > 0) {
    append(dest, "\",\"logger\":\"");
    append_json_escaped(std::string_view(msg.logger_name.data(), msg.logger_name.size()), escaped);
    append(dest, escaped);
    escaped.clear();
  }
  append(dest, "\",\"msg\":\"");
  append_json_escaped(std::string_view(msg.payload.data(), msg.payload.size()), escaped);
  append(dest, escaped);
  append(dest, "\"}\n");
}

std::unique_ptr<spdlog::formatter> JsonLogFormatter::clone() const {
  return std::make_unique<JsonLogFormatter>();
}

RateLimitedLog::RateLimitedLog(Clock::duration interval, std::size_t max_keys)
    : interval_(interval), max_keys_(max_keys == 0 ? 1 : max_keys) {}

std::optional<std::uint64_t> RateLimitedLog::allow(std::string_view key, Clock::time_point now) {
  // Not a key a caller could pass by accident.
  static const std::string kOverflowKey("\0overflow", 9);
  std::lock_guard lock(mutex_);
  auto it = keys_.find(std::string(key));
  if (it == keys_.end()) {
    if (keys_.size() >= max_keys_) {
      // Forget keys that are quiet and owe no count; if none, share one key.
      std::erase_if(keys_, [&](const auto& entry) {
        return entry.second.suppressed == 0 && now - entry.second.last_logged >= interval_;
      });
    }
    const std::string& slot = keys_.size() < max_keys_ ? std::string(key) : kOverflowKey;
    auto [inserted, fresh] = keys_.try_emplace(slot, KeyState{now, 0});
    if (fresh) return 0;
    it = inserted;
  }
  KeyState& state = it->second;
  if (now - state.last_logged < interval_) {
    ++state.suppressed;
    return std::nullopt;
  }
  const std::uint64_t suppressed = state.suppressed;
  state.last_logged = now;
  state.suppressed = 0;
  return suppressed;
}

}  // namespace spanrelay::telemetry
