#include "daemon/config/units.h"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

using spanrelay::config::Duration;
using spanrelay::config::format_duration;
using spanrelay::config::format_size;
using spanrelay::config::parse_duration;
using spanrelay::config::parse_size;
using spanrelay::config::quoted;

namespace {

struct DurationCase {
  std::string_view text;
  std::int64_t milliseconds;
};

struct SizeCase {
  std::string_view text;
  std::uint64_t bytes;
};

}  // namespace

TEST_CASE("config units: parse_duration accepts whole numbers with h, m, s, ms") {
  const std::vector<DurationCase> cases = {
      {"0", 0},
      {"0s", 0},
      {"0ms", 0},
      {"250ms", 250},
      {"5s", 5'000},
      {"1m", 60'000},
      {"1h", 3'600'000},
      {"1m30s", 90'000},
      {"90s", 90'000},
      {"1s500ms", 1'500},
      {"2h45m", 9'900'000},
      {"1h0m5s", 3'605'000},
      {"1h2m3s4ms", 3'723'004},
      {"007s", 7'000},
      {"9223372036854775807ms", 9'223'372'036'854'775'807},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    const auto parsed = parse_duration(c.text);
    REQUIRE(parsed.ok());
    CHECK(parsed.value().count() == c.milliseconds);
  }
}

TEST_CASE("config units: parse_duration rejects anything else with a message naming the input") {
  const std::vector<std::string_view> invalid = {
      "",
      " 5s",
      "5s ",
      "5",
      "5 s",
      "5S",
      "1.5s",
      "-5s",
      "+5s",
      "30s1m",
      "1h1h",
      "1ms1s",
      "5sec",
      "s",
      "ms",
      "1d",
      "1us",
      "1ns",
      "0x10s",
      "5s,",
      "1m30",
      "∞",
      "\xEF\xBC\x91s" /* fullwidth 1 */,
  };
  for (const auto text : invalid) {
    CAPTURE(text);
    const auto parsed = parse_duration(text);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error().message.find("expected a duration") != std::string::npos);
    CHECK(parsed.error().message.find(quoted(text)) != std::string::npos);
  }
}

TEST_CASE("config units: parse_duration reports overflow as too large, not as a wrapped value") {
  for (const std::string_view text :
       {"9223372036854775808ms", "99999999999999999999s", "9999999999999999h"}) {
    CAPTURE(text);
    const auto parsed = parse_duration(text);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error().message == "duration " + quoted(text) + " is too large");
  }
  const auto sum_overflow = parse_duration("2562047788015h59m");
  REQUIRE_FALSE(sum_overflow.ok());
  CHECK(sum_overflow.error().message.find("too large") != std::string::npos);
}

TEST_CASE("config units: parse_size accepts bytes and binary or decimal units") {
  const std::vector<SizeCase> cases = {
      {"0", 0},
      {"1024", 1024},
      {"100B", 100},
      {"512KiB", 512ull << 10},
      {"4MiB", 4ull << 20},
      {"1GiB", 1ull << 30},
      {"1TiB", 1ull << 40},
      {"1KB", 1'000},
      {"4MB", 4'000'000},
      {"2GB", 2'000'000'000},
      {"1TB", 1'000'000'000'000},
      {"18446744073709551615", 18'446'744'073'709'551'615ull},
      {"16777215TiB", 16777215ull << 40},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    const auto parsed = parse_size(c.text);
    REQUIRE(parsed.ok());
    CHECK(parsed.value() == c.bytes);
  }
}

TEST_CASE("config units: parse_size rejects spaces, wrong case and unknown units") {
  const std::vector<std::string_view> invalid = {
      "",   "4 MiB", "4mib",  "4mb",   "4M",    "4Mi", "4k",   "1.5MiB", "-1",
      "+1", "MiB",   "4MiBs", " 4MiB", "4MiB ", "4iB", "0x10", "4KIB",   "1e6",
  };
  for (const auto text : invalid) {
    CAPTURE(text);
    const auto parsed = parse_size(text);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error().message.find("expected a size") != std::string::npos);
    CHECK(parsed.error().message.find(quoted(text)) != std::string::npos);
  }
}

TEST_CASE("config units: parse_size reports overflow as too large") {
  for (const std::string_view text :
       {"99999999999999GiB", "18446744073709551616", "16777216TiB", "99999999999999999999999"}) {
    CAPTURE(text);
    const auto parsed = parse_size(text);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error().message == "size " + quoted(text) + " is too large");
  }
}

TEST_CASE("config units: format_duration writes the shortest form parse_duration reads back") {
  CHECK(format_duration(Duration(0)) == "0s");
  CHECK(format_duration(Duration(250)) == "250ms");
  CHECK(format_duration(std::chrono::seconds(5)) == "5s");
  CHECK(format_duration(Duration(90'000)) == "1m30s");
  CHECK(format_duration(Duration(1'500)) == "1s500ms");
  CHECK(format_duration(std::chrono::hours(2)) == "2h");
  CHECK(format_duration(Duration(3'605'000)) == "1h5s");
  for (const std::int64_t ms : {0LL, 1LL, 999LL, 1'000LL, 61'001LL, 86'400'000LL, 3'723'004LL,
                                9'223'372'036'854'775'807LL}) {
    CAPTURE(ms);
    const auto parsed = parse_duration(format_duration(Duration(ms)));
    REQUIRE(parsed.ok());
    CHECK(parsed.value().count() == ms);
  }
}

TEST_CASE("config units: format_size writes the shortest exact form and round-trips") {
  CHECK(format_size(0) == "0B");
  CHECK(format_size(1500) == "1500B");
  CHECK(format_size(1000) == "1KB");
  CHECK(format_size(1024) == "1KiB");
  CHECK(format_size(4ull << 20) == "4MiB");
  CHECK(format_size(64ull << 20) == "64MiB");
  CHECK(format_size(1024000) == "1024KB");
  CHECK(format_size(2'000'000'000) == "2GB");
  for (const std::uint64_t bytes : {0ull, 1ull, 1000ull, 1023ull, 1024ull, 1ull << 40, 3'000'000ull,
                                    18'446'744'073'709'551'615ull}) {
    CAPTURE(bytes);
    const auto parsed = parse_size(format_size(bytes));
    REQUIRE(parsed.ok());
    CHECK(parsed.value() == bytes);
  }
}

TEST_CASE("config units: quoted escapes control characters and cuts long input") {
  CHECK(quoted("lots") == "\"lots\"");
  CHECK(quoted("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(quoted("a\r\nb\tc") == "\"a\\r\\nb\\tc\"");
  CHECK(quoted(std::string_view("\x01\x7f", 2)) == "\"\\x01\\x7f\"");
  const std::string long_text(100, 'x');
  CHECK(quoted(long_text) == "\"" + std::string(64, 'x') + "...\"");
  // 63 ASCII bytes then a 2-byte UTF-8 sequence across the cut: it is dropped whole.
  const std::string utf8 = std::string(63, 'x') + "\xC3\xA9" + std::string(10, 'y');
  CHECK(quoted(utf8) == "\"" + std::string(63, 'x') + "...\"");
}
