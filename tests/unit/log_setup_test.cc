#include "daemon/telemetry/log_setup.h"

#include <doctest/doctest.h>
#include <simdjson.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using spanrelay::telemetry::append_json_escaped;
using spanrelay::telemetry::JsonLogFormatter;
using spanrelay::telemetry::LogFormat;
using spanrelay::telemetry::parse_log_format;
using spanrelay::telemetry::parse_log_level;
using spanrelay::telemetry::RateLimitedLog;
using spanrelay::telemetry::setup_logging;
using namespace std::chrono_literals;

namespace {

struct LogLine {
  std::string ts, level, msg, logger;
  bool has_logger = false;
};

// Parses one JSON log line strictly; fails the test when it is not valid JSON.
LogLine parse_line(const std::string& line) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  const auto error = parser.parse(line).get(doc);
  REQUIRE_MESSAGE(error == simdjson::SUCCESS, "not JSON: " << line);
  LogLine out;
  std::string_view value;
  REQUIRE(doc["ts"].get(value) == simdjson::SUCCESS);
  out.ts = value;
  REQUIRE(doc["level"].get(value) == simdjson::SUCCESS);
  out.level = value;
  REQUIRE(doc["msg"].get(value) == simdjson::SUCCESS);
  out.msg = value;
  if (doc["logger"].get(value) == simdjson::SUCCESS) {
    out.logger = value;
    out.has_logger = true;
  }
  return out;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

// A logger writing into a string, with the JSON formatter.
struct CapturedLogger {
  std::ostringstream out;
  std::shared_ptr<spdlog::logger> logger;
  explicit CapturedLogger(const std::string& name) {
    logger = std::make_shared<spdlog::logger>(
        name, std::make_shared<spdlog::sinks::ostream_sink_st>(out));
    logger->set_formatter(std::make_unique<JsonLogFormatter>());
    logger->set_level(spdlog::level::trace);
  }
};

std::string escaped(std::string_view text) {
  std::string out;
  append_json_escaped(text, out);
  return out;
}

}  // namespace

TEST_CASE("log_setup: parse_log_format and parse_log_level accept the documented names") {
  REQUIRE(parse_log_format("text").ok());
  CHECK(parse_log_format("text").value() == LogFormat::kText);
  CHECK(parse_log_format("json").value() == LogFormat::kJson);
  REQUIRE_FALSE(parse_log_format("JSON ").ok());
  CHECK(parse_log_format("logfmt").error().message.find("logfmt") != std::string::npos);

  CHECK(parse_log_level("trace").value() == spdlog::level::trace);
  CHECK(parse_log_level("warn").value() == spdlog::level::warn);
  CHECK(parse_log_level("warning").value() == spdlog::level::warn);
  CHECK(parse_log_level("error").value() == spdlog::level::err);
  CHECK(parse_log_level("off").value() == spdlog::level::off);
  CHECK_FALSE(parse_log_level("verbose").ok());
  CHECK_FALSE(setup_logging("verbose", "text").ok());
  CHECK_FALSE(setup_logging("info", "xml").ok());
}

TEST_CASE("log_setup: JSON lines carry ts, level and msg and survive hostile text") {
  CapturedLogger captured("");
  const std::string hostile =
      "quote \" backslash \\ newline \n tab \t cr \r bell \x07 nul-free \x1f end";
  captured.logger->info("plain message");
  captured.logger->warn("{}", hostile);
  captured.logger->error("utf8 ok: \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  captured.logger->critical("bad utf8: \xFF \xC0\xAF \xED\xA0\x80 \xE2\x82 tail");
  const auto lines = lines_of(captured.out.str());
  REQUIRE(lines.size() == 4);

  const auto plain = parse_line(lines[0]);
  CHECK(plain.level == "info");
  CHECK(plain.msg == "plain message");
  CHECK_FALSE(plain.has_logger);  // the default logger has no name
  // 2024-05-01T12:00:00.123456Z
  REQUIRE(plain.ts.size() == 27);
  CHECK(plain.ts[4] == '-');
  CHECK(plain.ts[10] == 'T');
  CHECK(plain.ts[19] == '.');
  CHECK(plain.ts.back() == 'Z');

  const auto warn = parse_line(lines[1]);
  CHECK(warn.level == "warn");
  CHECK(warn.msg == hostile);  // escaped on the way out, identical once parsed

  const auto utf8 = parse_line(lines[2]);
  CHECK(utf8.level == "error");
  CHECK(utf8.msg == "utf8 ok: \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");

  const auto bad = parse_line(lines[3]);
  CHECK(bad.level == "critical");
  // Each invalid byte becomes U+FFFD; the valid tail is kept.
  CHECK(bad.msg.find("\xEF\xBF\xBD") != std::string::npos);
  CHECK(bad.msg.find("\xFF") == std::string::npos);
  CHECK(bad.msg.substr(bad.msg.size() - 5) == " tail");
}

TEST_CASE("log_setup: a named logger adds its name") {
  CapturedLogger captured("exporter \"a\"");
  captured.logger->info("x");
  const auto line = parse_line(lines_of(captured.out.str()).at(0));
  CHECK(line.has_logger);
  CHECK(line.logger == "exporter \"a\"");
}

TEST_CASE("log_setup: append_json_escaped escapes exactly what RFC 8259 requires") {
  CHECK(escaped("abc") == "abc");
  CHECK(escaped("a\"b") == "a\\\"b");
  CHECK(escaped("a\\b") == "a\\\\b");
  CHECK(escaped("\n\r\t") == "\\n\\r\\t");
  CHECK(escaped(std::string_view("\x00\x01\x1f", 3)) == "\\u0000\\u0001\\u001f");
  CHECK(escaped("/ and \x7f") == "/ and \x7f");
  CHECK(escaped("\xE2\x82\xAC") == "\xE2\x82\xAC");
  CHECK(escaped("\xE2\x82") == "\xEF\xBF\xBD\xEF\xBF\xBD");              // truncated sequence
  CHECK(escaped("\xC0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD");              // overlong NUL
  CHECK(escaped("\xF4\x90\x80\x80").find("\xF4") == std::string::npos);  // past U+10FFFF
}

TEST_CASE("log_setup: setup_logging switches the default logger's level and format") {
  std::ostringstream out;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(
      std::make_shared<spdlog::logger>("", std::make_shared<spdlog::sinks::ostream_sink_st>(out)));
  REQUIRE(setup_logging("warn", "json").ok());
  spdlog::info("filtered out");
  spdlog::warn("kept {}", 1);
  REQUIRE(setup_logging("info", "text").ok());
  spdlog::info("as text");
  spdlog::set_default_logger(previous);

  const auto lines = lines_of(out.str());
  REQUIRE(lines.size() == 2);
  const auto kept = parse_line(lines[0]);
  CHECK(kept.level == "warn");
  CHECK(kept.msg == "kept 1");
  CHECK(lines[1].find(" info as text") != std::string::npos);
  CHECK(lines[1].front() != '{');
}

TEST_CASE("log_setup: RateLimitedLog lets one line per key per interval through") {
  RateLimitedLog limiter(10s);
  const RateLimitedLog::Clock::time_point t0{};
  const auto first = limiter.allow("export_failed", t0);
  REQUIRE(first.has_value());
  CHECK(*first == 0);
  CHECK_FALSE(limiter.allow("export_failed", t0 + 1s).has_value());
  CHECK_FALSE(limiter.allow("export_failed", t0 + 5s).has_value());
  CHECK_FALSE(limiter.allow("export_failed", t0 + 9999ms).has_value());
  // Another key is limited on its own.
  CHECK(limiter.allow("decode_error", t0 + 2s) == std::optional<std::uint64_t>(0));

  const auto after = limiter.allow("export_failed", t0 + 10s);
  REQUIRE(after.has_value());
  CHECK(*after == 3);  // the three held back
  // The interval restarts from the line just allowed.
  CHECK_FALSE(limiter.allow("export_failed", t0 + 15s).has_value());
  CHECK(limiter.allow("export_failed", t0 + 20s) == std::optional<std::uint64_t>(1));
  // A quiet key logs at once, reporting nothing suppressed.
  CHECK(limiter.allow("export_failed", t0 + 1h) == std::optional<std::uint64_t>(0));
}

TEST_CASE("log_setup: RateLimitedLog bounds its keys with a shared overflow key") {
  RateLimitedLog limiter(10s, 2);
  const RateLimitedLog::Clock::time_point t0{};
  CHECK(limiter.allow("a", t0).has_value());
  CHECK(limiter.allow("b", t0).has_value());
  // Full: new keys share the overflow key, rate-limited together.
  CHECK(limiter.allow("c", t0 + 1s) == std::optional<std::uint64_t>(0));
  CHECK_FALSE(limiter.allow("d", t0 + 2s).has_value());
  CHECK_FALSE(limiter.allow("e", t0 + 3s).has_value());
  // Once "a" and "b" are quiet and owe no count, they make room again.
  CHECK(limiter.allow("f", t0 + 20s) == std::optional<std::uint64_t>(0));
  CHECK_FALSE(limiter.allow("f", t0 + 21s).has_value());
}

TEST_CASE("log_setup: RateLimitedLog from many threads allows one and counts the rest") {
  RateLimitedLog limiter(10s);
  const RateLimitedLog::Clock::time_point t0{};
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        if (limiter.allow("same", t0 + 1ms)) allowed.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(allowed.load() == 1);
  CHECK(limiter.allow("same", t0 + 11s) == std::optional<std::uint64_t>(7999));
}
