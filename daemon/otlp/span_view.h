#pragma once
// The wire view of an OTLP trace request: the request bytes stay in one
// immutable, shared buffer, and each span is described by the few fields the
// pipeline decides on plus byte ranges into that buffer. Nothing here owns a
// copy of a span; see DESIGN.md "The hot path: a wire view, not an object tree".
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace spanrelay::otlp {

using TraceId = std::array<std::uint8_t, 16>;
using SpanId = std::array<std::uint8_t, 8>;

// Span.Status.code values (OTLP trace.proto, Status.StatusCode).
enum class StatusCode : std::uint8_t { kUnset = 0, kOk = 1, kError = 2 };

// A slice of the payload buffer: [offset, offset + length).
struct ByteRange {
  std::uint32_t offset = 0;
  std::uint32_t length = 0;
};

struct SpanView {
  TraceId trace_id{};
  SpanId span_id{};
  SpanId parent_span_id{};  // all zero when the span has no parent
  bool has_parent = false;
  std::uint64_t start_time_unix_nano = 0;
  std::uint64_t end_time_unix_nano = 0;
  StatusCode status = StatusCode::kUnset;
  std::uint32_t flags = 0;
  ByteRange bytes;               // the encoded Span message body (no tag, no length prefix)
  std::uint32_t scope_index = 0;  // into ScannedRequest::scopes
};

// One ResourceSpans of the request. `header_bytes` holds every field of the
// ResourceSpans except its scope_spans (field 2), already encoded with their
// tags: resource, schema_url and any unknown field, so that a writer can put
// them back verbatim under a fresh ResourceSpans.
struct ResourceGroup {
  std::string header_bytes;
  ByteRange resource;  // the Resource message body (field 1), empty if absent
};

// One ScopeSpans, with the same idea: every field except spans (field 2).
struct ScopeGroup {
  std::uint32_t resource_index = 0;  // into ScannedRequest::resources
  std::string header_bytes;
  ByteRange scope;  // the InstrumentationScope message body (field 1), empty if absent
};

// A decoded ExportTraceServiceRequest (or TracesData: same bytes).
struct ScannedRequest {
  std::shared_ptr<const std::string> payload;
  std::vector<ResourceGroup> resources;
  std::vector<ScopeGroup> scopes;
  std::vector<SpanView> spans;

  std::string_view bytes_of(ByteRange range) const {
    return std::string_view(*payload).substr(range.offset, range.length);
  }
  std::string_view span_bytes(const SpanView& span) const { return bytes_of(span.bytes); }
  const ScopeGroup& scope_of(const SpanView& span) const { return scopes[span.scope_index]; }
  const ResourceGroup& resource_of(const SpanView& span) const {
    return resources[scopes[span.scope_index].resource_index];
  }
};

}  // namespace spanrelay::otlp
