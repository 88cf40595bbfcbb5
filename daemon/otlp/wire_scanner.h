#pragma once
// The decoder on the hot path: turns the bytes of an ExportTraceServiceRequest
// (or a TracesData: same encoding) into the wire view of span_view.h in one
// pass, without building libprotobuf objects and without allocating per field.
// See DESIGN.md "The hot path: a wire view, not an object tree".
//
// What is checked (everything else is carried through untouched):
// - the protobuf framing at every level we walk (request, ResourceSpans,
//   ScopeSpans, Span, Span.Status): tags, varints, length prefixes, wire types;
// - the wire type of every field of those messages that OTLP defines;
// - trace_id is 16 bytes and span_id 8 bytes (an absent id counts as 0 bytes:
//   OTLP trace.proto says both are required), parent_span_id is 0 or 8 bytes.
// Unknown fields are skipped while scanning and stay inside the header and
// span byte ranges, so a relay writing those bytes back does not lose them.
// Unknown fields of the request message itself are not kept (the writer
// builds a fresh request).
//
// Repeated occurrences of a singular field follow protobuf's "last one wins"
// for the ids, times and flags; Status occurrences merge (the last code seen
// counts). Resource/scope ranges point at the last occurrence; the headers
// keep every occurrence, so the written output parses exactly as the input.
#include <cstdint>
#include <memory>
#include <string>

#include "daemon/common/result.h"
#include "daemon/otlp/span_view.h"

namespace spanrelay::otlp {

// Request limits (receivers.otlp.max_*, issue 7), 0 = unlimited. Attribute
// limits apply to span attributes (Span field 9): their count, the length of
// every string/bytes value (nested ones too) and the nesting depth of
// array/kvlist values, where a plain attribute value is depth 1. The walk
// over nested values uses an explicit stack, never recursion, so even
// max_anyvalue_depth 0 cannot exhaust the thread's stack.
struct ScanLimits {
  std::uint32_t max_spans = 0;
  std::uint32_t max_attributes_per_span = 0;
  std::uint64_t max_attribute_value_length = 0;
  std::uint32_t max_anyvalue_depth = 0;
};

// Decodes an ExportTraceServiceRequest (or TracesData: same bytes) into the
// wire view of daemon/otlp/span_view.h without building an object tree and
// without per-field allocation. Errors name the place and the problem, e.g.
// "malformed protobuf: resource_spans[0].scope_spans[1].spans[3]: trace_id
// must be 16 bytes, got 15". Never reads outside the payload on any input.
// When the request is refused because a limit was hit (rather than for being
// malformed), *limit_hit (if given) is set to the limit's config key, e.g.
// "max_attributes_per_span", and the error message names it too.
Result<ScannedRequest> scan_export_request(std::shared_ptr<const std::string> payload,
                                           const ScanLimits& limits = {},
                                           std::string* limit_hit = nullptr);

}  // namespace spanrelay::otlp
