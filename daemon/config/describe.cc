// describe(): the start-up log summary of a loaded Config.
#include <array>
#include <cstdio>

#include "daemon/config/config_loader.h"

namespace spanrelay::config {
namespace {

std::string octal_mode(std::uint32_t mode) {
  std::array<char, 16> text{};
  std::snprintf(text.data(), text.size(), "%04o", static_cast<unsigned>(mode));
  return text.data();
}

std::string describe_listener(const ListenerConfig& listener) {
  std::string text;
  if (!listener.endpoint.empty()) text = "tcp " + listener.endpoint;
  if (!listener.unix_socket.empty()) {
    if (!text.empty()) text += ", ";
    text +=
        "unix " + listener.unix_socket + " (mode " + octal_mode(listener.unix_socket_mode) + ")";
  }
  return text.empty() ? "disabled" : text;
}

std::string_view exporter_type_name(ExporterType type) {
  switch (type) {
    case ExporterType::kOtlpGrpc:
      return "otlp_grpc";
    case ExporterType::kOtlpHttp:
      return "otlp_http";
    case ExporterType::kFile:
      return "file";
  }
  return "unknown";
}

std::string_view compression_name(Compression compression) {
  switch (compression) {
    case Compression::kNone:
      return "none";
    case Compression::kGzip:
      return "gzip";
    case Compression::kZstd:
      return "zstd";
  }
  return "unknown";
}

}  // namespace

std::string describe(const Config& config) {
  const auto& receivers = config.receivers;
  const auto& exporter = config.exporter;
  std::string text = "config: " + config.source + "\n";
  text += "receivers.otlp.grpc: " + describe_listener(receivers.grpc) + "\n";
  text += "receivers.otlp.http: " + describe_listener(receivers.http) + "\n";
  text += "receivers.otlp.max_request_size: " + format_size(receivers.max_request_size) + "\n";
  text += "batch: max_spans=" + std::to_string(config.batch.max_spans) +
          " max_bytes=" + format_size(config.batch.max_bytes) +
          " timeout=" + format_duration(config.batch.timeout) + "\n";

  text += "exporter: " + std::string(exporter_type_name(exporter.type));
  if (exporter.type == ExporterType::kFile) {
    text += " path=" + exporter.path;
  } else {
    text += " endpoint=" + exporter.endpoint +
            " compression=" + std::string(compression_name(exporter.compression));
  }
  text += " timeout=" + format_duration(exporter.timeout) +
          " max_in_flight=" + std::to_string(exporter.max_in_flight) + "\n";
  if (!exporter.headers.empty()) {
    // Names only: values are tenant ids and API keys, which logs must not keep.
    text += "exporter.headers:";
    for (const auto& [name, value] : exporter.headers) text += " " + name + "=<redacted>";
    text += "\n";
  }
  const auto& retry = exporter.retry;
  text += "exporter.retry: ";
  if (retry.enabled) {
    text += "initial_interval=" + format_duration(retry.initial_interval) +
            " max_interval=" + format_duration(retry.max_interval) + " max_elapsed=" +
            (retry.max_elapsed.count() == 0 ? "forever" : format_duration(retry.max_elapsed));
  } else {
    text += "disabled";
  }
  text += "\nexporter.queue: memory_limit=" + format_size(exporter.queue.memory_limit) + "\n";

  const auto& telemetry = config.telemetry;
  text += "telemetry: metrics=" +
          (telemetry.metrics_endpoint.empty() ? "disabled" : telemetry.metrics_endpoint) +
          " log.level=" + telemetry.log_level + "\n";
  text += "service: shutdown_timeout=" + format_duration(config.service.shutdown_timeout);
  return text;
}

}  // namespace spanrelay::config
