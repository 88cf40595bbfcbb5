#pragma once
// Protocol-buffer wire primitives (encoding spec: varints, tags, length
// prefixes). Reading is bounds-checked and never throws or allocates; writing
// appends to a std::string. Shared by the scanner, the writer and the JSON
// transcoder so that there is one implementation of the wire rules.
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace spanrelay::otlp::wire {

enum class WireType : std::uint8_t {
  kVarint = 0,
  kFixed64 = 1,
  kLengthDelimited = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kFixed32 = 5,
};

constexpr std::uint32_t make_tag(std::uint32_t field, WireType type) {
  return (field << 3) | static_cast<std::uint32_t>(type);
}

// A forward-only reader over borrowed bytes. Every read checks the bounds and
// returns std::nullopt (or false) on truncated or malformed input.
class Reader {
 public:
  explicit Reader(std::string_view bytes)
      : data_(bytes.data()), end_(bytes.data() + bytes.size()) {}

  bool done() const { return data_ == end_; }
  std::size_t remaining() const { return static_cast<std::size_t>(end_ - data_); }
  const char* position() const { return data_; }

  std::optional<std::uint64_t> read_varint() {
    // Most tags and lengths fit one byte: take them without the loop.
    if (data_ != end_ && static_cast<std::uint8_t>(*data_) < 0x80) {
      return static_cast<std::uint8_t>(*data_++);
    }
    std::uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (data_ == end_) return std::nullopt;
      const auto byte = static_cast<std::uint8_t>(*data_++);
      value |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        // The tenth byte may carry only the top bit of a 64-bit value.
        if (shift == 63 && byte > 1) return std::nullopt;
        return value;
      }
    }
    return std::nullopt;
  }

  std::optional<std::uint64_t> read_fixed64() {
    if (remaining() < 8) return std::nullopt;
    std::uint64_t value = 0;
    for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<std::uint8_t>(data_[i]);
    data_ += 8;
    return value;
  }

  std::optional<std::uint32_t> read_fixed32() {
    if (remaining() < 4) return std::nullopt;
    std::uint32_t value = 0;
    for (int i = 3; i >= 0; --i) value = (value << 8) | static_cast<std::uint8_t>(data_[i]);
    data_ += 4;
    return value;
  }

  // Reads a length prefix and returns the bytes it covers.
  std::optional<std::string_view> read_length_delimited() {
    const auto length = read_varint();
    if (!length || *length > remaining()) return std::nullopt;
    std::string_view bytes(data_, static_cast<std::size_t>(*length));
    data_ += *length;
    return bytes;
  }

  // Skips the value of a field of the given wire type. Groups (deprecated,
  // never used by OTLP) are refused as malformed.
  bool skip(WireType type) {
    switch (type) {
      case WireType::kVarint:
        return read_varint().has_value();
      case WireType::kFixed64:
        return skip_bytes(8);
      case WireType::kLengthDelimited:
        return read_length_delimited().has_value();
      case WireType::kFixed32:
        return skip_bytes(4);
      default:
        return false;
    }
  }

  struct Tag {
    std::uint32_t field;
    WireType type;
  };
  // Field number 0 and numbers above 2^29-1 are invalid per the encoding spec.
  std::optional<Tag> read_tag() {
    const auto raw = read_varint();
    if (!raw || *raw > 0xffffffffu) return std::nullopt;
    const auto field = static_cast<std::uint32_t>(*raw >> 3);
    const auto type = static_cast<std::uint32_t>(*raw & 7);
    if (field == 0 || type > 5) return std::nullopt;
    return Tag{field, static_cast<WireType>(type)};
  }

 private:
  bool skip_bytes(std::size_t n) {
    if (remaining() < n) return false;
    data_ += n;
    return true;
  }

  const char* data_;
  const char* end_;
};

inline void append_varint(std::string& out, std::uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

inline std::size_t varint_size(std::uint64_t value) {
  std::size_t n = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++n;
  }
  return n;
}

inline void append_tag(std::string& out, std::uint32_t field, WireType type) {
  append_varint(out, make_tag(field, type));
}

inline void append_fixed64(std::string& out, std::uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

inline void append_fixed32(std::string& out, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

// Appends tag + length + bytes of a length-delimited field.
inline void append_bytes_field(std::string& out, std::uint32_t field, std::string_view bytes) {
  append_tag(out, field, WireType::kLengthDelimited);
  append_varint(out, bytes.size());
  out.append(bytes);
}

}  // namespace spanrelay::otlp::wire
