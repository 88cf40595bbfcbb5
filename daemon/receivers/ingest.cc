#include "daemon/receivers/ingest.h"

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
}  // namespace

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
  for (const char* reason : {"decode_error", "too_large", "memory_limit", "shutting_down",
                             "unsupported_media_type", "bad_compression"}) {
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
  auto scanned = otlp::scan_export_request(std::move(payload),
                                           otlp::ScanLimits{limits_.max_spans_per_request});
  if (!scanned.ok()) {
    count_refused_request("decode_error");
    outcome.kind = IngestOutcome::Kind::kBadRequest;
    outcome.message = scanned.error().message;
    return outcome;
  }
  auto& request = scanned.value();
  const std::size_t spans = request.spans.size();
  outcome.spans = spans;
  if (spans == 0) return outcome;  // a valid, empty export: nothing to admit

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
  return *accepted_[transport == "grpc" ? 0 : 1][encoding == BodyEncoding::kJson ? 1 : 0];
}

}  // namespace spanrelay::receivers
