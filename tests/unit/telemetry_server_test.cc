#include "daemon/telemetry/telemetry_server.h"

#include <doctest/doctest.h>

#include <mutex>
#include <optional>
#include <sstream>
#include <string>

#include "daemon/receivers/ingest.h"
#include "daemon/receivers/otlp_http_receiver.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "tests/unit/http_test_client.h"

using namespace spanrelay;
using spanrelay::testing::http_roundtrip;
using spanrelay::testing::HttpTestClient;
namespace http = receivers::http;

namespace {

class AcceptingConsumer : public receivers::SpanConsumer {
 public:
  receivers::Admission consume(otlp::ScannedRequest&&) override { return {}; }
};

// Readiness the test can flip, read from the io thread.
class Readiness {
 public:
  void set(std::optional<std::string> reason) {
    std::lock_guard lock(mutex_);
    reason_ = std::move(reason);
  }
  std::optional<std::string> get() {
    std::lock_guard lock(mutex_);
    return reason_;
  }

 private:
  std::mutex mutex_;
  std::optional<std::string> reason_;
};

testing::TestResponse get(const std::string& address, const std::string& target) {
  return http_roundtrip(address, HttpTestClient::make_request(http::verb::get, target));
}

// The value of the series whose line starts with `series`, or "" if absent.
std::string series_value(const std::string& text, const std::string& series) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(series + " ", 0) == 0) return line.substr(series.size() + 1);
  }
  return {};
}

}  // namespace

TEST_CASE("telemetry_server: /metrics shows the receiver counters after a request") {
  telemetry::Registry registry;
  AcceptingConsumer consumer;
  receivers::Ingest ingest(consumer, registry, receivers::IngestLimits{});
  receivers::OtlpHttpReceiver receiver(ingest, 4u << 20);
  receivers::HttpServer otlp(receiver.server_options("otlp-http"), receiver.handler());
  REQUIRE(otlp.listen_tcp("127.0.0.1:0").ok());
  otlp.start();

  telemetry::TelemetryServer telemetry(registry, nullptr);
  REQUIRE(telemetry.listen("127.0.0.1:0").ok());
  telemetry.start();
  const auto address = telemetry.bound_addresses().at(0);
  const std::string series =
      R"(spanrelay_receiver_accepted_spans_total{transport="http",encoding="protobuf"})";

  auto before = get(address, "/metrics");
  CHECK(before.result() == http::status::ok);
  CHECK(before[http::field::content_type] == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(series_value(before.body(), series) == "0");

  opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest request;
  auto* spans = request.add_resource_spans()->add_scope_spans();
  for (int i = 0; i < 2; ++i) {
    auto* span = spans->add_spans();
    span->set_trace_id(std::string(16, '\x01'));
    span->set_span_id(std::string(8, static_cast<char>(i + 1)));
  }
  auto posted = http_roundtrip(
      otlp.bound_addresses().at(0),
      HttpTestClient::make_request(http::verb::post, "/v1/traces", request.SerializeAsString(),
                                   {{"Content-Type", "application/x-protobuf"}}));
  REQUIRE(posted.result() == http::status::ok);

  auto after = get(address, "/metrics?format=text");
  CHECK(series_value(after.body(), series) == "2");
  CHECK(after.body().find("# TYPE spanrelay_receiver_accepted_spans_total counter") !=
        std::string::npos);
}

TEST_CASE("telemetry_server: /healthz, /readyz with a reason, and unknown routes") {
  telemetry::Registry registry;
  Readiness readiness;
  readiness.set("spool directory /var/lib/spanrelay is not writable");
  telemetry::TelemetryServer server(registry, [&readiness] { return readiness.get(); });
  REQUIRE(server.listen("127.0.0.1:0").ok());
  server.start();
  const auto address = server.bound_addresses().at(0);

  auto health = get(address, "/healthz");
  CHECK(health.result() == http::status::ok);
  CHECK(health.body() == "ok\n");

  auto not_ready = get(address, "/readyz");
  CHECK(not_ready.result() == http::status::service_unavailable);
  CHECK(not_ready.body() == "not ready: spool directory /var/lib/spanrelay is not writable\n");

  readiness.set(std::nullopt);
  auto ready = get(address, "/readyz");
  CHECK(ready.result() == http::status::ok);
  CHECK(ready.body() == "ready\n");

  CHECK(get(address, "/").result() == http::status::not_found);
  auto post = http_roundtrip(address, HttpTestClient::make_request(http::verb::post, "/metrics"));
  CHECK(post.result() == http::status::method_not_allowed);
  CHECK(post[http::field::allow] == "GET");
}

TEST_CASE("telemetry_server: listen errors, and shutdown is idempotent") {
  telemetry::Registry registry;
  telemetry::TelemetryServer server(registry, nullptr);
  auto bad = server.listen("localhost");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("cannot listen on localhost") != std::string::npos);

  REQUIRE(server.listen("127.0.0.1:0").ok());
  server.start();
  const auto address = server.bound_addresses().at(0);
  CHECK(get(address, "/healthz").result() == http::status::ok);
  server.shutdown();
  server.shutdown();
  CHECK_THROWS(HttpTestClient{address});

  telemetry::TelemetryServer never_started(registry, nullptr);
  never_started.shutdown();
  never_started.shutdown();
  CHECK(never_started.bound_addresses().empty());
}
