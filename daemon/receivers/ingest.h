#pragma once
// The one decode path every receiver shares: (decompressed) body bytes ->
// protobuf bytes (JSON is transcoded once) -> wire scan -> admission, with the
// receiver metrics counted in one place so gRPC and HTTP cannot drift apart.
#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "daemon/processing/span_processor.h"
#include "daemon/receivers/span_consumer.h"
#include "daemon/telemetry/metrics.h"

namespace spanrelay::receivers {

enum class BodyEncoding { kProtobuf, kJson };

struct IngestLimits {
  std::size_t max_request_size = 4u << 20;    // after decompression
  std::uint32_t max_spans_per_request = 0;    // 0 = unlimited (and below: 0 = unlimited)
  std::uint32_t max_decompression_ratio = 0;  // inflated bytes per compressed byte
  std::uint32_t max_attributes_per_span = 0;
  std::uint64_t max_attribute_value_length = 0;
  std::uint32_t max_anyvalue_depth = 0;

  // How many bytes a compressed body of `compressed_size` may inflate to:
  // max_request_size, or less under the decompression ratio.
  std::size_t inflate_cap(std::size_t compressed_size) const;
  // True when a body refused at `cap` bytes was refused for its ratio rather
  // than for max_request_size.
  bool cap_is_ratio(std::size_t cap) const { return cap < max_request_size; }
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

  // Redaction and resource enrichment, applied after decode and before the
  // consumer (sampling, batching). Null (the default): no work at all. Set it
  // before the receivers start; it is not swapped while they run.
  void set_processor(std::unique_ptr<processing::SpanProcessor> processor) {
    processor_ = std::move(processor);
  }

 private:
  telemetry::Counter& accepted_counter(std::string_view transport, BodyEncoding encoding);

  SpanConsumer& consumer_;
  telemetry::Registry& metrics_;
  IngestLimits limits_;
  std::unique_ptr<processing::SpanProcessor> processor_;
  // Resolved once: the hot path never searches the registry.
  telemetry::Counter* accepted_[2][2] = {};    // [grpc|http][protobuf|json]
  telemetry::Histogram* ack_seconds_[2] = {};  // [grpc|http]
};

}  // namespace spanrelay::receivers
