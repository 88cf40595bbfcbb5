#pragma once
// What the fuzz targets check about a wire scan (daemon/otlp/wire_scanner.h):
// every range inside the payload, and agreement with libprotobuf on the same
// bytes. Like the unit tests' otlp_test_requests.h, but for arbitrary input:
// messages are compared field by field with NaN equal to NaN (a fuzzed double
// is often a NaN, and the scanner carries its bytes untouched).
#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/otlp/span_view.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "tests/common/wire_checks.h"

namespace spanrelay::fuzz {

namespace pb {
using opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;
using opentelemetry::proto::trace::v1::ResourceSpans;
using opentelemetry::proto::trace::v1::ScopeSpans;
using opentelemetry::proto::trace::v1::Span;
}  // namespace pb

using spanrelay::testing::differences;
using spanrelay::testing::range_outside_payload;

template <class Id>
std::string_view id_bytes(const Id& id) {
  return {reinterpret_cast<const char*>(id.data()), id.size()};
}

// Where the scanner's view of one span differs from libprotobuf's, or "".
inline std::string span_difference(const otlp::ScannedRequest& scanned, const otlp::SpanView& view,
                                   const pb::Span& span) {
  if (id_bytes(view.trace_id) != span.trace_id()) return "trace_id";
  if (id_bytes(view.span_id) != span.span_id()) return "span_id";
  const std::string no_parent(8, '\0');
  const bool has_parent = span.parent_span_id().size() == 8 && span.parent_span_id() != no_parent;
  if (view.has_parent != has_parent) return "has_parent";
  if (id_bytes(view.parent_span_id) !=
      (span.parent_span_id().empty() ? no_parent : span.parent_span_id())) {
    return "parent_span_id";
  }
  if (view.start_time_unix_nano != span.start_time_unix_nano()) return "start_time_unix_nano";
  if (view.end_time_unix_nano != span.end_time_unix_nano()) return "end_time_unix_nano";
  const int code = span.status().code();
  const auto expected_status = code == 1   ? otlp::StatusCode::kOk
                               : code == 2 ? otlp::StatusCode::kError
                                           : otlp::StatusCode::kUnset;
  if (view.status != expected_status) return "status";
  if (view.flags != span.flags()) return "flags";
  pb::Span reparsed;
  if (!reparsed.ParseFromString(std::string(scanned.span_bytes(view)))) return "bytes do not parse";
  if (const std::string report = differences(span, reparsed); !report.empty()) {
    return "bytes: " + report;
  }
  return "";
}

// The first difference between the scanner's view and what libprotobuf parsed
// from the same bytes, or "" when they agree.
inline std::string scan_difference(const otlp::ScannedRequest& scanned,
                                   const pb::ExportTraceServiceRequest& parsed) {
  if (scanned.resources.size() != static_cast<std::size_t>(parsed.resource_spans_size())) {
    return "resource count";
  }
  std::size_t scope_index = 0;
  std::size_t span_index = 0;
  for (int r = 0; r < parsed.resource_spans_size(); ++r) {
    const std::string where = "resource_spans[" + std::to_string(r) + "]";
    pb::ResourceSpans expected_header = parsed.resource_spans(r);
    expected_header.clear_scope_spans();
    pb::ResourceSpans header;
    if (!header.ParseFromString(scanned.resources[r].header_bytes)) return where + " header parse";
    if (auto report = differences(expected_header, header); !report.empty()) {
      return where + " header: " + report;
    }
    for (const pb::ScopeSpans& scope_spans : parsed.resource_spans(r).scope_spans()) {
      const std::string scope_where = where + ", scope " + std::to_string(scope_index);
      if (scope_index >= scanned.scopes.size()) return scope_where + " missing";
      const auto& scope = scanned.scopes[scope_index];
      if (scope.resource_index != static_cast<std::uint32_t>(r)) return scope_where + " resource";
      pb::ScopeSpans expected_scope_header = scope_spans;
      expected_scope_header.clear_spans();
      pb::ScopeSpans scope_header;
      if (!scope_header.ParseFromString(scope.header_bytes)) return scope_where + " header parse";
      if (auto report = differences(expected_scope_header, scope_header); !report.empty()) {
        return scope_where + " header: " + report;
      }
      for (const pb::Span& span : scope_spans.spans()) {
        const std::string span_where = "span " + std::to_string(span_index);
        if (span_index >= scanned.spans.size()) return span_where + " missing";
        const auto& view = scanned.spans[span_index];
        if (view.scope_index != scope_index) return span_where + " scope_index";
        if (auto difference = span_difference(scanned, view, span); !difference.empty()) {
          return span_where + " " + difference;
        }
        ++span_index;
      }
      ++scope_index;
    }
  }
  if (scope_index != scanned.scopes.size()) return "scope count";
  if (span_index != scanned.spans.size()) return "span count";
  return "";
}

}  // namespace spanrelay::fuzz
