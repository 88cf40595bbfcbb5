#pragma once
// The Relay owns and wires the pipeline:
//   receivers (gRPC, HTTP; TCP and Unix) -> Ingest (decode, admission)
//   -> Batcher -> DeliveryQueue (retry) -> Exporter -> upstream
// plus the telemetry endpoint. Start order is back to front (nothing accepts a
// span before its path to the upstream exists); shutdown is front to back.
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/common/result.h"
#include "daemon/config/config.h"
#include "daemon/telemetry/metrics.h"

namespace spanrelay {

namespace exporters {
class Exporter;
}
namespace delivery {
class MemoryBudget;
class Spool;
class DeliveryQueue;
class LoadBalancer;
}  // namespace delivery
namespace batching {
class Batcher;
}
namespace sampling {
class Sampler;
}
namespace receivers {
class Ingest;
class OtlpGrpcReceiver;
class OtlpHttpReceiver;
class HttpServer;
}  // namespace receivers
namespace telemetry {
class TelemetryServer;
}
namespace service {
class SocketActivation;
}

class Relay {
 public:
  explicit Relay(config::Config config);
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Starts every component; an error (a listener cannot bind, a bad exporter
  // setting) leaves the relay stopped-able with shutdown(). Receivers serve
  // the sockets in `inherited` (systemd socket activation) that are bound to
  // their configured addresses, and bind the others themselves.
  Status start(service::SocketActivation* inherited = nullptr);
  // Stops the listeners, flushes the open batch and delivers what the
  // upstream takes within service.shutdown_timeout; the rest is counted as
  // dropped{reason="shutdown_timeout"}. Safe twice and without start().
  void shutdown();

  // SIGHUP: applies what can change while running (sampling policies, batch
  // limits, the exporter's endpoint/headers/timeout/compression, log level)
  // without losing buffered spans. Returns the settings that changed but need
  // a restart (listeners, spool, queue, sampling bounds). An error (e.g. the
  // new exporter cannot be built) leaves the running configuration untouched.
  Result<std::vector<std::string>> reload(const config::Config& next);

  // {"grpc":[...],"http":[...],"metrics":[...]}: the bound addresses.
  std::string ready_report() const;
  telemetry::Registry& metrics() { return metrics_; }

 private:
  std::optional<std::string> not_ready_reason() const;
  // The delivery stage for one upstream (DeliveryQueue) or several (LoadBalancer).
  Status start_single_upstream();
  Status start_load_balancer();

  config::Config config_;
  telemetry::Registry metrics_;
  std::unique_ptr<delivery::MemoryBudget> budget_;
  std::shared_ptr<exporters::Exporter> exporter_;
  std::unique_ptr<delivery::Spool> spool_;  // null: memory queue only
  std::unique_ptr<delivery::DeliveryQueue> delivery_;
  // Instead of spool_ and delivery_ with several upstreams (exporter.endpoints
  // or exporter.resolver): one exporter, queue and spool partition per member.
  std::unique_ptr<delivery::LoadBalancer> balancer_;
  std::unique_ptr<batching::Batcher> batcher_;
  std::unique_ptr<sampling::Sampler> sampler_;  // null: pass-through
  std::unique_ptr<receivers::Ingest> ingest_;
  std::unique_ptr<receivers::OtlpGrpcReceiver> grpc_receiver_;
  std::unique_ptr<receivers::OtlpHttpReceiver> http_receiver_;
  std::unique_ptr<receivers::HttpServer> http_server_;
  std::unique_ptr<telemetry::TelemetryServer> telemetry_server_;
  std::atomic<bool> ready_{false};
  bool stopped_ = false;
};

}  // namespace spanrelay
