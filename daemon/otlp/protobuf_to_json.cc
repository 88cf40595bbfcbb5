// Protobuf binary -> OTLP/JSON, driven by the same schema table as
// json_to_protobuf (json_transcoder.cc).
#include <simdjson.h>

#include <algorithm>
#include <bit>
#include <deque>
#include <vector>

#include "daemon/otlp/json_text.h"
#include "daemon/otlp/json_transcoder.h"
#include "daemon/otlp/otlp_schema.h"
#include "daemon/otlp/wire_format.h"

namespace spanrelay::otlp {
namespace {

using json_text::JsonPath;
using schema::FieldKind;
using schema::FieldSpec;
using schema::MessageSpec;

// One known field found in a message: its index in the MessageSpec and value.
struct Occurrence {
  std::uint8_t field_index = 0;
  bool superseded = false;   // a later member of the same oneof replaced it
  std::uint64_t number = 0;  // varint, fixed64 and fixed32 values
  std::string_view bytes;    // length-delimited values
};

class ProtobufToJson {
 public:
  explicit ProtobufToJson(std::size_t max_depth) : max_depth_(max_depth) {}

  // JSON objects cannot repeat a key while protobuf may interleave fields, so
  // the message is scanned first and written field by field afterwards.
  Status write_message(std::string_view bytes, const MessageSpec& spec, std::string& out,
                       std::size_t depth) {
    if (spec.counts_nesting && ++depth > max_depth_) {
      return path_.error("nesting deeper than " + std::to_string(max_depth_));
    }
    if (level_ == occurrences_.size()) occurrences_.emplace_back();
    std::vector<Occurrence>& found = occurrences_[level_];  // deque: stays valid as it grows
    ++level_;
    auto status = scan(bytes, spec, found);
    if (status) status = write_fields(spec, found, out, depth);
    --level_;
    return status;
  }

 private:
  Status scan(std::string_view bytes, const MessageSpec& spec, std::vector<Occurrence>& found) {
    found.clear();
    wire::Reader reader(bytes);
    std::size_t oneof_run_begin = 0;
    std::optional<std::uint8_t> oneof_current;
    while (!reader.done()) {
      const auto tag = reader.read_tag();
      if (!tag) return path_.error("malformed protobuf: invalid field tag");
      const auto index = spec.find_by_number(tag->field);
      // Unknown fields cannot be carried in JSON. A known number with another
      // wire type is also an unknown field to libprotobuf; do the same.
      if (!index || spec.fields[*index].wire_type() != tag->type) {
        if (!reader.skip(tag->type)) {
          return path_.error("malformed protobuf: truncated or invalid field " +
                             std::to_string(tag->field));
        }
        continue;
      }
      const FieldSpec& field = spec.fields[*index];
      Occurrence occurrence;
      occurrence.field_index = static_cast<std::uint8_t>(*index);
      bool read_ok = false;
      switch (tag->type) {
        case wire::WireType::kVarint:
          read_ok = read_into(reader.read_varint(), occurrence);
          break;
        case wire::WireType::kFixed64:
          read_ok = read_into(reader.read_fixed64(), occurrence);
          break;
        case wire::WireType::kFixed32:
          read_ok = read_into(reader.read_fixed32(), occurrence);
          break;
        case wire::WireType::kLengthDelimited:
          if (const auto value = reader.read_length_delimited()) {
            occurrence.bytes = *value;
            read_ok = true;
          }
          break;
        default:
          break;
      }
      if (!read_ok) {
        JsonPath::Segment segment(path_, field.json_name);
        return path_.error("malformed protobuf: truncated value");
      }
      if (field.in_oneof) {
        // Setting another member of a oneof clears the previous one (proto
        // parsing semantics: the last member on the wire wins).
        if (oneof_current && *oneof_current != occurrence.field_index) {
          for (std::size_t i = oneof_run_begin; i < found.size(); ++i) {
            if (spec.fields[found[i].field_index].in_oneof) found[i].superseded = true;
          }
          oneof_run_begin = found.size();
        }
        oneof_current = occurrence.field_index;
      }
      found.push_back(occurrence);
    }
    return Ok{};
  }

  template <class Number>
  static bool read_into(std::optional<Number> value, Occurrence& occurrence) {
    if (!value) return false;
    occurrence.number = *value;
    return true;
  }

  Status write_fields(const MessageSpec& spec, const std::vector<Occurrence>& found,
                      std::string& out, std::size_t depth) {
    out.push_back('{');
    bool first_key = true;
    const auto write_key = [&](const FieldSpec& field) {
      if (!first_key) out.push_back(',');
      first_key = false;
      out.push_back('"');
      out += field.json_name;
      out += "\":";
    };
    for (std::size_t index = 0; index < spec.fields.size(); ++index) {
      const FieldSpec& field = spec.fields[index];
      JsonPath::Segment segment(path_, field.json_name);
      const auto matches = [&](const Occurrence& o) {
        return o.field_index == index && !o.superseded;
      };
      if (field.repeated) {
        std::size_t count = 0;
        for (const Occurrence& occurrence : found) {
          if (!matches(occurrence)) continue;
          if (count == 0) {
            write_key(field);
            out.push_back('[');
          } else {
            out.push_back(',');
          }
          JsonPath::Segment item(path_, count++);
          if (auto status = write_value(field, occurrence, out, depth); !status) return status;
        }
        if (count > 0) out.push_back(']');
      } else if (field.kind == FieldKind::kMessage) {
        // A singular message that occurs several times is the merge of all its
        // occurrences, which is exactly the parse of their concatenation.
        const auto count = std::count_if(found.begin(), found.end(), matches);
        if (count == 0) continue;
        std::string merged;
        std::string_view bytes;
        if (count == 1) {
          bytes = std::find_if(found.begin(), found.end(), matches)->bytes;
        } else {
          for (const Occurrence& occurrence : found) {
            if (matches(occurrence)) merged += occurrence.bytes;
          }
          bytes = merged;
        }
        write_key(field);
        if (auto status = write_message(bytes, *field.message, out, depth); !status) return status;
      } else {
        // The last occurrence of a scalar wins.
        const auto last = std::find_if(found.rbegin(), found.rend(), matches);
        if (last == found.rend()) continue;
        if (!field.always_written() && is_default(*last)) continue;
        write_key(field);
        if (auto status = write_value(field, *last, out, depth); !status) return status;
      }
    }
    out.push_back('}');
    return Ok{};
  }

  static bool is_default(const Occurrence& occurrence) {
    return occurrence.number == 0 && occurrence.bytes.empty();
  }

  Status write_value(const FieldSpec& field, const Occurrence& occurrence, std::string& out,
                     std::size_t depth) {
    switch (field.kind) {
      case FieldKind::kMessage:
        return write_message(occurrence.bytes, *field.message, out, depth);
      case FieldKind::kString:
        // proto3 strings must be UTF-8 (libprotobuf refuses others), and JSON
        // readers refuse invalid UTF-8.
        if (!simdjson::validate_utf8(occurrence.bytes)) {
          return path_.error("invalid UTF-8 in string field");
        }
        json_text::append_json_string(out, occurrence.bytes);
        break;
      case FieldKind::kBytes:
        out.push_back('"');
        json_text::append_base64(out, occurrence.bytes);
        out.push_back('"');
        break;
      case FieldKind::kHexId:
        // A wrong-sized id could not be read back from OTLP/JSON.
        if (occurrence.bytes.size() != field.id_bytes && !occurrence.bytes.empty()) {
          return path_.error("expected " + std::to_string(field.id_bytes) + " bytes, got " +
                             std::to_string(occurrence.bytes.size()));
        }
        out.push_back('"');
        json_text::append_hex(out, occurrence.bytes);
        out.push_back('"');
        break;
      case FieldKind::kEnum:  // an int32 on the wire as a (sign-extended) varint
        json_text::append_decimal(
            out,
            std::int64_t{static_cast<std::int32_t>(static_cast<std::uint32_t>(occurrence.number))});
        break;
      case FieldKind::kUint32:  // proto truncates a wider varint to 32 bits
      case FieldKind::kFixed32:
        json_text::append_decimal(out,
                                  std::uint64_t{static_cast<std::uint32_t>(occurrence.number)});
        break;
      case FieldKind::kInt64:  // 64-bit integers are decimal strings in proto3 JSON
        out.push_back('"');
        json_text::append_decimal(out, static_cast<std::int64_t>(occurrence.number));
        out.push_back('"');
        break;
      case FieldKind::kFixed64:
        out.push_back('"');
        json_text::append_decimal(out, occurrence.number);
        out.push_back('"');
        break;
      case FieldKind::kDouble:
        json_text::append_json_double(out, std::bit_cast<double>(occurrence.number));
        break;
      case FieldKind::kBool:
        out += occurrence.number != 0 ? "true" : "false";
        break;
    }
    return Ok{};
  }

  std::size_t max_depth_;
  JsonPath path_;
  std::deque<std::vector<Occurrence>> occurrences_;  // one list per message nesting level
  std::size_t level_ = 0;
};

}  // namespace

Result<std::string> protobuf_to_json(std::string_view protobuf, const JsonLimits& limits) {
  std::string out;
  out.reserve(protobuf.size() * 2);
  ProtobufToJson writer(std::min(limits.max_depth, kMaxSupportedJsonDepth));
  if (auto status = writer.write_message(protobuf, schema::kTracesData, out, 0); !status) {
    return status.error();
  }
  return out;
}

}  // namespace spanrelay::otlp
