#pragma once
// The OTLP/gRPC receiver: TraceService/Export on TCP (default 127.0.0.1:4317)
// and/or a Unix socket. It is a raw-bytes generic callback service, so the
// request bytes go to the same decoder as OTLP/HTTP (Ingest) without a typed
// libprotobuf copy; see DESIGN.md "The hot path".
//
// Answers (OTLP specification, "OTLP/gRPC Response" and "Failures"):
//   accepted        -> OK with an empty ExportTraceServiceResponse
//   malformed       -> INVALID_ARGUMENT (not retryable)
//   too large       -> RESOURCE_EXHAUSTED without RetryInfo (retrying will not help)
//   over the budget -> RESOURCE_EXHAUSTED with google.rpc.RetryInfo (retry later)
//   other methods   -> UNIMPLEMENTED
//
// Limits: max_request_size bounds the message as sent (gRPC checks it and
// answers RESOURCE_EXHAUSTED before our handler runs: such refusals cannot be
// counted in spanrelay_receiver_refused_requests_total) and, for gzip/deflate
// requests, the inflated bytes too: the receiver inflates them itself with an
// output cap, because gRPC 1.51 inflates a whole message before comparing it
// with the limit (a compression bomb would be expanded in full first).
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "daemon/common/result.h"
#include "daemon/config/config.h"
#include "daemon/receivers/ingest.h"
#include "daemon/receivers/unix_socket_file.h"

namespace grpc {
class Server;
class CallbackGenericService;
namespace experimental {
class ExternalConnectionAcceptor;
}
}  // namespace grpc

namespace spanrelay::service {
class SocketActivation;
}

namespace spanrelay::receivers {

class ConnectionFeeder;
class PeerAccess;

class OtlpGrpcReceiver {
 public:
  // `ingest` must outlive the receiver (in-flight calls use it until shutdown returns).
  // `limits`: the gRPC channel arguments (max_concurrent_streams, read_timeout
  // as the handshake deadline, idle_timeout as max connection idle) and
  // max_connections. `access` (optional) checks each accepted connection.
  OtlpGrpcReceiver(config::ListenerConfig listener, std::size_t max_request_size, Ingest& ingest,
                   config::ReceiverLimitsConfig limits = {},
                   std::shared_ptr<PeerAccess> access = nullptr);
  ~OtlpGrpcReceiver();  // shuts down (without grace) if still running

  OtlpGrpcReceiver(const OtlpGrpcReceiver&) = delete;
  OtlpGrpcReceiver& operator=(const OtlpGrpcReceiver&) = delete;

  // Binds the TCP endpoint (listener.endpoint, "" = none) and/or the Unix
  // socket (listener.unix_socket, "" = none) and starts serving. A failed bind
  // is an error naming the address; nothing is left listening then.
  // With `inherited`, a passed socket bound to a configured address is
  // served instead of binding it (systemd socket activation).
  Status start(service::SocketActivation* inherited = nullptr);

  // Stops accepting, lets in-flight calls finish until `deadline` (then
  // cancels them), and removes the socket file. Safe twice and without start().
  void shutdown(std::chrono::steady_clock::time_point deadline);

  // What is listening: "127.0.0.1:41234" (the real port when 0 was asked for)
  // and/or "unix:/run/spanrelay/otlp-grpc.sock". Empty when not running.
  std::vector<std::string> bound_addresses() const;

 private:
  Status fail_start(const std::string& message);
  bool admit_connection(int connection_fd);

  const config::ListenerConfig listener_;
  const std::size_t max_request_size_;
  Ingest& ingest_;
  const config::ReceiverLimitsConfig limits_;
  const std::shared_ptr<PeerAccess> access_;
  std::mutex live_mutex_;  // the feeder threads (TCP, Unix) admit concurrently
  std::vector<std::pair<int, std::uint64_t>> live_connections_;  // (fd, SO_COOKIE)

  mutable std::mutex mutex_;
  // Declared before server_: gRPC requires the service to outlive the server.
  std::unique_ptr<grpc::CallbackGenericService> service_;
  std::unique_ptr<grpc::Server> server_;
  // Sockets passed by systemd: gRPC takes their accepted connections.
  std::vector<std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor>> external_acceptors_;
  std::vector<std::unique_ptr<ConnectionFeeder>> feeders_;
  std::vector<std::string> bound_addresses_;
  bool unix_socket_created_ = false;
  SocketFileId unix_socket_id_;
};

}  // namespace spanrelay::receivers
