#include "daemon/relay.h"

#include <spdlog/spdlog.h>

#include <thread>

#include "daemon/batching/batcher.h"
#include "daemon/delivery/delivery_queue.h"
#include "daemon/delivery/memory_budget.h"
#include "daemon/delivery/spool.h"
#include "daemon/exporters/exporter.h"
#include "daemon/receivers/http_server.h"
#include "daemon/receivers/ingest.h"
#include "daemon/receivers/otlp_grpc_receiver.h"
#include "daemon/receivers/otlp_http_receiver.h"
#include "daemon/sampling/sampler.h"
#include "daemon/telemetry/telemetry_server.h"

namespace spanrelay {

namespace {

std::string json_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "]";
}

bool listener_enabled(const config::ListenerConfig& listener) {
  return !listener.endpoint.empty() || !listener.unix_socket.empty();
}

}  // namespace

Relay::Relay(config::Config config) : config_(std::move(config)) {
  metrics_
      .gauge("spanrelay_build_info", "Build information; the value is always 1.",
             {{"version", SPANRELAY_VERSION}})
      .set(1);
}

Relay::~Relay() { shutdown(); }

Status Relay::start() {
  auto exporter = exporters::make_exporter(config_.exporter);
  if (!exporter.ok()) return Error{"exporter: " + exporter.error().message};
  exporter_ = std::move(exporter).value();
  spdlog::info("exporter: {}", exporter_->describe());

  // One budget for every accepted span held in memory: the queue's share plus,
  // with tail sampling, the decision window's share. Sampling decides early
  // before its share runs out, so only a stuck upstream makes admission refuse.
  const std::uint64_t budget = config_.exporter.queue.memory_limit +
                               (config_.sampling.enabled ? config_.sampling.max_buffered_bytes : 0);
  budget_ = std::make_unique<delivery::MemoryBudget>(budget);
  if (!config_.exporter.queue.spool.dir.empty()) {
    auto spool = delivery::Spool::open(config_.exporter.queue.spool, metrics_);
    if (!spool.ok()) return Error{"spool: " + spool.error().message};
    spool_ = std::move(spool).value();
    const auto recovered = spool_->stats();
    // Spans accepted by an earlier run: they enter this run's accounting here.
    metrics_
        .counter("spanrelay_spool_recovered_spans_total",
                 "Spans found in the spool at start-up (accepted by an earlier run).")
        .add(recovered.spans);
    spdlog::info("spool: {} ({} records, {} spans to replay)", config_.exporter.queue.spool.dir,
                 recovered.records, recovered.spans);
  }
  delivery_ = std::make_unique<delivery::DeliveryQueue>(*exporter_, config_.exporter, *budget_,
                                                        metrics_, spool_.get());
  delivery_->start();
  batcher_ = std::make_unique<batching::Batcher>(
      config_.batch, *budget_,
      [this](batching::Batch&& batch) { delivery_->push(std::move(batch)); }, metrics_);
  if (spool_ && !config_.sampling.enabled) {
    // Tail sampling refuses instead: spilling whole requests would export
    // them unsampled.
    batcher_->set_overflow([this](std::string_view request, std::uint32_t spans) {
      return delivery_->spill_request(request, spans);
    });
  }
  batcher_->start();

  receivers::SpanConsumer* consumer = batcher_.get();
  if (config_.sampling.enabled) {
    auto policies = sampling::PolicySet::create(config_.sampling);
    if (!policies.ok()) return Error{"sampling: " + policies.error().message};
    sampler_ = std::make_unique<sampling::Sampler>(config_.sampling, std::move(policies).value(),
                                                   *batcher_, metrics_);
    sampler_->start();
    consumer = sampler_.get();
  }

  const auto& rx = config_.receivers;
  ingest_ = std::make_unique<receivers::Ingest>(*consumer, metrics_,
                                                receivers::IngestLimits{rx.max_request_size, 0});

  if (listener_enabled(rx.grpc)) {
    grpc_receiver_ =
        std::make_unique<receivers::OtlpGrpcReceiver>(rx.grpc, rx.max_request_size, *ingest_);
    if (auto s = grpc_receiver_->start(); !s.ok()) return s;
  }
  if (listener_enabled(rx.http)) {
    http_receiver_ = std::make_unique<receivers::OtlpHttpReceiver>(*ingest_, rx.max_request_size);
    const std::size_t io_threads = std::max(1u, std::min(4u, std::thread::hardware_concurrency()));
    http_server_ = std::make_unique<receivers::HttpServer>(
        http_receiver_->server_options("otlp-http", io_threads), http_receiver_->handler());
    if (!rx.http.endpoint.empty()) {
      if (auto s = http_server_->listen_tcp(rx.http.endpoint); !s.ok()) return s;
    }
    if (!rx.http.unix_socket.empty()) {
      if (auto s = http_server_->listen_unix(rx.http.unix_socket, rx.http.unix_socket_mode);
          !s.ok()) {
        return s;
      }
    }
    http_server_->start();
  }
  if (!config_.telemetry.metrics_endpoint.empty()) {
    telemetry_server_ = std::make_unique<telemetry::TelemetryServer>(
        metrics_, [this] { return not_ready_reason(); });
    if (auto s = telemetry_server_->listen(config_.telemetry.metrics_endpoint); !s.ok()) return s;
    telemetry_server_->start();
  }
  ready_ = true;
  return Ok{};
}

std::optional<std::string> Relay::not_ready_reason() const {
  if (!ready_) return std::string("starting or stopping");
  if (spool_ && !spool_->writable()) return std::string("spool is not writable");
  return std::nullopt;
}

void Relay::shutdown() {
  if (stopped_) return;
  stopped_ = true;
  ready_ = false;
  const auto deadline = std::chrono::steady_clock::now() + config_.service.shutdown_timeout;
  // 1. No new spans: close the listeners (in-flight calls finish first).
  if (grpc_receiver_)
    grpc_receiver_->shutdown(
        std::min(deadline, std::chrono::steady_clock::now() + std::chrono::seconds(2)));
  if (http_server_) http_server_->shutdown();
  // 2. Every buffered trace is decided (errors kept), everything admitted
  // goes to delivery, which sends until the deadline.
  if (sampler_) sampler_->shutdown();
  if (batcher_) batcher_->shutdown();
  if (delivery_) delivery_->shutdown(deadline);
  // 3. The metrics endpoint goes last so a final scrape sees the totals.
  if (telemetry_server_) telemetry_server_->shutdown();
}

std::string Relay::ready_report() const {
  std::string out = "{";
  out += "\"grpc\":" +
         json_list(grpc_receiver_ ? grpc_receiver_->bound_addresses() : std::vector<std::string>{});
  out += ",\"http\":" +
         json_list(http_server_ ? http_server_->bound_addresses() : std::vector<std::string>{});
  out += ",\"metrics\":" + json_list(telemetry_server_ ? telemetry_server_->bound_addresses()
                                                       : std::vector<std::string>{});
  return out + "}";
}

}  // namespace spanrelay
