#pragma once
// The daemon's own HTTP endpoint (default 127.0.0.1:8888): /metrics in the
// Prometheus text format, /healthz (the process is alive and serving) and
// /readyz (it can take traffic: listening, spool writable...), for
// Kubernetes probes and systemd checks.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "daemon/common/result.h"
#include "daemon/receivers/http_server.h"
#include "daemon/telemetry/metrics.h"

namespace spanrelay::telemetry {

class TelemetryServer {
 public:
  // Returns why the daemon is not ready, or nullopt when it is. Called on an
  // io thread for each /readyz probe: must be cheap and must not block.
  using NotReadyReason = std::function<std::optional<std::string>()>;

  // `registry` must outlive the server.
  TelemetryServer(Registry& registry, NotReadyReason not_ready_reason);
  ~TelemetryServer();
  TelemetryServer(const TelemetryServer&) = delete;
  TelemetryServer& operator=(const TelemetryServer&) = delete;

  Status listen(const std::string& host_port);  // port 0 allowed
  void start();
  void shutdown();  // idempotent
  std::vector<std::string> bound_addresses() const;

  // The routing, exposed for tests and for serving from another HttpServer.
  receivers::HttpResponse handle(const receivers::HttpRequest& request) const;

 private:
  Registry& registry_;
  NotReadyReason not_ready_reason_;
  receivers::HttpServer server_;
};

}  // namespace spanrelay::telemetry
