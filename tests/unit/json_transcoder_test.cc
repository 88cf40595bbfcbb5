#include "daemon/otlp/json_transcoder.h"

#include <doctest/doctest.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/stubs/logging.h>
#include <simdjson.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include "daemon/otlp/wire_format.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "tests/common/wire_checks.h"

namespace {

namespace collector = opentelemetry::proto::collector::trace::v1;
namespace trace = opentelemetry::proto::trace::v1;
namespace common = opentelemetry::proto::common::v1;
namespace wire = spanrelay::otlp::wire;
using spanrelay::otlp::json_to_protobuf;
using spanrelay::otlp::JsonLimits;
using spanrelay::otlp::protobuf_to_json;
using spanrelay::testing::differences;

std::string id_bytes(std::size_t size, int seed) {
  std::string id;
  for (std::size_t i = 0; i < size; ++i) id.push_back(static_cast<char>(seed * 37 + i * 11 + 0xa0));
  return id;
}

std::string hex(std::string_view bytes) {
  std::string out;
  for (const char byte : bytes) {
    out.push_back("0123456789abcdef"[static_cast<std::uint8_t>(byte) >> 4]);
    out.push_back("0123456789abcdef"[static_cast<std::uint8_t>(byte) & 0x0f]);
  }
  return out;
}

common::AnyValue* add_attribute(google::protobuf::RepeatedPtrField<common::KeyValue>* attributes,
                                const std::string& key) {
  auto* attribute = attributes->Add();
  attribute->set_key(key);
  return attribute->mutable_value();
}

// Every AnyValue kind, with the values that trip up JSON mappings.
void add_every_value_kind(google::protobuf::RepeatedPtrField<common::KeyValue>* attributes) {
  add_attribute(attributes, "string")
      ->set_string_value("quote\" slash\\ nl\n tab\t ctl\x01 é 日本");
  add_attribute(attributes, "empty_string")->set_string_value("");
  add_attribute(attributes, "bool_true")->set_bool_value(true);
  add_attribute(attributes, "bool_false")->set_bool_value(false);
  add_attribute(attributes, "int_zero")->set_int_value(0);
  add_attribute(attributes, "int_negative")->set_int_value(-42);
  add_attribute(attributes, "int_min")->set_int_value(std::numeric_limits<std::int64_t>::min());
  add_attribute(attributes, "int_max")->set_int_value(std::numeric_limits<std::int64_t>::max());
  add_attribute(attributes, "double")->set_double_value(3.25);
  add_attribute(attributes, "double_zero")->set_double_value(0.0);
  add_attribute(attributes, "double_negative_zero")->set_double_value(-0.0);
  add_attribute(attributes, "double_tenth")->set_double_value(0.1);
  add_attribute(attributes, "double_integral")->set_double_value(42.0);
  add_attribute(attributes, "double_tiny")->set_double_value(-5e-324);
  add_attribute(attributes, "double_max")->set_double_value(std::numeric_limits<double>::max());
  add_attribute(attributes, "double_inf")
      ->set_double_value(std::numeric_limits<double>::infinity());
  std::string all_bytes;
  for (int i = 0; i < 256; ++i) all_bytes.push_back(static_cast<char>(i));
  add_attribute(attributes, "bytes_all")->set_bytes_value(all_bytes);
  for (int size = 0; size < 4; ++size) {
    add_attribute(attributes, "bytes_" + std::to_string(size))
        ->set_bytes_value(all_bytes.substr(250, size));
  }
  auto* array = add_attribute(attributes, "array")->mutable_array_value();
  array->add_values()->set_int_value(1);
  array->add_values()->set_string_value("two");
  auto* inner = array->add_values()->mutable_array_value();
  inner->add_values()->set_double_value(3.5);
  inner->add_values()->mutable_array_value()->add_values()->set_bool_value(false);
  auto* in_array_kvlist = array->add_values()->mutable_kvlist_value()->add_values();
  in_array_kvlist->set_key("k");
  in_array_kvlist->mutable_value()->set_string_value("v");
  array->add_values()->mutable_array_value();  // empty array inside an array
  array->add_values();                         // AnyValue with no value set
  auto* kvlist = add_attribute(attributes, "kvlist")->mutable_kvlist_value();
  auto* entry = kvlist->add_values();
  entry->set_key("a");
  entry->mutable_value()->set_int_value(-1);
  entry = kvlist->add_values();
  entry->set_key("nested");
  auto* nested = entry->mutable_value()->mutable_kvlist_value()->add_values();
  nested->set_key("b");
  nested->mutable_value()->mutable_array_value()->add_values()->set_bytes_value("\xff\x00", 2);
  entry = kvlist->add_values();
  entry->set_key("empty_kvlist");
  entry->mutable_value()->mutable_kvlist_value();
  kvlist->add_values()->set_key("no_value");
  add_attribute(attributes, "empty_any_value");
  attributes->Add()->set_key("key_only");
}

collector::ExportTraceServiceRequest full_request() {
  collector::ExportTraceServiceRequest request;
  auto* resource_spans = request.add_resource_spans();
  resource_spans->set_schema_url("https://opentelemetry.io/schemas/1.21.0");
  auto* resource = resource_spans->mutable_resource();
  add_every_value_kind(resource->mutable_attributes());
  resource->set_dropped_attributes_count(3);
  auto* entity = resource->add_entity_refs();
  entity->set_schema_url("https://example.com/schema");
  entity->set_type("service");
  entity->add_id_keys("service.name");
  entity->add_id_keys("");
  entity->add_description_keys("service.version");

  auto* scope_spans = resource_spans->add_scope_spans();
  scope_spans->set_schema_url("scope-schema");
  auto* scope = scope_spans->mutable_scope();
  scope->set_name("io.opentelemetry.http");
  scope->set_version("1.2.3");
  add_attribute(scope->mutable_attributes(), "scope.attr")->set_int_value(7);
  scope->set_dropped_attributes_count(1);

  auto* span = scope_spans->add_spans();
  span->set_trace_id(id_bytes(16, 1));
  span->set_span_id(id_bytes(8, 2));
  span->set_trace_state("vendor=value,other=1");
  span->set_parent_span_id(id_bytes(8, 3));
  span->set_name("GET /checkout");
  span->set_kind(trace::Span::SPAN_KIND_SERVER);
  span->set_start_time_unix_nano(1700000000000000000ULL);
  span->set_end_time_unix_nano(std::numeric_limits<std::uint64_t>::max());
  add_every_value_kind(span->mutable_attributes());
  span->set_dropped_attributes_count(4294967295U);
  auto* event = span->add_events();
  event->set_time_unix_nano(1700000000000000001ULL);
  event->set_name("exception");
  add_attribute(event->mutable_attributes(), "exception.type")->set_string_value("IOError");
  event->set_dropped_attributes_count(2);
  span->add_events()->set_name("");  // an event with every field at its default
  span->set_dropped_events_count(5);
  auto* link = span->add_links();
  link->set_trace_id(id_bytes(16, 4));
  link->set_span_id(id_bytes(8, 5));
  link->set_trace_state("k=v");
  add_attribute(link->mutable_attributes(), "link.attr")->set_bool_value(true);
  link->set_dropped_attributes_count(6);
  link->set_flags(0x301);
  span->set_dropped_links_count(7);
  span->mutable_status()->set_message("internal error: \"boom\"");
  span->mutable_status()->set_code(trace::Status::STATUS_CODE_ERROR);
  span->set_flags(0xffffffffU);

  auto* root_span = scope_spans->add_spans();  // a root span: no parent, defaults elsewhere
  root_span->set_trace_id(id_bytes(16, 6));
  root_span->set_span_id(id_bytes(8, 7));
  root_span->set_kind(static_cast<trace::Span::SpanKind>(9));  // open enum: unknown value kept
  root_span->mutable_status();                                 // present but empty

  request.add_resource_spans()->add_scope_spans();  // empty ResourceSpans / ScopeSpans
  request.add_resource_spans();
  return request;
}

std::string to_json(const std::string& protobuf) {
  auto json = protobuf_to_json(protobuf);
  REQUIRE_MESSAGE(json.ok(), json.error().message);
  return json.value();
}

// libprotobuf's default recursion limit (100 messages) is below what 64
// nested AnyValues need (two messages per level), so the tests raise it.
bool parse_deep(const std::string& binary, collector::ExportTraceServiceRequest& request) {
  google::protobuf::io::CodedInputStream input(reinterpret_cast<const std::uint8_t*>(binary.data()),
                                               static_cast<int>(binary.size()));
  input.SetRecursionLimit(1000);
  return request.ParseFromCodedStream(&input) && input.ConsumedEntireMessage();
}

collector::ExportTraceServiceRequest decode_json(const std::string& json,
                                                 const JsonLimits& limits = {}) {
  auto binary = json_to_protobuf(json, limits);
  REQUIRE_MESSAGE(binary.ok(), binary.error().message);
  collector::ExportTraceServiceRequest request;
  REQUIRE(parse_deep(binary.value(), request));
  return request;
}

std::string json_error(const std::string& json, const JsonLimits& limits = {}) {
  auto binary = json_to_protobuf(json, limits);
  REQUIRE_FALSE(binary.ok());
  return binary.error().message;
}

std::string with_span(const std::string& span_json) {
  return R"({"resourceSpans":[{"scopeSpans":[{"spans":[)" + span_json + "]}]}]}";
}

std::string with_attribute_value(const std::string& value_json) {
  return with_span(R"({"attributes":[{"key":"k","value":)" + value_json + "}]}");
}

std::string repeat(std::string_view text, std::size_t times) {
  std::string out;
  out.reserve(text.size() * times);
  for (std::size_t i = 0; i < times; ++i) out += text;
  return out;
}

std::string nested_array_values(std::size_t levels) {
  return repeat(R"({"arrayValue":{"values":[)", levels - 1) + R"({"intValue":"1"})" +
         repeat("]}}", levels - 1);
}

}  // namespace

TEST_CASE("json_transcoder: binary -> JSON -> binary reproduces every field byte for byte") {
  const auto original = full_request();
  const std::string binary = original.SerializeAsString();
  const std::string json = to_json(binary);
  auto back = json_to_protobuf(json);
  REQUIRE_MESSAGE(back.ok(), back.error().message);
  collector::ExportTraceServiceRequest parsed;
  REQUIRE(parsed.ParseFromString(back.value()));
  CHECK(differences(original, parsed) == "");
  // Same field order and the same proto3 default/oneof rules as libprotobuf.
  CHECK(back.value() == binary);
  // And the JSON is stable through a second round.
  CHECK(to_json(back.value()) == json);
}

TEST_CASE("json_transcoder: JSON output is one line of valid OTLP/JSON") {
  const std::string json = to_json(full_request().SerializeAsString());
  CHECK(json.find('\n') == std::string::npos);
  simdjson::dom::parser parser;
  const simdjson::padded_string padded(json);
  simdjson::dom::element root;
  REQUIRE(parser.parse(padded).get(root) == simdjson::SUCCESS);
  simdjson::dom::element span;
  REQUIRE(root.at_pointer("/resourceSpans/0/scopeSpans/0/spans/0").get(span) == simdjson::SUCCESS);
  std::string_view trace_id;
  REQUIRE(span["traceId"].get(trace_id) == simdjson::SUCCESS);
  CHECK(trace_id.size() == 32);
  CHECK(trace_id.find_first_not_of("0123456789abcdef") == std::string_view::npos);
  CHECK(json.find(R"("spanId":")" + hex(id_bytes(8, 2)) + '"') != std::string::npos);
  std::string_view start;
  REQUIRE(span["startTimeUnixNano"].get(start) == simdjson::SUCCESS);
  CHECK(start == "1700000000000000000");
  std::string_view end;
  REQUIRE(span["endTimeUnixNano"].get(end) == simdjson::SUCCESS);
  CHECK(end == "18446744073709551615");
  std::int64_t kind = 0;
  REQUIRE(span["kind"].get(kind) == simdjson::SUCCESS);
  CHECK(kind == 2);
  std::int64_t code = 0;
  REQUIRE(span.at_pointer("/status/code").get(code) == simdjson::SUCCESS);
  CHECK(code == 2);
  CHECK(json.find(R"({"key":"int_negative","value":{"intValue":"-42"}})") != std::string::npos);
  CHECK(json.find(R"({"key":"int_zero","value":{"intValue":"0"}})") != std::string::npos);
  CHECK(json.find(R"({"key":"empty_string","value":{"stringValue":""}})") != std::string::npos);
  CHECK(json.find(R"({"key":"bool_false","value":{"boolValue":false}})") != std::string::npos);
  CHECK(json.find(R"({"key":"double_integral","value":{"doubleValue":42.0}})") !=
        std::string::npos);
  CHECK(json.find(R"({"key":"double_inf","value":{"doubleValue":"Infinity"}})") !=
        std::string::npos);
  CHECK(json.find(R"({"key":"bytes_1","value":{"bytesValue":"+g=="}})") != std::string::npos);
  CHECK(json.find(R"("droppedAttributesCount":4294967295)") != std::string::npos);
  // Defaults are omitted: the root span has no parentSpanId, the empty status is {}.
  CHECK(json.find(R"("spanId":")" + hex(id_bytes(8, 7)) + R"(","kind":9,"status":{}})") !=
        std::string::npos);
}

TEST_CASE("json_transcoder: an opentelemetry-js style request decodes to the expected fields") {
  const std::string json = R"({"resourceSpans":[{"resource":{"attributes":[
    {"key":"service.name","value":{"stringValue":"checkout"}},
    {"key":"process.pid","value":{"intValue":4242}}],"droppedAttributesCount":0},
    "scopeSpans":[{"scope":{"name":"@opentelemetry/instrumentation-http","version":"0.45.0"},
    "spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
    "parentSpanId":"eee19b7ec3c1b173","name":"GET /cart","kind":2,
    "startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000123456789",
    "attributes":[{"key":"http.status_code","value":{"intValue":500}},
                  {"key":"http.ok","value":{"boolValue":false}}],
    "droppedAttributesCount":0,
    "events":[{"attributes":[],"name":"exception","timeUnixNano":"1700000000100000000",
               "droppedAttributesCount":0}],
    "droppedEventsCount":0,"status":{"code":2,"message":"boom"},"links":[],
    "droppedLinksCount":0}]}]}]})";
  const auto request = decode_json(json);
  REQUIRE(request.resource_spans_size() == 1);
  const auto& resource = request.resource_spans(0).resource();
  REQUIRE(resource.attributes_size() == 2);
  CHECK(resource.attributes(0).key() == "service.name");
  CHECK(resource.attributes(0).value().string_value() == "checkout");
  CHECK(resource.attributes(1).value().int_value() == 4242);
  const auto& scope_spans = request.resource_spans(0).scope_spans(0);
  CHECK(scope_spans.scope().name() == "@opentelemetry/instrumentation-http");
  CHECK(scope_spans.scope().version() == "0.45.0");
  REQUIRE(scope_spans.spans_size() == 1);
  const auto& span = scope_spans.spans(0);
  CHECK(span.trace_id() ==
        std::string("\x5b\x8e\xff\xf7\x98\x03\x81\x03\xd2\x69\xb6\x33\x81\x3f\xc6\x0c", 16));
  CHECK(span.span_id() == std::string("\xee\xe1\x9b\x7e\xc3\xc1\xb1\x74", 8));
  CHECK(span.parent_span_id() == std::string("\xee\xe1\x9b\x7e\xc3\xc1\xb1\x73", 8));
  CHECK(span.name() == "GET /cart");
  CHECK(span.kind() == trace::Span::SPAN_KIND_SERVER);
  CHECK(span.start_time_unix_nano() == 1700000000000000000ULL);
  CHECK(span.end_time_unix_nano() == 1700000000123456789ULL);
  REQUIRE(span.attributes_size() == 2);
  CHECK(span.attributes(0).value().int_value() == 500);
  CHECK(span.attributes(1).value().value_case() == common::AnyValue::kBoolValue);
  REQUIRE(span.events_size() == 1);
  CHECK(span.events(0).name() == "exception");
  CHECK(span.events(0).time_unix_nano() == 1700000000100000000ULL);
  CHECK(span.status().code() == trace::Status::STATUS_CODE_ERROR);
  CHECK(span.status().message() == "boom");
}

TEST_CASE("json_transcoder: 64-bit integers are accepted as numbers or strings") {
  const auto from_numbers = decode_json(with_span(
      R"({"startTimeUnixNano":1700000000000000000,"endTimeUnixNano":18446744073709551615,
          "attributes":[{"key":"a","value":{"intValue":-9223372036854775808}},
                        {"key":"b","value":{"intValue":1e3}}]})"));
  const auto from_strings = decode_json(with_span(
      R"({"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"18446744073709551615",
          "attributes":[{"key":"a","value":{"intValue":"-9223372036854775808"}},
                        {"key":"b","value":{"intValue":"1000"}}]})"));
  CHECK(differences(from_numbers, from_strings) == "");
  const auto& span = from_numbers.resource_spans(0).scope_spans(0).spans(0);
  CHECK(span.start_time_unix_nano() == 1700000000000000000ULL);
  CHECK(span.end_time_unix_nano() == std::numeric_limits<std::uint64_t>::max());
  CHECK(span.attributes(0).value().int_value() == std::numeric_limits<std::int64_t>::min());
  CHECK(span.attributes(1).value().int_value() == 1000);
  // uint32 counts and fixed32 flags take strings too.
  const auto counts = decode_json(with_span(R"({"droppedAttributesCount":"3","flags":"257"})"));
  CHECK(counts.resource_spans(0).scope_spans(0).spans(0).dropped_attributes_count() == 3);
  CHECK(counts.resource_spans(0).scope_spans(0).spans(0).flags() == 257);
}

TEST_CASE("json_transcoder: hex ids are case-insensitive in and lower-case out") {
  const auto request = decode_json(
      with_span(R"({"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EeE19b7eC3c1B174",
                    "parentSpanId":"","links":[{"traceId":"000000000000000000000000000000FF",
                    "spanId":"00000000000000AB"}]})"));
  const auto& span = request.resource_spans(0).scope_spans(0).spans(0);
  CHECK(span.trace_id().size() == 16);
  CHECK(span.parent_span_id().empty());
  CHECK(span.links(0).trace_id().back() == '\xff');
  CHECK(span.links(0).span_id().back() == '\xab');
  const std::string json = to_json(request.SerializeAsString());
  CHECK(json.find(R"("traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174")") !=
        std::string::npos);
  CHECK(json.find(R"("traceId":"000000000000000000000000000000ff","spanId":"00000000000000ab")") !=
        std::string::npos);
}

TEST_CASE("json_transcoder: unknown keys are ignored at every level and null means absent") {
  const std::string json = R"({"unknown":{"deep":[1,{"x":null}]},"resourceSpans":[{"extra":[[]],
    "resource":{"attributes":[{"key":"k","value":{"stringValue":"v","future":true},"x":1}],"y":"z"},
    "scopeSpans":[{"scope":{"name":"s","n":{}},"spans":[{"name":"n","newField":"1",
    "status":{"code":1,"detail":{}},"events":[{"name":"e","q":[]}],"links":null,
    "parentSpanId":null,"attributes":[{"key":"a","value":{"arrayValue":{"values":[
    {"intValue":"2","junk":0}],"more":1}}}]}]}]}]})";
  const auto request = decode_json(json);
  const auto& resource_spans = request.resource_spans(0);
  CHECK(resource_spans.resource().attributes(0).value().string_value() == "v");
  CHECK(resource_spans.scope_spans(0).scope().name() == "s");
  const auto& span = resource_spans.scope_spans(0).spans(0);
  CHECK(span.name() == "n");
  CHECK(span.status().code() == trace::Status::STATUS_CODE_OK);
  CHECK(span.events(0).name() == "e");
  CHECK(span.links_size() == 0);
  CHECK(span.attributes(0).value().array_value().values(0).int_value() == 2);
  // A null AnyValue member is absent: the value is an empty AnyValue.
  const auto null_member = decode_json(with_attribute_value(R"({"stringValue":null})"));
  const auto& attribute = null_member.resource_spans(0).scope_spans(0).spans(0).attributes(0);
  CHECK(attribute.has_value());
  CHECK(attribute.value().value_case() == common::AnyValue::VALUE_NOT_SET);
}

TEST_CASE("json_transcoder: proto snake_case names and enum names are accepted") {
  const auto snake = decode_json(
      R"({"resource_spans":[{"scope_spans":[{"schema_url":"u","spans":[{"trace_id":"00000000000000000000000000000001",
      "span_id":"0000000000000002","parent_span_id":"0000000000000003","start_time_unix_nano":"5",
      "kind":"SPAN_KIND_CLIENT","status":{"code":"STATUS_CODE_ERROR"},
      "attributes":[{"key":"k","value":{"int_value":"1"}}],"dropped_events_count":2}]}]}]})");
  const auto camel = decode_json(
      R"({"resourceSpans":[{"scopeSpans":[{"schemaUrl":"u","spans":[{"traceId":"00000000000000000000000000000001",
      "spanId":"0000000000000002","parentSpanId":"0000000000000003","startTimeUnixNano":"5",
      "kind":3,"status":{"code":2},
      "attributes":[{"key":"k","value":{"intValue":"1"}}],"droppedEventsCount":2}]}]}]})");
  CHECK(differences(camel, snake) == "");
  CHECK(camel.resource_spans(0).scope_spans(0).spans(0).kind() == trace::Span::SPAN_KIND_CLIENT);
}

TEST_CASE("json_transcoder: AnyValue oneof members keep presence at their default value") {
  for (const char* value :
       {R"({"intValue":0})", R"({"intValue":"0"})", R"({"boolValue":false})",
        R"({"stringValue":""})", R"({"doubleValue":0})", R"({"bytesValue":""})"}) {
    CAPTURE(value);
    const auto request = decode_json(with_attribute_value(value));
    const auto& any = request.resource_spans(0).scope_spans(0).spans(0).attributes(0).value();
    CHECK(any.value_case() != common::AnyValue::VALUE_NOT_SET);
  }
  // Outside the oneof, defaults are omitted entirely (proto3).
  auto binary = json_to_protobuf(R"({"resourceSpans":[{"schemaUrl":"","scopeSpans":[]}]})");
  REQUIRE(binary.ok());
  CHECK(binary.value() == std::string("\x0a\x00", 2));
  CHECK(json_to_protobuf("{}").value().empty());
  CHECK(to_json("") == "{}");
}

TEST_CASE("json_transcoder: doubles, bytes and special values decode") {
  const auto request = decode_json(with_span(R"({"attributes":[
    {"key":"nan","value":{"doubleValue":"NaN"}},{"key":"inf","value":{"doubleValue":"Infinity"}},
    {"key":"ninf","value":{"doubleValue":"-Infinity"}},{"key":"int","value":{"doubleValue":7}},
    {"key":"str","value":{"doubleValue":"2.5"}},{"key":"exp","value":{"doubleValue":1e300}},
    {"key":"unpadded","value":{"bytesValue":"+g"}},{"key":"urlsafe","value":{"bytesValue":"-_8"}}]})"));
  const auto& attributes = request.resource_spans(0).scope_spans(0).spans(0).attributes();
  CHECK(std::isnan(attributes[0].value().double_value()));
  CHECK(attributes[1].value().double_value() == std::numeric_limits<double>::infinity());
  CHECK(attributes[2].value().double_value() == -std::numeric_limits<double>::infinity());
  CHECK(attributes[3].value().double_value() == 7.0);
  CHECK(attributes[4].value().double_value() == 2.5);
  CHECK(attributes[5].value().double_value() == 1e300);
  CHECK(attributes[6].value().bytes_value() == "\xfa");
  CHECK(attributes[7].value().bytes_value() == "\xfb\xff");
  const std::string json = to_json(request.SerializeAsString());
  CHECK(json.find(R"("doubleValue":"NaN")") != std::string::npos);
  CHECK(json.find(R"("doubleValue":"-Infinity")") != std::string::npos);
  CHECK(json.find(R"("doubleValue":1e+300)") != std::string::npos);
}

TEST_CASE("json_transcoder: malformed or mistyped JSON is refused with the path named") {
  CHECK(json_error("").starts_with("invalid JSON: "));
  CHECK(json_error(R"({"resourceSpans":[)").starts_with("invalid JSON: "));
  CHECK(json_error("[]") == "expected a JSON object at the top level, got array");
  const std::string three_spans = R"({"name":"a"},{"name":"b"},)";
  CHECK(json_error(with_span(three_spans + R"({"traceId":"5b8efff798038103d269b633813fc60"})")) ==
        "resourceSpans[0].scopeSpans[0].spans[2].traceId: expected 32 hex characters, got 31");
  CHECK(json_error(with_span(R"({"spanId":"eee19b7ec3c1b17g"})")) ==
        "resourceSpans[0].scopeSpans[0].spans[0].spanId: invalid hex character at offset 15");
  CHECK(json_error(with_span(R"({"parentSpanId":"00"})")) ==
        "resourceSpans[0].scopeSpans[0].spans[0].parentSpanId: expected 16 hex characters, got 2");
  CHECK(json_error(with_span(R"({"status":"ERROR"})")) ==
        "resourceSpans[0].scopeSpans[0].spans[0].status: expected object, got string");
  CHECK(json_error(R"({"resourceSpans":{}})") == "resourceSpans: expected array, got object");
  CHECK(json_error(with_span(R"({"name":5})")) ==
        "resourceSpans[0].scopeSpans[0].spans[0].name: expected string, got number");
  CHECK(
      json_error(with_span(R"({"startTimeUnixNano":"-1"})")) ==
      "resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano: invalid or out of range uint64");
  CHECK(json_error(with_span(R"({"startTimeUnixNano":true})"))
            .ends_with("expected uint64 (number or decimal string), got boolean"));
  CHECK(json_error(with_span(R"({"droppedAttributesCount":4294967296})")).ends_with("uint32"));
  CHECK(json_error(with_span(R"({"kind":"SERVER"})")).ends_with(R"(unknown enum value "SERVER")"));
  CHECK(json_error(with_span(R"({"name":"a","name":"b"})")).ends_with("name: duplicate key"));
  CHECK(json_error(with_span(R"({"events":[null]})"))
            .ends_with("events[0]: null is not allowed in a list"));
  CHECK(json_error(with_attribute_value(R"({"intValue":"1.5"})")).ends_with("int64"));
  CHECK(json_error(with_attribute_value(R"({"intValue":9223372036854775808})")).ends_with("int64"));
  CHECK(json_error(with_attribute_value(R"({"doubleValue":"inf"})")).find("invalid double") !=
        std::string::npos);
  CHECK(json_error(with_attribute_value(R"({"bytesValue":"a"})"))
            .ends_with("bytesValue: invalid base64"));
  CHECK(json_error(with_attribute_value(R"({"boolValue":"true"})"))
            .ends_with("expected boolean, got string"));
  CHECK(json_error(with_attribute_value(R"({"stringValue":"a","intValue":1})")) ==
        "resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value.intValue: only one value may "
        "be set, found also stringValue");
}

TEST_CASE("json_transcoder: nesting depth is limited and depth bombs fail cleanly") {
  // 64 nested AnyValues are fine with the default limit, 65 are not.
  const auto deepest = decode_json(with_attribute_value(nested_array_values(64)));
  const common::AnyValue* value =
      &deepest.resource_spans(0).scope_spans(0).spans(0).attributes(0).value();
  int levels = 1;
  while (value->has_array_value()) {
    value = &value->array_value().values(0);
    ++levels;
  }
  CHECK(levels == 64);
  CHECK(value->int_value() == 1);
  const std::string too_deep = json_error(with_attribute_value(nested_array_values(65)));
  CHECK(too_deep.starts_with(
      "resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value.arrayValue.values[0]"));
  CHECK(too_deep.ends_with(": nesting deeper than 64"));
  // Key-value lists nest too.
  const std::string kvlists = repeat(R"({"kvlistValue":{"values":[{"key":"k","value":)", 64) +
                              R"({"intValue":1})" + repeat("}]}}", 64);
  CHECK(json_error(with_attribute_value(kvlists)).ends_with("nesting deeper than 64"));
  CHECK(json_error(with_attribute_value(nested_array_values(4)), JsonLimits{.max_depth = 3})
            .ends_with("nesting deeper than 3"));
  // Bombs far beyond the limit are refused by the parser before any walking.
  CHECK(json_error(repeat("[", 10000) + repeat("]", 10000)).starts_with("nesting deeper than 64"));
  CHECK(json_error(with_attribute_value(nested_array_values(10000)))
            .starts_with("nesting deeper than 64"));
  CHECK(json_error(R"({"unknown":)" + repeat("[", 10000) + repeat("]", 10000) + "}")
            .starts_with("nesting deeper than 64"));

  // The binary direction has the same limit.
  std::string any_value = "\x18\x01";  // intValue: 1
  for (int i = 0; i < 10000; ++i) {
    std::string array;
    wire::append_bytes_field(array, 1, any_value);  // ArrayValue.values
    any_value.clear();
    wire::append_bytes_field(any_value, 5, array);  // AnyValue.arrayValue
  }
  std::string key_value, span, scope_spans, resource_spans, request;
  wire::append_bytes_field(key_value, 2, any_value);
  wire::append_bytes_field(span, 9, key_value);
  wire::append_bytes_field(scope_spans, 2, span);
  wire::append_bytes_field(resource_spans, 2, scope_spans);
  wire::append_bytes_field(request, 1, resource_spans);
  auto json = protobuf_to_json(request);
  REQUIRE_FALSE(json.ok());
  CHECK(json.error().message.ends_with(": nesting deeper than 64"));
}

TEST_CASE("json_transcoder: binary input follows protobuf parsing rules") {
  // Interleaved repeated fields, a singular message sent twice (merged), a
  // oneof set twice (the last wins), unknown fields and a known number with
  // the wrong wire type (unknown to libprotobuf too).
  std::string status_code, status_message, attribute_a, attribute_b, any_value, span;
  wire::append_tag(status_code, 3, wire::WireType::kVarint);
  wire::append_varint(status_code, 2);
  wire::append_bytes_field(status_message, 2, "first");
  wire::append_bytes_field(any_value, 6, "");                 // kvlistValue {}
  wire::append_bytes_field(any_value, 1, "replaced");         // stringValue wins over it
  wire::append_tag(any_value, 99, wire::WireType::kFixed32);  // unknown field
  wire::append_fixed32(any_value, 7);
  wire::append_bytes_field(attribute_a, 1, "a");
  wire::append_bytes_field(attribute_a, 2, any_value);
  wire::append_bytes_field(attribute_b, 1, "b");
  wire::append_bytes_field(span, 9, attribute_a);
  wire::append_bytes_field(span, 5, "name");
  wire::append_bytes_field(span, 15, status_code);
  wire::append_bytes_field(span, 9, attribute_b);
  wire::append_bytes_field(span, 15, status_message);
  wire::append_tag(span, 6, wire::WireType::kFixed64);  // kind with the wrong wire type
  wire::append_fixed64(span, 3);
  wire::append_tag(span, 1000, wire::WireType::kVarint);
  wire::append_varint(span, 1);
  std::string scope_spans, resource_spans, request;
  wire::append_bytes_field(scope_spans, 2, span);
  wire::append_bytes_field(resource_spans, 2, scope_spans);
  wire::append_bytes_field(request, 1, resource_spans);

  collector::ExportTraceServiceRequest expected;
  REQUIRE(expected.ParseFromString(request));
  expected.DiscardUnknownFields();
  const auto actual = decode_json(to_json(request));
  CHECK(differences(expected, actual) == "");
  const auto& decoded_span = actual.resource_spans(0).scope_spans(0).spans(0);
  CHECK(decoded_span.attributes_size() == 2);
  CHECK(decoded_span.attributes(0).value().string_value() == "replaced");
  CHECK(decoded_span.status().code() == trace::Status::STATUS_CODE_ERROR);
  CHECK(decoded_span.status().message() == "first");
}

TEST_CASE("json_transcoder: malformed binary input is refused") {
  const std::string binary = full_request().SerializeAsString();
  auto truncated = protobuf_to_json(std::string_view(binary).substr(0, binary.size() / 2));
  REQUIRE_FALSE(truncated.ok());
  CHECK(truncated.error().message.find("malformed protobuf") != std::string::npos);
  CHECK_FALSE(protobuf_to_json(std::string("\x00", 1)).ok());  // field number 0

  collector::ExportTraceServiceRequest bad_id;
  bad_id.add_resource_spans()->add_scope_spans()->add_spans()->set_trace_id("short");
  auto id_error = protobuf_to_json(bad_id.SerializeAsString());
  REQUIRE_FALSE(id_error.ok());
  CHECK(id_error.error().message ==
        "resourceSpans[0].scopeSpans[0].spans[0].traceId: expected 16 bytes, got 5");

  std::string span, scope_spans, resource_spans, request;
  wire::append_bytes_field(span, 5, "bad \xff utf-8");
  wire::append_bytes_field(scope_spans, 2, span);
  wire::append_bytes_field(resource_spans, 2, scope_spans);
  wire::append_bytes_field(request, 1, resource_spans);
  auto utf8_error = protobuf_to_json(request);
  REQUIRE_FALSE(utf8_error.ok());
  CHECK(utf8_error.error().message ==
        "resourceSpans[0].scopeSpans[0].spans[0].name: invalid UTF-8 in string field");
}

TEST_CASE("json_transcoder: mutated inputs never crash and accepted output stays consistent") {
  const auto original = full_request();
  const std::string binary = original.SerializeAsString();
  const std::string json = to_json(binary);
  // libprotobuf logs every invalid UTF-8 string it refuses; expected here.
  const google::protobuf::LogSilencer quiet_libprotobuf;
  std::mt19937 random(12345);
  int binary_accepted = 0;
  for (int round = 0; round < 500; ++round) {
    std::string mutated = binary;
    const int flips = 1 + static_cast<int>(random() % 3);
    for (int i = 0; i < flips; ++i)
      mutated[random() % mutated.size()] = static_cast<char>(random());
    auto converted = protobuf_to_json(mutated);
    if (!converted.ok()) continue;
    ++binary_accepted;
    // What we print, we must read back, and it must mean what libprotobuf reads.
    auto back = json_to_protobuf(converted.value());
    REQUIRE_MESSAGE(back.ok(), back.error().message);
    collector::ExportTraceServiceRequest ours, theirs;
    REQUIRE(ours.ParseFromString(back.value()));
    if (theirs.ParseFromString(mutated)) {
      theirs.DiscardUnknownFields();
      CHECK(differences(theirs, ours) == "");
    }
  }
  CHECK(binary_accepted > 50);  // the property was really exercised
  int json_accepted = 0;
  for (int round = 0; round < 500; ++round) {
    std::string mutated = json;
    const int flips = 1 + static_cast<int>(random() % 3);
    for (int i = 0; i < flips; ++i) {
      mutated[random() % mutated.size()] = "{}[]\":,0a-\\"[random() % 11];
    }
    auto converted = json_to_protobuf(mutated);
    if (!converted.ok()) continue;
    ++json_accepted;
    collector::ExportTraceServiceRequest parsed;
    CHECK(parsed.ParseFromString(converted.value()));
  }
  CHECK(json_accepted > 10);
}
