#include "daemon/exporters/grpc_exporter.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/channel_arguments.h>
#include <grpcpp/support/slice.h>

#include <algorithm>
#include <cctype>
#include <future>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "spanrelay/rpc/status.pb.h"

namespace spanrelay::exporters {

namespace {

constexpr char kExportMethod[] = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

// gRPC guarantees completion once the deadline passes; the extra wait only
// guards against a stuck transport, after which the call is cancelled.
constexpr std::chrono::milliseconds kCompletionSlack{500};

// gRPC metadata keys: lowercase letters, digits, '-', '_' and '.' (gRPC over
// HTTP/2 spec, "Custom-Metadata"); "grpc-" is reserved for the library.
Status validate_metadata(const std::string& key, const std::string& value) {
  if (key.empty()) return Error{"exporter.headers: empty header name"};
  for (const char c : key) {
    const bool allowed =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!allowed) {
      return Error{"exporter.headers: '" + key +
                   "' is not a valid gRPC metadata key (letters, digits, '-', '_', '.')"};
    }
  }
  if (key.rfind("grpc-", 0) == 0) {
    return Error{"exporter.headers: '" + key + "' uses the reserved 'grpc-' prefix"};
  }
  const bool binary = key.size() > 4 && key.compare(key.size() - 4, 4, "-bin") == 0;
  if (!binary) {
    for (const char c : value) {
      if (c < 0x20 || c > 0x7e) {
        return Error{"exporter.headers: the value of '" + key +
                     "' must be printable ASCII (use a '-bin' key for binary values)"};
      }
    }
  }
  return Ok{};
}

// The retry_delay of the first google.rpc.RetryInfo among the status details
// (the details travel serialized in the grpc-status-details-bin trailer).
std::optional<std::chrono::milliseconds> retry_info_delay(const std::string& error_details) {
  if (error_details.empty()) return std::nullopt;
  rpc::Status status;
  if (!status.ParseFromString(error_details)) return std::nullopt;
  constexpr std::string_view kRetryInfo = "google.rpc.RetryInfo";
  for (const auto& detail : status.details()) {
    const std::string_view type_url = detail.type_url();
    if (type_url.size() < kRetryInfo.size() ||
        type_url.substr(type_url.size() - kRetryInfo.size()) != kRetryInfo) {
      continue;
    }
    rpc::RetryInfo info;
    if (!info.ParseFromString(detail.value())) continue;
    // google.protobuf.Duration spans +-315,576,000,000 s: in milliseconds
    // that still fits an int64. A negative delay means "no wait".
    const std::int64_t seconds =
        std::clamp<std::int64_t>(info.retry_delay().seconds(), 0, 315'576'000'000);
    const std::int64_t nanos = std::max<std::int32_t>(info.retry_delay().nanos(), 0);
    return std::chrono::milliseconds(seconds * 1000 + nanos / 1'000'000);
  }
  return std::nullopt;
}

bool retryable_code(grpc::StatusCode code) {
  // OTLP/gRPC "Failures": the codes a client may retry.
  switch (code) {
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DATA_LOSS:
      return true;
    default:
      return false;
  }
}

std::string flatten(const grpc::ByteBuffer& buffer) {
  std::string out;
  if (!buffer.Valid()) return out;
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return out;
  out.reserve(buffer.Length());
  for (const auto& slice : slices) {
    out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return out;
}

}  // namespace

std::string_view grpc_status_code_name(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";  // DO_NOT_USE and out-of-range values
  }
}

ExportResult classify_grpc_outcome(const grpc::Status& status, std::string_view response) {
  ExportResult result;
  result.code = std::string(grpc_status_code_name(status.error_code()));
  if (status.ok()) {
    result.disposition = ExportDisposition::kSuccess;
    opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse answer;
    if (!answer.ParseFromArray(response.data(), static_cast<int>(response.size()))) {
      // The upstream acknowledged the data; an answer we cannot read does not
      // make it undelivered.
      result.message = "acknowledged with an unparseable ExportTraceServiceResponse";
      return result;
    }
    if (answer.has_partial_success()) {
      result.rejected_spans = answer.partial_success().rejected_spans();
      result.message = answer.partial_success().error_message();
    }
    return result;
  }
  result.message = status.error_message();
  result.retry_after = retry_info_delay(status.error_details());
  if (retryable_code(status.error_code())) {
    result.disposition = ExportDisposition::kRetryable;
  } else if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
    // OTLP: RESOURCE_EXHAUSTED is retryable only when the server says when
    // (RetryInfo); otherwise it is a hard limit such as the message size.
    result.disposition =
        result.retry_after ? ExportDisposition::kRetryable : ExportDisposition::kPermanent;
  } else {
    result.disposition = ExportDisposition::kPermanent;
  }
  return result;
}

Result<std::unique_ptr<GrpcExporter>> GrpcExporter::create(const config::ExporterConfig& config) {
  if (config.endpoint.empty()) return Error{"exporter.endpoint: required for otlp_grpc"};
  if (config.endpoint.rfind("https://", 0) == 0) {
    return Error{"exporter.endpoint: TLS (https://) is not supported by the otlp_grpc exporter"};
  }
  if (config.compression == config::Compression::kZstd) {
    return Error{
        "exporter.compression: zstd is not available over OTLP/gRPC in gRPC C++ (use gzip or "
        "none, or otlp_http for zstd)"};
  }
  std::vector<std::pair<std::string, std::string>> metadata;
  for (const auto& [name, value] : config.headers) {
    std::string key = name;
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (auto valid = validate_metadata(key, value); !valid) return valid.error();
    metadata.emplace_back(std::move(key), value);
  }
  return std::unique_ptr<GrpcExporter>(new GrpcExporter(config, std::move(metadata)));
}

namespace {

// Accepts "http://host:port" as well (the form OTEL_EXPORTER_OTLP_ENDPOINT
// uses for an insecure gRPC upstream): gRPC itself expects a target name.
std::string grpc_target(const std::string& endpoint) {
  constexpr std::string_view kHttp = "http://";
  std::string target = endpoint;
  if (target.rfind(kHttp, 0) == 0) target.erase(0, kHttp.size());
  if (!target.empty() && target.back() == '/') target.pop_back();
  return target;
}

std::shared_ptr<grpc::Channel> make_channel(const std::string& endpoint) {
  grpc::ChannelArguments args;
  // Retries belong to the delivery stage (backoff, spool, accounting); a
  // second, hidden retry layer would multiply attempts.
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  // Calls fail fast (UNAVAILABLE) while the channel is between reconnect
  // attempts; gRPC's default 120 s ceiling would keep failing them long after
  // the upstream is back, so the channel retries the connection sooner.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  args.SetString(GRPC_ARG_PRIMARY_USER_AGENT_STRING, "spanrelay/" SPANRELAY_VERSION);
  return grpc::CreateCustomChannel(grpc_target(endpoint), grpc::InsecureChannelCredentials(), args);
}

}  // namespace

GrpcExporter::GrpcExporter(const config::ExporterConfig& config,
                           std::vector<std::pair<std::string, std::string>> metadata)
    : endpoint_(config.endpoint),
      gzip_(config.compression == config::Compression::kGzip),
      timeout_(config.timeout),
      metadata_(std::move(metadata)),
      channel_(make_channel(config.endpoint)),
      stub_(channel_) {}

ExportResult GrpcExporter::export_request(std::string_view request, std::uint32_t /*span_count*/) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout_);
  if (gzip_) context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  for (const auto& [key, value] : metadata_) context.AddMetadata(key, value);

  grpc::Slice slice(request.data(), request.size());  // copies: the call may outlive a cancel
  const grpc::ByteBuffer request_buffer(&slice, 1);
  grpc::ByteBuffer response_buffer;
  std::promise<grpc::Status> done;
  auto finished = done.get_future();
  stub_.UnaryCall(&context, kExportMethod, grpc::StubOptions(), &request_buffer, &response_buffer,
                  [&done](grpc::Status status) { done.set_value(std::move(status)); });
  if (finished.wait_for(timeout_ + kCompletionSlack) != std::future_status::ready) {
    context.TryCancel();
  }
  // The callback always runs (after the deadline or the cancel at the latest);
  // the buffers above must outlive it.
  const grpc::Status status = finished.get();
  return classify_grpc_outcome(status, flatten(response_buffer));
}

std::string GrpcExporter::describe() const {
  return "otlp_grpc " + endpoint_ + (gzip_ ? " gzip" : " none");
}

}  // namespace spanrelay::exporters
