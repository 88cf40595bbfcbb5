#pragma once
// The upstream as the OpenTelemetry SDKs read it from the environment
// (OpenTelemetry specification, "OTLP Exporter Configuration"). Used only when
// the YAML has no `exporter:` section, so that a pod template that already sets
// OTEL_EXPORTER_OTLP_ENDPOINT for its apps configures the relay the same way.
//
// Read (the _TRACES_ variable wins over the general one; an empty value counts
// as unset, as the spec's "Environment Variable Specification" requires):
//   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT  full URL of the traces endpoint
//   OTEL_EXPORTER_OTLP_ENDPOINT         base URL: http/protobuf appends /v1/traces;
//                                       grpc takes its host:port
//   OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL     grpc | http/protobuf (http/json: error).
//       Unset: otlp_http when the endpoint's port is 4318, else otlp_grpc. (The
//       spec's default is http/protobuf, but SDKs and collectors use 4317 for
//       gRPC and 4318 for HTTP, and an endpoint without a protocol is far more
//       often a gRPC collector.)
//   OTEL_EXPORTER_OTLP[_TRACES]_HEADERS      key=value,key2=value2; values percent-decoded
//   OTEL_EXPORTER_OTLP[_TRACES]_COMPRESSION  gzip | none (unset: none, as in the spec)
//   OTEL_EXPORTER_OTLP[_TRACES]_TIMEOUT      milliseconds (unset: 10s)
// Other exporter settings (retry, queue, max_in_flight) keep their defaults.
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/common/result.h"
#include "daemon/config/config.h"
#include "daemon/config/environment.h"

namespace spanrelay::config {

struct EnvironmentExporter {
  ExporterConfig exporter;
  std::string endpoint_variable;  // which variable gave the endpoint, for Config.source
};

// nullopt when none of the variables above is set. Errors start with the
// variable's name and never contain a header value.
Result<std::optional<EnvironmentExporter>> exporter_from_environment(
    const EnvironmentLookup& environment);

// OTEL_EXPORTER_OTLP_HEADERS syntax (W3C Baggage-like): comma-separated
// key=value pairs, blanks around keys and values ignored, values
// percent-decoded. Names are lower-cased; `variable` prefixes errors.
Result<std::map<std::string, std::string>> parse_otel_headers(std::string_view variable,
                                                              std::string_view text);

}  // namespace spanrelay::config
