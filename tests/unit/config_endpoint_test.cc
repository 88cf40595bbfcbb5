#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "daemon/config/endpoint.h"

using spanrelay::config::EndpointRole;
using spanrelay::config::kHttpsNotSupported;
using spanrelay::config::normalize_grpc_target;
using spanrelay::config::normalize_http_base_url;
using spanrelay::config::parse_host_port;

TEST_CASE("config endpoint: parse_host_port splits names, IPv4 and bracketed IPv6") {
  auto v4 = parse_host_port("127.0.0.1:4317", EndpointRole::kListen);
  REQUIRE(v4.ok());
  CHECK(v4.value().host == "127.0.0.1");
  CHECK(v4.value().port == 4317);

  auto v6 = parse_host_port("[::1]:4317", EndpointRole::kListen);
  REQUIRE(v6.ok());
  CHECK(v6.value().host == "::1");
  CHECK(v6.value().port == 4317);

  auto any = parse_host_port("[::]:0", EndpointRole::kListen);
  REQUIRE(any.ok());
  CHECK(any.value().port == 0);

  auto name = parse_host_port("my_service.internal:65535", EndpointRole::kConnect);
  REQUIRE(name.ok());
  CHECK(name.value().host == "my_service.internal");
  CHECK(name.value().port == 65535);
}

TEST_CASE("config endpoint: parse_host_port rejects malformed endpoints") {
  for (const std::string_view text :
       {"", "localhost", ":4317", "::1:4317", "[::1]", "[::1]4317", "[zz::1]:80",
        "host:", "host:65536", "host:-1", "host:+80", "host:123456", "http://host:1", "a b:1",
        "-bad:1", "host:80 "}) {
    CAPTURE(text);
    CHECK_FALSE(parse_host_port(text, EndpointRole::kListen).ok());
  }
}

TEST_CASE("config endpoint: port 0 is for listeners only") {
  CHECK(parse_host_port("localhost:0", EndpointRole::kListen).ok());
  const auto connect = parse_host_port("localhost:0", EndpointRole::kConnect);
  REQUIRE_FALSE(connect.ok());
  CHECK(connect.error().message == "expected a port from 1 to 65535, got \"localhost:0\"");
}

TEST_CASE("config endpoint: gRPC targets drop an http:// scheme and refuse https") {
  for (const auto& [input, expected] :
       {std::pair<std::string_view, std::string_view>{"c.example:4317", "c.example:4317"},
        {"http://c.example:4317", "c.example:4317"},
        {"HTTP://c.example:4317/", "c.example:4317"},
        {"http://[::1]:4317", "[::1]:4317"}}) {
    CAPTURE(input);
    const auto target = normalize_grpc_target(input);
    REQUIRE(target.ok());
    CHECK(target.value() == expected);
  }
  const auto https = normalize_grpc_target("https://c.example:4317");
  REQUIRE_FALSE(https.ok());
  CHECK(https.error().message == kHttpsNotSupported);
  for (const std::string_view text : {"grpc://c:1", "http://c:1/otlp", "c", "c:0", "dns:///c:1"}) {
    CAPTURE(text);
    CHECK_FALSE(normalize_grpc_target(text).ok());
  }
}

TEST_CASE("config endpoint: HTTP base URLs are http[s]:// with host:port and an optional prefix") {
  for (const auto& [input, expected] :
       {std::pair<std::string_view, std::string_view>{"http://c:4318", "http://c:4318"},
        {"http://c:4318/", "http://c:4318"},
        {"http://c:4318/prefix/", "http://c:4318/prefix"},
        {"HTTP://[::1]:4318", "http://[::1]:4318"}}) {
    CAPTURE(input);
    const auto url = normalize_http_base_url(input);
    REQUIRE(url.ok());
    CHECK(url.value() == expected);
  }
  // https:// is TLS (exporter.tls); the scheme is kept.
  const auto https = normalize_http_base_url("HTTPS://c:4318/otlp/");
  REQUIRE(https.ok());
  CHECK(https.value() == "https://c:4318/otlp");
  for (const std::string_view text :
       {"c:4318", "http://c", "http://c:0", "http://c:4318/v1/traces", "http://c:4318/v1/traces/",
        "http://c:4318?x=1", "ftp://c:21", "http://"}) {
    CAPTURE(text);
    CHECK_FALSE(normalize_http_base_url(text).ok());
  }
}

TEST_CASE("config endpoint: credentials in an endpoint are refused without echoing them") {
  const auto http = normalize_http_base_url("http://user:s3cret@c:4318");
  REQUIRE_FALSE(http.ok());
  CHECK(http.error().message.find("s3cret") == std::string::npos);
  const auto grpc = normalize_grpc_target("user:s3cret@c:4317");
  REQUIRE_FALSE(grpc.ok());
  CHECK(grpc.error().message.find("s3cret") == std::string::npos);
  const auto query = normalize_http_base_url("http://c:4318/?token=s3cret");
  REQUIRE_FALSE(query.ok());
  CHECK(query.error().message.find("s3cret") == std::string::npos);
}
