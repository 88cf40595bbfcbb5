#pragma once
// A blocking Beast HTTP client for unit tests of the HTTP servers: one
// connection to "host:port" or "unix:/path", requests written and answers read
// in order, so keep-alive and server-side closes can be observed.
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spanrelay::testing {

namespace http = boost::beast::http;
using TestRequest = http::request<http::string_body>;
using TestResponse = http::response<http::string_body>;

class HttpTestClient {
 public:
  // Throws on connection failure (a test failure, reported by doctest).
  explicit HttpTestClient(const std::string& address) {
    constexpr std::string_view kUnix = "unix:";
    if (address.rfind(kUnix, 0) == 0) {
      unix_.emplace(io_);
      unix_->connect(boost::asio::local::stream_protocol::endpoint(address.substr(kUnix.size())));
    } else {
      const auto colon = address.rfind(':');
      boost::asio::ip::tcp::resolver resolver(io_);
      tcp_.emplace(io_);
      boost::asio::connect(*tcp_,
                           resolver.resolve(address.substr(0, colon), address.substr(colon + 1)));
    }
  }

  static TestRequest make_request(http::verb method, std::string target, std::string body = {},
                                  std::vector<std::pair<std::string, std::string>> headers = {}) {
    TestRequest request{method, target, 11};
    request.set(http::field::host, "localhost");
    for (const auto& [name, value] : headers) request.set(name, value);
    request.body() = std::move(body);
    request.prepare_payload();
    return request;
  }

  void write(const TestRequest& request) {
    if (tcp_) {
      http::write(*tcp_, request);
    } else {
      http::write(*unix_, request);
    }
  }

  void write_raw(std::string_view bytes) {
    if (tcp_) {
      boost::asio::write(*tcp_, boost::asio::buffer(bytes.data(), bytes.size()));
    } else {
      boost::asio::write(*unix_, boost::asio::buffer(bytes.data(), bytes.size()));
    }
  }

  TestResponse read() {
    TestResponse response;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    if (tcp_) {
      http::read(*tcp_, buffer_, parser);
    } else {
      http::read(*unix_, buffer_, parser);
    }
    return parser.release();
  }

  TestResponse request(const TestRequest& request) {
    write(request);
    return read();
  }

  // True when the server closed the connection (the next read sees EOF).
  bool closed_by_server() {
    boost::system::error_code ec;
    char byte;
    if (tcp_) {
      tcp_->read_some(boost::asio::buffer(&byte, 1), ec);
    } else {
      unix_->read_some(boost::asio::buffer(&byte, 1), ec);
    }
    return ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset;
  }

 private:
  boost::asio::io_context io_;
  std::optional<boost::asio::ip::tcp::socket> tcp_;
  std::optional<boost::asio::local::stream_protocol::socket> unix_;
  boost::beast::flat_buffer buffer_;
};

// One request on a fresh connection.
inline TestResponse http_roundtrip(const std::string& address, const TestRequest& request) {
  HttpTestClient client(address);
  return client.request(request);
}

}  // namespace spanrelay::testing
