#pragma once
// OTLP/JSON <-> protobuf binary for trace export requests.
//
// OTLP/JSON is the proto3 JSON mapping with the deviations of the OTLP
// specification (see /work/shared/otlp-wire.md "OTLP/JSON deviations"): trace
// and span ids are hex strings, enums are integers, keys are lowerCamelCase
// and unknown keys are ignored. Receivers convert JSON once into the binary
// form so that the rest of the pipeline sees only protobuf bytes.
//
// Both directions walk one schema table (daemon/otlp/otlp_schema.h).
#include <cstddef>
#include <string>
#include <string_view>

#include "daemon/common/result.h"

namespace spanrelay::otlp {

struct JsonLimits {
  // Nesting depth of AnyValue (arrays and kvlists inside attribute values): an
  // attribute's value is depth 1. Values above kMaxSupportedJsonDepth are
  // clamped so that hostile input can never exhaust the stack.
  std::size_t max_depth = 64;
};
inline constexpr std::size_t kMaxSupportedJsonDepth = 1000;

// OTLP/JSON ExportTraceServiceRequest (same shape as TracesData) -> the
// protobuf binary bytes of the same message, following proto3 (defaults
// omitted except for AnyValue oneof members, fields in field-number order).
// Errors name the JSON path, e.g.
// "resourceSpans[0].scopeSpans[0].spans[2].traceId: expected 32 hex characters, got 31".
Result<std::string> json_to_protobuf(std::string_view json, const JsonLimits& limits = {});

// Protobuf binary ExportTraceServiceRequest/TracesData -> OTLP/JSON on one
// line, without a trailing newline. Unknown protobuf fields are dropped (JSON
// cannot carry them); fields holding their default value are omitted. The
// output is accepted by json_to_protobuf with the same limits.
Result<std::string> protobuf_to_json(std::string_view protobuf, const JsonLimits& limits = {});

}  // namespace spanrelay::otlp
