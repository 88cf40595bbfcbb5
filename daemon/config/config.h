#pragma once
// The validated configuration of spanrelayd. The YAML shape (key names) is a
// user-facing contract: see config/spanrelay.yaml and README.md.
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace spanrelay::config {

using Duration = std::chrono::milliseconds;

struct ListenerConfig {
  std::string endpoint;     // "host:port"; empty = TCP listener disabled
  std::string unix_socket;  // absolute path; empty = Unix listener disabled
  std::uint32_t unix_socket_mode = 0660;
};

struct ReceiversConfig {
  ListenerConfig grpc{"127.0.0.1:4317", "", 0660};
  ListenerConfig http{"127.0.0.1:4318", "", 0660};
  std::uint64_t max_request_size = 4ull << 20;  // bytes, before and after decompression
};

struct BatchConfig {
  std::uint32_t max_spans = 1024;
  std::uint64_t max_bytes = 1ull << 20;
  Duration timeout = std::chrono::seconds(2);
};

enum class ExporterType { kOtlpGrpc, kOtlpHttp, kFile };
enum class Compression { kNone, kGzip, kZstd };

struct RetryConfig {
  bool enabled = true;
  Duration initial_interval = std::chrono::seconds(1);
  Duration max_interval = std::chrono::seconds(30);
  Duration max_elapsed = std::chrono::minutes(5);  // 0 = retry forever
};

struct QueueConfig {
  std::uint64_t memory_limit = 64ull << 20;  // bytes of batches waiting for the upstream
};

struct ExporterConfig {
  ExporterType type = ExporterType::kFile;
  std::string endpoint;  // otlp_grpc: host:port; otlp_http: http://host:port (/v1/traces appended)
  Compression compression = Compression::kGzip;
  Duration timeout = std::chrono::seconds(10);
  std::map<std::string, std::string> headers;
  std::string path = "./var/spans.jsonl";  // file exporter only
  std::uint32_t max_in_flight = 4;           // concurrent export requests
  RetryConfig retry;
  QueueConfig queue;
};

struct TelemetryConfig {
  std::string metrics_endpoint = "127.0.0.1:8888";  // empty = no metrics listener
  std::string log_level = "info";                     // trace|debug|info|warn|error|off
};

struct ServiceConfig {
  Duration shutdown_timeout = std::chrono::seconds(10);
};

struct Config {
  std::string source;  // the file it was loaded from ("<defaults>" when none)
  ReceiversConfig receivers;
  BatchConfig batch;
  ExporterConfig exporter;
  TelemetryConfig telemetry;
  ServiceConfig service;
};

}  // namespace spanrelay::config
