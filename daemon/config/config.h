#pragma once
// The validated configuration of spanrelayd. The YAML shape (key names) is a
// user-facing contract: see config/spanrelay.yaml and README.md.
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace spanrelay::config {

using Duration = std::chrono::milliseconds;

// TLS versions a peer may negotiate at the least (min_version "1.2" | "1.3").
enum class TlsVersion { kTls12, kTls13 };

// receivers.otlp.{grpc,http}.tls: TLS on the TCP listener (not the Unix
// socket). client_ca_file set = every client must present a certificate
// signed by it (mTLS).
struct ServerTlsConfig {
  bool enabled = false;  // the tls section is present
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;  // empty = no client certificate asked for
  TlsVersion min_version = TlsVersion::kTls12;
};

// exporter.tls: TLS to the upstream. Enabled for otlp_http by an https://
// endpoint, for otlp_grpc by the tls section (unless insecure: true).
struct ClientTlsConfig {
  bool enabled = false;
  bool insecure = false;  // as written: true = plaintext
  std::string ca_file;    // empty = the system's trust store
  std::string cert_file;  // client certificate (mTLS), with key_file
  std::string key_file;
  std::string server_name;  // empty = the endpoint's host (SNI and verification)
  TlsVersion min_version = TlsVersion::kTls12;
};

// exporter.auth: credentials read from files that may be rotated while running.
struct AuthConfig {
  std::string bearer_token_file;  // empty = none; sent as "authorization: Bearer <token>"
};

struct ListenerConfig {
  std::string endpoint;                   // "host:port"; empty = TCP listener disabled
  std::string unix_socket;                // absolute path; empty = Unix listener disabled
  std::uint32_t unix_socket_mode = 0660;  // YAML: socket_mode (alias unix_socket_mode)
  // Socket access (issue 7). socket_group: the Unix socket file's group, by
  // name or gid ("" = leave it). allowed_uids / allowed_gids: the peer
  // credentials (SO_PEERCRED) a Unix connection must have; empty = anyone.
  // allowed_cidrs: the source addresses a TCP connection must come from.
  std::string socket_group;
  std::vector<std::uint32_t> allowed_uids;
  std::vector<std::uint32_t> allowed_gids;
  std::vector<std::string> allowed_cidrs{"127.0.0.0/8", "::1/128"};
  ServerTlsConfig tls;  // TCP listener only

  // A TCP listener on `endpoint` with every other setting at its default.
  static ListenerConfig on(std::string endpoint) {
    ListenerConfig listener;
    listener.endpoint = std::move(endpoint);
    return listener;
  }
};

// receivers.otlp.* limits (issue 7): each refusal is counted (see README,
// "Limits"). A value of 0 is never "unlimited" here: every limit is on.
struct ReceiverLimitsConfig {
  std::uint32_t max_decompression_ratio = 100;  // inflated bytes per byte sent
  std::uint32_t max_spans_per_request = 100000;
  std::uint32_t max_attributes_per_span = 1024;
  std::uint64_t max_attribute_value_length = 256ull << 10;  // bytes of one string/bytes value
  std::uint32_t max_anyvalue_depth = 16;                    // nesting of kvlist/array values
  std::uint32_t max_connections = 1024;        // per receiver (its TCP and Unix listeners together)
  std::uint32_t max_concurrent_streams = 100;  // per gRPC connection
  std::uint64_t max_header_size = 16ull << 10;        // HTTP request line + headers
  Duration read_timeout = std::chrono::seconds(30);   // per HTTP message; gRPC handshake
  Duration idle_timeout = std::chrono::seconds(120);  // idle keep-alive connection
  bool operator==(const ReceiverLimitsConfig&) const = default;
};

struct ReceiversConfig {
  ListenerConfig grpc = ListenerConfig::on("127.0.0.1:4317");
  ListenerConfig http = ListenerConfig::on("127.0.0.1:4318");
  std::uint64_t max_request_size = 4ull << 20;  // bytes, before and after decompression
  ReceiverLimitsConfig limits;                  // YAML: directly under receivers.otlp
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

// Load balancing to a gateway tier (exporter.endpoints or exporter.resolver):
// spans are routed by this key on a consistent-hash ring of the members.
enum class RoutingKey { kTraceId, kService };

// exporter.resolver.dns: the members are the A/AAAA records of `hostname`
// (e.g. a Kubernetes headless Service), re-resolved every `interval`.
struct DnsResolverConfig {
  std::string hostname;    // empty = no resolver
  std::uint16_t port = 0;  // set by the loader: given, or 4317 (otlp_grpc) / 4318 (otlp_http)
  Duration interval = std::chrono::seconds(5);
};

// exporter.ejection: a member whose export attempts fail this many times in a
// row leaves the ring for base_time, doubled at each ejection in a row up to
// max_time; its batches go to the members that now own their keys.
struct EjectionConfig {
  std::uint32_t consecutive_failures = 5;
  Duration base_time = std::chrono::seconds(30);
  Duration max_time = std::chrono::minutes(5);
};

struct ExporterConfig {
  ExporterType type = ExporterType::kFile;
  std::string endpoint;  // otlp_grpc: host:port; otlp_http: http://host:port (/v1/traces appended)
  Compression compression = Compression::kGzip;
  Duration timeout = std::chrono::seconds(10);
  std::map<std::string, std::string> headers;
  std::string path = "./var/spans.jsonl";  // file exporter only
  std::uint32_t max_in_flight = 4;         // concurrent export requests
  RetryConfig retry;
  QueueConfig queue;
  // Load balancing: `endpoints` (each normalized like `endpoint`) or a DNS
  // resolver replace `endpoint`; with neither, `endpoint` is the one upstream.
  std::vector<std::string> endpoints;
  DnsResolverConfig dns;
  RoutingKey routing_key = RoutingKey::kTraceId;
  EjectionConfig ejection;
  ClientTlsConfig tls;
  AuthConfig auth;
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
  std::string log_level = "info";                   // trace|debug|info|warn|error|off
  std::string log_format = "text";                  // text | json (one object per line)
};

struct ServiceConfig {
  Duration shutdown_timeout = std::chrono::seconds(10);
};

// Data hygiene (issue 7): `redaction:` rewrites span, span event, span link
// and resource attributes at ingest, before sampling and batching. Per
// attribute, in this order: allow-list (when set, any other key is deleted),
// delete, hash, mask. See README.md "Redaction".
struct MaskRuleConfig {
  // A built-in pattern ("card_number", "email", "pan_india", "aadhaar_like")
  // or, when empty, `regex` (RE2 syntax, matched anywhere in a string value).
  std::string pattern;
  std::string regex;
  // Literal for a built-in pattern; an RE2 rewrite string (\0..\9 name the
  // groups) for a regex.
  std::string replacement = "***";
  bool operator==(const MaskRuleConfig&) const = default;
};

struct RedactionConfig {
  bool enabled = false;  // the section is present
  std::vector<std::string> allow_keys;
  std::vector<std::string> allow_key_patterns;  // RE2, whole-key match
  std::vector<std::string> delete_keys;
  std::vector<std::string> delete_key_patterns;  // RE2, whole-key match
  std::vector<std::string> hash_keys;
  std::vector<std::string> hash_key_patterns;  // RE2, whole-key match
  std::string hash_salt;                       // required when hashing
  std::vector<MaskRuleConfig> mask;
  bool operator==(const RedactionConfig&) const = default;
};

// `resource:` enrichment: attributes every ResourceSpans gets, in file order.
// override=false inserts a key only where the resource lacks it; true
// replaces it too (upsert). Applied after redaction.
struct ResourceConfig {
  std::vector<std::pair<std::string, std::string>> attributes;
  bool override_existing = false;
  bool operator==(const ResourceConfig&) const = default;
};

struct Config {
  std::string source;  // the file it was loaded from ("<defaults>" when none)
  ReceiversConfig receivers;
  SamplingConfig sampling;
  BatchConfig batch;
  ExporterConfig exporter;
  TelemetryConfig telemetry;
  ServiceConfig service;
  RedactionConfig redaction;
  ResourceConfig resource;
};

}  // namespace spanrelay::config
