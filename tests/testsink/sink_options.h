#pragma once
// Command line of spanrelay-testsink: where to listen, where to record, and
// which faults to inject.
#include <grpcpp/support/status.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "daemon/common/result.h"

namespace spanrelay::testsink {

// One fault answer, expressed for both transports so that a test can use the
// same flag whichever protocol the daemon exports with.
struct FaultStatus {
  int http_status = 503;
  grpc::StatusCode grpc_code = grpc::StatusCode::UNAVAILABLE;
};

// Accepts an HTTP number (503, 429, 502, 504, 400, 500) or a gRPC code name
// (UNAVAILABLE, RESOURCE_EXHAUSTED, INVALID_ARGUMENT, DEADLINE_EXCEEDED).
Result<FaultStatus> parse_fault_status(const std::string& text);

std::string grpc_code_name(grpc::StatusCode code);

struct SinkOptions {
  std::optional<std::string> grpc_address;  // "HOST:PORT" or "unix:/path"
  std::optional<std::string> http_address;  // "HOST:PORT"
  std::optional<std::string> spans_out;
  std::optional<std::string> requests_out;
  std::optional<std::string> ready_file;
  std::uint64_t fail_first = 0;
  FaultStatus fault;
  std::optional<std::chrono::nanoseconds> retry_after;
  std::chrono::milliseconds delay{0};
  std::int64_t partial_reject = 0;
  bool count_only = false;
  std::size_t max_message_bytes = 4u << 20;  // the common gRPC server default
  int http_threads = 2;
  // TLS on both listeners (TCP only): PEM files. tls_client_ca set = clients
  // must present a certificate signed by it (mTLS).
  std::optional<std::string> tls_cert;
  std::optional<std::string> tls_key;
  std::optional<std::string> tls_client_ca;
};

std::string sink_usage();

Result<SinkOptions> parse_sink_options(int argc, char** argv);

}  // namespace spanrelay::testsink
