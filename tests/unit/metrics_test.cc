#include "daemon/telemetry/metrics.h"

#include <doctest/doctest.h>

#include <thread>
#include <vector>

using spanrelay::telemetry::Registry;

TEST_CASE("counters from many threads sum exactly on scrape") {
  Registry registry;
  auto& c = registry.counter("spanrelay_test_total", "test", {{"reason", "x"}});
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) c.add();
    });
  }
  for (auto& t : threads) t.join();
  CHECK(c.value() == 80000);
  CHECK(registry.value("spanrelay_test_total", {{"reason", "x"}}) == 80000);
  CHECK(registry.render().find("spanrelay_test_total{reason=\"x\"} 80000\n") != std::string::npos);
}

TEST_CASE("same name and labels return the same counter") {
  Registry registry;
  auto& a = registry.counter("spanrelay_a_total", "a", {{"k", "v"}});
  auto& b = registry.counter("spanrelay_a_total", "a", {{"k", "v"}});
  auto& other = registry.counter("spanrelay_a_total", "a", {{"k", "w"}});
  CHECK(&a == &b);
  CHECK(&a != &other);
}

TEST_CASE("histogram renders cumulative buckets, sum and count") {
  Registry registry;
  auto& h = registry.histogram("spanrelay_h_seconds", "h", {0.1, 1.0});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  const auto text = registry.render();
  CHECK(text.find("# TYPE spanrelay_h_seconds histogram") != std::string::npos);
  CHECK(text.find("spanrelay_h_seconds_bucket{le=\"0.1\"} 1") != std::string::npos);
  CHECK(text.find("spanrelay_h_seconds_bucket{le=\"+Inf\"} 3") != std::string::npos);
  CHECK(text.find("spanrelay_h_seconds_count 3") != std::string::npos);
}
