#pragma once
// Helpers shared by the delivery fault tests (delivery_e2e_test.cc and
// delivery_crash_e2e_test.cc): relay configs with an exporter queue and spool,
// an upstream port that is not listening yet, one-scrape metric snapshots and
// the accounting balance, and what the application side saw compared with
// what reached the sink.
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/harness.h"

namespace spanrelay::e2e::delivery {

// A relay config: TCP listeners on port 0, one exporter, the queue and retry
// settings the delivery tests vary.
struct RelaySetup {
  std::string exporter = "otlp_grpc";
  std::string endpoint;  // otlp_grpc: HOST:PORT; otlp_http: http://HOST:PORT
  // max_spans 20 = the spans of one default make_request(): one request, one batch.
  std::string batch = "{ max_spans: 20, max_bytes: 1MiB, timeout: 50ms }";
  std::string retry = "{ initial_interval: 10ms, max_interval: 200ms, max_elapsed: 0 }";
  std::string memory_limit = "64MiB";
  std::string spool;  // the flow map of exporter.queue.spool; empty = no spool
  std::string shutdown_timeout = "10s";
  int max_in_flight = 4;
};
std::string relay_yaml(const RelaySetup& setup);
// "{ dir: DIR, <options> }"
std::string spool_yaml(const std::string& dir, const std::string& options);

// A loopback TCP port nobody listens on (bound to port 0, then closed), so the
// upstream can be started there later.
int unused_tcp_port();
std::string loopback(int port);

// Sink flags that make it listen for gRPC on a chosen address.
std::vector<std::string> sink_on(const std::string& grpc_address,
                                 std::vector<std::string> extra = {});

// Every series of one /metrics scrape (one scrape, so that sums across series
// are taken from the same moment).
class Scrape {
 public:
  explicit Scrape(const Daemon& daemon);
  double operator[](const std::string& series) const;  // 0 when absent
  double sum(const std::string& prefix) const;         // of every series starting with it
 private:
  std::map<std::string, double> values_;
};

// accepted + spool_recovered = sent + sampled_out + dropped(all reasons)
//                              + queue_spans + spool_spans
struct Balance {
  double accepted = 0, recovered = 0, sent = 0, sampled_out = 0, dropped = 0, queue = 0, spool = 0;
  bool holds() const {
    return accepted + recovered == sent + sampled_out + dropped + queue + spool;
  }
  std::string describe() const;
};
Balance read_balance(const Daemon& daemon);
// Waits (bounded) for a scrape in which the balance holds: counters of one
// scrape are read one after another, so a span moving between two stages may
// be seen twice or not at all in a single scrape. Fails the test otherwise.
void check_balance(const Daemon& daemon);
// Nothing left in memory or in the spool.
bool drained(const Daemon& daemon);

// What the sink received, compared with what the application had acknowledged.
struct Arrival {
  std::size_t acked = 0;       // distinct spans acknowledged to the app
  std::size_t at_sink = 0;     // span lines at the sink
  std::size_t missing = 0;     // acknowledged, never arrived
  std::size_t duplicates = 0;  // extra copies of a span beyond the first
  std::size_t unacked = 0;     // arrived without an acknowledgement (a cut request)
  std::size_t altered = 0;     // arrived with different bytes
  std::string describe() const;
};
Arrival compare_arrival(const Sink& sink, const std::vector<GeneratedSpan>& acked);
// Waits until no acknowledged span is missing; returns the last comparison.
Arrival wait_for_arrival(const Sink& sink, const std::vector<GeneratedSpan>& acked,
                         std::chrono::milliseconds limit = 90s);

// make_request() plus an incompressible `padding_bytes` bytes attribute per
// span, for tests that must fill a spool of a given size quickly.
ExportRequest make_padded_request(const RequestOptions& options, std::size_t padding_bytes,
                                  std::vector<GeneratedSpan>* spans);

enum class Via { kGrpc, kHttp };
// The app's side of the exchange: nullopt when the connection failed.
std::optional<ClientResult> try_export(const Daemon& daemon, Via via, const std::string& body);
bool is_ok(Via via, const ClientResult& result);
bool is_refused_retry_later(Via via, const ClientResult& result);  // 429 / RESOURCE_EXHAUSTED
// The refusal tells the app when to come back: HTTP Retry-After, or a gRPC
// google.rpc.RetryInfo detail (OTLP: RESOURCE_EXHAUSTED is retryable only with it).
bool says_when_to_retry(Via via, const ClientResult& result);

// What the applications saw. Thread-safe.
class AppSide {
 public:
  // Sends one request; its spans count as acknowledged when the relay said OK.
  // Returns the result (nullopt: the connection failed).
  std::optional<ClientResult> send(const Daemon& daemon, Via via, const ExportRequest& request,
                                   const std::vector<GeneratedSpan>& spans);
  std::vector<GeneratedSpan> acked() const;
  int acked_requests() const;
  int refused_requests() const;

 private:
  mutable std::mutex mutex_;
  std::vector<GeneratedSpan> acked_;
  int acked_requests_ = 0;
  int refused_requests_ = 0;
};

// Background senders that keep exporting until stopped or until the relay
// stops answering (connection failure).
class Loader {
 public:
  Loader(const Daemon& daemon, AppSide& app, int threads, std::uint64_t first_seed);
  ~Loader();
  void stop();

 private:
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> threads_;
};

}  // namespace spanrelay::e2e::delivery
