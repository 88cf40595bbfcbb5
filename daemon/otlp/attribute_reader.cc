#include "daemon/otlp/attribute_reader.h"

#include <bit>
#include <charconv>

#include "daemon/otlp/wire_format.h"

namespace spanrelay::otlp {
namespace {

using wire::WireType;

// common.v1.KeyValue and common.v1.AnyValue field numbers (OTLP common.proto).
constexpr std::uint32_t kKeyValueKey = 1;
constexpr std::uint32_t kKeyValueValue = 2;
constexpr std::uint32_t kAnyString = 1;
constexpr std::uint32_t kAnyBool = 2;
constexpr std::uint32_t kAnyInt = 3;
constexpr std::uint32_t kAnyDouble = 4;
constexpr std::uint32_t kAnyArray = 5;
constexpr std::uint32_t kAnyKvlist = 6;
constexpr std::uint32_t kAnyBytes = 7;

// The AnyValue oneof member that is set, with its raw value.
struct AnyValueState {
  enum class Kind { kUnset, kString, kBool, kInt, kDouble, kNotText } kind = Kind::kUnset;
  std::string_view string_value;
  std::uint64_t bits = 0;  // varint or fixed64 payload
};

// Merges one encoded AnyValue into `state` the way protobuf merges repeated
// occurrences of a singular message field: the oneof member read last wins.
// Returns false on malformed framing.
bool merge_any_value(std::string_view bytes, AnyValueState& state) {
  using Kind = AnyValueState::Kind;
  wire::Reader reader(bytes);
  while (!reader.done()) {
    const auto tag = reader.read_tag();
    if (!tag) return false;
    const auto expected = [&](std::uint32_t field, WireType type) {
      return tag->field == field && tag->type == type;
    };
    if (expected(kAnyString, WireType::kLengthDelimited)) {
      const auto text = reader.read_length_delimited();
      if (!text) return false;
      state.kind = Kind::kString;
      state.string_value = *text;
    } else if (expected(kAnyBool, WireType::kVarint) || expected(kAnyInt, WireType::kVarint)) {
      const auto value = reader.read_varint();
      if (!value) return false;
      state.kind = tag->field == kAnyBool ? Kind::kBool : Kind::kInt;
      state.bits = *value;
    } else if (expected(kAnyDouble, WireType::kFixed64)) {
      const auto value = reader.read_fixed64();
      if (!value) return false;
      state.kind = Kind::kDouble;
      state.bits = *value;
    } else if (expected(kAnyArray, WireType::kLengthDelimited) ||
               expected(kAnyKvlist, WireType::kLengthDelimited) ||
               expected(kAnyBytes, WireType::kLengthDelimited)) {
      if (!reader.read_length_delimited()) return false;
      state.kind = Kind::kNotText;
    } else if (!reader.skip(tag->type)) {
      return false;
    }
  }
  return true;
}

// The key of one encoded KeyValue (the last occurrence wins; absent = "").
std::optional<std::string_view> key_of(std::string_view key_value) {
  std::string_view key;
  wire::Reader reader(key_value);
  while (!reader.done()) {
    const auto tag = reader.read_tag();
    if (!tag) return std::nullopt;
    if (tag->field == kKeyValueKey && tag->type == WireType::kLengthDelimited) {
      const auto text = reader.read_length_delimited();
      if (!text) return std::nullopt;
      key = *text;
    } else if (!reader.skip(tag->type)) {
      return std::nullopt;
    }
  }
  return key;
}

// The text form of the (merged) value of one encoded KeyValue.
std::optional<AttributeText> value_text_of(std::string_view key_value) {
  using Kind = AnyValueState::Kind;
  AnyValueState state;
  wire::Reader reader(key_value);
  while (!reader.done()) {
    const auto tag = reader.read_tag();
    if (!tag) return std::nullopt;
    if (tag->field == kKeyValueValue && tag->type == WireType::kLengthDelimited) {
      const auto any_value = reader.read_length_delimited();
      if (!any_value || !merge_any_value(*any_value, state)) return std::nullopt;
    } else if (!reader.skip(tag->type)) {
      return std::nullopt;
    }
  }
  switch (state.kind) {
    case Kind::kString:
      return AttributeText::borrowed(state.string_value);
    case Kind::kBool:
      return AttributeText::from_bool(state.bits != 0);
    case Kind::kInt:
      return AttributeText::from_int(static_cast<std::int64_t>(state.bits));
    case Kind::kDouble:
      return AttributeText::from_double(std::bit_cast<double>(state.bits));
    case Kind::kUnset:
    case Kind::kNotText:
      break;
  }
  return std::nullopt;
}

}  // namespace

AttributeText AttributeText::borrowed(std::string_view text) {
  AttributeText result;
  result.is_borrowed_ = true;
  result.borrowed_ = text;
  return result;
}

AttributeText AttributeText::from_int(std::int64_t value) {
  AttributeText result;
  const auto [end, error] =
      std::to_chars(result.buffer_.data(), result.buffer_.data() + result.buffer_.size(), value);
  result.size_ = static_cast<std::uint8_t>(end - result.buffer_.data());
  return result;
}

AttributeText AttributeText::from_bool(bool value) {
  return borrowed(value ? std::string_view("true") : std::string_view("false"));
}

AttributeText AttributeText::from_double(double value) {
  AttributeText result;
  const auto [end, error] =
      std::to_chars(result.buffer_.data(), result.buffer_.data() + result.buffer_.size(), value);
  result.size_ = static_cast<std::uint8_t>(end - result.buffer_.data());
  return result;
}

std::optional<AttributeText> find_attribute_text(std::string_view message,
                                                 std::uint32_t field_number, std::string_view key) {
  wire::Reader reader(message);
  while (!reader.done()) {
    const auto tag = reader.read_tag();
    if (!tag) return std::nullopt;
    if (tag->field != field_number || tag->type != WireType::kLengthDelimited) {
      if (!reader.skip(tag->type)) return std::nullopt;
      continue;
    }
    const auto key_value = reader.read_length_delimited();
    if (!key_value) return std::nullopt;
    const auto this_key = key_of(*key_value);
    if (!this_key) return std::nullopt;
    if (*this_key == key) return value_text_of(*key_value);
  }
  return std::nullopt;
}

std::optional<std::string> find_attribute(std::string_view message, std::uint32_t field_number,
                                          std::string_view key) {
  const auto text = find_attribute_text(message, field_number, key);
  if (!text) return std::nullopt;
  return text->str();
}

}  // namespace spanrelay::otlp
