// The load-balancing keys of the exporter section (issue 8) reach the Config
// with the documented values and defaults; the error texts are golden files
// (tests/testdata/config/invalid/lb_*.yaml), checked by config_loader_test.cc.
#include <doctest/doctest.h>

#include <optional>

#include "daemon/config/config_loader.h"
#include "daemon/config/load_balancing_section.h"

using namespace std::chrono_literals;
using spanrelay::config::Config;
using spanrelay::config::EnvironmentLookup;
using spanrelay::config::ExporterType;
using spanrelay::config::load_config_file;
using spanrelay::config::load_config_string;
using spanrelay::config::RoutingKey;

namespace {

const EnvironmentLookup kNoEnvironment = [](std::string_view) -> std::optional<std::string> {
  return std::nullopt;
};

Config load(const std::string& yaml) {
  const auto result = load_config_string(yaml, "lb.yaml", kNoEnvironment);
  if (!result.ok()) FAIL(result.error().message);
  return result.value();
}

}  // namespace

TEST_CASE("config load balancing: a static list is normalized and keeps its defaults") {
  const Config config =
      load_config_file(SPANRELAY_TESTDATA_DIR "/config/valid/load_balancing_endpoints.yaml",
                       kNoEnvironment)
          .value();
  CHECK(config.exporter.endpoint.empty());
  CHECK(config.exporter.endpoints == std::vector<std::string>{"gateway-0.obs.svc:4317",
                                                              "gateway-1.obs.svc:4317",
                                                              "gateway-2.obs.svc:4317"});
  CHECK(config.exporter.routing_key == RoutingKey::kTraceId);
  CHECK(config.exporter.dns.hostname.empty());
  CHECK(config.exporter.ejection.consecutive_failures == 5);
  CHECK(config.exporter.ejection.base_time == 30s);
  CHECK(config.exporter.ejection.max_time == 5min);
  CHECK(config.exporter.queue.spool.dir == "/var/lib/spanrelay/spool");
}

TEST_CASE("config load balancing: the DNS resolver as the issue writes it") {
  const Config config =
      load_config_file(SPANRELAY_TESTDATA_DIR "/config/valid/load_balancing_dns.yaml",
                       kNoEnvironment)
          .value();
  CHECK(config.exporter.endpoints.empty());
  CHECK(config.exporter.dns.hostname == "gateway-headless.obs.svc");
  CHECK(config.exporter.dns.port == 4317);
  CHECK(config.exporter.dns.interval == 5s);
}

TEST_CASE("config load balancing: the DNS port defaults by protocol; interval defaults to 5s") {
  const Config grpc =
      load("exporter:\n  type: otlp_grpc\n  resolver: { dns: { hostname: gw.obs.svc } }\n");
  CHECK(grpc.exporter.dns.port == 4317);
  CHECK(grpc.exporter.dns.interval == 5s);
  const Config http = load(
      "exporter:\n  type: otlp_http\n  resolver: { dns: { hostname: gw.obs.svc, interval: 30s } "
      "}\n");
  CHECK(http.exporter.dns.port == 4318);
  CHECK(http.exporter.dns.interval == 30s);
}

TEST_CASE("config load balancing: otlp_http members, service routing and the ejection rule") {
  const Config config =
      load_config_file(SPANRELAY_TESTDATA_DIR "/config/valid/load_balancing_every_option.yaml",
                       kNoEnvironment)
          .value();
  CHECK(config.exporter.type == ExporterType::kOtlpHttp);
  CHECK(config.exporter.endpoints == std::vector<std::string>{"http://10.0.0.1:4318",
                                                              "http://10.0.0.2:4318/otlp",
                                                              "http://[fd00::3]:4318"});
  CHECK(config.exporter.routing_key == RoutingKey::kService);
  CHECK(config.exporter.ejection.consecutive_failures == 3);
  CHECK(config.exporter.ejection.base_time == 10s);
  CHECK(config.exporter.ejection.max_time == 2min);
  CHECK(spanrelay::config::routing_key_name(RoutingKey::kService) == "service");
  CHECK(spanrelay::config::routing_key_name(RoutingKey::kTraceId) == "traceID");
}

TEST_CASE("config load balancing: gRPC members lose an http:// scheme like endpoint does") {
  const Config config = load(
      "exporter:\n  type: otlp_grpc\n  endpoints: [ \"http://10.0.0.1:4317\", \"10.0.0.2:4317\" "
      "]\n");
  CHECK(config.exporter.endpoints == std::vector<std::string>{"10.0.0.1:4317", "10.0.0.2:4317"});
}

TEST_CASE("config load balancing: one endpoint keeps today's meaning; routing keys are accepted") {
  const Config config =
      load("exporter:\n  type: otlp_grpc\n  endpoint: gw:4317\n  routing_key: service\n");
  CHECK(config.exporter.endpoint == "gw:4317");
  CHECK(config.exporter.endpoints.empty());
  CHECK(config.exporter.dns.hostname.empty());
}
