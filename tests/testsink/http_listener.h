#pragma once
// OTLP/HTTP side of the sink (Boost.Beast, asynchronous, keep-alive):
// POST /v1/traces with application/x-protobuf bodies (Content-Encoding gzip,
// zstd, deflate or none) and GET /stats.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

#include "daemon/common/result.h"
#include "tests/testsink/answers.h"
#include "tests/testsink/span_recorder.h"

namespace spanrelay::testsink {

class HttpListener {
 public:
  // Binds `address` ("HOST:PORT", port 0 = ephemeral) and starts accepting on `io`.
  static Result<std::unique_ptr<HttpListener>> start(const std::string& address,
                                                     boost::asio::io_context& io,
                                                     SpanRecorder& recorder,
                                                     DelayedAnswers& delays);

  // "HOST:PORT" with the bound port.
  const std::string& bound_address() const { return bound_address_; }

  // Stops accepting new connections (thread-safe; open ones finish their request).
  void close();

 private:
  HttpListener(boost::asio::io_context& io, SpanRecorder& recorder, DelayedAnswers& delays)
      : io_(io), acceptor_(io), recorder_(recorder), delays_(delays) {}
  void accept_next();

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::unique_ptr<boost::asio::ssl::context> tls_context_;  // null = plaintext
  SpanRecorder& recorder_;
  DelayedAnswers& delays_;
  std::string bound_address_;
};

}  // namespace spanrelay::testsink
