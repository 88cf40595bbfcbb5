#pragma once
// End-to-end test harness: real spanrelayd and spanrelay-testsink processes,
// real gRPC and HTTP clients over loopback TCP and Unix sockets. Waiting is
// always for a condition (a file appears, a count is reached, a process
// exits), bounded by a generous limit that only a broken build hits.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace spanrelay::e2e {

using ExportRequest = opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;
using namespace std::chrono_literals;

// A fresh directory under /tmp with a short path (Unix socket paths are
// limited to 107 bytes); removed with its contents at the end of the test.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Polls `condition` until it holds or `limit` passes; returns whether it held.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds limit = 60s);

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& text);

// A child process with stdout+stderr captured to a log file. The destructor
// kills it (SIGKILL) if it is still running.
class Process {
 public:
  Process(const std::string& program, const std::vector<std::string>& args,
          const std::string& log_path);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int signal_number);
  // Waits for exit; returns the exit code (128+N for a signal), nullopt on timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds limit = 60s);
  std::string log() const;

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::string log_path_;
};

// The test sink: an OTLP upstream stand-in recording every span it received.
struct SinkSpan {
  std::string trace_id, span_id, parent_span_id, name, digest, transport;
  int status = 0;
};
class Sink {
 public:
  Sink(const TempDir& dir, const std::vector<std::string>& extra_args = {},
       const std::string& name = "sink");
  std::string grpc_address() const { return grpc_; }
  std::string http_address() const { return http_; }
  std::vector<SinkSpan> spans() const;
  std::size_t span_count() const;
  // Waits until at least n spans arrived.
  bool wait_for_spans(std::size_t n, std::chrono::milliseconds limit = 60s) const;
  Process& process() { return *process_; }
  std::string requests_log() const { return read_file(requests_path_); }

 private:
  std::string out_path_, requests_path_, grpc_, http_;
  std::unique_ptr<Process> process_;
};

// spanrelayd started on a YAML config written into the temp dir.
class Daemon {
 public:
  Daemon(const TempDir& dir, const std::string& yaml, const std::string& name = "relay");
  ~Daemon();
  // Listener addresses from the ready file ("127.0.0.1:PORT" or "unix:/path").
  std::vector<std::string> addresses(const std::string& listener) const;
  std::string tcp_address(const std::string& listener) const;
  std::string metrics_text() const;
  // A counter/gauge value from /metrics ("name{label=\"x\"}" exactly as rendered), 0 if absent.
  double metric(const std::string& series) const;
  Process& process() { return *process_; }
  // SIGTERM and wait; returns the exit code.
  std::optional<int> stop();

 private:
  std::string ready_path_;
  std::map<std::string, std::vector<std::string>> addresses_;
  std::unique_ptr<Process> process_;
};

// --- requests -------------------------------------------------------------
struct GeneratedSpan {
  std::string trace_id_hex, span_id_hex, digest;
};
struct RequestOptions {
  int resources = 2, scopes_per_resource = 2, spans_per_scope = 5;
  bool unknown_fields = true;  // carry unknown fields in spans, scopes and resources
  std::uint64_t seed = 1;
  int error_every = 0;  // every Nth span gets status ERROR (0 = none)
};
// A varied ExportTraceServiceRequest (attributes of every kind, events, links,
// unknown fields) and the spans the sink must report for it.
ExportRequest make_request(const RequestOptions& options, std::vector<GeneratedSpan>* spans);
// Serialized request bytes: libprotobuf serialization plus unknown fields.
std::string serialize(const ExportRequest& request);
std::string span_digest(const std::string& span_bytes);  // FNV-1a 64, 16 hex digits (as the sink)
std::string hex(const std::string& bytes);

// --- clients --------------------------------------------------------------
struct ClientResult {
  int status = 0;    // HTTP status, or gRPC status code
  std::string body;  // HTTP body or gRPC message
  std::map<std::string, std::string> headers;
  std::string details;  // gRPC error details (serialized google.rpc.Status)
};
// `target`: "127.0.0.1:PORT" or "unix:/path".
ClientResult grpc_export(const std::string& target, const std::string& request_bytes,
                         bool gzip = false);
ClientResult http_request(const std::string& target, const std::string& method,
                          const std::string& path, const std::string& body,
                          const std::map<std::string, std::string>& headers);
ClientResult http_export(const std::string& target, const std::string& body,
                         const std::string& content_type = "application/x-protobuf",
                         const std::string& content_encoding = "");

}  // namespace spanrelay::e2e
