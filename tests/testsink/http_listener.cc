#include "tests/testsink/http_listener.h"

#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/http.hpp>
#include <optional>

#include "daemon/common/compression.h"

namespace spanrelay::testsink {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::string_view kProtobufType = "application/x-protobuf";

std::string_view to_std(boost::beast::string_view view) { return {view.data(), view.size()}; }

// The media type without parameters ("application/x-protobuf; charset=..." ok).
std::string_view media_type(std::string_view content_type) {
  const auto semicolon = content_type.find(';');
  if (semicolon != std::string_view::npos) content_type = content_type.substr(0, semicolon);
  while (!content_type.empty() && content_type.back() == ' ') content_type.remove_suffix(1);
  return content_type;
}

using TlsSocket = asio::ssl::stream<tcp::socket>;

// One connection: `Stream` is tcp::socket, or TlsSocket once the TLS
// handshake is done.
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(Stream socket, SpanRecorder& recorder, DelayedAnswers& delays)
      : socket_(std::move(socket)), recorder_(recorder), delays_(delays) {}

  void start() { read_next(); }

 private:
  using std::enable_shared_from_this<Session<Stream>>::shared_from_this;
  void shutdown(tcp::socket::shutdown_type what) {
    boost::system::error_code ignored;
    boost::beast::get_lowest_layer(socket_).shutdown(what, ignored);
  }

  void read_next() {
    parser_.emplace();
    // Compressed bodies may exceed the decompressed cap a little when they do
    // not compress; the decompressed size is checked precisely later.
    parser_->body_limit(recorder_.options().max_message_bytes + 64 * 1024);
    http::async_read(socket_, buffer_, *parser_,
                     [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                       self->on_read(ec);
                     });
  }

  void on_read(boost::system::error_code ec) {
    if (ec == http::error::body_limit) {
      recorder_.record_refused(Transport::kHttp, "identity", "413");
      respond_plain(http::status::payload_too_large, "request body too large", false);
      return;
    }
    if (ec) {  // end_of_stream is the peer's normal close
      shutdown(tcp::socket::shutdown_both);
      return;
    }
    http::request<http::string_body> request = parser_->release();
    const bool keep_alive = request.keep_alive();
    if (request.target() == "/stats") {
      if (request.method() != http::verb::get) {
        respond_plain(http::status::method_not_allowed, "use GET", keep_alive);
        return;
      }
      start_response(http::status::ok, "application/json", keep_alive);
      response_.body() = recorder_.stats_json();
      write_response();
      return;
    }
    if (request.target() != "/v1/traces") {
      respond_plain(http::status::not_found, "no such path", keep_alive);
      return;
    }
    if (request.method() != http::verb::post) {
      respond_plain(http::status::method_not_allowed, "use POST", keep_alive);
      return;
    }
    handle_export(request, keep_alive);
  }

  void handle_export(http::request<http::string_body>& request, bool keep_alive) {
    const std::string_view encoding_header = to_std(request[http::field::content_encoding]);
    const std::optional<Codec> codec =
        codec_from_name(encoding_header == "none" ? "identity" : encoding_header);
    const std::string encoding(codec ? codec_name(*codec) : encoding_header);
    // JSON is not needed from the daemon (it always exports protobuf), so it is
    // refused like any other media type instead of being half-supported.
    if (media_type(to_std(request[http::field::content_type])) != kProtobufType || !codec) {
      recorder_.record_refused(Transport::kHttp, encoding, "415");
      respond_plain(http::status::unsupported_media_type,
                    "only application/x-protobuf with gzip|zstd|deflate|identity", keep_alive);
      return;
    }
    std::string body = std::move(request.body());
    if (*codec != Codec::kIdentity) {
      Decompressed plain = decompress(*codec, body, recorder_.options().max_message_bytes);
      if (plain.status != DecompressStatus::kOk) {
        const bool too_large = plain.status == DecompressStatus::kTooLarge;
        recorder_.record_refused(Transport::kHttp, encoding, too_large ? "413" : "400");
        respond_plain(too_large ? http::status::payload_too_large : http::status::bad_request,
                      plain.message, keep_alive);
        return;
      }
      body = std::move(plain.bytes);
    } else if (body.size() > recorder_.options().max_message_bytes) {
      recorder_.record_refused(Transport::kHttp, encoding, "413");
      respond_plain(http::status::payload_too_large, "request body too large", keep_alive);
      return;
    }
    const RequestVerdict verdict = recorder_.handle(Transport::kHttp, body, encoding,
                                                    to_std(request[http::field::authorization]));
    const SinkOptions& options = recorder_.options();
    switch (verdict.kind) {
      case RequestVerdict::Kind::kAccepted:
        start_response(http::status::ok, kProtobufType, keep_alive);
        response_.body() = success_response_bytes(verdict.rejected_spans);
        break;
      case RequestVerdict::Kind::kMalformed:
        start_response(http::status::bad_request, kProtobufType, keep_alive);
        response_.body() = rpc_status_bytes(static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT),
                                            verdict.message, std::nullopt);
        break;
      case RequestVerdict::Kind::kFaulted: {
        start_response(static_cast<http::status>(options.fault.http_status), kProtobufType,
                       keep_alive);
        const std::string message =
            "testsink fault on request " + std::to_string(verdict.request_number);
        response_.body() = rpc_status_bytes(static_cast<int>(options.fault.grpc_code), message,
                                            options.retry_after);
        if (options.retry_after) {
          response_.set(http::field::retry_after, retry_after_header_value(*options.retry_after));
        }
        break;
      }
    }
    delays_.schedule(options.delay, [self = shared_from_this()] { self->write_response(); });
  }

  void start_response(http::status status, std::string_view content_type, bool keep_alive) {
    response_ = {};
    response_.result(status);
    response_.version(11);
    response_.set(http::field::server, "spanrelay-testsink");
    response_.set(http::field::content_type,
                  boost::beast::string_view(content_type.data(), content_type.size()));
    response_.keep_alive(keep_alive);
  }

  void respond_plain(http::status status, std::string_view text, bool keep_alive) {
    start_response(status, "text/plain", keep_alive);
    response_.body() = std::string(text) + "\n";
    delays_.schedule(recorder_.options().delay,
                     [self = shared_from_this()] { self->write_response(); });
  }

  void write_response() {
    response_.prepare_payload();
    http::async_write(socket_, response_,
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                        self->on_write(ec);
                      });
  }

  void on_write(boost::system::error_code ec) {
    if (ec || !response_.keep_alive()) {
      shutdown(tcp::socket::shutdown_send);
      return;
    }
    read_next();
  }

  Stream socket_;
  SpanRecorder& recorder_;
  DelayedAnswers& delays_;
  boost::beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
};

}  // namespace

Result<std::unique_ptr<HttpListener>> HttpListener::start(const std::string& address,
                                                          asio::io_context& io,
                                                          SpanRecorder& recorder,
                                                          DelayedAnswers& delays) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) return Error{"--http wants HOST:PORT, got " + address};
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost" || host.empty()) host = "127.0.0.1";
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(host, ec);
  if (ec) return Error{"--http: bad host '" + host + "': " + ec.message()};
  const std::string port_text = address.substr(colon + 1);
  char* end = nullptr;
  const unsigned long port = std::strtoul(port_text.c_str(), &end, 10);
  if (port_text.empty() || *end != '\0' || port > 65535) {
    return Error{"--http: bad port in " + address};
  }
  std::unique_ptr<HttpListener> listener(new HttpListener(io, recorder, delays));
  const SinkOptions& options = recorder.options();
  if (options.tls_cert) {
    auto context = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    context->use_certificate_chain_file(*options.tls_cert, ec);
    if (!ec) context->use_private_key_file(*options.tls_key, asio::ssl::context::pem, ec);
    if (!ec && options.tls_client_ca) {
      context->load_verify_file(*options.tls_client_ca, ec);
      if (!ec) {
        context->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert,
                                 ec);
      }
    }
    if (ec) return Error{"--tls-*: " + ec.message()};
    listener->tls_context_ = std::move(context);
  }
  const tcp::endpoint endpoint(ip, static_cast<unsigned short>(port));
  auto& acceptor = listener->acceptor_;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error{"cannot listen for HTTP on " + address + ": " + ec.message()};
  const auto bound = acceptor.local_endpoint();
  std::string shown_host = bound.address().is_unspecified()
                               ? (bound.address().is_v4() ? "127.0.0.1" : "::1")
                               : bound.address().to_string();
  if (bound.address().is_v6()) shown_host = "[" + shown_host + "]";
  listener->bound_address_ = shown_host + ":" + std::to_string(bound.port());
  listener->accept_next();
  return listener;
}

void HttpListener::accept_next() {
  acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      if (!tls_context_) {
        std::make_shared<Session<tcp::socket>>(std::move(socket), recorder_, delays_)->start();
      } else {
        auto tls = std::make_shared<TlsSocket>(std::move(socket), *tls_context_);
        tls->async_handshake(
            asio::ssl::stream_base::server, [this, tls](boost::system::error_code handshake_error) {
              if (handshake_error) return;  // e.g. no client certificate
              std::make_shared<Session<TlsSocket>>(std::move(*tls), recorder_, delays_)->start();
            });
      }
    }
    accept_next();
  });
}

void HttpListener::close() {
  asio::post(io_, [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  });
}

}  // namespace spanrelay::testsink
