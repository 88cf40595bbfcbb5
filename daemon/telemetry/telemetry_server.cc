#include "daemon/telemetry/telemetry_server.h"

#include <utility>

namespace spanrelay::telemetry {

namespace {

namespace http = receivers::http;

// Prometheus text exposition format 0.0.4.
constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

receivers::HttpServerOptions telemetry_options() {
  receivers::HttpServerOptions options;
  options.body_limit = std::size_t{64} * 1024;  // probes and scrapes carry no body worth reading
  options.io_threads = 1;
  options.name = "telemetry";
  return options;
}

}  // namespace

TelemetryServer::TelemetryServer(Registry& registry, NotReadyReason not_ready_reason)
    : registry_(registry),
      not_ready_reason_(std::move(not_ready_reason)),
      server_(telemetry_options(),
              [this](receivers::HttpRequest&& request) { return handle(request); }) {}

TelemetryServer::~TelemetryServer() { server_.shutdown(); }

Status TelemetryServer::listen(const std::string& host_port) {
  return server_.listen_tcp(host_port);
}

void TelemetryServer::start() { server_.start(); }

void TelemetryServer::shutdown() { server_.shutdown(); }

std::vector<std::string> TelemetryServer::bound_addresses() const {
  return server_.bound_addresses();
}

receivers::HttpResponse TelemetryServer::handle(const receivers::HttpRequest& request) const {
  const auto target = request.target();
  const auto path = target.substr(0, target.find('?'));
  const bool known = path == "/metrics" || path == "/healthz" || path == "/readyz";
  if (!known) {
    return receivers::make_text_response(http::status::not_found,
                                         "not found: try /metrics, /healthz or /readyz");
  }
  if (request.method() != http::verb::get) {
    auto response =
        receivers::make_text_response(http::status::method_not_allowed, "method not allowed");
    response.set(http::field::allow, "GET");
    return response;
  }
  if (path == "/metrics") {
    receivers::HttpResponse response{http::status::ok, 11};
    response.set(http::field::content_type, kMetricsContentType);
    response.body() = registry_.render();
    return response;
  }
  if (path == "/healthz") return receivers::make_text_response(http::status::ok, "ok");
  const std::optional<std::string> reason = not_ready_reason_ ? not_ready_reason_() : std::nullopt;
  if (reason) {
    return receivers::make_text_response(http::status::service_unavailable,
                                         "not ready: " + *reason);
  }
  return receivers::make_text_response(http::status::ok, "ready");
}

}  // namespace spanrelay::telemetry
