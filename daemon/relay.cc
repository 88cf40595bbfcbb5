#include "daemon/relay.h"

#include <spdlog/spdlog.h>

#include <thread>

#include "daemon/batching/batcher.h"
#include "daemon/delivery/delivery_queue.h"
#include "daemon/delivery/load_balancer.h"
#include "daemon/delivery/memory_budget.h"
#include "daemon/delivery/spool.h"
#include "daemon/delivery/spool_partitions.h"
#include "daemon/exporters/exporter.h"
#include "daemon/receivers/http_server.h"
#include "daemon/receivers/ingest.h"
#include "daemon/receivers/otlp_grpc_receiver.h"
#include "daemon/receivers/otlp_http_receiver.h"
#include "daemon/receivers/peer_access.h"
#include "daemon/receivers/server_tls_context.h"
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
  // One budget for every accepted span held in memory: the queue's share plus,
  // with tail sampling, the decision window's share. Sampling decides early
  // before its share runs out, so only a stuck upstream makes admission refuse.
  const std::uint64_t budget = config_.exporter.queue.memory_limit +
                               (config_.sampling.enabled ? config_.sampling.max_buffered_bytes : 0);
  budget_ = std::make_unique<delivery::MemoryBudget>(budget);
  const bool balanced = delivery::uses_load_balancing(config_.exporter);
  if (auto s = balanced ? start_load_balancer() : start_single_upstream(); !s.ok()) return s;
  batcher_ = std::make_unique<batching::Batcher>(
      config_.batch, *budget_,
      [this](batching::Batch&& batch) {
        if (balancer_) return balancer_->route(std::move(batch));
        delivery_->push(std::move(batch));
      },
      metrics_);
  if (!config_.exporter.queue.spool.dir.empty() && !config_.sampling.enabled) {
    // Tail sampling refuses instead: spilling whole requests would export
    // them unsampled.
    batcher_->set_overflow([this](std::string_view request, std::uint32_t spans) {
      return balancer_ ? balancer_->spill_request(request, spans)
                       : delivery_->spill_request(request, spans);
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
  const auto& limits = rx.limits;
  ingest_ = std::make_unique<receivers::Ingest>(
      *consumer, metrics_,
      receivers::IngestLimits{rx.max_request_size, limits.max_spans_per_request,
                              limits.max_decompression_ratio, limits.max_attributes_per_span,
                              limits.max_attribute_value_length, limits.max_anyvalue_depth});
  // Issue 7, data hygiene: redaction and resource enrichment at ingest.
  auto processor =
      processing::SpanProcessor::create(config_.redaction, config_.resource, &metrics_);
  if (!processor.ok()) return Error{processor.error().message};
  ingest_->set_processor(std::move(processor).value());
  // Issue 7: a TCP listener wider than loopback is worth a word at start-up.
  for (const auto& [listener, name] : {std::pair{&rx.grpc, "otlp-grpc"}, {&rx.http, "otlp-http"}}) {
    if (listener->endpoint.empty()) continue;
    if (auto warning = receivers::wide_bind_warning(listener->endpoint, *listener, name);
        !warning.empty()) {
      spdlog::warn("{}", warning);
    }
  }

  if (listener_enabled(rx.grpc)) {
    grpc_receiver_ = std::make_unique<receivers::OtlpGrpcReceiver>(
        rx.grpc, rx.max_request_size, *ingest_, limits,
        std::make_shared<receivers::PeerAccess>(rx.grpc, limits.max_connections, "grpc", metrics_));
    if (auto s = grpc_receiver_->start(inherited); !s.ok()) return s;
  }
  if (listener_enabled(rx.http)) {
    http_receiver_ = std::make_unique<receivers::OtlpHttpReceiver>(*ingest_, rx.max_request_size);
    http_receiver_->set_connection_limits(
        limits,
        std::make_shared<receivers::PeerAccess>(rx.http, limits.max_connections, "http", metrics_));
    const std::size_t io_threads = std::max(1u, std::min(4u, std::thread::hardware_concurrency()));
    auto options = http_receiver_->server_options("otlp-http", io_threads);
    if (rx.http.tls.enabled) {
      auto tls = receivers::ServerTlsContext::create(rx.http.tls, "http", metrics_);
      if (!tls) return tls.error();
      options.tls = std::move(tls).value();
    }
    http_server_ =
        std::make_unique<receivers::HttpServer>(std::move(options), http_receiver_->handler());
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
      if (!passed) {
        if (auto group = receivers::apply_socket_group(rx.http.unix_socket, rx.http.socket_group);
            !group.ok()) {
          return Error{"otlp-http: cannot listen on unix:" + rx.http.unix_socket + ": " +
                       group.error().message};
        }
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

Status Relay::start_single_upstream() {
  auto exporter = exporters::make_exporter(config_.exporter);
  if (!exporter.ok()) return Error{"exporter: " + exporter.error().message};
  exporter_ = std::move(exporter).value();
  spdlog::info("exporter: {}", exporter_->describe());
  if (!config_.exporter.queue.spool.dir.empty()) {
    auto spool = delivery::Spool::open(config_.exporter.queue.spool, metrics_);
    if (!spool.ok()) return Error{"spool: " + spool.error().message};
    spool_ = std::move(spool).value();
    // A load-balancing run's partitions: their records now go to the one upstream.
    const std::uint64_t adopted_corrupt =
        delivery::move_partitions_into(*spool_, config_.exporter.queue.spool, metrics_);
    metrics_
        .gauge("spanrelay_spool_capacity_bytes",
               "Configured size limit of the disk spool (exporter.queue.spool.max_size).")
        .set(static_cast<std::int64_t>(config_.exporter.queue.spool.max_size));
    const auto recovered = spool_->stats();
    // Spans accepted by an earlier run: they enter this run's accounting here.
    // (Moved partitions are in stats() now, but for their corrupt records.)
    metrics_
        .counter("spanrelay_spool_recovered_spans_total",
                 "Spans found in the spool at start-up (accepted by an earlier run).")
        .add(recovered.spans + adopted_corrupt);
    spdlog::info("spool: {} ({} records, {} spans to replay)", config_.exporter.queue.spool.dir,
                 recovered.records, recovered.spans);
  }
  delivery_ = std::make_unique<delivery::DeliveryQueue>(exporter_, config_.exporter, *budget_,
                                                        metrics_, spool_.get());
  delivery_->start();
  return Ok{};
}

Status Relay::start_load_balancer() {
  const auto& exporter = config_.exporter;
  std::unique_ptr<delivery::MemberResolver> resolver;
  if (!exporter.endpoints.empty()) {
    resolver = std::make_unique<delivery::StaticResolver>(exporter.endpoints);
  } else {
    auto& failed_lookups = metrics_.counter(
        "spanrelay_lb_resolver_failures_total",
        "DNS lookups of exporter.resolver that failed or found no address (the last member list "
        "was kept).");
    resolver = std::make_unique<delivery::DnsResolver>(exporter.dns, exporter.type,
                                                       delivery::system_address_lookup,
                                                       [&failed_lookups] { failed_lookups.add(); });
  }
  balancer_ = std::make_unique<delivery::LoadBalancer>(
      exporter, *budget_, metrics_, std::move(resolver), delivery::LoadBalancer::Options{});
  if (auto started = balancer_->start(); !started.ok()) {
    return Error{"load balancing: " + started.error().message};
  }
  return Ok{};
}

namespace {

bool same_listener(const config::ListenerConfig& a, const config::ListenerConfig& b) {
  return a.endpoint == b.endpoint && a.unix_socket == b.unix_socket &&
         a.unix_socket_mode == b.unix_socket_mode && a.socket_group == b.socket_group &&
         a.allowed_uids == b.allowed_uids && a.allowed_gids == b.allowed_gids &&
         a.allowed_cidrs == b.allowed_cidrs && a.tls.enabled == b.tls.enabled &&
         a.tls.cert_file == b.tls.cert_file && a.tls.key_file == b.tls.key_file &&
         a.tls.client_ca_file == b.tls.client_ca_file && a.tls.min_version == b.tls.min_version;
}

bool same_exporter(const config::ExporterConfig& a, const config::ExporterConfig& b) {
  return a.type == b.type && a.endpoint == b.endpoint && a.compression == b.compression &&
         a.timeout == b.timeout && a.headers == b.headers && a.path == b.path;
}

// What the load balancer reads once at start: its members and how it routes.
bool same_load_balancing(const config::ExporterConfig& a, const config::ExporterConfig& b) {
  return a.type == b.type && a.endpoints == b.endpoints && a.dns.hostname == b.dns.hostname &&
         a.dns.port == b.dns.port && a.dns.interval == b.dns.interval &&
         a.routing_key == b.routing_key &&
         a.ejection.consecutive_failures == b.ejection.consecutive_failures &&
         a.ejection.base_time == b.ejection.base_time && a.ejection.max_time == b.ejection.max_time;
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
  if (!(rx.limits == next.receivers.limits)) needs_restart.push_back("receivers.otlp limits");
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
  if (!(config_.redaction == next.redaction) || !(config_.resource == next.resource)) {
    needs_restart.push_back("redaction / resource");
  }

  // Load balancing: switching between one and several upstreams, the member
  // list, the routing key and the ejection rule take effect at a restart.
  const bool balanced_next = delivery::uses_load_balancing(next.exporter);
  const bool keep_upstreams =
      (balancer_ != nullptr) != balanced_next ||
      (balancer_ != nullptr && !same_load_balancing(config_.exporter, next.exporter));
  if (keep_upstreams) {
    needs_restart.push_back(
        "exporter.endpoint / endpoints / resolver / routing_key / ejection (load balancing)");
  }
  const bool exporter_changed = !keep_upstreams && !same_exporter(config_.exporter, next.exporter);

  // Build everything first: a failure must leave the running config whole.
  std::optional<sampling::PolicySet> policies;
  if (sampler_ && ns.enabled) {
    auto built = sampling::PolicySet::create(ns);
    if (!built.ok()) return Error{"sampling: " + built.error().message};
    policies.emplace(std::move(built).value());
  }
  std::shared_ptr<exporters::Exporter> exporter;
  if (exporter_changed && !balancer_) {
    auto built = exporters::make_exporter(next.exporter);
    if (!built.ok()) return Error{"exporter: " + built.error().message};
    exporter = std::move(built).value();
  }
  // All members' exporters are built before any is replaced (or none is).
  if (exporter_changed && balancer_) {
    if (auto replaced = balancer_->replace_exporters(next.exporter); !replaced.ok()) {
      return Error{"exporter: " + replaced.error().message};
    }
    spdlog::info("exporter now: {}", balancer_->describe());
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
  if (exporter_changed) {
    config_.exporter.type = next.exporter.type;
    config_.exporter.endpoint = next.exporter.endpoint;
    config_.exporter.compression = next.exporter.compression;
    config_.exporter.timeout = next.exporter.timeout;
    config_.exporter.headers = next.exporter.headers;
    config_.exporter.path = next.exporter.path;
  }
  if (policies.has_value() || (sampler_ && ns.enabled)) config_.sampling.policies = ns.policies;
  return needs_restart;
}

std::optional<std::string> Relay::not_ready_reason() const {
  if (!ready_) return std::string("starting or stopping");
  if (spool_ && !spool_->writable()) return std::string("spool is not writable");
  if (balancer_ && !balancer_->spool_writable()) return std::string("spool is not writable");
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
  if (balancer_) balancer_->shutdown(deadline);
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
