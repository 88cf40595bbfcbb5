// Load balancing to a gateway tier (issue 8), end to end: a real spanrelayd
// exporting to three or four real spanrelay-testsink processes. Every trace
// arrives whole at exactly one sink, the split is close to even, a sink killed
// mid-load loses nothing and only its keys move, and a fourth member takes
// about a quarter of the keys.
#include <doctest/doctest.h>
#include <signal.h>

#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "daemon/delivery/hash_ring.h"
#include "tests/e2e/delivery_support.h"
#include "tests/e2e/harness.h"

using namespace spanrelay::e2e;
using namespace spanrelay::e2e::delivery;
using spanrelay::delivery::HashRing;

namespace {

namespace trace = opentelemetry::proto::trace::v1;

struct LbSetup {
  std::vector<std::string> endpoints;
  std::string resolver;  // a flow map for exporter.resolver instead of endpoints
  std::string batch = "{ max_spans: 500, max_bytes: 1MiB, timeout: 50ms }";
  std::string retry = "{ initial_interval: 10ms, max_interval: 200ms, max_elapsed: 0 }";
  std::string ejection = "{ consecutive_failures: 3, base_time: 10m, max_time: 10m }";
  std::string spool;
  std::string routing_key = "traceID";
};

std::string lb_yaml(const LbSetup& s) {
  std::ostringstream y;
  y << "receivers:\n  otlp:\n    grpc: { endpoint: 127.0.0.1:0 }\n"
    << "    http: { endpoint: 127.0.0.1:0 }\n"
    << "batch: " << s.batch << "\n"
    << "exporter:\n  type: otlp_grpc\n";
  if (!s.resolver.empty()) {
    y << "  resolver: " << s.resolver << "\n";
  } else {
    y << "  endpoints:\n";
    for (const auto& e : s.endpoints) y << "    - " << e << "\n";
  }
  y << "  routing_key: " << s.routing_key << "\n"
    << "  timeout: 5s\n  max_in_flight: 4\n"
    << "  retry: " << s.retry << "\n"
    << "  ejection: " << s.ejection << "\n"
    << "  queue:\n    memory_limit: 64MiB\n";
  if (!s.spool.empty()) y << "    spool: " << s.spool << "\n";
  y << "telemetry:\n  metrics: { endpoint: 127.0.0.1:0 }\n"
    << "service: { shutdown_timeout: 10s }\n";
  return y.str();
}

std::string id_bytes(std::size_t size, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string id(size, '\0');
  for (auto& c : id) c = static_cast<char>(rng() & 0xff);
  return id;
}

// Trace t (0-based) of a test has id id_bytes(16, seed_base + t).
constexpr std::uint64_t kTraceSeed = 0x5eed0000;

// One span of each of `count` traces (from `first` on), the `round`-th span of
// each: the spans of one trace travel in different requests and batches.
ExportRequest make_round(int first, int count, int round, std::vector<GeneratedSpan>* spans) {
  ExportRequest request;
  std::vector<trace::ScopeSpans*> scopes;
  for (int r = 0; r < 2; ++r) {
    auto* rs = request.add_resource_spans();
    auto* kv = rs->mutable_resource()->add_attributes();
    kv->set_key("service.name");
    kv->mutable_value()->set_string_value("svc-" + std::to_string(r));
    auto* ss = rs->add_scope_spans();
    ss->mutable_scope()->set_name("lb-test");
    scopes.push_back(ss);
  }
  for (int t = first; t < first + count; ++t) {
    auto* span = scopes[t % 2]->add_spans();
    span->set_trace_id(id_bytes(16, kTraceSeed + static_cast<std::uint64_t>(t)));
    span->set_span_id(id_bytes(8, (static_cast<std::uint64_t>(t) << 8) + round + 1));
    span->set_name("round-" + std::to_string(round));
    span->set_start_time_unix_nano(1700000000000000000ull + static_cast<std::uint64_t>(t));
    span->set_end_time_unix_nano(1700000000000000000ull + static_cast<std::uint64_t>(t) + 1000);
    spans->push_back(
        {hex(span->trace_id()), hex(span->span_id()), span_digest(span->SerializeAsString())});
  }
  return request;
}

std::string trace_hex(int t) {
  return hex(id_bytes(16, kTraceSeed + static_cast<std::uint64_t>(t)));
}

std::uint64_t ring_key(const std::string& trace_id_hex) {
  spanrelay::otlp::TraceId id{};
  for (std::size_t i = 0; i < id.size(); ++i) {
    id[i] = static_cast<std::uint8_t>(std::stoul(trace_id_hex.substr(2 * i, 2), nullptr, 16));
  }
  return spanrelay::delivery::trace_id_key(id);
}

// Sends rounds x (traces / per_request) requests over gRPC; all must be acked.
void send_rounds(const Daemon& daemon, AppSide& app, int traces, int rounds, int per_request = 100,
                 int first_round = 0) {
  for (int round = first_round; round < first_round + rounds; ++round) {
    for (int first = 0; first < traces; first += per_request) {
      std::vector<GeneratedSpan> spans;
      const auto request = make_round(first, per_request, round, &spans);
      const auto result = app.send(daemon, Via::kGrpc, request, spans);
      REQUIRE_MESSAGE(result.has_value(), "the relay did not answer");
      REQUIRE_MESSAGE(is_ok(Via::kGrpc, *result), "status " << result->status);
    }
  }
}

// What every sink holds, by trace and by span.
struct Landing {
  std::map<std::string, std::map<int, int>> trace_spans;  // trace -> sink -> span lines
  std::map<std::string, std::vector<int>> span_sinks;     // trace/span -> sinks (with repeats)
  std::map<std::string, std::string> digest;              // trace/span -> digest seen
  std::vector<std::size_t> per_sink;
};

Landing landing(const std::vector<std::unique_ptr<Sink>>& sinks) {
  Landing out;
  out.per_sink.resize(sinks.size());
  for (std::size_t i = 0; i < sinks.size(); ++i) {
    for (const auto& span : sinks[i]->spans()) {
      ++out.trace_spans[span.trace_id][static_cast<int>(i)];
      const std::string key = span.trace_id + "/" + span.span_id;
      out.span_sinks[key].push_back(static_cast<int>(i));
      out.digest[key] = span.digest;
      ++out.per_sink[i];
    }
  }
  return out;
}

std::size_t total_spans(const std::vector<std::unique_ptr<Sink>>& sinks) {
  std::size_t total = 0;
  for (const auto& sink : sinks) total += sink->span_count();
  return total;
}

// Acked spans that are at no sink.
std::size_t missing(const Landing& at, const std::vector<GeneratedSpan>& acked) {
  std::size_t count = 0;
  for (const auto& s : acked)
    count += at.span_sinks.count(s.trace_id_hex + "/" + s.span_id_hex) == 0;
  return count;
}

// The accounting of a load-balancing relay: the exporter and spool series
// carry an endpoint label, so they are summed.
Balance lb_balance(const Daemon& daemon) {
  const Scrape m(daemon);
  Balance b;
  b.accepted = m.sum("spanrelay_receiver_accepted_spans_total{");
  b.recovered = m["spanrelay_spool_recovered_spans_total"];
  b.sent = m.sum("spanrelay_exporter_sent_spans_total{");
  b.sampled_out = m["spanrelay_sampling_sampled_out_spans_total"];
  b.dropped = m.sum("spanrelay_dropped_spans_total{");
  b.queue = m["spanrelay_queue_spans"];
  b.spool = m.sum("spanrelay_spool_spans{");
  return b;
}

void check_lb_balance(const Daemon& daemon) {
  Balance last;
  const bool held = wait_until(
      [&] {
        last = lb_balance(daemon);
        return last.holds();
      },
      10s);
  CHECK_MESSAGE(held, "accounting does not balance: " << last.describe());
}

std::string sent_series(const std::string& endpoint) {
  return "spanrelay_exporter_sent_spans_total{endpoint=\"" + endpoint + "\"}";
}

std::vector<std::unique_ptr<Sink>> start_sinks(const TempDir& dir, int count) {
  std::vector<std::unique_ptr<Sink>> sinks;
  for (int i = 0; i < count; ++i) {
    sinks.push_back(
        std::make_unique<Sink>(dir, std::vector<std::string>{}, "sink" + std::to_string(i)));
  }
  return sinks;
}

std::vector<std::string> grpc_endpoints(const std::vector<std::unique_ptr<Sink>>& sinks,
                                        std::size_t count) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < count; ++i) out.push_back(sinks[i]->grpc_address());
  return out;
}

int index_of(const std::vector<std::string>& endpoints, const std::string& endpoint) {
  return static_cast<int>(std::find(endpoints.begin(), endpoints.end(), endpoint) -
                          endpoints.begin());
}

}  // namespace

TEST_CASE("load balancing: 10k traces over three sinks arrive whole at one sink each, evenly") {
  TempDir dir;
  const auto sinks = start_sinks(dir, 3);
  LbSetup setup;
  setup.endpoints = grpc_endpoints(sinks, 3);
  Daemon daemon(dir, lb_yaml(setup));
  AppSide app;
  constexpr int kTraces = 10000;
  constexpr int kRounds = 3;  // three spans per trace, each in a different request
  send_rounds(daemon, app, kTraces, kRounds);
  REQUIRE(wait_until([&] { return total_spans(sinks) >= kTraces * kRounds; }, 90s));
  const Landing at = landing(sinks);
  CHECK(missing(at, app.acked()) == 0);
  CHECK(at.span_sinks.size() == static_cast<std::size_t>(kTraces * kRounds));

  const HashRing ring(setup.endpoints);
  std::vector<int> traces_per_sink(3);
  int split_traces = 0, partial_traces = 0, off_ring = 0;
  for (int t = 0; t < kTraces; ++t) {
    const auto it = at.trace_spans.find(trace_hex(t));
    REQUIRE(it != at.trace_spans.end());
    if (it->second.size() != 1) ++split_traces;
    const auto [sink, count] = *it->second.begin();
    if (count != kRounds) ++partial_traces;
    ++traces_per_sink[sink];
    // The daemon routes on the documented ring: the same owner computed here.
    if (index_of(setup.endpoints, ring.owner(ring_key(trace_hex(t)))) != sink) ++off_ring;
  }
  CHECK(split_traces == 0);
  CHECK(partial_traces == 0);
  CHECK(off_ring == 0);
  for (int i = 0; i < 3; ++i) {
    const double share = traces_per_sink[i] / static_cast<double>(kTraces);
    MESSAGE("sink " << i << ": " << traces_per_sink[i] << " traces (" << share * 100 << " %)");
    CHECK(std::abs(share - 1.0 / 3) < 0.04);  // within 4 points of an even third
  }
  for (const auto& [span, where] : at.span_sinks) CHECK(where.size() == 1);  // no duplicates
  for (const auto& s : app.acked()) {
    CHECK(at.digest.at(s.trace_id_hex + "/" + s.span_id_hex) == s.digest);  // bytes unchanged
  }

  // Per-member metrics agree with what each sink received.
  REQUIRE(wait_until([&] { return drained(daemon); }));
  const Scrape m(daemon);
  for (int i = 0; i < 3; ++i) {
    CHECK(m[sent_series(setup.endpoints[i])] == static_cast<double>(at.per_sink[i]));
  }
  CHECK(m["spanrelay_lb_members"] == 3);
  CHECK(m["spanrelay_lb_rebalances_total"] == 0);
  CHECK(m.sum("spanrelay_dropped_spans_total{") == 0);
  check_lb_balance(daemon);

  // A fourth member, at the ring level with these very trace ids: about a
  // quarter of the traces move, every one of them to the new member.
  auto four = setup.endpoints;
  four.push_back(loopback(unused_tcp_port()));
  const HashRing bigger(four);
  int moved = 0, moved_elsewhere = 0;
  for (int t = 0; t < kTraces; ++t) {
    const std::uint64_t key = ring_key(trace_hex(t));
    if (ring.owner(key) == bigger.owner(key)) continue;
    ++moved;
    if (bigger.owner(key) != four.back()) ++moved_elsewhere;
  }
  MESSAGE("a fourth member takes " << moved << " of " << kTraces << " traces");
  CHECK(moved_elsewhere == 0);
  CHECK(moved > kTraces * 20 / 100);
  CHECK(moved < kTraces * 30 / 100);
  CHECK(daemon.stop() == 0);
}

TEST_CASE(
    "load balancing: a restart with a fourth sink moves about a quarter of the traces to it") {
  TempDir dir;
  const auto sinks = start_sinks(dir, 4);
  constexpr int kTraces = 3000;
  AppSide before;
  LbSetup three;
  three.endpoints = grpc_endpoints(sinks, 3);
  {
    Daemon daemon(dir, lb_yaml(three), "relay3");
    send_rounds(daemon, before, kTraces, 1);
    REQUIRE(wait_until([&] { return total_spans(sinks) >= kTraces; }));
    CHECK(daemon.stop() == 0);
  }
  const Landing first = landing(sinks);
  LbSetup four;
  four.endpoints = grpc_endpoints(sinks, 4);
  AppSide after;
  Daemon daemon(dir, lb_yaml(four), "relay4");
  send_rounds(daemon, after, kTraces, 1, 100, /*first_round=*/1);
  REQUIRE(wait_until([&] { return total_spans(sinks) >= 2 * kTraces; }));
  const Landing second = landing(sinks);
  CHECK(missing(second, after.acked()) == 0);

  // Where the round-1 span of each trace went, compared with its round-0 span.
  int moved = 0, moved_elsewhere = 0;
  for (int t = 0; t < kTraces; ++t) {
    const auto& was = first.trace_spans.at(trace_hex(t));
    REQUIRE(was.size() == 1);
    int new_sink = -1;
    for (const auto& [sink, count] : second.trace_spans.at(trace_hex(t))) {
      const auto old = was.find(sink);
      if (count - (old == was.end() ? 0 : old->second) == 1) new_sink = sink;
    }
    REQUIRE(new_sink >= 0);
    if (new_sink == was.begin()->first) continue;
    ++moved;
    if (new_sink != 3) ++moved_elsewhere;
  }
  MESSAGE("with a fourth sink " << moved << " of " << kTraces << " traces moved");
  CHECK(moved_elsewhere == 0);
  CHECK(moved > kTraces * 20 / 100);
  CHECK(moved < kTraces * 30 / 100);
  CHECK(sinks[3]->span_count() == static_cast<std::size_t>(moved));
}

namespace {

// Sends rounds first_round .. first_round + rounds - 1 of `traces` traces on
// a background thread.
class RoundSender {
 public:
  RoundSender(const Daemon& daemon, AppSide& app, int traces, int first_round, int rounds)
      : thread_([&daemon, &app, traces, first_round, rounds, this] {
          for (int round = first_round; round < first_round + rounds; ++round) {
            for (int first = 0; first < traces; first += 100) {
              std::vector<GeneratedSpan> spans;
              const auto request = make_round(first, 100, round, &spans);
              const auto result = app.send(daemon, Via::kGrpc, request, spans);
              if (!result || !is_ok(Via::kGrpc, *result)) ++failures_;
            }
          }
        }) {}
  ~RoundSender() { join(); }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  int failures() const { return failures_.load(); }

 private:
  std::atomic<int> failures_{0};
  std::thread thread_;
};

// Sends the first span of every trace, then kills sinks[victim] while the
// other spans are being sent; then checks that nothing was lost and that only
// the victim's keys moved.
void kill_one_sink_mid_load(const std::string& spool) {
  TempDir dir;
  auto sinks = start_sinks(dir, 3);
  LbSetup setup;
  setup.endpoints = grpc_endpoints(sinks, 3);
  if (!spool.empty()) setup.spool = spool_yaml(dir.file("spool"), spool);
  Daemon daemon(dir, lb_yaml(setup));
  constexpr int kTraces = 3000;
  constexpr int kRounds = 3;
  constexpr int kVictim = 1;
  AppSide app;
  send_rounds(daemon, app, kTraces, 1);
  REQUIRE(wait_until([&] { return sinks[kVictim]->span_count() > 0; }));
  {
    RoundSender sender(daemon, app, kTraces, 1, kRounds - 1);
    // Mid-load: part of the second round is acknowledged.
    REQUIRE(wait_until([&] { return app.acked_requests() >= kTraces / 100 + 10; }));
    sinks[kVictim]->process().signal(SIGKILL);
    REQUIRE(sinks[kVictim]->process().wait_exit().has_value());
    sender.join();
    CHECK(sender.failures() == 0);  // the apps never noticed
  }
  const auto acked = app.acked();
  REQUIRE(acked.size() == static_cast<std::size_t>(kTraces * kRounds));
  // Nothing lost: every acknowledged span is at some sink (the victim's file
  // keeps what it had received before it died).
  Landing at;
  const bool all_arrived = wait_until(
      [&] {
        at = landing(sinks);
        return missing(at, acked) == 0;
      },
      90s);
  CHECK_MESSAGE(all_arrived, missing(at, acked) << " acknowledged spans never arrived");
  REQUIRE(wait_until([&] { return drained(daemon); }));

  const HashRing three(setup.endpoints);
  std::vector<std::string> survivors = setup.endpoints;
  survivors.erase(survivors.begin() + kVictim);
  const HashRing two(survivors);
  int foreign_spans = 0, moved_survivor_keys = 0, victim_keys_moved = 0;
  for (const auto& [trace_id, sinks_of_trace] : at.trace_spans) {
    const std::uint64_t key = ring_key(trace_id);
    const int owner = index_of(setup.endpoints, three.owner(key));
    const int heir = index_of(setup.endpoints, two.owner(key));
    int spans = 0;
    for (const auto& [sink, count] : sinks_of_trace) {
      spans += count;
      if (owner != kVictim && sink != owner) ++moved_survivor_keys;
      if (owner == kVictim && sink != kVictim && sink != heir) ++foreign_spans;
      if (owner == kVictim && sink == heir) ++victim_keys_moved;
    }
    CHECK(spans >= kRounds);  // the trace is whole across the sinks
  }
  CHECK(moved_survivor_keys == 0);  // only the victim's keys moved...
  CHECK(foreign_spans == 0);        // ...and only to the members that own them now
  CHECK(victim_keys_moved > 0);
  // Duplicates are possible only for spans the victim received but never
  // acknowledged; none of the survivors' own spans is duplicated.
  for (const auto& [span, where] : at.span_sinks) {
    if (where.size() > 1) CHECK(std::count(where.begin(), where.end(), kVictim) == 1);
  }

  const Scrape m(daemon);
  const std::string victim_label = "{endpoint=\"" + setup.endpoints[kVictim] + "\"}";
  CHECK(m["spanrelay_lb_ejections_total" + victim_label] >= 1);
  CHECK(m["spanrelay_lb_member_in_ring" + victim_label] == 0);
  CHECK(m["spanrelay_lb_members"] == 2);
  CHECK(m["spanrelay_lb_rebalances_total"] >= 1);
  CHECK(m.sum("spanrelay_dropped_spans_total{") == 0);
  check_lb_balance(daemon);
  CHECK(daemon.stop() == 0);
}

}  // namespace

TEST_CASE("load balancing: a sink killed mid-load loses nothing and only its keys move") {
  kill_one_sink_mid_load("");
}

TEST_CASE("load balancing: with a spool, a sink killed mid-load loses nothing either") {
  kill_one_sink_mid_load("fsync: interval, fsync_interval: 50ms");
}

TEST_CASE("load balancing: a restart without a member replays its spool partition to the others") {
  TempDir dir;
  auto sinks = start_sinks(dir, 1);
  const std::string gone = loopback(unused_tcp_port());  // nobody ever listens there
  LbSetup setup;
  setup.endpoints = {sinks[0]->grpc_address(), gone};
  setup.spool = spool_yaml(dir.file("spool"), "fsync: always");
  setup.ejection = "{ consecutive_failures: 1000, base_time: 10m, max_time: 10m }";
  AppSide app;
  {
    Daemon daemon(dir, lb_yaml(setup), "relay1");
    send_rounds(daemon, app, 1000, 2);
    const std::string gone_spool = "spanrelay_spool_spans{endpoint=\"" + gone + "\"}";
    // The absent member's spans wait in its partition on disk.
    REQUIRE(wait_until([&] {
      const Scrape m(daemon);
      return m[gone_spool] > 0 && m["spanrelay_queue_spans"] == 0;
    }));
    check_lb_balance(daemon);
    CHECK(daemon.stop() == 0);
  }
  REQUIRE(std::filesystem::exists(dir.file("spool")));
  setup.endpoints = {sinks[0]->grpc_address()};
  Daemon daemon(dir, lb_yaml(setup), "relay2");
  const Arrival arrival = wait_for_arrival(*sinks[0], app.acked());
  MESSAGE(arrival.describe());
  CHECK(arrival.missing == 0);
  CHECK(arrival.altered == 0);
  REQUIRE(wait_until([&] { return drained(daemon); }));
  const Scrape m(daemon);
  CHECK(m["spanrelay_spool_recovered_spans_total"] > 0);
  CHECK(m["spanrelay_lb_rerouted_spans_total"] == m["spanrelay_spool_recovered_spans_total"]);
  check_lb_balance(daemon);
}

TEST_CASE("load balancing: a DNS resolver (getaddrinfo on localhost) finds the sink") {
  TempDir dir;
  auto sinks = start_sinks(dir, 1);
  const std::string address = sinks[0]->grpc_address();  // 127.0.0.1:PORT
  const std::string port = address.substr(address.rfind(':') + 1);
  LbSetup setup;
  // localhost resolves through /etc/hosts to 127.0.0.1 (and, on some hosts,
  // also to ::1, where no sink listens: that member is ejected and its keys
  // go to 127.0.0.1 — either way every span arrives there).
  setup.resolver = "{ dns: { hostname: localhost, port: " + port + ", interval: 1s } }";
  Daemon daemon(dir, lb_yaml(setup));
  AppSide app;
  send_rounds(daemon, app, 1000, 2);
  const Arrival arrival = wait_for_arrival(*sinks[0], app.acked());
  MESSAGE(arrival.describe());
  CHECK(arrival.missing == 0);
  REQUIRE(wait_until([&] { return drained(daemon); }));
  const Scrape m(daemon);
  CHECK(m[sent_series(address)] == static_cast<double>(app.acked().size()));
  CHECK(m["spanrelay_lb_members"] >= 1);
  CHECK(m.sum("spanrelay_dropped_spans_total{") == 0);
  check_lb_balance(daemon);
}

TEST_CASE("load balancing: back to one endpoint, the partitions' records go to that upstream") {
  TempDir dir;
  auto sinks = start_sinks(dir, 1);
  const std::string gone = loopback(unused_tcp_port());
  LbSetup setup;
  setup.endpoints = {sinks[0]->grpc_address(), gone};
  setup.spool = spool_yaml(dir.file("spool"), "fsync: always");
  setup.ejection = "{ consecutive_failures: 1000, base_time: 10m, max_time: 10m }";
  AppSide app;
  {
    Daemon daemon(dir, lb_yaml(setup), "relay1");
    send_rounds(daemon, app, 1000, 2);
    REQUIRE(wait_until([&] {
      const Scrape m(daemon);
      return m["spanrelay_spool_spans{endpoint=\"" + gone + "\"}"] > 0 &&
             m["spanrelay_queue_spans"] == 0;
    }));
    CHECK(daemon.stop() == 0);
  }
  RelaySetup single;
  single.endpoint = sinks[0]->grpc_address();
  single.spool = spool_yaml(dir.file("spool"), "fsync: always");
  Daemon daemon(dir, relay_yaml(single), "relay2");
  const Arrival arrival = wait_for_arrival(*sinks[0], app.acked());
  MESSAGE(arrival.describe());
  CHECK(arrival.missing == 0);
  REQUIRE(wait_until([&] { return drained(daemon); }));
  CHECK(daemon.metric("spanrelay_spool_recovered_spans_total") > 0);
  check_balance(daemon);  // the one-endpoint series, unlabelled as before
  // The partitions were emptied into the one spool and deleted.
  for (const auto& entry : std::filesystem::directory_iterator(dir.file("spool"))) {
    CHECK_FALSE(entry.is_directory());
  }
}
