// Fuzz target: the OTLP/JSON decoder (daemon/otlp/json_transcoder.h), fed
// what an SDK would POST as application/json.
//
// Properties, beyond "no crash, no sanitizer report": when json_to_protobuf
// accepts the text,
// - libprotobuf parses its output (deep nesting allowed: the transcoder's own
//   depth limit is the one that counts);
// - protobuf -> JSON -> protobuf gives the same bytes back (both directions
//   walk one schema and write fields in field-number order);
// - the wire scanner accepts the round-tripped bytes exactly when it accepts
//   the first ones, with the same span count.
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/stubs/logging.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "daemon/otlp/json_transcoder.h"
#include "daemon/otlp/wire_scanner.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;

const bool kQuietProtobuf = [] {
  google::protobuf::SetLogHandler(
      +[](google::protobuf::LogLevel, const char*, int, const std::string&) {});
  return true;
}();

bool parses_with_libprotobuf(const std::string& binary) {
  ExportTraceServiceRequest request;
  google::protobuf::io::CodedInputStream stream(
      reinterpret_cast<const std::uint8_t*>(binary.data()), static_cast<int>(binary.size()));
  stream.SetRecursionLimit(1000);
  return request.ParseFromCodedStream(&stream) && stream.ConsumedEntireMessage();
}

// The span count the scanner finds, or -1 when it refuses the bytes.
long scanned_spans(const std::string& binary) {
  const auto scanned =
      spanrelay::otlp::scan_export_request(std::make_shared<const std::string>(binary));
  return scanned.ok() ? static_cast<long>(scanned.value().spans.size()) : -1;
}

std::string message_of(const spanrelay::Result<std::string>& result) {
  return result.ok() ? std::string() : result.error().message;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  const auto binary = spanrelay::otlp::json_to_protobuf(json);
  if (!binary.ok()) {
    FUZZ_CHECK(!binary.error().message.empty(), "an error without a message");
    return 0;
  }
  FUZZ_CHECK(parses_with_libprotobuf(binary.value()), "json_to_protobuf output does not parse");

  const auto json_again = spanrelay::otlp::protobuf_to_json(binary.value());
  FUZZ_CHECK(json_again.ok(),
             "json_to_protobuf output refused by protobuf_to_json: " + message_of(json_again));
  const auto binary_again = spanrelay::otlp::json_to_protobuf(json_again.value());
  FUZZ_CHECK(binary_again.ok(),
             "protobuf_to_json output refused by json_to_protobuf: " + message_of(binary_again));
  FUZZ_CHECK(scanned_spans(binary_again.value()) == scanned_spans(binary.value()),
             "the round trip changed what the wire scanner sees");
  FUZZ_CHECK(binary_again.value() == binary.value(), "protobuf -> JSON -> protobuf changed bytes");
  return 0;
}
