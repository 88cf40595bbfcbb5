#include "tests/testsink/answers.h"

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "spanrelay/rpc/status.pb.h"

namespace spanrelay::testsink {

std::string success_response_bytes(std::int64_t rejected_spans) {
  opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse response;
  if (rejected_spans > 0) {
    auto* partial = response.mutable_partial_success();
    partial->set_rejected_spans(rejected_spans);
    partial->set_error_message("rejected by testsink");
  }
  return response.SerializeAsString();
}

std::string rpc_status_bytes(int grpc_code, const std::string& message,
                             std::optional<std::chrono::nanoseconds> retry_after) {
  spanrelay::rpc::Status status;
  status.set_code(grpc_code);
  status.set_message(message);
  if (retry_after) {
    spanrelay::rpc::RetryInfo retry_info;
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(*retry_after);
    retry_info.mutable_retry_delay()->set_seconds(seconds.count());
    retry_info.mutable_retry_delay()->set_nanos(
        static_cast<std::int32_t>((*retry_after - seconds).count()));
    auto* detail = status.add_details();
    detail->set_type_url("type.googleapis.com/google.rpc.RetryInfo");
    detail->set_value(retry_info.SerializeAsString());
  }
  return status.SerializeAsString();
}

std::string retry_after_header_value(std::chrono::nanoseconds retry_after) {
  const auto whole = std::chrono::ceil<std::chrono::seconds>(retry_after);
  return std::to_string(whole.count());
}

void DelayedAnswers::schedule(std::chrono::milliseconds delay, std::function<void()> answer) {
  if (delay.count() <= 0) {
    answer();
    return;
  }
  auto timer = std::make_shared<boost::asio::steady_timer>(io_, delay);
  std::unique_lock lock(mutex_);
  if (cancelled_) {
    lock.unlock();
    answer();
    return;
  }
  pending_.insert(timer);
  lock.unlock();
  timer->async_wait([this, timer, answer = std::move(answer)](const boost::system::error_code&) {
    {
      std::lock_guard lock(mutex_);
      pending_.erase(timer);
    }
    answer();
  });
}

void DelayedAnswers::cancel_all() {
  std::lock_guard lock(mutex_);
  cancelled_ = true;
  for (const auto& timer : pending_) timer->cancel();
}

}  // namespace spanrelay::testsink
