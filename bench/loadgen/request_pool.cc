#include "bench/loadgen/request_pool.h"

#include <array>
#include <chrono>
#include <random>
#include <string_view>

#include "daemon/otlp/json_transcoder.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace spanrelay::loadgen {

namespace otlp_collector = opentelemetry::proto::collector::trace::v1;
namespace otlp_trace = opentelemetry::proto::trace::v1;
namespace otlp_common = opentelemetry::proto::common::v1;

namespace {

struct Route {
  std::string_view method;
  std::string_view route;
  std::string_view target_prefix;
};

constexpr std::array<Route, 6> kRoutes{{
    {"GET", "/api/v1/users/{user_id}", "/api/v1/users/"},
    {"POST", "/api/v1/orders", "/api/v1/orders?src="},
    {"GET", "/api/v1/catalog/items", "/api/v1/catalog/items?page="},
    {"PUT", "/api/v1/cart/{cart_id}", "/api/v1/cart/"},
    {"DELETE", "/api/v1/sessions/{session_id}", "/api/v1/sessions/"},
    {"GET", "/api/v2/recommendations", "/api/v2/recommendations?limit="},
}};

constexpr std::array<std::string_view, 5> kChildOperations{
    "SELECT orders.order_lines", "redis GET session", "HTTP GET inventory-service",
    "kafka publish order-events", "render product-template"};

constexpr std::array<std::string_view, 4> kPeers{
    "postgres-primary.db.internal.example.com", "redis-cache-3.cache.internal.example.com",
    "inventory.svc.cluster.local", "kafka-broker-2.messaging.internal.example.com"};

constexpr std::array<std::string_view, 3> kUserAgents{
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari",
    "python-requests/2.31.0 (spanrelay-loadgen synthetic client; +https://example.com/bot)",
    "okhttp/4.12.0 (Android 14; Pixel 8 Pro) com.example.shop/7.3.1 build 20240115"};

constexpr std::array<std::string_view, 4> kServices{"checkout", "frontend", "cart",
                                                    "recommendation"};

void add_string(google::protobuf::RepeatedPtrField<otlp_common::KeyValue>* attributes,
                std::string_view key, std::string_view value) {
  auto* kv = attributes->Add();
  kv->set_key(std::string(key));
  kv->mutable_value()->set_string_value(std::string(value));
}

void add_int(google::protobuf::RepeatedPtrField<otlp_common::KeyValue>* attributes,
             std::string_view key, std::int64_t value) {
  auto* kv = attributes->Add();
  kv->set_key(std::string(key));
  kv->mutable_value()->set_int_value(value);
}

void add_bool(google::protobuf::RepeatedPtrField<otlp_common::KeyValue>* attributes,
              std::string_view key, bool value) {
  auto* kv = attributes->Add();
  kv->set_key(std::string(key));
  kv->mutable_value()->set_bool_value(value);
}

void add_double(google::protobuf::RepeatedPtrField<otlp_common::KeyValue>* attributes,
                std::string_view key, double value) {
  auto* kv = attributes->Add();
  kv->set_key(std::string(key));
  kv->mutable_value()->set_double_value(value);
}

std::string random_bytes(std::mt19937_64& rng, std::size_t count) {
  std::string bytes(count, '\0');
  for (std::size_t i = 0; i < count; i += 8) {
    const std::uint64_t word = rng();
    for (std::size_t j = 0; j < 8 && i + j < count; ++j) {
      bytes[i + j] = static_cast<char>((word >> (8 * j)) & 0xff);
    }
  }
  return bytes;
}

class SpanMix {
 public:
  SpanMix(const LoadgenOptions& options, std::uint64_t base_time_ns)
      : options_(options), rng_(options.seed), base_time_ns_(base_time_ns) {}

  // Appends one trace of `span_count` spans; returns how many are errors.
  std::size_t add_trace(otlp_trace::ScopeSpans* scope, int span_count) {
    const std::string trace_id = random_bytes(rng_, 16);
    const Route& route = kRoutes[rng_() % kRoutes.size()];
    const bool has_error = std::bernoulli_distribution(options_.error_ratio)(rng_);
    const int error_index = has_error ? static_cast<int>(rng_() % span_count) : -1;
    const std::uint64_t root_start = base_time_ns_ + rng_() % 60'000'000'000ull;
    const std::uint64_t root_duration = 2'000'000 + rng_() % 198'000'000;  // 2-200 ms
    std::string root_id;
    for (int i = 0; i < span_count; ++i) {
      otlp_trace::Span* span = scope->add_spans();
      span->set_trace_id(trace_id);
      span->set_span_id(random_bytes(rng_, 8));
      span->set_flags(0x101);  // W3C sampled + "is-remote known" (bit 8), as SDKs send
      std::uint64_t start = root_start;
      std::uint64_t duration = root_duration;
      std::string_view peer = kPeers[rng_() % kPeers.size()];
      if (i == 0) {
        root_id = span->span_id();
        span->set_name(std::string(route.method) + " " + std::string(route.route));
        span->set_kind(otlp_trace::Span::SPAN_KIND_SERVER);
        peer = "10.20.31.42";
      } else {
        span->set_parent_span_id(root_id);
        span->set_name(std::string(kChildOperations[rng_() % kChildOperations.size()]));
        span->set_kind(i % 2 ? otlp_trace::Span::SPAN_KIND_CLIENT
                             : otlp_trace::Span::SPAN_KIND_INTERNAL);
        start = root_start + rng_() % (root_duration / 2);
        duration = 1 + rng_() % (root_duration / 2);
      }
      span->set_start_time_unix_nano(start);
      span->set_end_time_unix_nano(start + duration);
      const bool is_error = i == error_index;
      auto* attributes = span->mutable_attributes();
      add_string(attributes, "http.method", route.method);
      add_string(attributes, "http.route", route.route);
      add_string(attributes, "http.target",
                 std::string(route.target_prefix) + std::to_string(rng_() % 1'000'000));
      add_int(attributes, "http.status_code", is_error ? 500 : (rng_() % 10 ? 200 : 404));
      add_string(attributes, "net.peer.name", peer);
      add_string(attributes, "user_agent.original", kUserAgents[rng_() % kUserAgents.size()]);
      add_int(attributes, "http.request_content_length", static_cast<std::int64_t>(rng_() % 65536));
      add_bool(attributes, "cache.hit", rng_() % 2 == 0);
      add_double(attributes, "app.queue_time_ms", static_cast<double>(rng_() % 100000) / 1000.0);
      add_int(attributes, "thread.id", static_cast<std::int64_t>(rng_() % 512));
      if (is_error) {
        span->mutable_status()->set_code(otlp_trace::Status::STATUS_CODE_ERROR);
        span->mutable_status()->set_message("deadline exceeded calling inventory-service");
      }
    }
    return has_error ? 1 : 0;
  }

  void fill_resource(otlp_trace::ResourceSpans* resource_spans, std::size_t request_index) {
    auto* attributes = resource_spans->mutable_resource()->mutable_attributes();
    add_string(attributes, "service.name", kServices[request_index % kServices.size()]);
    add_string(attributes, "service.version", "1.14.2");
    add_string(attributes, "service.instance.id",
               "instance-" + std::to_string(request_index % kServices.size()));
    add_string(attributes, "host.name", "bench-node-17");
    add_string(attributes, "deployment.environment", "bench");
    add_string(attributes, "telemetry.sdk.name", "opentelemetry");
    add_string(attributes, "telemetry.sdk.language", "python");
    add_string(attributes, "telemetry.sdk.version", "1.24.0");
    auto* scope = resource_spans->add_scope_spans();
    scope->mutable_scope()->set_name("spanrelay.loadgen");
    scope->mutable_scope()->set_version("0.1.0");
  }

 private:
  const LoadgenOptions& options_;
  std::mt19937_64 rng_;
  std::uint64_t base_time_ns_;
};

}  // namespace

Result<RequestPool> build_request_pool(const LoadgenOptions& options) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto base_time_ns =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now).count());
  SpanMix mix(options, base_time_ns - 60'000'000'000ull);
  RequestPool pool;
  pool.requests.reserve(static_cast<std::size_t>(options.pool_size));
  for (int index = 0; index < options.pool_size; ++index) {
    otlp_collector::ExportTraceServiceRequest request;
    auto* resource_spans = request.add_resource_spans();
    mix.fill_resource(resource_spans, static_cast<std::size_t>(index));
    auto* scope = resource_spans->mutable_scope_spans(0);
    PreparedRequest prepared;
    for (int remaining = options.spans_per_request; remaining > 0;
         remaining -= options.spans_per_trace) {
      prepared.error_spans += mix.add_trace(scope, std::min(remaining, options.spans_per_trace));
    }
    prepared.spans = static_cast<std::size_t>(scope->spans_size());
    for (const auto& span : scope->spans()) pool.span_bytes += span.ByteSizeLong();
    std::string protobuf = request.SerializeAsString();
    pool.protobuf_bytes += protobuf.size();
    pool.spans += prepared.spans;
    if (options.encoding == BodyEncoding::kJson) {
      auto json = otlp::protobuf_to_json(protobuf);
      if (!json) return Error{"protobuf_to_json: " + json.error().message};
      prepared.body = std::move(json.value());
    } else {
      prepared.body = std::move(protobuf);
    }
    if (!options.target.is_grpc() && options.compression != Codec::kIdentity) {
      auto compressed = compress(options.compression, prepared.body);
      if (!compressed) return Error{"compress: " + compressed.error().message};
      prepared.body = std::move(compressed.value());
    }
    pool.body_bytes += prepared.body.size();
    pool.requests.push_back(std::move(prepared));
  }
  return pool;
}

}  // namespace spanrelay::loadgen
