#include "daemon/config/units.h"

#include <array>
#include <limits>

namespace spanrelay::config {
namespace {

constexpr std::uint64_t kMaxDurationMs =
    static_cast<std::uint64_t>(std::numeric_limits<Duration::rep>::max());

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Reads the run of digits at text[*pos], advancing *pos. Returns false when
// there are none. Sets *overflow instead of wrapping when the number does not
// fit in 64 bits, so the caller can say "too large" rather than "invalid".
bool read_whole_number(std::string_view text, std::size_t* pos, std::uint64_t* number,
                       bool* overflow) {
  const std::size_t start = *pos;
  *number = 0;
  *overflow = false;
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  while (*pos < text.size() && is_digit(text[*pos])) {
    const auto digit = static_cast<std::uint64_t>(text[*pos] - '0');
    if (*number > (kMax - digit) / 10) {
      *overflow = true;
    } else {
      *number = *number * 10 + digit;
    }
    ++*pos;
  }
  return *pos > start;
}

struct DurationUnit {
  std::string_view suffix;
  std::uint64_t milliseconds;
};
// Largest first: a duration lists its parts in this order, each at most once.
constexpr std::array<DurationUnit, 4> kDurationUnits{{
    {"h", 3'600'000},
    {"m", 60'000},
    {"s", 1'000},
    {"ms", 1},
}};

struct SizeUnit {
  std::string_view suffix;
  std::uint64_t bytes;
};
constexpr std::array<SizeUnit, 9> kSizeUnits{{
    {"B", 1},
    {"KiB", 1ull << 10},
    {"MiB", 1ull << 20},
    {"GiB", 1ull << 30},
    {"TiB", 1ull << 40},
    {"KB", 1'000},
    {"MB", 1'000'000},
    {"GB", 1'000'000'000},
    {"TB", 1'000'000'000'000},
}};

}  // namespace

Result<Duration> parse_duration(std::string_view text) {
  const auto invalid = [&] {
    return Error{
        "expected a duration made of whole numbers with units h, m, s or ms (largest first), "
        "such as 250ms, 5s or 1m30s; got " +
        quoted(text)};
  };
  if (text == "0") return Duration::zero();
  if (text.empty()) return invalid();

  std::uint64_t total_ms = 0;
  std::size_t next_unit = 0;  // index into kDurationUnits: units must strictly descend
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::uint64_t number = 0;
    bool overflow = false;
    if (!read_whole_number(text, &pos, &number, &overflow)) return invalid();
    // "m" is a prefix of "ms": take the longest unit that matches.
    std::size_t unit = kDurationUnits.size();
    for (std::size_t u = 0; u < kDurationUnits.size(); ++u) {
      const auto suffix = kDurationUnits[u].suffix;
      if (text.substr(pos, suffix.size()) == suffix &&
          (unit == kDurationUnits.size() || suffix.size() > kDurationUnits[unit].suffix.size())) {
        unit = u;
      }
    }
    if (unit == kDurationUnits.size() || unit < next_unit) return invalid();
    pos += kDurationUnits[unit].suffix.size();
    next_unit = unit + 1;

    const std::uint64_t unit_ms = kDurationUnits[unit].milliseconds;
    if (overflow || number > kMaxDurationMs / unit_ms ||
        number * unit_ms > kMaxDurationMs - total_ms) {
      return Error{"duration " + quoted(text) + " is too large"};
    }
    total_ms += number * unit_ms;
  }
  return Duration(static_cast<Duration::rep>(total_ms));
}

Result<std::uint64_t> parse_size(std::string_view text) {
  const auto invalid = [&] {
    return Error{
        "expected a size: a whole number of bytes, optionally with a unit B, KiB, MiB, GiB, TiB "
        "(1024-based) or KB, MB, GB, TB (1000-based), such as 512KiB or 4MiB; got " +
        quoted(text)};
  };
  std::size_t pos = 0;
  std::uint64_t number = 0;
  bool overflow = false;
  if (!read_whole_number(text, &pos, &number, &overflow)) return invalid();
  const std::string_view suffix = text.substr(pos);
  std::uint64_t multiplier = suffix.empty() ? 1 : 0;
  for (const auto& unit : kSizeUnits) {
    if (suffix == unit.suffix) multiplier = unit.bytes;
  }
  if (multiplier == 0) return invalid();
  if (overflow || number > std::numeric_limits<std::uint64_t>::max() / multiplier) {
    return Error{"size " + quoted(text) + " is too large"};
  }
  return number * multiplier;
}

std::string format_duration(Duration duration) {
  if (duration.count() == 0) return "0s";
  std::string text;
  auto remaining = duration.count();
  if (remaining < 0) {
    // Never produced by parse_duration, but a log line must not lie about it.
    text = "-";
    remaining = -remaining;
  }
  for (const auto& unit : kDurationUnits) {
    const auto unit_ms = static_cast<Duration::rep>(unit.milliseconds);
    if (remaining >= unit_ms) {
      text += std::to_string(remaining / unit_ms);
      text += unit.suffix;
      remaining %= unit_ms;
    }
  }
  return text;
}

std::string format_size(std::uint64_t bytes) {
  if (bytes == 0) return "0B";
  // The shortest exact spelling; on a tie the unit listed first in
  // kSizeUnits wins (binary before decimal, as the defaults are written).
  std::string best = std::to_string(bytes) + "B";
  for (const auto& unit : kSizeUnits) {
    if (bytes % unit.bytes != 0) continue;
    std::string candidate = std::to_string(bytes / unit.bytes) + std::string(unit.suffix);
    if (candidate.size() < best.size()) best = std::move(candidate);
  }
  return best;
}

std::string quoted(std::string_view text) {
  constexpr std::size_t kMaxShown = 64;
  bool cut = false;
  if (text.size() > kMaxShown) {
    std::size_t end = kMaxShown;
    // Do not split a UTF-8 sequence: back up over continuation bytes.
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    text = text.substr(0, end);
    cut = true;
  }
  std::string out = "\"";
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
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
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (byte < 0x20 || byte == 0x7F) {
          constexpr std::string_view kHex = "0123456789abcdef";
          out += "\\x";
          out += kHex[byte >> 4];
          out += kHex[byte & 0xF];
        } else {
          out += c;
        }
    }
  }
  if (cut) out += "...";
  out += '"';
  return out;
}

}  // namespace spanrelay::config
