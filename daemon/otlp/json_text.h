#pragma once
// Text encodings used by the OTLP/JSON transcoder: hex ids, base64 bytes,
// JSON string escaping and number formatting, and the JSON path that error
// messages name. Internal to daemon/otlp.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/common/result.h"

namespace spanrelay::otlp::json_text {

// Lower-case hex, as OTLP/JSON writes trace and span ids.
void append_hex(std::string& out, std::string_view bytes);
// Decodes hex of either case into `out` (cleared first). Returns the offset of
// the first invalid character, or nullopt on success. `hex` must have even length.
std::optional<std::size_t> decode_hex(std::string_view hex, std::string& out);

// Standard alphabet with padding (proto3 JSON mapping for bytes).
void append_base64(std::string& out, std::string_view bytes);
// Accepts the standard and the URL-safe alphabet, with or without padding.
// Decodes into `out` (cleared first); false on malformed input.
bool decode_base64(std::string_view text, std::string& out);

// Appends `utf8` as a quoted JSON string; the caller has validated the UTF-8.
void append_json_string(std::string& out, std::string_view utf8);
// Appends a double the proto3 JSON way: a number that round-trips exactly
// (always with '.' or an exponent, so readers see a float), or one of the
// strings "NaN", "Infinity", "-Infinity".
void append_json_double(std::string& out, double value);
void append_decimal(std::string& out, std::uint64_t value);
void append_decimal(std::string& out, std::int64_t value);

// Strict decimal integer strings (optional leading '-' for signed): the whole
// string must be the number.
std::optional<std::uint64_t> parse_unsigned_decimal(std::string_view text);
std::optional<std::int64_t> parse_signed_decimal(std::string_view text);
// A decimal floating-point string ("1.5", "-2e10") or NaN/Infinity/-Infinity.
std::optional<double> parse_double_string(std::string_view text);

// The JSON path of the value being converted ("resourceSpans[0].scopeSpans[1]"),
// grown and shrunk with scoped Segments so errors can name where they happened.
class JsonPath {
 public:
  class Segment {
   public:
    Segment(JsonPath& path, std::string_view key);
    Segment(JsonPath& path, std::size_t index);
    ~Segment() { path_.text_.resize(previous_size_); }
    Segment(const Segment&) = delete;
    Segment& operator=(const Segment&) = delete;

   private:
    JsonPath& path_;
    std::size_t previous_size_;
  };

  const std::string& text() const { return text_; }
  // "<path>: <message>", or just the message at the top level.
  Error error(std::string_view message) const;

 private:
  std::string text_;
};

}  // namespace spanrelay::otlp::json_text
