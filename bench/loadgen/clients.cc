#include "bench/loadgen/clients.h"

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/impl/codegen/rpc_method.h>
#include <grpcpp/support/byte_buffer.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <mutex>
#include <optional>

#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"

namespace spanrelay::loadgen {
// An already-encoded ExportTraceServiceRequest. Sending it through gRPC's
// blocking unary call (what the generated stub does inside) with the
// serialization below puts the prebuilt bytes on the wire without parsing or
// re-serializing them per call, so the client's own CPU stays out of the
// measured ack latency.
struct EncodedExportRequest {
  const std::string* bytes = nullptr;
};
}  // namespace spanrelay::loadgen

template <>
class grpc::SerializationTraits<spanrelay::loadgen::EncodedExportRequest> {
 public:
  static grpc::Status Serialize(const spanrelay::loadgen::EncodedExportRequest& request,
                                grpc::ByteBuffer* buffer, bool* own_buffer) {
    // The pool outlives every call, so the slice can borrow the bytes.
    grpc::Slice slice(request.bytes->data(), request.bytes->size(), grpc::Slice::STATIC_SLICE);
    grpc::ByteBuffer borrowed(&slice, 1);
    buffer->Swap(&borrowed);
    *own_buffer = true;
    return grpc::Status::OK;
  }
  static grpc::Status Deserialize(grpc::ByteBuffer*, spanrelay::loadgen::EncodedExportRequest*) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "send-only type");
  }
};

namespace spanrelay::loadgen {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace otlp_collector = opentelemetry::proto::collector::trace::v1;

std::string grpc_code_name(grpc::StatusCode code) {
  static constexpr std::array<const char*, 17> kNames{"OK",
                                                      "CANCELLED",
                                                      "UNKNOWN",
                                                      "INVALID_ARGUMENT",
                                                      "DEADLINE_EXCEEDED",
                                                      "NOT_FOUND",
                                                      "ALREADY_EXISTS",
                                                      "PERMISSION_DENIED",
                                                      "RESOURCE_EXHAUSTED",
                                                      "FAILED_PRECONDITION",
                                                      "ABORTED",
                                                      "OUT_OF_RANGE",
                                                      "UNIMPLEMENTED",
                                                      "INTERNAL",
                                                      "UNAVAILABLE",
                                                      "DATA_LOSS",
                                                      "UNAUTHENTICATED"};
  const auto index = static_cast<std::size_t>(code);
  return index < kNames.size() ? kNames[index] : "CODE_" + std::to_string(index);
}

class GrpcClient final : public Client {
 public:
  explicit GrpcClient(const LoadgenOptions& options)
      : channel_(make_channel(options)),
        method_("/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                grpc::internal::RpcMethod::NORMAL_RPC, channel_),
        gzip_(options.compression == Codec::kGzip) {}

  SendOutcome send(const PreparedRequest& request,
                   std::chrono::steady_clock::time_point deadline) override {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         (deadline - std::chrono::steady_clock::now()));
    if (gzip_) context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
    {
      std::lock_guard lock(mutex_);
      if (aborted_) return {SendOutcome::Category::kError, "aborted"};
      current_ = &context;
    }
    otlp_collector::ExportTraceServiceResponse response;
    const grpc::Status status =
        grpc::internal::BlockingUnaryCall<EncodedExportRequest,
                                          otlp_collector::ExportTraceServiceResponse,
                                          EncodedExportRequest, google::protobuf::MessageLite>(
            channel_.get(), method_, &context, EncodedExportRequest{&request.body}, &response);
    {
      std::lock_guard lock(mutex_);
      current_ = nullptr;
    }
    const grpc::StatusCode code = status.error_code();
    if (code == grpc::StatusCode::OK) return {SendOutcome::Category::kOk, "OK"};
    // UNAVAILABLE is also what a dead connection looks like, so only the
    // explicit back-pressure answer counts as refused.
    const bool refused = code == grpc::StatusCode::RESOURCE_EXHAUSTED;
    return {refused ? SendOutcome::Category::kRefused : SendOutcome::Category::kError,
            grpc_code_name(code)};
  }

  void abort() override {
    std::lock_guard lock(mutex_);
    aborted_ = true;
    if (current_) current_->TryCancel();
  }

 private:
  static std::shared_ptr<grpc::Channel> make_channel(const LoadgenOptions& options) {
    grpc::ChannelArguments args;
    // Channels with equal arguments share subchannels (one TCP connection) by
    // default; a local pool gives every worker its own connection.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    const Target& target = options.target;
    const std::string address =
        target.is_unix()
            ? "unix:" + target.path
            : (target.host.find(':') != std::string::npos ? "[" + target.host + "]" : target.host) +
                  ":" + std::to_string(target.port);
    return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  }

  std::shared_ptr<grpc::Channel> channel_;
  grpc::internal::RpcMethod method_;
  bool gzip_;
  std::mutex mutex_;
  grpc::ClientContext* current_ = nullptr;
  bool aborted_ = false;
};

// Protocol: asio::ip::tcp or asio::local::stream_protocol.
template <class Protocol>
class HttpClient final : public Client {
 public:
  HttpClient(const LoadgenOptions& options, typename Protocol::endpoint endpoint,
             std::string host_header)
      : endpoint_(std::move(endpoint)), host_header_(std::move(host_header)) {
    content_type_ =
        options.encoding == BodyEncoding::kJson ? "application/json" : "application/x-protobuf";
    if (options.compression != Codec::kIdentity) {
      content_encoding_ = std::string(codec_name(options.compression));
    }
  }

  SendOutcome send(const PreparedRequest& request,
                   std::chrono::steady_clock::time_point /*deadline*/) override {
    if (aborted_.load()) return {SendOutcome::Category::kError, "aborted"};
    boost::system::error_code ec;
    if (!socket_.is_open()) {
      socket_.connect(endpoint_, ec);
      if (ec) return io_failure("connect", ec);
      if constexpr (std::is_same_v<Protocol, asio::ip::tcp>) {
        socket_.set_option(asio::ip::tcp::no_delay(true), ec);
      }
      fd_.store(socket_.native_handle());
    }
    http::request<http::span_body<const char>> message;
    message.method(http::verb::post);
    message.target("/v1/traces");
    message.version(11);
    message.set(http::field::host, host_header_);
    message.set(http::field::content_type, content_type_);
    if (!content_encoding_.empty()) message.set(http::field::content_encoding, content_encoding_);
    message.keep_alive(true);
    message.body() = boost::beast::span<const char>(request.body.data(), request.body.size());
    message.prepare_payload();
    http::write(socket_, message, ec);
    if (ec) return io_failure("write", ec);
    http::response_parser<http::string_body> parser;
    parser.body_limit(1u << 20);
    http::read(socket_, buffer_, parser, ec);
    if (ec) return io_failure("read", ec);
    const auto& response = parser.get();
    if (!response.keep_alive()) close();
    const unsigned status = response.result_int();
    const std::string code = std::to_string(status);
    if (status == 200) return {SendOutcome::Category::kOk, code};
    const bool refused = status == 429 || status == 503;
    return {refused ? SendOutcome::Category::kRefused : SendOutcome::Category::kError, code};
  }

  void abort() override {
    aborted_.store(true);
    // shutdown(2) on the descriptor wakes a blocked read from another thread
    // without touching the Asio socket object, which is not thread-safe.
    const int fd = fd_.load();
    if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
  }

 private:
  SendOutcome io_failure(std::string_view what, const boost::system::error_code& ec) {
    close();
    return {SendOutcome::Category::kError, "io " + std::string(what) + ": " + ec.message()};
  }

  void close() {
    fd_.store(-1);
    boost::system::error_code ignored;
    socket_.close(ignored);
    buffer_.clear();
  }

  asio::io_context io_;
  typename Protocol::socket socket_{io_};
  typename Protocol::endpoint endpoint_;
  std::string host_header_;
  std::string content_type_;
  std::string content_encoding_;
  boost::beast::flat_buffer buffer_;
  std::atomic<int> fd_{-1};
  std::atomic<bool> aborted_{false};
};

}  // namespace

std::unique_ptr<Client> make_client(const LoadgenOptions& options) {
  const Target& target = options.target;
  switch (target.kind) {
    case Target::Kind::kGrpcTcp:
    case Target::Kind::kGrpcUnix:
      return std::make_unique<GrpcClient>(options);
    case Target::Kind::kHttpUnix:
      return std::make_unique<HttpClient<asio::local::stream_protocol>>(
          options, asio::local::stream_protocol::endpoint(target.path), "localhost");
    case Target::Kind::kHttpTcp: {
      asio::io_context io;
      asio::ip::tcp::resolver resolver(io);
      boost::system::error_code ec;
      const auto results = resolver.resolve(target.host, std::to_string(target.port), ec);
      if (ec || results.empty()) return nullptr;
      return std::make_unique<HttpClient<asio::ip::tcp>>(
          options, results.begin()->endpoint(), target.host + ":" + std::to_string(target.port));
    }
  }
  return nullptr;
}

}  // namespace spanrelay::loadgen
