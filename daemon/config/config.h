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

enum class FsyncPolicy { kAlways, kInterval, kNever };
enum class WhenFull { kDropOldest, kRefuseNew };

struct SpoolConfig {
  std::string dir;  // empty = no spool (memory queue only)
  std::uint64_t max_size = 1ull << 30;
  FsyncPolicy fsync = FsyncPolicy::kInterval;
  Duration fsync_interval = std::chrono::milliseconds(200);
  WhenFull when_full = WhenFull::kDropOldest;
};

struct QueueConfig {
  std::uint64_t memory_limit = 64ull << 20;  // bytes of batches waiting for the upstream
  SpoolConfig spool;
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

// Tail sampling (issue: tail sampling with error-keep). Policies are
// evaluated per trace when its decision_wait ends (or earlier under memory
// pressure, or at once for an error span with decide_early).
enum class PolicyType { kDrop, kStatusCode, kLatency, kAttribute, kRatio, kRateLimit, kAlways };
enum class LatencyScope { kAnySpan, kRoot };

struct SamplingPolicyConfig {
  std::string name;  // unique; the `policy` label of spanrelay_sampling_traces_total
  PolicyType type = PolicyType::kAlways;
  // status_code: which span status codes match ("ERROR", "OK", "UNSET"); default [ERROR].
  std::vector<std::string> status_codes;
  bool decide_early = true;  // status_code: keep at once when a matching span arrives
  // latency
  Duration threshold{0};
  LatencyScope scope = LatencyScope::kAnySpan;
  // attribute / drop: span or resource attribute `key` equals one of `values`
  // (string, int, bool and double values compare by their text form) or
  // matches `regex` (RE2 syntax, whole-value match: linear time on
  // hostile values, unlike std::regex).
  std::string key;
  std::vector<std::string> values;
  std::string regex;
  // ratio: keep when the trace id's last 8 bytes (big-endian) < ratio * 2^64.
  double ratio = 0;
  // rate_limit: token bucket of traces per second (burst = one second's worth).
  double traces_per_second = 0;
};

struct SamplingConfig {
  bool enabled = false;  // false: no sampling section = pass-through
  Duration decision_wait = std::chrono::seconds(5);
  std::uint64_t max_traces = 100000;
  std::uint64_t max_buffered_bytes = 256ull << 20;
  std::uint64_t decision_cache_size = 100000;
  std::uint32_t shards = 0;  // 0 = one per core
  std::vector<SamplingPolicyConfig> policies;
};

struct TelemetryConfig {
  std::string metrics_endpoint = "127.0.0.1:8888";  // empty = no metrics listener
  std::string log_level = "info";                     // trace|debug|info|warn|error|off
  std::string log_format = "text";  // text | json (one object per line)
};

struct ServiceConfig {
  Duration shutdown_timeout = std::chrono::seconds(10);
};

struct Config {
  std::string source;  // the file it was loaded from ("<defaults>" when none)
  ReceiversConfig receivers;
  SamplingConfig sampling;
  BatchConfig batch;
  ExporterConfig exporter;
  TelemetryConfig telemetry;
  ServiceConfig service;
};

}  // namespace spanrelay::config
