#include "daemon/otlp/otlp_schema.h"

#include <array>

namespace spanrelay::otlp::schema {

// The schema is recursive (AnyValue -> ArrayValue -> AnyValue, AnyValue ->
// KeyValueList -> KeyValue -> AnyValue), so the messages are declared first.
extern const MessageSpec kAnyValue;
extern const MessageSpec kArrayValue;
extern const MessageSpec kKeyValueList;
extern const MessageSpec kKeyValue;

namespace {

constexpr FieldSpec scalar(std::string_view json, std::string_view snake, std::uint32_t number,
                           FieldKind kind) {
  return FieldSpec{.json_name = json, .snake_name = snake, .number = number, .kind = kind};
}

constexpr FieldSpec repeated_string(std::string_view json, std::string_view snake,
                                    std::uint32_t number) {
  FieldSpec spec = scalar(json, snake, number, FieldKind::kString);
  spec.repeated = true;
  return spec;
}

constexpr FieldSpec hex_id(std::string_view json, std::string_view snake, std::uint32_t number,
                           std::size_t id_bytes) {
  FieldSpec spec = scalar(json, snake, number, FieldKind::kHexId);
  spec.id_bytes = id_bytes;
  return spec;
}

constexpr FieldSpec enumeration(std::string_view json, std::string_view snake, std::uint32_t number,
                                std::span<const EnumValue> values) {
  FieldSpec spec = scalar(json, snake, number, FieldKind::kEnum);
  spec.enum_values = values;
  return spec;
}

constexpr FieldSpec message(std::string_view json, std::string_view snake, std::uint32_t number,
                            const MessageSpec& type) {
  FieldSpec spec = scalar(json, snake, number, FieldKind::kMessage);
  spec.message = &type;
  return spec;
}

constexpr FieldSpec repeated_message(std::string_view json, std::string_view snake,
                                     std::uint32_t number, const MessageSpec& type) {
  FieldSpec spec = message(json, snake, number, type);
  spec.repeated = true;
  return spec;
}

constexpr FieldSpec oneof(FieldSpec spec) {
  spec.in_oneof = true;
  return spec;
}

constexpr std::uint32_t kTraceIdBytes = 16;
constexpr std::uint32_t kSpanIdBytes = 8;

constexpr std::array kSpanKindValues{
    EnumValue{"SPAN_KIND_UNSPECIFIED", 0}, EnumValue{"SPAN_KIND_INTERNAL", 1},
    EnumValue{"SPAN_KIND_SERVER", 2},      EnumValue{"SPAN_KIND_CLIENT", 3},
    EnumValue{"SPAN_KIND_PRODUCER", 4},    EnumValue{"SPAN_KIND_CONSUMER", 5},
};

constexpr std::array kStatusCodeValues{
    EnumValue{"STATUS_CODE_UNSET", 0},
    EnumValue{"STATUS_CODE_OK", 1},
    EnumValue{"STATUS_CODE_ERROR", 2},
};

// --- opentelemetry.proto.common.v1 ---

constinit const std::array kAnyValueFields{
    oneof(scalar("stringValue", "string_value", 1, FieldKind::kString)),
    oneof(scalar("boolValue", "bool_value", 2, FieldKind::kBool)),
    oneof(scalar("intValue", "int_value", 3, FieldKind::kInt64)),
    oneof(scalar("doubleValue", "double_value", 4, FieldKind::kDouble)),
    oneof(message("arrayValue", "array_value", 5, kArrayValue)),
    oneof(message("kvlistValue", "kvlist_value", 6, kKeyValueList)),
    oneof(scalar("bytesValue", "bytes_value", 7, FieldKind::kBytes)),
};

constinit const std::array kArrayValueFields{
    repeated_message("values", "values", 1, kAnyValue),
};

constinit const std::array kKeyValueListFields{
    repeated_message("values", "values", 1, kKeyValue),
};

constinit const std::array kKeyValueFields{
    scalar("key", "key", 1, FieldKind::kString),
    message("value", "value", 2, kAnyValue),
};

constinit const std::array kInstrumentationScopeFields{
    scalar("name", "name", 1, FieldKind::kString),
    scalar("version", "version", 2, FieldKind::kString),
    repeated_message("attributes", "attributes", 3, kKeyValue),
    scalar("droppedAttributesCount", "dropped_attributes_count", 4, FieldKind::kUint32),
};

constinit const std::array kEntityRefFields{
    scalar("schemaUrl", "schema_url", 1, FieldKind::kString),
    scalar("type", "type", 2, FieldKind::kString),
    repeated_string("idKeys", "id_keys", 3),
    repeated_string("descriptionKeys", "description_keys", 4),
};

}  // namespace

constinit const MessageSpec kAnyValue{"AnyValue", kAnyValueFields, /*counts_nesting=*/true};
constinit const MessageSpec kArrayValue{"ArrayValue", kArrayValueFields};
constinit const MessageSpec kKeyValueList{"KeyValueList", kKeyValueListFields};
constinit const MessageSpec kKeyValue{"KeyValue", kKeyValueFields};

namespace {

constinit const MessageSpec kInstrumentationScope{"InstrumentationScope",
                                                  kInstrumentationScopeFields};
constinit const MessageSpec kEntityRef{"EntityRef", kEntityRefFields};

// --- opentelemetry.proto.resource.v1 ---

constinit const std::array kResourceFields{
    repeated_message("attributes", "attributes", 1, kKeyValue),
    scalar("droppedAttributesCount", "dropped_attributes_count", 2, FieldKind::kUint32),
    repeated_message("entityRefs", "entity_refs", 3, kEntityRef),
};
constinit const MessageSpec kResource{"Resource", kResourceFields};

// --- opentelemetry.proto.trace.v1 ---

constinit const std::array kStatusFields{
    // Field 1 is reserved (the deprecated code); unknown fields are skipped.
    scalar("message", "message", 2, FieldKind::kString),
    enumeration("code", "code", 3, kStatusCodeValues),
};
constinit const MessageSpec kStatus{"Status", kStatusFields};

constinit const std::array kEventFields{
    scalar("timeUnixNano", "time_unix_nano", 1, FieldKind::kFixed64),
    scalar("name", "name", 2, FieldKind::kString),
    repeated_message("attributes", "attributes", 3, kKeyValue),
    scalar("droppedAttributesCount", "dropped_attributes_count", 4, FieldKind::kUint32),
};
constinit const MessageSpec kEvent{"Span.Event", kEventFields};

constinit const std::array kLinkFields{
    hex_id("traceId", "trace_id", 1, kTraceIdBytes),
    hex_id("spanId", "span_id", 2, kSpanIdBytes),
    scalar("traceState", "trace_state", 3, FieldKind::kString),
    repeated_message("attributes", "attributes", 4, kKeyValue),
    scalar("droppedAttributesCount", "dropped_attributes_count", 5, FieldKind::kUint32),
    scalar("flags", "flags", 6, FieldKind::kFixed32),
};
constinit const MessageSpec kLink{"Span.Link", kLinkFields};

constinit const std::array kSpanFields{
    hex_id("traceId", "trace_id", 1, kTraceIdBytes),
    hex_id("spanId", "span_id", 2, kSpanIdBytes),
    scalar("traceState", "trace_state", 3, FieldKind::kString),
    hex_id("parentSpanId", "parent_span_id", 4, kSpanIdBytes),
    scalar("name", "name", 5, FieldKind::kString),
    enumeration("kind", "kind", 6, kSpanKindValues),
    scalar("startTimeUnixNano", "start_time_unix_nano", 7, FieldKind::kFixed64),
    scalar("endTimeUnixNano", "end_time_unix_nano", 8, FieldKind::kFixed64),
    repeated_message("attributes", "attributes", 9, kKeyValue),
    scalar("droppedAttributesCount", "dropped_attributes_count", 10, FieldKind::kUint32),
    repeated_message("events", "events", 11, kEvent),
    scalar("droppedEventsCount", "dropped_events_count", 12, FieldKind::kUint32),
    repeated_message("links", "links", 13, kLink),
    scalar("droppedLinksCount", "dropped_links_count", 14, FieldKind::kUint32),
    message("status", "status", 15, kStatus),
    scalar("flags", "flags", 16, FieldKind::kFixed32),
};
static_assert(kSpanFields.size() <= kMaxFieldsPerMessage);
constinit const MessageSpec kSpan{"Span", kSpanFields};

constinit const std::array kScopeSpansFields{
    message("scope", "scope", 1, kInstrumentationScope),
    repeated_message("spans", "spans", 2, kSpan),
    scalar("schemaUrl", "schema_url", 3, FieldKind::kString),
};
constinit const MessageSpec kScopeSpans{"ScopeSpans", kScopeSpansFields};

constinit const std::array kResourceSpansFields{
    message("resource", "resource", 1, kResource),
    repeated_message("scopeSpans", "scope_spans", 2, kScopeSpans),
    scalar("schemaUrl", "schema_url", 3, FieldKind::kString),
};
constinit const MessageSpec kResourceSpans{"ResourceSpans", kResourceSpansFields};

constinit const std::array kTracesDataFields{
    repeated_message("resourceSpans", "resource_spans", 1, kResourceSpans),
};

}  // namespace

constinit const MessageSpec kTracesData{"TracesData", kTracesDataFields};

wire::WireType FieldSpec::wire_type() const {
  switch (kind) {
    case FieldKind::kEnum:
    case FieldKind::kUint32:
    case FieldKind::kInt64:
    case FieldKind::kBool:
      return wire::WireType::kVarint;
    case FieldKind::kFixed64:
    case FieldKind::kDouble:
      return wire::WireType::kFixed64;
    case FieldKind::kFixed32:
      return wire::WireType::kFixed32;
    case FieldKind::kString:
    case FieldKind::kBytes:
    case FieldKind::kHexId:
    case FieldKind::kMessage:
      return wire::WireType::kLengthDelimited;
  }
  return wire::WireType::kLengthDelimited;
}

std::optional<std::size_t> MessageSpec::find_by_name(std::string_view field_name) const {
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (fields[i].json_name == field_name || fields[i].snake_name == field_name) return i;
  }
  return std::nullopt;
}

std::optional<std::size_t> MessageSpec::find_by_number(std::uint32_t number) const {
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (fields[i].number == number) return i;
  }
  return std::nullopt;
}

}  // namespace spanrelay::otlp::schema
