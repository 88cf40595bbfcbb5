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
#include "daemon/service/socket_activation.h"
#include "daemon/telemetry/process_metrics.h"
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
  if (auto registered = telemetry::register_process_metrics(metrics_); !registered.ok()) {
    spdlog::warn("process metrics unavailable: {}", registered.error().message);
  }
}

Relay::~Relay() { shutdown(); }

Status Relay::start(service::SocketActivation* inherited) {
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
    metrics_
        .gauge("spanrelay_spool_capacity_bytes",
               "Configured size limit of the disk spool (exporter.queue.spool.max_size).")
        .set(static_cast<std::int64_t>(config_.exporter.queue.spool.max_size));
    const auto recovered = spool_->stats();
    // Spans accepted by an earlier run: they enter this run's accounting here.
    metrics_
        .counter("spanrelay_spool_recovered_spans_total",
                 "Spans found in the spool at start-up (accepted by an earlier run).")
        .add(recovered.spans);
    spdlog::info("spool: {} ({} records, {} spans to replay)", config_.exporter.queue.spool.dir,
                 recovered.records, recovered.spans);
  }
  delivery_ = std::make_unique<delivery::DeliveryQueue>(exporter_, config_.exporter, *budget_,
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
    if (auto s = grpc_receiver_->start(inherited); !s.ok()) return s;
  }
  if (listener_enabled(rx.http)) {
    http_receiver_ = std::make_unique<receivers::OtlpHttpReceiver>(*ingest_, rx.max_request_size);
    const std::size_t io_threads = std::max(1u, std::min(4u, std::thread::hardware_concurrency()));
    http_server_ = std::make_unique<receivers::HttpServer>(
        http_receiver_->server_options("otlp-http", io_threads), http_receiver_->handler());
    if (!rx.http.endpoint.empty()) {
      auto passed = inherited ? inherited->take_tcp(rx.http.endpoint) : std::nullopt;
      const auto address = passed ? service::bound_address(passed->get()) : std::string();
      auto s = passed ? http_server_->adopt(std::move(*passed), address)
                      : http_server_->listen_tcp(rx.http.endpoint);
      if (!s.ok()) return s;
    }
    if (!rx.http.unix_socket.empty()) {
      auto passed = inherited ? inherited->take_unix(rx.http.unix_socket) : std::nullopt;
      auto s = passed ? http_server_->adopt(std::move(*passed), "unix:" + rx.http.unix_socket)
                      : http_server_->listen_unix(rx.http.unix_socket, rx.http.unix_socket_mode);
      if (!s.ok()) return s;
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

namespace {

bool same_listener(const config::ListenerConfig& a, const config::ListenerConfig& b) {
  return a.endpoint == b.endpoint && a.unix_socket == b.unix_socket &&
         a.unix_socket_mode == b.unix_socket_mode;
}

bool same_exporter(const config::ExporterConfig& a, const config::ExporterConfig& b) {
  return a.type == b.type && a.endpoint == b.endpoint && a.compression == b.compression &&
         a.timeout == b.timeout && a.headers == b.headers && a.path == b.path;
}

}  // namespace

Result<std::vector<std::string>> Relay::reload(const config::Config& next) {
  std::vector<std::string> needs_restart;
  const auto& rx = config_.receivers;
  if (!same_listener(rx.grpc, next.receivers.grpc)) needs_restart.push_back("receivers.otlp.grpc");
  if (!same_listener(rx.http, next.receivers.http)) needs_restart.push_back("receivers.otlp.http");
  if (rx.max_request_size != next.receivers.max_request_size) {
    needs_restart.push_back("receivers.otlp.max_request_size");
  }
  if (config_.telemetry.metrics_endpoint != next.telemetry.metrics_endpoint) {
    needs_restart.push_back("telemetry.metrics.endpoint");
  }
  const auto& q = config_.exporter.queue;
  const auto& nq = next.exporter.queue;
  if (q.memory_limit != nq.memory_limit || q.spool.dir != nq.spool.dir ||
      q.spool.max_size != nq.spool.max_size || q.spool.fsync != nq.spool.fsync ||
      q.spool.when_full != nq.spool.when_full) {
    needs_restart.push_back("exporter.queue");
  }
  const auto& r = config_.exporter.retry;
  const auto& nr = next.exporter.retry;
  if (r.enabled != nr.enabled || r.initial_interval != nr.initial_interval ||
      r.max_interval != nr.max_interval || r.max_elapsed != nr.max_elapsed ||
      config_.exporter.max_in_flight != next.exporter.max_in_flight) {
    needs_restart.push_back("exporter.retry / exporter.max_in_flight");
  }
  const auto& sc = config_.sampling;
  const auto& ns = next.sampling;
  if (sc.enabled != ns.enabled || sc.decision_wait != ns.decision_wait ||
      sc.max_traces != ns.max_traces || sc.max_buffered_bytes != ns.max_buffered_bytes ||
      sc.decision_cache_size != ns.decision_cache_size || sc.shards != ns.shards) {
    needs_restart.push_back("sampling (enabling it, decision_wait, bounds, shards)");
  }

  // Build everything first: a failure must leave the running config whole.
  std::optional<sampling::PolicySet> policies;
  if (sampler_ && ns.enabled) {
    auto built = sampling::PolicySet::create(ns);
    if (!built.ok()) return Error{"sampling: " + built.error().message};
    policies.emplace(std::move(built).value());
  }
  std::shared_ptr<exporters::Exporter> exporter;
  if (!same_exporter(config_.exporter, next.exporter)) {
    auto built = exporters::make_exporter(next.exporter);
    if (!built.ok()) return Error{"exporter: " + built.error().message};
    exporter = std::move(built).value();
  }

  if (policies) sampler_->replace_policies(std::move(*policies));
  if (exporter) {
    spdlog::info("exporter now: {}", exporter->describe());
    delivery_->replace_exporter(exporter);
    exporter_ = std::move(exporter);
  }
  batcher_->update_config(next.batch);
  spdlog::set_level(spdlog::level::from_str(next.telemetry.log_level));
  if (next.telemetry.log_format != config_.telemetry.log_format) {
    needs_restart.push_back("telemetry.log.format");
  }

  // What was applied becomes the running config; the rest keeps its old value.
  config_.batch = next.batch;
  config_.telemetry.log_level = next.telemetry.log_level;
  config_.exporter.type = next.exporter.type;
  config_.exporter.endpoint = next.exporter.endpoint;
  config_.exporter.compression = next.exporter.compression;
  config_.exporter.timeout = next.exporter.timeout;
  config_.exporter.headers = next.exporter.headers;
  config_.exporter.path = next.exporter.path;
  if (policies.has_value() || (sampler_ && ns.enabled)) config_.sampling.policies = ns.policies;
  return needs_restart;
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
