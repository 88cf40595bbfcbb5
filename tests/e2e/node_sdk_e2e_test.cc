// A real OpenTelemetry SDK as the client: the official JavaScript SDK
// (tests/sdk/node, pinned in package-lock.json) exports through spanrelayd
// over OTLP/gRPC, OTLP/HTTP protobuf and OTLP/HTTP JSON, and every span it
// made must reach the upstream (spanrelay-testsink) exactly once, with its
// trace id, parent, name and status intact. Our own clients in the other e2e
// tests can only prove we agree with ourselves; this proves we agree with the
// exporters people actually run.
//
// Needs `node` on PATH and `npm ci` run in tests/sdk/node. Without them the
// tests fail (a skipped interop test would look green), unless
// SPANRELAY_SKIP_NODE_SDK=1 says the environment knowingly has no Node.
#include <doctest/doctest.h>
#include <simdjson.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "tests/e2e/harness.h"

using namespace spanrelay::e2e;

namespace {

constexpr int kTraces = 60;
constexpr int kSpansPerTrace = 7;  // 420 spans: more than one SDK export batch (256)

std::filesystem::path node_package_dir() {
  return std::filesystem::path(SPANRELAY_TESTDATA_DIR "/../sdk/node").lexically_normal();
}

// `command -v node`: the first executable "node" in a PATH directory. The
// harness starts processes with execv, which does not search PATH itself.
std::optional<std::string> find_on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return std::nullopt;
  std::istringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) dir = ".";  // an empty PATH entry means the current directory
    const auto candidate = std::filesystem::path(dir) / program;
    std::error_code ec;
    if (std::filesystem::is_regular_file(candidate, ec) && access(candidate.c_str(), X_OK) == 0) {
      return candidate.string();
    }
  }
  return std::nullopt;
}

// The node binary, or nullopt after reporting why it cannot run: a FAIL, or
// a MESSAGE when SPANRELAY_SKIP_NODE_SDK=1 (then the caller returns early).
std::optional<std::string> node_or_report() {
  std::string problem;
  const auto node = find_on_path("node");
  const auto exporter_package = node_package_dir() / "node_modules" / "@opentelemetry" /
                                "exporter-trace-otlp-grpc" / "package.json";
  if (!node) {
    problem = "node is not on PATH";
  } else if (!std::filesystem::exists(exporter_package)) {
    problem = "the OpenTelemetry JS SDK is not installed: " + exporter_package.string() +
              " is missing (run `npm ci` in " + node_package_dir().string() + ")";
  } else {
    return node;
  }
  const char* skip = std::getenv("SPANRELAY_SKIP_NODE_SDK");
  if (skip != nullptr && std::string(skip) == "1") {
    MESSAGE("skipped (SPANRELAY_SKIP_NODE_SDK=1): " << problem);
  } else {
    FAIL(problem << "; set SPANRELAY_SKIP_NODE_SDK=1 to skip the Node SDK interop tests knowingly");
  }
  return std::nullopt;
}

// A relay exporting over OTLP/gRPC to the sink, flushing batches every 100ms.
std::string relay_yaml(const Sink& sink) {
  std::ostringstream y;
  y << "receivers:\n"
    << "  otlp:\n"
    << "    grpc: { endpoint: 127.0.0.1:0 }\n"
    << "    http: { endpoint: 127.0.0.1:0 }\n"
    << "batch: { timeout: 100ms }\n"
    << "exporter:\n"
    << "  type: otlp_grpc\n"
    << "  endpoint: " << sink.grpc_address() << "\n"
    << "  retry: { initial_interval: 10ms, max_interval: 100ms, max_elapsed: 1m }\n"
    << "telemetry:\n  metrics: { endpoint: 127.0.0.1:0 }\n  log: { level: info }\n";
  return y.str();
}

// One line of send-spans.mjs --out: a span the SDK created.
struct SdkSpan {
  std::string trace_id, span_id, parent_span_id, name;
  int status = 0;
};

std::vector<SdkSpan> read_sdk_spans(const std::string& path) {
  std::vector<SdkSpan> out;
  std::istringstream lines(read_file(path));
  std::string line;
  simdjson::dom::parser parser;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    simdjson::dom::element doc;
    REQUIRE_MESSAGE(!parser.parse(line).get(doc), "bad line in " << path << ": " << line);
    SdkSpan span;
    std::string_view text;
    std::int64_t status = 0;
    REQUIRE(!doc["trace_id"].get(text));
    span.trace_id = text;
    REQUIRE(!doc["span_id"].get(text));
    span.span_id = text;
    REQUIRE(!doc["parent_span_id"].get(text));
    span.parent_span_id = text;
    REQUIRE(!doc["name"].get(text));
    span.name = text;
    REQUIRE(!doc["status"].get(status));
    span.status = static_cast<int>(status);
    out.push_back(std::move(span));
  }
  return out;
}

struct NodeRun {
  std::string protocol;     // grpc | http/protobuf | http/json
  std::string compression;  // none | gzip
};

// Runs send-spans.mjs through a fresh relay and checks what the sink got.
void check_sdk_spans_arrive(const NodeRun& run) {
  const auto node = node_or_report();
  if (!node) return;

  TempDir dir;
  Sink sink(dir);
  Daemon daemon(dir, relay_yaml(sink));
  const bool grpc = run.protocol == "grpc";
  const auto endpoint =
      "http://" + daemon.tcp_address(grpc ? "grpc" : "http") + (grpc ? "" : "/v1/traces");
  const auto out_path = dir.file("sdk-spans.jsonl");
  Process sender(
      *node,
      {(node_package_dir() / "send-spans.mjs").string(), "--protocol", run.protocol, "--endpoint",
       endpoint, "--traces", std::to_string(kTraces), "--spans-per-trace",
       std::to_string(kSpansPerTrace), "--out", out_path, "--compression", run.compression},
      dir.file("send-spans.log"));
  const auto exit_code = sender.wait_exit(120s);
  REQUIRE_MESSAGE(exit_code.has_value(), "send-spans.mjs did not finish: " << sender.log());
  REQUIRE_MESSAGE(*exit_code == 0, "send-spans.mjs exited " << *exit_code << ": " << sender.log());

  const auto sdk_spans = read_sdk_spans(out_path);
  REQUIRE(sdk_spans.size() == static_cast<std::size_t>(kTraces * kSpansPerTrace));
  REQUIRE_MESSAGE(sink.wait_for_spans(sdk_spans.size()),
                  "sink has " << sink.span_count() << " of " << sdk_spans.size() << " spans");

  // The relay saw them on the ingress the SDK was told to use.
  const std::string ingress = grpc ? "transport=\"grpc\",encoding=\"protobuf\""
                              : run.protocol == "http/json"
                                  ? "transport=\"http\",encoding=\"json\""
                                  : "transport=\"http\",encoding=\"protobuf\"";
  CHECK(daemon.metric("spanrelay_receiver_accepted_spans_total{" + ingress + "}") ==
        static_cast<double>(sdk_spans.size()));

  // SIGTERM flushes whatever is left, so afterwards the sink's count is final:
  // "exactly that many" is not a race with a late duplicate.
  const auto daemon_exit = daemon.stop();
  REQUIRE(daemon_exit.has_value());
  CHECK(*daemon_exit == 0);

  std::multimap<std::string, SinkSpan> arrived;
  for (auto& span : sink.spans()) arrived.emplace(span.span_id, std::move(span));
  CHECK(arrived.size() == sdk_spans.size());
  int errors = 0;
  for (const auto& sent : sdk_spans) {
    CAPTURE(sent.span_id);
    CAPTURE(sent.name);
    REQUIRE(arrived.count(sent.span_id) == 1);
    const auto& got = arrived.find(sent.span_id)->second;
    CHECK(got.trace_id == sent.trace_id);
    CHECK(got.parent_span_id == sent.parent_span_id);
    CHECK(got.name == sent.name);
    CHECK(got.status == sent.status);
    CHECK(got.transport == "grpc");  // the relay's exporter, not the SDK's protocol
    if (sent.status == 2) ++errors;
  }
  // The ERROR spans (one in every 10th trace) were among them, status intact.
  CHECK(errors == kTraces / 10);
}

}  // namespace

TEST_CASE("node_sdk: the OpenTelemetry JS OTLP/gRPC exporter gets every span through the relay") {
  check_sdk_spans_arrive({.protocol = "grpc", .compression = "none"});
}

TEST_CASE(
    "node_sdk: the OpenTelemetry JS OTLP/HTTP protobuf exporter gets every span through the "
    "relay") {
  check_sdk_spans_arrive({.protocol = "http/protobuf", .compression = "none"});
}

TEST_CASE(
    "node_sdk: the OpenTelemetry JS OTLP/HTTP JSON exporter gets every span through the relay") {
  check_sdk_spans_arrive({.protocol = "http/json", .compression = "none"});
}

TEST_CASE(
    "node_sdk: the OpenTelemetry JS exporters with gzip compression get every span through the "
    "relay") {
  for (const std::string protocol : {"grpc", "http/protobuf", "http/json"}) {
    CAPTURE(protocol);
    check_sdk_spans_arrive({.protocol = protocol, .compression = "gzip"});
  }
}
