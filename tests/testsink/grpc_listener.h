#pragma once
// OTLP/gRPC side of the sink: TraceService/Export as a raw (ByteBuffer)
// callback method, so that a body libprotobuf cannot parse is still counted
// and answered INVALID_ARGUMENT instead of gRPC's own INTERNAL.
#include <grpcpp/server.h>

#include <memory>
#include <string>

#include "daemon/common/result.h"
#include "tests/testsink/answers.h"
#include "tests/testsink/span_recorder.h"

namespace spanrelay::testsink {

class GrpcListener {
 public:
  // Binds `address` ("HOST:PORT", port 0 = ephemeral, or "unix:/path").
  static Result<std::unique_ptr<GrpcListener>> start(const std::string& address,
                                                     SpanRecorder& recorder,
                                                     DelayedAnswers& delays);
  ~GrpcListener();

  // "HOST:PORT" with the bound port, or the unix address as given.
  const std::string& bound_address() const { return bound_address_; }

  // Stops accepting and waits (bounded) for calls in flight.
  void shutdown();

  class Service;

 private:
  GrpcListener() = default;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string bound_address_;
  bool shut_down_ = false;
};

}  // namespace spanrelay::testsink
