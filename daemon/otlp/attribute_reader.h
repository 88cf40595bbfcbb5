#pragma once
// Reads one attribute straight from the encoded bytes of an OTLP message
// (Span, Resource, Span.Event, ...) without parsing the rest of it: the
// sampling policies look up a handful of keys per span, and building
// libprotobuf objects for that would cost more than the rest of the hot path.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace spanrelay::otlp {

// Field numbers of the repeated `attributes` (common.v1.KeyValue) field in the
// messages we look into (OTLP trace.proto / resource.proto).
inline constexpr std::uint32_t kSpanAttributesField = 9;
inline constexpr std::uint32_t kResourceAttributesField = 1;
inline constexpr std::uint32_t kEventAttributesField = 3;

// The text form of an attribute value, held without allocating: a string value
// borrows the message bytes (so it lives as long as they do), a number or bool
// is rendered into an inline buffer. Safe to copy.
class AttributeText {
 public:
  static AttributeText borrowed(std::string_view text);
  static AttributeText from_int(std::int64_t value);
  static AttributeText from_bool(bool value);
  // Shortest text that reads back as the same double (std::to_chars), e.g.
  // "0.1", "1e+100", "-0", "inf", "nan".
  static AttributeText from_double(double value);

  std::string_view view() const {
    return is_borrowed_ ? borrowed_ : std::string_view(buffer_.data(), size_);
  }
  std::string str() const { return std::string(view()); }

 private:
  AttributeText() = default;

  bool is_borrowed_ = false;
  std::string_view borrowed_;
  // 32 bytes hold any int64 (20 chars) and any shortest double (24 chars).
  std::array<char, 32> buffer_{};
  std::uint8_t size_ = 0;
};

// Looks up attribute `key` among the repeated KeyValue field `field_number` of
// the encoded `message` (a message body: no tag, no length prefix) and returns
// the text form of its value: a string as is, an int as decimal, a bool as
// "true"/"false", a double as shortest round-trip text. bytes, array and
// kvlist values, and an AnyValue with nothing set, are not matched (nullopt).
//
// The first KeyValue whose key equals `key` decides, as in the OTLP rule that
// keys are unique (a later duplicate is never consulted). Inside one KeyValue
// and its AnyValue the protobuf merge rules apply (last key wins; the oneof
// member written last wins), so the answer equals what libprotobuf would parse.
// A KeyValue that names its key through key_strindex (field 3, profiles only)
// has no inline key and never matches.
//
// Malformed framing up to and including the matching KeyValue gives nullopt;
// bytes after it are not read. A field whose wire type differs from the one
// OTLP defines is skipped like an unknown field (libprotobuf does the same).
// Never reads outside `message` and never allocates.
std::optional<AttributeText> find_attribute_text(std::string_view message,
                                                 std::uint32_t field_number, std::string_view key);

// As find_attribute_text, with the text copied into a std::string.
std::optional<std::string> find_attribute(std::string_view message, std::uint32_t field_number,
                                          std::string_view key);

}  // namespace spanrelay::otlp
