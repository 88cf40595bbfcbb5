// Data hygiene end to end (issue 7): spans carrying a card number, e-mail
// addresses and a secret go through a real spanrelayd; what reaches the
// upstream (the test sink, and the file exporter's OTLP/JSON) holds none of
// the raw values, the hashed value is the salted SHA-256 an operator can
// recompute, resource enrichment arrives, and the counters say what changed.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "daemon/otlp/json_transcoder.h"
#include "daemon/processing/sha256.h"
#include "tests/e2e/harness.h"

using namespace spanrelay::e2e;

namespace {

namespace common = opentelemetry::proto::common::v1;
namespace trace = opentelemetry::proto::trace::v1;
using KeyValues = google::protobuf::RepeatedPtrField<common::KeyValue>;

constexpr const char* kSalt = "e2e-salt-7f3a";
constexpr const char* kSecret = "hunter2-do-not-leak";
constexpr const char* kEmail = "ada.lovelace@example.com";
constexpr const char* kEventEmail = "bob@example.org";
constexpr const char* kCard = "4111 1111 1111 1111";  // a published test number (Luhn-valid)
constexpr int kSpans = 6;

void add_string(KeyValues* attributes, const std::string& key, const std::string& value) {
  auto* kv = attributes->Add();
  kv->set_key(key);
  kv->mutable_value()->set_string_value(value);
}

std::string salted_sha256(const std::string& value) {
  spanrelay::processing::Sha256 hasher;
  hasher.update(kSalt);
  hasher.update(value);
  return spanrelay::processing::to_hex(hasher.finish());
}

std::string redaction_yaml(const TempDir& dir) {
  write_file(dir.file("salt"), kSalt);
  return "redaction:\n"
         "  delete_keys: [app.secret]\n"
         "  delete_key_patterns: [\"http\\\\.request\\\\.header\\\\..*\"]\n"
         "  hash_keys: [user.email]\n"
         "  hash_salt: ${file:" +
         dir.file("salt") +
         "}\n"
         "  mask:\n"
         "    - { pattern: card_number, replacement: \"[card]\" }\n"
         "    - { pattern: email }\n"
         "resource:\n"
         "  attributes:\n"
         "    deployment.environment: e2e\n"
         "    k8s.node.name: \"${env:SPANRELAY_E2E_NODE_NAME}\"\n";
}

// Spans with the values to hide (and one clean span), plus for each span
// the bytes it must have once redacted, built independently with libprotobuf.
ExportRequest make_sensitive_request(std::vector<std::string>* expected_digests) {
  ExportRequest request;
  auto* resource_spans = request.add_resource_spans();
  add_string(resource_spans->mutable_resource()->mutable_attributes(), "service.name", "shop");
  auto* scope_spans = resource_spans->add_scope_spans();
  scope_spans->mutable_scope()->set_name("e2e");
  for (int i = 0; i < kSpans; ++i) {
    trace::Span* span = scope_spans->add_spans();
    span->set_trace_id(std::string(15, '\x11') + static_cast<char>(i + 1));
    span->set_span_id(std::string(7, '\x22') + static_cast<char>(i + 1));
    span->set_name("checkout");
    span->set_start_time_unix_nano(1000 + i);
    span->set_end_time_unix_nano(2000 + i);
    trace::Span expected = *span;
    add_string(span->mutable_attributes(), "http.route", "/pay");
    add_string(expected.mutable_attributes(), "http.route", "/pay");
    if (i != kSpans - 1) {  // the last span has nothing to redact
      add_string(span->mutable_attributes(), "app.secret", kSecret);
      add_string(span->mutable_attributes(), "http.request.header.authorization", kSecret);
      add_string(span->mutable_attributes(), "user.email", kEmail);
      add_string(expected.mutable_attributes(), "user.email", salted_sha256(kEmail));
      add_string(span->mutable_attributes(), "payment.note",
                 std::string("paid with ") + kCard + " by " + kEmail);
      add_string(expected.mutable_attributes(), "payment.note", "paid with [card] by ***");
      auto* event = span->add_events();
      auto* expected_event = expected.add_events();
      event->set_name("receipt");
      expected_event->set_name("receipt");
      add_string(event->mutable_attributes(), "to", kEventEmail);
      add_string(expected_event->mutable_attributes(), "to", "***");
    }
    expected_digests->push_back(span_digest(expected.SerializeAsString()));
  }
  return request;
}

void check_no_raw_value(const std::string& text, const std::string& where) {
  const std::vector<std::string> raw_values{kSecret, kEmail, kEventEmail, kCard,
                                            "4111111111111111"};
  for (const std::string& raw : raw_values) {
    CHECK_MESSAGE(text.find(raw) == std::string::npos, where << " contains " << raw);
  }
}

}  // namespace

TEST_CASE("redaction: no redacted value reaches the sink; spans arrive exactly as redacted") {
  ::setenv("SPANRELAY_E2E_NODE_NAME", "node-e2e-7", 1);
  TempDir dir;
  Sink sink(dir);
  const std::string yaml =
      "receivers:\n  otlp:\n    grpc: { endpoint: 127.0.0.1:0 }\n"
      "    http: { endpoint: 127.0.0.1:0 }\n"
      "batch: { timeout: 50ms }\n"
      "exporter: { type: otlp_grpc, endpoint: " +
      sink.grpc_address() +
      ", compression: gzip }\n"
      "telemetry: { metrics: { endpoint: 127.0.0.1:0 } }\n" +
      redaction_yaml(dir);
  Daemon daemon(dir, yaml);
  std::vector<std::string> expected;
  const ExportRequest request = make_sensitive_request(&expected);
  REQUIRE(grpc_export(daemon.tcp_address("grpc"), request.SerializeAsString()).status == 0);
  REQUIRE(http_export(daemon.tcp_address("http"), request.SerializeAsString()).status == 200);
  REQUIRE(sink.wait_for_spans(2 * kSpans));

  // The sink's digests cover every byte of each span it received: equal to
  // the digest of the independently redacted span means nothing else arrived.
  std::multiset<std::string> got;
  for (const auto& span : sink.spans()) got.insert(span.digest);
  CHECK(got.size() == 2 * kSpans);
  for (const auto& digest : expected) CHECK(got.count(digest) == 2);
  check_no_raw_value(read_file(dir.file("sink-spans.jsonl")), "the sink's span record");
  check_no_raw_value(sink.requests_log(), "the sink's request record");

  // Per request: 5 spans x (2 deleted, 1 hashed, 2 masked); 5 spans changed.
  CHECK(daemon.metric("spanrelay_redaction_attributes_total{action=\"deleted\"}") == 2 * 5 * 2);
  CHECK(daemon.metric("spanrelay_redaction_attributes_total{action=\"hashed\"}") == 2 * 5 * 1);
  CHECK(daemon.metric("spanrelay_redaction_attributes_total{action=\"masked\"}") == 2 * 5 * 2);
  CHECK(daemon.metric("spanrelay_redaction_spans_total") == 2 * 5);
  CHECK(daemon.stop() == 0);
}

TEST_CASE("redaction: the exported OTLP/JSON has hashes and resource enrichment, no raw values") {
  ::setenv("SPANRELAY_E2E_NODE_NAME", "node-e2e-7", 1);
  TempDir dir;
  const std::string yaml =
      "receivers:\n  otlp:\n    grpc: { endpoint: 127.0.0.1:0 }\n"
      "    http: { endpoint: 127.0.0.1:0 }\n"
      "batch: { timeout: 50ms }\n"
      "exporter: { type: file, path: " +
      dir.file("out/spans.jsonl") +
      " }\n"
      "telemetry: { metrics: { endpoint: 127.0.0.1:0 } }\n" +
      redaction_yaml(dir);
  Daemon daemon(dir, yaml);
  std::vector<std::string> expected;
  const ExportRequest request = make_sensitive_request(&expected);
  REQUIRE(http_export(daemon.tcp_address("http"), request.SerializeAsString()).status == 200);
  REQUIRE(daemon.stop() == 0);

  const std::string text = read_file(dir.file("out/spans.jsonl"));
  check_no_raw_value(text, "the exported OTLP/JSON");
  CHECK(text.find(salted_sha256(kEmail)) != std::string::npos);

  std::istringstream lines(text);
  std::string line;
  int spans = 0;
  while (std::getline(lines, line)) {
    auto binary = spanrelay::otlp::json_to_protobuf(line);
    REQUIRE_MESSAGE(binary.ok(), binary.error().message);
    ExportRequest exported;
    REQUIRE(exported.ParseFromString(binary.value()));
    for (const auto& resource_spans : exported.resource_spans()) {
      std::map<std::string, std::string> resource;
      for (const auto& kv : resource_spans.resource().attributes()) {
        resource[kv.key()] = kv.value().string_value();
      }
      CHECK(resource["service.name"] == "shop");
      CHECK(resource["deployment.environment"] == "e2e");
      CHECK(resource["k8s.node.name"] == "node-e2e-7");
      for (const auto& scope_spans : resource_spans.scope_spans()) {
        for (const auto& span : scope_spans.spans()) {
          ++spans;
          CHECK(std::count(expected.begin(), expected.end(),
                           span_digest(span.SerializeAsString())) == 1);
        }
      }
    }
  }
  CHECK(spans == kSpans);
}
