#include "daemon/exporters/grpc_exporter.h"

#include <doctest/doctest.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "spanrelay/rpc/status.pb.h"

using namespace spanrelay;
using namespace spanrelay::exporters;
namespace otlp_collector = opentelemetry::proto::collector::trace::v1;

namespace {

std::string sample_request(int spans = 20) {
  otlp_collector::ExportTraceServiceRequest request;
  auto* scope_spans = request.add_resource_spans()->add_scope_spans();
  for (int i = 0; i < spans; ++i) {
    auto* span = scope_spans->add_spans();
    span->set_trace_id(std::string(16, static_cast<char>(0x10 + i)));
    span->set_span_id(std::string(8, static_cast<char>(0x20 + i)));
    span->set_name("GET /api/orders/{id} served by the orders service");
    auto* attribute = span->add_attributes();
    attribute->set_key("http.route");
    attribute->mutable_value()->set_string_value("/api/orders/{id}");
  }
  return request.SerializeAsString();
}

std::string flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  REQUIRE(buffer.Dump(&slices).ok());
  std::string out;
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

struct ReceivedCall {
  std::string body;
  std::multimap<std::string, std::string> metadata;
};

// A stand-in upstream: records each raw request and answers what the test
// scripted (a status, a partial success, or nothing at all).
class FakeTraceService final : public otlp_collector::TraceService::WithRawCallbackMethod_Export<
                                   otlp_collector::TraceService::Service> {
 public:
  grpc::Status answer = grpc::Status::OK;
  std::int64_t rejected_spans = 0;  // > 0: OK with partial_success
  bool never_answer = false;

  grpc::ServerUnaryReactor* Export(grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override {
    auto* reactor = context->DefaultReactor();
    ReceivedCall call{flatten(*request), {}};
    for (const auto& [key, value] : context->client_metadata()) {
      call.metadata.emplace(std::string(key.data(), key.size()),
                            std::string(value.data(), value.size()));
    }
    std::lock_guard lock(mutex_);
    calls_.push_back(std::move(call));
    if (never_answer && !stopping_) {
      parked_.push_back(reactor);
      return reactor;
    }
    otlp_collector::ExportTraceServiceResponse answer_message;
    if (rejected_spans > 0) {
      answer_message.mutable_partial_success()->set_rejected_spans(rejected_spans);
      answer_message.mutable_partial_success()->set_error_message("spans too old");
    }
    // A raw handler must always hand back a valid (possibly empty) buffer.
    const std::string bytes = answer_message.SerializeAsString();
    grpc::Slice slice(bytes.data(), bytes.size());
    *response = grpc::ByteBuffer(&slice, 1);
    reactor->Finish(answer);
    return reactor;
  }

  std::vector<ReceivedCall> calls() {
    std::lock_guard lock(mutex_);
    return calls_;
  }

  // Unparks calls that were never answered so that the server can shut down.
  void release_parked() {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (auto* reactor : parked_) reactor->Finish(grpc::Status::CANCELLED);
    parked_.clear();
  }

 private:
  std::mutex mutex_;
  std::vector<ReceivedCall> calls_;
  std::vector<grpc::ServerUnaryReactor*> parked_;
  bool stopping_ = false;
};

class Upstream {
 public:
  // `address` "127.0.0.1:0" picks a free TCP port; "unix:/path" listens there.
  explicit Upstream(bool accept_gzip = true, std::string address = "127.0.0.1:0")
      : address_(std::move(address)) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort(address_, grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service);
    if (!accept_gzip) builder.SetCompressionAlgorithmSupportStatus(GRPC_COMPRESS_GZIP, false);
    server_ = builder.BuildAndStart();
    REQUIRE(server_ != nullptr);
    REQUIRE(port_ > 0);
  }
  ~Upstream() {
    service.release_parked();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  }
  std::string endpoint() const {
    return address_.rfind("unix:", 0) == 0 ? address_ : "127.0.0.1:" + std::to_string(port_);
  }

  FakeTraceService service;

 private:
  std::string address_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

config::ExporterConfig grpc_config(const std::string& endpoint) {
  config::ExporterConfig config;
  config.type = config::ExporterType::kOtlpGrpc;
  config.endpoint = endpoint;
  config.compression = config::Compression::kGzip;
  config.timeout = std::chrono::seconds(5);
  return config;
}

std::unique_ptr<Exporter> make(const config::ExporterConfig& config) {
  auto exporter = make_exporter(config);
  REQUIRE_MESSAGE(exporter.ok(), (exporter.ok() ? "" : exporter.error().message));
  return std::move(exporter).value();
}

grpc::Status status_with_retry_info(grpc::StatusCode code, std::int64_t seconds,
                                    std::int32_t nanos) {
  rpc::RetryInfo retry_info;
  retry_info.mutable_retry_delay()->set_seconds(seconds);
  retry_info.mutable_retry_delay()->set_nanos(nanos);
  rpc::Status details;
  details.set_code(static_cast<int>(code));
  details.set_message("slow down");
  auto* any = details.add_details();
  any->set_type_url("type.googleapis.com/google.rpc.RetryInfo");
  any->set_value(retry_info.SerializeAsString());
  return {code, "slow down", details.SerializeAsString()};
}

}  // namespace

TEST_CASE("grpc_exporter: request bytes arrive intact, headers as metadata") {
  Upstream upstream;
  auto config = grpc_config(upstream.endpoint());
  config.headers = {{"X-Tenant", "acme"}, {"authorization", "Bearer t0ken"}};
  auto exporter = make(config);
  CHECK(exporter->describe() == "otlp_grpc " + upstream.endpoint() + " gzip");

  const std::string request = sample_request();
  const ExportResult result = exporter->export_request(request, 20);
  CHECK(result.disposition == ExportDisposition::kSuccess);
  CHECK(result.code == "OK");
  CHECK(result.rejected_spans == 0);

  const auto calls = upstream.service.calls();
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].body == request);
  auto tenant = calls[0].metadata.find("x-tenant");
  REQUIRE(tenant != calls[0].metadata.end());
  CHECK(tenant->second == "acme");
  auto authorization = calls[0].metadata.find("authorization");
  REQUIRE(authorization != calls[0].metadata.end());
  CHECK(authorization->second == "Bearer t0ken");
  auto user_agent = calls[0].metadata.find("user-agent");
  REQUIRE(user_agent != calls[0].metadata.end());
  CHECK(user_agent->second.find("spanrelay/") != std::string::npos);
}

TEST_CASE("grpc_exporter: gzip is really used (a server without gzip refuses the message)") {
  // The gRPC C++ server decompresses before the handler sees anything, so the
  // proof is a server that has gzip disabled: it must refuse our message.
  Upstream no_gzip(/*accept_gzip=*/false);
  auto gzip_exporter = make(grpc_config(no_gzip.endpoint()));
  const ExportResult refused = gzip_exporter->export_request(sample_request(), 20);
  CHECK(refused.disposition == ExportDisposition::kPermanent);
  CHECK(refused.code == "UNIMPLEMENTED");
  CHECK(no_gzip.service.calls().empty());

  auto config = grpc_config(no_gzip.endpoint());
  config.compression = config::Compression::kNone;
  auto plain_exporter = make(config);
  CHECK(plain_exporter->describe().ends_with(" none"));
  CHECK(plain_exporter->export_request(sample_request(), 20).disposition ==
        ExportDisposition::kSuccess);
  CHECK(no_gzip.service.calls().size() == 1);
}

TEST_CASE("grpc_exporter: a unix:/path endpoint reaches a Unix-socket upstream") {
  const std::string path = "/tmp/spanrelay-grpc-exporter-" + std::to_string(::getpid()) + ".sock";
  ::unlink(path.c_str());
  {
    Upstream upstream(/*accept_gzip=*/true, "unix:" + path);
    auto exporter = make(grpc_config(upstream.endpoint()));
    const std::string request = sample_request();
    CHECK(exporter->export_request(request, 20).disposition == ExportDisposition::kSuccess);
    const auto calls = upstream.service.calls();
    REQUIRE(calls.size() == 1);
    CHECK(calls[0].body == request);
  }
  ::unlink(path.c_str());
}

TEST_CASE("grpc_exporter: partial success is a success with the rejected count") {
  Upstream upstream;
  upstream.service.rejected_spans = 7;
  auto exporter = make(grpc_config(upstream.endpoint()));
  const ExportResult result = exporter->export_request(sample_request(), 20);
  CHECK(result.disposition == ExportDisposition::kSuccess);
  CHECK(result.rejected_spans == 7);
  CHECK(result.message == "spans too old");
}

TEST_CASE("grpc_exporter: status codes classify by the OTLP retry rules") {
  struct Case {
    grpc::StatusCode code;
    ExportDisposition expected;
    const char* name;
  };
  const Case cases[] = {
      {grpc::StatusCode::CANCELLED, ExportDisposition::kRetryable, "CANCELLED"},
      {grpc::StatusCode::DEADLINE_EXCEEDED, ExportDisposition::kRetryable, "DEADLINE_EXCEEDED"},
      {grpc::StatusCode::ABORTED, ExportDisposition::kRetryable, "ABORTED"},
      {grpc::StatusCode::OUT_OF_RANGE, ExportDisposition::kRetryable, "OUT_OF_RANGE"},
      {grpc::StatusCode::UNAVAILABLE, ExportDisposition::kRetryable, "UNAVAILABLE"},
      {grpc::StatusCode::DATA_LOSS, ExportDisposition::kRetryable, "DATA_LOSS"},
      {grpc::StatusCode::RESOURCE_EXHAUSTED, ExportDisposition::kPermanent, "RESOURCE_EXHAUSTED"},
      {grpc::StatusCode::INVALID_ARGUMENT, ExportDisposition::kPermanent, "INVALID_ARGUMENT"},
      {grpc::StatusCode::UNAUTHENTICATED, ExportDisposition::kPermanent, "UNAUTHENTICATED"},
      {grpc::StatusCode::PERMISSION_DENIED, ExportDisposition::kPermanent, "PERMISSION_DENIED"},
      {grpc::StatusCode::INTERNAL, ExportDisposition::kPermanent, "INTERNAL"},
      {grpc::StatusCode::UNKNOWN, ExportDisposition::kPermanent, "UNKNOWN"},
  };
  Upstream upstream;
  auto exporter = make(grpc_config(upstream.endpoint()));
  for (const auto& c : cases) {
    CAPTURE(c.name);
    upstream.service.answer = grpc::Status(c.code, std::string("scripted ") + c.name);
    const ExportResult result = exporter->export_request(sample_request(), 20);
    CHECK(result.disposition == c.expected);
    CHECK(result.code == c.name);
    CHECK(result.message == std::string("scripted ") + c.name);
    CHECK_FALSE(result.retry_after.has_value());
  }
  CHECK(upstream.service.calls().size() == std::size(cases));
}

TEST_CASE("grpc_exporter: RESOURCE_EXHAUSTED with RetryInfo is retryable with its delay") {
  Upstream upstream;
  auto exporter = make(grpc_config(upstream.endpoint()));

  upstream.service.answer =
      status_with_retry_info(grpc::StatusCode::RESOURCE_EXHAUSTED, 2, 500'000'000);
  ExportResult result = exporter->export_request(sample_request(), 20);
  CHECK(result.disposition == ExportDisposition::kRetryable);
  CHECK(result.code == "RESOURCE_EXHAUSTED");
  REQUIRE(result.retry_after.has_value());
  CHECK(*result.retry_after == std::chrono::milliseconds(2500));

  // UNAVAILABLE is retryable anyway; its RetryInfo still sets the delay.
  upstream.service.answer = status_with_retry_info(grpc::StatusCode::UNAVAILABLE, 3, 0);
  result = exporter->export_request(sample_request(), 20);
  CHECK(result.disposition == ExportDisposition::kRetryable);
  REQUIRE(result.retry_after.has_value());
  CHECK(*result.retry_after == std::chrono::seconds(3));
}

TEST_CASE("grpc_exporter: details without RetryInfo leave RESOURCE_EXHAUSTED permanent") {
  rpc::Status details;
  details.set_code(static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
  auto* any = details.add_details();
  any->set_type_url("type.googleapis.com/google.rpc.QuotaFailure");
  any->set_value("\x0a\x00", 2);
  const grpc::Status status(grpc::StatusCode::RESOURCE_EXHAUSTED, "quota",
                            details.SerializeAsString());
  const ExportResult result = classify_grpc_outcome(status, "");
  CHECK(result.disposition == ExportDisposition::kPermanent);
  CHECK_FALSE(result.retry_after.has_value());

  // Garbage details are not RetryInfo either.
  const grpc::Status garbage(grpc::StatusCode::RESOURCE_EXHAUSTED, "quota", "\xff\xff\xff");
  CHECK(classify_grpc_outcome(garbage, "").disposition == ExportDisposition::kPermanent);
}

TEST_CASE("grpc_exporter: the deadline bounds a call to a server that never answers") {
  Upstream upstream;
  upstream.service.never_answer = true;
  auto config = grpc_config(upstream.endpoint());
  config.timeout = std::chrono::milliseconds(300);
  auto exporter = make(config);
  const ExportResult result = exporter->export_request(sample_request(), 20);
  CHECK(result.disposition == ExportDisposition::kRetryable);
  CHECK(result.code == "DEADLINE_EXCEEDED");
}

TEST_CASE("grpc_exporter: connection refused is retryable") {
  // A bound socket that never listens: connecting to it is refused, and the
  // port cannot be taken by anybody else during the test.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  socklen_t length = sizeof address;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  const std::string endpoint = "127.0.0.1:" + std::to_string(ntohs(address.sin_port));

  auto exporter = make(grpc_config(endpoint));
  const ExportResult result = exporter->export_request(sample_request(), 20);
  ::close(fd);
  CHECK(result.disposition == ExportDisposition::kRetryable);
  CHECK(result.code == "UNAVAILABLE");
}

TEST_CASE("grpc_exporter: configuration errors are reported by make_exporter") {
  auto config = grpc_config("127.0.0.1:4317");
  config.compression = config::Compression::kZstd;
  auto zstd = make_exporter(config);
  REQUIRE_FALSE(zstd.ok());
  CHECK(zstd.error().message.find("zstd") != std::string::npos);

  config = grpc_config("127.0.0.1:4317");
  config.headers = {{"bad header", "x"}};
  auto bad_key = make_exporter(config);
  REQUIRE_FALSE(bad_key.ok());
  CHECK(bad_key.error().message.find("bad header") != std::string::npos);

  config.headers = {{"x-ok", "line\r\nbreak"}};
  CHECK_FALSE(make_exporter(config).ok());

  config.headers.clear();
  config.endpoint.clear();
  CHECK_FALSE(make_exporter(config).ok());
}
