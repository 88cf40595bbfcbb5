#include "daemon/receivers/http_server.h"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>

#include "tests/unit/http_test_client.h"

using namespace spanrelay;
using namespace spanrelay::receivers;
using spanrelay::testing::http_roundtrip;
using spanrelay::testing::HttpTestClient;

namespace {

// Echoes what it got, throws on /throw, counts calls.
struct EchoHandler {
  std::atomic<int>* calls;
  HttpResponse operator()(HttpRequest&& request) const {
    ++*calls;
    if (request.target() == "/throw") throw std::runtime_error("handler bug");
    auto response = make_text_response(http::status::ok, std::string(request.method_string()) +
                                                             " " + std::string(request.target()) +
                                                             " " + request.body());
    return response;
  }
};

std::string short_socket_path(const char* tag) {
  return "/tmp/srh-" + std::to_string(getpid()) + "-" + tag + ".sock";
}

HttpServerOptions small_options(std::size_t body_limit = 1024) {
  HttpServerOptions options;
  options.body_limit = body_limit;
  options.name = "test-http";
  options.io_threads = 2;
  return options;
}

// Leaves a socket file behind, as a crashed daemon would.
void make_stale_socket(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  close(fd);
}

bool is_socket(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

}  // namespace

TEST_CASE("http_server: serves the handler over TCP and a Unix socket") {
  std::atomic<int> calls{0};
  HttpServer server(small_options(), EchoHandler{&calls});
  const auto path = short_socket_path("both");
  REQUIRE(server.listen_tcp("127.0.0.1:0").ok());
  REQUIRE(server.listen_unix(path, 0660).ok());
  server.start();

  const auto addresses = server.bound_addresses();
  REQUIRE(addresses.size() == 2);
  CHECK(addresses[0].rfind("127.0.0.1:", 0) == 0);
  CHECK(addresses[0] != "127.0.0.1:0");
  CHECK(addresses[1] == "unix:" + path);

  for (const auto& address : addresses) {
    CAPTURE(address);
    auto response = http_roundtrip(
        address, HttpTestClient::make_request(http::verb::post, "/echo?x=1", "hello"));
    CHECK(response.result() == http::status::ok);
    CHECK(response.body() == "POST /echo?x=1 hello\n");
    CHECK(response[http::field::content_type] == "text/plain; charset=utf-8");
  }
  CHECK(calls == 2);
}

TEST_CASE("http_server: keep-alive serves several requests on one connection") {
  std::atomic<int> calls{0};
  HttpServer server(small_options(), EchoHandler{&calls});
  REQUIRE(server.listen_tcp("127.0.0.1:0").ok());
  server.start();
  HttpTestClient client(server.bound_addresses()[0]);
  for (int i = 0; i < 3; ++i) {
    auto response =
        client.request(HttpTestClient::make_request(http::verb::get, "/n" + std::to_string(i)));
    CHECK(response.result() == http::status::ok);
    CHECK(response.keep_alive());
    CHECK(response.body() == "GET /n" + std::to_string(i) + " \n");
  }
  // A request asking to close is answered, then the server closes.
  auto last = HttpTestClient::make_request(http::verb::get, "/bye");
  last.keep_alive(false);
  CHECK(client.request(last).result() == http::status::ok);
  CHECK(client.closed_by_server());
  CHECK(calls == 4);
}

TEST_CASE("http_server: a throwing handler becomes a 500 and the server keeps serving") {
  std::atomic<int> calls{0};
  HttpServer server(small_options(), EchoHandler{&calls});
  REQUIRE(server.listen_tcp("127.0.0.1:0").ok());
  server.start();
  HttpTestClient client(server.bound_addresses()[0]);
  CHECK(client.request(HttpTestClient::make_request(http::verb::get, "/throw")).result() ==
        http::status::internal_server_error);
  CHECK(client.request(HttpTestClient::make_request(http::verb::get, "/ok")).result() ==
        http::status::ok);
}

TEST_CASE("http_server: a body over the limit is a 413 and the connection is closed") {
  std::atomic<int> calls{0};
  HttpServer server(small_options(1024), EchoHandler{&calls});
  REQUIRE(server.listen_tcp("127.0.0.1:0").ok());
  server.start();
  const auto address = server.bound_addresses()[0];

  SUBCASE("slightly over") {
    HttpTestClient client(address);
    auto response =
        client.request(HttpTestClient::make_request(http::verb::post, "/", std::string(1025, 'x')));
    CHECK(response.result() == http::status::payload_too_large);
    CHECK(response.body().find("exceeds the limit of 1024 bytes") != std::string::npos);
    CHECK_FALSE(response.keep_alive());
    CHECK(client.closed_by_server());
  }
  SUBCASE("far over: the answer still arrives while the client is sending") {
    HttpTestClient client(address);
    auto response = client.request(
        HttpTestClient::make_request(http::verb::post, "/", std::string(8u << 20, 'x')));
    CHECK(response.result() == http::status::payload_too_large);
    CHECK(client.closed_by_server());
  }
  SUBCASE("chunked, without a Content-Length") {
    HttpTestClient client(address);
    client.write_raw(
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "800\r\n" +
        std::string(0x800, 'y') + "\r\n0\r\n\r\n");
    CHECK(client.read().result() == http::status::payload_too_large);
  }
  CHECK(calls == 0);
  // The server is unharmed.
  CHECK(
      http_roundtrip(address, HttpTestClient::make_request(http::verb::post, "/", "ok")).result() ==
      http::status::ok);
}

TEST_CASE("http_server: malformed HTTP is a 400 and the connection is closed") {
  std::atomic<int> calls{0};
  HttpServer server(small_options(), EchoHandler{&calls});
  REQUIRE(server.listen_tcp("127.0.0.1:0").ok());
  server.start();
  const auto address = server.bound_addresses()[0];
  {
    HttpTestClient client(address);
    client.write_raw("THIS IS NOT HTTP\r\n\r\n");
    auto response = client.read();
    CHECK(response.result() == http::status::bad_request);
    CHECK(response.body().rfind("malformed HTTP request", 0) == 0);
    CHECK(client.closed_by_server());
  }
  {
    HttpTestClient client(address);
    client.write_raw("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'h') + "\r\n\r\n");
    CHECK(client.read().result() == http::status::request_header_fields_too_large);
  }
  CHECK(calls == 0);
  CHECK(http_roundtrip(address, HttpTestClient::make_request(http::verb::get, "/")).result() ==
        http::status::ok);
}

TEST_CASE("http_server: the error responder shapes the server's own answers") {
  std::atomic<int> calls{0};
  auto options = small_options(16);
  options.error_responder = [](const HttpRequestHeader& header, http::status status,
                               std::string_view message) {
    auto response = make_text_response(
        status, "custom " + std::string(header.target()) + ": " + std::string(message));
    response.set("X-Custom", "1");
    return response;
  };
  HttpServer server(std::move(options), EchoHandler{&calls});
  REQUIRE(server.listen_tcp("127.0.0.1:0").ok());
  server.start();
  auto response =
      http_roundtrip(server.bound_addresses()[0],
                     HttpTestClient::make_request(http::verb::post, "/big", std::string(100, 'x')));
  CHECK(response.result() == http::status::payload_too_large);
  CHECK(response["X-Custom"] == "1");
  CHECK(response.body().rfind("custom /big: request body exceeds", 0) == 0);
}

TEST_CASE("http_server: Expect 100-continue is answered before the body is read") {
  std::atomic<int> calls{0};
  HttpServer server(small_options(), EchoHandler{&calls});
  REQUIRE(server.listen_tcp("127.0.0.1:0").ok());
  server.start();
  HttpTestClient client(server.bound_addresses()[0]);
  client.write_raw(
      "POST /c HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
  CHECK(client.read().result() == http::status::continue_);
  client.write_raw("body");
  auto response = client.read();
  CHECK(response.result() == http::status::ok);
  CHECK(response.body() == "POST /c body\n");
}

TEST_CASE("http_server: idle connections are closed after the read timeout") {
  std::atomic<int> calls{0};
  auto options = small_options();
  options.read_timeout = std::chrono::seconds(1);
  HttpServer server(std::move(options), EchoHandler{&calls});
  REQUIRE(server.listen_tcp("127.0.0.1:0").ok());
  server.start();
  HttpTestClient client(server.bound_addresses()[0]);
  CHECK(client.closed_by_server());  // blocks until the deadline closes it
  CHECK(calls == 0);
}

TEST_CASE("http_server: listen errors name the address") {
  std::atomic<int> calls{0};
  HttpServer server(small_options(), EchoHandler{&calls});
  for (const char* bad : {"no-port", "127.0.0.1:99999", "127.0.0.1:http", "::1:80"}) {
    CAPTURE(bad);
    auto status = server.listen_tcp(bad);
    REQUIRE_FALSE(status.ok());
    CHECK(status.error().message.find(std::string("cannot listen on ") + bad) != std::string::npos);
  }
  REQUIRE(server.listen_tcp("127.0.0.1:0").ok());
  const auto taken = server.bound_addresses()[0];
  HttpServer other(small_options(), EchoHandler{&calls});
  auto status = other.listen_tcp(taken);
  REQUIRE_FALSE(status.ok());
  CHECK(status.error().message.find("test-http: cannot listen on " + taken) != std::string::npos);

  const std::string regular_file = short_socket_path("file");
  std::ofstream(regular_file) << "not a socket";
  auto refused = server.listen_unix(regular_file, 0660);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("unix:" + regular_file) != std::string::npos);
  CHECK(std::remove(regular_file.c_str()) == 0);  // left untouched
}

TEST_CASE("http_server: Unix socket mode, stale socket replacement and removal at shutdown") {
  std::atomic<int> calls{0};
  const auto path = short_socket_path("stale");
  make_stale_socket(path);
  REQUIRE(is_socket(path));

  HttpServer server(small_options(), EchoHandler{&calls});
  REQUIRE(server.listen_unix(path, 0600).ok());
  server.start();
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(
      http_roundtrip("unix:" + path, HttpTestClient::make_request(http::verb::get, "/")).result() ==
      http::status::ok);

  server.shutdown();
  CHECK_FALSE(is_socket(path));
  CHECK(access(path.c_str(), F_OK) != 0);
}

TEST_CASE("http_server: shutdown closes open connections and is idempotent") {
  std::atomic<int> calls{0};
  HttpServer server(small_options(), EchoHandler{&calls});
  REQUIRE(server.listen_tcp("127.0.0.1:0").ok());
  server.start();
  const auto address = server.bound_addresses()[0];
  HttpTestClient client(address);
  CHECK(client.request(HttpTestClient::make_request(http::verb::get, "/")).result() ==
        http::status::ok);

  server.shutdown();
  CHECK(client.closed_by_server());
  server.shutdown();
  CHECK_THROWS(HttpTestClient{address});  // nobody listens any more
  CHECK_FALSE(server.listen_tcp("127.0.0.1:0").ok());
}

TEST_CASE("http_server: shutdown without start, and destruction without shutdown") {
  std::atomic<int> calls{0};
  const auto path = short_socket_path("nostart");
  {
    HttpServer server(small_options(), EchoHandler{&calls});
    REQUIRE(server.listen_tcp("127.0.0.1:0").ok());
    REQUIRE(server.listen_unix(path, 0660).ok());
    server.shutdown();
    server.shutdown();
    CHECK_FALSE(is_socket(path));
  }
  {
    HttpServer server(small_options(), EchoHandler{&calls});
    REQUIRE(server.listen_unix(path, 0660).ok());
    server.start();
    HttpTestClient client("unix:" + path);
    CHECK(client.request(HttpTestClient::make_request(http::verb::get, "/")).result() ==
          http::status::ok);
  }  // ~HttpServer shuts down with a connection open
  CHECK_FALSE(is_socket(path));
  CHECK(calls == 1);
}
