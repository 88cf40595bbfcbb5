#include "daemon/otlp/json_text.h"

#include <charconv>
#include <cmath>
#include <limits>

namespace spanrelay::otlp::json_text {
namespace {

constexpr std::string_view kHexDigits = "0123456789abcdef";
constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Both alphabets of RFC 4648: proto3 JSON parsers accept either.
int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

template <class Integer>
void append_integer(std::string& out, Integer value) {
  char buffer[24];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out.append(buffer, result.ptr);
}

template <class Number>
std::optional<Number> parse_whole(std::string_view text) {
  Number value{};
  const char* end = text.data() + text.size();
  const auto result = std::from_chars(text.data(), end, value);
  if (text.empty() || result.ec != std::errc{} || result.ptr != end) return std::nullopt;
  return value;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

void append_hex(std::string& out, std::string_view bytes) {
  for (const char byte : bytes) {
    const auto value = static_cast<std::uint8_t>(byte);
    out.push_back(kHexDigits[value >> 4]);
    out.push_back(kHexDigits[value & 0x0f]);
  }
}

std::optional<std::size_t> decode_hex(std::string_view hex, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    const int high = hex_value(hex[i]);
    if (high < 0) return i;
    const int low = hex_value(hex[i + 1]);
    if (low < 0) return i + 1;
    out.push_back(static_cast<char>((high << 4) | low));
  }
  return std::nullopt;
}

void append_base64(std::string& out, std::string_view bytes) {
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t group = (static_cast<std::uint8_t>(bytes[i]) << 16) |
                                (static_cast<std::uint8_t>(bytes[i + 1]) << 8) |
                                static_cast<std::uint8_t>(bytes[i + 2]);
    out.push_back(kBase64Alphabet[(group >> 18) & 0x3f]);
    out.push_back(kBase64Alphabet[(group >> 12) & 0x3f]);
    out.push_back(kBase64Alphabet[(group >> 6) & 0x3f]);
    out.push_back(kBase64Alphabet[group & 0x3f]);
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 0) return;
  std::uint32_t group = static_cast<std::uint8_t>(bytes[i]) << 16;
  if (rest == 2) group |= static_cast<std::uint8_t>(bytes[i + 1]) << 8;
  out.push_back(kBase64Alphabet[(group >> 18) & 0x3f]);
  out.push_back(kBase64Alphabet[(group >> 12) & 0x3f]);
  out.push_back(rest == 2 ? kBase64Alphabet[(group >> 6) & 0x3f] : '=');
  out.push_back('=');
}

bool decode_base64(std::string_view text, std::string& out) {
  out.clear();
  // Padding is optional on input (proto3 JSON parsers accept both forms).
  for (int i = 0; i < 2 && !text.empty() && text.back() == '='; ++i) text.remove_suffix(1);
  if (text.size() % 4 == 1) return false;
  std::uint32_t accumulated = 0;
  int bits = 0;
  for (const char c : text) {
    const int value = base64_value(c);
    if (value < 0) return false;
    accumulated = ((accumulated << 6) | static_cast<std::uint32_t>(value)) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((accumulated >> bits) & 0xff));
    }
  }
  return true;
}

void append_json_string(std::string& out, std::string_view utf8) {
  out.push_back('"');
  for (const char c : utf8) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<std::uint8_t>(c) < 0x20) {
          out += "\\u00";
          out.push_back(kHexDigits[static_cast<std::uint8_t>(c) >> 4]);
          out.push_back(kHexDigits[static_cast<std::uint8_t>(c) & 0x0f]);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

void append_json_double(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "\"NaN\"";
    return;
  }
  if (std::isinf(value)) {
    out += value > 0 ? "\"Infinity\"" : "\"-Infinity\"";
    return;
  }
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  const std::string_view text(buffer, static_cast<std::size_t>(result.ptr - buffer));
  out += text;
  // "3" would be read back as an integer by many JSON parsers; "3.0" is a float.
  if (text.find_first_of(".eE") == std::string_view::npos) out += ".0";
}

void append_decimal(std::string& out, std::uint64_t value) { append_integer(out, value); }
void append_decimal(std::string& out, std::int64_t value) { append_integer(out, value); }

std::optional<std::uint64_t> parse_unsigned_decimal(std::string_view text) {
  return parse_whole<std::uint64_t>(text);
}

std::optional<std::int64_t> parse_signed_decimal(std::string_view text) {
  return parse_whole<std::int64_t>(text);
}

std::optional<double> parse_double_string(std::string_view text) {
  if (text == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (text == "Infinity") return std::numeric_limits<double>::infinity();
  if (text == "-Infinity") return -std::numeric_limits<double>::infinity();
  // from_chars also takes "inf"/"nan" spellings; proto3 JSON allows only the above.
  const std::string_view digits = text.starts_with('-') ? text.substr(1) : text;
  if (digits.empty() || !is_digit(digits.front())) return std::nullopt;
  return parse_whole<double>(text);
}

JsonPath::Segment::Segment(JsonPath& path, std::string_view key)
    : path_(path), previous_size_(path.text_.size()) {
  if (!path_.text_.empty()) path_.text_.push_back('.');
  path_.text_ += key;
}

JsonPath::Segment::Segment(JsonPath& path, std::size_t index)
    : path_(path), previous_size_(path.text_.size()) {
  path_.text_.push_back('[');
  append_integer(path_.text_, index);
  path_.text_.push_back(']');
}

Error JsonPath::error(std::string_view message) const {
  if (text_.empty()) return Error{std::string(message)};
  std::string full = text_;
  full += ": ";
  full += message;
  return Error{std::move(full)};
}

}  // namespace spanrelay::otlp::json_text
