#pragma once
// Data hygiene at ingest (issue 7): applies the `redaction:` rules to span,
// span event, span link and resource attributes, and the `resource:`
// enrichment to every ResourceSpans, after decode and before sampling and
// batching (so sampling policies see what leaves the host).
//
// It works on the wire view, not an object tree (DESIGN.md "The hot path"):
// a span none of whose attributes a rule touches keeps its original bytes and
// costs one walk over its attributes with no heap allocation. A changed span
// (or resource) is re-encoded field by field: the untouched fields, unknown
// ones included, are copied verbatim around the rewritten attributes. The
// rewritten bodies are placed after a copy of the original payload in a new
// payload buffer and the views are repointed to them; the RequestWriter then
// copies them like any other span. When no rule is configured, create()
// returns no processor and the ingest path does no work at all.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "daemon/common/result.h"
#include "daemon/config/config.h"
#include "daemon/otlp/span_view.h"
#include "daemon/processing/attribute_rules.h"
#include "daemon/telemetry/metrics.h"

namespace spanrelay::processing {

// What one process() call changed.
struct ProcessingStats {
  std::uint64_t deleted = 0;        // attributes removed (allow-list, delete, unhashable)
  std::uint64_t hashed = 0;         // attribute values replaced by their salted SHA-256
  std::uint64_t masked = 0;         // attributes with at least one masked match
  std::uint64_t spans_changed = 0;  // spans whose own bytes were rewritten
  std::uint64_t resources_changed = 0;
  std::uint64_t scopes_changed = 0;
};

class SpanProcessor {
 public:
  // nullptr when neither section configures a rule: the zero-cost path.
  // `metrics` may be null (tests); else the counters are registered at once.
  static Result<std::unique_ptr<SpanProcessor>> create(const config::RedactionConfig& redaction,
                                                       const config::ResourceConfig& resource,
                                                       telemetry::Registry* metrics);

  // Rewrites `request` in place. Thread-safe (no mutable state): receivers
  // call it from their own threads. Fails only when the rewritten payload
  // would not fit the 32-bit offsets of the wire view (a request near 4 GiB).
  Result<ProcessingStats> process(otlp::ScannedRequest& request) const;

  SpanProcessor(std::unique_ptr<AttributeRules> rules, const config::ResourceConfig& resource);

 private:
  struct Work;

  // Rewrites the repeated KeyValue field `attributes_field` of `message` (and,
  // for a span, the attributes of its events and links). True when changed,
  // then *out holds the new message body.
  bool rewrite_message(std::string_view message, std::uint32_t attributes_field, bool is_span,
                       Work& work, std::string* out) const;
  // The header of a ResourceSpans (`resource`: redaction and enrichment of
  // its Resource) or of a ScopeSpans (redaction of its InstrumentationScope):
  // the new header_bytes, or false when unchanged. *message_body is then the
  // body of its (last) Resource or scope.
  bool rewrite_group_header(std::string_view header, bool resource, Work& work, std::string* out,
                            std::string* message_body) const;

  std::unique_ptr<AttributeRules> rules_;  // null when redaction has no rule
  // Enrichment attributes, each already encoded as a Resource.attributes field
  // (tag, length, KeyValue), in file order; with their keys.
  std::vector<std::string> enrichment_keys_;
  std::vector<std::string> enrichment_fields_;
  bool override_existing_ = false;

  telemetry::Counter* deleted_counter_ = nullptr;
  telemetry::Counter* hashed_counter_ = nullptr;
  telemetry::Counter* masked_counter_ = nullptr;
  telemetry::Counter* spans_counter_ = nullptr;
};

}  // namespace spanrelay::processing
