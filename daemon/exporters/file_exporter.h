#pragma once
// File exporter: one OTLP/JSON TracesData object per line (JSON Lines), the
// format the OpenTelemetry Collector's file exporter writes, for debugging and
// for air-gapped hosts that ship files instead of talking to a collector.
#include <memory>
#include <mutex>
#include <string>

#include "daemon/common/result.h"
#include "daemon/config/config.h"
#include "daemon/exporters/exporter.h"

namespace spanrelay::exporters {

class FileExporter final : public Exporter {
 public:
  // Creates the parent directories and opens config.path for appending.
  static Result<std::unique_ptr<FileExporter>> create(const config::ExporterConfig& config);
  ~FileExporter() override;
  FileExporter(const FileExporter&) = delete;
  FileExporter& operator=(const FileExporter&) = delete;

  ExportResult export_request(std::string_view request, std::uint32_t span_count) override;
  std::string describe() const override;

 private:
  FileExporter(std::string path, int fd);

  const std::string path_;
  std::mutex write_mutex_;  // one line at a time, never interleaved
  int fd_;                  // O_APPEND; owned
};

}  // namespace spanrelay::exporters
