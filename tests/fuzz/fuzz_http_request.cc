// Fuzz target: the OTLP/HTTP request path without sockets. The input is the
// byte stream a client sends on one connection. It goes through a Beast
// request parser set up as daemon/receivers/http_session.h sets up its own
// (a fresh parser per message, the body and header limits of the receiver's
// HttpServerOptions, eager body parsing), then each complete request goes to
// OtlpHttpReceiver::handle() and each parse error to transport_error(), as the
// session does. Keep-alive requests follow each other on the same stream.
//
// The receiver runs on a real Ingest whose consumer checks that every range
// the scanner handed out is in the payload, then admits the request (or, on a
// condition of the input, refuses it as over the memory budget).
// max_request_size is 16KiB, a legal daemon setting (at least 1KiB), so that
// the 413 paths (on the wire and after decompression) are in reach of small
// inputs.
//
// Properties, beyond "no crash, no sanitizer report, no exception":
// - answers are one of the statuses otlp_http_receiver.h lists;
// - OTLP errors are a google.rpc.Status in the request's encoding: a
//   protobuf one parses, a JSON one is valid JSON; 429 carries Retry-After;
// - a 200 is an empty ExportTraceServiceResponse ("" or "{}").
#include <google/protobuf/stubs/logging.h>
#include <simdjson.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/config/config.h"
#include "daemon/receivers/ingest.h"
#include "daemon/receivers/otlp_http_receiver.h"
#include "daemon/receivers/span_consumer.h"
#include "daemon/telemetry/metrics.h"
#include "spanrelay/rpc/status.pb.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/scan_checks.h"

namespace {

namespace http = boost::beast::http;
using spanrelay::receivers::Admission;
using spanrelay::receivers::HttpResponse;
using spanrelay::receivers::Ingest;
using spanrelay::receivers::IngestLimits;
using spanrelay::receivers::OtlpHttpReceiver;

constexpr std::size_t kMaxRequestSize = 16u << 10;
// More pipelined requests than this in one input add nothing new.
constexpr int kMaxMessagesPerConnection = 16;

// Admits every request except those whose first span id starts with 0xEE,
// which it refuses as over the memory budget: so that the 429 + RetryInfo
// answer is fuzzed too (a condition on the input keeps runs reproducible).
class MostlyAccepting : public spanrelay::receivers::SpanConsumer {
 public:
  Admission consume(spanrelay::otlp::ScannedRequest&& request) override {
    const std::string outside = spanrelay::fuzz::range_outside_payload(request);
    FUZZ_CHECK(outside.empty(), "ingest handed over a range outside the payload: " + outside);
    FUZZ_CHECK(!request.spans.empty(), "ingest handed over an empty request");
    if (request.spans.front().span_id[0] == 0xEE) {
      return Admission{false, "memory_limit", std::chrono::seconds(3)};
    }
    return Admission{};
  }
};

// One receiver for the whole run, set up as daemon/relay.cc sets up its own,
// with the default receivers.otlp limits.
struct Daemon {
  Daemon() {
    receiver.set_connection_limits(limits, nullptr);
    options = receiver.server_options("fuzz");
  }

  const spanrelay::config::ReceiverLimitsConfig limits;
  MostlyAccepting consumer;
  spanrelay::telemetry::Registry metrics;
  Ingest ingest{consumer, metrics,
                IngestLimits{.max_request_size = kMaxRequestSize,
                             .max_spans_per_request = limits.max_spans_per_request,
                             .max_decompression_ratio = limits.max_decompression_ratio,
                             .max_attributes_per_span = limits.max_attributes_per_span,
                             .max_attribute_value_length = limits.max_attribute_value_length,
                             .max_anyvalue_depth = limits.max_anyvalue_depth}};
  OtlpHttpReceiver receiver{ingest, kMaxRequestSize};
  spanrelay::receivers::HttpServerOptions options;
};

const bool kQuietProtobuf = [] {
  google::protobuf::SetLogHandler(
      +[](google::protobuf::LogLevel, const char*, int, const std::string&) {});
  return true;
}();

std::string_view text_of(boost::beast::string_view text) { return {text.data(), text.size()}; }

void check_response(const HttpResponse& response) {
  const auto status = response.result();
  const std::string_view content_type = text_of(response[http::field::content_type]);
  const std::string& body = response.body();
  switch (status) {
    case http::status::ok:
      FUZZ_CHECK(body.empty() || body == "{}", "a 200 with a body: " + body);
      return;
    case http::status::not_found:
    case http::status::method_not_allowed:
    case http::status::unsupported_media_type:
      FUZZ_CHECK(content_type.starts_with("text/plain"), "a plain-text error that is not text");
      return;
    case http::status::bad_request:
    case http::status::payload_too_large:
    case http::status::too_many_requests:
    case http::status::request_header_fields_too_large:
      break;
    default:
      FUZZ_CHECK(false, "unexpected status " + std::to_string(static_cast<unsigned>(status)));
  }
  if (status == http::status::too_many_requests) {
    FUZZ_CHECK(!response[http::field::retry_after].empty(), "a 429 without Retry-After");
  }
  if (content_type == "application/json") {
    simdjson::dom::parser parser;
    FUZZ_CHECK(parser.parse(body).error() == simdjson::SUCCESS, "an invalid JSON Status: " + body);
  } else if (content_type == "application/x-protobuf" || content_type == "application/protobuf") {
    spanrelay::rpc::Status rpc_status;
    FUZZ_CHECK(rpc_status.ParseFromString(body), "an invalid protobuf Status");
    FUZZ_CHECK(rpc_status.code() == 3 || rpc_status.code() == 8,
               "Status code " + std::to_string(rpc_status.code()));
  } else {
    // Errors the server answers before it knows the encoding (malformed HTTP,
    // or not /v1/traces) are plain text.
    FUZZ_CHECK(content_type.starts_with("text/plain"),
               "an error in no known encoding: " + std::string(content_type));
  }
}

// What http_session.h answers for a parse error (on_read_error), through the
// receiver's error responder; nullopt when the session closes silently.
std::optional<http::status> transport_status(const boost::beast::error_code& ec) {
  if (ec == http::error::body_limit) return http::status::payload_too_large;
  if (ec == http::error::header_limit) return http::status::request_header_fields_too_large;
  if (ec == http::error::end_of_stream || ec == http::error::partial_message) return std::nullopt;
  if (ec.category() == make_error_code(http::error::bad_target).category()) {
    return http::status::bad_request;
  }
  return std::nullopt;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Daemon d;
  std::string_view stream(reinterpret_cast<const char*>(data), size);
  for (int message = 0; message < kMaxMessagesPerConnection && !stream.empty(); ++message) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(d.options.body_limit);
    parser.header_limit(d.options.header_limit);
    parser.eager(true);
    boost::beast::error_code ec;
    while (!parser.is_done() && !stream.empty()) {
      const std::size_t used = parser.put(boost::asio::buffer(stream.data(), stream.size()), ec);
      stream.remove_prefix(used);
      if (ec == http::error::need_more) {
        ec = {};
        if (used == 0) break;  // the rest is an incomplete message
        continue;
      }
      if (ec) break;
    }
    if (!ec && !parser.is_done()) {
      // The client closed mid-message: the session closes without answering.
      parser.put_eof(ec);
      if (!parser.is_done()) return 0;
    }
    if (ec) {
      if (const auto status = transport_status(ec)) {
        HttpResponse response = d.receiver.transport_error(parser.get(), *status, ec.message());
        check_response(response);
        response.prepare_payload();
      }
      return 0;  // after a parse error the session always closes
    }
    const bool keep_alive = parser.get().keep_alive();
    HttpResponse response = d.receiver.handle(parser.release());
    check_response(response);
    response.prepare_payload();
    if (!keep_alive) return 0;
  }
  return 0;
}
