#include "daemon/telemetry/process_metrics.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

using spanrelay::telemetry::count_open_fds;
using spanrelay::telemetry::parse_boot_time;
using spanrelay::telemetry::parse_proc_stat;
using spanrelay::telemetry::register_process_metrics;
using spanrelay::telemetry::Registry;

namespace {

// A /proc/<pid>/stat line (52 fields) whose command name holds a space and
// a ')' as a process may name itself. utime=250 stime=150 starttime=12345
// vsize=104857600 rss=2560.
constexpr const char* kStatLine =
    "4242 (span relay) d) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 150 0 0 20 0 9 0 12345 "
    "104857600 2560 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 "
    "0 0\n";

std::string text_of(const Registry& registry) { return registry.render(); }

}  // namespace

TEST_CASE("process_metrics: parse_proc_stat counts fields after the last ')' of the name") {
  const auto stat = parse_proc_stat(kStatLine, 100, 4096);
  REQUIRE(stat.ok());
  CHECK(stat.value().cpu_seconds == doctest::Approx(4.0));  // (250 + 150) / 100
  CHECK(stat.value().start_seconds_after_boot == doctest::Approx(123.45));
  CHECK(stat.value().virtual_memory_bytes == 104857600.0);
  CHECK(stat.value().resident_memory_bytes == 2560.0 * 4096);
}

TEST_CASE("process_metrics: parse_proc_stat rejects truncated or garbled lines") {
  CHECK_FALSE(parse_proc_stat("4242 (spanrelay) S 1 4242", 100, 4096).ok());
  CHECK_FALSE(parse_proc_stat("no parentheses at all", 100, 4096).ok());
  std::string garbled = kStatLine;
  garbled.replace(garbled.find(" 250 "), 5, " x50 ");
  const auto result = parse_proc_stat(garbled, 100, 4096);
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().message.find("utime") != std::string::npos);
  CHECK_FALSE(parse_proc_stat(kStatLine, 0, 4096).ok());
}

TEST_CASE("process_metrics: parse_boot_time reads the btime line of /proc/stat") {
  const auto boot = parse_boot_time("cpu  1 2 3\nintr 5\nctxt 77\nbtime 1700000000\nprocesses 9\n");
  REQUIRE(boot.ok());
  CHECK(boot.value() == 1700000000.0);
  CHECK_FALSE(parse_boot_time("cpu 1 2 3\nctxt 77\n").ok());
  CHECK_FALSE(parse_boot_time("btime soon\n").ok());
}

TEST_CASE("process_metrics: count_open_fds counts a directory's entries") {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("process_metrics_test." + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  // Not numbers: a name equal to the listing's own descriptor would be skipped.
  for (const char* name : {"stdin", "log", "socket"}) std::ofstream(dir / name) << "x";
  const auto counted = count_open_fds(dir.string());
  std::filesystem::remove_all(dir);
  REQUIRE(counted.ok());
  CHECK(counted.value() == 3);
  CHECK_FALSE(count_open_fds(dir.string()).ok());  // gone now
}

TEST_CASE("process_metrics: count_open_fds sees a descriptor this process opens") {
  const auto before = count_open_fds();
  REQUIRE(before.ok());
  const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  const auto during = count_open_fds();
  ::close(fd);
  REQUIRE(during.ok());
  CHECK(during.value() == before.value() + 1);
}

TEST_CASE("process_metrics: registered series render with client-library names and types") {
  Registry registry;
  REQUIRE(register_process_metrics(registry).ok());
  const std::string text = text_of(registry);
  CHECK(text.find("# TYPE process_cpu_seconds_total counter\n") != std::string::npos);
  for (const char* gauge : {"process_resident_memory_bytes", "process_virtual_memory_bytes",
                            "process_open_fds", "process_max_fds", "process_start_time_seconds"}) {
    CAPTURE(gauge);
    CHECK(text.find(std::string("# TYPE ") + gauge + " gauge\n") != std::string::npos);
  }
  CHECK(text.find("# HELP process_cpu_seconds_total Total user and system CPU time spent in "
                  "seconds.\n") != std::string::npos);

  CHECK(registry.value("process_resident_memory_bytes") > 0);
  CHECK(registry.value("process_virtual_memory_bytes") >=
        registry.value("process_resident_memory_bytes"));
  CHECK(registry.value("process_open_fds") >= 1);
  CHECK(registry.value("process_max_fds") >= registry.value("process_open_fds"));
  CHECK(registry.value("process_cpu_seconds_total") >= 0);
  // Started after 2020 and not in the future.
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  CHECK(registry.value("process_start_time_seconds") > 1577836800.0);
  CHECK(registry.value("process_start_time_seconds") <= now + 1);
}

TEST_CASE("process_metrics: the CPU counter never decreases between scrapes") {
  Registry registry;
  REQUIRE(register_process_metrics(registry).ok());
  const double first = registry.value("process_cpu_seconds_total");
  const std::string rendered = registry.render();  // some work between the two readings
  CHECK_FALSE(rendered.empty());
  CHECK(registry.value("process_cpu_seconds_total") >= first);
}

TEST_CASE("process_metrics: callback_counter renders as a counter and refuses a plain one") {
  Registry registry;
  double total = 1.5;
  registry.callback_counter("spanrelay_test_callback_total", "A test counter.",
                            [&total] { return total; }, {{"k", "v"}});
  total = 2.5;
  const std::string text = registry.render();
  CHECK(text.find("# TYPE spanrelay_test_callback_total counter\n") != std::string::npos);
  CHECK(text.find("spanrelay_test_callback_total{k=\"v\"} 2.5\n") != std::string::npos);
  CHECK(registry.value("spanrelay_test_callback_total", {{"k", "v"}}) == 2.5);
  registry.counter("spanrelay_test_plain_total", "Plain.").add(3);
  CHECK_THROWS_AS(
      registry.callback_counter("spanrelay_test_plain_total", "Plain.", [] { return 1.0; }),
      std::logic_error);
  registry.gauge("spanrelay_test_gauge", "G.").set(1);
  CHECK_THROWS_AS(registry.callback_counter("spanrelay_test_gauge", "G.", [] { return 1.0; }),
                  std::logic_error);
}
