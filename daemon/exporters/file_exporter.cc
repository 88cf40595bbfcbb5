#include "daemon/exporters/file_exporter.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "daemon/otlp/json_transcoder.h"

namespace spanrelay::exporters {

namespace {

std::string errno_text(int error) { return std::strerror(error); }

}  // namespace

Result<std::unique_ptr<FileExporter>> FileExporter::create(const config::ExporterConfig& config) {
  if (config.path.empty()) return Error{"exporter.path: required for the file exporter"};
  const std::filesystem::path path(config.path);
  if (path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) {
      return Error{"exporter.path: cannot create directory '" + path.parent_path().string() +
                   "': " + ec.message()};
    }
  }
  const int fd = ::open(config.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) {
    return Error{"exporter.path: cannot open '" + config.path + "': " + errno_text(errno)};
  }
  return std::unique_ptr<FileExporter>(new FileExporter(config.path, fd));
}

FileExporter::FileExporter(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

FileExporter::~FileExporter() { ::close(fd_); }

ExportResult FileExporter::export_request(std::string_view request, std::uint32_t /*span_count*/) {
  auto json = otlp::protobuf_to_json(request);
  if (!json) {
    // The same bytes will never convert: retrying cannot help.
    return {ExportDisposition::kPermanent, 0, std::nullopt, "conversion_error",
            json.error().message};
  }
  std::string line = std::move(json).value();
  line.push_back('\n');

  std::lock_guard lock(write_mutex_);
  // Where this line starts, so that a half-written line (disk full) can be
  // cut off again: a retry must not leave a broken line in front of it.
  const off_t line_start = ::lseek(fd_, 0, SEEK_END);
  std::string_view pending = line;
  while (!pending.empty()) {
    const ssize_t written = ::write(fd_, pending.data(), pending.size());
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) {
      const int error = written < 0 ? errno : ENOSPC;
      if (line_start >= 0 && pending.size() != line.size()) {
        [[maybe_unused]] const int truncated = ::ftruncate(fd_, line_start);
      }
      // A full or failing disk may recover (rotation, cleanup): retryable.
      return {ExportDisposition::kRetryable, 0, std::nullopt, "io_error",
              "write to '" + path_ + "' failed: " + errno_text(error)};
    }
    pending.remove_prefix(static_cast<std::size_t>(written));
  }
  // write(2) leaves nothing buffered in this process: the line is in the
  // kernel's page cache as soon as the call returns.
  return {ExportDisposition::kSuccess, 0, std::nullopt, "ok", {}};
}

std::string FileExporter::describe() const { return "file " + path_; }

}  // namespace spanrelay::exporters
