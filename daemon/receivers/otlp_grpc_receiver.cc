#include "daemon/receivers/otlp_grpc_receiver.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <optional>
#include <string_view>
#include <utility>

#include "daemon/common/compression.h"
#include "daemon/receivers/connection_feeder.h"
#include "daemon/receivers/listening_socket.h"
#include "daemon/receivers/peer_access.h"
#include "daemon/receivers/receiver_tls.h"
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
  limit = std::min(limit, ingest.limits().inflate_cap(body.size()));
  Decompressed inflated =
      decompress(sniffed == Sniffed::kGzip ? Codec::kGzip : Codec::kDeflate, body, limit);
  switch (inflated.status) {
    case DecompressStatus::kOk:
      body = std::move(inflated.bytes);
      return std::nullopt;
    case DecompressStatus::kTooLarge:
      if (ingest.limits().cap_is_ratio(limit)) {
        ingest.count_refused_request("decompression_ratio");
        return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                            "request " + inflated.message + " (max_decompression_ratio " +
                                std::to_string(ingest.limits().max_decompression_ratio) + ")");
      }
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

int clamp_ms(config::Duration duration) {
  return static_cast<int>(std::min<std::int64_t>(duration.count(), INT_MAX));
}

// The kernel's identity of a socket (Linux 4.6+), 0 when `fd` is not an open socket.
std::uint64_t socket_cookie(int fd) {
  std::uint64_t cookie = 0;
  socklen_t size = sizeof(cookie);
  if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &size) != 0) return 0;
  return cookie;
}

std::chrono::system_clock::time_point to_system_clock(std::chrono::steady_clock::time_point t) {
  const auto remaining = t - std::chrono::steady_clock::now();
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(remaining);
}

}  // namespace

OtlpGrpcReceiver::OtlpGrpcReceiver(config::ListenerConfig listener, std::size_t max_request_size,
                                   Ingest& ingest, config::ReceiverLimitsConfig limits,
                                   std::shared_ptr<PeerAccess> access)
    : listener_(std::move(listener)),
      max_request_size_(max_request_size),
      ingest_(ingest),
      limits_(limits),
      access_(std::move(access)) {}

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

  // Every listener is a socket we accept on ourselves (ConnectionFeeder), so
  // that PeerAccess checks each connection before gRPC reads a byte of it:
  // bound here, or passed by the service manager.
  std::vector<FileDescriptor> sockets;
  std::vector<std::string> addresses;
  if (want_tcp) {
    auto bound = bind_tcp_listener(listener_.endpoint);
    if (!bound.ok()) {
      return Error{"cannot listen for OTLP/gRPC on " + listener_.endpoint + ": " +
                   bound.error().message};
    }
    addresses.push_back(tcp_host(listener_.endpoint) + ":" +
                        std::to_string(bound_port(bound.value().get())));
    sockets.push_back(std::move(bound).value());
  }
  if (want_unix) {
    auto bound = bind_unix_listener(listener_.unix_socket);
    if (!bound.ok()) {
      return Error{"cannot listen for OTLP/gRPC on unix:" + listener_.unix_socket + ": " +
                   bound.error().message};
    }
    unix_socket_created_ = true;
    unix_socket_id_ = socket_file_id(listener_.unix_socket);
    auto applied = apply_unix_socket_mode(listener_.unix_socket, listener_.unix_socket_mode);
    if (applied.ok()) applied = apply_socket_group(listener_.unix_socket, listener_.socket_group);
    if (!applied.ok()) {
      return fail_start("cannot listen for OTLP/gRPC on unix:" + listener_.unix_socket + ": " +
                        applied.error().message);
    }
    addresses.push_back("unix:" + listener_.unix_socket);
    sockets.push_back(std::move(bound).value());
  }
  for (auto* socket : {&passed_tcp, &passed_unix}) {
    if (!*socket) continue;
    const std::string address = service::bound_address((*socket)->get());
    spdlog::info("otlp-grpc: serving {} (passed by the service manager)", address);
    addresses.push_back(address);
    sockets.push_back(std::move(**socket));
  }

  // TLS (receivers.otlp.grpc.tls) on the TCP sockets; Unix ones stay plaintext.
  auto tcp_credentials = grpc_tcp_credentials(listener_.tls, "grpc");
  if (!tcp_credentials) return fail_start(tcp_credentials.error().message);
  service_ = std::make_unique<TraceExportService>(ingest_, max_request_size_);
  grpc::ServerBuilder builder;
  for (std::size_t i = 0; i < sockets.size(); ++i) {
    external_acceptors_.push_back(builder.experimental().AddExternalConnectionAcceptor(
        grpc::ServerBuilder::experimental_type::ExternalConnectionType::FROM_FD,
        is_unix_domain_socket(sockets[i].get()) ? grpc::InsecureServerCredentials()
                                                : tcp_credentials.value()));
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
  // Limits (receivers.otlp.*): streams per connection, a connection that
  // never completes its HTTP/2 handshake, and one that stays idle.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             static_cast<int>(limits_.max_concurrent_streams));
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, clamp_ms(limits_.read_timeout));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, clamp_ms(limits_.idle_timeout));

  server_ = builder.BuildAndStart();
  if (!server_) return fail_start("cannot start the OTLP/gRPC server");
  bound_addresses_ = addresses;
  for (std::size_t i = 0; i < sockets.size(); ++i) {
    auto* acceptor = external_acceptors_[i].get();
    feeders_.push_back(std::make_unique<ConnectionFeeder>(
        std::move(sockets[i]), [this, acceptor](int listening_fd, int connection_fd) {
          if (!admit_connection(connection_fd)) {
            ::close(connection_fd);
            return;
          }
          grpc::experimental::ExternalConnectionAcceptor::NewConnectionParameters connection;
          connection.listener_fd = listening_fd;
          connection.fd = connection_fd;  // gRPC owns it from here on
          acceptor->HandleNewConnection(&connection);
        }));
  }
  return Ok{};
}

// On a feeder thread. gRPC tells nobody when it closes a connection, so the
// live ones are known by (fd, SO_COOKIE): an fd that is closed, or reused for
// another socket, no longer has the cookie it had at accept.
bool OtlpGrpcReceiver::admit_connection(int connection_fd) {
  if (access_ == nullptr) return true;
  if (access_->check(connection_fd) != nullptr) return false;
  if (limits_.max_connections == 0) return true;
  std::lock_guard lock(live_mutex_);
  if (live_connections_.size() >= limits_.max_connections) {
    std::erase_if(live_connections_, [](const std::pair<int, std::uint64_t>& live) {
      return socket_cookie(live.first) != live.second;
    });
  }
  if (live_connections_.size() >= limits_.max_connections) {
    access_->count_refused("max_connections");
    spdlog::debug("otlp-grpc: refused a connection: max_connections ({}) reached",
                  limits_.max_connections);
    return false;
  }
  live_connections_.emplace_back(connection_fd, socket_cookie(connection_fd));
  return true;
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
    {
      std::lock_guard live_lock(live_mutex_);
      live_connections_.clear();
    }
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
