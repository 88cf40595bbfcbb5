#pragma once
// The transport-independent heart of the test sink: numbers requests across
// transports, decides which ones get the injected fault, parses accepted ones
// with libprotobuf (deliberately not with the daemon's wire scanner, so that a
// decoding bug in the daemon cannot hide itself in the tests), and appends
// JSON lines that tests poll while the sink runs.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "daemon/common/result.h"
#include "tests/testsink/sink_options.h"

namespace spanrelay::testsink {

enum class Transport { kGrpc, kHttp };

struct RequestVerdict {
  enum class Kind {
    kAccepted,   // 200 / OK, possibly with partial_success
    kFaulted,    // the injected fault status (spans not recorded)
    kMalformed,  // 400 / INVALID_ARGUMENT
  };
  Kind kind = Kind::kAccepted;
  std::uint64_t request_number = 0;
  std::int64_t rejected_spans = 0;  // partial success, when kAccepted
  std::string message;              // why, when kMalformed
};

struct SinkStats {
  std::uint64_t requests = 0;  // every request that reached /v1/traces or Export
  std::uint64_t accepted_requests = 0;
  std::uint64_t spans = 0;  // spans of accepted requests
};

// Appends whole lines to a file with one write(2) per batch, so a reader
// polling the file never sees half a request's lines interleaved with another.
class LineFile {
 public:
  static Result<std::unique_ptr<LineFile>> open_append(const std::string& path);
  ~LineFile();
  LineFile(const LineFile&) = delete;
  LineFile& operator=(const LineFile&) = delete;
  void append(std::string_view lines);

 private:
  explicit LineFile(int fd) : fd_(fd) {}
  int fd_;
  std::mutex mutex_;
};

class SpanRecorder {
 public:
  static Result<std::unique_ptr<SpanRecorder>> open(const SinkOptions& options);

  // `body` is the decompressed protobuf ExportTraceServiceRequest;
  // `authorization` the request's authorization header ("" = none), listed
  // in --requests-out so that tests can check the credentials sent.
  RequestVerdict handle(Transport transport, std::string_view body, std::string_view encoding,
                        std::string_view authorization = {});

  // A request refused before its body could be decoded (unknown
  // Content-Encoding, corrupt compression, too large): numbered and listed in
  // --requests-out with `result_label`, never faulted.
  std::uint64_t record_refused(Transport transport, std::string_view encoding,
                               std::string_view result_label);

  SinkStats stats() const;
  std::string stats_json() const;

  // The label --requests-out uses for a verdict on a transport.
  std::string result_label(Transport transport, const RequestVerdict& verdict) const;

  const SinkOptions& options() const { return options_; }
  std::int64_t elapsed_ms() const;

 private:
  explicit SpanRecorder(const SinkOptions& options);
  void write_request_line(Transport transport, std::uint64_t request, std::size_t spans,
                          std::string_view result, std::string_view encoding, std::int64_t t_ms,
                          std::string_view authorization = {});

  SinkOptions options_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::unique_ptr<LineFile> spans_out_;
  std::unique_ptr<LineFile> requests_out_;
  std::atomic<std::uint64_t> requests_{0};
  std::atomic<std::uint64_t> well_formed_{0};  // the --fail-first counter
  std::atomic<std::uint64_t> accepted_requests_{0};
  std::atomic<std::uint64_t> spans_{0};
};

// FNV-1a 64-bit, the digest tests compare against what the sender serialized.
std::uint64_t fnv1a64(std::string_view bytes);

std::string hex_encode(std::string_view bytes);
// Appends `text` as a JSON string literal (with quotes).
void append_json_string(std::string& out, std::string_view text);

}  // namespace spanrelay::testsink
