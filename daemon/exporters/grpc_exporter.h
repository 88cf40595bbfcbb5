#pragma once
// OTLP/gRPC exporter: raw request bytes through a generic stub (no libprotobuf
// copy of the request), gzip per message, one attempt per call, the outcome
// classified by the OTLP/gRPC retry rules.
#include <grpcpp/channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/status.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "daemon/common/result.h"
#include "daemon/config/config.h"
#include "daemon/exporters/exporter.h"

namespace spanrelay::exporters {

class GrpcExporter final : public Exporter {
 public:
  // Fails on a compression gRPC C++ cannot send (zstd) or on header names and
  // values that are not valid gRPC metadata.
  static Result<std::unique_ptr<GrpcExporter>> create(const config::ExporterConfig& config);

  ExportResult export_request(std::string_view request, std::uint32_t span_count) override;
  std::string describe() const override;

 private:
  GrpcExporter(const config::ExporterConfig& config,
               std::vector<std::pair<std::string, std::string>> metadata);

  std::string endpoint_;
  bool gzip_;
  std::chrono::milliseconds timeout_;
  std::vector<std::pair<std::string, std::string>> metadata_;  // keys lowercased
  std::shared_ptr<grpc::Channel> channel_;
  grpc::GenericStub stub_;
};

// The OTLP/gRPC classification of a finished call, apart from the transport so
// it can be reasoned about on its own. `response` is the serialized
// ExportTraceServiceResponse (read only when the status is OK).
ExportResult classify_grpc_outcome(const grpc::Status& status, std::string_view response);

// Canonical upper-case name of a status code ("UNAVAILABLE"), the metric label.
std::string_view grpc_status_code_name(grpc::StatusCode code);

}  // namespace spanrelay::exporters
