#include "daemon/exporters/http_exporter.h"

#include <doctest/doctest.h>
#include <sys/socket.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon/common/compression.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "spanrelay/rpc/status.pb.h"

using namespace spanrelay;
using namespace spanrelay::exporters;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
namespace otlp_collector = opentelemetry::proto::collector::trace::v1;

namespace {

std::string sample_request() {
  otlp_collector::ExportTraceServiceRequest request;
  auto* scope_spans = request.add_resource_spans()->add_scope_spans();
  for (int i = 0; i < 30; ++i) {
    auto* span = scope_spans->add_spans();
    span->set_trace_id(std::string(16, static_cast<char>(0x40 + i)));
    span->set_span_id(std::string(8, static_cast<char>(0x60 + i)));
    span->set_name("POST /checkout handled by the payments service");
  }
  return request.SerializeAsString();
}

struct ScriptedAnswer {
  unsigned status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool never_answer = false;
  bool close_after = false;  // close after answering, although keep-alive was promised
};

struct ReceivedRequest {
  std::size_t connection = 0;
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // lowercased names
  std::string body;
};

// A stand-in OTLP/HTTP upstream: a blocking accept loop, one thread per
// connection, answers taken from a script (200 with an empty body by default).
class FakeHttpUpstream {
 public:
  FakeHttpUpstream() : acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    accept_thread_ = std::thread([this] { accept_loop(); });
  }
  ~FakeHttpUpstream() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    unblock_.notify_all();
    // shutdown(2) wakes threads blocked in accept/read; the descriptors stay
    // open (closed by their owners below), so none can be reused meanwhile.
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    accept_thread_.join();
    for (auto& socket : sockets_) ::shutdown(socket->native_handle(), SHUT_RDWR);
    for (auto& thread : connection_threads_) thread.join();
  }

  std::string url(const std::string& path = "") const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + path;
  }
  void script(ScriptedAnswer answer) {
    std::lock_guard lock(mutex_);
    script_.push_back(std::move(answer));
  }
  std::vector<ReceivedRequest> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  std::size_t accepted_connections() {
    std::lock_guard lock(mutex_);
    return sockets_.size();
  }

 private:
  void accept_loop() {
    for (;;) {
      auto socket = std::make_unique<tcp::socket>(io_);
      beast::error_code ec;
      acceptor_.accept(*socket, ec);
      std::lock_guard lock(mutex_);
      if (ec || stopping_) return;
      const std::size_t index = sockets_.size();
      sockets_.push_back(std::move(socket));
      connection_threads_.emplace_back(
          [this, index, raw = sockets_.back().get()] { serve(*raw, index); });
    }
  }

  void serve(tcp::socket& socket, std::size_t index) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> request;
      beast::error_code ec;
      http::read(socket, buffer, request, ec);
      if (ec) return;
      ReceivedRequest received{index,
                               std::string(request.method_string()),
                               std::string(request.target()),
                               {},
                               request.body()};
      for (const auto& field : request) {
        std::string name(field.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        received.headers[name] = std::string(field.value());
      }
      ScriptedAnswer answer;
      {
        std::unique_lock lock(mutex_);
        requests_.push_back(std::move(received));
        if (!script_.empty()) {
          answer = std::move(script_.front());
          script_.pop_front();
        }
        if (answer.never_answer) {
          unblock_.wait(lock, [this] { return stopping_; });
          return;
        }
      }
      http::response<http::string_body> response{static_cast<http::status>(answer.status), 11};
      for (const auto& [name, value] : answer.headers) response.set(name, value);
      response.body() = answer.body;
      response.keep_alive(request.keep_alive());
      response.prepare_payload();
      http::write(socket, response, ec);
      if (ec || answer.close_after || !response.keep_alive()) {
        socket.shutdown(tcp::socket::shutdown_both, ec);
        return;
      }
    }
  }

  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread accept_thread_;
  std::mutex mutex_;
  std::condition_variable unblock_;
  bool stopping_ = false;
  std::deque<ScriptedAnswer> script_;
  std::vector<ReceivedRequest> requests_;
  std::vector<std::unique_ptr<tcp::socket>> sockets_;  // kept open until the end
  std::vector<std::thread> connection_threads_;
};

config::ExporterConfig http_config(const std::string& url,
                                   config::Compression compression = config::Compression::kGzip) {
  config::ExporterConfig config;
  config.type = config::ExporterType::kOtlpHttp;
  config.endpoint = url;
  config.compression = compression;
  config.timeout = std::chrono::seconds(5);
  return config;
}

std::unique_ptr<Exporter> make(const config::ExporterConfig& config) {
  auto exporter = make_exporter(config);
  REQUIRE_MESSAGE(exporter.ok(), (exporter.ok() ? "" : exporter.error().message));
  return std::move(exporter).value();
}

std::string rpc_status_body(const std::string& message) {
  rpc::Status status;
  status.set_code(3);
  status.set_message(message);
  return status.SerializeAsString();
}

}  // namespace

TEST_CASE("http_exporter: endpoint parsing appends /v1/traces to the base URL") {
  auto base = parse_http_endpoint("http://collector:4318");
  REQUIRE(base.ok());
  CHECK(base.value().host == "collector");
  CHECK(base.value().port == "4318");
  CHECK(base.value().target == "/v1/traces");
  CHECK(base.value().host_header == "collector:4318");

  auto slash = parse_http_endpoint("http://collector:4318/");
  REQUIRE(slash.ok());
  CHECK(slash.value().target == "/v1/traces");

  auto custom = parse_http_endpoint("http://collector:4318/otlp/custom");
  REQUIRE(custom.ok());
  CHECK(custom.value().target == "/otlp/custom/v1/traces");
  auto full = parse_http_endpoint("http://collector:4318/otlp/v1/traces/");
  REQUIRE(full.ok());
  CHECK(full.value().target == "/otlp/v1/traces");

  auto default_port = parse_http_endpoint("http://collector");
  REQUIRE(default_port.ok());
  CHECK(default_port.value().port == "80");

  auto ipv6 = parse_http_endpoint("http://[::1]:4318/v1/traces");
  REQUIRE(ipv6.ok());
  CHECK(ipv6.value().host == "::1");
  CHECK(ipv6.value().port == "4318");
  CHECK(ipv6.value().host_header == "[::1]:4318");

  for (const char* bad : {"ftp://collector:4318", "collector:4318", "http://:4318",
                          "http://collector:0", "http://collector:99999", "http://collector:x",
                          "http://user:pw@collector:4318", "http://[::1:4318"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_http_endpoint(bad).ok());
  }
}

TEST_CASE("http_exporter: requests go to the right path on a live server") {
  FakeHttpUpstream upstream;
  for (const auto& [suffix, expected] : std::vector<std::pair<std::string, std::string>>{
           {"", "/v1/traces"},
           {"/", "/v1/traces"},
           {"/custom/ingest", "/custom/ingest/v1/traces"}}) {
    CAPTURE(suffix);
    auto exporter = make(http_config(upstream.url(suffix)));
    CHECK(exporter->export_request(sample_request(), 30).disposition ==
          ExportDisposition::kSuccess);
    const auto requests = upstream.requests();
    REQUIRE_FALSE(requests.empty());
    CHECK(requests.back().method == "POST");
    CHECK(requests.back().target == expected);
  }
}

TEST_CASE("http_exporter: gzip, zstd and plain bodies decode to the original bytes") {
  FakeHttpUpstream upstream;
  const std::string request = sample_request();
  struct Case {
    config::Compression compression;
    Codec codec;
    const char* encoding;  // expected Content-Encoding, "" = none
  };
  for (const Case& c : {Case{config::Compression::kGzip, Codec::kGzip, "gzip"},
                        Case{config::Compression::kZstd, Codec::kZstd, "zstd"},
                        Case{config::Compression::kNone, Codec::kIdentity, ""}}) {
    CAPTURE(c.encoding);
    auto exporter = make(http_config(upstream.url(), c.compression));
    CHECK(exporter->describe() ==
          "otlp_http " + upstream.url() + " " + (*c.encoding ? c.encoding : "none"));
    REQUIRE(exporter->export_request(request, 30).disposition == ExportDisposition::kSuccess);
    const auto received = upstream.requests().back();
    const auto encoding = received.headers.find("content-encoding");
    if (*c.encoding) {
      REQUIRE(encoding != received.headers.end());
      CHECK(encoding->second == c.encoding);
      CHECK(received.body != request);
    } else {
      CHECK(encoding == received.headers.end());
    }
    const auto decoded = decompress(c.codec, received.body, 1 << 20);
    REQUIRE(decoded.status == DecompressStatus::kOk);
    CHECK(decoded.bytes == request);
  }
}

TEST_CASE("http_exporter: static headers, User-Agent and Content-Type are sent") {
  FakeHttpUpstream upstream;
  auto config = http_config(upstream.url());
  config.headers = {{"Authorization", "Bearer t0ken"}, {"X-Scope-OrgID", "tenant-1"}};
  auto exporter = make(config);
  REQUIRE(exporter->export_request(sample_request(), 30).disposition ==
          ExportDisposition::kSuccess);
  const auto headers = upstream.requests().back().headers;
  CHECK(headers.at("authorization") == "Bearer t0ken");
  CHECK(headers.at("x-scope-orgid") == "tenant-1");
  CHECK(headers.at("user-agent") == "spanrelay/" SPANRELAY_VERSION);
  CHECK(headers.at("content-type") == "application/x-protobuf");
  CHECK(headers.at("host") == upstream.url().substr(std::string("http://").size()));
}

TEST_CASE("http_exporter: 200 with partial success reports the rejected spans") {
  FakeHttpUpstream upstream;
  otlp_collector::ExportTraceServiceResponse partial;
  partial.mutable_partial_success()->set_rejected_spans(4);
  partial.mutable_partial_success()->set_error_message("4 spans had no name");
  upstream.script({200, {{"Content-Type", "application/x-protobuf"}}, partial.SerializeAsString()});
  auto exporter = make(http_config(upstream.url()));
  const ExportResult result = exporter->export_request(sample_request(), 30);
  CHECK(result.disposition == ExportDisposition::kSuccess);
  CHECK(result.code == "200");
  CHECK(result.rejected_spans == 4);
  CHECK(result.message == "4 spans had no name");
}

TEST_CASE("http_exporter: 429/502/503/504 are retryable and honour Retry-After") {
  FakeHttpUpstream upstream;
  // An HTTP-date one hour ahead (IMF-fixdate, always GMT).
  const auto later = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) +
                     std::chrono::hours(1);
  const std::time_t later_time = std::chrono::system_clock::to_time_t(later);
  std::tm tm{};
  gmtime_r(&later_time, &tm);
  char date[64];
  REQUIRE(std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm) > 0);

  upstream.script({429, {{"Retry-After", "7"}}, "slow down"});
  upstream.script({503, {{"Retry-After", date}}, ""});
  upstream.script({502, {}, "bad gateway"});
  upstream.script({504, {}, ""});
  auto exporter = make(http_config(upstream.url()));

  ExportResult result = exporter->export_request(sample_request(), 30);
  CHECK(result.disposition == ExportDisposition::kRetryable);
  CHECK(result.code == "429");
  REQUIRE(result.retry_after.has_value());
  CHECK(*result.retry_after == std::chrono::seconds(7));

  result = exporter->export_request(sample_request(), 30);
  CHECK(result.disposition == ExportDisposition::kRetryable);
  CHECK(result.code == "503");
  REQUIRE(result.retry_after.has_value());
  CHECK(*result.retry_after > std::chrono::minutes(50));
  CHECK(*result.retry_after <= std::chrono::hours(1));

  for (const char* code : {"502", "504"}) {
    CAPTURE(code);
    result = exporter->export_request(sample_request(), 30);
    CHECK(result.disposition == ExportDisposition::kRetryable);
    CHECK(result.code == code);
    CHECK_FALSE(result.retry_after.has_value());
  }
}

TEST_CASE("http_exporter: Retry-After parsing covers delta-seconds and all HTTP-date forms") {
  using std::chrono::seconds;
  using namespace std::chrono_literals;
  // 1994-11-06 08:49:00 GMT, 37 seconds before the RFC example dates.
  const auto now = std::chrono::sys_days(std::chrono::year(1994) / 11 / 6) + 8h + 49min;
  CHECK(parse_retry_after("120", now) == seconds(120));
  CHECK(parse_retry_after(" 5 ", now) == seconds(5));
  CHECK(parse_retry_after("0", now) == seconds(0));
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now) == seconds(37));
  CHECK(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now) == seconds(37));
  CHECK(parse_retry_after("Sun Nov  6 08:49:37 1994", now) == seconds(37));
  CHECK(parse_retry_after("Sat, 05 Nov 1994 08:49:37 GMT", now) == seconds(0));  // past
  CHECK(parse_retry_after("99999999999999999999999", now).has_value());          // clamped
  for (const char* bad :
       {"", "-5", "1.5", "soon", "Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 GMT trailing"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_retry_after(bad, now).has_value());
  }
}

TEST_CASE("http_exporter: 400/401/500 are permanent and carry the error message") {
  FakeHttpUpstream upstream;
  upstream.script({400,
                   {{"Content-Type", "application/x-protobuf"}},
                   rpc_status_body("resourceSpans[0]: invalid trace id")});
  upstream.script({401, {{"Content-Type", "text/plain"}}, "missing token"});
  upstream.script({500, {}, std::string(1000, 'x')});
  auto exporter = make(http_config(upstream.url()));

  ExportResult result = exporter->export_request(sample_request(), 30);
  CHECK(result.disposition == ExportDisposition::kPermanent);
  CHECK(result.code == "400");
  CHECK(result.message.find("resourceSpans[0]: invalid trace id") != std::string::npos);

  result = exporter->export_request(sample_request(), 30);
  CHECK(result.disposition == ExportDisposition::kPermanent);
  CHECK(result.code == "401");
  CHECK(result.message.find("missing token") != std::string::npos);

  result = exporter->export_request(sample_request(), 30);
  CHECK(result.disposition == ExportDisposition::kPermanent);
  CHECK(result.code == "500");
  CHECK(result.message.find(std::string(200, 'x')) != std::string::npos);
  CHECK(result.message.find(std::string(201, 'x')) == std::string::npos);
}

TEST_CASE("http_exporter: a kept-alive connection is reused across calls") {
  FakeHttpUpstream upstream;
  auto exporter = make(http_config(upstream.url()));
  CHECK(exporter->export_request(sample_request(), 30).disposition == ExportDisposition::kSuccess);
  CHECK(exporter->export_request(sample_request(), 30).disposition == ExportDisposition::kSuccess);
  CHECK(upstream.requests().size() == 2);
  CHECK(upstream.accepted_connections() == 1);
}

TEST_CASE("http_exporter: a connection the server closed while idle is replaced transparently") {
  FakeHttpUpstream upstream;
  upstream.script({200, {}, "", false, /*close_after=*/true});
  auto exporter = make(http_config(upstream.url()));
  CHECK(exporter->export_request(sample_request(), 30).disposition == ExportDisposition::kSuccess);
  const ExportResult second = exporter->export_request(sample_request(), 30);
  CHECK(second.disposition == ExportDisposition::kSuccess);
  CHECK(second.code == "200");
  CHECK(upstream.accepted_connections() == 2);
  const auto requests = upstream.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[1].connection == 1);
}

TEST_CASE("http_exporter: concurrent callers each get a connection, and all succeed") {
  FakeHttpUpstream upstream;
  auto config = http_config(upstream.url());
  config.max_in_flight = 4;
  auto exporter = make(config);
  std::vector<std::thread> callers;
  std::atomic<int> successes{0};
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        if (exporter->export_request(sample_request(), 30).disposition ==
            ExportDisposition::kSuccess) {
          ++successes;
        }
      }
    });
  }
  for (auto& caller : callers) caller.join();
  CHECK(successes == 20);
  CHECK(upstream.requests().size() == 20);
  CHECK(upstream.accepted_connections() <= 4);
}

TEST_CASE("http_exporter: connection refused is retryable") {
  // A bound socket that never listens refuses connections and keeps the port.
  asio::io_context io;
  tcp::socket holder(io);
  holder.open(tcp::v4());
  holder.bind({asio::ip::make_address("127.0.0.1"), 0});
  auto exporter =
      make(http_config("http://127.0.0.1:" + std::to_string(holder.local_endpoint().port())));
  const ExportResult result = exporter->export_request(sample_request(), 30);
  CHECK(result.disposition == ExportDisposition::kRetryable);
  CHECK(result.code == "connection_error");
  CHECK_FALSE(result.message.empty());
}

TEST_CASE("http_exporter: a server that never answers times out as retryable") {
  FakeHttpUpstream upstream;
  upstream.script({200, {}, "", /*never_answer=*/true});
  auto config = http_config(upstream.url());
  config.timeout = std::chrono::milliseconds(300);
  auto exporter = make(config);
  const ExportResult result = exporter->export_request(sample_request(), 30);
  CHECK(result.disposition == ExportDisposition::kRetryable);
  CHECK(result.code == "timeout");
}

TEST_CASE("http_exporter: bad endpoints and headers are configuration errors") {
  CHECK_FALSE(make_exporter(http_config("ftp://collector:4318")).ok());
  CHECK_FALSE(make_exporter(http_config("collector:4318")).ok());
  auto config = http_config("http://collector:4318");
  config.headers = {{"X-Evil", "a\r\nInjected: 1"}};
  CHECK_FALSE(make_exporter(config).ok());
  config.headers = {{"bad name", "x"}};
  CHECK_FALSE(make_exporter(config).ok());
  config.headers = {{"Content-Length", "5"}};
  auto framing = make_exporter(config);
  REQUIRE_FALSE(framing.ok());
  CHECK(framing.error().message.find("Content-Length") != std::string::npos);
}
