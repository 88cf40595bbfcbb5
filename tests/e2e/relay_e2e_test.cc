// The foundation end to end: every ingress (gRPC and HTTP, TCP and Unix) x
// encoding x compression reaches a real upstream (spanrelay-testsink) span
// for span and byte for byte; bad input is answered and counted while the
// daemon keeps serving; SIGTERM flushes; the accounting balances.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <set>
#include <sstream>

#include "daemon/common/compression.h"
#include "daemon/otlp/json_transcoder.h"
#include "spanrelay/rpc/status.pb.h"
#include "tests/e2e/harness.h"

using namespace spanrelay::e2e;
using spanrelay::Codec;

namespace {

struct Setup {
  std::string exporter = "otlp_grpc";
  std::string compression = "gzip";
  std::string batch = "{ max_spans: 1024, max_bytes: 1MiB, timeout: 100ms }";
  std::string retry = "{ initial_interval: 10ms, max_interval: 100ms, max_elapsed: 1m }";
  std::string extra_receivers;
  std::string shutdown_timeout = "10s";
  std::string memory_limit = "64MiB";
};

std::string relay_yaml(const TempDir& dir, const Sink* sink, const Setup& s) {
  std::ostringstream y;
  y << "receivers:\n"
    << "  otlp:\n"
    << "    grpc: { endpoint: 127.0.0.1:0, unix_socket: " << dir.file("g.sock")
    << ", unix_socket_mode: \"0600\" }\n"
    << "    http: { endpoint: 127.0.0.1:0, unix_socket: " << dir.file("h.sock") << " }\n"
    << "    max_request_size: 1MiB\n"
    << s.extra_receivers << "batch: " << s.batch << "\n"
    << "exporter:\n"
    << "  type: " << s.exporter << "\n";
  if (s.exporter == "otlp_grpc") {
    y << "  endpoint: " << sink->grpc_address() << "\n  compression: " << s.compression << "\n";
  } else if (s.exporter == "otlp_http") {
    y << "  endpoint: http://" << sink->http_address() << "\n  compression: " << s.compression
      << "\n";
  } else {
    y << "  path: " << dir.file("spans.jsonl") << "\n";
  }
  y << "  timeout: 5s\n  headers: { x-tenant: e2e }\n"
    << "  retry: " << s.retry << "\n"
    << "  queue: { memory_limit: " << s.memory_limit << " }\n"
    << "telemetry:\n  metrics: { endpoint: 127.0.0.1:0 }\n  log: { level: info }\n"
    << "service: { shutdown_timeout: " << s.shutdown_timeout << " }\n";
  return y.str();
}

std::string address_of(const Daemon& daemon, const std::string& listener, bool unix_socket) {
  for (const auto& a : daemon.addresses(listener)) {
    if ((a.rfind("unix:", 0) == 0) == unix_socket) return a;
  }
  FAIL("no " << (unix_socket ? "unix" : "tcp") << " address for " << listener);
  return {};
}

// Every generated span arrived exactly once with identical bytes.
void check_arrived(const Sink& sink, const std::vector<GeneratedSpan>& sent) {
  REQUIRE(sink.wait_for_spans(sent.size()));
  std::multiset<std::string> got;
  for (const auto& s : sink.spans()) got.insert(s.trace_id + "/" + s.span_id + "/" + s.digest);
  for (const auto& s : sent) {
    const auto key = s.trace_id_hex + "/" + s.span_id_hex + "/" + s.digest;
    CHECK_MESSAGE(got.count(key) == 1, "span " << key << " arrived " << got.count(key) << " times");
  }
  CHECK(got.size() == sent.size());
}

std::string compress_or_fail(Codec codec, const std::string& body) {
  auto packed = spanrelay::compress(codec, body);
  REQUIRE(packed.ok());
  return packed.value();
}

void check_accounting(const Daemon& daemon) {
  const double accepted =
      daemon.metric(
          "spanrelay_receiver_accepted_spans_total{transport=\"grpc\",encoding=\"protobuf\"}") +
      daemon.metric(
          "spanrelay_receiver_accepted_spans_total{transport=\"grpc\",encoding=\"json\"}") +
      daemon.metric(
          "spanrelay_receiver_accepted_spans_total{transport=\"http\",encoding=\"protobuf\"}") +
      daemon.metric(
          "spanrelay_receiver_accepted_spans_total{transport=\"http\",encoding=\"json\"}");
  double dropped = 0;
  for (const char* reason :
       {"retry_exhausted", "non_retryable", "upstream_rejected", "shutdown_timeout"}) {
    dropped +=
        daemon.metric(std::string("spanrelay_dropped_spans_total{reason=\"") + reason + "\"}");
  }
  const double sent = daemon.metric("spanrelay_exporter_sent_spans_total");
  const double queued = daemon.metric("spanrelay_queue_spans");
  CHECK(accepted == sent + dropped + queued);
}

}  // namespace

TEST_CASE("relay: gRPC over TCP and Unix, plain and gzip, arrives span for span") {
  TempDir dir;
  Sink sink(dir);
  Daemon daemon(dir, relay_yaml(dir, &sink, {}));
  std::vector<GeneratedSpan> sent;
  std::uint64_t seed = 100;
  for (bool unix_socket : {false, true}) {
    for (bool gzip : {false, true}) {
      CAPTURE(unix_socket);
      CAPTURE(gzip);
      auto request = make_request({.seed = ++seed}, &sent);
      auto result = grpc_export(address_of(daemon, "grpc", unix_socket), serialize(request), gzip);
      CHECK_MESSAGE(result.status == 0, result.body);
    }
  }
  check_arrived(sink, sent);
  CHECK(daemon.metric(
            "spanrelay_receiver_accepted_spans_total{transport=\"grpc\",encoding=\"protobuf\"}") ==
        static_cast<double>(sent.size()));
  REQUIRE(wait_until(
      [&] { return daemon.metric("spanrelay_exporter_sent_spans_total") == sent.size(); }));
  check_accounting(daemon);
}

TEST_CASE(
    "relay: HTTP over TCP and Unix, protobuf and JSON, none/gzip/zstd, arrives span for span") {
  TempDir dir;
  Sink sink(dir);
  Daemon daemon(dir, relay_yaml(dir, &sink, {}));
  std::vector<GeneratedSpan> sent;
  std::uint64_t seed = 200;
  for (bool unix_socket : {false, true}) {
    for (const std::string encoding : {"protobuf", "json"}) {
      for (Codec codec : {Codec::kIdentity, Codec::kGzip, Codec::kZstd}) {
        CAPTURE(unix_socket);
        CAPTURE(encoding);
        CAPTURE(spanrelay::codec_name(codec));
        // JSON cannot carry unknown protobuf fields; everything else must survive.
        const bool json = encoding == "json";
        auto request = make_request({.unknown_fields = !json, .seed = ++seed}, &sent);
        std::string body = serialize(request);
        if (json) {
          auto converted = spanrelay::otlp::protobuf_to_json(body);
          REQUIRE(converted.ok());
          body = converted.value();
        }
        const auto encoded = codec == Codec::kIdentity ? body : compress_or_fail(codec, body);
        auto result =
            http_export(address_of(daemon, "http", unix_socket), encoded,
                        json ? "application/json" : "application/x-protobuf",
                        codec == Codec::kIdentity ? "" : std::string(spanrelay::codec_name(codec)));
        CHECK_MESSAGE(result.status == 200, result.body);
        CHECK(result.headers["Content-Type"] ==
              (json ? "application/json" : "application/x-protobuf"));
        if (json) CHECK(result.body == "{}");
      }
    }
  }
  check_arrived(sink, sent);
  REQUIRE(wait_until(
      [&] { return daemon.metric("spanrelay_exporter_sent_spans_total") == sent.size(); }));
  check_accounting(daemon);
}

TEST_CASE("relay: OTLP/HTTP exporter with gzip and zstd delivers to the upstream") {
  for (const std::string compression : {"gzip", "zstd", "none"}) {
    CAPTURE(compression);
    TempDir dir;
    Sink sink(dir);
    Setup setup;
    setup.exporter = "otlp_http";
    setup.compression = compression;
    Daemon daemon(dir, relay_yaml(dir, &sink, setup));
    std::vector<GeneratedSpan> sent;
    auto request = make_request({.resources = 3, .seed = 300}, &sent);
    REQUIRE(grpc_export(daemon.tcp_address("grpc"), serialize(request)).status == 0);
    check_arrived(sink, sent);
    const auto requests = sink.requests_log();
    CHECK(requests.find(compression == "none" ? "identity" : compression) != std::string::npos);
  }
}

TEST_CASE("relay: bad input is answered, counted, and the daemon keeps serving") {
  TempDir dir;
  Sink sink(dir);
  Daemon daemon(dir, relay_yaml(dir, &sink, {}));
  const auto http = daemon.tcp_address("http");
  const auto grpc = daemon.tcp_address("grpc");

  SUBCASE("malformed protobuf over HTTP -> 400 with a google.rpc.Status") {
    auto r = http_export(http, std::string("\x0a\xff\xff\xff\x0f garbage", 14));
    CHECK(r.status == 400);
    spanrelay::rpc::Status status;
    REQUIRE(status.ParseFromString(r.body));
    CHECK(status.code() == 3);
    CHECK_FALSE(status.message().empty());
  }
  SUBCASE("malformed JSON -> 400 with a JSON Status") {
    auto r = http_export(http, "{\"resourceSpans\": [", "application/json");
    CHECK(r.status == 400);
    CHECK(r.body.find("\"code\":3") != std::string::npos);
  }
  SUBCASE("too large -> 413") {
    auto r = http_export(http, std::string(2u << 20, 'x'));
    CHECK(r.status == 413);
  }
  SUBCASE("gzip bomb -> 413") {
    auto r = http_export(http, compress_or_fail(Codec::kGzip, std::string(64u << 20, '\0')),
                         "application/x-protobuf", "gzip");
    CHECK(r.status == 413);
  }
  SUBCASE("unknown content type -> 415") {
    CHECK(http_export(http, "x", "text/plain").status == 415);
  }
  SUBCASE("wrong path -> 404, wrong method -> 405") {
    CHECK(
        http_request(http, "POST", "/v1/metrics", "x", {{"Content-Type", "application/x-protobuf"}})
            .status == 404);
    CHECK(http_request(http, "GET", "/v1/traces", "", {}).status == 405);
  }
  SUBCASE("malformed protobuf over gRPC -> INVALID_ARGUMENT") {
    auto r = grpc_export(grpc, std::string("\x0a\x05\x12\x03\x12\x01", 6));
    CHECK(r.status == 3);
    CHECK_FALSE(r.body.empty());
  }
  SUBCASE("too large over gRPC -> RESOURCE_EXHAUSTED") {
    CHECK(grpc_export(grpc, std::string(2u << 20, 'x')).status == 8);
  }
  // Whatever came before, a good request still goes through end to end.
  std::vector<GeneratedSpan> sent;
  REQUIRE(http_export(http, serialize(make_request({.seed = 400}, &sent))).status == 200);
  check_arrived(sink, sent);
  CHECK(daemon.process().running());
}

TEST_CASE("relay: decode errors are counted on /metrics") {
  TempDir dir;
  Sink sink(dir);
  Daemon daemon(dir, relay_yaml(dir, &sink, {}));
  http_export(daemon.tcp_address("http"), "\xff\xff\xff");
  grpc_export(daemon.tcp_address("grpc"), "\xff\xff\xff");
  http_export(daemon.tcp_address("http"), "x", "text/plain");
  CHECK(daemon.metric("spanrelay_receiver_refused_requests_total{reason=\"decode_error\"}") == 2);
  CHECK(daemon.metric(
            "spanrelay_receiver_refused_requests_total{reason=\"unsupported_media_type\"}") == 1);
  const auto text = daemon.metrics_text();
  for (const char* name :
       {"spanrelay_receiver_accepted_spans_total", "spanrelay_receiver_refused_spans_total",
        "spanrelay_exporter_sent_spans_total", "spanrelay_dropped_spans_total",
        "spanrelay_build_info"}) {
    CHECK_MESSAGE(text.find(std::string("# TYPE ") + name) != std::string::npos, name);
  }
}

TEST_CASE("relay: SIGTERM flushes every accepted span to the upstream and exits 0") {
  TempDir dir;
  Sink sink(dir);
  Setup setup;
  setup.batch = "{ max_spans: 100000, max_bytes: 64MiB, timeout: 1h }";  // only shutdown flushes
  Daemon daemon(dir, relay_yaml(dir, &sink, setup));
  std::vector<GeneratedSpan> sent;
  for (int i = 0; i < 20; ++i) {
    REQUIRE(
        grpc_export(daemon.tcp_address("grpc"), serialize(make_request({.seed = 500u + i}, &sent)))
            .status == 0);
  }
  CHECK(sink.span_count() == 0);  // nothing flushed yet: the batch is open
  const auto grpc_socket = dir.file("g.sock");
  CHECK(std::filesystem::exists(grpc_socket));
  auto code = daemon.stop();
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  check_arrived(sink, sent);
  CHECK_FALSE(std::filesystem::exists(grpc_socket));  // socket files are removed on exit
  CHECK_FALSE(std::filesystem::exists(dir.file("h.sock")));
}

TEST_CASE("relay: transient upstream failures are retried and nothing is lost") {
  for (const std::string status : {"503", "UNAVAILABLE"}) {
    for (const std::string exporter : {"otlp_grpc", "otlp_http"}) {
      CAPTURE(status);
      CAPTURE(exporter);
      TempDir dir;
      Sink sink(dir, {"--fail-first", "3", "--status", status, "--retry-after", "0"});
      Setup setup;
      setup.exporter = exporter;
      Daemon daemon(dir, relay_yaml(dir, &sink, setup));
      std::vector<GeneratedSpan> sent;
      REQUIRE(grpc_export(daemon.tcp_address("grpc"), serialize(make_request({.seed = 600}, &sent)))
                  .status == 0);
      check_arrived(sink, sent);
      CHECK(daemon.metric("spanrelay_exporter_retries_total") >= 3);
      REQUIRE(wait_until(
          [&] { return daemon.metric("spanrelay_exporter_sent_spans_total") == sent.size(); }));
      check_accounting(daemon);
    }
  }
}

TEST_CASE("relay: a non-retryable upstream answer drops the batch with a reason") {
  TempDir dir;
  Sink sink(dir, {"--fail-first", "1", "--status", "INVALID_ARGUMENT"});
  Daemon daemon(dir, relay_yaml(dir, &sink, {}));
  std::vector<GeneratedSpan> sent;
  REQUIRE(grpc_export(daemon.tcp_address("grpc"), serialize(make_request({.seed = 700}, &sent)))
              .status == 0);
  REQUIRE(wait_until([&] {
    return daemon.metric("spanrelay_dropped_spans_total{reason=\"non_retryable\"}") == sent.size();
  }));
  CHECK(daemon.metric("spanrelay_exporter_failed_requests_total{code=\"INVALID_ARGUMENT\"}") == 1);
  check_accounting(daemon);
}

TEST_CASE("relay: unix socket files get the configured mode") {
  TempDir dir;
  Sink sink(dir);
  Daemon daemon(dir, relay_yaml(dir, &sink, {}));
  struct stat st {};
  REQUIRE(stat(dir.file("g.sock").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(stat(dir.file("h.sock").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0660);  // the default
}

TEST_CASE("relay: a stale socket file from a crashed run is replaced") {
  TempDir dir;
  Sink sink(dir);
  const auto yaml = relay_yaml(dir, &sink, {});
  {
    Daemon first(dir, yaml, "first");
    first.process().signal(SIGKILL);
    first.process().wait_exit();
  }
  CHECK(std::filesystem::exists(dir.file("g.sock")));  // left behind by the kill
  Daemon second(dir, yaml, "second");
  std::vector<GeneratedSpan> sent;
  REQUIRE(grpc_export("unix:" + dir.file("g.sock"), serialize(make_request({.seed = 800}, &sent)))
              .status == 0);
  check_arrived(sink, sent);
}
