#pragma once
// The one decode path every receiver shares: (decompressed) body bytes ->
// protobuf bytes (JSON is transcoded once) -> wire scan -> admission, with the
// receiver metrics counted in one place so gRPC and HTTP cannot drift apart.
#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "daemon/receivers/span_consumer.h"
#include "daemon/telemetry/metrics.h"

namespace spanrelay::receivers {

enum class BodyEncoding { kProtobuf, kJson };

struct IngestLimits {
  std::size_t max_request_size = 4u << 20;  // after decompression
  std::uint32_t max_spans_per_request = 0;  // 0 = unlimited
};

struct IngestOutcome {
  enum class Kind {
    kAccepted,    // 200 / OK
    kBadRequest,  // 400 / INVALID_ARGUMENT: can never be accepted
    kTooLarge,    // 413 / RESOURCE_EXHAUSTED (no RetryInfo: retrying will not help)
    kRefused,     // 429 + Retry-After / RESOURCE_EXHAUSTED + RetryInfo: try later
  };
  Kind kind = Kind::kAccepted;
  std::string message;
  std::chrono::seconds retry_after{0};
  std::size_t spans = 0;
};

class Ingest {
 public:
  Ingest(SpanConsumer& consumer, telemetry::Registry& metrics, IngestLimits limits);

  // `transport` is a fixed label value ("grpc" or "http"). The time from the
  // call to the answer is observed in spanrelay_ingest_ack_seconds{transport}.
  IngestOutcome ingest(std::string&& body, BodyEncoding encoding, std::string_view transport);

  // Counts a request refused before its body could be decoded (too large on
  // the wire, bad compression, unsupported media type...).
  void count_refused_request(std::string_view reason);

  const IngestLimits& limits() const { return limits_; }

 private:
  telemetry::Counter& accepted_counter(std::string_view transport, BodyEncoding encoding);

  SpanConsumer& consumer_;
  telemetry::Registry& metrics_;
  IngestLimits limits_;
  // Resolved once: the hot path never searches the registry.
  telemetry::Counter* accepted_[2][2] = {};    // [grpc|http][protobuf|json]
  telemetry::Histogram* ack_seconds_[2] = {};  // [grpc|http]
};

}  // namespace spanrelay::receivers
