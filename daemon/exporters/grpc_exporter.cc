#include "daemon/exporters/grpc_exporter.h"

#include <grpc/byte_buffer.h>
#include <grpc/slice.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/channel_arguments.h>
#include <grpcpp/support/slice.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <future>

#include "daemon/common/compression.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "spanrelay/rpc/status.pb.h"

// gRPC C++ compresses a message with zlib at its default level (6), about
// three times the CPU of level 1 for a few percent of size, and offers no
// setting for it. A message handed over already compressed and marked so
// (grpc_raw_compressed_byte_buffer_create) is sent as it is, with the
// compressed flag and the call's grpc-encoding. grpcpp's ByteBuffer can only
// adopt such a buffer through this friend class, which grpcpp declares (for
// gRPC's own tests) and never defines; ours only adopts a buffer.
namespace grpc::internal {
class GrpcByteBufferPeer {
 public:
  explicit GrpcByteBufferPeer(ByteBuffer* buffer) : buffer_(buffer) {}
  void adopt(grpc_byte_buffer* raw) { buffer_->set_buffer(raw); }

 private:
  ByteBuffer* buffer_;
};
}  // namespace grpc::internal

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

Result<std::shared_ptr<grpc::Channel>> make_channel(const config::ExporterConfig& config) {
  auto credentials = grpc_channel_credentials(config.tls);
  if (!credentials) return credentials.error();
  grpc::ChannelArguments args;
  if (config.tls.enabled && !config.tls.server_name.empty()) {
    // SNI and the name the certificate is checked against (members found by
    // DNS are dialled by address, yet their certificates name the service).
    args.SetSslTargetNameOverride(config.tls.server_name);
  }
  // Retries belong to the delivery stage (backoff, spool, accounting); a
  // second, hidden retry layer would multiply attempts.
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  // Calls fail fast (UNAVAILABLE) while the channel is between reconnect
  // attempts; gRPC's default 120 s ceiling would keep failing them long after
  // the upstream is back, so the channel retries the connection sooner.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  args.SetString(GRPC_ARG_PRIMARY_USER_AGENT_STRING, "spanrelay/" SPANRELAY_VERSION);
  return grpc::CreateCustomChannel(grpc_target(config.endpoint), credentials.value(), args);
}

}  // namespace

Result<std::unique_ptr<GrpcExporter>> GrpcExporter::create(const config::ExporterConfig& config) {
  if (config.endpoint.empty()) return Error{"exporter.endpoint: required for otlp_grpc"};
  if (config.endpoint.rfind("https://", 0) == 0) {
    return Error{
        "exporter.endpoint: an otlp_grpc endpoint is host:port; TLS is turned on by "
        "exporter.tls"};
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
    if (key == "authorization" && !config.auth.bearer_token_file.empty()) {
      return Error{"exporter.headers: authorization is set by exporter.auth.bearer_token_file"};
    }
    metadata.emplace_back(std::move(key), value);
  }
  std::unique_ptr<BearerToken> token;
  if (!config.auth.bearer_token_file.empty()) {
    auto opened = BearerToken::open(config.auth.bearer_token_file);
    if (!opened) return opened.error();
    token = std::move(opened).value();
  }
  auto channel = make_channel(config);
  if (!channel) return channel.error();
  return std::unique_ptr<GrpcExporter>(
      new GrpcExporter(config, std::move(metadata),
                       std::make_shared<Connection>(std::move(channel).value()), std::move(token)));
}

Result<std::shared_ptr<grpc::ChannelCredentials>> grpc_channel_credentials(
    const config::ClientTlsConfig& tls) {
  if (!tls.enabled) return grpc::InsecureChannelCredentials();
  auto material = read_client_tls_material(tls);
  if (!material) return material.error();
  grpc::SslCredentialsOptions options;
  // Empty root certificates: gRPC's default trust store.
  options.pem_root_certs = std::move(material.value().ca_pem);
  options.pem_cert_chain = std::move(material.value().cert_pem);
  options.pem_private_key = std::move(material.value().key_pem);
  auto credentials = grpc::SslCredentials(options);
  if (!credentials) return Error{"exporter.tls: gRPC refused the TLS settings"};
  return credentials;
}

GrpcExporter::GrpcExporter(const config::ExporterConfig& config,
                           std::vector<std::pair<std::string, std::string>> metadata,
                           std::shared_ptr<Connection> connection,
                           std::unique_ptr<BearerToken> token)
    : endpoint_(config.endpoint),
      gzip_(config.compression == config::Compression::kGzip),
      timeout_(config.timeout),
      metadata_(std::move(metadata)),
      tls_(config.tls),
      token_(std::move(token)),
      connection_(std::move(connection)) {
  if (tls_.enabled && !client_tls_files(tls_).empty()) {
    tls_watch_ = std::make_unique<FileWatch>(client_tls_files(tls_), kCredentialCheckInterval);
  }
}

std::shared_ptr<GrpcExporter::Connection> GrpcExporter::current_connection() {
  if (tls_watch_ && tls_watch_->poll()) {
    config::ExporterConfig settings;
    settings.endpoint = endpoint_;
    settings.tls = tls_;
    auto channel = make_channel(settings);
    if (channel) {
      spdlog::info("exporter.tls: certificate files changed; new connections to {} use them",
                   endpoint_);
      auto fresh = std::make_shared<Connection>(std::move(channel).value());
      std::lock_guard lock(connection_mutex_);
      connection_ = std::move(fresh);
    } else {
      // Often a rotation caught half-way (the certificate written, not yet
      // the key): keep the working channel and look again soon.
      spdlog::warn("{}; keeping the current TLS settings", channel.error().message);
      tls_watch_->retry_later();
    }
  }
  std::lock_guard lock(connection_mutex_);
  return connection_;
}

namespace {

// Copies: the call may outlive a cancel of ours.
grpc::ByteBuffer plain_message(std::string_view request) {
  grpc::Slice slice(request.data(), request.size());
  return grpc::ByteBuffer(&slice, 1);
}

// gzip at level 1 (daemon/common/compression.h), marked as compressed so that
// gRPC does not compress it again (see GrpcByteBufferPeer above).
grpc::ByteBuffer gzip_message(std::string_view request) {
  auto compressed = compress(Codec::kGzip, request);
  // Not expected (zlib out of memory): gRPC compresses the plain bytes itself.
  if (!compressed.ok()) return plain_message(request);
  grpc_slice slice =
      grpc_slice_from_copied_buffer(compressed.value().data(), compressed.value().size());
  grpc_byte_buffer* raw = grpc_raw_compressed_byte_buffer_create(&slice, 1, GRPC_COMPRESS_GZIP);
  grpc_slice_unref(slice);  // the buffer holds its own reference
  grpc::ByteBuffer message;
  grpc::internal::GrpcByteBufferPeer(&message).adopt(raw);
  return message;
}

}  // namespace

ExportResult GrpcExporter::export_request(std::string_view request, std::uint32_t /*span_count*/) {
  const std::shared_ptr<Connection> connection = current_connection();
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout_);
  if (gzip_) context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  for (const auto& [key, value] : metadata_) context.AddMetadata(key, value);
  if (token_) context.AddMetadata("authorization", token_->header_value());

  const grpc::ByteBuffer request_buffer = gzip_ ? gzip_message(request) : plain_message(request);
  grpc::ByteBuffer response_buffer;
  std::promise<grpc::Status> done;
  auto finished = done.get_future();
  connection->stub.UnaryCall(&context, kExportMethod, grpc::StubOptions(), &request_buffer,
                             &response_buffer,
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
  std::string text = "otlp_grpc " + endpoint_ + (gzip_ ? " gzip" : " none");
  if (tls_.enabled) {
    text += " tls";
    if (!tls_.cert_file.empty()) text += "+client-cert";
  }
  // The token file's path only: the token itself is never shown.
  if (token_) text += " bearer_token_file=" + token_->path();
  return text;
}

}  // namespace spanrelay::exporters
