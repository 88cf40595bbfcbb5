// The embedded default: the file exporter writes OTLP/JSON lines that any
// OTLP/JSON reader (here: our decoder, checked against libprotobuf) accepts.
#include <doctest/doctest.h>

#include <set>
#include <sstream>

#include "daemon/otlp/json_transcoder.h"
#include "tests/e2e/harness.h"

using namespace spanrelay::e2e;

TEST_CASE("file exporter: every span lands in the file as valid OTLP/JSON") {
  TempDir dir;
  const auto yaml =
      "receivers:\n  otlp:\n    grpc: { endpoint: 127.0.0.1:0 }\n    http: { endpoint: 127.0.0.1:0 "
      "}\n"
      "batch: { timeout: 50ms }\n"
      "exporter: { type: file, path: " +
      dir.file("out/spans.jsonl") +
      " }\n"
      "telemetry: { metrics: { endpoint: 127.0.0.1:0 } }\n";
  Daemon daemon(dir, yaml);
  std::vector<GeneratedSpan> sent;
  REQUIRE(grpc_export(daemon.tcp_address("grpc"),
                      serialize(make_request({.unknown_fields = false, .seed = 1}, &sent)))
              .status == 0);
  REQUIRE(http_export(daemon.tcp_address("http"),
                      serialize(make_request({.unknown_fields = false, .seed = 2}, &sent)))
              .status == 200);
  REQUIRE(daemon.stop() == 0);

  std::istringstream lines(read_file(dir.file("out/spans.jsonl")));
  std::string line;
  std::set<std::string> got;
  int line_count = 0;
  while (std::getline(lines, line)) {
    ++line_count;
    auto binary = spanrelay::otlp::json_to_protobuf(line);
    REQUIRE_MESSAGE(binary.ok(), binary.error().message);
    ExportRequest request;
    REQUIRE(request.ParseFromString(binary.value()));
    for (const auto& rs : request.resource_spans()) {
      for (const auto& ss : rs.scope_spans()) {
        for (const auto& span : ss.spans()) {
          got.insert(hex(span.trace_id()) + "/" + hex(span.span_id()) + "/" +
                     span_digest(span.SerializeAsString()));
        }
      }
    }
  }
  CHECK(line_count >= 1);
  CHECK(got.size() == sent.size());
  for (const auto& s : sent)
    CHECK(got.count(s.trace_id_hex + "/" + s.span_id_hex + "/" + s.digest) == 1);
}

TEST_CASE("cli: --version, --help, --check-config") {
  TempDir dir;
  {
    Process p(SPANRELAYD_PATH, {"--version"}, dir.file("v.log"));
    CHECK(p.wait_exit() == 0);
    CHECK(p.log().find("spanrelayd ") != std::string::npos);
  }
  {
    Process p(SPANRELAYD_PATH, {"--help"}, dir.file("h.log"));
    CHECK(p.wait_exit() == 0);
    CHECK(p.log().find("--check-config") != std::string::npos);
  }
  {
    write_file(dir.file("bad.yaml"), "batch:\n  max_spans: lots\n");
    Process p(SPANRELAYD_PATH, {"--config", dir.file("bad.yaml"), "--check-config"},
              dir.file("c.log"));
    CHECK(p.wait_exit() == 2);
    CHECK(p.log().find("bad.yaml:2:14: batch.max_spans") != std::string::npos);
  }
  {
    Process p(SPANRELAYD_PATH,
              {"--config", SPANRELAY_TESTDATA_DIR "/../../config/spanrelay.yaml", "--check-config"},
              dir.file("ok.log"));
    CHECK(p.wait_exit() == 0);
  }
  {
    Process p(SPANRELAYD_PATH, {"--no-such-flag"}, dir.file("u.log"));
    CHECK(p.wait_exit() == 2);
  }
}

TEST_CASE("cli: a port already in use is a clear start-up error, exit 1") {
  TempDir dir;
  Daemon first(
      dir,
      "receivers:\n  otlp:\n    grpc: { endpoint: 127.0.0.1:0 }\n    http: { endpoint: \"\" }\n"
      "telemetry: { metrics: { endpoint: \"\" } }\nexporter: { type: file, path: " +
          dir.file("a.jsonl") + " }\n",
      "first");
  const auto taken = first.tcp_address("grpc");
  write_file(dir.file("second.yaml"),
             "receivers:\n  otlp:\n    grpc: { endpoint: " + taken +
                 " }\n    http: { endpoint: \"\" }\n"
                 "telemetry: { metrics: { endpoint: \"\" } }\nexporter: { type: file, path: " +
                 dir.file("b.jsonl") + " }\n");
  Process second(SPANRELAYD_PATH, {"--config", dir.file("second.yaml")}, dir.file("second.log"));
  CHECK(second.wait_exit() == 1);
  CHECK(second.log().find(taken) != std::string::npos);
}
