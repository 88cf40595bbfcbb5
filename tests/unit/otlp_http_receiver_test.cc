#include "daemon/receivers/otlp_http_receiver.h"

#include <doctest/doctest.h>
#include <simdjson.h>
#include <unistd.h>

#include <mutex>
#include <string>
#include <vector>

#include "daemon/common/compression.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "spanrelay/rpc/status.pb.h"
#include "tests/unit/http_test_client.h"

using namespace spanrelay;
using namespace spanrelay::receivers;
using spanrelay::testing::http_roundtrip;
using spanrelay::testing::HttpTestClient;
using ExportRequest = opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;

namespace {

constexpr std::size_t kMaxRequestSize = 4u << 20;
constexpr const char* kAccepted = "spanrelay_receiver_accepted_spans_total";
constexpr const char* kRefusedRequests = "spanrelay_receiver_refused_requests_total";

// Records what the receiver handed over; refuses when told to.
class RecordingConsumer : public SpanConsumer {
 public:
  Admission consume(otlp::ScannedRequest&& request) override {
    std::lock_guard lock(mutex_);
    if (refuse_) return Admission{false, "memory_limit", std::chrono::seconds(7)};
    requests_.push_back(std::move(request));
    return Admission{};
  }
  void set_refuse(bool refuse) {
    std::lock_guard lock(mutex_);
    refuse_ = refuse;
  }
  std::vector<otlp::ScannedRequest> take() {
    std::lock_guard lock(mutex_);
    return std::exchange(requests_, {});
  }

 private:
  std::mutex mutex_;
  bool refuse_ = false;
  std::vector<otlp::ScannedRequest> requests_;
};

ExportRequest make_export_request(int spans) {
  ExportRequest request;
  auto* resource_spans = request.add_resource_spans();
  auto* attribute = resource_spans->mutable_resource()->add_attributes();
  attribute->set_key("service.name");
  attribute->mutable_value()->set_string_value("checkout");
  auto* scope_spans = resource_spans->add_scope_spans();
  scope_spans->mutable_scope()->set_name("http-receiver-test");
  for (int i = 0; i < spans; ++i) {
    auto* span = scope_spans->add_spans();
    span->set_trace_id(std::string(16, static_cast<char>(0x40 + i)));
    span->set_span_id(std::string(8, static_cast<char>(0x10 + i)));
    span->set_name("GET /cart/" + std::to_string(i));
    span->set_kind(opentelemetry::proto::trace::v1::Span::SPAN_KIND_SERVER);
    span->set_start_time_unix_nano(1'700'000'000'000'000'000ull + i);
    span->set_end_time_unix_nano(1'700'000'000'500'000'000ull + i);
    auto* span_attribute = span->add_attributes();
    span_attribute->set_key("http.status_code");
    span_attribute->mutable_value()->set_int_value(200 + i);
  }
  return request;
}

constexpr const char* kJsonRequest = R"({"resourceSpans":[{"resource":{"attributes":[
  {"key":"service.name","value":{"stringValue":"checkout"}}]},"scopeSpans":[{"scope":{"name":"s"},
  "spans":[{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"eee19b7ec3c1b174",
  "name":"op","kind":2,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":1544712661000000000}]}]}]})";

struct Fixture {
  telemetry::Registry registry;
  RecordingConsumer consumer;
  Ingest ingest{consumer, registry, IngestLimits{kMaxRequestSize, 0}};
  OtlpHttpReceiver receiver{ingest, kMaxRequestSize};
  HttpServer server{receiver.server_options("otlp-http-test", 2), receiver.handler()};
  std::string socket_path = "/tmp/sro-" + std::to_string(getpid()) + ".sock";
  std::string tcp_address;
  std::string unix_address;

  Fixture() {
    REQUIRE(server.listen_tcp("127.0.0.1:0").ok());
    REQUIRE(server.listen_unix(socket_path, 0660).ok());
    server.start();
    tcp_address = server.bound_addresses().at(0);
    unix_address = server.bound_addresses().at(1);
  }

  double refused(const char* reason) {
    return registry.value(kRefusedRequests, {{"reason", reason}});
  }
  double accepted(const char* encoding) {
    return registry.value(kAccepted, {{"transport", "http"}, {"encoding", encoding}});
  }

  static testing::TestRequest post(std::string body, std::string content_type,
                                   std::string content_encoding = {},
                                   std::string target = "/v1/traces") {
    std::vector<std::pair<std::string, std::string>> headers{{"Content-Type", content_type}};
    if (!content_encoding.empty()) headers.emplace_back("Content-Encoding", content_encoding);
    return HttpTestClient::make_request(http::verb::post, std::move(target), std::move(body),
                                        std::move(headers));
  }

  // After any failure, a good request on a new connection must still work.
  void expect_good_request() {
    auto response = http_roundtrip(
        tcp_address, post(make_export_request(1).SerializeAsString(), "application/x-protobuf"));
    CHECK(response.result() == http::status::ok);
    CHECK(consumer.take().size() == 1);
  }
};

rpc::Status parse_status(const std::string& body) {
  rpc::Status status;
  REQUIRE(status.ParseFromString(body));
  return status;
}

// Checks a JSON google.rpc.Status and returns its message.
std::string parse_json_status(const std::string& body, int expected_code) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  REQUIRE(parser.parse(body).get(root) == simdjson::SUCCESS);
  int64_t code = 0;
  REQUIRE(root["code"].get(code) == simdjson::SUCCESS);
  CHECK(code == expected_code);
  std::string_view message;
  REQUIRE(root["message"].get(message) == simdjson::SUCCESS);
  return std::string(message);
}

}  // namespace

TEST_CASE("otlp_http_receiver: protobuf over TCP and Unix hands over byte-identical spans") {
  Fixture f;
  const auto request = make_export_request(3);
  for (const auto& address : {f.tcp_address, f.unix_address}) {
    CAPTURE(address);
    auto response =
        http_roundtrip(address, f.post(request.SerializeAsString(), "application/x-protobuf"));
    CHECK(response.result() == http::status::ok);
    CHECK(response[http::field::content_type] == "application/x-protobuf");
    CHECK(response.body().empty());  // an empty ExportTraceServiceResponse

    auto got = f.consumer.take();
    REQUIRE(got.size() == 1);
    REQUIRE(got[0].spans.size() == 3);
    const auto& sent_spans = request.resource_spans(0).scope_spans(0).spans();
    for (int i = 0; i < 3; ++i) {
      CHECK(got[0].span_bytes(got[0].spans[i]) == sent_spans[i].SerializeAsString());
    }
  }
  CHECK(f.accepted("protobuf") == 6);
}

TEST_CASE("otlp_http_receiver: JSON is answered in JSON, media type parameters are ignored") {
  Fixture f;
  for (const char* type : {"application/json", "Application/JSON; charset=utf-8"}) {
    CAPTURE(type);
    auto response = http_roundtrip(f.tcp_address, f.post(kJsonRequest, type));
    CHECK(response.result() == http::status::ok);
    CHECK(response[http::field::content_type] == "application/json");
    CHECK(response.body() == "{}");
    auto got = f.consumer.take();
    REQUIRE(got.size() == 1);
    REQUIRE(got[0].spans.size() == 1);
    CHECK(got[0].spans[0].trace_id[0] == 0x5b);
    CHECK(got[0].spans[0].span_id[7] == 0x74);
  }
  CHECK(f.accepted("json") == 2);
  // application/protobuf is an accepted spelling, and echoed back.
  auto response = http_roundtrip(
      f.tcp_address, f.post(make_export_request(1).SerializeAsString(), "application/protobuf"));
  CHECK(response.result() == http::status::ok);
  CHECK(response[http::field::content_type] == "application/protobuf");
}

TEST_CASE("otlp_http_receiver: gzip, deflate and zstd bodies are decompressed") {
  Fixture f;
  const auto request = make_export_request(2);
  for (auto codec : {Codec::kGzip, Codec::kDeflate, Codec::kZstd, Codec::kIdentity}) {
    const std::string name(codec_name(codec));
    CAPTURE(name);
    auto body = compress(codec, request.SerializeAsString());
    REQUIRE(body.ok());
    auto response =
        http_roundtrip(f.unix_address, f.post(body.value(), "application/x-protobuf", name));
    CHECK(response.result() == http::status::ok);
    auto got = f.consumer.take();
    REQUIRE(got.size() == 1);
    CHECK(got[0].spans.size() == 2);
  }
  auto json = compress(Codec::kZstd, kJsonRequest);
  CHECK(http_roundtrip(f.tcp_address, f.post(json.value(), "application/json", "zstd")).result() ==
        http::status::ok);
}

TEST_CASE("otlp_http_receiver: undecodable bodies are 400 with a google.rpc.Status") {
  Fixture f;
  SUBCASE("malformed protobuf") {
    auto response =
        http_roundtrip(f.tcp_address, f.post("\x0a\xff\xff\xff", "application/x-protobuf"));
    CHECK(response.result() == http::status::bad_request);
    CHECK(response[http::field::content_type] == "application/x-protobuf");
    const auto status = parse_status(response.body());
    CHECK(status.code() == 3);
    CHECK_FALSE(status.message().empty());
    CHECK(f.refused("decode_error") == 1);
  }
  SUBCASE("malformed JSON") {
    auto response =
        http_roundtrip(f.tcp_address, f.post("{\"resourceSpans\": [", "application/json"));
    CHECK(response.result() == http::status::bad_request);
    CHECK(response[http::field::content_type] == "application/json");
    CHECK(parse_json_status(response.body(), 3).find("invalid OTLP/JSON") == 0);
    CHECK(f.refused("decode_error") == 1);
  }
  SUBCASE("corrupt gzip") {
    auto response =
        http_roundtrip(f.tcp_address, f.post("definitely not gzip", "application/json", "gzip"));
    CHECK(response.result() == http::status::bad_request);
    CHECK(parse_json_status(response.body(), 3).find("invalid gzip body") == 0);
    CHECK(f.refused("bad_compression") == 1);
  }
  CHECK(f.consumer.take().empty());
  f.expect_good_request();
}

TEST_CASE("otlp_http_receiver: bodies over max_request_size are 413") {
  Fixture f;
  SUBCASE("on the wire: refused by the server, Status in the request's encoding") {
    HttpTestClient client(f.tcp_address);
    auto response =
        client.request(f.post(std::string(kMaxRequestSize + 1, 'x'), "application/json"));
    CHECK(response.result() == http::status::payload_too_large);
    CHECK(parse_json_status(response.body(), 8).find("exceeds the limit") != std::string::npos);
    CHECK(client.closed_by_server());
  }
  SUBCASE("a compression bomb: 64 MiB of zeros stops at the limit") {
    auto bomb = compress(Codec::kGzip, std::string(64u << 20, '\0'));
    REQUIRE(bomb.ok());
    REQUIRE(bomb.value().size() < kMaxRequestSize);
    auto response =
        http_roundtrip(f.tcp_address, f.post(bomb.value(), "application/x-protobuf", "gzip"));
    CHECK(response.result() == http::status::payload_too_large);
    const auto status = parse_status(response.body());
    CHECK(status.code() == 8);
    CHECK(status.message().find("exceeds the limit of 4194304 bytes") != std::string::npos);
  }
  CHECK(f.refused("too_large") == 1);
  CHECK(f.consumer.take().empty());
  f.expect_good_request();
}

TEST_CASE("otlp_http_receiver: unsupported media, encoding, path and method") {
  Fixture f;
  const auto body = make_export_request(1).SerializeAsString();
  SUBCASE("content type") {
    auto response = http_roundtrip(f.tcp_address, f.post(body, "text/plain"));
    CHECK(response.result() == http::status::unsupported_media_type);
    CHECK(response.body().find("unsupported content type 'text/plain'") == 0);
    CHECK(f.refused("unsupported_media_type") == 1);
  }
  SUBCASE("content encoding") {
    auto response = http_roundtrip(f.tcp_address, f.post(body, "application/x-protobuf", "br"));
    CHECK(response.result() == http::status::unsupported_media_type);
    CHECK(response.body().find("unsupported content encoding 'br'") == 0);
    CHECK(f.refused("unsupported_media_type") == 1);
  }
  SUBCASE("path") {
    auto response =
        http_roundtrip(f.tcp_address, f.post(body, "application/x-protobuf", "", "/v1/logs"));
    CHECK(response.result() == http::status::not_found);
  }
  SUBCASE("method") {
    auto response =
        http_roundtrip(f.tcp_address, HttpTestClient::make_request(http::verb::get, "/v1/traces"));
    CHECK(response.result() == http::status::method_not_allowed);
    CHECK(response[http::field::allow] == "POST");
  }
  CHECK(f.consumer.take().empty());
  f.expect_good_request();
}

TEST_CASE("otlp_http_receiver: a refusing consumer gives 429 with Retry-After") {
  Fixture f;
  f.consumer.set_refuse(true);
  const auto request = make_export_request(4).SerializeAsString();

  auto response = http_roundtrip(f.tcp_address, f.post(request, "application/x-protobuf"));
  CHECK(response.result() == http::status::too_many_requests);
  CHECK(response[http::field::retry_after] == "7");
  const auto status = parse_status(response.body());
  CHECK(status.code() == 8);
  REQUIRE(status.details_size() == 1);
  CHECK(status.details(0).type_url() == "type.googleapis.com/google.rpc.RetryInfo");
  rpc::RetryInfo retry_info;
  REQUIRE(retry_info.ParseFromString(status.details(0).value()));
  CHECK(retry_info.retry_delay().seconds() == 7);

  auto json = http_roundtrip(f.tcp_address, f.post(kJsonRequest, "application/json"));
  CHECK(json.result() == http::status::too_many_requests);
  CHECK(json[http::field::retry_after] == "7");
  CHECK(parse_json_status(json.body(), 8).find("memory_limit") != std::string::npos);
  CHECK(json.body().find("\"retryDelay\":\"7s\"") != std::string::npos);

  CHECK(f.refused("memory_limit") == 2);
  CHECK(f.registry.value("spanrelay_receiver_refused_spans_total", {{"reason", "memory_limit"}}) ==
        5);
  f.consumer.set_refuse(false);
  f.expect_good_request();
}

TEST_CASE("otlp_http_receiver: keep-alive carries several exports on one connection") {
  Fixture f;
  HttpTestClient client(f.unix_address);
  for (int i = 1; i <= 2; ++i) {
    auto response = client.request(
        f.post(make_export_request(i).SerializeAsString(), "application/x-protobuf"));
    CHECK(response.result() == http::status::ok);
    CHECK(response.keep_alive());
  }
  // A 400 answered by the receiver keeps the connection too.
  CHECK(client.request(f.post("\x0a\xff", "application/x-protobuf")).result() ==
        http::status::bad_request);
  CHECK(client.request(f.post(make_export_request(3).SerializeAsString(), "application/x-protobuf"))
            .result() == http::status::ok);
  auto got = f.consumer.take();
  REQUIRE(got.size() == 3);
  CHECK(got[0].spans.size() == 1);
  CHECK(got[1].spans.size() == 2);
  CHECK(got[2].spans.size() == 3);
}

TEST_CASE("otlp_http_receiver: JSON error messages are escaped") {
  telemetry::Registry registry;
  RecordingConsumer consumer;
  Ingest ingest{consumer, registry, IngestLimits{}};
  OtlpHttpReceiver receiver{ingest, kMaxRequestSize};
  HttpRequestHeader header;
  header.target("/v1/traces");
  header.set(http::field::content_type, "application/json");
  auto response = receiver.transport_error(header, http::status::bad_request,
                                           "quote \" backslash \\ newline \n ctrl \x01 bad \xff");
  CHECK(response.result() == http::status::bad_request);
  CHECK(parse_json_status(response.body(), 3) ==
        "quote \" backslash \\ newline \n ctrl \x01 bad \xEF\xBF\xBD");
}
