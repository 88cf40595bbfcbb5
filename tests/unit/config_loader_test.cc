#include "daemon/config/config_loader.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using spanrelay::config::Compression;
using spanrelay::config::Config;
using spanrelay::config::describe;
using spanrelay::config::EnvironmentLookup;
using spanrelay::config::ExporterType;
using spanrelay::config::FsyncPolicy;
using spanrelay::config::load_config_file;
using spanrelay::config::load_config_string;
using spanrelay::config::WhenFull;

namespace {

const fs::path kConfigTestData = fs::path(SPANRELAY_TESTDATA_DIR) / "config";
const std::string kShippedConfig = SPANRELAY_TESTDATA_DIR "/../../config/spanrelay.yaml";

// The tests never read the real environment: an OTEL_EXPORTER_OTLP_ENDPOINT
// set on a CI machine must not change what a config without an exporter means.
const EnvironmentLookup kNoEnvironment = [](std::string_view) -> std::optional<std::string> {
  return std::nullopt;
};

// What the golden invalid/expand_*.yaml files see. The secret must never show
// up in an error message (checked for every golden file).
const std::string kGoldenSecret = "hunter2-secret";
const EnvironmentLookup kGoldenEnvironment =
    [](std::string_view name) -> std::optional<std::string> {
  if (name == "SPANRELAY_TEST_SECRET") return kGoldenSecret;
  return std::nullopt;
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

std::vector<fs::path> yaml_files_in(const fs::path& directory) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(directory)) {
    if (entry.path().extension() == ".yaml") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Uncomments the example block whose first line is "<indent># <first_line>":
// it and the lines after it that start with "<indent>#" lose the "# " (or
// "#") after the indent, up to the first line that does not.
std::string uncomment_example(const std::string& yaml, const std::string& indent,
                              const std::string& first_line) {
  std::istringstream in(yaml);
  std::string out;
  bool in_block = false;
  for (std::string line; std::getline(in, line);) {
    if (line == indent + "# " + first_line) in_block = true;
    if (in_block && line.rfind(indent + "#", 0) != 0) in_block = false;
    if (in_block) {
      const std::size_t marker = line.rfind(indent + "# ", 0) == 0 ? 2 : 1;
      line.erase(indent.size(), marker);
    }
    out += line + "\n";
  }
  return out;
}

Config load_valid(const std::string& name) {
  const auto result = load_config_file((kConfigTestData / "valid" / name).string(), kNoEnvironment);
  if (!result.ok()) FAIL(result.error().message);
  return result.value();
}

}  // namespace

TEST_CASE("config loader: the shipped config/spanrelay.yaml loads and runs without an upstream") {
  const auto result = load_config_file(kShippedConfig, kNoEnvironment);
  REQUIRE_MESSAGE(result.ok(), (result.ok() ? "" : result.error().message));
  const Config& config = result.value();
  CHECK(config.source == kShippedConfig);
  CHECK(config.receivers.grpc.endpoint == "127.0.0.1:4317");
  CHECK(config.receivers.grpc.unix_socket == "./var/run/otlp-grpc.sock");
  CHECK(config.receivers.grpc.unix_socket_mode == 0660);
  CHECK(config.receivers.http.endpoint == "127.0.0.1:4318");
  CHECK(config.receivers.http.unix_socket == "./var/run/otlp-http.sock");
  CHECK(config.exporter.type == ExporterType::kFile);
  CHECK(config.exporter.path == "./var/spans.jsonl");
  CHECK(config.telemetry.metrics_endpoint == "127.0.0.1:8888");
  CHECK(config.telemetry.log_level == "info");
  // Sampling and the spool are shipped as commented-out examples.
  CHECK_FALSE(config.sampling.enabled);
  CHECK(config.exporter.queue.spool.dir.empty());
}

TEST_CASE("config loader: the shipped sampling and spool examples load once uncommented") {
  const std::string shipped = read_file(kShippedConfig);
  std::string uncommented = uncomment_example(shipped, "", "sampling:");
  uncommented = uncomment_example(uncommented, "    ", "spool:");
  REQUIRE(uncommented != shipped);
  const auto result = load_config_string(uncommented, "uncommented.yaml", kNoEnvironment);
  REQUIRE_MESSAGE(result.ok(), (result.ok() ? "" : result.error().message));
  const Config& config = result.value();
  CHECK(config.sampling.enabled);
  CHECK(config.sampling.decision_wait == 5s);
  REQUIRE(config.sampling.policies.size() == 6);
  CHECK(config.sampling.policies.front().name == "no-health");
  CHECK(config.sampling.policies.back().name == "cap");
  CHECK(config.exporter.queue.spool.dir == "/var/lib/spanrelay/spool");
  CHECK(config.exporter.queue.spool.max_size == 1ull << 30);
}

TEST_CASE("config loader: every valid/*.yaml loads") {
  const auto files = yaml_files_in(kConfigTestData / "valid");
  REQUIRE(files.size() >= 5);
  for (const auto& file : files) {
    CAPTURE(file.filename().string());
    const auto result = load_config_file(file.string(), kNoEnvironment);
    CHECK_MESSAGE(result.ok(), (result.ok() ? "" : result.error().message));
  }
}

TEST_CASE("config loader: every invalid/*.yaml fails with exactly the text of its .err file") {
  const auto files = yaml_files_in(kConfigTestData / "invalid");
  REQUIRE(files.size() >= 15);
  for (const auto& file : files) {
    const std::string name = file.filename().string();
    CAPTURE(name);
    fs::path expected_path = file;
    expected_path.replace_extension(".err");
    REQUIRE(fs::exists(expected_path));
    std::string expected = read_file(expected_path);
    while (!expected.empty() && expected.back() == '\n') expected.pop_back();

    // The file name is given as the source, so messages read "name.yaml:L:C: ...".
    const auto result = load_config_string(read_file(file), name, kGoldenEnvironment);
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().message == expected);
    CHECK(result.error().message.find(kGoldenSecret) == std::string::npos);
  }
  // And no stray .err without its .yaml.
  for (const auto& entry : fs::directory_iterator(kConfigTestData / "invalid")) {
    if (entry.path().extension() != ".err") continue;
    fs::path yaml = entry.path();
    yaml.replace_extension(".yaml");
    CAPTURE(entry.path().filename().string());
    CHECK(fs::exists(yaml));
  }
}

TEST_CASE("config loader: an empty file or empty sections give every default") {
  for (const std::string name : {"empty.yaml", "empty_sections.yaml"}) {
    CAPTURE(name);
    const Config config = load_valid(name);
    const Config defaults;
    CHECK(config.receivers.grpc.endpoint == defaults.receivers.grpc.endpoint);
    CHECK(config.receivers.grpc.unix_socket.empty());
    CHECK(config.receivers.http.endpoint == defaults.receivers.http.endpoint);
    CHECK(config.receivers.max_request_size == defaults.receivers.max_request_size);
    CHECK(config.batch.max_spans == defaults.batch.max_spans);
    CHECK(config.batch.timeout == defaults.batch.timeout);
    CHECK(config.exporter.type == ExporterType::kFile);
    CHECK(config.exporter.path == "./var/spans.jsonl");
    CHECK(config.telemetry.metrics_endpoint == defaults.telemetry.metrics_endpoint);
    CHECK(config.service.shutdown_timeout == defaults.service.shutdown_timeout);
  }
}

TEST_CASE("config loader: the documented YAML shape loads with the documented values") {
  const Config config = load_valid("contract_example.yaml");
  CHECK(config.receivers.grpc.unix_socket == "/run/spanrelay/otlp-grpc.sock");
  CHECK(config.receivers.http.unix_socket == "/run/spanrelay/otlp-http.sock");
  CHECK(config.receivers.http.unix_socket_mode == 0660);
  CHECK(config.exporter.type == ExporterType::kOtlpGrpc);
  CHECK(config.exporter.endpoint == "collector.example:4317");
  CHECK(config.exporter.compression == Compression::kGzip);
  CHECK(config.exporter.headers == std::map<std::string, std::string>{{"x-tenant", "demo"}});
  CHECK(config.exporter.retry.max_elapsed == 5min);
  CHECK(config.exporter.queue.memory_limit == 64ull << 20);
}

TEST_CASE("config loader: gRPC endpoint loses its http:// and header names are lower-cased") {
  const Config config = load_valid("otlp_grpc_with_scheme.yaml");
  CHECK(config.exporter.endpoint == "collector.example:4317");
  CHECK(config.exporter.compression == Compression::kNone);
  CHECK(config.exporter.headers == std::map<std::string, std::string>{
                                       {"authorization", "Bearer abc.def"}, {"x-tenant", "42"}});
}

TEST_CASE("config loader: otlp_http with zstd, a path prefix and retry disabled") {
  const Config config = load_valid("otlp_http_zstd.yaml");
  CHECK(config.exporter.type == ExporterType::kOtlpHttp);
  CHECK(config.exporter.endpoint == "http://[fd00::17]:4318/otlp");
  CHECK(config.exporter.compression == Compression::kZstd);
  CHECK(config.exporter.timeout == 90s);
  CHECK(config.exporter.max_in_flight == 256);
  CHECK_FALSE(config.exporter.retry.enabled);
  CHECK(config.exporter.retry.max_elapsed == 0ms);
}

TEST_CASE("config loader: empty endpoints disable listeners; an unquoted 0600 is octal") {
  const Config config = load_valid("listeners_disabled.yaml");
  CHECK(config.receivers.grpc.endpoint.empty());
  CHECK(config.receivers.grpc.unix_socket == "/tmp/spanrelay-grpc.sock");
  CHECK(config.receivers.grpc.unix_socket_mode == 0600);
  CHECK(config.receivers.http.endpoint.empty());  // "endpoint:" with no value
  CHECK(config.telemetry.metrics_endpoint.empty());
}

TEST_CASE("config loader: port 0, IPv6 and a mode written without its leading 0") {
  const Config config = load_valid("listeners_any_port.yaml");
  CHECK(config.receivers.grpc.endpoint == "[::1]:0");
  CHECK(config.receivers.http.endpoint == "0.0.0.0:0");
  CHECK(config.receivers.http.unix_socket_mode == 0660);
  CHECK(config.receivers.max_request_size == 1024);
  CHECK(config.telemetry.metrics_endpoint == "localhost:0");
  CHECK(config.telemetry.log_level == "debug");
}

TEST_CASE("config loader: units in every spelling reach the Config") {
  const Config config = load_valid("units_variety.yaml");
  CHECK(config.batch.max_spans == 1'000'000);
  CHECK(config.batch.max_bytes == 1'500'000);
  CHECK(config.batch.timeout == 250ms);
  CHECK(config.exporter.type == ExporterType::kFile);
  CHECK(config.exporter.path == "/var/lib/spanrelay/spans.jsonl");
  CHECK(config.exporter.timeout == 1h);
  CHECK(config.exporter.retry.initial_interval == 500ms);
  CHECK(config.exporter.retry.max_interval == 500ms);
  CHECK(config.exporter.retry.max_elapsed == 90min);
  CHECK(config.exporter.queue.memory_limit == 2'000'000'000);
  CHECK(config.service.shutdown_timeout == 65s);
}

TEST_CASE("config loader: the documented spool shape reaches every field") {
  const Config config = load_valid("spool.yaml");
  const auto& spool = config.exporter.queue.spool;
  CHECK(config.exporter.queue.memory_limit == 64ull << 20);
  CHECK(spool.dir == "/var/lib/spanrelay/spool");
  CHECK(spool.max_size == 1ull << 30);
  CHECK(spool.fsync == FsyncPolicy::kInterval);
  CHECK(spool.fsync_interval == 200ms);
  CHECK(spool.when_full == WhenFull::kDropOldest);
  CHECK(describe(config).find("\nexporter.queue.spool: dir=/var/lib/spanrelay/spool max_size=1GiB "
                              "fsync=interval fsync_interval=200ms when_full=drop_oldest\n") !=
        std::string::npos);
}

TEST_CASE("config loader: spool keys left out keep their defaults; others take any value") {
  const auto only_dir = load_config_string(
      "exporter: { type: file, path: ./s.jsonl, queue: { spool: { dir: ./spool } } }\n", "s.yaml",
      kNoEnvironment);
  REQUIRE(only_dir.ok());
  const auto& defaults = only_dir.value().exporter.queue.spool;
  CHECK(defaults.dir == "./spool");
  CHECK(defaults.max_size == 1ull << 30);
  CHECK(defaults.fsync == FsyncPolicy::kInterval);
  CHECK(defaults.fsync_interval == 200ms);
  CHECK(defaults.when_full == WhenFull::kDropOldest);

  const Config config = load_valid("spool_every_option.yaml");
  const auto& spool = config.exporter.queue.spool;
  CHECK(spool.dir == "./var/spool");
  CHECK(spool.max_size == 1ull << 20);
  CHECK(spool.fsync == FsyncPolicy::kNever);
  CHECK(spool.fsync_interval == 1s);  // accepted, unused with fsync: never
  CHECK(spool.when_full == WhenFull::kRefuseNew);
  // fsync_interval is only shown when it is used.
  CHECK(describe(config).find("exporter.queue.spool: dir=./var/spool max_size=1MiB fsync=never "
                              "when_full=refuse_new\n") != std::string::npos);

  const auto always = load_config_string(
      "exporter: { type: file, path: ./s.jsonl, queue: { spool: { dir: ./spool, fsync: always } } "
      "}\n",
      "s.yaml", kNoEnvironment);
  REQUIRE(always.ok());
  CHECK(always.value().exporter.queue.spool.fsync == FsyncPolicy::kAlways);
}

TEST_CASE("config loader: an unreadable file is an error naming the path and the reason") {
  const auto missing = load_config_file("x.yaml", kNoEnvironment);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message == "cannot read config file x.yaml: No such file or directory");

  const std::string directory = (kConfigTestData / "valid").string();
  const auto is_directory = load_config_file(directory, kNoEnvironment);
  REQUIRE_FALSE(is_directory.ok());
  CHECK(is_directory.error().message ==
        "cannot read config file " + directory + ": Is a directory");
}

TEST_CASE("config loader: errors name the file exactly as it was given, relative or absolute") {
  const fs::path absolute = kConfigTestData / "invalid" / "max_spans_not_integer.yaml";
  const std::string detail =
      ":2:14: batch.max_spans: expected an integer from 1 to 1000000, got \"lots\"";

  const auto from_absolute = load_config_file(absolute.string(), kNoEnvironment);
  REQUIRE_FALSE(from_absolute.ok());
  CHECK(from_absolute.error().message == absolute.string() + detail);

  const std::string relative = fs::relative(absolute, fs::current_path()).string();
  REQUIRE(fs::path(relative).is_relative());
  const auto from_relative = load_config_file(relative, kNoEnvironment);
  REQUIRE_FALSE(from_relative.ok());
  CHECK(from_relative.error().message == relative + detail);
}

TEST_CASE("config loader: source names the origin of a string config") {
  const auto result = load_config_string("batch: { max_spans: 7 }\n", "<inline>", kNoEnvironment);
  REQUIRE(result.ok());
  CHECK(result.value().source == "<inline>");
  CHECK(result.value().batch.max_spans == 7);
}

TEST_CASE("config loader: hostile input is an error, never a crash or an exception") {
  const std::vector<std::string> inputs = {
      std::string(5000, '[') + std::string(5000, ']'),  // nesting deep enough to blow a stack
      std::string(5000, '{'),
      "batch:\n\tmax_spans: 1\n",  // tab indentation
      std::string("\x00\xff\xfe garbage", 11),
      "a: &x [*x]\n",
      "? [complex, key]\n: 1\n",
      "batch: !!binary AAAA\n",
      "batch: { max_spans: *undefined }\n",
      "sampling: { policies: [{ name: a, type: drop, key: k, values: &v [*v] }] }\n",
      "exporter: { type: file, path: p, queue: { spool: &s { dir: *s } } }\n",
  };
  for (const auto& input : inputs) {
    CAPTURE(input.substr(0, 40));
    const auto result = load_config_string(input, "hostile.yaml", kNoEnvironment);
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().message.rfind("hostile.yaml", 0) == 0);
  }
}

TEST_CASE("config loader: header values never appear in errors or in describe()") {
  const auto bad = load_config_string(
      "exporter:\n  type: otlp_grpc\n  endpoint: c:4317\n  headers:\n"
      "    authorization: \"Bearer top-secret\\nx: 1\"\n",
      "h.yaml", kNoEnvironment);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("top-secret") == std::string::npos);

  const auto good = load_config_string(
      "exporter:\n  type: otlp_grpc\n  endpoint: c:4317\n  headers:\n"
      "    authorization: Bearer top-secret\n    x-tenant: tenant-7\n",
      "h.yaml", kNoEnvironment);
  REQUIRE(good.ok());
  const std::string summary = describe(good.value());
  CHECK(summary.find("top-secret") == std::string::npos);
  CHECK(summary.find("tenant-7") == std::string::npos);
  CHECK(summary.find("authorization=<redacted>") != std::string::npos);
  CHECK(summary.find("x-tenant=<redacted>") != std::string::npos);
}

TEST_CASE("config loader: describe() summarises the shipped config in a few lines") {
  const auto result = load_config_file(kShippedConfig, kNoEnvironment);
  REQUIRE(result.ok());
  const std::string summary = describe(result.value());
  CHECK(summary.rfind("config: " + kShippedConfig + "\n", 0) == 0);
  CHECK(summary.find("receivers.otlp.grpc: tcp 127.0.0.1:4317, unix ./var/run/otlp-grpc.sock "
                     "(mode 0660)\n") != std::string::npos);
  CHECK(summary.find("batch: max_spans=1024 max_bytes=1MiB timeout=2s\n") != std::string::npos);
  CHECK(summary.find("exporter: file path=./var/spans.jsonl") != std::string::npos);
  CHECK(summary.find("telemetry: metrics=127.0.0.1:8888 log.level=info log.format=text\n") !=
        std::string::npos);
  CHECK(summary.back() != '\n');
  CHECK(std::count(summary.begin(), summary.end(), '\n') <= 12);

  Config disabled;
  disabled.receivers.http.endpoint.clear();
  disabled.telemetry.metrics_endpoint.clear();
  disabled.exporter.retry.enabled = false;
  const std::string other = describe(disabled);
  CHECK(other.find("receivers.otlp.http: disabled\n") != std::string::npos);
  CHECK(other.find("telemetry: metrics=disabled") != std::string::npos);
  CHECK(other.find("exporter.retry: disabled\n") != std::string::npos);
}

TEST_CASE(
    "config loader: the start-up summary covers TLS, limits, redaction, enrichment and load "
    "balancing, and shows no salt") {
  const std::string tls = describe(load_valid("tls_grpc_mtls.yaml"));
  CHECK(tls.find("receivers.otlp.grpc: tcp 0.0.0.0:4317 mtls>=1.2\n") != std::string::npos);
  CHECK(tls.find("exporter.tls: ca=/etc/spanrelay/upstream/ca.crt") != std::string::npos);
  CHECK(tls.find("exporter.auth: bearer_token_file=/var/run/secrets/spanrelay/token\n") !=
        std::string::npos);
  CHECK(tls.find("receivers.otlp limits: max_spans_per_request=") != std::string::npos);
  const std::string https = describe(load_valid("tls_receiver_http.yaml"));
  CHECK(https.find("receivers.otlp.http: tcp 127.0.0.1:4318 mtls>=1.3\n") != std::string::npos);

  const Config redacting = load_valid("redaction_every_option.yaml");
  const std::string redaction = describe(redacting);
  CHECK(redaction.find("\nredaction: allow=") != std::string::npos);
  CHECK(redaction.find("salt=<redacted>") != std::string::npos);
  REQUIRE_FALSE(redacting.redaction.hash_salt.empty());
  CHECK(redaction.find(redacting.redaction.hash_salt) == std::string::npos);
  CHECK(redaction.find("\nresource: deployment.environment") != std::string::npos);

  CHECK(describe(load_valid("load_balancing_dns.yaml")).find(" load-balanced dns=") !=
        std::string::npos);
  CHECK(describe(load_valid("load_balancing_endpoints.yaml")).find(" load-balanced endpoints=") !=
        std::string::npos);
}
