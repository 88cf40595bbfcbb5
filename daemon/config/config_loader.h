#pragma once
// Loads config/spanrelay.yaml into a validated Config. Every section and key is
// optional (defaults are those in config.h); unknown keys and bad values are
// errors that name the file, the 1-based line and column, and the dotted key:
//   config/spanrelay.yaml:7:16: batch.max_spans: expected an integer from 1 to 1000000, got "lots"
// yaml-cpp throws on malformed input; nothing escapes these functions.
//
// Values may use ${env:NAME}, ${env:NAME:-default} and ${file:/path}
// (expansion.h). Without an `exporter:` section, the OTEL_EXPORTER_OTLP_*
// variables configure the upstream when set (otel_environment.h), and
// Config.source says so: "spanrelay.yaml (exporter from OTEL_EXPORTER_OTLP_ENDPOINT)".
// The environment is read through `environment` (tests pass a fixed one).
#include <string>
#include <string_view>

#include "daemon/common/result.h"
#include "daemon/config/config.h"
#include "daemon/config/environment.h"
#include "daemon/config/units.h"

namespace spanrelay::config {

// Reads and validates `path`. Config.source = path as given; error messages
// use it as given too (a relative path stays relative).
Result<Config> load_config_file(const std::string& path,
                                const EnvironmentLookup& environment = process_environment);

// Validates `yaml` as if read from a file called `source_name` (used in error
// messages and as Config.source).
Result<Config> load_config_string(std::string_view yaml, const std::string& source_name,
                                  const EnvironmentLookup& environment = process_environment);

// A short multi-line summary for the start-up log (no trailing newline).
// Header values are redacted ("x-tenant=<redacted>"): they usually carry
// tenant ids or API keys (also when they come from ${file:...} or
// OTEL_EXPORTER_OTLP_HEADERS).
std::string describe(const Config& config);

}  // namespace spanrelay::config
