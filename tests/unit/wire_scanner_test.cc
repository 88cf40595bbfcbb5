#include "daemon/otlp/wire_scanner.h"

#include <doctest/doctest.h>
#include <google/protobuf/stubs/logging.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>

#include "daemon/otlp/request_writer.h"
#include "daemon/otlp/wire_format.h"
#include "tests/unit/otlp_test_requests.h"

namespace spanrelay::otlp {
namespace {

using testing::check_ranges_within_payload;
using testing::check_scan_matches;
using testing::make_varied_request;
namespace pb = testing::pb;

Result<ScannedRequest> scan(std::string bytes, ScanLimits limits = {}) {
  return scan_export_request(std::make_shared<const std::string>(std::move(bytes)), limits);
}

std::string error_of(const Result<ScannedRequest>& result) {
  return result.ok() ? std::string("<no error>") : result.error().message;
}

// A serialized request with one ResourceSpans holding one ScopeSpans holding
// one span whose body is `span_body` (raw bytes, so tests can break them).
std::string request_with_span_body(std::string_view span_body) {
  std::string scope_spans;
  wire::append_bytes_field(scope_spans, 2, span_body);
  std::string resource_spans;
  wire::append_bytes_field(resource_spans, 2, scope_spans);
  std::string request;
  wire::append_bytes_field(request, 1, resource_spans);
  return request;
}

std::string valid_span_body() {
  pb::Span span;
  span.set_trace_id(testing::make_id(16, 1));
  span.set_span_id(testing::make_id(8, 2));
  span.set_name("x");
  return span.SerializeAsString();
}

TEST_CASE("wire_scanner: varied requests match libprotobuf field by field and range by range") {
  for (int seed = 0; seed < 4; ++seed) {
    const testing::RequestShape shape{1 + seed % 3, 1 + seed, 2 + 3 * seed};
    const pb::ExportTraceServiceRequest request = make_varied_request(seed, shape);
    const auto result = scan(request.SerializeAsString());
    REQUIRE_MESSAGE(result.ok(), error_of(result));
    CHECK(result.value().spans.size() ==
          static_cast<std::size_t>(shape.resources * shape.scopes_per_resource *
                                   shape.spans_per_scope));
    check_scan_matches(result.value(), request);
  }
}

TEST_CASE("wire_scanner: TracesData bytes scan like the request") {
  pb::TracesData data;
  data.mutable_resource_spans()->CopyFrom(make_varied_request(7).resource_spans());
  const auto result = scan(data.SerializeAsString());
  REQUIRE_MESSAGE(result.ok(), error_of(result));
  check_scan_matches(result.value(), make_varied_request(7));
}

TEST_CASE("wire_scanner: empty request, empty groups and a null payload") {
  const auto empty = scan("");
  REQUIRE(empty.ok());
  CHECK(empty.value().spans.empty());
  CHECK(empty.value().resources.empty());

  pb::ExportTraceServiceRequest request;
  request.add_resource_spans();                     // no resource, no scopes
  request.add_resource_spans()->add_scope_spans();  // an empty ScopeSpans
  const auto groups = scan(request.SerializeAsString());
  REQUIRE(groups.ok());
  CHECK(groups.value().resources.size() == 2);
  CHECK(groups.value().scopes.size() == 1);
  CHECK(groups.value().scopes[0].resource_index == 1);
  CHECK(groups.value().resources[0].resource.length == 0);
  check_scan_matches(groups.value(), request);

  const auto null = scan_export_request(nullptr);
  CHECK_FALSE(null.ok());
}

TEST_CASE("wire_scanner: unknown fields at every level are skipped and kept in the bytes") {
  pb::ExportTraceServiceRequest request = make_varied_request(3, {1, 1, 2});
  auto* rs = request.mutable_resource_spans(0);
  testing::mutable_unknown(*rs)->AddVarint(1000, 42);
  testing::mutable_unknown(*rs)->AddLengthDelimited(1001, "resource-spans-extra");
  auto* ss = rs->mutable_scope_spans(0);
  testing::mutable_unknown(*ss)->AddFixed32(1002, 7);
  testing::mutable_unknown(*ss)->AddLengthDelimited(1001, "scope-spans-extra");
  auto* span = ss->mutable_spans(1);
  testing::mutable_unknown(*span)->AddVarint(1000, 1);
  testing::mutable_unknown(*span)->AddLengthDelimited(1001, "span-extra");
  testing::mutable_unknown(*span)->AddFixed64(1003, 99);
  testing::mutable_unknown(*span->mutable_status())->AddVarint(1, 5);  // reserved field 1
  testing::mutable_unknown(request)->AddVarint(1000, 3);               // request level: skipped

  const auto result = scan(request.SerializeAsString());
  REQUIRE_MESSAGE(result.ok(), error_of(result));
  const ScannedRequest& scanned = result.value();
  check_scan_matches(scanned, request);
  CHECK(scanned.resources[0].header_bytes.find("resource-spans-extra") != std::string::npos);
  CHECK(scanned.scopes[0].header_bytes.find("scope-spans-extra") != std::string::npos);
  CHECK(scanned.span_bytes(scanned.spans[1]).find("span-extra") != std::string_view::npos);
}

TEST_CASE("wire_scanner: parent ids, status codes and flags") {
  pb::ExportTraceServiceRequest request;
  auto* ss = request.add_resource_spans()->add_scope_spans();
  auto add = [&](int n) {
    pb::Span* span = ss->add_spans();
    span->set_trace_id(testing::make_id(16, n));
    span->set_span_id(testing::make_id(8, n));
    return span;
  };
  add(0);                                               // root, no status
  add(1)->set_parent_span_id(std::string(8, '\0'));     // all-zero parent: no parent
  add(2)->set_parent_span_id(testing::make_id(8, 99));  // real parent
  add(3)->mutable_status()->set_code(pb::Status::STATUS_CODE_OK);
  add(4)->mutable_status()->set_code(pb::Status::STATUS_CODE_ERROR);
  add(5)->mutable_status()->set_code(static_cast<pb::Status::StatusCode>(7));  // unknown code
  add(6)->mutable_status()->set_code(static_cast<pb::Status::StatusCode>(-1));
  add(7)->set_flags(0xffffffffu);
  const auto result = scan(request.SerializeAsString());
  REQUIRE_MESSAGE(result.ok(), error_of(result));
  const auto& spans = result.value().spans;
  REQUIRE(spans.size() == 8);
  CHECK_FALSE(spans[0].has_parent);
  CHECK_FALSE(spans[1].has_parent);
  CHECK(spans[2].has_parent);
  CHECK(spans[3].status == StatusCode::kOk);
  CHECK(spans[4].status == StatusCode::kError);
  CHECK(spans[5].status == StatusCode::kUnset);
  CHECK(spans[6].status == StatusCode::kUnset);
  CHECK(spans[7].flags == 0xffffffffu);
  check_scan_matches(result.value(), request);
}

TEST_CASE("wire_scanner: repeated singular fields follow protobuf's last-one-wins and merge") {
  std::string body = valid_span_body();
  const std::string second_trace_id = testing::make_id(16, 77);
  wire::append_bytes_field(body, 1, second_trace_id);
  std::string error_status;
  wire::append_tag(error_status, 3, wire::WireType::kVarint);
  wire::append_varint(error_status, 2);
  wire::append_bytes_field(body, 15, error_status);
  wire::append_bytes_field(body, 15, "");  // a later empty Status keeps the code (merge)
  // A code of 2^32 + 2 is 2 as an int32, as libprotobuf reads it.
  std::string wide_code;
  wire::append_tag(wide_code, 3, wire::WireType::kVarint);
  wire::append_varint(wide_code, (std::uint64_t{1} << 32) + 2);
  std::string body_wide = valid_span_body();
  wire::append_bytes_field(body_wide, 15, wide_code);

  for (const std::string& span_body : {body, body_wide}) {
    const std::string bytes = request_with_span_body(span_body);
    const auto result = scan(bytes);
    REQUIRE_MESSAGE(result.ok(), error_of(result));
    pb::ExportTraceServiceRequest parsed;
    REQUIRE(parsed.ParseFromString(bytes));
    check_scan_matches(result.value(), parsed, /*canonical=*/false);
    CHECK(result.value().spans[0].status == StatusCode::kError);
  }
  CHECK(testing::id_string(scan(request_with_span_body(body)).value().spans[0].trace_id) ==
        second_trace_id);
}

TEST_CASE("wire_scanner: errors name the span and the problem") {
  pb::ExportTraceServiceRequest request = make_varied_request(1, {1, 2, 5});
  request.mutable_resource_spans(0)->mutable_scope_spans(1)->mutable_spans(3)->set_trace_id(
      std::string(15, 'x'));
  CHECK(error_of(scan(request.SerializeAsString())) ==
        "malformed protobuf: resource_spans[0].scope_spans[1].spans[3]: trace_id must be 16 "
        "bytes, got 15");

  pb::Span span;
  span.set_trace_id(testing::make_id(16, 1));
  CHECK(error_of(scan(request_with_span_body(span.SerializeAsString()))) ==
        "malformed protobuf: resource_spans[0].scope_spans[0].spans[0]: span_id must be 8 bytes, "
        "got 0");
  span.set_span_id(testing::make_id(8, 1));
  span.set_parent_span_id("abc");
  CHECK(error_of(scan(request_with_span_body(span.SerializeAsString()))) ==
        "malformed protobuf: resource_spans[0].scope_spans[0].spans[0]: parent_span_id must be 8 "
        "bytes or empty, got 3");
  span.clear_parent_span_id();
  span.clear_trace_id();
  CHECK(error_of(scan(request_with_span_body(span.SerializeAsString()))) ==
        "malformed protobuf: resource_spans[0].scope_spans[0].spans[0]: trace_id must be 16 "
        "bytes, got 0");

  // A length prefix that runs past the end of the request.
  std::string truncated = request_with_span_body(valid_span_body());
  truncated.pop_back();
  CHECK(error_of(scan(truncated)) ==
        "malformed protobuf: truncated length-delimited field at byte 0 (resource_spans, field 1): "
        "length " +
            std::to_string(truncated.size() - 1) + ", but only " +
            std::to_string(truncated.size() - 2) + " bytes left");
}

TEST_CASE("wire_scanner: max_spans limit") {
  const std::string bytes = make_varied_request(2, {2, 1, 3}).SerializeAsString();
  CHECK(scan(bytes, {.max_spans = 6}).ok());
  CHECK(scan(bytes, {.max_spans = 0}).ok());
  CHECK(error_of(scan(bytes, {.max_spans = 5})) == "too many spans in one request (limit 5)");
  CHECK(error_of(scan(bytes, {.max_spans = 1})) == "too many spans in one request (limit 1)");
}

TEST_CASE("wire_scanner: wrong wire types of known fields are errors") {
  auto span_with = [](std::uint32_t field, wire::WireType type) {
    std::string body = valid_span_body();
    wire::append_tag(body, field, type);
    switch (type) {
      case wire::WireType::kVarint:
        wire::append_varint(body, 1);
        break;
      case wire::WireType::kFixed64:
        wire::append_fixed64(body, 1);
        break;
      case wire::WireType::kFixed32:
        wire::append_fixed32(body, 1);
        break;
      default:
        wire::append_varint(body, 0);
        break;
    }
    return request_with_span_body(body);
  };
  const std::string varint_trace_id = span_with(1, wire::WireType::kVarint);
  CHECK(error_of(scan(varint_trace_id)) ==
        "malformed protobuf: resource_spans[0].scope_spans[0].spans[0]: trace_id (field 1) has "
        "wire type varint, expected length-delimited at byte " +
            std::to_string(varint_trace_id.size() - 2));
  CHECK(error_of(scan(span_with(7, wire::WireType::kVarint))).find("start_time_unix_nano") !=
        std::string::npos);
  CHECK(error_of(scan(span_with(8, wire::WireType::kFixed32))).find("end_time_unix_nano") !=
        std::string::npos);
  CHECK(error_of(scan(span_with(16, wire::WireType::kFixed64))).find("flags (field 16)") !=
        std::string::npos);
  CHECK(error_of(scan(span_with(5, wire::WireType::kVarint))).find("name (field 5)") !=
        std::string::npos);
  CHECK(error_of(scan(span_with(6, wire::WireType::kFixed32))).find("kind (field 6)") !=
        std::string::npos);
  CHECK(error_of(scan(span_with(15, wire::WireType::kVarint))).find("status (field 15)") !=
        std::string::npos);

  std::string status;
  wire::append_bytes_field(status, 3, "x");
  std::string body = valid_span_body();
  wire::append_bytes_field(body, 15, status);
  CHECK(error_of(scan(request_with_span_body(body)))
            .find("spans[0].status: code (field 3) has wire type length-delimited") !=
        std::string::npos);

  std::string request;
  wire::append_tag(request, 1, wire::WireType::kFixed32);
  wire::append_fixed32(request, 0);
  CHECK(error_of(scan(request)) ==
        "malformed protobuf: resource_spans (field 1) has wire type fixed32, expected "
        "length-delimited at byte 0");
  std::string resource_spans;
  wire::append_tag(resource_spans, 3, wire::WireType::kVarint);
  wire::append_varint(resource_spans, 1);
  request.clear();
  wire::append_bytes_field(request, 1, resource_spans);
  CHECK(error_of(scan(request)).find("resource_spans[0]: schema_url (field 3)") !=
        std::string::npos);
}

TEST_CASE("wire_scanner: bad tags, varints and length prefixes") {
  const std::string eleven_byte_varint(10, '\x80');
  CHECK(error_of(scan(eleven_byte_varint + '\x01')) ==
        "malformed protobuf: varint longer than 10 bytes in field tag at byte 0");
  CHECK(error_of(scan("\x80")) == "malformed protobuf: truncated varint in field tag at byte 0");
  CHECK(error_of(scan(std::string("\x02\x00", 2))) ==
        "malformed protobuf: field number 0 at byte 0");
  CHECK(error_of(scan("\x0e")) == "malformed protobuf: invalid wire type 6 at byte 0 (field 1)");
  CHECK(error_of(scan("\x80\x80\x80\x80\x10")) ==
        "malformed protobuf: field tag does not fit in 32 bits at byte 0");
  CHECK(error_of(scan("\x1b")).find("OTLP does not use groups") != std::string::npos);

  // Huge length prefixes at the top level and deep inside.
  std::string huge = "\x0a";
  wire::append_varint(huge, std::uint64_t{1} << 40);
  huge += "abc";
  CHECK(error_of(scan(huge))
            .find("truncated length-delimited field at byte 0 (resource_spans, field 1)") !=
        std::string::npos);
  std::string huge_max = "\x0a";
  wire::append_varint(huge_max, UINT64_MAX);
  CHECK_FALSE(scan(huge_max).ok());
  CHECK(error_of(scan("\x0a" + eleven_byte_varint + "\x01"))
            .find("varint longer than 10 bytes in a length prefix at byte 0 (resource_spans, field "
                  "1)") != std::string::npos);
  std::string deep_body = valid_span_body();
  wire::append_tag(deep_body, 9, wire::WireType::kLengthDelimited);
  wire::append_varint(deep_body, 0xffffffffu);
  CHECK(
      error_of(scan(request_with_span_body(deep_body)))
          .find(
              "spans[0]: truncated length-delimited field at byte 37 (attributes, field 9): length "
              "4294967295, but only 0 bytes left") != std::string::npos);
  std::string truncated_fixed = valid_span_body();
  wire::append_tag(truncated_fixed, 7, wire::WireType::kFixed64);
  truncated_fixed += "1234";
  CHECK(error_of(scan(request_with_span_body(truncated_fixed)))
            .find("truncated fixed64 field at byte 37 (start_time_unix_nano, field 7)") !=
        std::string::npos);
  std::string unknown_group = valid_span_body();
  wire::append_tag(unknown_group, 1000, wire::WireType::kStartGroup);
  CHECK(error_of(scan(request_with_span_body(unknown_group)))
            .find("unsupported wire type start-group at byte 37 (field 1000)") !=
        std::string::npos);
}

TEST_CASE("wire_scanner: every prefix of a valid request is an error or a sound result") {
  const std::string bytes = make_varied_request(5, {2, 2, 2}).SerializeAsString();
  std::size_t accepted = 0;
  for (std::size_t length = 0; length <= bytes.size(); ++length) {
    const auto result = scan(bytes.substr(0, length));
    if (result.ok()) {
      ++accepted;
      check_ranges_within_payload(result.value());
    } else {
      CHECK(result.error().message.rfind("malformed protobuf: ", 0) == 0);
    }
  }
  // The empty prefix, the cut between the two ResourceSpans and the whole request.
  CHECK(accepted == 3);
}

// Silences libprotobuf's log for the scope of a test.
class QuietProtobufLog {
 public:
  QuietProtobufLog()
      : previous_(google::protobuf::SetLogHandler(
            +[](google::protobuf::LogLevel, const char*, int, const std::string&) {})) {}
  ~QuietProtobufLog() { google::protobuf::SetLogHandler(previous_); }
  QuietProtobufLog(const QuietProtobufLog&) = delete;
  QuietProtobufLog& operator=(const QuietProtobufLog&) = delete;

 private:
  google::protobuf::LogHandler* previous_;
};

// Single-byte mutations of a valid request. Whenever both the scanner and
// libprotobuf accept the bytes, they must agree on every span; the scanner
// must never crash or hand out a range outside the payload; and the writer
// must turn any scanned request into bytes that scan again to the same spans.
TEST_CASE("wire_scanner: 10k random single-byte mutations") {
  const QuietProtobufLog quiet;  // libprotobuf logs every invalid UTF-8 string it meets
  const std::string original =
      make_varied_request(9, {2, 1, 3, /*every_attribute_kind=*/false}).SerializeAsString();
  std::mt19937_64 random(20240601);
  std::size_t both_accepted = 0;
  for (int i = 0; i < 10000; ++i) {
    std::string bytes = original;
    const std::size_t position = random() % bytes.size();
    switch (random() % 3) {
      case 0:
        bytes[position] = static_cast<char>(random());
        break;
      case 1:
        bytes[position] = static_cast<char>(bytes[position] ^ (1 << (random() % 8)));
        break;
      default:
        bytes[position] = static_cast<char>(random() % 2 == 0 ? 0x00 : 0xff);
        break;
    }
    const auto result = scan(bytes);
    if (!result.ok()) continue;
    const ScannedRequest& scanned = result.value();
    check_ranges_within_payload(scanned);
    pb::ExportTraceServiceRequest parsed;
    if (parsed.ParseFromString(bytes)) {
      ++both_accepted;
      check_scan_matches(scanned, parsed, /*canonical=*/false);
    }
    RequestWriter writer;
    writer.add_request(scanned);
    const std::size_t expected_size = writer.encoded_size();
    const auto rescanned = scan(writer.finish());
    REQUIRE_MESSAGE(rescanned.ok(), error_of(rescanned));
    CHECK(rescanned.value().payload->size() == expected_size);
    REQUIRE(rescanned.value().spans.size() == scanned.spans.size());
  }
  CHECK(both_accepted > 100);  // the differential check did run
}

}  // namespace
}  // namespace spanrelay::otlp
