#include "daemon/receivers/ingest.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "daemon/otlp/json_transcoder.h"
#include "daemon/otlp/wire_scanner.h"

namespace spanrelay::receivers {

namespace {
constexpr const char* kAcceptedSpans = "spanrelay_receiver_accepted_spans_total";
constexpr const char* kAcceptedHelp =
    "Spans accepted from applications and handed to the pipeline.";
constexpr const char* kRefusedSpans = "spanrelay_receiver_refused_spans_total";
constexpr const char* kRefusedSpansHelp =
    "Spans refused at the receiver (never accepted), by reason.";
constexpr const char* kRefusedRequests = "spanrelay_receiver_refused_requests_total";
constexpr const char* kRefusedRequestsHelp =
    "Requests refused at the receiver, by reason (decode errors carry no span count).";
constexpr const char* kAckSeconds = "spanrelay_ingest_ack_seconds";
constexpr const char* kAckSecondsHelp =
    "Time from a request body entering the shared ingest path to its answer (accepted, refused "
    "or invalid): decode and admission only; the receiver's own network I/O and decompression "
    "are not included.";
// Admission is meant to answer in microseconds; the top buckets are there to
// show a stall (a lock held by a slow consumer), not a normal case.
const std::vector<double> kAckBuckets = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
                                         0.001,   0.0025,   0.005,   0.01,   0.025,   0.05,
                                         0.1,     0.25,     0.5,     1.0};

// The reason label of a request refused for a limit (receivers.otlp.<key>).
const char* refusal_reason_of(std::string_view limit_key) {
  if (limit_key == "max_spans_per_request") return "too_many_spans";
  if (limit_key == "max_attributes_per_span") return "too_many_attributes";
  if (limit_key == "max_attribute_value_length") return "attribute_value_too_long";
  if (limit_key == "max_anyvalue_depth") return "anyvalue_too_deep";
  return "decode_error";
}

int transport_index(std::string_view transport) { return transport == "grpc" ? 0 : 1; }

// Observes the time from construction to destruction: every return of
// ingest() is an answer.
class AckTimer {
 public:
  explicit AckTimer(telemetry::Histogram& histogram)
      : histogram_(histogram), start_(std::chrono::steady_clock::now()) {}
  ~AckTimer() {
    histogram_.observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }
  AckTimer(const AckTimer&) = delete;
  AckTimer& operator=(const AckTimer&) = delete;

 private:
  telemetry::Histogram& histogram_;
  std::chrono::steady_clock::time_point start_;
};
}  // namespace

std::size_t IngestLimits::inflate_cap(std::size_t compressed_size) const {
  if (max_decompression_ratio == 0) return max_request_size;
  // Saturating: a huge body times the ratio must not wrap around.
  const std::size_t by_ratio = compressed_size > max_request_size / max_decompression_ratio
                                   ? max_request_size
                                   : compressed_size * max_decompression_ratio;
  return std::min(max_request_size, by_ratio);
}

Ingest::Ingest(SpanConsumer& consumer, telemetry::Registry& metrics, IngestLimits limits)
    : consumer_(consumer), metrics_(metrics), limits_(limits) {
  // Declare the fixed label sets up front so dashboards see zeros, not gaps.
  const char* transports[] = {"grpc", "http"};
  const char* encodings[] = {"protobuf", "json"};
  for (int t = 0; t < 2; ++t) {
    for (int e = 0; e < 2; ++e) {
      accepted_[t][e] =
          &metrics_.counter(kAcceptedSpans, kAcceptedHelp,
                            {{"transport", transports[t]}, {"encoding", encodings[e]}});
    }
  }
  for (int t = 0; t < 2; ++t) {
    ack_seconds_[t] = &metrics_.histogram(kAckSeconds, kAckSecondsHelp, kAckBuckets,
                                          {{"transport", transports[t]}});
  }
  for (const char* reason :
       {"decode_error", "too_large", "memory_limit", "shutting_down", "unsupported_media_type",
        "bad_compression", "decompression_ratio", "too_many_spans", "too_many_attributes",
        "attribute_value_too_long", "anyvalue_too_deep"}) {
    metrics_.counter(kRefusedRequests, kRefusedRequestsHelp, {{"reason", reason}});
  }
  for (const char* reason : {"memory_limit", "shutting_down"}) {
    metrics_.counter(kRefusedSpans, kRefusedSpansHelp, {{"reason", reason}});
  }
}

void Ingest::count_refused_request(std::string_view reason) {
  metrics_.counter(kRefusedRequests, kRefusedRequestsHelp, {{"reason", std::string(reason)}}).add();
}

IngestOutcome Ingest::ingest(std::string&& body, BodyEncoding encoding,
                             std::string_view transport) {
  const AckTimer ack_timer(*ack_seconds_[transport_index(transport)]);
  IngestOutcome outcome;
  if (body.size() > limits_.max_request_size) {
    count_refused_request("too_large");
    outcome.kind = IngestOutcome::Kind::kTooLarge;
    outcome.message = "request of " + std::to_string(body.size()) +
                      " bytes exceeds max_request_size of " +
                      std::to_string(limits_.max_request_size) + " bytes";
    return outcome;
  }
  std::shared_ptr<const std::string> payload;
  if (encoding == BodyEncoding::kJson) {
    auto binary = otlp::json_to_protobuf(body);
    if (!binary.ok()) {
      count_refused_request("decode_error");
      outcome.kind = IngestOutcome::Kind::kBadRequest;
      outcome.message = "invalid OTLP/JSON: " + binary.error().message;
      return outcome;
    }
    payload = std::make_shared<const std::string>(std::move(binary).value());
  } else {
    payload = std::make_shared<const std::string>(std::move(body));
  }
  std::string limit_hit;
  auto scanned = otlp::scan_export_request(
      std::move(payload),
      otlp::ScanLimits{limits_.max_spans_per_request, limits_.max_attributes_per_span,
                       limits_.max_attribute_value_length, limits_.max_anyvalue_depth},
      &limit_hit);
  if (!scanned.ok()) {
    count_refused_request(limit_hit.empty() ? "decode_error" : refusal_reason_of(limit_hit));
    outcome.kind = IngestOutcome::Kind::kBadRequest;
    outcome.message = scanned.error().message;
    // The answer names the limit's key, so the sender knows what to change.
    if (!limit_hit.empty() && outcome.message.find(limit_hit) == std::string::npos) {
      outcome.message += " (receivers.otlp." + limit_hit + ")";
    }
    return outcome;
  }
  auto& request = scanned.value();
  const std::size_t spans = request.spans.size();
  outcome.spans = spans;
  if (spans == 0) return outcome;  // a valid, empty export: nothing to admit
  if (processor_) {
    if (auto processed = processor_->process(request); !processed.ok()) {
      count_refused_request("too_large");
      outcome.kind = IngestOutcome::Kind::kTooLarge;
      outcome.message = processed.error().message;
      return outcome;
    }
  }

  const Admission admission = consumer_.consume(std::move(request));
  if (!admission.accepted) {
    count_refused_request(admission.reason);
    metrics_.counter(kRefusedSpans, kRefusedSpansHelp, {{"reason", admission.reason}}).add(spans);
    outcome.kind = IngestOutcome::Kind::kRefused;
    outcome.retry_after = admission.retry_after;
    outcome.message = "spanrelay is over its memory budget (" + admission.reason + "); retry later";
    return outcome;
  }
  accepted_counter(transport, encoding).add(spans);
  return outcome;
}

telemetry::Counter& Ingest::accepted_counter(std::string_view transport, BodyEncoding encoding) {
  return *accepted_[transport_index(transport)][encoding == BodyEncoding::kJson ? 1 : 0];
}

}  // namespace spanrelay::receivers
