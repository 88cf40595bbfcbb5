#include "daemon/receivers/otlp_grpc_receiver.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <climits>
#include <optional>
#include <string_view>
#include <utility>

#include "daemon/common/compression.h"
#include "daemon/receivers/connection_feeder.h"
#include "daemon/receivers/unix_socket_file.h"
#include "daemon/service/socket_activation.h"
#include "spanrelay/rpc/status.pb.h"

namespace spanrelay::receivers {

namespace {

constexpr std::string_view kExportMethod =
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
constexpr const char* kRetryInfoTypeUrl = "type.googleapis.com/google.rpc.RetryInfo";

// The request message in one contiguous buffer, as the wire scanner wants it
// (gRPC hands it over in slices, still compressed: see inflate_in_place).
std::string flatten(const grpc::ByteBuffer& buffer) {
  std::string bytes;
  std::vector<grpc::Slice> slices;
  if (!buffer.Valid() || !buffer.Dump(&slices).ok()) return bytes;
  bytes.reserve(buffer.Length());
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return bytes;
}

// gRPC's own decompression (1.51) inflates a message in full and only then
// compares it with the receive limit: a 4 MiB gzip bomb could cost ~4 GiB of
// memory before the refusal. So the server keeps messages compressed and the
// receiver inflates them here with an output cap. The C++ API exposes neither
// grpc-encoding nor the message's compressed flag, so the codec is read from
// the bytes, which is unambiguous for gzip (RFC 1952 magic 1f 8b: as a
// protobuf tag, 0x1f is wire type 7, which does not exist) and nearly so for
// gRPC's "deflate" (zlib, RFC 1950: CMF 0x78 and a header checksum; as a tag,
// 0x78 is an unknown field 15, which no OTLP exporter writes).
enum class Sniffed { kPlain, kGzip, kZlib };

Sniffed sniff_compression(std::string_view bytes) {
  if (bytes.size() < 2) return Sniffed::kPlain;
  const auto b0 = static_cast<unsigned char>(bytes[0]);
  const auto b1 = static_cast<unsigned char>(bytes[1]);
  if (b0 == 0x1f && b1 == 0x8b) return Sniffed::kGzip;
  if (b0 == 0x78 && ((b0 << 8) | b1) % 31 == 0) return Sniffed::kZlib;
  return Sniffed::kPlain;
}

// Replaces a compressed `body` by its inflated bytes, at most `limit` of them.
// Refusals are counted here: these requests never reach Ingest::ingest.
std::optional<grpc::Status> inflate_in_place(std::string& body, std::size_t limit, Ingest& ingest) {
  const Sniffed sniffed = sniff_compression(body);
  if (sniffed == Sniffed::kPlain) return std::nullopt;
  Decompressed inflated =
      decompress(sniffed == Sniffed::kGzip ? Codec::kGzip : Codec::kDeflate, body, limit);
  switch (inflated.status) {
    case DecompressStatus::kOk:
      body = std::move(inflated.bytes);
      return std::nullopt;
    case DecompressStatus::kTooLarge:
      ingest.count_refused_request("too_large");
      // No RetryInfo: the same request will never fit (OTLP: not retryable).
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          "request " + inflated.message + " (max_request_size)");
    case DecompressStatus::kCorrupt:
      // Not a zlib stream after all: an uncompressed request that happens to
      // start with field 15 goes on to the scanner unchanged.
      if (sniffed == Sniffed::kZlib) return std::nullopt;
      ingest.count_refused_request("bad_compression");
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "gzip: " + inflated.message);
  }
  return std::nullopt;
}

// An ExportTraceServiceResponse without partial_success encodes to zero bytes.
grpc::ByteBuffer empty_export_response() {
  grpc::Slice empty;
  return grpc::ByteBuffer(&empty, 1);
}

// OTLP: RESOURCE_EXHAUSTED is retryable only when the status carries
// google.rpc.RetryInfo, so the detail is what turns "refused" into "try later".
// Clients read it from the grpc-status-details-bin trailer (a google.rpc.Status).
grpc::Status refused_with_retry_info(const std::string& message, std::chrono::seconds retry_after) {
  // A zero delay would invite the SDK to retry at once into the same full budget.
  retry_after = std::max(retry_after, std::chrono::seconds(1));
  rpc::RetryInfo retry_info;
  retry_info.mutable_retry_delay()->set_seconds(retry_after.count());
  rpc::Status status;
  status.set_code(grpc::StatusCode::RESOURCE_EXHAUSTED);
  status.set_message(message);
  rpc::Any* detail = status.add_details();
  detail->set_type_url(kRetryInfoTypeUrl);
  detail->set_value(retry_info.SerializeAsString());
  return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, message, status.SerializeAsString());
}

grpc::Status to_grpc_status(const IngestOutcome& outcome) {
  switch (outcome.kind) {
    case IngestOutcome::Kind::kAccepted:
      return grpc::Status::OK;
    case IngestOutcome::Kind::kBadRequest:
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, outcome.message);
    case IngestOutcome::Kind::kTooLarge:
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, outcome.message);
    case IngestOutcome::Kind::kRefused:
      return refused_with_retry_info(outcome.message, outcome.retry_after);
  }
  return grpc::Status(grpc::StatusCode::INTERNAL, "unexpected ingest outcome");
}

// One Export call. OTLP Export is unary, but a generic service only offers
// bidi reactors: read one request, answer, finish. The whole handling runs on
// gRPC's callback thread because Ingest never blocks (admission is a memory
// decision, see span_consumer.h).
class ExportReactor final : public grpc::ServerGenericBidiReactor {
 public:
  ExportReactor(const grpc::GenericCallbackServerContext& context, Ingest& ingest,
                std::size_t max_request_size)
      : ingest_(ingest), max_request_size_(max_request_size) {
    if (context.method() != kExportMethod) {
      Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "unknown method " + context.method() +
                                                               "; spanrelay serves " +
                                                               std::string(kExportMethod)));
      return;
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The client half-closed without a message, or the call already failed
      // (cancelled, or over the receive limit: then this status is not sent).
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "Export call without a request"));
      return;
    }
    std::string body = flatten(request_);
    request_.Clear();
    if (auto refused = inflate_in_place(body, max_request_size_, ingest_)) {
      Finish(*refused);
      return;
    }
    const IngestOutcome outcome = ingest_.ingest(std::move(body), BodyEncoding::kProtobuf, "grpc");
    if (outcome.kind == IngestOutcome::Kind::kAccepted) {
      response_ = empty_export_response();
      StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
      return;
    }
    Finish(to_grpc_status(outcome));
  }

  // The callback API hands ownership of a reactor to gRPC until OnDone.
  void OnDone() override { delete this; }

 private:
  Ingest& ingest_;
  const std::size_t max_request_size_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
};

class TraceExportService final : public grpc::CallbackGenericService {
 public:
  TraceExportService(Ingest& ingest, std::size_t max_request_size)
      : ingest_(ingest), max_request_size_(max_request_size) {}

  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override {
    // Deleted by itself in OnDone.
    return new ExportReactor(*context, ingest_, max_request_size_);
  }

 private:
  Ingest& ingest_;
  const std::size_t max_request_size_;
};

std::string tcp_host(const std::string& endpoint) {
  const auto colon = endpoint.rfind(':');
  return colon == std::string::npos ? endpoint : endpoint.substr(0, colon);
}

std::chrono::system_clock::time_point to_system_clock(std::chrono::steady_clock::time_point t) {
  const auto remaining = t - std::chrono::steady_clock::now();
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(remaining);
}

}  // namespace

OtlpGrpcReceiver::OtlpGrpcReceiver(config::ListenerConfig listener, std::size_t max_request_size,
                                   Ingest& ingest)
    : listener_(std::move(listener)), max_request_size_(max_request_size), ingest_(ingest) {}

OtlpGrpcReceiver::~OtlpGrpcReceiver() { shutdown(std::chrono::steady_clock::now()); }

Status OtlpGrpcReceiver::start(service::SocketActivation* inherited) {
  std::lock_guard lock(mutex_);
  if (server_) return Error{"the OTLP/gRPC receiver is already started"};
  // A passed socket replaces binding that address ourselves.
  std::optional<FileDescriptor> passed_tcp;
  std::optional<FileDescriptor> passed_unix;
  if (inherited && !listener_.endpoint.empty())
    passed_tcp = inherited->take_tcp(listener_.endpoint);
  if (inherited && !listener_.unix_socket.empty()) {
    passed_unix = inherited->take_unix(listener_.unix_socket);
  }
  const bool want_tcp = !listener_.endpoint.empty() && !passed_tcp;
  const bool want_unix = !listener_.unix_socket.empty() && !passed_unix;
  if (listener_.endpoint.empty() && listener_.unix_socket.empty()) return Ok{};  // disabled

  if (want_unix) {
    if (auto prepared = prepare_unix_socket_path(listener_.unix_socket); !prepared.ok()) {
      return Error{"cannot listen for OTLP/gRPC on unix:" + listener_.unix_socket + ": " +
                   prepared.error().message};
    }
  }

  service_ = std::make_unique<TraceExportService>(ingest_, max_request_size_);
  grpc::ServerBuilder builder;
  int tcp_port = 0;  // the real port once bound, 0 if the bind failed
  if (want_tcp) {
    builder.AddListeningPort(listener_.endpoint, grpc::InsecureServerCredentials(), &tcp_port);
  }
  if (want_unix) {
    builder.AddListeningPort("unix:" + listener_.unix_socket, grpc::InsecureServerCredentials());
  }
  std::vector<FileDescriptor> passed;
  for (auto* socket : {&passed_tcp, &passed_unix}) {
    if (!*socket) continue;
    passed.push_back(std::move(**socket));
    external_acceptors_.push_back(builder.experimental().AddExternalConnectionAcceptor(
        grpc::ServerBuilder::experimental_type::ExternalConnectionType::FROM_FD,
        grpc::InsecureServerCredentials()));
  }
  builder.RegisterCallbackGenericService(service_.get());
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(std::min<std::size_t>(max_request_size_, INT_MAX)));
  // gRPC sets SO_REUSEPORT by default: a second daemon on the same port would
  // then silently share the traffic instead of failing to start.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // gzip and deflate requests stay accepted (OTLP: servers must accept gzip),
  // but are inflated by the receiver with a cap: see inflate_in_place. The
  // receive limit then applies to the message as sent, and again, by us, to
  // the inflated bytes.
  builder.AddChannelArgument(GRPC_ARG_ENABLE_PER_MESSAGE_DECOMPRESSION, 0);

  server_ = builder.BuildAndStart();
  if (!server_) {
    // BuildAndStart binds the ports in order and stops at the first failure.
    const std::string failed =
        (want_tcp && tcp_port == 0) ? listener_.endpoint : "unix:" + listener_.unix_socket;
    return fail_start("cannot listen for OTLP/gRPC on " + failed);
  }
  if (want_unix) {
    unix_socket_created_ = true;
    unix_socket_id_ = socket_file_id(listener_.unix_socket);
    if (auto mode = apply_unix_socket_mode(listener_.unix_socket, listener_.unix_socket_mode);
        !mode.ok()) {
      return fail_start("cannot listen for OTLP/gRPC on unix:" + listener_.unix_socket + ": " +
                        mode.error().message);
    }
  }
  if (want_tcp)
    bound_addresses_.push_back(tcp_host(listener_.endpoint) + ":" + std::to_string(tcp_port));
  if (want_unix) bound_addresses_.push_back("unix:" + listener_.unix_socket);
  for (std::size_t i = 0; i < passed.size(); ++i) {
    const std::string address = service::bound_address(passed[i].get());
    spdlog::info("otlp-grpc: serving {} (passed by the service manager)", address);
    bound_addresses_.push_back(address);
    auto* acceptor = external_acceptors_[i].get();
    feeders_.push_back(std::make_unique<ConnectionFeeder>(
        std::move(passed[i]), [acceptor](int listening_fd, int connection_fd) {
          grpc::experimental::ExternalConnectionAcceptor::NewConnectionParameters connection;
          connection.listener_fd = listening_fd;
          connection.fd = connection_fd;  // gRPC owns it from here on
          acceptor->HandleNewConnection(&connection);
        }));
  }
  return Ok{};
}

// With mutex_ held: undo a half-done start().
Status OtlpGrpcReceiver::fail_start(const std::string& message) {
  feeders_.clear();
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now());
    server_->Wait();
    server_.reset();
  }
  service_.reset();
  external_acceptors_.clear();
  if (unix_socket_created_) remove_unix_socket_file(listener_.unix_socket, unix_socket_id_);
  unix_socket_created_ = false;
  return Error{message};
}

void OtlpGrpcReceiver::shutdown(std::chrono::steady_clock::time_point deadline) {
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<grpc::CallbackGenericService> service;
  std::vector<std::unique_ptr<ConnectionFeeder>> feeders;
  std::vector<std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor>> acceptors;
  bool remove_socket = false;
  {
    // Taken out under the lock, waited for outside it: bound_addresses()
    // (e.g. /readyz) answers "not listening" at once instead of blocking.
    std::lock_guard lock(mutex_);
    server = std::move(server_);
    service = std::move(service_);
    feeders = std::move(feeders_);
    acceptors = std::move(external_acceptors_);
    remove_socket = std::exchange(unix_socket_created_, false);
    bound_addresses_.clear();
  }
  feeders.clear();  // no new connections from passed sockets
  if (server) {
    // Stops accepting at once; calls in flight may finish until the deadline,
    // then are cancelled. Wait() returns when every reactor is done.
    server->Shutdown(to_system_clock(deadline));
    server->Wait();
    server.reset();
  }
  service.reset();  // after the server: gRPC requires the service to outlive it
  acceptors.clear();
  if (remove_socket) remove_unix_socket_file(listener_.unix_socket, unix_socket_id_);
}

std::vector<std::string> OtlpGrpcReceiver::bound_addresses() const {
  std::lock_guard lock(mutex_);
  return bound_addresses_;
}

}  // namespace spanrelay::receivers
