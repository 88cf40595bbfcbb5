// Tail sampling end to end: spanrelayd with policies between a load of
// interleaved, out-of-order traces sent over gRPC and HTTP, and the test sink.
// Error traces arrive whole, no trace arrives in part, the ratio keeps exactly
// the traces its rule selects, drop beats keep, late spans follow the
// decision, memory pressure decides early without losing error traces, and
// the counters balance.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "tests/e2e/harness.h"

using namespace spanrelay::e2e;

namespace {

namespace trace = opentelemetry::proto::trace::v1;

struct TestSpan {
  std::string trace_id, span_id, parent;
  bool error = false;
  std::string route = "/api";
  std::uint64_t duration_ms = 5;
};

struct TestTrace {
  std::string trace_id;
  std::vector<TestSpan> spans;
  bool error = false;
  bool health = false;
};

std::string bytes_of(std::mt19937_64& rng, int n) {
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng());
  return out;
}

std::vector<TestTrace> make_traces(int count, int spans_per_trace, int error_every,
                                   int health_every, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<TestTrace> traces;
  for (int t = 0; t < count; ++t) {
    TestTrace tr;
    tr.trace_id = bytes_of(rng, 16);
    tr.error = error_every > 0 && t % error_every == 0;
    tr.health = health_every > 0 && t % health_every == 1;
    std::string parent;
    for (int s = 0; s < spans_per_trace; ++s) {
      TestSpan span{tr.trace_id, bytes_of(rng, 8), parent};
      span.route = tr.health ? "/healthz" : "/api";
      // The error sits on the last span: a decision must wait for it or keep
      // the spans that came before it.
      span.error = tr.error && s == spans_per_trace - 1;
      parent = span.span_id;
      tr.spans.push_back(span);
    }
    if (tr.health) tr.spans.back().error = true;  // drop beats keep: an erroring health check
    traces.push_back(tr);
  }
  return traces;
}

std::string encode(const std::vector<const TestSpan*>& spans) {
  ExportRequest request;
  auto* rs = request.add_resource_spans();
  auto* attr = rs->mutable_resource()->add_attributes();
  attr->set_key("service.name");
  attr->mutable_value()->set_string_value("sampling-e2e");
  auto* ss = rs->add_scope_spans();
  ss->mutable_scope()->set_name("e2e");
  const std::uint64_t base =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  for (const auto* s : spans) {
    auto* span = ss->add_spans();
    span->set_trace_id(s->trace_id);
    span->set_span_id(s->span_id);
    if (!s->parent.empty()) span->set_parent_span_id(s->parent);
    span->set_name("op");
    span->set_start_time_unix_nano(base - s->duration_ms * 1000000);
    span->set_end_time_unix_nano(base);
    auto* route = span->add_attributes();
    route->set_key("http.route");
    route->mutable_value()->set_string_value(s->route);
    if (s->error) span->mutable_status()->set_code(trace::Status::STATUS_CODE_ERROR);
  }
  return request.SerializeAsString();
}

// Spans of all traces, shuffled (out of order, interleaved) and cut into requests.
std::vector<std::string> shuffled_requests(const std::vector<TestTrace>& traces,
                                           std::size_t per_request, std::uint64_t seed) {
  std::vector<const TestSpan*> all;
  for (const auto& t : traces) {
    for (const auto& s : t.spans) all.push_back(&s);
  }
  std::mt19937_64 rng(seed);
  std::shuffle(all.begin(), all.end(), rng);
  std::vector<std::string> requests;
  for (std::size_t i = 0; i < all.size(); i += per_request) {
    std::vector<const TestSpan*> chunk(all.begin() + i,
                                       all.begin() + std::min(all.size(), i + per_request));
    requests.push_back(encode(chunk));
  }
  return requests;
}

bool ratio_keeps(const std::string& trace_id, double ratio) {
  std::uint64_t low = 0;
  for (int i = 8; i < 16; ++i) low = (low << 8) | static_cast<unsigned char>(trace_id[i]);
  if (ratio >= 1) return true;
  if (ratio <= 0) return false;
  const auto threshold = static_cast<std::uint64_t>(ratio * 18446744073709551616.0);
  return low < threshold;
}

std::string yaml_for(const TempDir& dir, const Sink& sink, const std::string& sampling,
                     const std::string& batch = "{ timeout: 50ms }") {
  return "receivers:\n  otlp:\n    grpc: { endpoint: 127.0.0.1:0 }\n    http: { endpoint: "
         "127.0.0.1:0 }\n" +
         sampling + "batch: " + batch +
         "\nexporter: { type: otlp_grpc, endpoint: " + sink.grpc_address() +
         ", compression: none }\ntelemetry: { metrics: { endpoint: 127.0.0.1:0 } }\n";
}

void send_all(const Daemon& daemon, const std::vector<std::string>& requests) {
  int i = 0;
  for (const auto& body : requests) {
    // Alternate transports: a trace's spans arrive over both.
    if (i++ % 2 == 0) {
      REQUIRE(grpc_export(daemon.tcp_address("grpc"), body).status == 0);
    } else {
      REQUIRE(http_export(daemon.tcp_address("http"), body).status == 200);
    }
  }
}

std::map<std::string, int> spans_per_trace_at_sink(const Sink& sink) {
  std::map<std::string, int> out;
  for (const auto& s : sink.spans()) ++out[s.trace_id];
  return out;
}

double traces_total(const Daemon& daemon) {
  double total = 0;
  std::istringstream lines(daemon.metrics_text());
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("spanrelay_sampling_traces_total{", 0) == 0)
      total += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return total;
}

void check_balance(const Daemon& daemon) {
  double accepted = 0;
  for (const char* t : {"grpc", "http"}) {
    for (const char* e : {"protobuf", "json"}) {
      accepted +=
          daemon.metric(std::string("spanrelay_receiver_accepted_spans_total{transport=\"") + t +
                        "\",encoding=\"" + e + "\"}");
    }
  }
  double dropped = 0;
  for (const char* reason :
       {"retry_exhausted", "non_retryable", "upstream_rejected", "shutdown_timeout"}) {
    dropped +=
        daemon.metric(std::string("spanrelay_dropped_spans_total{reason=\"") + reason + "\"}");
  }
  const double sent = daemon.metric("spanrelay_exporter_sent_spans_total");
  const double sampled_out = daemon.metric("spanrelay_sampling_sampled_out_spans_total");
  const double queued = daemon.metric("spanrelay_queue_spans");
  CHECK(accepted > 0);
  CHECK(accepted == sent + sampled_out + dropped + queued);
}

// Every span of a shuffled trace must arrive within decision_wait of its
// first one for the trace to be decided whole: the wait covers a whole send
// even on a loaded machine under ASan.
std::string policies(const std::string& decision_wait) {
  return "sampling:\n"
         "  decision_wait: " +
         decision_wait +
         "\n"
         "  shards: 2\n"
         "  policies:\n"
         "    - { name: no-health, type: drop, key: http.route, values: [/healthz, /readyz] }\n"
         "    - { name: errors, type: status_code, status_codes: [ERROR], decide_early: false }\n"
         "    - { name: baseline, type: ratio, ratio: 0.25 }\n";
}
const std::string kPolicies = policies("1s");

}  // namespace

TEST_CASE("sampling: error traces arrive whole, ratio keeps exactly its rule, drop beats keep") {
  TempDir dir;
  Sink sink(dir);
  Daemon daemon(dir, yaml_for(dir, sink, policies("5s")));
  const auto traces = make_traces(2000, 5, 10, 50, 42);
  send_all(daemon, shuffled_requests(traces, 97, 7));

  // Every trace is decided decision_wait after its first span.
  REQUIRE(wait_until([&] { return traces_total(daemon) == traces.size(); }));
  REQUIRE(wait_until([&] { return daemon.metric("spanrelay_queue_spans") == 0; }));
  const auto at_sink = spans_per_trace_at_sink(sink);

  std::size_t expected_spans = 0;
  int errors_kept = 0, baseline_kept = 0, health_dropped = 0;
  for (const auto& t : traces) {
    const auto id = hex(t.trace_id);
    const auto it = at_sink.find(id);
    const bool arrived = it != at_sink.end();
    const bool expect_keep = !t.health && (t.error || ratio_keeps(t.trace_id, 0.25));
    CAPTURE(id);
    CHECK(arrived == expect_keep);
    if (arrived) {
      CHECK(it->second == static_cast<int>(t.spans.size()));  // whole, never in part
      expected_spans += t.spans.size();
    }
    errors_kept += t.error && !t.health && arrived;
    baseline_kept += !t.error && !t.health && arrived;
    health_dropped += t.health && !arrived;
  }
  CHECK(errors_kept > 150);
  CHECK(health_dropped == 40);
  // Binomial bounds for the baseline: ~1760 eligible traces at 25 %.
  CHECK(baseline_kept > 340);
  CHECK(baseline_kept < 540);
  CHECK(sink.span_count() == expected_spans);
  CHECK(daemon.metric(
            "spanrelay_sampling_traces_total{decision=\"dropped\",policy=\"no-health\"}") == 40);
  CHECK(daemon.metric("spanrelay_traces_in_flight") == 0);
  check_balance(daemon);
}

TEST_CASE("sampling: late spans follow the cached decision") {
  TempDir dir;
  Sink sink(dir);
  Daemon daemon(dir, yaml_for(dir, sink, kPolicies));
  // Two traces of 3 spans: one with an error (kept), one that the ratio rejects (dropped).
  auto traces = make_traces(400, 3, 0, 0, 9);
  TestTrace kept = traces[0];
  kept.spans[0].error = true;
  const TestTrace* rejected = nullptr;
  for (const auto& t : traces) {
    if (!ratio_keeps(t.trace_id, 0.25)) {
      rejected = &t;
      break;
    }
  }
  REQUIRE(rejected != nullptr);
  REQUIRE(
      grpc_export(daemon.tcp_address("grpc"), encode({&kept.spans[0], &kept.spans[1]})).status ==
      0);
  REQUIRE(
      grpc_export(daemon.tcp_address("grpc"), encode({&rejected->spans[0], &rejected->spans[1]}))
          .status == 0);
  REQUIRE(wait_until([&] { return traces_total(daemon) == 2; }));
  REQUIRE(sink.wait_for_spans(2));

  // Late spans of both traces.
  REQUIRE(http_export(daemon.tcp_address("http"), encode({&kept.spans[2], &rejected->spans[2]}))
              .status == 200);
  REQUIRE(wait_until([&] {
    return daemon.metric("spanrelay_sampling_late_spans_total{outcome=\"kept\"}") == 1 &&
           daemon.metric("spanrelay_sampling_late_spans_total{outcome=\"dropped\"}") == 1;
  }));
  REQUIRE(sink.wait_for_spans(3));
  REQUIRE(wait_until([&] { return daemon.metric("spanrelay_queue_spans") == 0; }));
  const auto at_sink = spans_per_trace_at_sink(sink);
  CHECK(at_sink.at(hex(kept.trace_id)) == 3);
  CHECK(at_sink.count(hex(rejected->trace_id)) == 0);
  CHECK(traces_total(daemon) == 2);  // late spans do not open new traces
  check_balance(daemon);
}

TEST_CASE("sampling: memory pressure decides early and still keeps every error trace") {
  TempDir dir;
  Sink sink(dir);
  const std::string sampling =
      "sampling:\n"
      "  decision_wait: 10m\n"  // only the bounds can decide in this test
      "  max_traces: 20\n"
      "  shards: 1\n"
      "  policies:\n"
      "    - { name: errors, type: status_code, decide_early: false }\n";
  Daemon daemon(dir, yaml_for(dir, sink, sampling));
  // 10x max_traces traces stream through, each sent whole in one request.
  const auto traces = make_traces(200, 4, 5, 0, 11);
  for (const auto& t : traces) {
    std::vector<const TestSpan*> spans;
    for (const auto& s : t.spans) spans.push_back(&s);
    REQUIRE(grpc_export(daemon.tcp_address("grpc"), encode(spans)).status == 0);
  }
  REQUIRE(wait_until([&] {
    return daemon.metric("spanrelay_sampling_early_decisions_total{reason=\"max_traces\"}") >= 180;
  }));
  CHECK(daemon.metric("spanrelay_traces_in_flight") <= 20);
  // The 20 still buffered are decided by SIGTERM; then everything is settled.
  REQUIRE(daemon.stop() == 0);
  const auto at_sink = spans_per_trace_at_sink(sink);
  for (const auto& t : traces) {
    CAPTURE(hex(t.trace_id));
    if (t.error) {
      REQUIRE(at_sink.count(hex(t.trace_id)) == 1);
      CHECK(at_sink.at(hex(t.trace_id)) == 4);
    } else {
      CHECK(at_sink.count(hex(t.trace_id)) == 0);
    }
  }
}

TEST_CASE("sampling: decide_early keeps an error trace at once, its later spans follow") {
  TempDir dir;
  Sink sink(dir);
  const std::string sampling =
      "sampling:\n"
      "  decision_wait: 10m\n"
      "  policies:\n"
      "    - { name: errors, type: status_code }\n";  // decide_early defaults to true
  Daemon daemon(dir, yaml_for(dir, sink, sampling));
  auto traces = make_traces(1, 3, 0, 0, 5);
  auto& t = traces[0];
  t.spans[0].error = true;
  REQUIRE(grpc_export(daemon.tcp_address("grpc"), encode({&t.spans[0]})).status == 0);
  REQUIRE(sink.wait_for_spans(1));  // long before decision_wait
  REQUIRE(grpc_export(daemon.tcp_address("grpc"), encode({&t.spans[1], &t.spans[2]})).status == 0);
  REQUIRE(sink.wait_for_spans(3));
  CHECK(daemon.metric("spanrelay_sampling_traces_total{decision=\"kept\",policy=\"errors\"}") == 1);
  CHECK(daemon.metric("spanrelay_sampling_early_decisions_total{reason=\"decide_early\"}") == 1);
}

TEST_CASE("sampling: the byte bound decides early too, and error traces are still kept whole") {
  TempDir dir;
  Sink sink(dir);
  const std::string sampling =
      "sampling:\n"
      "  decision_wait: 10m\n"
      "  max_buffered_bytes: 1MiB\n"
      "  shards: 1\n"
      "  policies:\n"
      "    - { name: errors, type: status_code, decide_early: false }\n";
  Daemon daemon(dir, yaml_for(dir, sink, sampling));
  // ~4000 traces x 4 spans of ~200 bytes: several times the byte bound.
  const auto traces = make_traces(4000, 4, 7, 0, 13);
  double peak_buffered = 0;
  for (std::size_t i = 0; i < traces.size(); i += 50) {
    std::vector<const TestSpan*> spans;
    for (std::size_t t = i; t < std::min(traces.size(), i + 50); ++t) {
      for (const auto& s : traces[t].spans) spans.push_back(&s);
    }
    REQUIRE(grpc_export(daemon.tcp_address("grpc"), encode(spans)).status == 0);
    peak_buffered = std::max(peak_buffered, daemon.metric("spanrelay_sampling_buffered_bytes"));
  }
  REQUIRE(wait_until([&] {
    return daemon.metric(
               "spanrelay_sampling_early_decisions_total{reason=\"max_buffered_bytes\"}") > 0;
  }));
  CHECK(daemon.metric("spanrelay_sampling_early_decisions_total{reason=\"max_traces\"}") == 0);
  // The bound holds between batches of work (one request may overshoot it briefly).
  CHECK(peak_buffered <= (1 << 20) + 64 * 1024);
  REQUIRE(daemon.stop() == 0);
  const auto at_sink = spans_per_trace_at_sink(sink);
  std::size_t errors = 0;
  for (const auto& t : traces) {
    if (!t.error) continue;
    ++errors;
    REQUIRE(at_sink.count(hex(t.trace_id)) == 1);
    CHECK(at_sink.at(hex(t.trace_id)) == 4);
  }
  CHECK(at_sink.size() == errors);
}
