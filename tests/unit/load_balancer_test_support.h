#pragma once
// Shared by the load balancer's unit tests: in-process upstreams that record
// what each member received (or fail on demand), OTLP requests whose spans
// interleave traces and services, and what arrived, trace by trace.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "daemon/batching/batch.h"
#include "daemon/delivery/load_balancer.h"
#include "daemon/delivery/memory_budget.h"
#include "daemon/exporters/exporter.h"
#include "daemon/telemetry/metrics.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace spanrelay::delivery::lb_test {

using Request = opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;
using namespace std::chrono_literals;

inline bool wait_until(const std::function<bool()>& condition,
                       std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/lb_test.XXXXXX";
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The upstreams of every member: records requests by endpoint; a member that
// is "down" answers UNAVAILABLE (retryable) to every attempt.
class Upstreams {
 public:
  LoadBalancer::ExporterFactory factory() {
    return [this](const config::ExporterConfig& member)
               -> Result<std::shared_ptr<exporters::Exporter>> {
      return std::shared_ptr<exporters::Exporter>(std::make_shared<Member>(*this, member.endpoint));
    };
  }
  void set_down(const std::string& endpoint, bool down) {
    std::lock_guard lock(mutex_);
    if (down) {
      down_.insert(endpoint);
    } else {
      down_.erase(endpoint);
    }
  }
  // trace id (bytes) -> endpoints that received spans of it, and span count per trace.
  std::map<std::string, std::set<std::string>> trace_endpoints() const {
    std::lock_guard lock(mutex_);
    std::map<std::string, std::set<std::string>> out;
    for (const auto& [endpoint, requests] : received_) {
      for (const auto& bytes : requests) {
        Request request;
        REQUIRE(request.ParseFromString(bytes));
        for (const auto& rs : request.resource_spans()) {
          for (const auto& ss : rs.scope_spans()) {
            for (const auto& span : ss.spans()) out[span.trace_id()].insert(endpoint);
          }
        }
      }
    }
    return out;
  }
  // span id -> times received (over every endpoint).
  std::map<std::string, int> span_arrivals() const {
    std::lock_guard lock(mutex_);
    std::map<std::string, int> out;
    for (const auto& [endpoint, requests] : received_) {
      for (const auto& bytes : requests) {
        Request request;
        REQUIRE(request.ParseFromString(bytes));
        for (const auto& rs : request.resource_spans()) {
          for (const auto& ss : rs.scope_spans()) {
            for (const auto& span : ss.spans()) ++out[span.span_id()];
          }
        }
      }
    }
    return out;
  }
  std::set<std::string> services_at(const std::string& endpoint) const {
    std::lock_guard lock(mutex_);
    std::set<std::string> out;
    const auto it = received_.find(endpoint);
    if (it == received_.end()) return out;
    for (const auto& bytes : it->second) {
      Request request;
      REQUIRE(request.ParseFromString(bytes));
      for (const auto& rs : request.resource_spans()) {
        for (const auto& kv : rs.resource().attributes()) {
          if (kv.key() == "service.name") out.insert(kv.value().string_value());
        }
      }
    }
    return out;
  }
  int attempts(const std::string& endpoint) const {
    std::lock_guard lock(mutex_);
    const auto it = attempts_.find(endpoint);
    return it == attempts_.end() ? 0 : it->second;
  }

 private:
  class Member final : public exporters::Exporter {
   public:
    Member(Upstreams& upstreams, std::string endpoint)
        : upstreams_(upstreams), endpoint_(std::move(endpoint)) {}
    exporters::ExportResult export_request(std::string_view request, std::uint32_t) override {
      std::lock_guard lock(upstreams_.mutex_);
      ++upstreams_.attempts_[endpoint_];
      exporters::ExportResult result;
      if (upstreams_.down_.count(endpoint_) > 0) {
        result.disposition = exporters::ExportDisposition::kRetryable;
        result.code = "UNAVAILABLE";
        result.message = "down";
        return result;
      }
      upstreams_.received_[endpoint_].emplace_back(request);
      return result;
    }
    std::string describe() const override { return "fake " + endpoint_; }

   private:
    Upstreams& upstreams_;
    std::string endpoint_;
  };

  mutable std::mutex mutex_;
  std::set<std::string> down_;
  std::map<std::string, int> attempts_;
  std::map<std::string, std::vector<std::string>> received_;
};

inline std::string id_bytes(std::size_t size, std::uint64_t seed) {
  std::string id(size, '\0');
  std::uint64_t x = seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
  for (auto& byte : id) {
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    byte = static_cast<char>(x >> 56);
  }
  return id;
}

// `traces` traces of `spans_per_trace` spans, spread round-robin over
// `services` resources so that every resource holds spans of many traces and
// every trace has spans under several resources. Trace n's id is
// id_bytes(16, first_trace + n).
inline Request make_traces(std::uint64_t first_trace, int traces, int spans_per_trace,
                           int services = 3) {
  Request request;
  std::vector<opentelemetry::proto::trace::v1::ScopeSpans*> scopes;
  for (int s = 0; s < services; ++s) {
    auto* rs = request.add_resource_spans();
    auto* kv = rs->mutable_resource()->add_attributes();
    kv->set_key("service.name");
    kv->mutable_value()->set_string_value("svc-" + std::to_string(first_trace) + "-" +
                                          std::to_string(s));
    auto* ss = rs->add_scope_spans();
    ss->mutable_scope()->set_name("lib");
    scopes.push_back(ss);
  }
  int n = 0;
  for (int t = 0; t < traces; ++t) {
    for (int k = 0; k < spans_per_trace; ++k, ++n) {
      auto* span = scopes[n % services]->add_spans();
      span->set_trace_id(id_bytes(16, first_trace + t));
      span->set_span_id(id_bytes(8, (first_trace + t) * 1000 + k));
      span->set_name("op");
      span->set_start_time_unix_nano(1);
      span->set_end_time_unix_nano(2);
    }
  }
  return request;
}

// A batch as the batcher hands it over: its memory reserved, its spans pending.
inline batching::Batch admitted_batch(const Request& request, MemoryBudget& budget,
                                      telemetry::Registry& metrics) {
  batching::Batch batch;
  batch.request = request.SerializeAsString();
  for (const auto& rs : request.resource_spans()) {
    for (const auto& ss : rs.scope_spans()) batch.spans += ss.spans_size();
  }
  batch.reserved_bytes = batch.request.size() + 32ull * batch.spans;
  REQUIRE(budget.try_reserve(batch.reserved_bytes));
  metrics.gauge("spanrelay_queue_spans", "").add(batch.spans);
  batch.created = std::chrono::steady_clock::now();
  return batch;
}

}  // namespace spanrelay::delivery::lb_test
