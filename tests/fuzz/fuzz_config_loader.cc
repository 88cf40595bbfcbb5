// Fuzz target: the YAML config loader (daemon/config/config_loader.h), fed the
// text of a config file. The config is trusted input, but a typo must give an
// error naming file:line:column, never a crash, a hang or an exception (the
// loader promises that nothing escapes it: an escaping exception aborts here).
//
// Each input is loaded twice: with an environment holding a secret that
// ${env:...} may reference, and with the OTEL_EXPORTER_OTLP_* variables set
// (used when the YAML has no exporter section).
//
// Properties, beyond "no crash, no sanitizer report, no exception":
// - every error names the source and says something;
// - an error never shows the secret (expansion.h: errors name the variable or
//   the path, never a value), unless the input itself spells it out;
// - a loaded config carries its source name, and describe() runs on it.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/config/config_loader.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using spanrelay::config::EnvironmentLookup;

constexpr std::string_view kSecret = "hunter2-secret";
const std::string kSource = "fuzz.yaml";

const EnvironmentLookup kPlainEnvironment =
    [](std::string_view name) -> std::optional<std::string> {
  if (name == "SPANRELAY_SECRET") return std::string(kSecret);
  if (name == "UPSTREAM") return "collector.example:4317";
  if (name == "EMPTY") return "";
  return std::nullopt;
};

const EnvironmentLookup kOtelEnvironment = [](std::string_view name) -> std::optional<std::string> {
  if (name == "OTEL_EXPORTER_OTLP_ENDPOINT") return "http://collector.example:4318";
  if (name == "OTEL_EXPORTER_OTLP_HEADERS") {
    return "authorization=Bearer%20" + std::string(kSecret) + ",x-tenant=a";
  }
  if (name == "OTEL_EXPORTER_OTLP_COMPRESSION") return "gzip";
  if (name == "OTEL_EXPORTER_OTLP_TIMEOUT") return "2500";
  return kPlainEnvironment(name);
};

void load(std::string_view yaml, const EnvironmentLookup& environment) {
  const auto result = spanrelay::config::load_config_string(yaml, kSource, environment);
  if (!result.ok()) {
    const std::string& message = result.error().message;
    FUZZ_CHECK(message.starts_with(kSource) && message.size() > kSource.size(),
               "an error that does not name the source: " + message);
    if (yaml.find("hunter2") == std::string_view::npos) {
      FUZZ_CHECK(message.find(kSecret) == std::string::npos,
                 "an error shows the secret: " + message);
    }
    return;
  }
  FUZZ_CHECK(result.value().source.starts_with(kSource), "source: " + result.value().source);
  const std::string summary = spanrelay::config::describe(result.value());
  FUZZ_CHECK(!summary.empty(), "an empty describe()");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  load(yaml, kPlainEnvironment);
  load(yaml, kOtelEnvironment);
  return 0;
}
