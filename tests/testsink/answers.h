#pragma once
// What the sink answers, shared by both transports: the response bodies
// (ExportTraceServiceResponse, google.rpc.Status with RetryInfo) and the
// --delay-ms timer that holds an answer back.
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace spanrelay::testsink {

// Serialized ExportTraceServiceResponse; partial_success only when rejected > 0
// (OTLP: an empty partial_success means full success).
std::string success_response_bytes(std::int64_t rejected_spans);

// Serialized google.rpc.Status; with `retry_after` it carries one
// google.rpc.RetryInfo detail, the OTLP way of saying "retry after this delay".
std::string rpc_status_bytes(int grpc_code, const std::string& message,
                             std::optional<std::chrono::nanoseconds> retry_after);

// HTTP Retry-After takes whole seconds (RFC 9110 10.2.3), so it is rounded up.
std::string retry_after_header_value(std::chrono::nanoseconds retry_after);

// Runs answers after a delay on an io_context; cancel_all() (at shutdown)
// runs every pending one at once so no call is left unanswered.
class DelayedAnswers {
 public:
  explicit DelayedAnswers(boost::asio::io_context& io) : io_(io) {}
  // Runs `answer` after `delay` (right away, on the caller's thread, when zero).
  void schedule(std::chrono::milliseconds delay, std::function<void()> answer);
  void cancel_all();

 private:
  boost::asio::io_context& io_;
  std::mutex mutex_;
  bool cancelled_ = false;
  std::set<std::shared_ptr<boost::asio::steady_timer>> pending_;
};

}  // namespace spanrelay::testsink
