#pragma once
// One table describing every message of an OTLP trace export request: JSON
// name, proto (snake_case) name, field number and kind of each field. Both
// directions of the OTLP/JSON transcoder walk this table, so the schema is
// written down once (field numbers from opentelemetry-proto, see
// /work/shared/otlp-wire.md).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "daemon/otlp/wire_format.h"

namespace spanrelay::otlp::schema {

enum class FieldKind : std::uint8_t {
  kString,   // string, UTF-8
  kBytes,    // bytes; base64 in JSON
  kHexId,    // bytes trace/span id; hex in OTLP/JSON (not base64)
  kEnum,     // int32 enum; an integer in OTLP/JSON
  kUint32,   // uint32 varint
  kInt64,    // int64 varint; decimal string in JSON
  kFixed64,  // fixed64 (unix nanos); decimal string in JSON
  kFixed32,  // fixed32 (span flags)
  kDouble,   // double; "NaN"/"Infinity"/"-Infinity" as strings in JSON
  kBool,
  kMessage,
};

struct EnumValue {
  std::string_view name;
  std::int32_t number;
};

struct MessageSpec;

struct FieldSpec {
  std::string_view json_name;   // lowerCamelCase, what we write
  std::string_view snake_name;  // the .proto name, also accepted on input
  std::uint32_t number = 0;
  FieldKind kind = FieldKind::kString;
  bool repeated = false;
  // Members of a oneof (AnyValue.value) have explicit presence: they are
  // written even when equal to the default (intValue 0 is not "absent").
  bool in_oneof = false;
  const MessageSpec* message = nullptr;         // kMessage only
  std::size_t id_bytes = 0;                     // kHexId only: 16 or 8
  std::span<const EnumValue> enum_values = {};  // kEnum only: accepted names

  wire::WireType wire_type() const;
  // Whether the field should be written when it holds the proto3 default.
  bool always_written() const { return repeated || in_oneof; }
};

// The largest number of fields in one message (Span has 16); lets the
// transcoder keep per-message state in fixed arrays.
inline constexpr std::size_t kMaxFieldsPerMessage = 16;

struct MessageSpec {
  std::string_view name;
  std::span<const FieldSpec> fields;  // ascending field number
  // AnyValue is the only recursive point of the schema (through ArrayValue and
  // KeyValueList): entering it counts one level against the nesting limit.
  bool counts_nesting = false;

  // Index into `fields` of the field with this JSON or snake_case name.
  std::optional<std::size_t> find_by_name(std::string_view name) const;
  std::optional<std::size_t> find_by_number(std::uint32_t number) const;
};

// ExportTraceServiceRequest and TracesData share this shape (and bytes).
extern const MessageSpec kTracesData;

}  // namespace spanrelay::otlp::schema
