#include "daemon/otlp/request_writer.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "daemon/otlp/wire_scanner.h"
#include "tests/unit/otlp_test_requests.h"

namespace spanrelay::otlp {
namespace {

using testing::make_varied_request;
using testing::MessageDifferencer;
namespace pb = testing::pb;

ScannedRequest scan_or_fail(const pb::ExportTraceServiceRequest& request) {
  auto result =
      scan_export_request(std::make_shared<const std::string>(request.SerializeAsString()));
  REQUIRE_MESSAGE(result.ok(), (result.ok() ? "" : result.error().message));
  return std::move(result).value();
}

pb::ExportTraceServiceRequest parse_or_fail(const std::string& bytes) {
  pb::ExportTraceServiceRequest parsed;
  REQUIRE(parsed.ParseFromString(bytes));
  return parsed;
}

// Checks encoded_size() against the bytes finish() returns.
std::string finish_checked(RequestWriter& writer) {
  const std::size_t expected = writer.encoded_size();
  std::string bytes = writer.finish();
  CHECK(bytes.size() == expected);
  return bytes;
}

TEST_CASE("request_writer: a scanned request written back equals the original") {
  for (int seed = 0; seed < 3; ++seed) {
    const pb::ExportTraceServiceRequest request =
        make_varied_request(seed, {1 + seed, 1 + seed, 2 + seed});
    const ScannedRequest scanned = scan_or_fail(request);
    RequestWriter writer;
    writer.add_request(scanned);
    CHECK(writer.span_count() == scanned.spans.size());
    const pb::ExportTraceServiceRequest written = parse_or_fail(finish_checked(writer));
    CHECK(MessageDifferencer::Equals(written, request));

    // Span by span through the convenience overload: the same bytes.
    RequestWriter one_by_one;
    for (const SpanView& span : scanned.spans) one_by_one.add_span(scanned, span);
    RequestWriter whole;
    whole.add_request(scanned);
    CHECK(one_by_one.finish() == whole.finish());
  }
}

TEST_CASE("request_writer: unknown fields survive and spans stay byte-identical") {
  pb::ExportTraceServiceRequest request = make_varied_request(4, {2, 2, 2});
  for (auto& rs : *request.mutable_resource_spans()) {
    testing::mutable_unknown(rs)->AddVarint(1000, 11);
    testing::mutable_unknown(rs)->AddLengthDelimited(1001, "rs-extra");
    for (auto& ss : *rs.mutable_scope_spans()) {
      testing::mutable_unknown(ss)->AddVarint(1000, 22);
      testing::mutable_unknown(ss)->AddLengthDelimited(1001, "ss-extra");
      for (auto& span : *ss.mutable_spans()) {
        testing::mutable_unknown(span)->AddVarint(1000, 33);
        testing::mutable_unknown(span)->AddLengthDelimited(1001, "span-extra");
      }
    }
  }
  const ScannedRequest scanned = scan_or_fail(request);
  RequestWriter writer;
  writer.add_request(scanned);
  const pb::ExportTraceServiceRequest written = parse_or_fail(finish_checked(writer));
  CHECK(MessageDifferencer::Equals(written, request));
  REQUIRE(written.resource_spans_size() == request.resource_spans_size());
  for (int r = 0; r < written.resource_spans_size(); ++r) {
    const auto& rs = written.resource_spans(r);
    REQUIRE(testing::unknown_of(rs).field_count() == 2);
    CHECK(testing::unknown_of(rs).field(0).number() == 1000);
    CHECK(testing::unknown_of(rs).field(0).varint() == 11);
    CHECK(testing::unknown_of(rs).field(1).length_delimited() == "rs-extra");
    REQUIRE(rs.scope_spans_size() == request.resource_spans(r).scope_spans_size());
    for (int s = 0; s < rs.scope_spans_size(); ++s) {
      const auto& ss = rs.scope_spans(s);
      REQUIRE(testing::unknown_of(ss).field_count() == 2);
      CHECK(testing::unknown_of(ss).field(1).length_delimited() == "ss-extra");
      const auto& original_spans = request.resource_spans(r).scope_spans(s).spans();
      REQUIRE(ss.spans_size() == original_spans.size());
      for (int k = 0; k < ss.spans_size(); ++k) {
        CHECK(testing::unknown_of(ss.spans(k)).field_count() == 2);
        CHECK(ss.spans(k).SerializeAsString() == original_spans[k].SerializeAsString());
      }
    }
  }
}

TEST_CASE("request_writer: spans with equal resource and scope share one group") {
  // Two requests from the same service and library: one ResourceSpans with
  // one ScopeSpans, spans in arrival order.
  const pb::ExportTraceServiceRequest first = make_varied_request(6, {1, 1, 3});
  pb::ExportTraceServiceRequest second = first;
  for (auto& span : *second.mutable_resource_spans(0)->mutable_scope_spans(0)->mutable_spans()) {
    span.set_name(span.name() + "-second");
  }
  RequestWriter writer;
  writer.add_request(scan_or_fail(first));
  writer.add_request(scan_or_fail(second));
  CHECK(writer.span_count() == 6);
  const pb::ExportTraceServiceRequest written = parse_or_fail(finish_checked(writer));
  REQUIRE(written.resource_spans_size() == 1);
  REQUIRE(written.resource_spans(0).scope_spans_size() == 1);
  const auto& spans = written.resource_spans(0).scope_spans(0).spans();
  REQUIRE(spans.size() == 6);
  for (int k = 0; k < 3; ++k) {
    CHECK(MessageDifferencer::Equals(spans[k], first.resource_spans(0).scope_spans(0).spans(k)));
    CHECK(
        MessageDifferencer::Equals(spans[k + 3], second.resource_spans(0).scope_spans(0).spans(k)));
  }
  CHECK(MessageDifferencer::Equals(written.resource_spans(0).resource(),
                                   first.resource_spans(0).resource()));
  CHECK(written.resource_spans(0).scope_spans(0).scope().name() ==
        first.resource_spans(0).scope_spans(0).scope().name());
}

TEST_CASE("request_writer: groups and spans keep first-seen order when interleaved") {
  const std::string resource_a = "\x0a\x02\x10\x01";  // resource { dropped_attributes_count: 1 }
  const std::string resource_b = "\x0a\x02\x10\x02";
  const std::string scope_x = "\x0a\x03\x0a\x01x";  // scope { name: "x" }
  const std::string scope_y = "\x0a\x03\x0a\x01y";
  auto span = [](int n) {
    pb::Span s;
    s.set_trace_id(testing::make_id(16, n));
    s.set_span_id(testing::make_id(8, n));
    s.set_name("span" + std::to_string(n));
    return s.SerializeAsString();
  };
  RequestWriter writer;
  writer.add_span(resource_a, scope_x, span(0));
  writer.add_span(resource_b, scope_x, span(1));
  writer.add_span(resource_a, scope_y, span(2));
  writer.add_span(resource_a, scope_x, span(3));
  writer.add_span(resource_b, scope_x, span(4));
  const pb::ExportTraceServiceRequest written = parse_or_fail(finish_checked(writer));
  REQUIRE(written.resource_spans_size() == 2);
  const auto& a = written.resource_spans(0);
  const auto& b = written.resource_spans(1);
  CHECK(a.resource().dropped_attributes_count() == 1);
  CHECK(b.resource().dropped_attributes_count() == 2);
  REQUIRE(a.scope_spans_size() == 2);
  CHECK(a.scope_spans(0).scope().name() == "x");
  CHECK(a.scope_spans(1).scope().name() == "y");
  REQUIRE(a.scope_spans(0).spans_size() == 2);
  CHECK(a.scope_spans(0).spans(0).name() == "span0");
  CHECK(a.scope_spans(0).spans(1).name() == "span3");
  CHECK(a.scope_spans(1).spans(0).name() == "span2");
  REQUIRE(b.scope_spans_size() == 1);
  REQUIRE(b.scope_spans(0).spans_size() == 2);
  CHECK(b.scope_spans(0).spans(0).name() == "span1");
  CHECK(b.scope_spans(0).spans(1).name() == "span4");
}

TEST_CASE("request_writer: headers are compared by bytes, not by the caller's address") {
  // The same buffer, rewritten with other bytes of the same size, as happens
  // when a freed header's memory is reused by the next request.
  std::string resource = "\x0a\x02\x10\x01";
  std::string scope = "\x0a\x03\x0a\x01x";
  RequestWriter writer;
  writer.add_span(resource, scope, "");
  resource[3] = '\x02';
  writer.add_span(resource, scope, "");
  scope[4] = 'y';
  writer.add_span(resource, scope, "");
  const pb::ExportTraceServiceRequest written = parse_or_fail(finish_checked(writer));
  REQUIRE(written.resource_spans_size() == 2);
  CHECK(written.resource_spans(0).scope_spans_size() == 1);
  CHECK(written.resource_spans(1).scope_spans_size() == 2);
}

TEST_CASE("request_writer: encoded_size equals finish().size() at every step") {
  // Random header and span sizes, so group lengths cross the 1-, 2- and
  // 3-byte varint boundaries; the writer does not look inside span bytes.
  std::mt19937 random(7);
  std::vector<std::string> headers;
  for (std::size_t size : {0, 1, 100, 127, 128, 300, 16383, 16384}) {
    headers.push_back(std::string(size, static_cast<char>('a' + headers.size())));
  }
  struct Step {
    std::size_t resource, scope;
    std::string span;
  };
  std::vector<Step> steps;
  for (int i = 0; i < 120; ++i) {
    const std::size_t span_size = random() % 4 == 0 ? random() % 20000 : random() % 130;
    steps.push_back(Step{random() % 3, random() % headers.size(), std::string(span_size, 's')});
  }
  steps.push_back(Step{0, 0, std::string(2 << 20, 'b')});  // a 2 MiB span: 4-byte lengths
  for (std::size_t prefix = 0; prefix <= steps.size(); ++prefix) {
    RequestWriter writer;
    for (std::size_t i = 0; i < prefix; ++i) {
      writer.add_span(headers[steps[i].resource], headers[steps[i].scope], steps[i].span);
    }
    CHECK(writer.span_count() == prefix);
    CHECK(writer.empty() == (prefix == 0));
    const std::size_t expected = writer.encoded_size();
    REQUIRE(writer.finish().size() == expected);
  }
}

TEST_CASE("request_writer: a reused writer writes what a fresh one writes") {
  // Batches of varied sizes and group counts through one writer, whose span
  // buffers are recycled from batch to batch.
  std::mt19937 random(3);
  const std::vector<std::string> headers = {"", "r1", std::string(300, 'h'), "s1", "s2", "s3"};
  RequestWriter reused;
  for (int batch = 0; batch < 60; ++batch) {
    RequestWriter fresh;
    const int spans = static_cast<int>(random() % 40);
    for (int i = 0; i < spans; ++i) {
      const std::string& resource = headers[random() % 3];
      const std::string& scope = headers[random() % headers.size()];
      const std::string span(random() % 2 == 0 ? random() % 50 : random() % 5000,
                             static_cast<char>('a' + i % 26));
      reused.add_span(resource, scope, span);
      fresh.add_span(resource, scope, span);
    }
    CHECK(reused.encoded_size() == fresh.encoded_size());
    REQUIRE(finish_checked(reused) == fresh.finish());
  }
}

TEST_CASE("request_writer: finish() resets the writer") {
  const ScannedRequest scanned = scan_or_fail(make_varied_request(8, {2, 1, 2}));
  RequestWriter writer;
  CHECK(writer.empty());
  CHECK(writer.encoded_size() == 0);
  CHECK(writer.finish().empty());
  writer.add_request(scanned);
  CHECK_FALSE(writer.empty());
  const std::string first = finish_checked(writer);
  CHECK(writer.empty());
  CHECK(writer.span_count() == 0);
  CHECK(writer.encoded_size() == 0);
  CHECK(writer.finish().empty());
  // Reused: no group of the previous batch leaks into the next one.
  writer.add_span(scanned, scanned.spans.back());
  const pb::ExportTraceServiceRequest second = parse_or_fail(finish_checked(writer));
  REQUIRE(second.resource_spans_size() == 1);
  REQUIRE(second.resource_spans(0).scope_spans_size() == 1);
  CHECK(second.resource_spans(0).scope_spans(0).spans_size() == 1);
  writer.add_request(scanned);
  CHECK(finish_checked(writer) == first);
}

}  // namespace
}  // namespace spanrelay::otlp
