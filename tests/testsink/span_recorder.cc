#include "tests/testsink/span_recorder.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "daemon/otlp/json_text.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace spanrelay::testsink {

namespace otlp_collector = opentelemetry::proto::collector::trace::v1;

std::uint64_t fnv1a64(std::string_view bytes) {
  std::uint64_t hash = 14695981039346656037ull;
  for (const char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ull;
  }
  return hash;
}

std::string hex_encode(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    out.push_back(kDigits[byte >> 4]);
    out.push_back(kDigits[byte & 0xf]);
  }
  return out;
}

// The daemon's JSON string writer: one escaping rule for every JSON we write.
void append_json_string(std::string& out, std::string_view text) {
  otlp::json_text::append_json_string(out, text);
}

Result<std::unique_ptr<LineFile>> LineFile::open_append(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return Error{"cannot open " + path + ": " + std::strerror(errno)};
  return std::unique_ptr<LineFile>(new LineFile(fd));
}

LineFile::~LineFile() { ::close(fd_); }

void LineFile::append(std::string_view lines) {
  std::lock_guard lock(mutex_);
  while (!lines.empty()) {
    const ssize_t written = ::write(fd_, lines.data(), lines.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return;  // a full disk in a test sink: nothing sensible left to do
    }
    lines.remove_prefix(static_cast<std::size_t>(written));
  }
}

SpanRecorder::SpanRecorder(const SinkOptions& options) : options_(options) {}

Result<std::unique_ptr<SpanRecorder>> SpanRecorder::open(const SinkOptions& options) {
  std::unique_ptr<SpanRecorder> recorder(new SpanRecorder(options));
  if (options.spans_out && !options.count_only) {
    auto file = LineFile::open_append(*options.spans_out);
    if (!file) return file.error();
    recorder->spans_out_ = std::move(file.value());
  }
  if (options.requests_out) {
    auto file = LineFile::open_append(*options.requests_out);
    if (!file) return file.error();
    recorder->requests_out_ = std::move(file.value());
  }
  return recorder;
}

std::int64_t SpanRecorder::elapsed_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start_)
      .count();
}

std::string SpanRecorder::result_label(Transport transport, const RequestVerdict& verdict) const {
  switch (verdict.kind) {
    case RequestVerdict::Kind::kAccepted:
      return "ok";
    case RequestVerdict::Kind::kMalformed:
      return transport == Transport::kHttp ? "400" : "INVALID_ARGUMENT";
    case RequestVerdict::Kind::kFaulted:
      return transport == Transport::kHttp ? std::to_string(options_.fault.http_status)
                                           : grpc_code_name(options_.fault.grpc_code);
  }
  return "?";
}

namespace {

std::string_view transport_name(Transport transport) {
  return transport == Transport::kHttp ? "http" : "grpc";
}

std::size_t count_spans(const otlp_collector::ExportTraceServiceRequest& request) {
  std::size_t spans = 0;
  for (const auto& resource_spans : request.resource_spans()) {
    for (const auto& scope_spans : resource_spans.scope_spans()) {
      spans += static_cast<std::size_t>(scope_spans.spans_size());
    }
  }
  return spans;
}

void append_span_lines(std::string& out, const otlp_collector::ExportTraceServiceRequest& request,
                       std::string_view transport, std::uint64_t request_number,
                       std::int64_t t_ms) {
  std::string serialized;
  for (const auto& resource_spans : request.resource_spans()) {
    for (const auto& scope_spans : resource_spans.scope_spans()) {
      for (const auto& span : scope_spans.spans()) {
        serialized.clear();
        span.SerializeToString(&serialized);
        out += "{\"trace_id\":\"" + hex_encode(span.trace_id()) + "\",\"span_id\":\"" +
               hex_encode(span.span_id()) + "\",\"parent_span_id\":\"" +
               hex_encode(span.parent_span_id()) + "\",\"name\":";
        append_json_string(out, span.name());
        char digest[17];
        std::snprintf(digest, sizeof digest, "%016llx",
                      static_cast<unsigned long long>(fnv1a64(serialized)));
        out += ",\"status\":" + std::to_string(static_cast<int>(span.status().code())) +
               ",\"digest\":\"" + digest + "\",\"transport\":\"" + std::string(transport) +
               "\",\"request\":" + std::to_string(request_number) +
               ",\"t_ms\":" + std::to_string(t_ms) + "}\n";
      }
    }
  }
}

}  // namespace

void SpanRecorder::write_request_line(Transport transport, std::uint64_t request, std::size_t spans,
                                      std::string_view result, std::string_view encoding,
                                      std::int64_t t_ms, std::string_view authorization) {
  if (!requests_out_) return;
  std::string line = "{\"request\":" + std::to_string(request) + ",\"transport\":\"" +
                     std::string(transport_name(transport)) +
                     "\",\"spans\":" + std::to_string(spans) + ",\"result\":";
  append_json_string(line, result);
  line += ",\"t_ms\":" + std::to_string(t_ms) + ",\"encoding\":";
  append_json_string(line, encoding);
  if (!authorization.empty()) {
    line += ",\"authorization\":";
    append_json_string(line, authorization);
  }
  line += "}\n";
  requests_out_->append(line);
}

RequestVerdict SpanRecorder::handle(Transport transport, std::string_view body,
                                    std::string_view encoding, std::string_view authorization) {
  otlp_collector::ExportTraceServiceRequest request;
  const bool parsed = request.ParseFromArray(body.data(), static_cast<int>(body.size()));
  RequestVerdict verdict;
  verdict.request_number = ++requests_;
  const std::int64_t t_ms = elapsed_ms();
  std::size_t spans = 0;
  if (!parsed) {
    verdict.kind = RequestVerdict::Kind::kMalformed;
    verdict.message = "request body is not a valid ExportTraceServiceRequest";
  } else {
    spans = count_spans(request);
    // Only well-formed requests use up --fail-first, so a test's fault budget
    // is not spent by a request that would be refused anyway.
    if (++well_formed_ <= options_.fail_first) {
      verdict.kind = RequestVerdict::Kind::kFaulted;
    } else {
      verdict.kind = RequestVerdict::Kind::kAccepted;
      verdict.rejected_spans = options_.partial_reject;
    }
  }
  // The request's line is written before its spans: a test that has seen the
  // spans arrive may read the request (its encoding, its authorization)
  // without waiting again.
  write_request_line(transport, verdict.request_number, spans, result_label(transport, verdict),
                     encoding, t_ms, authorization);
  if (verdict.kind == RequestVerdict::Kind::kAccepted) {
    if (spans_out_) {
      std::string lines;
      append_span_lines(lines, request, transport_name(transport), verdict.request_number, t_ms);
      spans_out_->append(lines);
    }
    spans_ += spans;
    ++accepted_requests_;
  }
  return verdict;
}

std::uint64_t SpanRecorder::record_refused(Transport transport, std::string_view encoding,
                                           std::string_view result_label) {
  const std::uint64_t request_number = ++requests_;
  write_request_line(transport, request_number, 0, result_label, encoding, elapsed_ms());
  return request_number;
}

SinkStats SpanRecorder::stats() const {
  return SinkStats{requests_.load(), accepted_requests_.load(), spans_.load()};
}

std::string SpanRecorder::stats_json() const {
  const SinkStats s = stats();
  return "{\"requests\":" + std::to_string(s.requests) +
         ",\"accepted_requests\":" + std::to_string(s.accepted_requests) +
         ",\"spans\":" + std::to_string(s.spans) + "}";
}

}  // namespace spanrelay::testsink
