// ${env:...} / ${file:...} references in config values
// (daemon/config/expansion.cc). Golden error cases live in
// tests/testdata/config/invalid/expand_*.yaml (config_loader_test.cc).
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>

#include "daemon/config/config_loader.h"
#include "daemon/config/expansion.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using spanrelay::config::Config;
using spanrelay::config::describe;
using spanrelay::config::EnvironmentLookup;
using spanrelay::config::expand_references;
using spanrelay::config::ExporterType;
using spanrelay::config::kMaxReferencedFileBytes;
using spanrelay::config::load_config_string;

namespace {

EnvironmentLookup fake_environment(std::map<std::string, std::string> variables) {
  return [variables = std::move(variables)](std::string_view name) -> std::optional<std::string> {
    const auto found = variables.find(std::string(name));
    if (found == variables.end()) return std::nullopt;
    return found->second;
  };
}

// A directory of its own under the system temp dir, removed at the end.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "spanrelay-expansion-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  // Writes `contents` to `name` and returns the absolute path.
  std::string write(const std::string& name, const std::string& contents) const {
    const fs::path path = path_ / name;
    std::ofstream out(path, std::ios::binary);
    out << contents;
    REQUIRE(out.good());
    return path.string();
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string expanded(std::string_view text, const EnvironmentLookup& environment) {
  const auto result = expand_references(text, environment);
  if (!result.ok()) FAIL(result.error().message);
  return result.value().text;
}

std::string expansion_error(std::string_view text, const EnvironmentLookup& environment) {
  const auto result = expand_references(text, environment);
  if (result.ok()) FAIL("expected an error for " << text);
  return result.error().message;
}

Config load(const std::string& yaml, const EnvironmentLookup& environment) {
  const auto result = load_config_string(yaml, "x.yaml", environment);
  if (!result.ok()) FAIL(result.error().message);
  return result.value();
}

std::string load_error(const std::string& yaml, const EnvironmentLookup& environment) {
  const auto result = load_config_string(yaml, "x.yaml", environment);
  if (result.ok()) FAIL("expected an error for:\n" << yaml);
  return result.error().message;
}

}  // namespace

TEST_CASE("config expansion: text without references is returned unchanged") {
  const auto environment = fake_environment({});
  for (const std::string text : {"", "plain", "$HOME", "cost: $5", "a$b$", "{}", "$ {x}"}) {
    CAPTURE(text);
    const auto result = expand_references(text, environment);
    REQUIRE(result.ok());
    CHECK(result.value().text == text);
    CHECK_FALSE(result.value().from_outside);
  }
}

TEST_CASE("config expansion: environment references, several per value") {
  const auto environment = fake_environment({{"HOST", "collector"}, {"PORT", "4317"}});
  const auto result = expand_references("${env:HOST}:${env:PORT}", environment);
  REQUIRE(result.ok());
  CHECK(result.value().text == "collector:4317");
  CHECK(result.value().from_outside);
  CHECK(expanded("http://${env:HOST}:4318/otlp", environment) == "http://collector:4318/otlp");
  CHECK(expanded("${env:HOST}${env:HOST}", environment) == "collectorcollector");
}

TEST_CASE("config expansion: $${ is a literal ${ and is not expanded") {
  const auto environment = fake_environment({{"A", "value"}});
  const auto result = expand_references("$${env:A}", environment);
  REQUIRE(result.ok());
  CHECK(result.value().text == "${env:A}");
  CHECK_FALSE(result.value().from_outside);
  CHECK(expanded("x $${ y ${env:A}", environment) == "x ${ y value");
  CHECK(expanded("$${", environment) == "${");
}

TEST_CASE("config expansion: substituted text is not expanded again") {
  const auto environment = fake_environment({{"A", "${env:B}"}, {"B", "never"}});
  CHECK(expanded("${env:A}", environment) == "${env:B}");
}

TEST_CASE("config expansion: defaults apply to unset and empty variables, as in the shell") {
  const auto environment = fake_environment({{"SET", "value"}, {"EMPTY", ""}});
  CHECK(expanded("${env:UNSET:-fallback}", environment) == "fallback");
  CHECK(expanded("${env:EMPTY:-fallback}", environment) == "fallback");
  CHECK(expanded("${env:SET:-fallback}", environment) == "value");
  CHECK(expanded("${env:UNSET:-}", environment).empty());
  CHECK(expanded("${env:UNSET:-a:b-c d}", environment) == "a:b-c d");
  // Set but empty without a default: "", not an error.
  CHECK(expanded("[${env:EMPTY}]", environment) == "[]");
  // A default is written in the file: nothing came from outside.
  const auto defaulted = expand_references("${env:UNSET:-x}", environment);
  REQUIRE(defaulted.ok());
  CHECK_FALSE(defaulted.value().from_outside);
}

TEST_CASE("config expansion: malformed references are errors that say how to write them") {
  const auto environment = fake_environment({{"A", "a"}});
  CHECK(expansion_error("${env:UPSTREAM}", environment) ==
        "environment variable UPSTREAM is not set");
  CHECK(expansion_error("${foo:x}", environment) ==
        "unknown reference scheme \"foo\" (expected ${env:NAME} or ${file:/path}; write $${ for "
        "a literal ${)");
  CHECK(expansion_error("${HOME}", environment) ==
        "expected ${env:NAME} or ${file:/path}, got \"${HOME}\" (write $${ for a literal ${)");
  CHECK(expansion_error("x ${env:A", environment) ==
        "unterminated ${ (write $${ for a literal ${)");
  CHECK(expansion_error("${env:X:-${env:A}}", environment) ==
        "a ${...} reference cannot contain another one");
  CHECK(expansion_error("${env:1A}", environment) ==
        "invalid environment variable name \"1A\" in ${env:...} (letters, digits and _, not "
        "starting with a digit)");
  CHECK(expansion_error("${env:A:default}", environment) ==
        "invalid environment variable name \"A:default\" in ${env:...} (letters, digits and _, "
        "not starting with a digit; a default is written ${env:NAME:-default})");
  CHECK(expansion_error("${env:}", environment).find("invalid environment variable name") == 0);
  CHECK(expansion_error("${file:}", environment) ==
        "expected an absolute path in ${file:...}, got \"\"");
}

TEST_CASE("config expansion: a file is read whole with one trailing newline removed") {
  const TempDir dir;
  const auto environment = fake_environment({});
  CHECK(expanded("${file:" + dir.write("plain", "tok") + "}", environment) == "tok");
  CHECK(expanded("${file:" + dir.write("newline", "tok\n") + "}", environment) == "tok");
  CHECK(expanded("${file:" + dir.write("crlf", "tok\r\n") + "}", environment) == "tok");
  CHECK(expanded("${file:" + dir.write("two", "tok\n\n") + "}", environment) == "tok\n");
  CHECK(expanded("${file:" + dir.write("empty", "") + "}", environment).empty());
  CHECK(expanded("Bearer ${file:" + dir.write("token", "abc.def\n") + "}!", environment) ==
        "Bearer abc.def!");
  const auto result = expand_references("${file:" + dir.write("t", "x") + "}", environment);
  REQUIRE(result.ok());
  CHECK(result.value().from_outside);

  const std::string at_limit(kMaxReferencedFileBytes, 'a');
  CHECK(expanded("${file:" + dir.write("limit", at_limit) + "}", environment) == at_limit);
}

TEST_CASE("config expansion: unreadable files are errors naming the path, never the contents") {
  const TempDir dir;
  const auto environment = fake_environment({});
  const std::string missing = (dir.path() / "missing").string();
  CHECK(expansion_error("${file:" + missing + "}", environment) ==
        "cannot read " + missing + ": No such file or directory");
  CHECK(expansion_error("${file:" + dir.path().string() + "}", environment) ==
        "cannot read " + dir.path().string() + ": Is a directory");
  CHECK(expansion_error("${file:relative/token}", environment) ==
        "expected an absolute path in ${file:...}, got \"relative/token\"");
  CHECK(expansion_error("${file:/dev/null}", environment) ==
        "cannot read /dev/null: not a regular file");

  const std::string big =
      dir.write("big", std::string(kMaxReferencedFileBytes, 's') + "secret-tail");
  const std::string too_large = expansion_error("${file:" + big + "}", environment);
  CHECK(too_large == "cannot read " + big + ": larger than 64KiB");
  CHECK(too_large.find("secret-tail") == std::string::npos);
}

TEST_CASE("config expansion: values of every type may come from the environment") {
  const auto environment = fake_environment({{"UPSTREAM", "http://collector.example:4317"},
                                             {"TIMEOUT", "30s"},
                                             {"MAX_SPANS", "512"},
                                             {"LIMIT", "128MiB"},
                                             {"RETRY", "false"},
                                             {"TENANT", "acme"}});
  const Config config = load(
      "batch: { max_spans: '${env:MAX_SPANS}' }\n"
      "exporter:\n"
      "  type: otlp_grpc\n"
      "  endpoint: ${env:UPSTREAM}\n"
      "  timeout: ${env:TIMEOUT}\n"
      "  headers: { x-tenant: \"${env:TENANT}\", x-region: '${env:REGION:-eu-1}' }\n"
      "  retry: { enabled: '${env:RETRY}' }\n"
      "  queue: { memory_limit: '${env:LIMIT}' }\n"
      "sampling:\n"
      "  policies:\n"
      "    - { name: vip, type: attribute, key: tenant.id, values: [x, '${env:TENANT}'] }\n",
      environment);
  CHECK(config.batch.max_spans == 512);
  CHECK(config.exporter.type == ExporterType::kOtlpGrpc);
  CHECK(config.exporter.endpoint == "collector.example:4317");  // scheme dropped after expansion
  CHECK(config.exporter.timeout == 30s);
  CHECK(config.exporter.headers ==
        std::map<std::string, std::string>{{"x-region", "eu-1"}, {"x-tenant", "acme"}});
  CHECK_FALSE(config.exporter.retry.enabled);
  CHECK(config.exporter.queue.memory_limit == 128ull << 20);
  REQUIRE(config.sampling.policies.size() == 1);
  CHECK(config.sampling.policies[0].values == std::vector<std::string>{"x", "acme"});
}

TEST_CASE("config expansion: a token from a mounted secret file becomes a header") {
  const TempDir dir;
  const std::string token = dir.write("token", "eyJhbGciOi.top-secret-token\n");
  const Config config = load(
      "exporter:\n  type: otlp_http\n  endpoint: http://collector:4318\n"
      "  headers: { authorization: \"Bearer ${file:" +
          token + "}\" }\n",
      fake_environment({}));
  CHECK(config.exporter.headers.at("authorization") == "Bearer eyJhbGciOi.top-secret-token");
  const std::string summary = describe(config);
  CHECK(summary.find("top-secret-token") == std::string::npos);
  CHECK(summary.find("authorization=<redacted>") != std::string::npos);
}

TEST_CASE("config expansion: keys are never expanded") {
  const auto environment = fake_environment({{"SECTION", "batch"}, {"NAME", "x-tenant"}});
  CHECK(load_error("${env:SECTION}: { max_spans: 1 }\n", environment) ==
        "x.yaml:1:1: unknown key \"${env:SECTION}\" (expected one of: receivers, sampling, batch, "
        "exporter, telemetry, service, redaction, resource)");
  CHECK(load_error("exporter:\n  type: otlp_grpc\n  endpoint: c:4317\n  headers:\n"
                   "    ${env:NAME}: 1\n",
                   environment) ==
        "x.yaml:5:5: exporter.headers: \"${env:NAME}\" is not a valid header name (letters, "
        "digits and !#$%&'*+-.^_`|~ only)");
}

TEST_CASE("config expansion: errors point at the value and name the dotted key") {
  const auto environment = fake_environment({});
  CHECK(load_error("exporter:\n  type: otlp_grpc\n  endpoint: ${env:UPSTREAM}\n", environment) ==
        "x.yaml:3:13: exporter.endpoint: environment variable UPSTREAM is not set");
  CHECK(load_error("sampling:\n  policies:\n    - name: a\n      type: drop\n      key: k\n"
                   "      values: [ok, '${env:MISSING}']\n",
                   environment) ==
        "x.yaml:6:20: sampling.policies[0].values[1]: environment variable MISSING is not set");
  CHECK(load_error("batch: { timeout: '${nope:x}' }\n", environment)
            .rfind("x.yaml:1:19: batch.timeout: unknown reference scheme \"nope\"", 0) == 0);
}

TEST_CASE("config expansion: a value from outside is never echoed in an error") {
  const std::string secret = "S3cr3t-V4lue";
  const TempDir dir;
  const std::string secret_file = dir.write("secret", secret + "\n");
  const std::string control_file = dir.write("control", "Bearer " + secret + "\x01\n");
  const auto environment = fake_environment({{"SECRET", secret}, {"LONG", std::string(80, 'k')}});
  const std::vector<std::string> inputs = {
      "exporter: { type: file, path: p, timeout: '${env:SECRET}' }\n",
      "exporter: { type: file, path: p, timeout: '5${env:SECRET}' }\n",
      "batch: { max_bytes: '${file:" + secret_file + "}' }\n",
      "exporter: { type: otlp_grpc, endpoint: '${env:SECRET}' }\n",
      "exporter: { type: otlp_grpc, endpoint: 'host name ${env:SECRET}:4317' }\n",
      "exporter: { type: otlp_http, endpoint: 'http://u:${env:SECRET}@c:4318' }\n",
      "exporter: { type: otlp_http, endpoint: 'https://${env:SECRET}' }\n",
      "exporter: { type: otlp_http, endpoint: '${env:SECRET}' }\n",
      "exporter: { type: otlp_grpc, endpoint: 'c:4317', headers: { a: '${file:" + control_file +
          "}' } }\n",
      "exporter: { type: '${env:SECRET}' }\n",
      "telemetry: { log: { level: '${env:SECRET}' } }\n",
      "receivers: { otlp: { grpc: { unix_socket_mode: '${env:SECRET}' } } }\n",
      "sampling: { policies: [{ name: '${env:SECRET}', type: always }] }\n",
      "sampling: { policies: [{ name: a, type: ratio, ratio: '${env:SECRET}' }] }\n",
      "sampling: { policies: [{ name: a, type: status_code, status_codes: ['${env:SECRET}'] }] }\n",
      "batch: { timeout: '${env:LONG}' }\n",
  };
  for (const auto& input : inputs) {
    CAPTURE(input);
    const std::string error = load_error(input, environment);
    CHECK(error.find(secret) == std::string::npos);
    CHECK(error.find("kkkkkkkk") == std::string::npos);
    CHECK(error.rfind("x.yaml:1:", 0) == 0);
  }
  // What the operator sees instead: the reference as written.
  CHECK(load_error(inputs[0], environment) ==
        "x.yaml:1:43: exporter.timeout: expected a duration made of whole numbers with units h, "
        "m, s or ms (largest first), such as 250ms, 5s or 1m30s; got <expansion of "
        "\"${env:SECRET}\">");
  CHECK(load_error(inputs[4], environment) ==
        "x.yaml:1:40: exporter.endpoint: invalid host <part of the expansion of \"host name "
        "${env:SECRET}:4317\"> in <expansion of \"host name ${env:SECRET}:4317\">");
  // A written example in the message is not the value, so it stays.
  CHECK(load_error(inputs[11], environment).find("such as \"0660\"") != std::string::npos);
}

TEST_CASE("config expansion: an aliased value is expanded once") {
  // Were the alias expanded a second time, "$${" would lose its escape.
  const Config config = load(
      "exporter:\n  type: otlp_grpc\n  endpoint: c:4317\n"
      "  headers: { a: &value '${env:V}', b: *value }\n",
      fake_environment({{"V", "x$${y}"}}));
  CHECK(config.exporter.headers.at("a") == "x$${y}");
  CHECK(config.exporter.headers.at("b") == "x$${y}");
}

TEST_CASE("config expansion: the first error in document order wins") {
  const auto environment = fake_environment({});
  CHECK(load_error("batch: { timeout: '${env:FIRST}' }\nexporter: { type: file, path: "
                   "'${env:SECOND}' }\n",
                   environment) ==
        "x.yaml:1:19: batch.timeout: environment variable FIRST is not set");
}
