// describe(): the start-up log summary of a loaded Config.
#include <array>
#include <cstdio>

#include "daemon/config/config_loader.h"
#include "daemon/config/sampling_section.h"

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

std::string_view fsync_name(FsyncPolicy fsync) {
  switch (fsync) {
    case FsyncPolicy::kAlways:
      return "always";
    case FsyncPolicy::kInterval:
      return "interval";
    case FsyncPolicy::kNever:
      return "never";
  }
  return "unknown";
}

std::string_view when_full_name(WhenFull when_full) {
  switch (when_full) {
    case WhenFull::kDropOldest:
      return "drop_oldest";
    case WhenFull::kRefuseNew:
      return "refuse_new";
  }
  return "unknown";
}

// One line: the bounds, then the policies in evaluation order as name:type.
std::string describe_sampling(const SamplingConfig& sampling) {
  std::string text =
      "sampling: decision_wait=" + format_duration(sampling.decision_wait) +
      " max_traces=" + std::to_string(sampling.max_traces) +
      " max_buffered_bytes=" + format_size(sampling.max_buffered_bytes) +
      " decision_cache_size=" + std::to_string(sampling.decision_cache_size) +
      " shards=" + (sampling.shards == 0 ? "per-core" : std::to_string(sampling.shards)) +
      " policies=";
  for (std::size_t index = 0; index < sampling.policies.size(); ++index) {
    const auto& policy = sampling.policies[index];
    if (index > 0) text += ",";
    text += policy.name + ":" + std::string(policy_type_name(policy.type));
  }
  return text;
}

std::string describe_spool(const SpoolConfig& spool) {
  std::string text = "exporter.queue.spool: dir=" + spool.dir +
                     " max_size=" + format_size(spool.max_size) +
                     " fsync=" + std::string(fsync_name(spool.fsync));
  if (spool.fsync == FsyncPolicy::kInterval) {
    text += " fsync_interval=" + format_duration(spool.fsync_interval);
  }
  return text + " when_full=" + std::string(when_full_name(spool.when_full));
}

}  // namespace

std::string describe(const Config& config) {
  const auto& receivers = config.receivers;
  const auto& exporter = config.exporter;
  std::string text = "config: " + config.source + "\n";
  text += "receivers.otlp.grpc: " + describe_listener(receivers.grpc) + "\n";
  text += "receivers.otlp.http: " + describe_listener(receivers.http) + "\n";
  text += "receivers.otlp.max_request_size: " + format_size(receivers.max_request_size) + "\n";
  if (config.sampling.enabled) text += describe_sampling(config.sampling) + "\n";
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
  if (!exporter.queue.spool.dir.empty()) text += describe_spool(exporter.queue.spool) + "\n";

  const auto& telemetry = config.telemetry;
  text += "telemetry: metrics=" +
          (telemetry.metrics_endpoint.empty() ? "disabled" : telemetry.metrics_endpoint) +
          " log.level=" + telemetry.log_level + " log.format=" + telemetry.log_format + "\n";
  text += "service: shutdown_timeout=" + format_duration(config.service.shutdown_timeout);
  return text;
}

}  // namespace spanrelay::config
