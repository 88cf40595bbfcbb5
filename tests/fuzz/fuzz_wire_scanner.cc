// Fuzz target: the protobuf wire scanner (daemon/otlp/wire_scanner.h), the
// request writer that turns its view back into bytes, and the binary -> JSON
// half of the OTLP/JSON transcoder. The input is the body of an
// ExportTraceServiceRequest as a client would send it.
//
// Properties, beyond "no crash, no sanitizer report":
// - a scan never hands out a range outside the payload;
// - request limits (ScanLimits) refuse a request naming the limit, or change
//   nothing; what limits make the scanner refuse as malformed, libprotobuf
//   refuses too;
// - where libprotobuf also parses the bytes, it agrees with the scanner on
//   every span (the differential check of DESIGN.md "The hot path");
// - RequestWriter output has the size encoded_size() promised, re-scans, and
//   holds the same spans under the same headers (grouping may reorder them);
//   a reused writer writes what a fresh one wrote;
// - protobuf_to_json output is read back by json_to_protobuf, and means what
//   libprotobuf read (unknown fields aside).
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/stubs/logging.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "daemon/otlp/json_transcoder.h"
#include "daemon/otlp/request_writer.h"
#include "daemon/otlp/wire_scanner.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/scan_checks.h"

namespace {

using spanrelay::Result;
using spanrelay::fuzz::differences;
using spanrelay::otlp::RequestWriter;
using spanrelay::otlp::ScanLimits;
using spanrelay::otlp::ScannedRequest;
namespace pb = spanrelay::fuzz::pb;

// libprotobuf logs every invalid UTF-8 string it refuses: expected here.
const bool kQuietProtobuf = [] {
  google::protobuf::SetLogHandler(
      +[](google::protobuf::LogLevel, const char*, int, const std::string&) {});
  return true;
}();

Result<ScannedRequest> scan(std::string bytes, ScanLimits limits = {},
                            std::string* limit_hit = nullptr) {
  return spanrelay::otlp::scan_export_request(std::make_shared<const std::string>(std::move(bytes)),
                                              limits, limit_hit);
}

// Tight request limits (receivers.otlp.max_*) either refuse the request, naming
// the limit, or change nothing about what is scanned.
void check_limits(const std::string& input, const Result<ScannedRequest>& unlimited) {
  const ScanLimits limits{.max_spans = 2,
                          .max_attributes_per_span = 3,
                          .max_attribute_value_length = 16,
                          .max_anyvalue_depth = 2};
  std::string limit_hit;
  const auto limited = scan(input, limits, &limit_hit);
  if (limited.ok()) {
    FUZZ_CHECK(limit_hit.empty(), "a limit reported hit on an accepted request");
    FUZZ_CHECK(limited.value().spans.size() <= limits.max_spans, "max_spans exceeded");
    FUZZ_CHECK(unlimited.ok() && unlimited.value().spans.size() == limited.value().spans.size(),
               "limits changed what was scanned");
  } else if (limit_hit.empty()) {
    // Under attribute limits the scanner reads inside attribute values, which
    // it otherwise carries through unread: it may find them malformed then,
    // but only where libprotobuf refuses the bytes too -- or where the scanner
    // is stricter than libprotobuf everywhere, by design: groups, tags above
    // 32 bits (which libprotobuf truncates), and a known field on the wrong
    // wire type (which libprotobuf keeps as an unknown field).
    const std::string& message = limited.error().message;
    const bool stricter_by_design =
        message.find("OTLP does not use groups") != std::string::npos ||
        message.find("field tag does not fit in 32 bits") != std::string::npos ||
        message.find(") has wire type ") != std::string::npos;
    pb::ExportTraceServiceRequest parsed;
    FUZZ_CHECK(!unlimited.ok() || stricter_by_design || !parsed.ParseFromString(input),
               "refused as malformed only under limits, libprotobuf parses it: " + message);
  } else {
    // wire_scanner.h: "the error message names it too" -- except the span
    // limit's, whose text predates the rule (and tests/unit pins it).
    const std::string& message = limited.error().message;
    FUZZ_CHECK(message.find(limit_hit) != std::string::npos ||
                   (limit_hit == "max_spans_per_request" &&
                    message.starts_with("too many spans in one request")),
               "the error does not name the limit " + limit_hit + ": " + message);
  }
}

// A span as the writer must carry it: its bytes under its two headers.
using PlacedSpan = std::tuple<std::string_view, std::string_view, std::string_view>;

std::vector<PlacedSpan> placed_spans(const ScannedRequest& request) {
  std::vector<PlacedSpan> spans;
  spans.reserve(request.spans.size());
  for (const auto& span : request.spans) {
    spans.emplace_back(request.resource_of(span).header_bytes, request.scope_of(span).header_bytes,
                       request.span_bytes(span));
  }
  std::sort(spans.begin(), spans.end());
  return spans;
}

void check_scan(const std::string& input, const ScannedRequest& scanned) {
  const std::string outside = spanrelay::fuzz::range_outside_payload(scanned);
  FUZZ_CHECK(outside.empty(), outside + " is outside the payload");

  pb::ExportTraceServiceRequest parsed;
  if (parsed.ParseFromString(input)) {
    const std::string difference = spanrelay::fuzz::scan_difference(scanned, parsed);
    FUZZ_CHECK(difference.empty(), "scanner and libprotobuf differ: " + difference);
  }
}

void check_writer_round_trip(const ScannedRequest& scanned) {
  RequestWriter writer;
  writer.add_request(scanned);
  FUZZ_CHECK(writer.span_count() == scanned.spans.size());
  const std::size_t promised = writer.encoded_size();
  std::string written = writer.finish();
  FUZZ_CHECK(written.size() == promised, "encoded_size() differs from finish().size()");
  FUZZ_CHECK(writer.empty() && writer.encoded_size() == 0, "finish() left the writer non-empty");

  writer.add_request(scanned);
  FUZZ_CHECK(writer.finish() == written, "a reused writer wrote other bytes");

  const auto rescanned = scan(written);
  FUZZ_CHECK(rescanned.ok(), "writer output does not re-scan: " +
                                 (rescanned.ok() ? std::string() : rescanned.error().message));
  FUZZ_CHECK(rescanned.value().spans.size() == scanned.spans.size(), "span count changed");
  FUZZ_CHECK(placed_spans(rescanned.value()) == placed_spans(scanned),
             "spans or their headers changed in the writer round trip");
}

void check_protobuf_to_json(const std::string& input) {
  const auto json = spanrelay::otlp::protobuf_to_json(input);
  if (!json.ok()) return;
  const auto back = spanrelay::otlp::json_to_protobuf(json.value());
  FUZZ_CHECK(back.ok(), "protobuf_to_json output refused by json_to_protobuf: " +
                            (back.ok() ? std::string() : back.error().message));
  pb::ExportTraceServiceRequest theirs;
  if (!theirs.ParseFromString(input)) return;  // deeper than libprotobuf's limit, bad UTF-8...
  theirs.DiscardUnknownFields();
  pb::ExportTraceServiceRequest ours;
  google::protobuf::io::CodedInputStream stream(
      reinterpret_cast<const std::uint8_t*>(back.value().data()),
      static_cast<int>(back.value().size()));
  stream.SetRecursionLimit(1000);
  FUZZ_CHECK(ours.ParseFromCodedStream(&stream) && stream.ConsumedEntireMessage(),
             "json_to_protobuf output does not parse");
  const std::string report = differences(theirs, ours);
  FUZZ_CHECK(report.empty(), "binary -> JSON -> binary changed the message: " + report);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);

  const auto scanned = scan(input);
  if (scanned.ok()) {
    check_scan(input, scanned.value());
    check_writer_round_trip(scanned.value());
  } else {
    FUZZ_CHECK(scanned.error().message.starts_with("malformed protobuf: "),
               "unexpected scanner error: " + scanned.error().message);
  }

  check_limits(input, scanned);

  check_protobuf_to_json(input);
  return 0;
}
