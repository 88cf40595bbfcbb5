#include "daemon/delivery/load_balancer.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "daemon/delivery/hash_ring.h"
#include "daemon/delivery/member_resolver.h"
#include "daemon/delivery/spool_partitions.h"
#include "tests/unit/load_balancer_test_support.h"

using namespace spanrelay::delivery::lb_test;  // NOLINT(google-build-using-namespace)
using spanrelay::config::ExporterConfig;
using spanrelay::config::RoutingKey;
using spanrelay::delivery::HashRing;
using spanrelay::delivery::LoadBalancer;
using spanrelay::delivery::MemberResolver;
using spanrelay::delivery::MemoryBudget;
using spanrelay::delivery::StaticResolver;
using spanrelay::delivery::trace_id_key;
using spanrelay::telemetry::Registry;

namespace {

const std::vector<std::string> kThree{"a.example:4317", "b.example:4317", "c.example:4317"};

ExporterConfig lb_config(const std::vector<std::string>& endpoints) {
  ExporterConfig config;
  config.type = spanrelay::config::ExporterType::kOtlpGrpc;
  config.endpoints = endpoints;
  config.max_in_flight = 2;
  config.retry.initial_interval = 1ms;
  config.retry.max_interval = 5ms;
  config.retry.max_elapsed = 0ms;  // retry for ever: only ejection moves a batch
  config.ejection.consecutive_failures = 3;
  config.ejection.base_time = std::chrono::hours(1);
  config.ejection.max_time = std::chrono::hours(2);
  return config;
}

// A resolver the test drives by hand.
class ManualResolver final : public MemberResolver {
 public:
  explicit ManualResolver(std::vector<std::string> first) : first_(std::move(first)) {}
  void start(Listener listener) override {
    std::lock_guard lock(mutex_);
    listener_ = std::move(listener);
    listener_(first_);
  }
  void shutdown() override {
    std::lock_guard lock(mutex_);
    listener_ = nullptr;
  }
  std::string describe() const override { return "manual"; }
  void set(const std::vector<std::string>& members) {
    std::lock_guard lock(mutex_);
    if (listener_) listener_(members);
  }

 private:
  std::vector<std::string> first_;
  std::mutex mutex_;
  Listener listener_;
};

struct Fixture {
  Upstreams upstreams;
  MemoryBudget budget{64ull << 20};
  Registry metrics;
  std::unique_ptr<LoadBalancer> lb;
  ManualResolver* manual = nullptr;

  void start(const ExporterConfig& config, std::unique_ptr<MemberResolver> resolver = nullptr) {
    if (!resolver) {
      auto owned = std::make_unique<ManualResolver>(config.endpoints);
      manual = owned.get();
      resolver = std::move(owned);
    }
    lb = std::make_unique<LoadBalancer>(config, budget, metrics, std::move(resolver),
                                        LoadBalancer::Options{upstreams.factory()});
    const auto started = lb->start();
    REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message));
  }
  // Routes `batches` requests of `traces` traces each (ids from first_trace on).
  int send(std::uint64_t first_trace, int batches, int traces, int spans_per_trace = 4) {
    int spans = 0;
    for (int b = 0; b < batches; ++b) {
      auto batch = admitted_batch(make_traces(first_trace + static_cast<std::uint64_t>(b * traces),
                                              traces, spans_per_trace),
                                  budget, metrics);
      spans += static_cast<int>(batch.spans);
      lb->route(std::move(batch));
    }
    return spans;
  }
  double sent_total(const std::vector<std::string>& endpoints) const {
    double total = 0;
    for (const auto& e : endpoints) {
      total += metrics.value("spanrelay_exporter_sent_spans_total", {{"endpoint", e}});
    }
    return total;
  }
  // Every routed span was delivered and nothing is held any more.
  bool drained(int spans, const std::vector<std::string>& endpoints) const {
    return sent_total(endpoints) == spans && metrics.value("spanrelay_queue_spans") == 0 &&
           budget.used() == 0;
  }
};

// Trace n of a batch sent by Fixture::send has id id_bytes(16, first + n).
std::string owner_of(const HashRing& ring, std::uint64_t trace_seed) {
  spanrelay::otlp::TraceId id{};
  const std::string bytes = id_bytes(16, trace_seed);
  std::copy(bytes.begin(), bytes.end(), reinterpret_cast<char*>(id.data()));
  return ring.owner(trace_id_key(id));
}

}  // namespace

TEST_CASE("load_balancer: batches are split by trace id; each member gets whole traces it owns") {
  Fixture f;
  f.start(lb_config(kThree));
  const int spans = f.send(1, 20, 50);  // 1000 traces, spans of a trace under 3 resources
  REQUIRE(wait_until([&] { return f.drained(spans, kThree); }));
  const HashRing ring(kThree);
  const auto arrived = f.upstreams.trace_endpoints();
  REQUIRE(arrived.size() == 1000);
  std::map<std::string, int> per_member;
  for (std::uint64_t t = 1; t <= 1000; ++t) {
    const auto it = arrived.find(id_bytes(16, t));
    REQUIRE(it != arrived.end());
    CHECK(it->second.size() == 1);  // a trace never spans two members
    CHECK(*it->second.begin() == owner_of(ring, t));
    ++per_member[*it->second.begin()];
  }
  CHECK(per_member.size() == 3);
  for (const auto& [span, times] : f.upstreams.span_arrivals()) CHECK(times == 1);
  CHECK(f.metrics.value("spanrelay_lb_members") == 3);
  CHECK(f.metrics.value("spanrelay_lb_rebalances_total") == 0);
  f.lb->shutdown(std::chrono::steady_clock::now());
}

TEST_CASE("load_balancer: routing by service keeps each service on one member") {
  Fixture f;
  auto config = lb_config(kThree);
  config.routing_key = RoutingKey::kService;
  f.start(config);
  int spans = 0;
  for (int b = 0; b < 30; ++b) spans += f.send(100000 + b * 1000, 1, 10);
  REQUIRE(wait_until([&] { return f.drained(spans, kThree); }));
  std::map<std::string, int> members_of_service;
  for (const auto& endpoint : kThree) {
    for (const auto& service : f.upstreams.services_at(endpoint)) ++members_of_service[service];
  }
  CHECK(members_of_service.size() == 90);  // 30 batches x 3 services
  for (const auto& [service, members] : members_of_service) CHECK(members == 1);
}

TEST_CASE("load_balancer: a failing member is ejected and its batches go to the new owners") {
  Fixture f;
  f.upstreams.set_down("b.example:4317", true);
  f.start(lb_config(kThree));
  const int spans = f.send(1, 30, 40);
  // Nothing is lost, and nothing waits for b: its keys moved.
  REQUIRE(wait_until([&] { return f.drained(spans, {"a.example:4317", "c.example:4317"}); }));
  CHECK(f.lb->ring_members() == std::vector<std::string>{"a.example:4317", "c.example:4317"});
  CHECK(f.metrics.value("spanrelay_lb_ejections_total", {{"endpoint", "b.example:4317"}}) == 1);
  CHECK(f.metrics.value("spanrelay_lb_member_in_ring", {{"endpoint", "b.example:4317"}}) == 0);
  CHECK(f.metrics.value("spanrelay_lb_members") == 2);
  CHECK(f.metrics.value("spanrelay_lb_rebalances_total") == 1);
  CHECK(f.metrics.value("spanrelay_lb_rerouted_spans_total") > 0);
  CHECK(f.metrics.value("spanrelay_exporter_failed_requests_total",
                        {{"endpoint", "b.example:4317"}, {"code", "UNAVAILABLE"}}) >= 3);

  // Only b's keys moved: traces a or c owned on the full ring are still there.
  const HashRing three(kThree);
  const HashRing two({"a.example:4317", "c.example:4317"});
  const auto arrived = f.upstreams.trace_endpoints();
  for (std::uint64_t t = 1; t <= 30 * 40; ++t) {
    const auto it = arrived.find(id_bytes(16, t));
    REQUIRE(it != arrived.end());
    REQUIRE(it->second.size() == 1);
    const std::string owner = owner_of(three, t);
    CHECK(*it->second.begin() == (owner == "b.example:4317" ? owner_of(two, t) : owner));
  }
}

TEST_CASE(
    "load_balancer: an ejected member rejoins after its back-off; a failure ejects it again") {
  Fixture f;
  auto config = lb_config(kThree);
  config.ejection.base_time = 20ms;
  config.ejection.max_time = 10s;
  f.upstreams.set_down("b.example:4317", true);
  f.start(config);
  const auto b_ejections = [&] {
    return f.metrics.value("spanrelay_lb_ejections_total", {{"endpoint", "b.example:4317"}});
  };
  int spans = 0;
  // Keep sending while b is down: it is ejected, rejoins on probation, fails, is ejected again.
  REQUIRE(wait_until([&] {
    spans += f.send(static_cast<std::uint64_t>(spans) + 1, 1, 20);
    return b_ejections() >= 2;
  }));
  REQUIRE(wait_until([&] { return f.drained(spans, kThree); }));
  // b recovers: after its back-off it rejoins and gets its keys back.
  f.upstreams.set_down("b.example:4317", false);
  REQUIRE(wait_until([&] { return f.lb->ring_members().size() == 3; }));
  const double b_sent_before =
      f.metrics.value("spanrelay_exporter_sent_spans_total", {{"endpoint", "b.example:4317"}});
  spans += f.send(5000000, 5, 40);
  REQUIRE(wait_until([&] { return f.drained(spans, kThree); }));
  CHECK(f.metrics.value("spanrelay_exporter_sent_spans_total", {{"endpoint", "b.example:4317"}}) >
        b_sent_before);
  CHECK(f.metrics.value("spanrelay_lb_member_in_ring", {{"endpoint", "b.example:4317"}}) == 1);
  for (const auto& [span, times] : f.upstreams.span_arrivals()) CHECK(times == 1);
}

TEST_CASE("load_balancer: the last member in the ring is never ejected") {
  Fixture f;
  const std::vector<std::string> two{"a.example:4317", "b.example:4317"};
  f.upstreams.set_down("a.example:4317", true);
  f.upstreams.set_down("b.example:4317", true);
  f.start(lb_config(two));
  const int spans = f.send(1, 10, 20);
  REQUIRE(wait_until([&] {
    return f.upstreams.attempts("a.example:4317") + f.upstreams.attempts("b.example:4317") > 50;
  }));
  CHECK(f.lb->ring_members().size() == 1);
  f.upstreams.set_down("a.example:4317", false);
  f.upstreams.set_down("b.example:4317", false);
  REQUIRE(wait_until([&] { return f.drained(spans, two); }));
  CHECK(f.metrics.value("spanrelay_dropped_spans_total", {{"reason", "retry_exhausted"}}) == 0);
}

TEST_CASE("load_balancer: a member the resolver removes hands its batches to the others") {
  Fixture f;
  auto config = lb_config(kThree);
  config.ejection.consecutive_failures = 1000000;  // b stays in the ring until removed
  f.upstreams.set_down("b.example:4317", true);
  f.start(config);
  const int spans = f.send(1, 20, 30);
  REQUIRE(wait_until([&] { return f.upstreams.attempts("b.example:4317") > 10; }));
  CHECK(f.sent_total(kThree) < spans);  // b's part waits
  f.manual->set({"a.example:4317", "c.example:4317"});
  REQUIRE(wait_until([&] { return f.drained(spans, kThree); }));
  // The leaving member is closed in the background once its attempts in flight end.
  CHECK(wait_until([&] {
    return f.lb->members() == std::vector<std::string>{"a.example:4317", "c.example:4317"};
  }));
  CHECK(f.metrics.value("spanrelay_lb_members") == 2);
  CHECK(f.metrics.value("spanrelay_lb_rebalances_total") == 1);
  // A new member joins later: about a third of new keys go to it.
  f.manual->set({"a.example:4317", "c.example:4317", "d.example:4317"});
  REQUIRE(wait_until([&] { return f.lb->ring_members().size() == 3; }));
  const int more = f.send(900000, 10, 30);
  const std::vector<std::string> now{"a.example:4317", "c.example:4317", "d.example:4317"};
  REQUIRE(wait_until([&] { return f.sent_total(now) == spans + more; }));
  CHECK(f.metrics.value("spanrelay_exporter_sent_spans_total", {{"endpoint", "d.example:4317"}}) >
        0);
}

TEST_CASE("load_balancer: with a spool, an ejected member's spooled batches move to the others") {
  TempDir tmp;
  Fixture f;
  auto config = lb_config(kThree);
  config.queue.spool.dir = tmp.path() + "/spool";
  config.queue.spool.fsync = spanrelay::config::FsyncPolicy::kNever;
  config.ejection.consecutive_failures = 4;
  f.upstreams.set_down("b.example:4317", true);
  f.start(config);
  const int spans = f.send(1, 30, 20);
  const auto spool_spans = [&] {
    double total = 0;
    for (const auto& e : kThree)
      total += f.metrics.value("spanrelay_spool_spans", {{"endpoint", e}});
    return total + f.metrics.value("spanrelay_spool_spans", {{"endpoint", "unrouted"}});
  };
  REQUIRE(wait_until([&] { return f.drained(spans, kThree) && spool_spans() == 0; }));
  CHECK(f.lb->ring_members().size() == 2);
  CHECK(f.metrics.value("spanrelay_dropped_spans_total", {{"reason", "spool_full"}}) == 0);
  for (const auto& [span, times] : f.upstreams.span_arrivals()) CHECK(times == 1);
  CHECK(f.upstreams.span_arrivals().size() == static_cast<std::size_t>(spans));
}

TEST_CASE("load_balancer: partitions of members no longer configured are drained at start") {
  TempDir tmp;
  const std::string spool_dir = tmp.path() + "/spool";
  int spans = 0;
  {
    Fixture first;
    auto config = lb_config({"a.example:4317", "b.example:4317"});
    config.queue.spool.dir = spool_dir;
    config.ejection.consecutive_failures = 1000000;
    first.upstreams.set_down("b.example:4317", true);
    first.start(config);
    spans = first.send(1, 10, 20);
    // b's batches wait on disk (spool mode spills a failing batch).
    REQUIRE(wait_until([&] {
      return first.metrics.value("spanrelay_spool_spans", {{"endpoint", "b.example:4317"}}) > 0 &&
             first.metrics.value("spanrelay_queue_spans") == 0;
    }));
    first.lb->shutdown(std::chrono::steady_clock::now());
  }
  REQUIRE(std::filesystem::exists(spool_dir + "/lb-b.example_3A4317"));
  Fixture second;
  auto config = lb_config({"a.example:4317"});
  config.queue.spool.dir = spool_dir;
  second.start(config);
  const double recovered = second.metrics.value("spanrelay_spool_recovered_spans_total");
  CHECK(recovered > 0);
  REQUIRE(wait_until([&] {
    return second.sent_total({"a.example:4317"}) == recovered &&
           second.metrics.value("spanrelay_spool_spans", {{"endpoint", "b.example:4317"}}) == 0;
  }));
  CHECK(second.metrics.value("spanrelay_lb_rerouted_spans_total") == recovered);
  REQUIRE(wait_until([&] { return !std::filesystem::exists(spool_dir + "/lb-b.example_3A4317"); }));
}

TEST_CASE("load_balancer: admission overflow goes to the unrouted partition, then to the owners") {
  TempDir tmp;
  Fixture f;
  auto config = lb_config(kThree);
  config.queue.spool.dir = tmp.path() + "/spool";
  f.start(config);
  const auto request = make_traces(1, 60, 3).SerializeAsString();
  REQUIRE(f.lb->spill_request(request, 180));
  REQUIRE(wait_until([&] { return f.sent_total(kThree) == 180; }));
  const HashRing ring(kThree);
  const auto arrived = f.upstreams.trace_endpoints();
  REQUIRE(arrived.size() == 60);
  for (std::uint64_t t = 1; t <= 60; ++t) {
    CHECK(arrived.at(id_bytes(16, t)) == std::set<std::string>{owner_of(ring, t)});
  }
  CHECK(f.metrics.value("spanrelay_spool_spans", {{"endpoint", "unrouted"}}) == 0);
}

TEST_CASE("load_balancer: batches wait in memory until the first member is known") {
  Fixture f;
  auto resolver = std::make_unique<ManualResolver>(std::vector<std::string>{});
  ManualResolver* manual = resolver.get();
  f.start(lb_config(kThree), std::move(resolver));
  const int spans = f.send(1, 5, 10);
  CHECK(f.lb->ring_members().empty());
  CHECK(f.metrics.value("spanrelay_queue_spans") == spans);
  manual->set(kThree);
  REQUIRE(wait_until([&] { return f.drained(spans, kThree); }));
}
