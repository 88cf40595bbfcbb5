#include "daemon/otlp/attribute_reader.h"

#include <doctest/doctest.h>
#include <google/protobuf/stubs/logging.h>

#include <charconv>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>

#include "daemon/otlp/wire_format.h"
#include "opentelemetry/proto/resource/v1/resource.pb.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"

namespace spanrelay::otlp {
namespace {

namespace pb {
using opentelemetry::proto::common::v1::AnyValue;
using opentelemetry::proto::common::v1::KeyValue;
using opentelemetry::proto::resource::v1::Resource;
using opentelemetry::proto::trace::v1::Span;
}  // namespace pb

using Attributes = google::protobuf::RepeatedPtrField<pb::KeyValue>;

pb::AnyValue* add(Attributes* attributes, const std::string& key) {
  pb::KeyValue* key_value = attributes->Add();
  key_value->set_key(key);
  return key_value->mutable_value();
}

// A span carrying one attribute of every AnyValue kind, between other fields.
pb::Span span_with_every_kind() {
  pb::Span span;
  span.set_trace_id(std::string(16, '\x11'));
  span.set_span_id(std::string(8, '\x22'));
  span.set_name("GET /users");
  span.set_start_time_unix_nano(1000);
  Attributes* attributes = span.mutable_attributes();
  add(attributes, "http.method")->set_string_value("GET");
  add(attributes, "http.status_code")->set_int_value(200);
  add(attributes, "negative")->set_int_value(-42);
  add(attributes, "min")->set_int_value(std::numeric_limits<std::int64_t>::min());
  add(attributes, "max")->set_int_value(std::numeric_limits<std::int64_t>::max());
  add(attributes, "yes")->set_bool_value(true);
  add(attributes, "no")->set_bool_value(false);
  add(attributes, "tenth")->set_double_value(0.1);
  add(attributes, "huge")->set_double_value(1e100);
  add(attributes, "three")->set_double_value(3.0);
  add(attributes, "negative_zero")->set_double_value(-0.0);
  add(attributes, "max_double")->set_double_value(std::numeric_limits<double>::max());
  add(attributes, "empty_string")->set_string_value("");
  add(attributes, "bytes")->set_bytes_value(std::string("\0\x01", 2));
  pb::AnyValue* array = add(attributes, "array");
  array->mutable_array_value()->add_values()->set_string_value("a");
  pb::AnyValue* kvlist = add(attributes, "kvlist");
  pb::KeyValue* inner = kvlist->mutable_kvlist_value()->add_values();
  inner->set_key("http.method");
  inner->mutable_value()->set_string_value("POST");
  attributes->Add()->set_key("unset_value");
  span.mutable_status()->set_code(opentelemetry::proto::trace::v1::Status::STATUS_CODE_ERROR);
  span.add_events()->set_name("exception");
  return span;
}

// What the attribute reader must answer, computed from libprotobuf's parse:
// the first KeyValue with the key decides.
std::optional<std::string> expected_text(const Attributes& attributes, const std::string& key) {
  for (const pb::KeyValue& key_value : attributes) {
    if (key_value.key() != key) continue;
    const pb::AnyValue& value = key_value.value();
    switch (value.value_case()) {
      case pb::AnyValue::kStringValue:
        return value.string_value();
      case pb::AnyValue::kBoolValue:
        return value.bool_value() ? "true" : "false";
      case pb::AnyValue::kIntValue:
        return std::to_string(value.int_value());
      case pb::AnyValue::kDoubleValue: {
        char buffer[64];
        const auto result = std::to_chars(buffer, buffer + sizeof buffer, value.double_value());
        return std::string(buffer, result.ptr);
      }
      default:
        return std::nullopt;
    }
  }
  return std::nullopt;
}

std::string keyed_record(std::uint32_t field, std::string_view body) {
  std::string out;
  wire::append_bytes_field(out, field, body);
  return out;
}

TEST_CASE("attribute_reader: renders every scalar kind of a span attribute as text") {
  const std::string bytes = span_with_every_kind().SerializeAsString();
  const auto find = [&](std::string_view key) {
    return find_attribute(bytes, kSpanAttributesField, key);
  };
  CHECK(find("http.method") == "GET");
  CHECK(find("http.status_code") == "200");
  CHECK(find("negative") == "-42");
  CHECK(find("min") == "-9223372036854775808");
  CHECK(find("max") == "9223372036854775807");
  CHECK(find("yes") == "true");
  CHECK(find("no") == "false");
  CHECK(find("tenth") == "0.1");
  CHECK(find("huge") == "1e+100");
  CHECK(find("three") == "3");
  CHECK(find("negative_zero") == "-0");
  CHECK(find("max_double") == "1.7976931348623157e+308");
  CHECK(find("empty_string") == "");
}

TEST_CASE("attribute_reader: bytes, array, kvlist, an unset value and a missing key are no match") {
  const std::string bytes = span_with_every_kind().SerializeAsString();
  CHECK_FALSE(find_attribute(bytes, kSpanAttributesField, "bytes"));
  CHECK_FALSE(find_attribute(bytes, kSpanAttributesField, "array"));
  CHECK_FALSE(find_attribute(bytes, kSpanAttributesField, "kvlist"));
  CHECK_FALSE(find_attribute(bytes, kSpanAttributesField, "unset_value"));
  CHECK_FALSE(find_attribute(bytes, kSpanAttributesField, "no.such.key"));
  CHECK_FALSE(find_attribute(bytes, kSpanAttributesField, "HTTP.METHOD"));  // keys are exact
  CHECK_FALSE(find_attribute("", kSpanAttributesField, "http.method"));
  // Another field number: the span's events (11) are not its attributes.
  CHECK_FALSE(find_attribute(bytes, kResourceAttributesField, "http.method"));
}

TEST_CASE("attribute_reader: the text view of a string borrows, of a number is owned") {
  const std::string bytes = span_with_every_kind().SerializeAsString();
  const auto method = find_attribute_text(bytes, kSpanAttributesField, "http.method");
  REQUIRE(method);
  CHECK(method->view().data() >= bytes.data());
  CHECK(method->view().data() < bytes.data() + bytes.size());

  std::optional<AttributeText> copy;
  {
    const auto code = find_attribute_text(bytes, kSpanAttributesField, "http.status_code");
    REQUIRE(code);
    copy = *code;  // the copy must not point into the original's buffer
  }
  CHECK(copy->view() == "200");
}

TEST_CASE("attribute_reader: resource and event attributes by their field numbers") {
  pb::Resource resource;
  add(resource.mutable_attributes(), "service.name")->set_string_value("checkout");
  add(resource.mutable_attributes(), "host.cores")->set_int_value(8);
  resource.set_dropped_attributes_count(3);
  const std::string resource_bytes = resource.SerializeAsString();
  CHECK(find_attribute(resource_bytes, kResourceAttributesField, "service.name") == "checkout");
  CHECK(find_attribute(resource_bytes, kResourceAttributesField, "host.cores") == "8");
  CHECK_FALSE(find_attribute(resource_bytes, kSpanAttributesField, "service.name"));

  pb::Span::Event event;
  event.set_time_unix_nano(5);
  event.set_name("exception");
  add(event.mutable_attributes(), "exception.type")->set_string_value("ValueError");
  const std::string event_bytes = event.SerializeAsString();
  CHECK(find_attribute(event_bytes, kEventAttributesField, "exception.type") == "ValueError");
}

TEST_CASE("attribute_reader: the first of two attributes with the same key wins") {
  pb::Span span;
  add(span.mutable_attributes(), "tenant")->set_string_value("first");
  add(span.mutable_attributes(), "tenant")->set_string_value("second");
  CHECK(find_attribute(span.SerializeAsString(), kSpanAttributesField, "tenant") == "first");

  // Also when the first one has a value that is not text: it still decides.
  pb::Span bytes_first;
  add(bytes_first.mutable_attributes(), "tenant")->set_bytes_value("x");
  add(bytes_first.mutable_attributes(), "tenant")->set_string_value("second");
  CHECK_FALSE(find_attribute(bytes_first.SerializeAsString(), kSpanAttributesField, "tenant"));
}

TEST_CASE(
    "attribute_reader: repeated fields inside one KeyValue merge as libprotobuf merges them") {
  // KeyValue{key:"a", value:{string:"x"}, key:"b", value:{int:7}}: the last
  // key wins, and the AnyValue occurrences merge (the oneof member read last).
  pb::AnyValue string_value;
  string_value.set_string_value("x");
  pb::AnyValue int_value;
  int_value.set_int_value(7);
  std::string key_value;
  wire::append_bytes_field(key_value, 1, "a");
  wire::append_bytes_field(key_value, 2, string_value.SerializeAsString());
  wire::append_bytes_field(key_value, 1, "b");
  wire::append_bytes_field(key_value, 2, int_value.SerializeAsString());
  const std::string span_bytes = keyed_record(9, key_value);

  pb::Span parsed;
  REQUIRE(parsed.ParseFromString(span_bytes));
  REQUIRE(parsed.attributes_size() == 1);
  CHECK(parsed.attributes(0).key() == "b");
  CHECK(find_attribute(span_bytes, kSpanAttributesField, "b") ==
        expected_text(parsed.attributes(), "b"));
  CHECK(find_attribute(span_bytes, kSpanAttributesField, "b") == "7");
  CHECK_FALSE(find_attribute(span_bytes, kSpanAttributesField, "a"));

  // An empty AnyValue after a set one changes nothing.
  std::string merged_empty;
  wire::append_bytes_field(merged_empty, 1, "k");
  wire::append_bytes_field(merged_empty, 2, string_value.SerializeAsString());
  wire::append_bytes_field(merged_empty, 2, "");
  CHECK(find_attribute(keyed_record(9, merged_empty), kSpanAttributesField, "k") == "x");
}

TEST_CASE("attribute_reader: fields with an unexpected wire type are skipped like unknown fields") {
  std::string span_bytes;
  wire::append_tag(span_bytes, 9, wire::WireType::kVarint);  // attributes as a varint: unknown
  wire::append_varint(span_bytes, 300);
  std::string key_value;
  wire::append_tag(key_value, 1, wire::WireType::kFixed32);  // key as fixed32: unknown
  wire::append_fixed32(key_value, 0);
  wire::append_bytes_field(key_value, 1, "k");
  pb::AnyValue value;
  value.set_bool_value(true);
  wire::append_bytes_field(key_value, 2, value.SerializeAsString());
  wire::append_bytes_field(span_bytes, 9, key_value);

  pb::Span parsed;
  REQUIRE(parsed.ParseFromString(span_bytes));
  CHECK(find_attribute(span_bytes, kSpanAttributesField, "k") == "true");
  CHECK(expected_text(parsed.attributes(), "k") == "true");
}

TEST_CASE("attribute_reader: every truncation gives no match or the full answer, never a crash") {
  const pb::Span span = span_with_every_kind();
  const std::string bytes = span.SerializeAsString();
  for (const char* key : {"http.method", "three", "max_double", "kvlist", "unset_value"}) {
    const auto full = find_attribute(bytes, kSpanAttributesField, key);
    CHECK(full == expected_text(span.attributes(), key));
    for (std::size_t size = 0; size < bytes.size(); ++size) {
      // A copy of exactly `size` bytes, so ASan sees any read past the end.
      const std::string prefix = bytes.substr(0, size);
      const auto found = find_attribute(prefix, kSpanAttributesField, key);
      CHECK_MESSAGE((!found || found == full), "key " << key << ", prefix of " << size);
    }
  }
}

TEST_CASE("attribute_reader: malformed framing gives no match") {
  // A KeyValue whose length runs past the end.
  std::string overlong;
  wire::append_tag(overlong, 9, wire::WireType::kLengthDelimited);
  wire::append_varint(overlong, 100);
  overlong += "\x0a\x01k";
  CHECK_FALSE(find_attribute(overlong, kSpanAttributesField, "k"));
  // A string value whose length runs past its AnyValue.
  std::string any_value = "\x0a\x09short";
  std::string key_value;
  wire::append_bytes_field(key_value, 1, "k");
  wire::append_bytes_field(key_value, 2, any_value);
  CHECK_FALSE(find_attribute(keyed_record(9, key_value), kSpanAttributesField, "k"));
  // A group (never used by OTLP), an invalid field number 0, a dangling varint.
  CHECK_FALSE(find_attribute(std::string("\x0b\x0c", 2), kSpanAttributesField, "k"));
  CHECK_FALSE(find_attribute(std::string("\x00\x01", 2), kSpanAttributesField, "k"));
  CHECK_FALSE(find_attribute(std::string("\x08\xff", 2), kSpanAttributesField, "k"));
  // Malformed bytes before the match hide it.
  pb::Span span;
  add(span.mutable_attributes(), "k")->set_string_value("v");
  CHECK_FALSE(find_attribute("\xff" + span.SerializeAsString(), kSpanAttributesField, "k"));
}

TEST_CASE("attribute_reader: random garbage never crashes") {
  std::mt19937_64 random(7);
  for (int round = 0; round < 2000; ++round) {
    std::string garbage(random() % 64, '\0');
    for (char& byte : garbage) byte = static_cast<char>(random());
    // Bias towards plausible framing: start with an attributes tag.
    if (round % 2 == 0 && !garbage.empty()) garbage[0] = '\x4a';
    const auto found = find_attribute(garbage, kSpanAttributesField, "");
    if (found) CHECK(found->size() <= garbage.size());
  }
}

TEST_CASE(
    "attribute_reader: 1000 random mutations agree with libprotobuf whenever it parses them") {
  const std::string original = span_with_every_kind().SerializeAsString();
  const char* keys[] = {"http.method", "http.status_code", "yes",  "tenth",
                        "bytes",       "kvlist",           "none", ""};
  std::mt19937_64 random(12345);
  int parsed_count = 0;
  // Mutations make invalid UTF-8, which libprotobuf refuses with an error log.
  const google::protobuf::LogSilencer quiet_libprotobuf;
  for (int round = 0; round < 1000; ++round) {
    std::string mutated = original;
    const int edits = 1 + static_cast<int>(random() % 3);
    for (int edit = 0; edit < edits; ++edit) {
      const std::size_t at = random() % mutated.size();
      switch (random() % 4) {
        case 0:
          mutated[at] = static_cast<char>(random());
          break;
        case 1:
          mutated[at] = static_cast<char>(mutated[at] ^ (1 << (random() % 8)));
          break;
        case 2:
          mutated.erase(at, 1 + random() % 4);
          break;
        default:
          mutated.insert(at, 1, static_cast<char>(random()));
          break;
      }
      if (mutated.empty()) mutated = original;
    }
    const std::string exact = mutated;  // right-sized, so ASan catches overreads
    pb::Span parsed;
    const bool parses = parsed.ParseFromString(exact);
    if (parses) ++parsed_count;
    for (const char* key : keys) {
      const auto found = find_attribute(exact, kSpanAttributesField, key);
      if (parses) {
        CHECK_MESSAGE(found == expected_text(parsed.attributes(), key),
                      "round " << round << ", key " << key);
      }
    }
  }
  // The comparison must have been exercised, not skipped every time.
  CHECK(parsed_count > 100);
}

}  // namespace
}  // namespace spanrelay::otlp
