#include "daemon/exporters/http_exporter.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cctype>
#include <charconv>
#include <cstdio>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "spanrelay/rpc/status.pb.h"

namespace spanrelay::exporters {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// An ExportTraceServiceResponse or a google.rpc.Status is small; anything
// larger is not an answer we need to read in full.
constexpr std::size_t kMaxResponseBody = 1 << 20;
constexpr std::size_t kBodyExcerpt = 200;

std::string lowercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view to_std(beast::string_view text) { return {text.data(), text.size()}; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// RFC 9110 5.1 field-name = token; 5.5 field values carry no CR, LF or NUL
// (a header from the config must not be able to inject another one).
Status validate_header(const std::string& name, const std::string& value) {
  constexpr std::string_view kTokenPunctuation = "!#$%&'*+-.^_`|~";
  if (name.empty()) return Error{"exporter.headers: empty header name"};
  for (const char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) &&
        kTokenPunctuation.find(c) == std::string_view::npos) {
      return Error{"exporter.headers: '" + name + "' is not a valid HTTP header name"};
    }
  }
  static constexpr std::array<std::string_view, 5> kFraming = {
      "content-length", "transfer-encoding", "connection", "content-encoding", "content-type"};
  const std::string lower = lowercase(name);
  if (std::find(kFraming.begin(), kFraming.end(), lower) != kFraming.end()) {
    return Error{"exporter.headers: '" + name + "' is set by the exporter itself"};
  }
  for (const char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    if ((byte < 0x20 && c != '\t') || byte == 0x7f) {
      return Error{"exporter.headers: the value of '" + name + "' contains a control character"};
    }
  }
  return Ok{};
}

std::optional<int> month_number(std::string_view name) {
  static constexpr std::array<std::string_view, 12> kMonths = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (std::size_t i = 0; i < kMonths.size(); ++i) {
    if (name == kMonths[i]) return static_cast<int>(i) + 1;
  }
  return std::nullopt;
}

struct DateFields {
  int day = 0, year = 0, hour = 0, minute = 0, second = 0;
  std::array<char, 4> month{};
};

std::optional<std::chrono::system_clock::time_point> to_time_point(const DateFields& date) {
  const auto month = month_number(date.month.data());
  if (!month) return std::nullopt;
  const std::chrono::year_month_day ymd{std::chrono::year(date.year),
                                        std::chrono::month(static_cast<unsigned>(*month)),
                                        std::chrono::day(static_cast<unsigned>(date.day))};
  if (!ymd.ok() || date.hour > 23 || date.minute > 59 || date.second > 60) return std::nullopt;
  return std::chrono::sys_days(ymd) + std::chrono::hours(date.hour) +
         std::chrono::minutes(date.minute) + std::chrono::seconds(date.second);
}

// RFC 9110 5.6.7: the three HTTP-date forms.
std::optional<std::chrono::system_clock::time_point> parse_http_date(
    const std::string& text, std::chrono::system_clock::time_point now) {
  DateFields date;
  std::array<char, 10> weekday{};
  int consumed = -1;
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
  if (std::sscanf(text.c_str(), "%9[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n", weekday.data(),
                  &date.day, date.month.data(), &date.year, &date.hour, &date.minute, &date.second,
                  &consumed) == 7 &&
      consumed == static_cast<int>(text.size())) {
    return to_time_point(date);
  }
  // Obsolete RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT". A two-digit year more
  // than 50 years ahead means the most recent past year with those digits.
  consumed = -1;
  if (std::sscanf(text.c_str(), "%9[A-Za-z], %2d-%3[A-Za-z]-%2d %2d:%2d:%2d GMT%n", weekday.data(),
                  &date.day, date.month.data(), &date.year, &date.hour, &date.minute, &date.second,
                  &consumed) == 7 &&
      consumed == static_cast<int>(text.size())) {
    const int this_year = static_cast<int>(
        std::chrono::year_month_day(std::chrono::floor<std::chrono::days>(now)).year());
    const int century = this_year / 100 * 100;
    date.year += century;
    if (date.year > this_year + 50) date.year -= 100;
    return to_time_point(date);
  }
  // Obsolete asctime: "Sun Nov  6 08:49:37 1994"
  consumed = -1;
  if (std::sscanf(text.c_str(), "%3[A-Za-z] %3[A-Za-z] %2d %2d:%2d:%2d %4d%n", weekday.data(),
                  date.month.data(), &date.day, &date.hour, &date.minute, &date.second, &date.year,
                  &consumed) == 7 &&
      consumed == static_cast<int>(text.size())) {
    return to_time_point(date);
  }
  return std::nullopt;
}

}  // namespace

Result<HttpEndpoint> parse_http_endpoint(std::string_view url) {
  const bool https = url.rfind("https://", 0) == 0;
  const std::string_view scheme = https ? "https://" : "http://";
  if (url.rfind(scheme, 0) != 0) {
    return Error{"exporter.endpoint: expected http[s]://host:port[/path], got '" +
                 std::string(url) + "'"};
  }
  std::string_view rest = url.substr(scheme.size());
  const auto path_start = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, path_start);
  std::string_view path = path_start == std::string_view::npos ? "" : rest.substr(path_start);
  if (authority.find('@') != std::string_view::npos) {
    return Error{"exporter.endpoint: credentials in the URL are not supported (use headers)"};
  }
  HttpEndpoint endpoint;
  endpoint.https = https;
  endpoint.host_header = std::string(authority);
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {  // IPv6 literal
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return Error{"exporter.endpoint: unclosed '[' in host"};
    endpoint.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Error{"exporter.endpoint: junk after IPv6 host"};
      port = after.substr(1);
    }
  } else {
    const auto colon = authority.rfind(':');
    endpoint.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (endpoint.host.empty())
    return Error{"exporter.endpoint: missing host in '" + std::string(url) + "'"};
  if (port.empty()) {
    port = https ? "443" : "80";  // RFC 9110 4.2.1 and 4.2.2: the schemes' default ports
  } else {
    unsigned number = 0;
    const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), number);
    if (error != std::errc() || end != port.data() + port.size() || number == 0 || number > 65535) {
      return Error{"exporter.endpoint: bad port '" + std::string(port) + "'"};
    }
  }
  endpoint.port = std::string(port);
  // OTLP/HTTP: the signal path is appended only to a base URL without one.
  // The endpoint is a base URL, as OTEL_EXPORTER_OTLP_ENDPOINT is: the signal
  // path is appended to whatever prefix it has (a gateway behind /otlp keeps
  // it). A URL that already names /v1/traces is taken as it is.
  std::string base(path);
  while (!base.empty() && base.back() == '/') base.pop_back();
  constexpr std::string_view kTracesPath = "/v1/traces";
  endpoint.target = base.ends_with(kTracesPath) ? base : base + std::string(kTracesPath);
  return endpoint;
}

std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now) {
  value = trim(value);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(),
                  [](unsigned char c) { return std::isdigit(c) != 0; })) {
    std::uint64_t seconds = 0;
    const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    // An absurdly large delay is still "a long time", not an error; the
    // delivery stage caps it with its own max_interval.
    constexpr std::uint64_t kMaxSeconds = std::uint64_t{1} << 40;
    if (error == std::errc::result_out_of_range || seconds > kMaxSeconds) seconds = kMaxSeconds;
    return std::chrono::seconds(seconds);
  }
  const auto date = parse_http_date(std::string(value), now);
  if (!date) return std::nullopt;
  if (*date <= now) return std::chrono::milliseconds(0);
  return std::chrono::ceil<std::chrono::milliseconds>(*date - now);
}

// One kept-alive TCP (or TLS over TCP) connection with its own io_context:
// every blocking step is an async operation run to completion on this
// context, so that the stream's expiry bounds connect, handshake, write and
// read alike.
struct HttpConnection {
  explicit HttpConnection(std::shared_ptr<asio::ssl::context> context)
      : tls_context(std::move(context)) {
    if (tls_context) {
      secure.emplace(io, *tls_context);
    } else {
      plain.emplace(io);
    }
  }
  beast::tcp_stream& stream() { return secure ? beast::get_lowest_layer(*secure) : *plain; }

  asio::io_context io{1};
  // Kept alive by the connection: a rotation swaps the exporter's context
  // while this connection may still be using this one.
  std::shared_ptr<asio::ssl::context> tls_context;
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  bool handshake_done = false;
  beast::flat_buffer buffer;

  template <class Start>
  beast::error_code run(Start&& start_operation) {
    beast::error_code result = asio::error::would_block;
    start_operation([&result](beast::error_code ec, auto&&...) { result = ec; });
    io.restart();
    io.run();
    return result;
  }
};

namespace {

using Response = http::response<http::string_body>;
using Request = http::request<http::string_body>;

enum class FailureKind { kNone, kTimeout, kConnection };

struct Exchange {
  FailureKind failure = FailureKind::kNone;
  std::string message;
  bool got_response_bytes = false;
  Response response;
};

// The google.rpc.Status message of an error body when it is one, else the
// start of the body as text.
std::string error_body_message(const Response& response, std::string_view body) {
  const std::string_view content_type = to_std(response[http::field::content_type]);
  const bool textual = content_type.find("text/") != std::string_view::npos ||
                       content_type.find("json") != std::string_view::npos;
  if (!textual && !body.empty()) {
    rpc::Status status;
    if (status.ParseFromArray(body.data(), static_cast<int>(body.size())) &&
        !status.message().empty()) {
      return status.message();
    }
  }
  return std::string(body.substr(0, kBodyExcerpt));
}

ExportResult classify_response(const Response& response) {
  ExportResult result;
  const unsigned status = response.result_int();
  result.code = std::to_string(status);

  std::string body = response.body();
  const std::string_view encoding = to_std(response[http::field::content_encoding]);
  if (!encoding.empty()) {
    const auto codec = codec_from_name(lowercase(encoding));
    auto decoded = codec ? decompress(*codec, body, kMaxResponseBody) : Decompressed{};
    if (codec && decoded.status == DecompressStatus::kOk) body = std::move(decoded.bytes);
  }

  if (status >= 200 && status < 300) {
    result.disposition = ExportDisposition::kSuccess;
    opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse answer;
    if (!answer.ParseFromString(body)) {
      // Acknowledged is acknowledged: an unreadable answer does not make the
      // data undelivered.
      result.message = "acknowledged with an unparseable ExportTraceServiceResponse";
    } else if (answer.has_partial_success()) {
      result.rejected_spans = answer.partial_success().rejected_spans();
      result.message = answer.partial_success().error_message();
    }
    return result;
  }
  result.message = "HTTP " + result.code + ": " + error_body_message(response, body);
  // OTLP/HTTP: 429, 502, 503 and 504 are the retryable answers, with
  // Retry-After honoured when present.
  if (status == 429 || status == 502 || status == 503 || status == 504) {
    result.disposition = ExportDisposition::kRetryable;
    const auto retry_after = response.find(http::field::retry_after);
    if (retry_after != response.end()) {
      result.retry_after =
          parse_retry_after(retry_after->value().to_string(), std::chrono::system_clock::now());
    }
  } else {
    result.disposition = ExportDisposition::kPermanent;
  }
  return result;
}

bool is_timeout(const beast::error_code& ec) { return ec == beast::error::timeout; }

// Name checks by OpenSSL during the handshake: the certificate must name the
// host (DNS name) or carry the address (IP literal, for which SNI is not sent:
// RFC 6066 3 allows host names only).
beast::error_code prepare_tls(SSL* ssl, const std::string& name) {
  boost::system::error_code not_an_address;
  (void)asio::ip::make_address(name, not_an_address);
  const bool is_address = !not_an_address;
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  const int ok = is_address ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                            : (SSL_set_tlsext_host_name(ssl, name.c_str()) == 1 &&
                               SSL_set1_host(ssl, name.c_str()) == 1);
  if (ok != 1) return asio::error::invalid_argument;
  return {};
}

template <class Stream>
Exchange write_and_read(HttpConnection& connection, Stream& stream, const Request& request,
                        std::chrono::steady_clock::time_point deadline, Exchange outcome) {
  auto fail = [&outcome](const beast::error_code& ec, std::string_view stage) {
    outcome.failure = is_timeout(ec) ? FailureKind::kTimeout : FailureKind::kConnection;
    outcome.message = std::string(stage) + ": " + ec.message();
    return std::move(outcome);
  };
  connection.stream().expires_at(deadline);
  beast::error_code ec =
      connection.run([&](auto handler) { http::async_write(stream, request, handler); });
  if (ec) return fail(ec, "write");
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxResponseBody);
  ec = connection.run(
      [&](auto handler) { http::async_read(stream, connection.buffer, parser, handler); });
  outcome.got_response_bytes = parser.got_some();
  if (ec) return fail(ec, "read");
  connection.stream().expires_never();
  outcome.response = parser.release();
  return outcome;
}

Exchange exchange(HttpConnection& connection, const HttpEndpoint& endpoint,
                  const std::string& tls_name, const Request& request,
                  std::chrono::steady_clock::time_point deadline) {
  Exchange outcome;
  auto fail = [&outcome](const beast::error_code& ec, std::string_view stage) {
    outcome.failure = is_timeout(ec) ? FailureKind::kTimeout : FailureKind::kConnection;
    outcome.message = std::string(stage) + ": " + ec.message();
    return std::move(outcome);
  };
  auto& stream = connection.stream();
  if (!stream.socket().is_open()) {
    // getaddrinfo cannot be cancelled; the system resolver's own timeouts
    // bound it. Numeric hosts resolve without a lookup.
    beast::error_code ec;
    tcp::resolver resolver(connection.io);
    const auto addresses = resolver.resolve(endpoint.host, endpoint.port, ec);
    if (ec) return fail(ec, "resolve " + endpoint.host);
    if (std::chrono::steady_clock::now() >= deadline) return fail(beast::error::timeout, "resolve");
    stream.expires_at(deadline);
    ec = connection.run([&](auto handler) { stream.async_connect(addresses, handler); });
    if (ec) return fail(ec, "connect");
    stream.socket().set_option(tcp::no_delay(true), ec);
  }
  if (!connection.secure)
    return write_and_read(connection, *connection.plain, request, deadline, std::move(outcome));
  if (!connection.handshake_done) {
    auto& secure = *connection.secure;
    if (auto ec = prepare_tls(secure.native_handle(), tls_name)) return fail(ec, "tls setup");
    stream.expires_at(deadline);
    const beast::error_code ec = connection.run(
        [&](auto handler) { secure.async_handshake(asio::ssl::stream_base::client, handler); });
    if (ec) return fail(ec, "tls handshake");
    connection.handshake_done = true;
  }
  return write_and_read(connection, *connection.secure, request, deadline, std::move(outcome));
}

}  // namespace

Result<std::shared_ptr<asio::ssl::context>> make_client_tls_context(
    const config::ClientTlsConfig& tls) {
  auto material = read_client_tls_material(tls);
  if (!material) return material.error();
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  const auto failed = [](std::string_view setting, const beast::error_code& ec) {
    return Error{"exporter.tls." + std::string(setting) + ": " + ec.message()};
  };
  beast::error_code ec;
  context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                           asio::ssl::context::no_sslv3 | asio::ssl::context::no_compression,
                       ec);
  const int min_version =
      tls.min_version == config::TlsVersion::kTls13 ? TLS1_3_VERSION : TLS1_2_VERSION;
  if (SSL_CTX_set_min_proto_version(context->native_handle(), min_version) != 1) {
    return Error{"exporter.tls.min_version: not supported by this OpenSSL"};
  }
  context->set_verify_mode(asio::ssl::verify_peer, ec);
  if (material.value().ca_pem.empty()) {
    context->set_default_verify_paths(ec);
    if (ec) return failed("ca_file (system trust store)", ec);
  } else {
    context->add_certificate_authority(asio::buffer(material.value().ca_pem), ec);
    if (ec) return failed("ca_file", ec);
  }
  if (!material.value().cert_pem.empty()) {
    context->use_certificate_chain(asio::buffer(material.value().cert_pem), ec);
    if (ec) return failed("cert_file", ec);
    context->use_private_key(asio::buffer(material.value().key_pem), asio::ssl::context::pem, ec);
    if (ec) return failed("key_file", ec);
    if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
      return Error{"exporter.tls.key_file: does not match exporter.tls.cert_file"};
    }
  }
  return context;
}

Result<std::unique_ptr<HttpExporter>> HttpExporter::create(const config::ExporterConfig& config) {
  auto endpoint = parse_http_endpoint(config.endpoint);
  if (!endpoint) return endpoint.error();
  for (const auto& [name, value] : config.headers) {
    if (auto valid = validate_header(name, value); !valid) return valid.error();
    if (lowercase(name) == "authorization" && !config.auth.bearer_token_file.empty()) {
      return Error{"exporter.headers: authorization is set by exporter.auth.bearer_token_file"};
    }
  }
  Codec codec = Codec::kIdentity;
  if (config.compression == config::Compression::kGzip) codec = Codec::kGzip;
  if (config.compression == config::Compression::kZstd) codec = Codec::kZstd;
  // https:// always means TLS, also when the config did not come through the
  // loader (which sets tls.enabled for it).
  std::shared_ptr<asio::ssl::context> tls_context;
  if (config.tls.enabled || endpoint.value().https) {
    auto made = make_client_tls_context(config.tls);
    if (!made) return made.error();
    tls_context = std::move(made).value();
  }
  std::unique_ptr<BearerToken> token;
  if (!config.auth.bearer_token_file.empty()) {
    auto opened = BearerToken::open(config.auth.bearer_token_file);
    if (!opened) return opened.error();
    token = std::move(opened).value();
  }
  return std::unique_ptr<HttpExporter>(new HttpExporter(config, std::move(endpoint).value(), codec,
                                                        std::move(tls_context), std::move(token)));
}

HttpExporter::HttpExporter(const config::ExporterConfig& config, HttpEndpoint endpoint, Codec codec,
                           std::shared_ptr<asio::ssl::context> tls_context,
                           std::unique_ptr<BearerToken> token)
    : endpoint_(std::move(endpoint)),
      url_(config.endpoint),
      codec_(codec),
      timeout_(config.timeout),
      headers_(config.headers.begin(), config.headers.end()),
      max_idle_(std::max<std::size_t>(config.max_in_flight, 1)),
      tls_(config.tls),
      tls_server_name_(config.tls.server_name.empty() ? endpoint_.host : config.tls.server_name),
      token_(std::move(token)),
      tls_context_(std::move(tls_context)) {
  if (tls_context_ && !client_tls_files(tls_).empty()) {
    tls_watch_ = std::make_unique<FileWatch>(client_tls_files(tls_), kCredentialCheckInterval);
  }
}

std::shared_ptr<asio::ssl::context> HttpExporter::current_tls_context() {
  if (tls_watch_ && tls_watch_->poll()) {
    auto made = make_client_tls_context(tls_);
    if (made) {
      spdlog::info("exporter.tls: certificate files changed; new connections to {} use them", url_);
      std::lock_guard lock(pool_mutex_);
      tls_context_ = std::move(made).value();
      idle_.clear();  // made with the old context
    } else {
      // Often a rotation caught half-way: keep the working context, look again soon.
      spdlog::warn("{}; keeping the current TLS settings", made.error().message);
      tls_watch_->retry_later();
    }
  }
  std::lock_guard lock(pool_mutex_);
  return tls_context_;
}

HttpExporter::~HttpExporter() = default;

std::unique_ptr<HttpConnection> HttpExporter::take_idle_connection() {
  std::lock_guard lock(pool_mutex_);
  if (idle_.empty()) return nullptr;
  auto connection = std::move(idle_.back());
  idle_.pop_back();
  return connection;
}

void HttpExporter::return_connection(std::unique_ptr<HttpConnection> connection) {
  std::lock_guard lock(pool_mutex_);
  if (connection->tls_context != tls_context_) return;  // rotated meanwhile
  if (idle_.size() < max_idle_) idle_.push_back(std::move(connection));
}

ExportResult HttpExporter::export_request(std::string_view request_bytes,
                                          std::uint32_t /*span_count*/) {
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  Request request{http::verb::post, endpoint_.target, 11};
  request.set(http::field::host, endpoint_.host_header);
  request.set(http::field::user_agent, "spanrelay/" SPANRELAY_VERSION);
  request.set(http::field::content_type, "application/x-protobuf");
  request.keep_alive(true);
  if (codec_ == Codec::kIdentity) {
    request.body() = std::string(request_bytes);
  } else {
    auto compressed = compress(codec_, request_bytes);
    if (!compressed) {
      return {ExportDisposition::kPermanent, 0, std::nullopt, "compression_error",
              compressed.error().message};
    }
    request.set(http::field::content_encoding, std::string(codec_name(codec_)));
    request.body() = std::move(compressed).value();
  }
  for (const auto& [name, value] : headers_) request.set(name, value);
  if (token_) request.set(http::field::authorization, token_->header_value());
  request.prepare_payload();

  const auto tls_context = current_tls_context();
  auto connection = take_idle_connection();
  const bool reused = connection != nullptr;
  if (!connection) connection = std::make_unique<HttpConnection>(tls_context);
  Exchange outcome = exchange(*connection, endpoint_, tls_server_name_, request, deadline);
  // A kept-alive connection the server closed while idle fails before any
  // answer arrives; that says nothing about the upstream, so the attempt is
  // made once more on a fresh connection within the same deadline.
  if (outcome.failure == FailureKind::kConnection && reused && !outcome.got_response_bytes &&
      std::chrono::steady_clock::now() < deadline) {
    connection = std::make_unique<HttpConnection>(tls_context);
    outcome = exchange(*connection, endpoint_, tls_server_name_, request, deadline);
  }
  if (outcome.failure != FailureKind::kNone) {
    // The connection is dropped: its state after a failure is unknown.
    const bool timeout = outcome.failure == FailureKind::kTimeout;
    return {ExportDisposition::kRetryable, 0, std::nullopt,
            timeout ? "timeout" : "connection_error", url_ + ": " + outcome.message};
  }
  ExportResult result = classify_response(outcome.response);
  if (outcome.response.keep_alive() && !outcome.response.need_eof()) {
    return_connection(std::move(connection));
  }
  return result;
}

std::string HttpExporter::describe() const {
  std::string text = "otlp_http " + url_ + " " +
                     std::string(codec_name(codec_) == "identity" ? "none" : codec_name(codec_));
  if (tls_.enabled && !endpoint_.https) text += " tls";
  if (!tls_.cert_file.empty()) text += " client-cert";
  // The token file's path only: the token itself is never shown.
  if (token_) text += " bearer_token_file=" + token_->path();
  return text;
}

}  // namespace spanrelay::exporters
