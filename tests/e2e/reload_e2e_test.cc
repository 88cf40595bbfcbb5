// SIGHUP reload: sampling policies, batch limits and the exporter change
// without a restart and without losing buffered spans; an invalid file is
// rejected and the running configuration keeps serving.
#include <doctest/doctest.h>
#include <signal.h>

#include "tests/e2e/harness.h"

using namespace spanrelay::e2e;

namespace {

std::string config_with(const Sink& sink, const std::string& policy,
                        const std::string& batch_timeout) {
  return "receivers:\n  otlp:\n    grpc: { endpoint: 127.0.0.1:0 }\n    http: { endpoint: "
         "127.0.0.1:0 }\n"
         "sampling:\n  decision_wait: 200ms\n  policies:\n    - " +
         policy + "\nbatch: { timeout: " + batch_timeout +
         " }\nexporter: { type: otlp_grpc, endpoint: " + sink.grpc_address() +
         " }\ntelemetry: { metrics: { endpoint: 127.0.0.1:0 } }\n";
}

double reloads(const Daemon& daemon, const char* result) {
  return daemon.metric(std::string("spanrelay_config_reloads_total{result=\"") + result + "\"}");
}

}  // namespace

TEST_CASE(
    "reload: SIGHUP swaps sampling policies and batch limits, rejects a bad file, keeps serving") {
  TempDir dir;
  Sink sink(dir);
  Daemon daemon(dir, config_with(sink, "{ name: none, type: ratio, ratio: 0 }", "50ms"), "relay");
  const auto config_path = dir.file("relay.yaml");

  // Ratio 0: everything is sampled out.
  std::vector<GeneratedSpan> first;
  REQUIRE(grpc_export(daemon.tcp_address("grpc"), serialize(make_request({.seed = 1}, &first)))
              .status == 0);
  REQUIRE(wait_until([&] {
    return daemon.metric("spanrelay_sampling_sampled_out_spans_total") ==
           static_cast<double>(first.size());
  }));
  CHECK(sink.span_count() == 0);

  // A new policy set: keep everything.
  write_file(config_path, config_with(sink, "{ name: everything, type: always }", "50ms"));
  daemon.process().signal(SIGHUP);
  REQUIRE(wait_until([&] { return reloads(daemon, "ok") == 1; }));
  std::vector<GeneratedSpan> second;
  REQUIRE(grpc_export(daemon.tcp_address("grpc"), serialize(make_request({.seed = 2}, &second)))
              .status == 0);
  REQUIRE(sink.wait_for_spans(second.size()));
  CHECK(daemon.metric("spanrelay_sampling_traces_total{decision=\"kept\",policy=\"everything\"}") >
        0);

  // An invalid file is rejected; the running configuration stays.
  write_file(config_path, "batch: { max_spans: lots }\n");
  daemon.process().signal(SIGHUP);
  REQUIRE(wait_until([&] { return reloads(daemon, "error") == 1; }));
  CHECK(daemon.process().log().find("batch.max_spans") != std::string::npos);
  std::vector<GeneratedSpan> third;
  REQUIRE(http_export(daemon.tcp_address("http"), serialize(make_request({.seed = 3}, &third)))
              .status == 200);
  REQUIRE(sink.wait_for_spans(second.size() + third.size()));

  // Spans buffered under a long batch timeout are not lost by a reload that shortens it.
  write_file(config_path, config_with(sink, "{ name: everything, type: always }", "1h"));
  daemon.process().signal(SIGHUP);
  REQUIRE(wait_until([&] { return reloads(daemon, "ok") == 2; }));
  std::vector<GeneratedSpan> fourth;
  REQUIRE(grpc_export(daemon.tcp_address("grpc"), serialize(make_request({.seed = 4}, &fourth)))
              .status == 0);
  REQUIRE(wait_until([&] {
    return daemon.metric("spanrelay_traces_in_flight") == 0 &&
           daemon.metric("spanrelay_queue_spans") == fourth.size();
  }));
  write_file(config_path, config_with(sink, "{ name: everything, type: always }", "50ms"));
  daemon.process().signal(SIGHUP);
  REQUIRE(wait_until([&] { return reloads(daemon, "ok") == 3; }));
  REQUIRE(sink.wait_for_spans(second.size() + third.size() + fourth.size()));
  CHECK(sink.span_count() == second.size() + third.size() + fourth.size());
}

TEST_CASE("reload: a listener change is reported as needing a restart") {
  TempDir dir;
  Sink sink(dir);
  Daemon daemon(dir, config_with(sink, "{ name: everything, type: always }", "50ms"), "relay");
  auto changed = config_with(sink, "{ name: everything, type: always }", "50ms");
  changed.replace(changed.find("http: { endpoint: 127.0.0.1:0 }"), 31, "http: { endpoint: \"\" }");
  write_file(dir.file("relay.yaml"), changed);
  daemon.process().signal(SIGHUP);
  REQUIRE(wait_until([&] { return reloads(daemon, "ok") == 1; }));
  CHECK(daemon.process().log().find("receivers.otlp.http changed but needs a restart") !=
        std::string::npos);
  // Still listening as before.
  std::vector<GeneratedSpan> spans;
  REQUIRE(http_export(daemon.tcp_address("http"), serialize(make_request({.seed = 5}, &spans)))
              .status == 200);
  REQUIRE(sink.wait_for_spans(spans.size()));
}
