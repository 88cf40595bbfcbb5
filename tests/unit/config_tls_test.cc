// exporter.tls, exporter.auth and receivers.otlp.grpc.tls (issue 7,
// "Transport security"): what the keys turn into. The error texts are the
// golden files tests/testdata/config/invalid/tls_*.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "daemon/config/config_loader.h"
#include "daemon/exporters/credential_files.h"
#include "daemon/exporters/exporter.h"
#include "daemon/exporters/http_exporter.h"

using spanrelay::config::Config;
using spanrelay::config::EnvironmentLookup;
using spanrelay::config::load_config_file;
using spanrelay::config::load_config_string;
using spanrelay::config::TlsVersion;

namespace {

const EnvironmentLookup kNoVariables = [](std::string_view) -> std::optional<std::string> {
  return std::nullopt;
};

Config load_tls_valid(const std::string& name) {
  const auto path = std::filesystem::path(SPANRELAY_TESTDATA_DIR) / "config" / "valid" / name;
  auto result = load_config_file(path.string(), kNoVariables);
  REQUIRE_MESSAGE(result.ok(), (result.ok() ? "" : result.error().message));
  return std::move(result).value();
}

std::string load_error(const std::string& yaml) {
  const auto result = load_config_string(yaml, "t.yaml", kNoVariables);
  REQUIRE_FALSE(result.ok());
  return result.error().message;
}

}  // namespace

TEST_CASE("config tls: otlp_grpc with a tls section is TLS with the files as written") {
  const Config config = load_tls_valid("tls_grpc_mtls.yaml");
  const auto& tls = config.exporter.tls;
  CHECK(tls.enabled);
  CHECK_FALSE(tls.insecure);
  CHECK(tls.ca_file == "/etc/spanrelay/upstream/ca.crt");
  CHECK(tls.cert_file == "/etc/spanrelay/upstream/client.crt");
  CHECK(tls.key_file == "/etc/spanrelay/upstream/client.key");
  CHECK(tls.server_name == "gateway.obs.svc");
  CHECK(tls.min_version == TlsVersion::kTls12);
  CHECK(config.exporter.auth.bearer_token_file == "/var/run/secrets/spanrelay/token");
  const auto& receiver = config.receivers.grpc.tls;
  CHECK(receiver.enabled);
  CHECK(receiver.cert_file == "/etc/spanrelay/tls/server.crt");
  CHECK(receiver.key_file == "/etc/spanrelay/tls/server.key");
  CHECK(receiver.client_ca_file == "/etc/spanrelay/tls/clients-ca.crt");
  CHECK_FALSE(config.receivers.http.tls.enabled);
}

TEST_CASE("config tls: otlp_http over https:// is TLS without a tls section's files") {
  const Config config = load_tls_valid("tls_http_https.yaml");
  CHECK(config.exporter.endpoint == "https://collector.example.com:4318/otlp");
  CHECK(config.exporter.tls.enabled);
  CHECK(config.exporter.tls.ca_file.empty());  // the system trust store
  CHECK(config.exporter.tls.min_version == TlsVersion::kTls13);
}

TEST_CASE("config tls: insecure: true and no tls section are plaintext") {
  CHECK_FALSE(load_tls_valid("tls_insecure.yaml").exporter.tls.enabled);
  const auto plain = load_config_string("exporter: { type: otlp_grpc, endpoint: 'c:4317' }\n",
                                        "p.yaml", kNoVariables);
  REQUIRE(plain.ok());
  CHECK_FALSE(plain.value().exporter.tls.enabled);
  CHECK(plain.value().exporter.auth.bearer_token_file.empty());
}

TEST_CASE("config tls: TLS over a list of otlp_http endpoints is all or nothing") {
  const auto all = load_config_string(
      "exporter: { type: otlp_http, endpoints: ['https://a:4318', 'https://b:4318'] }\n", "a.yaml",
      kNoVariables);
  REQUIRE(all.ok());
  CHECK(all.value().exporter.tls.enabled);
  CHECK(load_error("exporter: { type: otlp_http, endpoints: ['https://a:4318', "
                   "'http://b:4318'] }\n")
            .find("mixes http:// and https://") != std::string::npos);
}

TEST_CASE("config tls: a bearer token file that is empty is refused, the token never echoed") {
  const auto dir = std::filesystem::temp_directory_path() / "spanrelay-config-tls-test";
  std::filesystem::create_directories(dir);
  const auto path = (dir / "token").string();
  std::ofstream(path) << "s3cret-token\n";
  auto token = spanrelay::exporters::BearerToken::open(path);
  REQUIRE(token.ok());
  CHECK(token.value()->header_value() == "Bearer s3cret-token");  // newline trimmed
  std::ofstream(path, std::ios::trunc) << "\n";
  const auto empty = spanrelay::exporters::BearerToken::open(path);
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.error().message.find(path) != std::string::npos);
  std::ofstream(path, std::ios::trunc) << "two words\n";
  const auto spaced = spanrelay::exporters::BearerToken::open(path);
  REQUIRE_FALSE(spaced.ok());
  CHECK(spaced.error().message.find("two") == std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("config tls: a file watch reports a rewritten file once") {
  const auto dir = std::filesystem::temp_directory_path() / "spanrelay-config-tls-watch";
  std::filesystem::create_directories(dir);
  const auto path = (dir / "ca.pem").string();
  std::ofstream(path) << "one\n";
  spanrelay::exporters::FileWatch watch({path}, std::chrono::milliseconds(0));
  CHECK_FALSE(watch.poll());
  std::ofstream(path, std::ios::trunc) << "second content\n";  // the size changes
  CHECK(watch.poll());
  CHECK_FALSE(watch.poll());
  watch.retry_later();
  CHECK(watch.poll());
  std::filesystem::remove_all(dir);
}

TEST_CASE(
    "config tls: https:// endpoints default to port 443, and unreadable TLS files fail "
    "exporter creation naming the setting") {
  const auto endpoint = spanrelay::exporters::parse_http_endpoint("https://collector/otlp");
  REQUIRE(endpoint.ok());
  CHECK(endpoint.value().https);
  CHECK(endpoint.value().port == "443");
  CHECK(endpoint.value().target == "/otlp/v1/traces");

  for (const auto type :
       {spanrelay::config::ExporterType::kOtlpGrpc, spanrelay::config::ExporterType::kOtlpHttp}) {
    spanrelay::config::ExporterConfig config;
    config.type = type;
    config.endpoint = type == spanrelay::config::ExporterType::kOtlpGrpc ? "127.0.0.1:4317"
                                                                         : "https://127.0.0.1:4318";
    config.tls.enabled = true;
    config.tls.ca_file = "/nonexistent/spanrelay-ca.crt";
    const auto made = spanrelay::exporters::make_exporter(config);
    REQUIRE_FALSE(made.ok());
    CHECK(made.error().message.rfind("exporter.tls.ca_file: cannot read /nonexistent", 0) == 0);

    config.tls.ca_file.clear();
    config.auth.bearer_token_file = "/nonexistent/token";
    const auto without_token = spanrelay::exporters::make_exporter(config);
    REQUIRE_FALSE(without_token.ok());
    CHECK(without_token.error().message.find("exporter.auth.bearer_token_file") !=
          std::string::npos);
  }
}
