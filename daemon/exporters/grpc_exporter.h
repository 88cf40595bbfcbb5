#pragma once
// OTLP/gRPC exporter: raw request bytes through a generic stub (no libprotobuf
// copy of the request), gzip per message, one attempt per call, the outcome
// classified by the OTLP/gRPC retry rules.
#include <grpcpp/channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/status.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "daemon/common/result.h"
#include "daemon/config/config.h"
#include "daemon/exporters/credential_files.h"
#include "daemon/exporters/exporter.h"

namespace spanrelay::exporters {

class GrpcExporter final : public Exporter {
 public:
  // Fails on a compression gRPC C++ cannot send (zstd), on header names and
  // values that are not valid gRPC metadata, or on unreadable TLS or token files.
  static Result<std::unique_ptr<GrpcExporter>> create(const config::ExporterConfig& config);

  ExportResult export_request(std::string_view request, std::uint32_t span_count) override;
  std::string describe() const override;

 private:
  // A channel and its stub. Replaced whole when the TLS files change; calls
  // in flight keep the one they started on alive.
  struct Connection {
    explicit Connection(std::shared_ptr<grpc::Channel> made)
        : channel(std::move(made)), stub(channel) {}
    std::shared_ptr<grpc::Channel> channel;
    grpc::GenericStub stub;
  };

  GrpcExporter(const config::ExporterConfig& config,
               std::vector<std::pair<std::string, std::string>> metadata,
               std::shared_ptr<Connection> connection, std::unique_ptr<BearerToken> token);

  // The connection to use now, rebuilt first when the TLS files changed.
  std::shared_ptr<Connection> current_connection();

  std::string endpoint_;
  bool gzip_;
  std::chrono::milliseconds timeout_;
  std::vector<std::pair<std::string, std::string>> metadata_;  // keys lowercased
  config::ClientTlsConfig tls_;
  std::unique_ptr<FileWatch> tls_watch_;  // null without TLS files
  std::unique_ptr<BearerToken> token_;    // null without exporter.auth
  std::mutex connection_mutex_;
  std::shared_ptr<Connection> connection_;  // guarded by connection_mutex_
};

// The channel credentials for exporter.tls (insecure when TLS is off).
// Reads the PEM files: errors name the setting.
Result<std::shared_ptr<grpc::ChannelCredentials>> grpc_channel_credentials(
    const config::ClientTlsConfig& tls);

// The OTLP/gRPC classification of a finished call, apart from the transport so
// it can be reasoned about on its own. `response` is the serialized
// ExportTraceServiceResponse (read only when the status is OK).
ExportResult classify_grpc_outcome(const grpc::Status& status, std::string_view response);

// Canonical upper-case name of a status code ("UNAVAILABLE"), the metric label.
std::string_view grpc_status_code_name(grpc::StatusCode code);

}  // namespace spanrelay::exporters
