// The `sampling:` section of the config (daemon/config/sampling_section.cc).
// Golden error cases live in tests/testdata/config/invalid/sampling_*.yaml and
// are checked by config_loader_test.cc; these tests check what reaches Config.
#include <doctest/doctest.h>

#include <filesystem>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "daemon/config/config_loader.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using spanrelay::config::Config;
using spanrelay::config::describe;
using spanrelay::config::EnvironmentLookup;
using spanrelay::config::LatencyScope;
using spanrelay::config::load_config_file;
using spanrelay::config::load_config_string;
using spanrelay::config::PolicyType;
using spanrelay::config::SamplingPolicyConfig;

namespace {

const fs::path kValidConfigs = fs::path(SPANRELAY_TESTDATA_DIR) / "config" / "valid";

// Never the real environment: these configs have no exporter section, so
// OTEL_EXPORTER_OTLP_* variables would otherwise apply.
const EnvironmentLookup kNoEnvironment = [](std::string_view) -> std::optional<std::string> {
  return std::nullopt;
};

Config load_sampling_file(const std::string& name) {
  const auto result = load_config_file((kValidConfigs / name).string(), kNoEnvironment);
  if (!result.ok()) FAIL(result.error().message);
  return result.value();
}

Config load_sampling_yaml(const std::string& yaml) {
  const auto result = load_config_string(yaml, "inline.yaml", kNoEnvironment);
  if (!result.ok()) FAIL(result.error().message);
  return result.value();
}

std::string sampling_error(const std::string& yaml) {
  const auto result = load_config_string(yaml, "inline.yaml", kNoEnvironment);
  if (result.ok()) FAIL("expected an error for:\n" << yaml);
  return result.error().message;
}

std::string one_regex_policy(const std::string& regex) {
  return "sampling:\n  policies:\n    - name: vip\n      type: attribute\n      key: tenant.id\n"
         "      regex: '" +
         regex + "'\n";
}

}  // namespace

TEST_CASE("config sampling: without a sampling section sampling is disabled and has no policy") {
  const Config config = load_sampling_yaml("batch: { max_spans: 10 }\n");
  CHECK_FALSE(config.sampling.enabled);
  CHECK(config.sampling.policies.empty());
  CHECK(describe(config).find("sampling:") == std::string::npos);
}

TEST_CASE("config sampling: the documented contract reaches every field") {
  const Config config = load_sampling_file("sampling_contract.yaml");
  const auto& sampling = config.sampling;
  CHECK(sampling.enabled);
  CHECK(sampling.decision_wait == 5s);
  CHECK(sampling.max_traces == 100000);
  CHECK(sampling.max_buffered_bytes == 256ull << 20);
  CHECK(sampling.decision_cache_size == 100000);
  CHECK(sampling.shards == 0);
  REQUIRE(sampling.policies.size() == 7);

  const SamplingPolicyConfig& no_health = sampling.policies[0];
  CHECK(no_health.name == "no-health");
  CHECK(no_health.type == PolicyType::kDrop);
  CHECK(no_health.key == "http.route");
  CHECK(no_health.values == std::vector<std::string>{"/healthz", "/readyz"});
  CHECK(no_health.regex.empty());

  const SamplingPolicyConfig& errors = sampling.policies[1];
  CHECK(errors.name == "errors");
  CHECK(errors.type == PolicyType::kStatusCode);
  CHECK(errors.status_codes == std::vector<std::string>{"ERROR"});
  CHECK(errors.decide_early);

  const SamplingPolicyConfig& slow = sampling.policies[2];
  CHECK(slow.name == "slow");
  CHECK(slow.type == PolicyType::kLatency);
  CHECK(slow.threshold == 500ms);
  CHECK(slow.scope == LatencyScope::kAnySpan);

  const SamplingPolicyConfig& vip = sampling.policies[3];
  CHECK(vip.name == "vip");
  CHECK(vip.type == PolicyType::kAttribute);
  CHECK(vip.key == "tenant.id");
  CHECK(vip.values == std::vector<std::string>{"acme"});

  const SamplingPolicyConfig& baseline = sampling.policies[4];
  CHECK(baseline.name == "baseline");
  CHECK(baseline.type == PolicyType::kRatio);
  CHECK(baseline.ratio == doctest::Approx(0.01));

  const SamplingPolicyConfig& cap = sampling.policies[5];
  CHECK(cap.name == "cap");
  CHECK(cap.type == PolicyType::kRateLimit);
  CHECK(cap.traces_per_second == 200.0);

  CHECK(sampling.policies[6].name == "all");
  CHECK(sampling.policies[6].type == PolicyType::kAlways);
}

TEST_CASE("config sampling: non-default values, regex, and values kept as their source text") {
  const Config config = load_sampling_file("sampling_every_option.yaml");
  const auto& sampling = config.sampling;
  CHECK(sampling.decision_wait == 90s);
  CHECK(sampling.max_traces == 100'000'000);
  CHECK(sampling.max_buffered_bytes == 1ull << 20);
  CHECK(sampling.decision_cache_size == 0);
  CHECK(sampling.shards == 256);
  REQUIRE(sampling.policies.size() == 8);

  const auto& internal = sampling.policies[0];
  CHECK(internal.name == "internal.tenants");
  CHECK(internal.type == PolicyType::kDrop);
  CHECK(internal.key == "tenant.id");
  CHECK(internal.regex == "^internal-[0-9]+$");
  CHECK(internal.values.empty());

  const auto& codes = sampling.policies[1];
  CHECK(codes.status_codes == std::vector<std::string>{"ERROR", "UNSET", "OK"});
  CHECK_FALSE(codes.decide_early);

  const auto& slow_root = sampling.policies[2];
  CHECK(slow_root.threshold == 90s);
  CHECK(slow_root.scope == LatencyScope::kRoot);

  // 0x1F and 1.50 would read back as "31" and "1.5" had they been converted.
  const auto& typed = sampling.policies[3];
  CHECK(typed.name == "typed-values");
  CHECK(typed.values == std::vector<std::string>{"503", "0x1F", "true", "1.50", "quoted", ""});

  CHECK(sampling.policies[4].ratio == 0.0);
  CHECK(sampling.policies[5].ratio == 1.0);
  CHECK(sampling.policies[6].ratio == doctest::Approx(0.0025));
  CHECK(sampling.policies[7].type == PolicyType::kRateLimit);
  CHECK(sampling.policies[7].traces_per_second == 0.5);
}

TEST_CASE(
    "config sampling: `always` shorthand and an omitted policies key mean one always policy") {
  for (const std::string yaml :
       {std::string("sampling:\n  policies: [always]\n"), std::string("sampling:\n"),
        std::string("sampling: { decision_wait: 1s }\n")}) {
    CAPTURE(yaml);
    const Config config = load_sampling_yaml(yaml);
    CHECK(config.sampling.enabled);
    REQUIRE(config.sampling.policies.size() == 1);
    CHECK(config.sampling.policies[0].name == "always");
    CHECK(config.sampling.policies[0].type == PolicyType::kAlways);
  }
  const Config shorthand = load_sampling_file("sampling_shorthand.yaml");
  REQUIRE(shorthand.sampling.policies.size() == 1);
  CHECK(shorthand.sampling.policies[0].type == PolicyType::kAlways);
  CHECK(shorthand.sampling.decision_wait == 5s);

  // The shorthand mixes with full policies.
  const Config mixed = load_sampling_yaml(
      "sampling:\n  policies:\n    - { name: errors, type: status_code }\n    - always\n");
  REQUIRE(mixed.sampling.policies.size() == 2);
  CHECK(mixed.sampling.policies[0].status_codes == std::vector<std::string>{"ERROR"});
  CHECK(mixed.sampling.policies[1].name == "always");
}

TEST_CASE("config sampling: an invalid regex is an error that shows std::regex's reason") {
  const std::string bad_regex = "^acme-(.*";
  std::string regex_reason;
  try {
    const std::regex compiled(bad_regex, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    regex_reason = e.what();
  }
  REQUIRE_FALSE(regex_reason.empty());

  const std::string message = sampling_error(one_regex_policy(bad_regex));
  CHECK(message ==
        "inline.yaml:6:14: sampling.policies[0].regex: invalid regular expression "
        "\"^acme-(.*\": " +
            regex_reason);
}

TEST_CASE("config sampling: a regex too long to compile safely is refused, not compiled") {
  // Deep nesting would exhaust the stack of libstdc++'s recursive compiler.
  const std::string nested = std::string(5000, '(') + std::string(5000, ')');
  const std::string message = sampling_error(one_regex_policy(nested));
  CHECK(message ==
        "inline.yaml:6:14: sampling.policies[0].regex: expected a regular expression of at most "
        "1024 bytes, got 10000 bytes");
  // At the limit it still compiles.
  const Config config = load_sampling_yaml(one_regex_policy(std::string(1024, 'a')));
  CHECK(config.sampling.policies[0].regex.size() == 1024);
}

TEST_CASE("config sampling: ratio and rate accept YAML decimals; edges are inclusive or not") {
  CHECK(load_sampling_yaml("sampling: { policies: [{ name: r, type: ratio, ratio: +.5 }] }\n")
            .sampling.policies[0]
            .ratio == 0.5);
  CHECK(load_sampling_yaml("sampling: { policies: [{ name: r, type: ratio, ratio: 1E-2 }] }\n")
            .sampling.policies[0]
            .ratio == doctest::Approx(0.01));
  CHECK(load_sampling_yaml("sampling: { policies: [{ name: c, type: rate_limit, "
                           "traces_per_second: 1000000000 }] }\n")
            .sampling.policies[0]
            .traces_per_second == 1e9);
  CHECK(sampling_error("sampling: { policies: [{ name: r, type: ratio, ratio: 1.0000001 }] }\n") ==
        "inline.yaml:1:55: sampling.policies[0].ratio: ratio must be between 0 and 1, got "
        "1.0000001");
  CHECK(sampling_error("sampling: { policies: [{ name: r, type: ratio, ratio: 0x1 }] }\n") ==
        "inline.yaml:1:55: sampling.policies[0].ratio: expected a number between 0 and 1, got "
        "\"0x1\"");
  CHECK(sampling_error("sampling: { policies: [{ name: c, type: rate_limit, "
                       "traces_per_second: 2e9 }] }\n") ==
        "inline.yaml:1:72: sampling.policies[0].traces_per_second: traces_per_second must be "
        "above 0 and at most 1000000000, got 2e9");
}

TEST_CASE("config sampling: describe() has one line with the bounds and policy names:types") {
  const Config config = load_sampling_file("sampling_contract.yaml");
  const std::string summary = describe(config);
  CHECK(summary.find("\nsampling: decision_wait=5s max_traces=100000 max_buffered_bytes=256MiB "
                     "decision_cache_size=100000 shards=per-core policies=no-health:drop,"
                     "errors:status_code,slow:latency,vip:attribute,baseline:ratio,cap:rate_limit,"
                     "all:always\n") != std::string::npos);
  // Sampling sits where it runs in the pipeline: after the receivers, before batching.
  CHECK(summary.find("sampling:") < summary.find("batch:"));

  const Config sharded = load_sampling_yaml("sampling: { shards: 4, policies: [always] }\n");
  CHECK(describe(sharded).find(" shards=4 policies=always:always\n") != std::string::npos);
}

TEST_CASE("config sampling: self-referencing YAML aliases are an error, not a loop") {
  const std::string message = sampling_error("sampling: { policies: &p [*p] }\n");
  CHECK(message.rfind("inline.yaml", 0) == 0);
}
