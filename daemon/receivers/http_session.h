#pragma once
// One HTTP connection of HttpServer (internal to http_server.cc): read a
// message, answer it, repeat while keep-alive. A template over the stream so
// that TCP, Unix sockets and TLS over TCP share the same code.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "daemon/receivers/http_server.h"
#include "daemon/receivers/server_tls_context.h"

namespace spanrelay::receivers::http_detail {

namespace beast = boost::beast;
namespace net = boost::asio;
using boost::system::error_code;

// After an answer that closes the connection, the client may still be sending
// (the rest of an oversized body): keep reading and discarding for a while so
// the kernel does not reset the connection before the client read the answer.
constexpr std::chrono::seconds kMaxLingerTime{5};

// What every session needs; shared so that sessions never point into the server.
struct SessionConfig {
  HttpServerOptions options;
  HttpHandler handler;
};

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void close() = 0;  // thread-safe
  // Kept as long as the session lives: its max_connections slot.
  void hold_connection_slot(std::shared_ptr<void> slot) { connection_slot_ = std::move(slot); }

 private:
  std::shared_ptr<void> connection_slot_;
};

inline bool is_http_protocol_error(const error_code& ec) {
  return ec.category() == make_error_code(http::error::bad_target).category();
}

template <class Stream>
inline constexpr bool kIsTls = false;
template <class Next>
inline constexpr bool kIsTls<beast::ssl_stream<Next>> = true;

using TlsTcpStream = beast::ssl_stream<beast::tcp_stream>;

// One connection: read a message, answer it, repeat while keep-alive.
// Stream: beast::basic_stream<tcp or unix> (plaintext) or TlsTcpStream.
template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  // Plaintext: the accepted socket.
  template <class Socket>
  Session(Socket socket, std::shared_ptr<const SessionConfig> config)
      : stream_(std::move(socket)), config_(std::move(config)) {}
  // TLS: the accepted socket and the context of the moment (kept alive here).
  Session(net::ip::tcp::socket socket, std::shared_ptr<net::ssl::context> tls,
          std::shared_ptr<const SessionConfig> config)
      : tls_context_(std::move(tls)),
        stream_(std::move(socket), *tls_context_),
        config_(std::move(config)) {}

  void run() {
    if constexpr (kIsTls<Stream>) {
      net::dispatch(stream_.get_executor(),
                    beast::bind_front_handler(&Session::do_handshake, this->shared_from_this()));
    } else {
      net::dispatch(stream_.get_executor(),
                    beast::bind_front_handler(&Session::do_read_header, this->shared_from_this()));
    }
  }

  // At shutdown: an answer being written is finished first (its spans were
  // accepted; a lost 200 would only make the client send them again), anything
  // else (idle keep-alive, a half-read request, lingering) is closed at once.
  void close() override {
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if (self->response_) {
        self->closing_ = true;
      } else {
        self->close_now();
      }
    });
  }

 private:
  const HttpServerOptions& options() const { return config_->options; }
  auto& transport() { return beast::get_lowest_layer(stream_); }

  // TLS: the handshake is bounded by read_timeout like a request.
  void do_handshake() {
    transport().expires_after(options().read_timeout);
    stream_.async_handshake(
        net::ssl::stream_base::server, [self = this->shared_from_this()](error_code ec) {
          if (!ec) return self->do_read_header();
          if (ec == net::error::operation_aborted) return;
          if (self->options().tls) self->options().tls->count_handshake_failure();
          spdlog::debug("{}: TLS handshake failed: {}", self->options().name, ec.message());
          self->close_now();
        });
  }

  void do_read_header() {
    if (closed_) return;
    // A fresh parser per message: the limits apply to each request anew.
    parser_.emplace();
    parser_->body_limit(options().body_limit);
    parser_->header_limit(options().header_limit);
    transport().expires_after(options().read_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        beast::bind_front_handler(&Session::on_read_header, this->shared_from_this()));
  }

  void on_read_header(error_code ec, std::size_t /*bytes*/) {
    if (ec) return on_read_error(ec);
    // curl and some SDKs send "Expect: 100-continue" and wait for it before the body.
    if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      continue_response_.emplace(http::status::continue_, parser_->get().version());
      transport().expires_after(options().read_timeout);
      http::async_write(stream_, *continue_response_,
                        [self = this->shared_from_this()](error_code write_ec, std::size_t) {
                          if (write_ec) return self->close_now();
                          self->do_read_body();
                        });
      return;
    }
    do_read_body();
  }

  void do_read_body() {
    transport().expires_after(options().read_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::on_read_body, this->shared_from_this()));
  }

  void on_read_body(error_code ec, std::size_t /*bytes*/) {
    if (ec) return on_read_error(ec);
    handle_request(parser_->release());
  }

  void on_read_error(const error_code& ec) {
    if (closed_ || ec == net::error::operation_aborted) return;
    if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
        ec == net::ssl::error::stream_truncated) {
      return close_now();  // the client closed: a normal end, nothing to answer
    }
    if (ec == beast::error::timeout) {
      spdlog::debug("{}: closing an idle or slow connection", options().name);
      return close_now();
    }
    if (ec == http::error::body_limit) {
      return send_error(
          http::status::payload_too_large,
          "request body exceeds the limit of " + std::to_string(options().body_limit) + " bytes");
    }
    if (ec == http::error::header_limit) {
      return send_error(http::status::request_header_fields_too_large,
                        "request header exceeds the limit of " +
                            std::to_string(options().header_limit) + " bytes");
    }
    if (is_http_protocol_error(ec)) {
      return send_error(http::status::bad_request, "malformed HTTP request: " + ec.message());
    }
    spdlog::debug("{}: connection error: {}", options().name, ec.message());
    close_now();
  }

  void handle_request(HttpRequest&& request) {
    const unsigned version = request.version();
    const bool keep_alive = request.keep_alive();
    HttpResponse response;
    try {
      response = config_->handler(std::move(request));
    } catch (const std::exception& e) {
      spdlog::error("{}: request handler failed: {}", options().name, e.what());
      response = make_text_response(http::status::internal_server_error, "internal server error");
    } catch (...) {
      spdlog::error("{}: request handler failed with an unknown exception", options().name);
      response = make_text_response(http::status::internal_server_error, "internal server error");
    }
    response.version(version);
    response.keep_alive(keep_alive && response.keep_alive());
    send(std::move(response));
  }

  // The server's own answers (the handler never saw the request) always close:
  // after a parse error the position in the byte stream is unknown.
  void send_error(http::status status, const std::string& message) {
    spdlog::debug("{}: answering {}: {}", options().name, static_cast<unsigned>(status), message);
    HttpResponse response;
    try {
      response = options().error_responder
                     ? options().error_responder(parser_->get(), status, message)
                     : make_text_response(status, message);
    } catch (const std::exception& e) {
      spdlog::error("{}: error responder failed: {}", options().name, e.what());
      response = make_text_response(status, message);
    }
    response.version(11);
    response.keep_alive(false);
    send(std::move(response));
  }

  void send(HttpResponse&& response) {
    response.prepare_payload();
    const bool close_after = !response.keep_alive();
    response_.emplace(std::move(response));
    transport().expires_after(options().read_timeout);
    http::async_write(
        stream_, *response_,
        beast::bind_front_handler(&Session::on_write, this->shared_from_this(), close_after));
  }

  void on_write(bool close_after, error_code ec, std::size_t /*bytes*/) {
    response_.reset();
    if (ec) {
      if (ec != net::error::operation_aborted) {
        spdlog::debug("{}: write failed: {}", options().name, ec.message());
      }
      return close_now();
    }
    if (closing_) return close_now();
    if (close_after) return linger_close();
    do_await_next_request();
  }

  // Keep-alive: the next request may take idle_timeout to start; from its
  // first byte on, read_timeout bounds the whole message.
  void do_await_next_request() {
    if (buffer_.size() > 0 || options().idle_timeout.count() == 0) return do_read_header();
    transport().expires_after(options().idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = this->shared_from_this()](error_code ec, std::size_t bytes) {
                              if (ec) {
                                if (ec == net::error::eof) return self->close_now();
                                return self->on_read_error(ec);
                              }
                              self->buffer_.commit(bytes);
                              self->do_read_header();
                            });
  }

  void linger_close() {
    error_code ignored;
    transport().socket().shutdown(net::socket_base::shutdown_send, ignored);
    transport().expires_after(
        std::min<std::chrono::milliseconds>(options().read_timeout, kMaxLingerTime));
    do_drain();
  }

  void do_drain() {
    stream_.async_read_some(net::buffer(drain_buffer_),
                            [self = this->shared_from_this()](error_code ec, std::size_t) {
                              if (ec) return self->close_now();  // EOF, timeout or closed
                              self->do_drain();
                            });
  }

  void close_now() {
    if (closed_) return;
    closed_ = true;
    error_code ignored;
    transport().socket().shutdown(net::socket_base::shutdown_both, ignored);
    transport().close();
  }

  std::shared_ptr<net::ssl::context> tls_context_;  // TLS only; outlives stream_
  Stream stream_;
  std::shared_ptr<const SessionConfig> config_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<HttpResponse> response_;
  std::optional<http::response<http::empty_body>> continue_response_;
  std::array<char, 8192> drain_buffer_{};
  bool closing_ = false;  // shutting down: close once the current answer is written
  bool closed_ = false;
};

}  // namespace spanrelay::receivers::http_detail
