#pragma once
// What a header name and value may contain, shared by exporter.headers in the
// YAML and OTEL_EXPORTER_OTLP_HEADERS in the environment.
#include <algorithm>
#include <string>
#include <string_view>

namespace spanrelay::config {

// RFC 9110 section 5.6.2 "tchar": the characters allowed in a header name.
inline bool is_valid_header_name(std::string_view name) {
  constexpr std::string_view kSymbols = "!#$%&'*+-.^_`|~";
  return !name.empty() && std::all_of(name.begin(), name.end(), [&](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           kSymbols.find(c) != std::string_view::npos;
  });
}

// gRPC metadata values (non "-bin") must be printable ASCII; HTTP/1.1 allows a
// little more, but one rule for both exporters keeps a config portable.
inline bool is_valid_header_value(std::string_view value) {
  return std::all_of(value.begin(), value.end(), [](char c) { return c >= 0x20 && c <= 0x7E; });
}

// Header names are case-insensitive, and gRPC wants metadata keys in lower
// case (gRPC PROTOCOL-HTTP2.md, "Custom-Metadata").
inline std::string lower_case_header_name(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; });
  return lower;
}

inline constexpr std::string_view kHeaderNameRule = "letters, digits and !#$%&'*+-.^_`|~ only";
inline constexpr std::string_view kHeaderValueRule =
    "header values must be printable ASCII (no line breaks or control characters)";

}  // namespace spanrelay::config
