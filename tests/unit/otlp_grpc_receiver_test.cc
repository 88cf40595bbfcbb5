#include "daemon/receivers/otlp_grpc_receiver.h"

#include <doctest/doctest.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon/receivers/ingest.h"
#include "daemon/receivers/span_consumer.h"
#include "daemon/telemetry/metrics.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "spanrelay/rpc/status.pb.h"

namespace {

using namespace spanrelay;
using opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;
using opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse;
using opentelemetry::proto::collector::trace::v1::TraceService;

constexpr const char* kExportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

// Records what the receiver handed over; can be told to refuse (over budget).
class RecordingConsumer final : public receivers::SpanConsumer {
 public:
  receivers::Admission consume(otlp::ScannedRequest&& request) override {
    std::unique_lock lock(mutex_);
    ++calls_;
    changed_.notify_all();
    changed_.wait(lock, [this] { return !holding_; });
    if (refuse_) return receivers::Admission{false, "memory_limit", std::chrono::seconds(7)};
    for (const auto& span : request.spans) span_bytes_.emplace_back(request.span_bytes(span));
    return receivers::Admission{};
  }
  // Makes consume() wait until release(): a call that stays in flight.
  void hold() {
    std::lock_guard lock(mutex_);
    holding_ = true;
  }
  void release() {
    std::lock_guard lock(mutex_);
    holding_ = false;
    changed_.notify_all();
  }
  void wait_for_calls(int n) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return calls_ >= n; });
  }
  void refuse() {
    std::lock_guard lock(mutex_);
    refuse_ = true;
  }
  std::vector<std::string> span_bytes() const {
    std::lock_guard lock(mutex_);
    return span_bytes_;
  }
  int calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool holding_ = false;
  bool refuse_ = false;
  int calls_ = 0;
  std::vector<std::string> span_bytes_;
};

// A short directory under /tmp (Unix socket paths are limited to 107 bytes).
struct TempDir {
  TempDir() {
    char pattern[] = "/tmp/grpcrx-XXXXXX";
    REQUIRE(mkdtemp(pattern) != nullptr);
    path = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string path;
};

struct Harness {
  explicit Harness(config::ListenerConfig listener, std::size_t max_request_size = 4u << 20)
      : ingest(consumer, metrics, receivers::IngestLimits{max_request_size, 0}),
        receiver(std::move(listener), max_request_size, ingest) {}

  std::string address() const {
    const auto addresses = receiver.bound_addresses();
    REQUIRE(!addresses.empty());
    return addresses.front();
  }

  RecordingConsumer consumer;
  telemetry::Registry metrics;
  receivers::Ingest ingest;
  receivers::OtlpGrpcReceiver receiver;
};

config::ListenerConfig tcp_listener() { return config::ListenerConfig{"127.0.0.1:0", "", 0660}; }

ExportTraceServiceRequest make_request(int spans) {
  ExportTraceServiceRequest request;
  auto* resource_spans = request.add_resource_spans();
  auto* attribute = resource_spans->mutable_resource()->add_attributes();
  attribute->set_key("service.name");
  attribute->mutable_value()->set_string_value("checkout");
  auto* scope_spans = resource_spans->add_scope_spans();
  scope_spans->mutable_scope()->set_name("test-scope");
  for (int i = 0; i < spans; ++i) {
    auto* span = scope_spans->add_spans();
    span->set_trace_id(std::string(16, static_cast<char>(0x10 + i)));
    span->set_span_id(std::string(8, static_cast<char>(0x20 + i)));
    span->set_name("span-" + std::to_string(i));
    span->set_start_time_unix_nano(1'700'000'000'000'000'000ull + i);
    span->set_end_time_unix_nano(1'700'000'000'500'000'000ull + i);
    span->mutable_status()->set_code(opentelemetry::proto::trace::v1::Status::STATUS_CODE_ERROR);
  }
  return request;
}

std::vector<std::string> serialized_spans(const ExportTraceServiceRequest& request) {
  std::vector<std::string> out;
  for (const auto& rs : request.resource_spans())
    for (const auto& ss : rs.scope_spans())
      for (const auto& span : ss.spans()) out.push_back(span.SerializeAsString());
  return out;
}

std::shared_ptr<grpc::Channel> channel_to(const std::string& address) {
  return grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
}

grpc::Status export_typed(const std::string& address, const ExportTraceServiceRequest& request,
                          grpc_compression_algorithm compression = GRPC_COMPRESS_NONE) {
  auto stub = TraceService::NewStub(channel_to(address));
  grpc::ClientContext context;
  context.set_compression_algorithm(compression);
  ExportTraceServiceResponse response;
  const grpc::Status status = stub->Export(&context, request, &response);
  if (status.ok()) CHECK_FALSE(response.has_partial_success());
  return status;
}

// Sends raw bytes (no libprotobuf on the client side) and waits for the answer.
grpc::Status call_raw(const std::string& address, const std::string& method,
                      const std::string& bytes,
                      grpc_compression_algorithm compression = GRPC_COMPRESS_NONE) {
  grpc::GenericStub stub(channel_to(address));
  grpc::ClientContext context;
  context.set_compression_algorithm(compression);
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status status) { done.set_value(std::move(status)); });
  return done.get_future().get();
}

double refused_requests(const Harness& h, const std::string& reason) {
  return h.metrics.value("spanrelay_receiver_refused_requests_total", {{"reason", reason}});
}

}  // namespace

TEST_CASE("otlp_grpc_receiver: export over TCP hands the exact span bytes to the consumer") {
  Harness h(tcp_listener());
  REQUIRE(h.receiver.start().ok());
  const std::string address = h.address();
  CHECK(address.rfind("127.0.0.1:", 0) == 0);
  CHECK(address != "127.0.0.1:0");

  const auto request = make_request(3);
  const grpc::Status status = export_typed(address, request);
  CHECK_MESSAGE(status.ok(), status.error_message());
  CHECK(h.consumer.span_bytes() == serialized_spans(request));
  CHECK(h.metrics.value("spanrelay_receiver_accepted_spans_total",
                        {{"transport", "grpc"}, {"encoding", "protobuf"}}) == 3);
  CHECK(h.metrics.value("spanrelay_receiver_accepted_spans_total",
                        {{"transport", "http"}, {"encoding", "protobuf"}}) == 0);
}

TEST_CASE("otlp_grpc_receiver: export over a Unix socket with the configured mode") {
  TempDir dir;
  const std::string path = dir.path + "/otlp.sock";
  Harness h(config::ListenerConfig{"", path, 0640});
  REQUIRE(h.receiver.start().ok());
  CHECK(h.receiver.bound_addresses() == std::vector<std::string>{"unix:" + path});

  struct stat st {};
  REQUIRE(lstat(path.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 07777) == 0640);

  const auto request = make_request(2);
  const grpc::Status status = export_typed("unix:" + path, request);
  CHECK_MESSAGE(status.ok(), status.error_message());
  CHECK(h.consumer.span_bytes() == serialized_spans(request));

  h.receiver.shutdown(std::chrono::steady_clock::now() + std::chrono::seconds(5));
  CHECK_FALSE(std::filesystem::exists(path));
  CHECK(h.receiver.bound_addresses().empty());
}

TEST_CASE("otlp_grpc_receiver: a stale socket file left by a crashed run is replaced") {
  TempDir dir;
  const std::string path = dir.path + "/stale.sock";
  {
    // Bind and close without unlinking: what a SIGKILLed daemon leaves behind.
    const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    close(fd);
  }
  REQUIRE(std::filesystem::exists(path));

  Harness h(config::ListenerConfig{"", path, 0660});
  const Status started = h.receiver.start();
  REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message));
  const grpc::Status status = export_typed("unix:" + path, make_request(1));
  CHECK_MESSAGE(status.ok(), status.error_message());
  CHECK(h.consumer.span_bytes().size() == 1);
}

TEST_CASE("otlp_grpc_receiver: TCP and Unix listeners together") {
  TempDir dir;
  const std::string path = dir.path + "/both.sock";
  Harness h(config::ListenerConfig{"127.0.0.1:0", path, 0660});
  REQUIRE(h.receiver.start().ok());
  const auto addresses = h.receiver.bound_addresses();
  REQUIRE(addresses.size() == 2);
  CHECK(addresses[1] == "unix:" + path);
  CHECK(export_typed(addresses[0], make_request(1)).ok());
  CHECK(export_typed(addresses[1], make_request(2)).ok());
  CHECK(h.consumer.span_bytes().size() == 3);
}

TEST_CASE("otlp_grpc_receiver: gzip-compressed export is accepted") {
  Harness h(tcp_listener());
  REQUIRE(h.receiver.start().ok());
  const auto request = make_request(4);
  const grpc::Status status = export_typed(h.address(), request, GRPC_COMPRESS_GZIP);
  CHECK_MESSAGE(status.ok(), status.error_message());
  CHECK(h.consumer.span_bytes() == serialized_spans(request));
}

TEST_CASE("otlp_grpc_receiver: an empty export request is OK and admits nothing") {
  Harness h(tcp_listener());
  REQUIRE(h.receiver.start().ok());
  CHECK(export_typed(h.address(), ExportTraceServiceRequest{}).ok());
  CHECK(h.consumer.calls() == 0);
}

TEST_CASE("otlp_grpc_receiver: malformed bytes are INVALID_ARGUMENT with a message") {
  Harness h(tcp_listener());
  REQUIRE(h.receiver.start().ok());
  // Field 1 (resource_spans), length-delimited, claims 100 bytes but only 3 follow.
  const std::string truncated("\x0a\x64\x01\x02\x03", 5);
  const grpc::Status status = call_raw(h.address(), kExportMethod, truncated);
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_FALSE(status.error_message().empty());
  CHECK(h.consumer.calls() == 0);
  CHECK(refused_requests(h, "decode_error") == 1);
}

TEST_CASE("otlp_grpc_receiver: a refusing consumer yields RESOURCE_EXHAUSTED with RetryInfo") {
  Harness h(tcp_listener());
  h.consumer.refuse();
  REQUIRE(h.receiver.start().ok());
  const grpc::Status status = export_typed(h.address(), make_request(2));
  REQUIRE(status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK_FALSE(status.error_message().empty());

  rpc::Status details;
  REQUIRE(details.ParseFromString(status.error_details()));
  CHECK(details.code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(details.message() == status.error_message());
  REQUIRE(details.details_size() == 1);
  CHECK(details.details(0).type_url() == "type.googleapis.com/google.rpc.RetryInfo");
  rpc::RetryInfo retry_info;
  REQUIRE(retry_info.ParseFromString(details.details(0).value()));
  CHECK(retry_info.retry_delay().seconds() == 7);

  CHECK(h.metrics.value("spanrelay_receiver_refused_spans_total", {{"reason", "memory_limit"}}) ==
        2);
  CHECK(h.metrics.value("spanrelay_receiver_accepted_spans_total",
                        {{"transport", "grpc"}, {"encoding", "protobuf"}}) == 0);
}

TEST_CASE("otlp_grpc_receiver: a request over max_request_size is RESOURCE_EXHAUSTED") {
  Harness h(tcp_listener(), 64 * 1024);
  REQUIRE(h.receiver.start().ok());
  auto request = make_request(1);
  request.mutable_resource_spans(0)->mutable_scope_spans(0)->mutable_spans(0)->set_name(
      std::string(100 * 1024, 'x'));
  const grpc::Status status = export_typed(h.address(), request);
  CHECK(status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(status.error_details().empty());  // no RetryInfo: retrying cannot help
  CHECK(h.consumer.calls() == 0);
  // gRPC refused it on the wire, before the receiver saw it (see the header).
  CHECK(refused_requests(h, "too_large") == 0);
}

TEST_CASE("otlp_grpc_receiver: a gzip bomb is refused without inflating it in full") {
  Harness h(tcp_listener(), 4u << 20);
  REQUIRE(h.receiver.start().ok());
  // 64 MiB of zeros compresses to ~64 KiB: small on the wire, 16x the limit once inflated.
  const std::string bomb(64u << 20, '\0');
  const grpc::Status status = call_raw(h.address(), kExportMethod, bomb, GRPC_COMPRESS_GZIP);
  CHECK(status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(status.error_details().empty());  // no RetryInfo: retrying cannot help
  CHECK(h.consumer.calls() == 0);
  // Refused by the receiver's capped inflater (gRPC's own would have expanded
  // all 64 MiB first, and the refusal would not be countable).
  CHECK(refused_requests(h, "too_large") == 1);

  const grpc::Status next = export_typed(h.address(), make_request(1), GRPC_COMPRESS_GZIP);
  CHECK_MESSAGE(next.ok(), next.error_message());
  CHECK(h.consumer.span_bytes().size() == 1);
}

TEST_CASE("otlp_grpc_receiver: a deflate bomb is refused too") {
  Harness h(tcp_listener(), 1u << 20);
  REQUIRE(h.receiver.start().ok());
  const std::string bomb(8u << 20, '\0');
  const grpc::Status status = call_raw(h.address(), kExportMethod, bomb, GRPC_COMPRESS_DEFLATE);
  CHECK(status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(refused_requests(h, "too_large") == 1);
}

TEST_CASE("otlp_grpc_receiver: deflate-compressed export is accepted") {
  Harness h(tcp_listener());
  REQUIRE(h.receiver.start().ok());
  const auto request = make_request(5);
  const grpc::Status status = export_typed(h.address(), request, GRPC_COMPRESS_DEFLATE);
  CHECK_MESSAGE(status.ok(), status.error_message());
  CHECK(h.consumer.span_bytes() == serialized_spans(request));
}

TEST_CASE("otlp_grpc_receiver: a corrupt gzip body is INVALID_ARGUMENT") {
  Harness h(tcp_listener());
  REQUIRE(h.receiver.start().ok());
  // The gzip magic followed by garbage, sent uncompressed.
  const std::string corrupt("\x1f\x8b\x08\x00garbage-not-deflate", 23);
  const grpc::Status status = call_raw(h.address(), kExportMethod, corrupt);
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(status.error_message().find("gzip") != std::string::npos);
  CHECK(h.consumer.calls() == 0);
  CHECK(refused_requests(h, "bad_compression") == 1);
}

TEST_CASE("otlp_grpc_receiver: other methods are UNIMPLEMENTED") {
  Harness h(tcp_listener());
  REQUIRE(h.receiver.start().ok());
  const std::string empty_request;
  CHECK(call_raw(h.address(), "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
                 empty_request)
            .error_code() == grpc::StatusCode::UNIMPLEMENTED);
  CHECK(call_raw(h.address(), "/opentelemetry.proto.collector.trace.v1.TraceService/Other",
                 empty_request)
            .error_code() == grpc::StatusCode::UNIMPLEMENTED);
  CHECK(h.consumer.calls() == 0);
}

TEST_CASE("otlp_grpc_receiver: a port already in use is an error naming the address") {
  Harness first(tcp_listener());
  REQUIRE(first.receiver.start().ok());
  const std::string taken = first.address();

  // gRPC would share the port through SO_REUSEPORT unless the receiver turns it off.
  Harness second(config::ListenerConfig{taken, "", 0660});
  const Status started = second.receiver.start();
  REQUIRE_FALSE(started.ok());
  CHECK(started.error().message.find("cannot listen for OTLP/gRPC on " + taken) !=
        std::string::npos);
  CHECK(second.receiver.bound_addresses().empty());
  // The first one is unharmed.
  CHECK(export_typed(taken, make_request(1)).ok());
}

TEST_CASE("otlp_grpc_receiver: shutdown lets a call in flight finish before the deadline") {
  Harness h(tcp_listener());
  REQUIRE(h.receiver.start().ok());
  const std::string address = h.address();
  h.consumer.hold();
  auto in_flight =
      std::async(std::launch::async, [&] { return export_typed(address, make_request(2)); });
  h.consumer.wait_for_calls(1);

  std::thread stopper(
      [&] { h.receiver.shutdown(std::chrono::steady_clock::now() + std::chrono::seconds(30)); });
  // Shutdown has begun once the receiver no longer reports an address.
  while (!h.receiver.bound_addresses().empty()) std::this_thread::yield();
  h.consumer.release();
  const grpc::Status status = in_flight.get();
  stopper.join();
  CHECK_MESSAGE(status.ok(), status.error_message());
  CHECK(h.consumer.span_bytes().size() == 2);
}

TEST_CASE("otlp_grpc_receiver: shutdown is safe without start, twice, and start twice fails") {
  {
    Harness h(tcp_listener());
    h.receiver.shutdown(std::chrono::steady_clock::now());
    h.receiver.shutdown(std::chrono::steady_clock::now());
    CHECK(h.receiver.bound_addresses().empty());
  }
  {
    Harness h(tcp_listener());
    REQUIRE(h.receiver.start().ok());
    CHECK_FALSE(h.receiver.start().ok());
    const std::string address = h.address();
    h.receiver.shutdown(std::chrono::steady_clock::now() + std::chrono::seconds(5));
    h.receiver.shutdown(std::chrono::steady_clock::now());
    CHECK(h.receiver.bound_addresses().empty());
    // Nothing listens any more.
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    ExportTraceServiceResponse response;
    const auto status =
        TraceService::NewStub(channel_to(address))->Export(&context, make_request(1), &response);
    CHECK(status.error_code() == grpc::StatusCode::UNAVAILABLE);
  }
  {
    Harness h(config::ListenerConfig{"", "", 0660});  // both listeners disabled
    CHECK(h.receiver.start().ok());
    CHECK(h.receiver.bound_addresses().empty());
  }
}
