#pragma once
// The last stage of the pipeline: one attempt to hand one batch to the
// upstream. Retry, queueing and metrics live in daemon/delivery/; an exporter
// only makes the attempt and classifies the outcome by the OTLP rules
// (/work/shared/otlp-wire.md), so the retry policy is decided in one place.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/common/result.h"
#include "daemon/config/config.h"

namespace spanrelay::exporters {

enum class ExportDisposition {
  kSuccess,    // acknowledged (possibly with some spans rejected: still not retried)
  kRetryable,  // try again later, honouring retry_after when set
  kPermanent,  // the upstream will never accept this request: drop it with a reason
};

struct ExportResult {
  ExportDisposition disposition = ExportDisposition::kSuccess;
  // partial_success.rejected_spans of a successful answer: counted as dropped,
  // never retried (OTLP: "the client MUST NOT retry the request").
  std::int64_t rejected_spans = 0;
  // From google.rpc.RetryInfo (gRPC) or Retry-After (HTTP).
  std::optional<std::chrono::milliseconds> retry_after;
  // Low-cardinality label: "200", "429", "UNAVAILABLE", "connection_error", ...
  std::string code;
  std::string message;  // human-readable, for logs
};

class Exporter {
 public:
  virtual ~Exporter() = default;

  // One attempt to deliver one uncompressed ExportTraceServiceRequest.
  // Blocking; thread-safe (called concurrently from up to max_in_flight
  // delivery threads); returns within config.timeout plus a small slack.
  // `span_count` is informational (logs); the request is not inspected.
  virtual ExportResult export_request(std::string_view request, std::uint32_t span_count) = 0;

  // For logs, e.g. "otlp_grpc collector:4317 gzip".
  virtual std::string describe() const = 0;
};

// Builds the exporter the configuration asks for. Errors name the setting
// that cannot be honoured (bad endpoint, unsupported compression, bad header).
Result<std::unique_ptr<Exporter>> make_exporter(const config::ExporterConfig& config);

}  // namespace spanrelay::exporters
