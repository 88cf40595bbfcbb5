#include "daemon/exporters/exporter.h"

#include "daemon/exporters/file_exporter.h"
#include "daemon/exporters/grpc_exporter.h"
#include "daemon/exporters/http_exporter.h"

namespace spanrelay::exporters {

namespace {

template <class Concrete>
Result<std::unique_ptr<Exporter>> upcast(Result<std::unique_ptr<Concrete>> made) {
  if (!made) return made.error();
  return std::unique_ptr<Exporter>(std::move(made).value());
}

}  // namespace

Result<std::unique_ptr<Exporter>> make_exporter(const config::ExporterConfig& config) {
  switch (config.type) {
    case config::ExporterType::kOtlpGrpc:
      return upcast(GrpcExporter::create(config));
    case config::ExporterType::kOtlpHttp:
      return upcast(HttpExporter::create(config));
    case config::ExporterType::kFile:
      return upcast(FileExporter::create(config));
  }
  return Error{"exporter.type: unknown exporter type"};
}

}  // namespace spanrelay::exporters
