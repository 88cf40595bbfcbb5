// OTEL_EXPORTER_OTLP_* variables configure the upstream when the YAML has no
// exporter section (daemon/config/otel_environment.cc). Every test passes its
// own fixed environment; the process environment is never read or changed.
#include <doctest/doctest.h>

#include <map>
#include <optional>
#include <string>

#include "daemon/config/config_loader.h"
#include "daemon/config/otel_environment.h"

using namespace std::chrono_literals;
using spanrelay::config::Compression;
using spanrelay::config::Config;
using spanrelay::config::describe;
using spanrelay::config::EnvironmentExporter;
using spanrelay::config::EnvironmentLookup;
using spanrelay::config::exporter_from_environment;
using spanrelay::config::ExporterType;
using spanrelay::config::load_config_string;
using spanrelay::config::parse_otel_headers;

namespace {

using Variables = std::map<std::string, std::string>;

EnvironmentLookup fake_environment(Variables variables) {
  return [variables = std::move(variables)](std::string_view name) -> std::optional<std::string> {
    const auto found = variables.find(std::string(name));
    if (found == variables.end()) return std::nullopt;
    return found->second;
  };
}

EnvironmentExporter from_environment(Variables variables) {
  const auto result = exporter_from_environment(fake_environment(std::move(variables)));
  if (!result.ok()) FAIL(result.error().message);
  if (!result.value()) FAIL("expected an exporter from the environment");
  return *result.value();
}

std::string environment_error(Variables variables) {
  const auto result = exporter_from_environment(fake_environment(std::move(variables)));
  if (result.ok()) FAIL("expected an error");
  return result.error().message;
}

std::map<std::string, std::string> headers_of(std::string_view text) {
  const auto result = parse_otel_headers("OTEL_EXPORTER_OTLP_HEADERS", text);
  if (!result.ok()) FAIL(result.error().message);
  return result.value();
}

std::string headers_error(std::string_view text) {
  const auto result = parse_otel_headers("OTEL_EXPORTER_OTLP_HEADERS", text);
  if (result.ok()) FAIL("expected an error for " << text);
  return result.error().message;
}

}  // namespace

TEST_CASE("config otel environment: nothing set (or only empty values) keeps the file exporter") {
  for (const Variables& variables :
       {Variables{}, Variables{{"OTEL_EXPORTER_OTLP_ENDPOINT", ""}, {"OTEL_SERVICE_NAME", "x"}},
        Variables{{"OTEL_EXPORTER_OTLP_PROTOCOL", ""}, {"OTEL_EXPORTER_OTLP_HEADERS", ""}}}) {
    const auto environment = fake_environment(variables);
    const auto direct = exporter_from_environment(environment);
    REQUIRE(direct.ok());
    CHECK_FALSE(direct.value().has_value());

    const auto loaded = load_config_string("batch: { max_spans: 8 }\n", "x.yaml", environment);
    REQUIRE(loaded.ok());
    CHECK(loaded.value().exporter.type == ExporterType::kFile);
    CHECK(loaded.value().exporter.path == "./var/spans.jsonl");
    CHECK(loaded.value().source == "x.yaml");
  }
}

TEST_CASE("config otel environment: an endpoint alone picks the protocol by its port") {
  const auto grpc = from_environment({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"}});
  CHECK(grpc.exporter.type == ExporterType::kOtlpGrpc);
  CHECK(grpc.exporter.endpoint == "collector:4317");
  CHECK(grpc.endpoint_variable == "OTEL_EXPORTER_OTLP_ENDPOINT");
  // The spec's defaults, not the YAML's: no compression, 10s.
  CHECK(grpc.exporter.compression == Compression::kNone);
  CHECK(grpc.exporter.timeout == 10s);
  CHECK(grpc.exporter.headers.empty());

  const auto other_port = from_environment({{"OTEL_EXPORTER_OTLP_ENDPOINT", "collector:55680"}});
  CHECK(other_port.exporter.type == ExporterType::kOtlpGrpc);
  CHECK(other_port.exporter.endpoint == "collector:55680");

  const auto http = from_environment({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"}});
  CHECK(http.exporter.type == ExporterType::kOtlpHttp);
  CHECK(http.exporter.endpoint == "http://collector:4318");

  const auto http_prefix =
      from_environment({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://[::1]:4318/otlp/"}});
  CHECK(http_prefix.exporter.type == ExporterType::kOtlpHttp);
  CHECK(http_prefix.exporter.endpoint == "http://[::1]:4318/otlp");
}

TEST_CASE("config otel environment: the protocol variables override the port rule") {
  const auto grpc_on_4318 = from_environment(
      {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"}, {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}});
  CHECK(grpc_on_4318.exporter.type == ExporterType::kOtlpGrpc);
  CHECK(grpc_on_4318.exporter.endpoint == "c:4318");

  const auto http_on_80 = from_environment({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:80"},
                                            {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"}});
  CHECK(http_on_80.exporter.type == ExporterType::kOtlpHttp);
  CHECK(http_on_80.exporter.endpoint == "http://c:80");

  // The signal-specific one wins.
  const auto traces = from_environment({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"},
                                        {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"},
                                        {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"}});
  CHECK(traces.exporter.type == ExporterType::kOtlpHttp);
  CHECK(traces.exporter.endpoint == "http://c:4317");
}

TEST_CASE("config otel environment: the traces endpoint wins and is a full URL") {
  const auto http = from_environment(
      {{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces.example:4318/v1/traces"},
       {"OTEL_EXPORTER_OTLP_ENDPOINT", "http://general.example:4317"}});
  CHECK(http.exporter.type == ExporterType::kOtlpHttp);
  CHECK(http.exporter.endpoint == "http://traces.example:4318");
  CHECK(http.endpoint_variable == "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");

  const auto prefixed =
      from_environment({{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://gw:8080/tenant-a/v1/traces"},
                        {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"}});
  CHECK(prefixed.exporter.endpoint == "http://gw:8080/tenant-a");

  const auto grpc =
      from_environment({{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces.example:4317"}});
  CHECK(grpc.exporter.type == ExporterType::kOtlpGrpc);
  CHECK(grpc.exporter.endpoint == "traces.example:4317");

  // An empty signal-specific value counts as unset.
  const auto fallback = from_environment({{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ""},
                                          {"OTEL_EXPORTER_OTLP_ENDPOINT", "http://g:4317"}});
  CHECK(fallback.endpoint_variable == "OTEL_EXPORTER_OTLP_ENDPOINT");
  CHECK(fallback.exporter.endpoint == "g:4317");

  CHECK(environment_error({{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/otlp"}}) ==
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: expected the full traces URL, ending in /v1/traces, "
        "such as http://collector:4318/v1/traces (or give the base URL in "
        "OTEL_EXPORTER_OTLP_ENDPOINT)");
}

TEST_CASE("config otel environment: bad protocols and endpoints are errors naming the variable") {
  CHECK(environment_error({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"},
                           {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"}}) ==
        "OTEL_EXPORTER_OTLP_PROTOCOL: http/json is not supported for the upstream; use "
        "http/protobuf");
  CHECK(environment_error({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"},
                           {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "thrift"}}) ==
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: expected grpc or http/protobuf, got \"thrift\"");
  CHECK(environment_error({{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4317"}})
            .rfind("OTEL_EXPORTER_OTLP_ENDPOINT: https:// is not a gRPC target", 0) == 0);
  CHECK(environment_error({{"OTEL_EXPORTER_OTLP_ENDPOINT", "collector"}}) ==
        "OTEL_EXPORTER_OTLP_ENDPOINT: expected host:port such as 127.0.0.1:4317 or [::1]:4317, "
        "got \"collector\"");
  CHECK(environment_error({{"OTEL_EXPORTER_OTLP_ENDPOINT", "c:4318"},
                           {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"}})
            .rfind("OTEL_EXPORTER_OTLP_ENDPOINT: expected a URL http://host:port[/path]", 0) == 0);

  CHECK(environment_error({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://user:pa55word@c:4317"}}) ==
        "OTEL_EXPORTER_OTLP_ENDPOINT: credentials in the endpoint are not supported; put them in "
        "OTEL_EXPORTER_OTLP_HEADERS");
  CHECK(environment_error({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://user:pa55word@c:4318"},
                           {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"}}) ==
        "OTEL_EXPORTER_OTLP_ENDPOINT: credentials in the URL are not supported; put them in "
        "OTEL_EXPORTER_OTLP_HEADERS");
}

TEST_CASE("config otel environment: setting anything but an endpoint is an error") {
  // An SDK would default to localhost:4317, which is this relay's own receiver.
  CHECK(environment_error({{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}}) ==
        "OTEL_EXPORTER_OTLP_PROTOCOL: set, but neither OTEL_EXPORTER_OTLP_TRACES_ENDPOINT nor "
        "OTEL_EXPORTER_OTLP_ENDPOINT is; give the upstream's address in one of them (the SDK "
        "default, localhost, is spanrelay's own receiver)");
  CHECK(environment_error({{"OTEL_EXPORTER_OTLP_TRACES_HEADERS", "a=1"}})
            .rfind("OTEL_EXPORTER_OTLP_TRACES_HEADERS: set, but neither", 0) == 0);
}

TEST_CASE("config otel environment: compression and timeout") {
  const Variables endpoint{{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"}};
  auto with = [&](Variables extra) {
    extra.insert(endpoint.begin(), endpoint.end());
    return extra;
  };
  CHECK(from_environment(with({{"OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"}})).exporter.compression ==
        Compression::kGzip);
  CHECK(from_environment(with({{"OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"},
                               {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none"}}))
            .exporter.compression == Compression::kNone);
  CHECK(environment_error(with({{"OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"}})) ==
        "OTEL_EXPORTER_OTLP_COMPRESSION: expected gzip or none, got \"zstd\"");

  CHECK(from_environment(with({{"OTEL_EXPORTER_OTLP_TIMEOUT", "2500"}})).exporter.timeout ==
        2500ms);
  CHECK(from_environment(with({{"OTEL_EXPORTER_OTLP_TIMEOUT", "2500"},
                               {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "30000"}}))
            .exporter.timeout == 30s);
  for (const std::string bad : {"5s", "0", "-1", "1.5", " 100", "99999999999"}) {
    CAPTURE(bad);
    CHECK(environment_error(with({{"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", bad}})) ==
          "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: expected a whole number of milliseconds from 1 to "
          "86400000, such as 10000; got \"" +
              bad + "\"");
  }
}

TEST_CASE("config otel environment: headers are key=value pairs with percent-decoded values") {
  CHECK(
      headers_of("Authorization=Bearer%20abc%3D%3D, x-tenant = acme ,,") ==
      std::map<std::string, std::string>{{"authorization", "Bearer abc=="}, {"x-tenant", "acme"}});
  CHECK(headers_of("a=1+2%2b3%2C4%25") == std::map<std::string, std::string>{{"a", "1+2+3,4%"}});
  CHECK(headers_of("api-key=k=v==") == std::map<std::string, std::string>{{"api-key", "k=v=="}});
  CHECK(headers_of("empty=") == std::map<std::string, std::string>{{"empty", ""}});
  CHECK(headers_of("").empty());

  // The signal-specific variable replaces the general one.
  const auto headers = from_environment({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"},
                                         {"OTEL_EXPORTER_OTLP_HEADERS", "a=1,b=2"},
                                         {"OTEL_EXPORTER_OTLP_TRACES_HEADERS", "c=3"}});
  CHECK(headers.exporter.headers == std::map<std::string, std::string>{{"c", "3"}});
}

TEST_CASE("config otel environment: bad headers are errors that never show a value") {
  const std::string secret = "Zm9vOmJhcg";
  CHECK(headers_error(secret) ==
        "OTEL_EXPORTER_OTLP_HEADERS: entry 1 is not key=value (entries are separated by commas)");
  CHECK(headers_error("a=1, " + secret + " x=2") ==
        "OTEL_EXPORTER_OTLP_HEADERS: entry 2 does not start with a valid header name (letters, "
        "digits and !#$%&'*+-.^_`|~ only)");
  CHECK(headers_error("authorization=" + secret + "%zz") ==
        "OTEL_EXPORTER_OTLP_HEADERS: the value of header \"authorization\" is not valid "
        "percent-encoding (% must be followed by two hex digits)");
  CHECK(headers_error("authorization=" + secret + "%4") ==
        "OTEL_EXPORTER_OTLP_HEADERS: the value of header \"authorization\" is not valid "
        "percent-encoding (% must be followed by two hex digits)");
  CHECK(headers_error("authorization=" + secret + "%0Ax") ==
        "OTEL_EXPORTER_OTLP_HEADERS: header \"authorization\": header values must be printable "
        "ASCII (no line breaks or control characters)");
  CHECK(headers_error("X-Key=1,x-key=" + secret) ==
        "OTEL_EXPORTER_OTLP_HEADERS: duplicate header \"x-key\" (header names are "
        "case-insensitive)");
}

TEST_CASE("config otel environment: only without an exporter section, and source says so") {
  const auto environment =
      fake_environment({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector.example:4318"},
                        {"OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=top-secret-key"},
                        {"OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"}});
  const auto loaded = load_config_string("batch: { max_spans: 8 }\n", "x.yaml", environment);
  REQUIRE(loaded.ok());
  const Config& config = loaded.value();
  CHECK(config.source == "x.yaml (exporter from OTEL_EXPORTER_OTLP_ENDPOINT)");
  CHECK(config.exporter.type == ExporterType::kOtlpHttp);
  CHECK(config.exporter.endpoint == "http://collector.example:4318");
  CHECK(config.exporter.compression == Compression::kGzip);
  CHECK(config.exporter.headers.at("x-api-key") == "top-secret-key");
  // Everything else about the exporter keeps its default.
  CHECK(config.exporter.max_in_flight == 4);
  CHECK(config.exporter.retry.enabled);
  const std::string summary = describe(config);
  CHECK(summary.rfind("config: x.yaml (exporter from OTEL_EXPORTER_OTLP_ENDPOINT)\n", 0) == 0);
  CHECK(summary.find("exporter: otlp_http endpoint=http://collector.example:4318 "
                     "compression=gzip") != std::string::npos);
  CHECK(summary.find("top-secret-key") == std::string::npos);
  CHECK(summary.find("x-api-key=<redacted>") != std::string::npos);

  // An exporter section in the YAML wins, even over variables that are invalid.
  const auto bad_environment = fake_environment({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"},
                                                 {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"}});
  const auto from_yaml = load_config_string(
      "exporter: { type: otlp_grpc, endpoint: 'yaml.example:4317' }\n", "y.yaml", bad_environment);
  REQUIRE(from_yaml.ok());
  CHECK(from_yaml.value().source == "y.yaml");
  CHECK(from_yaml.value().exporter.endpoint == "yaml.example:4317");
}

TEST_CASE("config otel environment: loader errors name the file and the variable") {
  const auto environment = fake_environment({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"},
                                             {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"}});
  const auto loaded = load_config_string("", "x.yaml", environment);
  REQUIRE_FALSE(loaded.ok());
  CHECK(loaded.error().message ==
        "x.yaml: OTEL_EXPORTER_OTLP_PROTOCOL: http/json is not supported for the upstream; use "
        "http/protobuf");

  // An error in the file comes first.
  const auto file_error =
      load_config_string("service: { shutdown_timeout: 0s }\n", "x.yaml", environment);
  REQUIRE_FALSE(file_error.ok());
  CHECK(file_error.error().message ==
        "x.yaml:1:30: service.shutdown_timeout: expected a duration above 0, got \"0s\"");

  // Header values from the environment are not echoed through the loader either.
  const auto headers = load_config_string(
      "", "x.yaml",
      fake_environment({{"OTEL_EXPORTER_OTLP_ENDPOINT", "c:4317"},
                        {"OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%0Dtop-secret"}}));
  REQUIRE_FALSE(headers.ok());
  CHECK(headers.error().message.find("top-secret") == std::string::npos);
}
