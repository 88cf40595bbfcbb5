#include "tests/testsink/grpc_listener.h"

#include <grpc/compression.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/support/byte_buffer.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"

// Defined (C++ linkage) in gRPC core's surface/call.cc; see request_encoding().
grpc_compression_algorithm grpc_call_test_only_get_compression_algorithm(grpc_call* call)
    __attribute__((weak));

namespace spanrelay::testsink {

namespace otlp_collector = opentelemetry::proto::collector::trace::v1;

namespace {

std::string flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (!buffer.Dump(&slices).ok()) return bytes;
  bytes.reserve(buffer.Length());
  for (const auto& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return bytes;
}

grpc::ByteBuffer to_byte_buffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

// gRPC decompresses before the handler runs and keeps grpc-encoding out of
// client_metadata(). The call object still knows the codec; gRPC exposes it
// only through a test-only accessor, declared weak here so that a gRPC build
// without it still links (and the encoding is then reported as "unknown").
std::string request_encoding(grpc::CallbackServerContext& context) {
  if (grpc_call_test_only_get_compression_algorithm == nullptr) return "unknown";
  const grpc_compression_algorithm algorithm =
      grpc_call_test_only_get_compression_algorithm(context.c_call());
  const char* name = nullptr;
  if (grpc_compression_algorithm_name(algorithm, &name) == 0 || name == nullptr) return "unknown";
  return name;
}

// The client's authorization metadata, "" when absent.
std::string authorization_of(const grpc::CallbackServerContext& context) {
  const auto& metadata = context.client_metadata();
  const auto found = metadata.find("authorization");
  if (found == metadata.end()) return {};
  return std::string(found->second.data(), found->second.size());
}

Result<std::string> read_pem(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  if (!in || text.str().empty()) return Error{"cannot read " + path};
  return text.str();
}

// --tls-cert/--tls-key (and --tls-client-ca for mTLS), else plaintext.
Result<std::shared_ptr<grpc::ServerCredentials>> server_credentials(const SinkOptions& options) {
  if (!options.tls_cert) return grpc::InsecureServerCredentials();
  auto cert = read_pem(*options.tls_cert);
  auto key = read_pem(*options.tls_key);
  if (!cert) return cert.error();
  if (!key) return key.error();
  grpc::SslServerCredentialsOptions tls(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  tls.pem_key_cert_pairs.push_back({key.value(), cert.value()});
  if (options.tls_client_ca) {
    auto ca = read_pem(*options.tls_client_ca);
    if (!ca) return ca.error();
    tls.pem_root_certs = ca.value();
    tls.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(tls);
}

}  // namespace

class GrpcListener::Service final
    : public otlp_collector::TraceService::WithRawCallbackMethod_Export<
          otlp_collector::TraceService::Service> {
 public:
  Service(SpanRecorder& recorder, DelayedAnswers& delays) : recorder_(recorder), delays_(delays) {}

  grpc::ServerUnaryReactor* Export(grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    const RequestVerdict verdict =
        recorder_.handle(Transport::kGrpc, flatten(*request), request_encoding(*context),
                         authorization_of(*context));
    grpc::Status status;
    const SinkOptions& options = recorder_.options();
    switch (verdict.kind) {
      case RequestVerdict::Kind::kAccepted:
        *response = to_byte_buffer(success_response_bytes(verdict.rejected_spans));
        break;
      case RequestVerdict::Kind::kMalformed:
        status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, verdict.message);
        break;
      case RequestVerdict::Kind::kFaulted: {
        const std::string message =
            "testsink fault on request " + std::to_string(verdict.request_number);
        const auto code = options.fault.grpc_code;
        // Details travel in grpc-status-details-bin; only with RetryInfo, so a
        // plain fault looks like what most servers send.
        status = options.retry_after ? grpc::Status(code, message,
                                                    rpc_status_bytes(static_cast<int>(code),
                                                                     message, options.retry_after))
                                     : grpc::Status(code, message);
        break;
      }
    }
    delays_.schedule(options.delay, [reactor, status] { reactor->Finish(status); });
    return reactor;
  }

 private:
  SpanRecorder& recorder_;
  DelayedAnswers& delays_;
};

Result<std::unique_ptr<GrpcListener>> GrpcListener::start(const std::string& address,
                                                          SpanRecorder& recorder,
                                                          DelayedAnswers& delays) {
  std::unique_ptr<GrpcListener> listener(new GrpcListener());
  listener->service_ = std::make_unique<Service>(recorder, delays);
  grpc::ServerBuilder builder;
  int selected_port = 0;
  auto credentials =
      address.rfind("unix:", 0) == 0
          ? Result<std::shared_ptr<grpc::ServerCredentials>>(grpc::InsecureServerCredentials())
          : server_credentials(recorder.options());
  if (!credentials) return credentials.error();
  builder.AddListeningPort(address, credentials.value(), &selected_port);
  builder.RegisterService(listener->service_.get());
  const int max_bytes = static_cast<int>(recorder.options().max_message_bytes);
  builder.SetMaxReceiveMessageSize(max_bytes);
  listener->server_ = builder.BuildAndStart();
  if (!listener->server_ || selected_port == 0) {
    return Error{"cannot listen for gRPC on " + address};
  }
  if (address.rfind("unix:", 0) == 0) {
    listener->bound_address_ = address;
  } else {
    std::string host = address.substr(0, address.rfind(':'));
    if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
    if (host == "[::]") host = "[::1]";
    listener->bound_address_ = host + ":" + std::to_string(selected_port);
  }
  return listener;
}

void GrpcListener::shutdown() {
  if (shut_down_ || !server_) return;
  shut_down_ = true;
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

GrpcListener::~GrpcListener() { shutdown(); }

}  // namespace spanrelay::testsink
