#pragma once
// Test-only: varied OTLP trace requests built with libprotobuf's generated
// classes, and the checks that compare the wire scanner's view with what
// libprotobuf parsed from the same bytes. Shared by wire_scanner_test.cc and
// request_writer_test.cc.
#include <doctest/doctest.h>
#include <google/protobuf/unknown_field_set.h>
#include <google/protobuf/util/message_differencer.h>

#include <cstdint>
#include <string>

#include "daemon/otlp/span_view.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "tests/common/wire_checks.h"

namespace spanrelay::otlp::testing {

namespace pb {
using opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;
using opentelemetry::proto::common::v1::AnyValue;
using opentelemetry::proto::common::v1::KeyValue;
using opentelemetry::proto::trace::v1::ResourceSpans;
using opentelemetry::proto::trace::v1::ScopeSpans;
using opentelemetry::proto::trace::v1::Span;
using opentelemetry::proto::trace::v1::Status;
using opentelemetry::proto::trace::v1::TracesData;
}  // namespace pb

using spanrelay::testing::range_outside_payload;

using google::protobuf::util::MessageDifferencer;

// Generated classes of protobuf 3.21 reach unknown fields through reflection.
inline google::protobuf::UnknownFieldSet* mutable_unknown(google::protobuf::Message& message) {
  return message.GetReflection()->MutableUnknownFields(&message);
}
inline const google::protobuf::UnknownFieldSet& unknown_of(
    const google::protobuf::Message& message) {
  return message.GetReflection()->GetUnknownFields(message);
}

// Deterministic pseudo-random id bytes.
inline std::string make_id(std::size_t size, std::uint64_t seed) {
  std::string id(size, '\0');
  std::uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL;
  for (auto& byte : id) {
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ULL;
    byte = static_cast<char>(x >> 56);
  }
  if (id.find_first_not_of('\0') == std::string::npos && !id.empty()) id[0] = 1;
  return id;
}

// One attribute of every AnyValue kind, nested ones included (or only a
// string one when `every_kind` is false).
inline void add_every_kind_of_attribute(google::protobuf::RepeatedPtrField<pb::KeyValue>* attrs,
                                        int seed, bool every_kind = true) {
  const std::string suffix = std::to_string(seed);
  auto add = [&](const std::string& key) {
    pb::KeyValue* kv = attrs->Add();
    kv->set_key(key + suffix);
    return kv->mutable_value();
  };
  add("str.")->set_string_value("value-" + suffix);
  if (!every_kind) return;
  add("bool.")->set_bool_value(seed % 2 == 0);
  add("int.")->set_int_value(-1234567890123LL * (seed + 1));
  add("double.")->set_double_value(3.25 * seed);
  add("bytes.")->set_bytes_value(std::string("\0\x01\xff", 3) + suffix);
  pb::AnyValue* array = add("array.");
  array->mutable_array_value()->add_values()->set_string_value("a");
  array->mutable_array_value()->add_values()->set_int_value(seed);
  array->mutable_array_value()->add_values()->mutable_array_value()->add_values()->set_bool_value(
      true);
  pb::AnyValue* kvlist = add("kvlist.");
  pb::KeyValue* inner = kvlist->mutable_kvlist_value()->add_values();
  inner->set_key("inner");
  inner->mutable_value()->set_double_value(0.5);
}

struct RequestShape {
  int resources = 2;
  int scopes_per_resource = 2;
  int spans_per_scope = 3;
  // false: one string attribute where there would be one of every kind, for
  // small requests whose bytes are mostly structure (mutation tests).
  bool every_attribute_kind = true;
};

// Resources (and scopes within a resource) are all distinct, so writing the
// scanned request back gives a message equal to this one.
inline pb::ExportTraceServiceRequest make_varied_request(int seed, RequestShape shape = {}) {
  pb::ExportTraceServiceRequest request;
  int span_number = 0;
  for (int r = 0; r < shape.resources; ++r) {
    pb::ResourceSpans* rs = request.add_resource_spans();
    auto* resource = rs->mutable_resource();
    pb::KeyValue* service = resource->add_attributes();
    service->set_key("service.name");
    service->mutable_value()->set_string_value("service-" + std::to_string(seed) + "-" +
                                               std::to_string(r));
    if (r % 2 == 0)
      add_every_kind_of_attribute(resource->mutable_attributes(), r, shape.every_attribute_kind);
    resource->set_dropped_attributes_count(r);
    if (r % 2 == 1) rs->set_schema_url("https://opentelemetry.io/schemas/1.21.0");
    for (int s = 0; s < shape.scopes_per_resource; ++s) {
      pb::ScopeSpans* ss = rs->add_scope_spans();
      if (s % 3 != 2) {  // some ScopeSpans have no scope at all
        auto* scope = ss->mutable_scope();
        scope->set_name("instrumentation.lib" + std::to_string(s));
        scope->set_version("1." + std::to_string(s));
        if (s % 2 == 1)
          add_every_kind_of_attribute(scope->mutable_attributes(), s, shape.every_attribute_kind);
      } else {
        ss->set_schema_url("https://example.com/scope-schema/" + std::to_string(s));
      }
      if (s % 2 == 0) ss->set_schema_url("https://opentelemetry.io/schemas/1.20.0");
      for (int k = 0; k < shape.spans_per_scope; ++k, ++span_number) {
        const int n = seed * 1000 + span_number;
        pb::Span* span = ss->add_spans();
        span->set_trace_id(make_id(16, n / 3));  // a few spans per trace
        span->set_span_id(make_id(8, n + 7));
        if (k % 2 == 1) span->set_parent_span_id(make_id(8, n + 6));
        if (k % 4 == 3) span->set_trace_state("vendor=abc,other=1");
        span->set_name("GET /route/" + std::to_string(k));
        span->set_kind(static_cast<pb::Span::SpanKind>(k % 6));
        span->set_start_time_unix_nano(1700000000000000000ULL + n * 1000);
        span->set_end_time_unix_nano(1700000000000000000ULL + n * 1000 + k * 12345);
        add_every_kind_of_attribute(span->mutable_attributes(), n, shape.every_attribute_kind);
        span->set_dropped_attributes_count(k);
        for (int e = 0; e < k % 3; ++e) {
          auto* event = span->add_events();
          event->set_time_unix_nano(1700000000000000000ULL + e);
          event->set_name("event" + std::to_string(e));
          add_every_kind_of_attribute(event->mutable_attributes(), e, shape.every_attribute_kind);
          event->set_dropped_attributes_count(e);
        }
        span->set_dropped_events_count(k % 2);
        for (int l = 0; l < k % 4; ++l) {
          auto* link = span->add_links();
          link->set_trace_id(make_id(16, n + 100 + l));
          link->set_span_id(make_id(8, n + 200 + l));
          link->set_trace_state("l=1");
          add_every_kind_of_attribute(link->mutable_attributes(), l, shape.every_attribute_kind);
          link->set_flags(0x301);
        }
        span->set_dropped_links_count(k % 3);
        if (k % 3 != 0 || k % 2 == 1) {  // also spans without any status
          span->mutable_status()->set_code(static_cast<pb::Status::StatusCode>(k % 3));
          if (k % 3 == 2) span->mutable_status()->set_message("boom " + std::to_string(n));
        }
        if (k % 2 == 0) span->set_flags(0x100 | static_cast<std::uint32_t>(k % 2));
      }
    }
  }
  return request;
}

inline StatusCode expected_status(const pb::Span& span) {
  switch (span.status().code()) {
    case 1:
      return StatusCode::kOk;
    case 2:
      return StatusCode::kError;
    default:
      return StatusCode::kUnset;
  }
}

inline std::string id_string(const auto& id) {
  return std::string(reinterpret_cast<const char*>(id.data()), id.size());
}

inline void check_ranges_within_payload(const ScannedRequest& scanned) {
  const std::string outside = range_outside_payload(scanned);
  REQUIRE_MESSAGE(outside.empty(), outside << " is outside the payload");
}

// The first difference between the scanner's view and what libprotobuf parsed
// from the same bytes, or "" when they agree. `canonical`: the bytes were
// written by libprotobuf, so each span and resource/scope range must be
// byte-identical to libprotobuf's serialization; otherwise (mutated input)
// they are compared by parsing them.
inline std::string scan_mismatch(const ScannedRequest& scanned,
                                 const pb::ExportTraceServiceRequest& parsed, bool canonical) {
  if (std::string outside = range_outside_payload(scanned); !outside.empty()) {
    return outside + " is outside the payload";
  }
  if (scanned.resources.size() != static_cast<std::size_t>(parsed.resource_spans_size())) {
    return "resource count";
  }
  std::size_t scope_index = 0;
  std::size_t span_index = 0;
  for (int r = 0; r < parsed.resource_spans_size(); ++r) {
    const std::string where = "resource_spans[" + std::to_string(r) + "]";
    const pb::ResourceSpans& rs = parsed.resource_spans(r);
    const ResourceGroup& group = scanned.resources[r];
    pb::ResourceSpans header;
    pb::ResourceSpans expected_header = rs;
    expected_header.clear_scope_spans();
    if (!header.ParseFromString(group.header_bytes) ||
        !MessageDifferencer::Equals(header, expected_header)) {
      return where + " header";
    }
    if (canonical && scanned.bytes_of(group.resource) !=
                         (rs.has_resource() ? rs.resource().SerializeAsString() : "")) {
      return where + " resource range";
    }
    for (const pb::ScopeSpans& ss : rs.scope_spans()) {
      const std::string scope_where = where + ".scope " + std::to_string(scope_index);
      if (scope_index >= scanned.scopes.size()) return scope_where + " missing";
      const ScopeGroup& scope = scanned.scopes[scope_index];
      if (scope.resource_index != static_cast<std::uint32_t>(r)) return scope_where + " resource";
      pb::ScopeSpans scope_header;
      pb::ScopeSpans expected_scope_header = ss;
      expected_scope_header.clear_spans();
      if (!scope_header.ParseFromString(scope.header_bytes) ||
          !MessageDifferencer::Equals(scope_header, expected_scope_header)) {
        return scope_where + " header";
      }
      if (canonical &&
          scanned.bytes_of(scope.scope) != (ss.has_scope() ? ss.scope().SerializeAsString() : "")) {
        return scope_where + " scope range";
      }
      for (const pb::Span& span : ss.spans()) {
        const std::string span_where = "span " + std::to_string(span_index);
        if (span_index >= scanned.spans.size()) return span_where + " missing";
        const SpanView& view = scanned.spans[span_index];
        if (view.scope_index != scope_index) return span_where + " scope_index";
        if (id_string(view.trace_id) != span.trace_id()) return span_where + " trace_id";
        if (id_string(view.span_id) != span.span_id()) return span_where + " span_id";
        const bool has_parent =
            span.parent_span_id().size() == 8 && span.parent_span_id() != std::string(8, '\0');
        if (view.has_parent != has_parent) return span_where + " has_parent";
        if (id_string(view.parent_span_id) !=
            (span.parent_span_id().empty() ? std::string(8, '\0') : span.parent_span_id())) {
          return span_where + " parent_span_id";
        }
        if (view.start_time_unix_nano != span.start_time_unix_nano()) return span_where + " start";
        if (view.end_time_unix_nano != span.end_time_unix_nano()) return span_where + " end";
        if (view.status != expected_status(span)) return span_where + " status";
        if (view.flags != span.flags()) return span_where + " flags";
        if (canonical) {
          if (scanned.span_bytes(view) != span.SerializeAsString()) return span_where + " bytes";
        } else {
          pb::Span reparsed;
          if (!reparsed.ParseFromString(std::string(scanned.span_bytes(view))) ||
              !MessageDifferencer::Equals(reparsed, span)) {
            return span_where + " bytes";
          }
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

inline void check_scan_matches(const ScannedRequest& scanned,
                               const pb::ExportTraceServiceRequest& parsed, bool canonical = true) {
  const std::string mismatch = scan_mismatch(scanned, parsed, canonical);
  CHECK_MESSAGE(mismatch.empty(), "scanner and libprotobuf differ: " << mismatch);
}

}  // namespace spanrelay::otlp::testing
