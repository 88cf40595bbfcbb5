// OTLP/JSON -> protobuf binary. The reverse direction lives in
// protobuf_to_json.cc; both follow the table in otlp_schema.cc.
#include "daemon/otlp/json_transcoder.h"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <deque>
#include <limits>

#include "daemon/otlp/json_text.h"
#include "daemon/otlp/otlp_schema.h"
#include "daemon/otlp/wire_format.h"

namespace spanrelay::otlp {
namespace {

namespace dom = simdjson::dom;
using json_text::JsonPath;
using schema::FieldKind;
using schema::FieldSpec;
using schema::MessageSpec;

std::string_view type_name(dom::element_type type) {
  switch (type) {
    case dom::element_type::ARRAY:
      return "array";
    case dom::element_type::OBJECT:
      return "object";
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
    case dom::element_type::DOUBLE:
      return "number";
    case dom::element_type::STRING:
      return "string";
    case dom::element_type::BOOL:
      return "boolean";
    case dom::element_type::NULL_VALUE:
      return "null";
  }
  return "value";
}

// Walks a parsed JSON document along the schema and writes proto3 binary.
class JsonToProtobuf {
 public:
  explicit JsonToProtobuf(std::size_t max_depth) : max_depth_(max_depth) {}

  Status encode_message(dom::object object, const MessageSpec& spec, std::string& out,
                        std::size_t depth) {
    if (spec.counts_nesting && ++depth > max_depth_) {
      return path_.error("nesting deeper than " + std::to_string(max_depth_));
    }
    // One pass over the members picks the known ones; they are then written in
    // field-number order, the canonical proto3 order.
    std::array<dom::element, schema::kMaxFieldsPerMessage> values;
    std::array<bool, schema::kMaxFieldsPerMessage> seen{};
    std::array<bool, schema::kMaxFieldsPerMessage> present{};
    const FieldSpec* oneof_member = nullptr;
    for (dom::key_value_pair member : object) {
      const auto index = spec.find_by_name(member.key);
      if (!index) continue;  // OTLP/JSON: unknown field names must be ignored.
      const FieldSpec& field = spec.fields[*index];
      JsonPath::Segment segment(path_, field.json_name);
      if (seen[*index]) return path_.error("duplicate key");
      seen[*index] = true;
      if (member.value.is_null()) continue;  // proto3 JSON: null means absent.
      if (field.in_oneof) {
        if (oneof_member != nullptr) {
          return path_.error("only one value may be set, found also " +
                             std::string(oneof_member->json_name));
        }
        oneof_member = &field;
      }
      values[*index] = member.value;
      present[*index] = true;
    }
    for (std::size_t i = 0; i < spec.fields.size(); ++i) {
      if (!present[i]) continue;
      JsonPath::Segment segment(path_, spec.fields[i].json_name);
      if (auto status = encode_field(spec.fields[i], values[i], out, depth); !status) {
        return status;
      }
    }
    return Ok{};
  }

 private:
  Status encode_field(const FieldSpec& field, dom::element value, std::string& out,
                      std::size_t depth) {
    if (!field.repeated) return encode_value(field, value, out, depth);
    dom::array items;
    if (value.get_array().get(items)) return type_error("array", value);
    std::size_t index = 0;
    for (dom::element item : items) {
      JsonPath::Segment segment(path_, index++);
      if (item.is_null()) return path_.error("null is not allowed in a list");
      if (auto status = encode_value(field, item, out, depth); !status) return status;
    }
    return Ok{};
  }

  Status encode_value(const FieldSpec& field, dom::element value, std::string& out,
                      std::size_t depth) {
    switch (field.kind) {
      case FieldKind::kMessage:
        return encode_nested_message(field, value, out, depth);
      case FieldKind::kString: {
        std::string_view text;
        if (value.get_string().get(text)) return type_error("string", value);
        if (!text.empty() || field.always_written())
          wire::append_bytes_field(out, field.number, text);
        return Ok{};
      }
      case FieldKind::kBytes: {
        std::string_view text;
        if (value.get_string().get(text)) return type_error("base64 string", value);
        if (!json_text::decode_base64(text, bytes_)) return path_.error("invalid base64");
        if (!bytes_.empty() || field.always_written()) {
          wire::append_bytes_field(out, field.number, bytes_);
        }
        return Ok{};
      }
      case FieldKind::kHexId:
        return encode_hex_id(field, value, out);
      case FieldKind::kEnum: {
        auto number = enum_number(field, value);
        if (!number) return number.error();
        // Negative int32 enum values are sign-extended to 64 bits on the wire.
        append_varint_field(out, field, static_cast<std::uint64_t>(std::int64_t{number.value()}));
        return Ok{};
      }
      case FieldKind::kUint32:
      case FieldKind::kFixed32: {
        auto number = unsigned_integer(value, std::numeric_limits<std::uint32_t>::max(), "uint32");
        if (!number) return number.error();
        if (field.kind == FieldKind::kUint32) {
          append_varint_field(out, field, number.value());
        } else if (number.value() != 0 || field.always_written()) {
          wire::append_tag(out, field.number, wire::WireType::kFixed32);
          wire::append_fixed32(out, static_cast<std::uint32_t>(number.value()));
        }
        return Ok{};
      }
      case FieldKind::kInt64: {
        auto number = signed_integer(value, std::numeric_limits<std::int64_t>::min(),
                                     std::numeric_limits<std::int64_t>::max(), "int64");
        if (!number) return number.error();
        append_varint_field(out, field, static_cast<std::uint64_t>(number.value()));
        return Ok{};
      }
      case FieldKind::kFixed64: {
        auto number = unsigned_integer(value, std::numeric_limits<std::uint64_t>::max(), "uint64");
        if (!number) return number.error();
        if (number.value() != 0 || field.always_written()) {
          wire::append_tag(out, field.number, wire::WireType::kFixed64);
          wire::append_fixed64(out, number.value());
        }
        return Ok{};
      }
      case FieldKind::kDouble: {
        auto number = floating(value);
        if (!number) return number.error();
        // proto3 omits only +0.0 (the bit pattern of the default).
        const auto bits = std::bit_cast<std::uint64_t>(number.value());
        if (bits != 0 || field.always_written()) {
          wire::append_tag(out, field.number, wire::WireType::kFixed64);
          wire::append_fixed64(out, bits);
        }
        return Ok{};
      }
      case FieldKind::kBool: {
        bool flag = false;
        if (value.get_bool().get(flag)) return type_error("boolean", value);
        append_varint_field(out, field, flag ? 1 : 0);
        return Ok{};
      }
    }
    return path_.error("unsupported field kind");
  }

  static void append_varint_field(std::string& out, const FieldSpec& field, std::uint64_t value) {
    if (value == 0 && !field.always_written()) return;
    wire::append_tag(out, field.number, wire::WireType::kVarint);
    wire::append_varint(out, value);
  }

  // A nested message is encoded into a scratch buffer of its nesting level,
  // then appended with its length; buffers are reused across siblings, and each
  // byte is copied once per enclosing message (bounded by the depth limit).
  Status encode_nested_message(const FieldSpec& field, dom::element value, std::string& out,
                               std::size_t depth) {
    dom::object object;
    if (value.get_object().get(object)) return type_error("object", value);
    if (scratch_level_ == scratch_.size()) scratch_.emplace_back();
    std::string& buffer = scratch_[scratch_level_++];  // deque: stays valid as it grows
    buffer.clear();
    auto status = encode_message(object, *field.message, buffer, depth);
    --scratch_level_;
    if (!status) return status;
    wire::append_bytes_field(out, field.number, buffer);
    return Ok{};
  }

  Status encode_hex_id(const FieldSpec& field, dom::element value, std::string& out) {
    std::string_view text;
    if (value.get_string().get(text)) return type_error("hex string", value);
    if (text.empty()) return Ok{};  // "" is the empty (absent) id, e.g. a root span's parent.
    const std::size_t expected = 2 * field.id_bytes;
    if (text.size() != expected) {
      return path_.error("expected " + std::to_string(expected) + " hex characters, got " +
                         std::to_string(text.size()));
    }
    if (const auto bad = json_text::decode_hex(text, bytes_)) {
      return path_.error("invalid hex character at offset " + std::to_string(*bad));
    }
    wire::append_bytes_field(out, field.number, bytes_);
    return Ok{};
  }

  // OTLP/JSON sends enums as integers; proto3 JSON names are accepted too.
  Result<std::int32_t> enum_number(const FieldSpec& field, dom::element value) {
    std::string_view name;
    if (!value.get_string().get(name)) {
      for (const auto& known : field.enum_values) {
        if (known.name == name) return known.number;
      }
      if (!json_text::parse_signed_decimal(name)) {
        return path_.error("unknown enum value \"" + std::string(name) + "\"");
      }
    }
    auto number = signed_integer(value, std::numeric_limits<std::int32_t>::min(),
                                 std::numeric_limits<std::int32_t>::max(), "enum");
    if (!number) return number.error();
    return static_cast<std::int32_t>(number.value());
  }

  // 64-bit integers arrive as decimal strings or numbers (OTLP/JSON: receivers
  // must accept both); an integral float such as 1e3 is accepted as well.
  Result<std::uint64_t> unsigned_integer(dom::element value, std::uint64_t max,
                                         std::string_view type) {
    std::optional<std::uint64_t> number;
    switch (value.type()) {
      case dom::element_type::INT64: {
        std::int64_t signed_number = 0;
        if (!value.get_int64().get(signed_number) && signed_number >= 0) {
          number = static_cast<std::uint64_t>(signed_number);
        }
        break;
      }
      case dom::element_type::UINT64: {
        std::uint64_t unsigned_number = 0;
        if (!value.get_uint64().get(unsigned_number)) number = unsigned_number;
        break;
      }
      case dom::element_type::DOUBLE: {
        double real = 0;
        if (!value.get_double().get(real) && real >= 0 && real < 0x1p64 &&
            std::floor(real) == real) {
          number = static_cast<std::uint64_t>(real);
        }
        break;
      }
      case dom::element_type::STRING: {
        std::string_view text;
        if (!value.get_string().get(text)) number = json_text::parse_unsigned_decimal(text);
        break;
      }
      default:
        return type_error(std::string(type) + " (number or decimal string)", value);
    }
    if (!number || *number > max)
      return path_.error("invalid or out of range " + std::string(type));
    return *number;
  }

  Result<std::int64_t> signed_integer(dom::element value, std::int64_t min, std::int64_t max,
                                      std::string_view type) {
    std::optional<std::int64_t> number;
    switch (value.type()) {
      case dom::element_type::INT64: {
        std::int64_t signed_number = 0;
        if (!value.get_int64().get(signed_number)) number = signed_number;
        break;
      }
      case dom::element_type::UINT64:
        break;  // above INT64_MAX by definition
      case dom::element_type::DOUBLE: {
        double real = 0;
        if (!value.get_double().get(real) && real >= -0x1p63 && real < 0x1p63 &&
            std::floor(real) == real) {
          number = static_cast<std::int64_t>(real);
        }
        break;
      }
      case dom::element_type::STRING: {
        std::string_view text;
        if (!value.get_string().get(text)) number = json_text::parse_signed_decimal(text);
        break;
      }
      default:
        return type_error(std::string(type) + " (number or decimal string)", value);
    }
    if (!number || *number < min || *number > max) {
      return path_.error("invalid or out of range " + std::string(type));
    }
    return *number;
  }

  Result<double> floating(dom::element value) {
    switch (value.type()) {
      case dom::element_type::INT64:
      case dom::element_type::UINT64:
      case dom::element_type::DOUBLE: {
        double real = 0;  // simdjson converts integers to double here
        if (!value.get_double().get(real)) return real;
        break;
      }
      case dom::element_type::STRING: {
        std::string_view text;
        if (!value.get_string().get(text)) {
          if (auto real = json_text::parse_double_string(text)) return *real;
        }
        return path_.error(
            "invalid double (expected a number, \"NaN\", \"Infinity\" or "
            "\"-Infinity\")");
      }
      default:
        break;
    }
    return type_error("number", value);
  }

  Error type_error(std::string_view expected, dom::element value) const {
    return path_.error("expected " + std::string(expected) + ", got " +
                       std::string(type_name(value.type())));
  }

  std::size_t max_depth_;
  JsonPath path_;
  std::deque<std::string> scratch_;  // one buffer per message nesting level
  std::size_t scratch_level_ = 0;
  std::string bytes_;  // decoded ids and base64, reused
};

}  // namespace

Result<std::string> json_to_protobuf(std::string_view json, const JsonLimits& limits) {
  const std::size_t max_depth = std::min(limits.max_depth, kMaxSupportedJsonDepth);
  // A request reaches its first attribute value 12 JSON levels down (through
  // spans, events and attributes) and each AnyValue level adds at most 4
  // (kvlistValue, values, a KeyValue, its value). Deeper JSON cannot be a
  // request within the limit, so simdjson refuses it before we walk it.
  const std::size_t max_json_depth = 16 + 4 * max_depth;
  dom::parser parser;
  if (auto error = parser.allocate(std::max<std::size_t>(json.size(), 64), max_json_depth)) {
    return Error{"cannot parse JSON: " + std::string(simdjson::error_message(error))};
  }
  const simdjson::padded_string padded(json);
  dom::element root;
  if (auto error = parser.parse(padded).get(root)) {
    if (error == simdjson::DEPTH_ERROR) {
      return Error{"nesting deeper than " + std::to_string(max_depth) + " (JSON deeper than " +
                   std::to_string(max_json_depth) + " levels)"};
    }
    return Error{"invalid JSON: " + std::string(simdjson::error_message(error))};
  }
  dom::object object;
  if (root.get_object().get(object)) {
    return Error{"expected a JSON object at the top level, got " +
                 std::string(type_name(root.type()))};
  }
  std::string out;
  JsonToProtobuf encoder(max_depth);
  if (auto status = encoder.encode_message(object, schema::kTracesData, out, 0); !status) {
    return status.error();
  }
  return out;
}

}  // namespace spanrelay::otlp
