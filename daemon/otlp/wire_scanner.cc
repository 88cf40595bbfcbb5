#include "daemon/otlp/wire_scanner.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/otlp/attribute_reader.h"
#include "daemon/otlp/wire_format.h"

namespace spanrelay::otlp {
namespace {

using wire::Reader;
using wire::WireType;

// Field numbers, from OTLP collector/trace/v1/trace_service.proto and
// trace/v1/trace.proto (see shared/otlp-wire.md).
constexpr std::uint32_t kRequestResourceSpans = 1;
constexpr std::uint32_t kResourceSpansResource = 1;
constexpr std::uint32_t kResourceSpansScopeSpans = 2;
constexpr std::uint32_t kResourceSpansSchemaUrl = 3;
constexpr std::uint32_t kScopeSpansScope = 1;
constexpr std::uint32_t kScopeSpansSpans = 2;
constexpr std::uint32_t kScopeSpansSchemaUrl = 3;
constexpr std::uint32_t kSpanTraceId = 1;
constexpr std::uint32_t kSpanSpanId = 2;
constexpr std::uint32_t kSpanParentSpanId = 4;
constexpr std::uint32_t kSpanStartTime = 7;
constexpr std::uint32_t kSpanEndTime = 8;
constexpr std::uint32_t kSpanStatus = 15;
constexpr std::uint32_t kSpanFlags = 16;
constexpr std::uint32_t kStatusMessage = 2;
constexpr std::uint32_t kStatusCode = 3;
constexpr std::uint32_t kSpanAttributes = 9;
constexpr std::uint32_t kSpanEvents = 11;
constexpr std::uint32_t kSpanLinks = 13;
constexpr std::uint32_t kScopeAttributesField = 3;  // InstrumentationScope.attributes
constexpr std::uint32_t kLinkAttributesField = 4;   // Span.Link.attributes
// common/v1/common.proto: KeyValue, AnyValue, ArrayValue, KeyValueList.
constexpr std::uint32_t kKeyValueValue = 2;
constexpr std::uint32_t kAnyValueString = 1;
constexpr std::uint32_t kAnyValueArray = 5;
constexpr std::uint32_t kAnyValueKvlist = 6;
constexpr std::uint32_t kAnyValueBytes = 7;
constexpr std::uint32_t kArrayValueValues = 1;
constexpr std::uint32_t kKeyValueListValues = 1;

constexpr std::size_t kTraceIdBytes = 16;
constexpr std::size_t kSpanIdBytes = 8;

// Every Span field OTLP defines, with its wire type: the ones we do not decode
// are still checked, so a field of the wrong type is an error like for the
// ones we decode, not silently carried to the upstream (which would reject it).
struct FieldInfo {
  const char* name;
  WireType type;
};
constexpr std::array<FieldInfo, 17> kSpanFields = {{
    {nullptr, WireType::kVarint},
    {"trace_id", WireType::kLengthDelimited},
    {"span_id", WireType::kLengthDelimited},
    {"trace_state", WireType::kLengthDelimited},
    {"parent_span_id", WireType::kLengthDelimited},
    {"name", WireType::kLengthDelimited},
    {"kind", WireType::kVarint},
    {"start_time_unix_nano", WireType::kFixed64},
    {"end_time_unix_nano", WireType::kFixed64},
    {"attributes", WireType::kLengthDelimited},
    {"dropped_attributes_count", WireType::kVarint},
    {"events", WireType::kLengthDelimited},
    {"dropped_events_count", WireType::kVarint},
    {"links", WireType::kLengthDelimited},
    {"dropped_links_count", WireType::kVarint},
    {"status", WireType::kLengthDelimited},
    {"flags", WireType::kFixed32},
}};

// The span vector is reserved from the payload size and the span size seen
// in this thread's recent requests (an SDK sends alike spans), a little
// generously: a guess too small costs a reallocation, one too large holds
// memory (a SpanView is 80 bytes, and tail sampling keeps it for
// decision_wait). Before any request: ~200 bytes, a modest SDK span.
constexpr double kFirstSpanBytesGuess = 192;
thread_local double recent_span_bytes = kFirstSpanBytesGuess;

std::size_t expected_span_count(std::size_t payload_bytes) {
  return static_cast<std::size_t>(static_cast<double>(payload_bytes) / recent_span_bytes * 1.1) + 1;
}

void learn_span_size(std::size_t payload_bytes, std::size_t spans) {
  if (spans == 0) return;
  const double seen = static_cast<double>(payload_bytes) / static_cast<double>(spans);
  recent_span_bytes = std::max(32.0, 0.8 * recent_span_bytes + 0.2 * seen);
}

const char* wire_type_name(WireType type) {
  switch (type) {
    case WireType::kVarint:
      return "varint";
    case WireType::kFixed64:
      return "fixed64";
    case WireType::kLengthDelimited:
      return "length-delimited";
    case WireType::kStartGroup:
      return "start-group";
    case WireType::kEndGroup:
      return "end-group";
    case WireType::kFixed32:
      return "fixed32";
  }
  return "invalid";
}

// Why the varint at `at` cannot be read, or nullptr if it can (cold path:
// only called to explain a failure).
const char* varint_problem(const Reader& at) {
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(at.position());
  for (std::size_t i = 0; i < 10; ++i) {
    if (i == at.remaining()) return "truncated varint";
    if ((bytes[i] & 0x80) == 0)
      return (i == 9 && bytes[i] > 1) ? "varint overflows 64 bits" : nullptr;
  }
  return "varint longer than 10 bytes";
}

// Walks one request, filling `out`. Every scan_* method returns false after
// recording an error; the error path is kept out of line so the loops stay
// small.
class Scanner {
 public:
  Scanner(const std::string& payload, const ScanLimits& limits, ScannedRequest& out)
      : payload_(payload), limits_(limits), out_(out) {}

  bool scan_request();
  Error take_error() { return Error{std::move(error_)}; }
  const char* limit_hit() const { return limit_hit_; }

 private:
  // Where we are, for error messages: "resource_spans[i].scope_spans[j]...".
  enum class Level { kRequest, kResourceSpans, kScopeSpans, kSpan, kStatus };

  bool scan_resource_spans(std::string_view body);
  bool scan_scope_spans(std::string_view body, std::uint32_t resource_index);
  bool scan_span(std::string_view body, SpanView& span);
  bool scan_status(std::string_view body, SpanView& span);
  bool check_attribute(std::string_view key_value);
  // check_attribute() for any other shape: the explicit-stack walk.
  bool walk_attribute(std::string_view key_value);
  [[gnu::cold, gnu::noinline]] bool fail_value_too_long(std::size_t length);
  // The attributes of a Resource, InstrumentationScope, Span.Event or
  // Span.Link (`field` is their attributes field): the same limits as a
  // span's, each container counted on its own. Other fields are not looked at:
  // the upstream's parser judges them, as before these limits.
  bool check_attributes_of(std::string_view message, std::uint32_t field, const char* container);
  bool attribute_limits_on() const {
    return limits_.max_attributes_per_span != 0 || limits_.max_attribute_value_length != 0 ||
           limits_.max_anyvalue_depth != 0;
  }

  // Reads the value of a field whose tag was just read from `reader`; `at`
  // is the reader as it was before the tag, for error messages.
  bool read_bytes(Reader& reader, const Reader& at, Reader::Tag tag, const char* name,
                  std::string_view& value) {
    if (tag.type != WireType::kLengthDelimited) {
      return fail_wire_type(at, tag, name, WireType::kLengthDelimited);
    }
    const auto bytes = reader.read_length_delimited();
    if (!bytes) return fail_bad_value(at, tag, name);
    value = *bytes;
    return true;
  }
  bool read_fixed64(Reader& reader, const Reader& at, Reader::Tag tag, const char* name,
                    std::uint64_t& value) {
    if (tag.type != WireType::kFixed64) return fail_wire_type(at, tag, name, WireType::kFixed64);
    const auto read = reader.read_fixed64();
    if (!read) return fail_bad_value(at, tag, name);
    value = *read;
    return true;
  }
  bool read_fixed32(Reader& reader, const Reader& at, Reader::Tag tag, const char* name,
                    std::uint32_t& value) {
    if (tag.type != WireType::kFixed32) return fail_wire_type(at, tag, name, WireType::kFixed32);
    const auto read = reader.read_fixed32();
    if (!read) return fail_bad_value(at, tag, name);
    value = *read;
    return true;
  }
  bool read_varint(Reader& reader, const Reader& at, Reader::Tag tag, const char* name,
                   std::uint64_t& value) {
    if (tag.type != WireType::kVarint) return fail_wire_type(at, tag, name, WireType::kVarint);
    const auto read = reader.read_varint();
    if (!read) return fail_bad_value(at, tag, name);
    value = *read;
    return true;
  }
  bool skip(Reader& reader, const Reader& at, Reader::Tag tag, const char* name = nullptr) {
    return reader.skip(tag.type) || fail_bad_value(at, tag, name);
  }

  ByteRange range_of(std::string_view bytes) const {
    return ByteRange{static_cast<std::uint32_t>(bytes.data() - payload_.data()),
                     static_cast<std::uint32_t>(bytes.size())};
  }
  // Appends the raw encoding of the field that starts at `at` and ends where
  // `reader` is now: original tag, length and bytes, unknown fields included.
  static void append_field(std::string& out, const Reader& at, const Reader& reader) {
    out.append(at.position(), static_cast<std::size_t>(reader.position() - at.position()));
  }

  [[gnu::cold, gnu::noinline]] bool fail(const std::string& what);
  [[gnu::cold, gnu::noinline]] bool fail_bad_tag(const Reader& at);
  [[gnu::cold, gnu::noinline]] bool fail_bad_value(const Reader& at, Reader::Tag tag,
                                                   const char* name);
  [[gnu::cold, gnu::noinline]] bool fail_wire_type(const Reader& at, Reader::Tag tag,
                                                   const char* name, WireType expected);
  [[gnu::cold, gnu::noinline]] bool fail_id_length(const char* name, std::size_t expected,
                                                   std::size_t got, bool may_be_empty);
  [[gnu::cold, gnu::noinline]] bool fail_too_many_spans();
  [[gnu::cold, gnu::noinline]] bool fail_limit(const char* key, const std::string& what);
  std::string where() const;
  std::size_t offset_of(const Reader& at) const {
    return static_cast<std::size_t>(at.position() - payload_.data());
  }

  const std::string& payload_;
  const ScanLimits& limits_;
  ScannedRequest& out_;
  Level level_ = Level::kRequest;
  std::size_t resource_position_ = 0;  // index of the ResourceSpans in the request
  std::size_t scope_position_ = 0;     // index of the ScopeSpans in its ResourceSpans
  std::size_t span_position_ = 0;      // index of the Span in its ScopeSpans
  std::string error_;
  const char* limit_hit_ = nullptr;
  // The explicit stack of check_attribute, kept across spans to reuse its memory.
  enum class Frame { kKeyValue, kAnyValue, kArrayValue, kKeyValueList };
  struct Open {
    Reader reader;
    Frame frame;
    std::uint32_t depth;  // of the AnyValue this message belongs to
  };
  std::vector<Open> stack_;
};

bool Scanner::scan_request() {
  Reader reader(payload_);
  while (!reader.done()) {
    const Reader at = reader;
    const auto tag = reader.read_tag();
    if (!tag) return fail_bad_tag(at);
    if (tag->field == kRequestResourceSpans) {
      std::string_view body;
      if (!read_bytes(reader, at, *tag, "resource_spans", body)) return false;
      if (!scan_resource_spans(body)) return false;
      level_ = Level::kRequest;
      ++resource_position_;
    } else if (!skip(reader, at, *tag)) {
      return false;
    }
  }
  return true;
}

bool Scanner::scan_resource_spans(std::string_view body) {
  level_ = Level::kResourceSpans;
  scope_position_ = 0;
  const auto resource_index = static_cast<std::uint32_t>(out_.resources.size());
  // Only scopes and spans grow below, so this reference stays valid.
  ResourceGroup& group = out_.resources.emplace_back();
  Reader reader(body);
  while (!reader.done()) {
    const Reader at = reader;
    const auto tag = reader.read_tag();
    if (!tag) return fail_bad_tag(at);
    std::string_view value;
    switch (tag->field) {
      case kResourceSpansScopeSpans:
        if (!read_bytes(reader, at, *tag, "scope_spans", value)) return false;
        if (!scan_scope_spans(value, resource_index)) return false;
        level_ = Level::kResourceSpans;
        ++scope_position_;
        continue;  // not part of the header
      case kResourceSpansResource:
        if (!read_bytes(reader, at, *tag, "resource", value)) return false;
        group.resource = range_of(value);
        if (attribute_limits_on() &&
            !check_attributes_of(value, kResourceAttributesField, "resource")) {
          return false;
        }
        break;
      case kResourceSpansSchemaUrl:
        if (!read_bytes(reader, at, *tag, "schema_url", value)) return false;
        break;
      default:
        if (!skip(reader, at, *tag)) return false;
        break;
    }
    append_field(group.header_bytes, at, reader);
  }
  return true;
}

bool Scanner::scan_scope_spans(std::string_view body, std::uint32_t resource_index) {
  level_ = Level::kScopeSpans;
  span_position_ = 0;
  const auto scope_index = static_cast<std::uint32_t>(out_.scopes.size());
  // Only spans grow below, so this reference stays valid.
  ScopeGroup& group = out_.scopes.emplace_back();
  group.resource_index = resource_index;
  Reader reader(body);
  while (!reader.done()) {
    const Reader at = reader;
    const auto tag = reader.read_tag();
    if (!tag) return fail_bad_tag(at);
    std::string_view value;
    switch (tag->field) {
      case kScopeSpansSpans: {
        if (!read_bytes(reader, at, *tag, "spans", value)) return false;
        if (limits_.max_spans != 0 && out_.spans.size() >= limits_.max_spans) {
          return fail_too_many_spans();
        }
        SpanView& span = out_.spans.emplace_back();
        span.bytes = range_of(value);
        span.scope_index = scope_index;
        if (!scan_span(value, span)) return false;
        level_ = Level::kScopeSpans;
        ++span_position_;
        continue;  // not part of the header
      }
      case kScopeSpansScope:
        if (!read_bytes(reader, at, *tag, "scope", value)) return false;
        group.scope = range_of(value);
        if (attribute_limits_on() && !check_attributes_of(value, kScopeAttributesField, "scope")) {
          return false;
        }
        break;
      case kScopeSpansSchemaUrl:
        if (!read_bytes(reader, at, *tag, "schema_url", value)) return false;
        break;
      default:
        if (!skip(reader, at, *tag)) return false;
        break;
    }
    append_field(group.header_bytes, at, reader);
  }
  return true;
}

bool Scanner::scan_span(std::string_view body, SpanView& span) {
  level_ = Level::kSpan;
  // proto3: an absent field is its default, so a span without ids has
  // 0-byte ids, which OTLP (trace.proto) does not allow for trace_id/span_id.
  bool has_trace_id = false;
  bool has_span_id = false;
  std::uint32_t attributes = 0;
  const bool check_attributes = attribute_limits_on();
  Reader reader(body);
  while (!reader.done()) {
    const Reader at = reader;
    const auto tag = reader.read_tag();
    if (!tag) return fail_bad_tag(at);
    std::string_view value;
    switch (tag->field) {
      case kSpanTraceId:
        if (!read_bytes(reader, at, *tag, "trace_id", value)) return false;
        if (value.size() != kTraceIdBytes) {
          return fail_id_length("trace_id", kTraceIdBytes, value.size(), false);
        }
        std::memcpy(span.trace_id.data(), value.data(), kTraceIdBytes);
        has_trace_id = true;
        break;
      case kSpanSpanId:
        if (!read_bytes(reader, at, *tag, "span_id", value)) return false;
        if (value.size() != kSpanIdBytes) {
          return fail_id_length("span_id", kSpanIdBytes, value.size(), false);
        }
        std::memcpy(span.span_id.data(), value.data(), kSpanIdBytes);
        has_span_id = true;
        break;
      case kSpanParentSpanId:
        if (!read_bytes(reader, at, *tag, "parent_span_id", value)) return false;
        if (value.empty()) {
          span.parent_span_id = {};
          span.has_parent = false;
        } else if (value.size() == kSpanIdBytes) {
          std::memcpy(span.parent_span_id.data(), value.data(), kSpanIdBytes);
          // W3C Trace Context: an all-zero span id is invalid, so it names no
          // parent; treating it as a root keeps "local root" policies right.
          span.has_parent = span.parent_span_id != SpanId{};
        } else {
          return fail_id_length("parent_span_id", kSpanIdBytes, value.size(), true);
        }
        break;
      case kSpanStartTime:
        if (!read_fixed64(reader, at, *tag, "start_time_unix_nano", span.start_time_unix_nano)) {
          return false;
        }
        break;
      case kSpanEndTime:
        if (!read_fixed64(reader, at, *tag, "end_time_unix_nano", span.end_time_unix_nano)) {
          return false;
        }
        break;
      case kSpanStatus:
        if (!read_bytes(reader, at, *tag, "status", value)) return false;
        if (!scan_status(value, span)) return false;
        level_ = Level::kSpan;
        break;
      case kSpanFlags:
        if (!read_fixed32(reader, at, *tag, "flags", span.flags)) return false;
        break;
      case kSpanAttributes:
        if (!read_bytes(reader, at, *tag, "attributes", value)) return false;
        if (!check_attributes) break;
        if (limits_.max_attributes_per_span != 0 &&
            ++attributes > limits_.max_attributes_per_span) {
          return fail_limit("max_attributes_per_span",
                            "more than " + std::to_string(limits_.max_attributes_per_span) +
                                " attributes on one span (max_attributes_per_span)");
        }
        if (!check_attribute(value)) return false;
        break;
      case kSpanEvents:
      case kSpanLinks:
        if (check_attributes) {
          const bool event = tag->field == kSpanEvents;
          if (!read_bytes(reader, at, *tag, event ? "events" : "links", value)) return false;
          if (!check_attributes_of(value, event ? kEventAttributesField : kLinkAttributesField,
                                   event ? "event" : "link")) {
            return false;
          }
          break;
        }
        [[fallthrough]];  // unchecked: skipped like any other field
      default: {
        const char* name = nullptr;
        if (tag->field < kSpanFields.size()) {
          const FieldInfo& known = kSpanFields[tag->field];
          if (tag->type != known.type) return fail_wire_type(at, *tag, known.name, known.type);
          name = known.name;
        }
        if (!skip(reader, at, *tag, name)) return false;
        break;
      }
    }
  }
  if (!has_trace_id) return fail_id_length("trace_id", kTraceIdBytes, 0, false);
  if (!has_span_id) return fail_id_length("span_id", kSpanIdBytes, 0, false);
  return true;
}

bool Scanner::scan_status(std::string_view body, SpanView& span) {
  level_ = Level::kStatus;
  Reader reader(body);
  while (!reader.done()) {
    const Reader at = reader;
    const auto tag = reader.read_tag();
    if (!tag) return fail_bad_tag(at);
    std::string_view message;
    std::uint64_t code = 0;
    switch (tag->field) {
      case kStatusCode:
        if (!read_varint(reader, at, *tag, "code", code)) return false;
        // An enum is an int32 on the wire: libprotobuf keeps the low 32 bits,
        // so do we. Unknown codes are neither OK nor ERROR.
        switch (static_cast<std::uint32_t>(code)) {
          case 1:
            span.status = StatusCode::kOk;
            break;
          case 2:
            span.status = StatusCode::kError;
            break;
          default:
            span.status = StatusCode::kUnset;
            break;
        }
        break;
      case kStatusMessage:
        if (!read_bytes(reader, at, *tag, "message", message)) return false;
        break;
      default:  // field 1 is reserved; anything else is unknown
        if (!skip(reader, at, *tag)) return false;
        break;
    }
  }
  return true;
}

bool Scanner::check_attributes_of(std::string_view message, std::uint32_t field,
                                  const char* container) {
  std::uint32_t attributes = 0;
  Reader reader(message);
  while (!reader.done()) {
    const Reader at = reader;
    const auto tag = reader.read_tag();
    if (!tag) return fail_bad_tag(at);
    if (tag->field != field) {
      if (!skip(reader, at, *tag)) return false;
      continue;
    }
    std::string_view value;
    if (!read_bytes(reader, at, *tag, "attributes", value)) return false;
    if (limits_.max_attributes_per_span != 0 && ++attributes > limits_.max_attributes_per_span) {
      return fail_limit("max_attributes_per_span",
                        "more than " + std::to_string(limits_.max_attributes_per_span) +
                            " attributes on one " + container + " (max_attributes_per_span)");
    }
    if (!check_attribute(value)) return false;
  }
  return true;
}

// The shape SDKs give almost every attribute, recognised byte by byte: a key
// (field 1) then a value (field 2) holding one string, bytes, bool, int or
// double, with every length in one byte (below 128). True when `key_value`
// has exactly that shape and obeys `max_length` (0 = none); false sends it
// through the general walk, which judges it (issue 6: this took the attribute
// limits from ~1.2x to a small fraction of the scan's own cost).
bool is_simple_valid_attribute(std::string_view key_value, std::uint64_t max_length) {
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(key_value.data());
  const std::size_t size = key_value.size();
  // key: tag 0x0A (field 1, length-delimited), one-byte length.
  if (size < 4 || bytes[0] != 0x0A || bytes[1] >= 0x80) return false;
  std::size_t at = 2 + bytes[1];
  // value: tag 0x12 (field 2, length-delimited), one-byte length, to the end.
  if (at + 2 > size || bytes[at] != 0x12 || bytes[at + 1] >= 0x80) return false;
  const std::size_t value_size = bytes[at + 1];
  at += 2;
  if (at + value_size != size || value_size < 2) return false;
  const std::uint8_t* value = bytes + at;
  switch (value[0]) {
    case 0x0A:  // string_value
    case 0x3A:  // bytes_value
      return value[1] < 0x80 && 2u + value[1] == value_size &&
             (max_length == 0 || value[1] <= max_length);
    case 0x10:  // bool_value
    case 0x18:  // int_value: a varint that ends exactly at the end
      if (value_size > 11) return false;
      for (std::size_t i = 1; i + 1 < value_size; ++i) {
        if (value[i] < 0x80) return false;
      }
      // A ten-byte varint (a negative int) may carry only one bit in its last byte.
      return value[value_size - 1] < (value_size == 11 ? 2 : 0x80);
    case 0x21:  // double_value
      return value_size == 9;
    default:
      return false;
  }
}

bool Scanner::check_attribute(std::string_view key_value) {
  // Nearly every attribute has the simple shape: checked byte by byte (the
  // profile of issue 6 had the general walk at a fifth of the daemon's CPU).
  if (is_simple_valid_attribute(key_value, limits_.max_attribute_value_length)) return true;
  return walk_attribute(key_value);
}

bool Scanner::fail_value_too_long(std::size_t length) {
  return fail_limit("max_attribute_value_length",
                    "an attribute value of " + std::to_string(length) +
                        " bytes exceeds max_attribute_value_length (" +
                        std::to_string(limits_.max_attribute_value_length) + " bytes)");
}

// Walks one KeyValue (a span attribute) and every value nested in it,
// checking value lengths and nesting depth. Iterative: the stack holds at
// most three frames per nesting level (AnyValue, ArrayValue or KeyValueList,
// KeyValue), and the depth limit bounds it. Fields of a wire type other than
// the one common.proto gives them are skipped like unknown fields, as
// libprotobuf does.
bool Scanner::walk_attribute(std::string_view key_value) {
  const std::uint64_t max_length = limits_.max_attribute_value_length;
  const std::uint32_t max_depth = limits_.max_anyvalue_depth;
  stack_.clear();
  stack_.push_back(Open{Reader(key_value), Frame::kKeyValue, 0});
  while (!stack_.empty()) {
    Open& top = stack_.back();
    if (top.reader.done()) {
      stack_.pop_back();
      continue;
    }
    const Reader at = top.reader;
    const auto tag = top.reader.read_tag();
    if (!tag) return fail_bad_tag(at);
    if (tag->type != WireType::kLengthDelimited) {
      if (!skip(top.reader, at, *tag)) return false;
      continue;
    }
    const auto bytes = top.reader.read_length_delimited();
    if (!bytes) return fail_bad_value(at, *tag, "attributes");
    const Frame frame = top.frame;
    const std::uint32_t depth = top.depth;
    // `top` may dangle after a push_back below.
    std::optional<Open> child;
    switch (frame) {
      case Frame::kKeyValue:
        if (tag->field == kKeyValueValue) child = Open{Reader(*bytes), Frame::kAnyValue, depth + 1};
        break;
      case Frame::kArrayValue:
        if (tag->field == kArrayValueValues) {
          child = Open{Reader(*bytes), Frame::kAnyValue, depth + 1};
        }
        break;
      case Frame::kKeyValueList:
        if (tag->field == kKeyValueListValues) {
          child = Open{Reader(*bytes), Frame::kKeyValue, depth};
        }
        break;
      case Frame::kAnyValue:
        if (tag->field == kAnyValueString || tag->field == kAnyValueBytes) {
          if (max_length != 0 && bytes->size() > max_length) {
            return fail_value_too_long(bytes->size());
          }
        } else if (tag->field == kAnyValueArray) {
          child = Open{Reader(*bytes), Frame::kArrayValue, depth};
        } else if (tag->field == kAnyValueKvlist) {
          child = Open{Reader(*bytes), Frame::kKeyValueList, depth};
        }
        break;
    }
    if (!child) continue;
    if (child->frame == Frame::kAnyValue && max_depth != 0 && child->depth > max_depth) {
      return fail_limit("max_anyvalue_depth",
                        "an attribute value nested deeper than max_anyvalue_depth (" +
                            std::to_string(max_depth) + ")");
    }
    stack_.push_back(*child);
  }
  return true;
}

std::string Scanner::where() const {
  std::string path;
  if (level_ == Level::kRequest) return path;
  path += "resource_spans[" + std::to_string(resource_position_) + "]";
  if (level_ == Level::kResourceSpans) return path;
  path += ".scope_spans[" + std::to_string(scope_position_) + "]";
  if (level_ == Level::kScopeSpans) return path;
  path += ".spans[" + std::to_string(span_position_) + "]";
  if (level_ == Level::kSpan) return path;
  return path + ".status";
}

bool Scanner::fail(const std::string& what) {
  const std::string path = where();
  error_ = "malformed protobuf: " + (path.empty() ? what : path + ": " + what);
  return false;
}

bool Scanner::fail_bad_tag(const Reader& at) {
  const std::string position = " at byte " + std::to_string(offset_of(at));
  if (const char* problem = varint_problem(at)) return fail(problem + (" in field tag" + position));
  Reader reader = at;
  const std::uint64_t raw = reader.read_varint().value_or(0);
  if (raw > std::numeric_limits<std::uint32_t>::max()) {
    return fail("field tag does not fit in 32 bits" + position);
  }
  if ((raw >> 3) == 0) return fail("field number 0" + position);
  return fail("invalid wire type " + std::to_string(raw & 7) + position + " (field " +
              std::to_string(raw >> 3) + ")");
}

bool Scanner::fail_bad_value(const Reader& at, Reader::Tag tag, const char* name) {
  const std::string field =
      (name != nullptr ? std::string(name) + ", field " : "field ") + std::to_string(tag.field);
  const std::string position = " at byte " + std::to_string(offset_of(at)) + " (" + field + ")";
  Reader value = at;
  (void)value.read_tag();
  switch (tag.type) {
    case WireType::kVarint: {
      const char* problem = varint_problem(value);
      return fail((problem != nullptr ? problem : "bad varint") + position);
    }
    case WireType::kFixed64:
    case WireType::kFixed32:
      return fail("truncated " + std::string(wire_type_name(tag.type)) + " field" + position);
    case WireType::kLengthDelimited: {
      if (const char* problem = varint_problem(value)) {
        return fail(problem + (" in a length prefix" + position));
      }
      const std::uint64_t length = value.read_varint().value_or(0);
      return fail("truncated length-delimited field" + position + ": length " +
                  std::to_string(length) + ", but only " + std::to_string(value.remaining()) +
                  " bytes left");
    }
    case WireType::kStartGroup:
    case WireType::kEndGroup:
      return fail("unsupported wire type " + std::string(wire_type_name(tag.type)) + position +
                  ": OTLP does not use groups");
  }
  return fail("bad value" + position);
}

bool Scanner::fail_wire_type(const Reader& at, Reader::Tag tag, const char* name,
                             WireType expected) {
  return fail(std::string(name) + " (field " + std::to_string(tag.field) + ") has wire type " +
              wire_type_name(tag.type) + ", expected " + wire_type_name(expected) + " at byte " +
              std::to_string(offset_of(at)));
}

bool Scanner::fail_id_length(const char* name, std::size_t expected, std::size_t got,
                             bool may_be_empty) {
  return fail(std::string(name) + " must be " + std::to_string(expected) + " bytes" +
              (may_be_empty ? " or empty" : "") + ", got " + std::to_string(got));
}

bool Scanner::fail_too_many_spans() {
  error_ = "too many spans in one request (limit " + std::to_string(limits_.max_spans) + ")";
  limit_hit_ = "max_spans_per_request";
  return false;
}

bool Scanner::fail_limit(const char* key, const std::string& what) {
  fail(what);
  error_.replace(0, std::string_view("malformed protobuf: ").size(), "limit exceeded: ");
  limit_hit_ = key;
  return false;
}

}  // namespace

Result<ScannedRequest> scan_export_request(std::shared_ptr<const std::string> payload,
                                           const ScanLimits& limits, std::string* limit_hit) {
  if (payload == nullptr) return Error{"no request payload"};
  // Byte ranges are 32-bit offsets into the payload.
  if (payload->size() > std::numeric_limits<std::uint32_t>::max()) {
    return Error{"request too large: " + std::to_string(payload->size()) +
                 " bytes, the limit is 4 GiB"};
  }
  ScannedRequest out;
  if (!payload->empty()) {
    std::size_t expected_spans = expected_span_count(payload->size());
    if (limits.max_spans != 0 && expected_spans > limits.max_spans) {
      expected_spans = limits.max_spans;
    }
    out.spans.reserve(expected_spans);
    out.resources.reserve(2);
    out.scopes.reserve(4);
  }
  Scanner scanner(*payload, limits, out);
  if (!scanner.scan_request()) {
    if (limit_hit != nullptr && scanner.limit_hit() != nullptr) *limit_hit = scanner.limit_hit();
    return scanner.take_error();
  }
  learn_span_size(payload->size(), out.spans.size());
  out.payload = std::move(payload);
  return out;
}

}  // namespace spanrelay::otlp
