#pragma once
// One client per worker thread, each on its own connection: OTLP/gRPC (unary,
// blocking) or OTLP/HTTP (Boost.Beast, blocking, keep-alive) over TCP or a
// Unix socket.
#include <chrono>
#include <memory>
#include <string>

#include "bench/loadgen/loadgen_options.h"
#include "bench/loadgen/request_pool.h"

namespace spanrelay::loadgen {

struct SendOutcome {
  enum class Category {
    kOk,       // acked: OK / 200
    kRefused,  // explicit back-pressure the SDK would retry: RESOURCE_EXHAUSTED, 429, 503
    kError,    // anything else, including transport failures
  };
  Category category = Category::kOk;
  std::string code;  // "OK", "UNAVAILABLE", "200", "429", "io: connection refused", ...
};

class Client {
 public:
  virtual ~Client() = default;
  // Sends one request and waits for its ack, giving up at `deadline`.
  virtual SendOutcome send(const PreparedRequest& request,
                           std::chrono::steady_clock::time_point deadline) = 0;
  // From another thread: unblocks a send() stuck on a dead peer.
  virtual void abort() = 0;
};

std::unique_ptr<Client> make_client(const LoadgenOptions& options);

}  // namespace spanrelay::loadgen
