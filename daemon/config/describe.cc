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
  if (text.empty()) return "disabled";
  if (listener.tls.enabled && !listener.endpoint.empty()) {
    text += listener.tls.client_ca_file.empty() ? " tls" : " mtls";
    text += listener.tls.min_version == TlsVersion::kTls13 ? ">=1.3" : ">=1.2";
  }
  if (!listener.allowed_uids.empty() || !listener.allowed_gids.empty()) {
    text += " peer-credentials-checked";
  }
  return text;
}

// Names and counts only: key lists can be long, and salts are secrets.
std::string describe_redaction(const RedactionConfig& redaction) {
  const auto count = [](const std::vector<std::string>& keys,
                        const std::vector<std::string>& patterns) {
    return std::to_string(keys.size()) + "+" + std::to_string(patterns.size()) + "re";
  };
  std::string text = "redaction:";
  if (!redaction.allow_keys.empty() || !redaction.allow_key_patterns.empty()) {
    text += " allow=" + count(redaction.allow_keys, redaction.allow_key_patterns);
  }
  text += " delete=" + count(redaction.delete_keys, redaction.delete_key_patterns);
  text += " hash=" + count(redaction.hash_keys, redaction.hash_key_patterns);
  if (!redaction.hash_salt.empty()) text += " salt=<redacted>";
  text += " mask_rules=" + std::to_string(redaction.mask.size());
  return text;
}

std::string describe_client_tls(const ClientTlsConfig& tls) {
  if (tls.insecure) return "insecure";
  std::string text = tls.ca_file.empty() ? "ca=system" : "ca=" + tls.ca_file;
  if (!tls.cert_file.empty()) text += " client_cert=" + tls.cert_file;
  if (!tls.server_name.empty()) text += " server_name=" + tls.server_name;
  return text + (tls.min_version == TlsVersion::kTls13 ? " min=1.3" : " min=1.2");
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
  const auto& limits = receivers.limits;
  text += "receivers.otlp limits: max_spans_per_request=" +
          std::to_string(limits.max_spans_per_request) +
          " max_attributes_per_span=" + std::to_string(limits.max_attributes_per_span) +
          " max_attribute_value_length=" + format_size(limits.max_attribute_value_length) +
          " max_connections=" + std::to_string(limits.max_connections) +
          " read_timeout=" + format_duration(limits.read_timeout) +
          " idle_timeout=" + format_duration(limits.idle_timeout) + "\n";
  if (config.redaction.enabled) text += describe_redaction(config.redaction) + "\n";
  if (!config.resource.attributes.empty()) {
    text += "resource:";
    for (const auto& [key, value] : config.resource.attributes) text += " " + key;
    text += config.resource.override_existing ? " (override)\n" : " (insert)\n";
  }
  if (config.sampling.enabled) text += describe_sampling(config.sampling) + "\n";
  text += "batch: max_spans=" + std::to_string(config.batch.max_spans) +
          " max_bytes=" + format_size(config.batch.max_bytes) +
          " timeout=" + format_duration(config.batch.timeout) + "\n";

  text += "exporter: " + std::string(exporter_type_name(exporter.type));
  if (exporter.type == ExporterType::kFile) {
    text += " path=" + exporter.path;
  } else {
    if (!exporter.endpoints.empty()) {
      text += " load-balanced endpoints=";
      for (std::size_t i = 0; i < exporter.endpoints.size(); ++i) {
        text += (i > 0 ? "," : "") + exporter.endpoints[i];
      }
    } else if (!exporter.dns.hostname.empty()) {
      text += " load-balanced dns=" + exporter.dns.hostname + ":" +
              std::to_string(exporter.dns.port) + " every " +
              format_duration(exporter.dns.interval);
    } else {
      text += " endpoint=" + exporter.endpoint;
    }
    text += " compression=" + std::string(compression_name(exporter.compression));
  }
  text += " timeout=" + format_duration(exporter.timeout) +
          " max_in_flight=" + std::to_string(exporter.max_in_flight) + "\n";
  if (!exporter.headers.empty()) {
    // Names only: values are tenant ids and API keys, which logs must not keep.
    text += "exporter.headers:";
    for (const auto& [name, value] : exporter.headers) text += " " + name + "=<redacted>";
    text += "\n";
  }
  if (exporter.tls.enabled) text += "exporter.tls: " + describe_client_tls(exporter.tls) + "\n";
  if (!exporter.auth.bearer_token_file.empty()) {
    text += "exporter.auth: bearer_token_file=" + exporter.auth.bearer_token_file + "\n";
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
