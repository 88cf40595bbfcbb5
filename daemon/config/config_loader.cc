// The config schema: which keys exist, their rules, and the rules that tie
// keys together. Generic YAML reading lives in yaml_reader.cc.
#include "daemon/config/config_loader.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <optional>
#include <system_error>
#include <utility>

#include "daemon/common/file_descriptor.h"
#include "daemon/config/endpoint.h"
#include "daemon/config/expansion.h"
#include "daemon/config/header_rules.h"
#include "daemon/config/limits_section.h"
#include "daemon/config/load_balancing_section.h"
#include "daemon/config/otel_environment.h"
#include "daemon/config/processing_section.h"
#include "daemon/config/sampling_section.h"
#include "daemon/config/tls_section.h"
#include "daemon/config/yaml_reader.h"

namespace spanrelay::config {
namespace {

constexpr std::uint64_t kKiB = 1ull << 10;
constexpr std::uint64_t kMiB = 1ull << 20;
// gRPC and protobuf take message limits as int: stay well inside 2GiB.
constexpr std::uint64_t kMaxRequestSizeLimit = 1ull << 30;
// sockaddr_un.sun_path is 108 bytes on Linux, including the terminating NUL.
constexpr std::size_t kMaxUnixSocketPath = 107;
// Anything bigger is not a config file (or is /dev/zero); refuse rather than hang.
constexpr std::size_t kMaxConfigFileBytes = 16u << 20;

constexpr std::array<std::pair<std::string_view, ExporterType>, 3> kExporterTypes{{
    {"otlp_grpc", ExporterType::kOtlpGrpc},
    {"otlp_http", ExporterType::kOtlpHttp},
    {"file", ExporterType::kFile},
}};
constexpr std::array<std::pair<std::string_view, Compression>, 3> kCompressions{{
    {"none", Compression::kNone},
    {"gzip", Compression::kGzip},
    {"zstd", Compression::kZstd},
}};
constexpr std::array<std::pair<std::string_view, FsyncPolicy>, 3> kFsyncPolicies{{
    {"always", FsyncPolicy::kAlways},
    {"interval", FsyncPolicy::kInterval},
    {"never", FsyncPolicy::kNever},
}};
constexpr std::array<std::pair<std::string_view, WhenFull>, 2> kWhenFull{{
    {"drop_oldest", WhenFull::kDropOldest},
    {"refuse_new", WhenFull::kRefuseNew},
}};
constexpr std::array<std::pair<std::string_view, std::string_view>, 2> kLogFormats{{
    {"text", "text"},
    {"json", "json"},
}};
constexpr std::array<std::pair<std::string_view, std::string_view>, 6> kLogLevels{{
    {"trace", "trace"},
    {"debug", "debug"},
    {"info", "info"},
    {"warn", "warn"},
    {"error", "error"},
    {"off", "off"},
}};

// Unquoted, [::1]:4317 is a YAML list followed by junk: say so when a list shows up.
constexpr std::string_view kHostPortExpected = "host:port (quote IPv6 ones: \"[::1]:4317\")";

std::string exporter_type_names() {
  std::vector<std::string_view> names;
  for (const auto& [name, type] : kExporterTypes) names.push_back(name);
  return or_list(names);
}

// Walks the YAML tree into a Config, section by section. The reader keeps the
// first error and turns later reads into no-ops, so the walk needs no
// early-return plumbing; a rule that needs a value read earlier checks
// reader_.failed() first.
class Loader {
 public:
  Loader(const std::string& source, const EnvironmentLookup& environment)
      : source_(source), environment_(environment), reader_(source) {}

  Result<Config> load(std::string_view yaml) {
    Config config;
    config.source = source_;
    try {
      if (const auto root = reader_.parse(yaml)) {
        // References are resolved first: every rule below sees the values.
        expand_scalar_values(*root, environment_, reader_);
        read_root(*root, &config);
      }
    } catch (const YAML::Exception& e) {
      // The walk only uses non-throwing accessors; this is a last line of defence.
      reader_.fail_at(e.mark, "cannot read the YAML: " + e.msg);
    }
    if (reader_.error()) return *reader_.error();
    return config;
  }

 private:
  void read_root(const YAML::Node& root, Config* config) {
    const Section top = reader_.open_map(root, root.Mark(), "",
                                         {"receivers", "sampling", "batch", "exporter", "telemetry",
                                          "service", "redaction", "resource"});
    read_receivers(top.get("receivers"), &config->receivers);
    read_sampling_section(reader_, top.get("sampling"), &config->sampling);
    read_redaction_section(reader_, top.get("redaction"), &config->redaction);
    read_resource_section(reader_, top.get("resource"), &config->resource);
    read_batch(top.get("batch"), &config->batch);
    const Field* exporter = top.get("exporter");
    if (exporter != nullptr) read_exporter(exporter, &config->exporter);
    read_telemetry(top.get("telemetry"), &config->telemetry);
    read_service(top.get("service"), &config->service);
    // After the file's own sections, so that an error in the file is the one reported.
    if (exporter == nullptr) read_exporter_from_environment(config);
    check_queue_fits_a_batch(*config);
  }

  void read_receivers(const Field* field, ReceiversConfig* out) {
    const Section receivers = reader_.open_map(field, {"otlp"});
    const Section otlp = reader_.open_map(
        receivers.get("otlp"),
        {"grpc", "http", "max_request_size", "max_decompression_ratio", "max_spans_per_request",
         "max_attributes_per_span", "max_attribute_value_length", "max_anyvalue_depth",
         "max_connections", "max_concurrent_streams", "max_header_size", "read_timeout",
         "idle_timeout"});
    read_listener(otlp.get("grpc"), &out->grpc);
    read_listener(otlp.get("http"), &out->http);
    reader_.read_size(otlp, "max_request_size", &out->max_request_size, kKiB, kMaxRequestSizeLimit);
    read_receiver_limits(reader_, otlp, &out->limits);  // limits_section.cc
  }

  // "" (or an empty value) disables a listener; an omitted key keeps the default.
  void read_listen_endpoint(const Field* field, std::string* out) {
    const auto value = reader_.text(field, kHostPortExpected, Empty::kAllowed);
    if (!value) return;
    if (!value->empty()) {
      auto parsed = parse_host_port(*value, EndpointRole::kListen);
      if (!parsed.ok()) return reader_.fail(*field, parsed.error().message);
    }
    *out = *value;
  }

  void read_listener(const Field* field, ListenerConfig* out) {
    const Section listener = reader_.open_map(
        field, {"endpoint", "unix_socket", "unix_socket_mode", "socket_mode", "socket_group",
                "allowed_uids", "allowed_gids", "allowed_cidrs", "tls"});
    read_listen_endpoint(listener.get("endpoint"), &out->endpoint);
    read_listener_tls(reader_, listener.get("tls"),
                      field != nullptr && field->path == "receivers.otlp.grpc", &out->tls);

    const Field* socket = listener.get("unix_socket");
    if (const auto value = reader_.text(socket, "a path", Empty::kAllowed)) {
      if (value->size() > kMaxUnixSocketPath) {
        return reader_.fail(*socket, "expected a path of at most " +
                                         std::to_string(kMaxUnixSocketPath) +
                                         " bytes (the limit of a Unix socket address), got " +
                                         std::to_string(value->size()) + " bytes");
      }
      if (value->find('\0') != std::string::npos) {
        return reader_.fail(*socket, "the path contains a NUL byte");
      }
      out->unix_socket = *value;  // "" disables the Unix listener
    }

    read_listener_access(reader_, listener, out);  // limits_section.cc
  }

  void read_batch(const Field* field, BatchConfig* out) {
    const Section batch = reader_.open_map(field, {"max_spans", "max_bytes", "timeout"});
    reader_.read_integer(batch, "max_spans", &out->max_spans, 1, 1'000'000);
    reader_.read_size(batch, "max_bytes", &out->max_bytes, kKiB, kNoMaximum);
    reader_.read_duration(batch, "timeout", &out->timeout, Duration(1));
    if (const Field* max_bytes = batch.get("max_bytes")) batch_max_bytes_ = *max_bytes;
  }

  // No exporter section: the OTEL_EXPORTER_OTLP_* variables, if any, else
  // the default file exporter. Errors have no line: they are not in the file.
  void read_exporter_from_environment(Config* config) {
    if (reader_.failed()) return;
    auto from_environment = exporter_from_environment(environment_);
    if (!from_environment.ok()) {
      return reader_.fail_at(YAML::Mark::null_mark(), from_environment.error().message);
    }
    if (!from_environment.value()) return;
    config->exporter = std::move(from_environment.value()->exporter);
    config->source += " (exporter from " + from_environment.value()->endpoint_variable + ")";
  }

  void read_exporter(const Field* field, ExporterConfig* out) {
    const Section exporter =
        reader_.open_map(field, {"type", "endpoint", "compression", "timeout", "headers", "path",
                                 "max_in_flight", "retry", "queue", "endpoints", "resolver",
                                 "routing_key", "ejection", "tls", "auth"});
    if (reader_.failed()) return;
    const Field* type = exporter.get("type");
    if (type == nullptr) {
      return reader_.fail_at(field->key_mark,
                             "exporter.type: required when the exporter section is present (" +
                                 exporter_type_names() + ")");
    }
    reader_.read_choice(exporter, "type", kExporterTypes, &out->type);
    if (reader_.failed()) return;
    if (has_load_balanced_destination(exporter)) {
      read_load_balanced_destination(reader_, exporter, *type, out);
    } else {
      read_destination(exporter, *type, out);
    }
    read_load_balancing_options(reader_, exporter, out);
    read_exporter_transport_security(reader_, exporter, out);

    reader_.read_choice(exporter, "compression", kCompressions, &out->compression);
    const Field* compression = exporter.get("compression");
    if (!reader_.failed() && compression != nullptr && out->type == ExporterType::kOtlpGrpc &&
        out->compression == Compression::kZstd) {
      return reader_.fail(*compression,
                          "zstd is not available for otlp_grpc (gRPC C++ compresses with gzip or "
                          "deflate only); use gzip or none");
    }
    reader_.read_duration(exporter, "timeout", &out->timeout, Duration(1));
    read_headers(exporter.get("headers"), &out->headers);
    reader_.read_integer(exporter, "max_in_flight", &out->max_in_flight, 1, 256);
    read_retry(exporter.get("retry"), &out->retry);

    const Section queue = reader_.open_map(exporter.get("queue"), {"memory_limit", "spool"});
    reader_.read_size(queue, "memory_limit", &out->queue.memory_limit, kKiB, kNoMaximum);
    if (const Field* limit = queue.get("memory_limit")) queue_memory_limit_ = *limit;
    read_spool(queue.get("spool"), &out->queue.spool);
  }

  // Absent: memory queue only. Present: `dir` says where batches go to disk.
  void read_spool(const Field* field, SpoolConfig* out) {
    if (field == nullptr) return;
    const Section spool =
        reader_.open_map(field, {"dir", "max_size", "fsync", "fsync_interval", "when_full"});
    if (reader_.failed()) return;
    const Field* dir = spool.get("dir");
    if (dir == nullptr) {
      return reader_.fail_at(field->key_mark,
                             "exporter.queue.spool.dir: required when exporter.queue.spool is "
                             "present (the spool directory)");
    }
    const auto path = reader_.text(dir, "a directory path", Empty::kRejected);
    if (!path) return;
    if (path->find('\0') != std::string::npos) {
      return reader_.fail(*dir, "the path contains a NUL byte");
    }
    out->dir = *path;
    reader_.read_size(spool, "max_size", &out->max_size, kMiB, kNoMaximum);
    reader_.read_choice(spool, "fsync", kFsyncPolicies, &out->fsync);
    // Only used with fsync: interval, but accepted with the others so that
    // switching fsync is a one-line change.
    reader_.read_duration(spool, "fsync_interval", &out->fsync_interval, Duration(1));
    reader_.read_choice(spool, "when_full", kWhenFull, &out->when_full);
  }

  // endpoint for the OTLP exporters, path for the file exporter. The key the
  // type does not use is ignored (like compression for file), so switching
  // type is a one-line change.
  void read_destination(const Section& exporter, const Field& type, ExporterConfig* out) {
    const bool is_file = out->type == ExporterType::kFile;
    const Field* destination = exporter.get(is_file ? "path" : "endpoint");
    (void)reader_.text(exporter.get(is_file ? "endpoint" : "path"), "text", Empty::kAllowed);
    const auto value =
        reader_.text(destination, is_file ? "a file path" : "an endpoint", Empty::kAllowed);
    if (reader_.failed()) return;
    if (!value || value->empty()) {
      const Field& where = destination != nullptr ? *destination : type;
      return reader_.fail_at(YamlReader::mark_of(where),
                             std::string(is_file ? "exporter.path" : "exporter.endpoint") +
                                 ": required when exporter.type is " + type.value.Scalar());
    }
    if (is_file) {
      out->path = *value;
      return;
    }
    auto normalized = out->type == ExporterType::kOtlpGrpc ? normalize_grpc_target(*value)
                                                           : normalize_http_base_url(*value);
    if (!normalized.ok()) return reader_.fail(*destination, normalized.error().message);
    out->endpoint = std::move(normalized).value();
  }

  void read_headers(const Field* field, std::map<std::string, std::string>* out) {
    const Section headers = reader_.open_map(field, {});
    for (const auto& [name, header] : headers.fields()) {
      if (reader_.failed()) return;
      if (!is_valid_header_name(name)) {
        return reader_.fail_at(header.key_mark, "exporter.headers: " + quoted(name) +
                                                    " is not a valid header name (" +
                                                    std::string(kHeaderNameRule) + ")");
      }
      // Values are never echoed in errors: they are often credentials.
      if (header.value.IsNull()) return reader_.fail(header, "the header value is missing");
      if (!header.value.IsScalar()) {
        return reader_.fail(header,
                            "expected a header value as text, got " + kind_of(header.value));
      }
      if (!is_valid_header_value(header.value.Scalar())) {
        return reader_.fail(header, kHeaderValueRule);
      }
      const std::string lower = lower_case_header_name(name);
      if (!out->emplace(lower, header.value.Scalar()).second) {
        return reader_.fail_at(header.key_mark, "exporter.headers: duplicate header " +
                                                    quoted(lower) +
                                                    " (header names are case-insensitive)");
      }
    }
  }

  void read_retry(const Field* field, RetryConfig* out) {
    const Section retry =
        reader_.open_map(field, {"enabled", "initial_interval", "max_interval", "max_elapsed"});
    reader_.read_bool(retry, "enabled", &out->enabled);
    reader_.read_duration(retry, "initial_interval", &out->initial_interval, Duration(1));
    reader_.read_duration(retry, "max_interval", &out->max_interval, Duration(1));
    // 0 = retry forever.
    reader_.read_duration(retry, "max_elapsed", &out->max_elapsed, Duration(0));
    if (reader_.failed() || out->max_interval >= out->initial_interval) return;
    // Blame the key the user wrote: max_interval if given, else initial_interval.
    if (const Field* max_interval = retry.get("max_interval")) {
      return reader_.fail(*max_interval, "must be at least initial_interval (" +
                                             format_duration(out->initial_interval) + "), got " +
                                             quoted(max_interval->value.Scalar()));
    }
    const Field* initial_interval = retry.get("initial_interval");
    reader_.fail(*initial_interval, "must be at most max_interval (" +
                                        format_duration(out->max_interval) + "), got " +
                                        quoted(initial_interval->value.Scalar()));
  }

  void read_telemetry(const Field* field, TelemetryConfig* out) {
    const Section telemetry = reader_.open_map(field, {"metrics", "log"});
    const Section metrics = reader_.open_map(telemetry.get("metrics"), {"endpoint"});
    read_listen_endpoint(metrics.get("endpoint"), &out->metrics_endpoint);
    const Section log = reader_.open_map(telemetry.get("log"), {"level", "format"});
    reader_.read_choice(log, "level", kLogLevels, &out->log_level);
    reader_.read_choice(log, "format", kLogFormats, &out->log_format);
  }

  void read_service(const Field* field, ServiceConfig* out) {
    const Section service = reader_.open_map(field, {"shutdown_timeout"});
    reader_.read_duration(service, "shutdown_timeout", &out->shutdown_timeout, Duration(1));
  }

  // A batch bigger than the whole queue could never be queued for export.
  void check_queue_fits_a_batch(const Config& config) {
    const std::uint64_t batch_bytes = config.batch.max_bytes;
    const std::uint64_t queue_bytes = config.exporter.queue.memory_limit;
    if (reader_.failed() || batch_bytes <= queue_bytes) return;
    // With both defaults the rule holds, so at least one of the two was written.
    if (queue_memory_limit_) {
      return reader_.fail(*queue_memory_limit_, "expected at least batch.max_bytes (" +
                                                    format_size(batch_bytes) +
                                                    ") so that a batch fits, got " +
                                                    quoted(queue_memory_limit_->value.Scalar()));
    }
    reader_.fail(*batch_max_bytes_, "expected at most exporter.queue.memory_limit (" +
                                        format_size(queue_bytes) + ") so that a batch fits, got " +
                                        quoted(batch_max_bytes_->value.Scalar()));
  }

  std::string source_;
  const EnvironmentLookup& environment_;
  YamlReader reader_;
  // Kept for the one rule that spans two sections.
  std::optional<Field> batch_max_bytes_;
  std::optional<Field> queue_memory_limit_;
};

using spanrelay::FileDescriptor;

Error cannot_read(const std::string& path, int error_number) {
  return Error{"cannot read config file " + path + ": " +
               std::generic_category().message(error_number)};
}

}  // namespace

Result<Config> load_config_file(const std::string& path, const EnvironmentLookup& environment) {
  const FileDescriptor file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (file.get() < 0) return cannot_read(path, errno);
  std::string contents;
  const auto read = read_all(file.get(), kMaxConfigFileBytes, contents);
  if (read.status == ReadAllResult::Status::kError) return cannot_read(path, read.error_number);
  if (read.status == ReadAllResult::Status::kTooLarge) {
    return Error{"cannot read config file " + path + ": larger than " +
                 format_size(kMaxConfigFileBytes)};
  }
  return Loader(path, environment).load(contents);
}

Result<Config> load_config_string(std::string_view yaml, const std::string& source_name,
                                  const EnvironmentLookup& environment) {
  return Loader(source_name, environment).load(yaml);
}

}  // namespace spanrelay::config
