#include "tests/testsink/sink_options.h"

#include <charconv>
#include <cmath>
#include <string_view>

namespace spanrelay::testsink {
namespace {

template <class Int>
std::optional<Int> parse_int(std::string_view text) {
  Int value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace

Result<FaultStatus> parse_fault_status(const std::string& text) {
  using grpc::StatusCode;
  // HTTP numbers and their gRPC counterparts follow the usual gateway mapping
  // (the one grpc-gateway and the Collector use), so the retry class matches
  // on both sides: 502/503/504 are all "try again" = UNAVAILABLE.
  if (text == "503" || text == "UNAVAILABLE") return FaultStatus{503, StatusCode::UNAVAILABLE};
  if (text == "429" || text == "RESOURCE_EXHAUSTED") {
    return FaultStatus{429, StatusCode::RESOURCE_EXHAUSTED};
  }
  if (text == "502") return FaultStatus{502, StatusCode::UNAVAILABLE};
  if (text == "504") return FaultStatus{504, StatusCode::UNAVAILABLE};
  if (text == "DEADLINE_EXCEEDED") return FaultStatus{504, StatusCode::DEADLINE_EXCEEDED};
  if (text == "400" || text == "INVALID_ARGUMENT") {
    return FaultStatus{400, StatusCode::INVALID_ARGUMENT};
  }
  if (text == "500" || text == "INTERNAL") return FaultStatus{500, StatusCode::INTERNAL};
  return Error{"unsupported --status '" + text +
               "' (use 503|429|502|504|400|500|UNAVAILABLE|RESOURCE_EXHAUSTED|INVALID_ARGUMENT|"
               "DEADLINE_EXCEEDED|INTERNAL)"};
}

std::string grpc_code_name(grpc::StatusCode code) {
  using grpc::StatusCode;
  switch (code) {
    case StatusCode::OK:
      return "OK";
    case StatusCode::CANCELLED:
      return "CANCELLED";
    case StatusCode::UNKNOWN:
      return "UNKNOWN";
    case StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case StatusCode::ABORTED:
      return "ABORTED";
    case StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case StatusCode::INTERNAL:
      return "INTERNAL";
    case StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "CODE_" + std::to_string(static_cast<int>(code));
  }
}

std::string sink_usage() {
  return R"(usage: spanrelay-testsink [options]
  --grpc HOST:PORT|unix:/path  OTLP/gRPC listener (port 0 = ephemeral)
  --http HOST:PORT             OTLP/HTTP listener: POST /v1/traces (protobuf; gzip|zstd|deflate),
                               GET /stats
  --out FILE                   append one JSON line per accepted span
  --requests-out FILE          append one JSON line per request (refused ones too)
  --ready-file FILE            written atomically once every listener is bound
  --fail-first N               the first N well-formed requests get the fault status
  --status S                   503|429|502|504|400|500|UNAVAILABLE|RESOURCE_EXHAUSTED|
                               INVALID_ARGUMENT|DEADLINE_EXCEEDED|INTERNAL (default 503)
  --retry-after SECONDS        with a fault: Retry-After (rounded up) / RetryInfo (exact)
  --delay-ms N                 delay every answer by N ms
  --partial-reject N           successes carry partial_success{rejected_spans=N}
  --count-only                 count spans but do not write span lines
  --max-message-bytes N        largest accepted (decompressed) request, default 4194304
  --http-threads N             HTTP/timer threads, default 2
  --tls-cert FILE --tls-key FILE  serve TLS on both TCP listeners (PEM)
  --tls-client-ca FILE         with TLS: require client certificates signed by this CA (mTLS)
Requests' authorization headers are listed in --requests-out ("authorization").
)";
}

Result<SinkOptions> parse_sink_options(int argc, char** argv) {
  SinkOptions options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--count-only") {
      options.count_only = true;
      continue;
    }
    if (flag == "--help" || flag == "-h") return Error{sink_usage()};
    if (i + 1 >= argc) return Error{"missing value for " + std::string(flag)};
    const std::string value = argv[++i];
    const auto bad = [&] { return Error{"bad value for " + std::string(flag) + ": " + value}; };
    if (flag == "--grpc") {
      options.grpc_address = value;
    } else if (flag == "--http") {
      options.http_address = value;
    } else if (flag == "--out") {
      options.spans_out = value;
    } else if (flag == "--requests-out") {
      options.requests_out = value;
    } else if (flag == "--ready-file") {
      options.ready_file = value;
    } else if (flag == "--fail-first") {
      const auto n = parse_int<std::uint64_t>(value);
      if (!n) return bad();
      options.fail_first = *n;
    } else if (flag == "--status") {
      auto status = parse_fault_status(value);
      if (!status) return status.error();
      options.fault = status.value();
    } else if (flag == "--retry-after") {
      char* end = nullptr;
      const double seconds = std::strtod(value.c_str(), &end);
      if (end == value.c_str() || *end != '\0' || !(seconds >= 0) || seconds > 1e6) return bad();
      options.retry_after = std::chrono::nanoseconds(std::llround(seconds * 1e9));
    } else if (flag == "--delay-ms") {
      const auto n = parse_int<std::int64_t>(value);
      if (!n || *n < 0) return bad();
      options.delay = std::chrono::milliseconds(*n);
    } else if (flag == "--partial-reject") {
      const auto n = parse_int<std::int64_t>(value);
      if (!n || *n < 0) return bad();
      options.partial_reject = *n;
    } else if (flag == "--max-message-bytes") {
      const auto n = parse_int<std::size_t>(value);
      if (!n || *n == 0) return bad();
      options.max_message_bytes = *n;
    } else if (flag == "--http-threads") {
      const auto n = parse_int<int>(value);
      if (!n || *n < 1 || *n > 64) return bad();
      options.http_threads = *n;
    } else if (flag == "--tls-cert") {
      options.tls_cert = value;
    } else if (flag == "--tls-key") {
      options.tls_key = value;
    } else if (flag == "--tls-client-ca") {
      options.tls_client_ca = value;
    } else {
      return Error{"unknown option " + std::string(flag) + "\n" + sink_usage()};
    }
  }
  if (options.tls_cert.has_value() != options.tls_key.has_value() ||
      (options.tls_client_ca && !options.tls_cert)) {
    return Error{"--tls-cert and --tls-key go together; --tls-client-ca needs them"};
  }
  if (!options.grpc_address && !options.http_address) {
    return Error{"at least one of --grpc or --http is required\n" + sink_usage()};
  }
  return options;
}

}  // namespace spanrelay::testsink
