// The `redaction:` and `resource:` sections (daemon/config/processing_section.cc).
// Golden error cases live in tests/testdata/config/invalid/{redaction,resource}_*.yaml
// and are checked by config_loader_test.cc; these tests check what reaches Config.
#include <doctest/doctest.h>

#include <filesystem>
#include <optional>
#include <string>

#include "daemon/config/config_loader.h"
#include "daemon/processing/span_processor.h"

namespace {

namespace fs = std::filesystem;
using spanrelay::config::Config;
using spanrelay::config::EnvironmentLookup;
using spanrelay::config::load_config_file;
using spanrelay::config::load_config_string;

const fs::path kValidConfigs = fs::path(SPANRELAY_TESTDATA_DIR) / "config" / "valid";

const EnvironmentLookup kNoEnvironment = [](std::string_view) -> std::optional<std::string> {
  return std::nullopt;
};

Config load_yaml(const std::string& yaml, const EnvironmentLookup& environment = kNoEnvironment) {
  const auto result = load_config_string(yaml, "inline.yaml", environment);
  if (!result.ok()) FAIL(result.error().message);
  return result.value();
}

}  // namespace

TEST_CASE("redaction: every key of the section reaches Config, and it compiles") {
  const auto result =
      load_config_file((kValidConfigs / "redaction_every_option.yaml").string(), kNoEnvironment);
  REQUIRE_MESSAGE(result.ok(), (result.ok() ? "" : result.error().message));
  const Config& config = result.value();
  const auto& redaction = config.redaction;
  CHECK(redaction.enabled);
  CHECK(redaction.allow_keys ==
        std::vector<std::string>{"http.route", "http.request.method", "user.id", "service.name"});
  CHECK(redaction.allow_key_patterns == std::vector<std::string>{"k8s\\..*", "app\\.[a-z_]+"});
  CHECK(redaction.delete_keys == std::vector<std::string>{"app.session_token"});
  CHECK(redaction.delete_key_patterns == std::vector<std::string>{"app\\..*_secret"});
  CHECK(redaction.hash_keys == std::vector<std::string>{"user.id"});
  CHECK(redaction.hash_key_patterns == std::vector<std::string>{"enduser\\..*"});
  CHECK(redaction.hash_salt == "not-a-real-salt");
  REQUIRE(redaction.mask.size() == 5);
  CHECK(redaction.mask[0].pattern == "card_number");
  CHECK(redaction.mask[0].replacement == "***");
  CHECK(redaction.mask[1].pattern == "email");
  CHECK(redaction.mask[1].replacement == "<email>");
  CHECK(redaction.mask[2].pattern == "pan_india");
  CHECK(redaction.mask[3].pattern == "aadhaar_like");
  CHECK(redaction.mask[4].regex == "(password|token)=[^&]*");
  CHECK(redaction.mask[4].replacement == "\\1=***");

  const auto& resource = config.resource;
  CHECK(resource.override_existing);
  const std::vector<std::pair<std::string, std::string>> attributes{
      {"deployment.environment", "prod"}, {"k8s.node.name", "node-7"}, {"replicas", "3"}};
  CHECK(resource.attributes == attributes);

  const auto processor =
      spanrelay::processing::SpanProcessor::create(config.redaction, config.resource, nullptr);
  REQUIRE_MESSAGE(processor.ok(), (processor.ok() ? "" : processor.error().message));
  CHECK(processor.value() != nullptr);
}

TEST_CASE("redaction: absent sections configure nothing") {
  const Config config = load_yaml("batch: { max_spans: 10 }\n");
  CHECK_FALSE(config.redaction.enabled);
  CHECK(config.resource.attributes.empty());
  CHECK_FALSE(config.resource.override_existing);
  const auto processor =
      spanrelay::processing::SpanProcessor::create(config.redaction, config.resource, nullptr);
  REQUIRE(processor.ok());
  CHECK(processor.value() == nullptr);
}

TEST_CASE("resource: values take ${env:...} expansion") {
  const EnvironmentLookup environment = [](std::string_view name) -> std::optional<std::string> {
    if (name == "NODE_NAME") return std::string("node-42");
    return std::nullopt;
  };
  const Config config =
      load_yaml("resource:\n  attributes:\n    k8s.node.name: \"${env:NODE_NAME}\"\n", environment);
  REQUIRE(config.resource.attributes.size() == 1);
  CHECK(config.resource.attributes[0].second == "node-42");
}
