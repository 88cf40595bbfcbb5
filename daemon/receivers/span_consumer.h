#pragma once
// The contract between receivers and the rest of the pipeline. A receiver
// hands over a scanned request by rvalue: once consume() returns, the request
// belongs to the pipeline (accepted) or is gone (refused), never both.
#include <chrono>
#include <string>

#include "daemon/otlp/span_view.h"

namespace spanrelay::receivers {

struct Admission {
  bool accepted = true;
  // When refused: the reason label ("memory_limit", "shutting_down") and the
  // back-off to suggest to the SDK (RetryInfo / Retry-After).
  std::string reason;
  std::chrono::seconds retry_after{1};
};

class SpanConsumer {
 public:
  virtual ~SpanConsumer() = default;
  // Must not block on the network or the upstream: admission is a memory
  // decision taken in microseconds.
  virtual Admission consume(otlp::ScannedRequest&& request) = 0;
};

}  // namespace spanrelay::receivers
