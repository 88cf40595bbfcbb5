// Delivery under upstream faults (issue "Delivery that never blocks the app
// and never loses data silently"): an upstream that is down, slow, or answers
// with errors never makes an application wait, and every acknowledged span
// either reaches the upstream or is counted as dropped with a reason.
// Crash and restart cases are in delivery_crash_e2e_test.cc.
#include <doctest/doctest.h>

#include <algorithm>

#include "tests/e2e/delivery_support.h"
#include "tests/e2e/harness.h"

using namespace spanrelay::e2e;
using namespace spanrelay::e2e::delivery;

namespace {

constexpr double kSpansPerRequest = 20;  // make_request() defaults: 2 x 2 x 5

std::size_t line_count(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

// Sends one request and requires the relay to acknowledge it.
void send_acked(const Daemon& daemon, AppSide& app, Via via, const ExportRequest& request,
                const std::vector<GeneratedSpan>& spans) {
  const auto result = app.send(daemon, via, request, spans);
  REQUIRE_MESSAGE(result.has_value(), "the relay did not answer");
  REQUIRE_MESSAGE(is_ok(via, *result), "status " << result->status << ": " << result->body);
}

// Sends requests over `via` until the relay refuses one with "retry later";
// every other answer must be an acknowledgement. Returns the refusal.
std::optional<ClientResult> send_until_refused(const Daemon& daemon, AppSide& app, Via via,
                                               std::uint64_t first_seed, int max_requests,
                                               std::size_t padding_bytes = 0) {
  for (int i = 0; i < max_requests; ++i) {
    std::vector<GeneratedSpan> spans;
    const RequestOptions options{.seed = first_seed + static_cast<std::uint64_t>(i)};
    const auto request = padding_bytes > 0 ? make_padded_request(options, padding_bytes, &spans)
                                           : make_request(options, &spans);
    const auto result = app.send(daemon, via, request, spans);
    REQUIRE_MESSAGE(result.has_value(), "the relay did not answer");
    if (is_refused_retry_later(via, *result)) return result;
    REQUIRE_MESSAGE(is_ok(via, *result), "status " << result->status << ": " << result->body);
  }
  return std::nullopt;
}

Via alternate(int i) { return i % 2 == 0 ? Via::kGrpc : Via::kHttp; }

}  // namespace

TEST_CASE("delivery: upstream down under steady load, with a spool: every acked span arrives") {
  TempDir dir;
  RelaySetup setup;
  setup.endpoint = loopback(unused_tcp_port());  // nobody listens there yet
  setup.spool = spool_yaml(dir.file("spool"), "fsync: interval, fsync_interval: 50ms");
  Daemon daemon(dir, relay_yaml(setup));
  AppSide app;
  for (int i = 0; i < 30; ++i) {
    std::vector<GeneratedSpan> spans;
    send_acked(daemon, app, alternate(i), make_request({.seed = 1000u + i}, &spans), spans);
  }
  // While the upstream is down the batches wait on disk, not in memory.
  const double acked_while_down = static_cast<double>(app.acked().size());
  const bool spooled = wait_until(
      [&] {
        const Scrape m(daemon);
        return m["spanrelay_spool_spans"] == acked_while_down && m["spanrelay_queue_spans"] == 0;
      },
      30s);
  CHECK_MESSAGE(spooled, "not all in the spool: " << read_balance(daemon).describe());
  check_balance(daemon);

  // The upstream comes back while the applications keep sending.
  Sink sink(dir, sink_on(setup.endpoint));
  for (int i = 30; i < 60; ++i) {
    std::vector<GeneratedSpan> spans;
    send_acked(daemon, app, alternate(i), make_request({.seed = 1000u + i}, &spans), spans);
  }
  const Arrival arrival = wait_for_arrival(sink, app.acked());
  MESSAGE(arrival.describe());
  CHECK(arrival.missing == 0);
  CHECK(arrival.altered == 0);
  CHECK(arrival.unacked == 0);
  CHECK(wait_until([&] { return drained(daemon); }));
  check_balance(daemon);
}

TEST_CASE(
    "delivery: without a spool a full memory budget is refused at once (429 / "
    "RESOURCE_EXHAUSTED) and every acked span arrives") {
  TempDir dir;
  RelaySetup setup;
  setup.endpoint = loopback(unused_tcp_port());
  setup.memory_limit = "256KiB";
  setup.batch = "{ max_spans: 20, max_bytes: 64KiB, timeout: 50ms }";
  Daemon daemon(dir, relay_yaml(setup));
  AppSide app;

  const auto http_refusal = send_until_refused(daemon, app, Via::kHttp, 2000, 2000);
  REQUIRE_MESSAGE(http_refusal.has_value(), "the memory budget never filled");
  CHECK(says_when_to_retry(Via::kHttp, *http_refusal));
  const auto grpc_refusal = send_until_refused(daemon, app, Via::kGrpc, 5000, 50);
  REQUIRE_MESSAGE(grpc_refusal.has_value(), "gRPC was not refused with the budget full");
  CHECK(says_when_to_retry(Via::kGrpc, *grpc_refusal));

  const Scrape m(daemon);
  MESSAGE("acked " << app.acked_requests() << " requests, refused " << app.refused_requests());
  CHECK(m["spanrelay_receiver_refused_spans_total{reason=\"memory_limit\"}"] ==
        app.refused_requests() * kSpansPerRequest);
  CHECK(m.sum("spanrelay_dropped_spans_total{") == 0);
  check_balance(daemon);

  Sink sink(dir, sink_on(setup.endpoint));
  const Arrival arrival = wait_for_arrival(sink, app.acked());
  MESSAGE(arrival.describe());
  CHECK(arrival.missing == 0);
  CHECK(arrival.duplicates == 0);
  CHECK(arrival.altered == 0);
  CHECK(arrival.unacked == 0);  // a refused request was not delivered behind the app's back
  CHECK(wait_until([&] { return drained(daemon); }));
  CHECK(Scrape(daemon).sum("spanrelay_dropped_spans_total{") == 0);
  check_balance(daemon);
}

TEST_CASE("delivery: a slow upstream never delays an acknowledgement") {
  TempDir dir;
  Sink sink(dir, {"--delay-ms", "3000"});
  RelaySetup setup;
  setup.endpoint = sink.grpc_address();
  setup.max_in_flight = 20;
  Daemon daemon(dir, relay_yaml(setup));
  AppSide app;
  for (int i = 0; i < 20; ++i) {
    std::vector<GeneratedSpan> spans;
    send_acked(daemon, app, alternate(i), make_request({.seed = 3000u + i}, &spans), spans);
  }
  // The moment the last acknowledgement returned: the relay cannot have
  // waited for answers it had not received yet.
  const Scrape m(daemon);
  const double answered = m["spanrelay_exporter_sent_requests_total"] +
                          m.sum("spanrelay_exporter_failed_requests_total{");
  const std::size_t received = line_count(sink.requests_log());
  MESSAGE("20 requests acked; the upstream had received " << received << " and answered "
                                                          << answered);
  CHECK(answered < 20);

  const Arrival arrival = wait_for_arrival(sink, app.acked());
  MESSAGE(arrival.describe());
  CHECK(arrival.missing == 0);
  CHECK(arrival.duplicates == 0);
  CHECK(arrival.altered == 0);
  CHECK(wait_until([&] { return drained(daemon); }));
  check_balance(daemon);
}

TEST_CASE("delivery: retryable upstream answers honour the upstream's delay and arrive") {
  struct Case {
    std::string exporter, status, retry_after, code, logged_delay;
  };
  for (const Case& c : {Case{"otlp_http", "503", "1", "503", "in 1000 ms"},
                        Case{"otlp_grpc", "UNAVAILABLE", "0.3", "UNAVAILABLE", "in 300 ms"}}) {
    CAPTURE(c.exporter);
    CAPTURE(c.status);
    TempDir dir;
    Sink sink(dir, {"--fail-first", "2", "--status", c.status, "--retry-after", c.retry_after});
    RelaySetup setup;
    setup.exporter = c.exporter;
    setup.endpoint =
        c.exporter == "otlp_http" ? "http://" + sink.http_address() : sink.grpc_address();
    setup.retry = "{ initial_interval: 10ms, max_interval: 5s, max_elapsed: 1m }";
    Daemon daemon(dir, relay_yaml(setup));
    AppSide app;
    std::vector<GeneratedSpan> spans;
    send_acked(daemon, app, Via::kGrpc, make_request({.seed = 4000}, &spans), spans);

    const Arrival arrival = wait_for_arrival(sink, app.acked());
    MESSAGE(arrival.describe());
    CHECK(arrival.missing == 0);
    CHECK(arrival.duplicates == 0);
    REQUIRE(wait_until([&] { return drained(daemon); }));
    const Scrape m(daemon);
    CHECK(m["spanrelay_exporter_failed_requests_total{code=\"" + c.code + "\"}"] == 2);
    CHECK(m["spanrelay_exporter_retries_total"] == 2);
    CHECK(m.sum("spanrelay_dropped_spans_total{") == 0);
    const auto log = daemon.process().log();
    CHECK_MESSAGE(log.find(c.logged_delay) != std::string::npos,
                  "the retry did not wait the delay the upstream asked for:\n"
                      << log);
    check_balance(daemon);
  }
}

TEST_CASE("delivery: non-retryable upstream answers drop the batch as non_retryable") {
  struct Case {
    std::string exporter, status, code;
  };
  // OTLP: RESOURCE_EXHAUSTED is retryable only with RetryInfo; HTTP 400 never is.
  for (const Case& c : {Case{"otlp_grpc", "RESOURCE_EXHAUSTED", "RESOURCE_EXHAUSTED"},
                        Case{"otlp_http", "400", "400"}}) {
    CAPTURE(c.exporter);
    CAPTURE(c.status);
    TempDir dir;
    Sink sink(dir, {"--fail-first", "1", "--status", c.status});
    RelaySetup setup;
    setup.exporter = c.exporter;
    setup.endpoint =
        c.exporter == "otlp_http" ? "http://" + sink.http_address() : sink.grpc_address();
    Daemon daemon(dir, relay_yaml(setup));
    AppSide app;
    for (int i = 0; i < 2; ++i) {
      std::vector<GeneratedSpan> spans;
      send_acked(daemon, app, Via::kGrpc, make_request({.seed = 4100u + i}, &spans), spans);
    }
    // One batch met the fault and is gone for good; the other arrived.
    REQUIRE(wait_until([&] {
      const Scrape m(daemon);
      return m["spanrelay_dropped_spans_total{reason=\"non_retryable\"}"] == kSpansPerRequest &&
             m["spanrelay_exporter_sent_spans_total"] == kSpansPerRequest;
    }));
    const Scrape m(daemon);
    CHECK(m["spanrelay_exporter_failed_requests_total{code=\"" + c.code + "\"}"] == 1);
    CHECK(m["spanrelay_exporter_retries_total"] == 0);
    const Arrival arrival = compare_arrival(sink, app.acked());
    MESSAGE(arrival.describe());
    CHECK(arrival.at_sink == kSpansPerRequest);
    CHECK(arrival.missing == kSpansPerRequest);
    CHECK(arrival.duplicates == 0);
    CHECK(line_count(sink.requests_log()) == 2);  // not retried
    check_balance(daemon);
  }
}

TEST_CASE("delivery: partial success counts the rejected spans and is not retried") {
  for (const std::string exporter : {"otlp_grpc", "otlp_http"}) {
    CAPTURE(exporter);
    TempDir dir;
    Sink sink(dir, {"--partial-reject", "3"});
    RelaySetup setup;
    setup.exporter = exporter;
    setup.endpoint =
        exporter == "otlp_http" ? "http://" + sink.http_address() : sink.grpc_address();
    Daemon daemon(dir, relay_yaml(setup));
    AppSide app;
    for (int i = 0; i < 5; ++i) {
      std::vector<GeneratedSpan> spans;
      send_acked(daemon, app, alternate(i), make_request({.seed = 4200u + i}, &spans), spans);
    }
    const Arrival arrival = wait_for_arrival(sink, app.acked());
    REQUIRE(wait_until([&] { return drained(daemon); }));
    const double upstream_requests = static_cast<double>(line_count(sink.requests_log()));
    const Scrape m(daemon);
    MESSAGE(arrival.describe() << " upstream_requests=" << upstream_requests);
    CHECK(upstream_requests == 5);  // one per batch: nothing was sent twice
    CHECK(m["spanrelay_dropped_spans_total{reason=\"upstream_rejected\"}"] ==
          3 * upstream_requests);
    CHECK(m["spanrelay_exporter_sent_spans_total"] == 5 * kSpansPerRequest - 3 * upstream_requests);
    CHECK(m["spanrelay_exporter_retries_total"] == 0);
    CHECK(arrival.missing == 0);
    CHECK(arrival.duplicates == 0);
    check_balance(daemon);
  }
}

TEST_CASE("delivery: a full spool with drop_oldest drops the oldest batches, counted") {
  TempDir dir;
  RelaySetup setup;
  setup.endpoint = loopback(unused_tcp_port());
  setup.spool =
      spool_yaml(dir.file("spool"), "max_size: 1MiB, fsync: never, when_full: drop_oldest");
  Daemon daemon(dir, relay_yaml(setup));
  AppSide app;
  std::vector<GeneratedSpan> newest;
  for (int i = 0; i < 100; ++i) {  // ~2 MiB of incompressible spans
    std::vector<GeneratedSpan> spans;
    send_acked(daemon, app, alternate(i), make_padded_request({.seed = 7000u + i}, 1024, &spans),
               spans);
    if (i == 99) newest = spans;
  }
  const double acked = static_cast<double>(app.acked().size());
  REQUIRE(wait_until([&] {
    const Scrape m(daemon);
    return m["spanrelay_queue_spans"] == 0 &&
           m["spanrelay_spool_spans"] + m["spanrelay_dropped_spans_total{reason=\"spool_full\"}"] ==
               acked;
  }));
  const Scrape m(daemon);
  const double evicted = m["spanrelay_dropped_spans_total{reason=\"spool_full\"}"];
  MESSAGE("acked " << acked << " spans; spool_full drops " << evicted << "; spool bytes "
                   << m["spanrelay_spool_bytes"]);
  CHECK(evicted > 0);
  CHECK(m["spanrelay_spool_bytes"] <= 1024.0 * 1024);
  check_balance(daemon);

  Sink sink(dir, sink_on(setup.endpoint));
  REQUIRE(wait_until([&] { return drained(daemon); }, 90s));
  const Arrival arrival = compare_arrival(sink, app.acked());
  MESSAGE(arrival.describe());
  CHECK(arrival.missing == evicted);  // exactly the counted drops are missing
  CHECK(arrival.duplicates == 0);
  CHECK(arrival.altered == 0);
  CHECK(compare_arrival(sink, newest).missing == 0);  // the oldest went, not the newest
  check_balance(daemon);
}

TEST_CASE("delivery: a full spool with refuse_new refuses the apps once memory is full too") {
  TempDir dir;
  RelaySetup setup;
  setup.endpoint = loopback(unused_tcp_port());
  setup.memory_limit = "128KiB";
  setup.batch = "{ max_spans: 20, max_bytes: 64KiB, timeout: 50ms }";
  setup.spool =
      spool_yaml(dir.file("spool"), "max_size: 1MiB, fsync: never, when_full: refuse_new");
  Daemon daemon(dir, relay_yaml(setup));
  AppSide app;
  const auto http_refusal = send_until_refused(daemon, app, Via::kHttp, 7500, 300, 1024);
  REQUIRE_MESSAGE(http_refusal.has_value(), "never refused");
  CHECK(says_when_to_retry(Via::kHttp, *http_refusal));
  {
    const Scrape m(daemon);
    MESSAGE("refused after " << app.acked_requests() << " acked requests; spool bytes "
                             << m["spanrelay_spool_bytes"]);
    CHECK(m["spanrelay_spool_bytes"] > 1024.0 * 1024 - 64 * 1024);  // refused only when full
  }
  const auto grpc_refusal = send_until_refused(daemon, app, Via::kGrpc, 7900, 20, 1024);
  REQUIRE_MESSAGE(grpc_refusal.has_value(), "gRPC was not refused with memory and spool full");
  CHECK(says_when_to_retry(Via::kGrpc, *grpc_refusal));
  {
    const Scrape m(daemon);
    CHECK(m["spanrelay_receiver_refused_spans_total{reason=\"memory_limit\"}"] ==
          app.refused_requests() * kSpansPerRequest);
    CHECK(m.sum("spanrelay_dropped_spans_total{") == 0);  // refuse_new keeps what it has
  }
  check_balance(daemon);

  Sink sink(dir, sink_on(setup.endpoint));
  const Arrival arrival = wait_for_arrival(sink, app.acked());
  MESSAGE(arrival.describe());
  CHECK(arrival.missing == 0);
  CHECK(arrival.duplicates == 0);
  CHECK(arrival.altered == 0);
  CHECK(arrival.unacked == 0);
  CHECK(wait_until([&] { return drained(daemon); }));
  check_balance(daemon);
}
