#pragma once
// OTLP/HTTP exporter: POST of binary protobuf over keep-alive TCP connections
// (Boost.Beast), gzip or zstd bodies, one attempt per call, the outcome
// classified by the OTLP/HTTP retry rules.
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/common/compression.h"
#include "daemon/common/result.h"
#include "daemon/config/config.h"
#include "daemon/exporters/credential_files.h"
#include "daemon/exporters/exporter.h"

namespace boost::asio::ssl {
class context;
}

namespace spanrelay::exporters {

struct HttpConnection;  // one kept-alive connection (http_exporter.cc)

struct HttpEndpoint {
  std::string host;  // without IPv6 brackets
  std::string port;
  std::string target;       // request path, "/v1/traces" when the URL had none
  std::string host_header;  // "host:port" as written in the URL
  bool https = false;       // the URL said https://
};

// "http[s]://host[:port][/path]": an empty path or "/" becomes "/v1/traces"
// (the OTLP/HTTP default); any other path is used as written. The port
// defaults to 80 (http) or 443 (https).
Result<HttpEndpoint> parse_http_endpoint(std::string_view url);

// Retry-After (RFC 9110 10.2.3): delta-seconds or an HTTP-date (IMF-fixdate,
// and the obsolete RFC 850 and asctime forms every recipient must accept).
// A date in the past means "now" (zero). nullopt when unparseable.
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);

class HttpExporter final : public Exporter {
 public:
  // Fails on a bad endpoint, on header names/values that are not valid HTTP,
  // or on TLS or token files that cannot be read.
  static Result<std::unique_ptr<HttpExporter>> create(const config::ExporterConfig& config);
  ~HttpExporter() override;

  ExportResult export_request(std::string_view request, std::uint32_t span_count) override;
  std::string describe() const override;

 private:
  HttpExporter(const config::ExporterConfig& config, HttpEndpoint endpoint, Codec codec,
               std::shared_ptr<boost::asio::ssl::context> tls_context,
               std::unique_ptr<BearerToken> token);

  std::unique_ptr<HttpConnection> take_idle_connection();
  void return_connection(std::unique_ptr<HttpConnection> connection);
  // The TLS context for new connections (null: plaintext), rebuilt first
  // when the TLS files changed.
  std::shared_ptr<boost::asio::ssl::context> current_tls_context();

  const HttpEndpoint endpoint_;
  const std::string url_;
  const Codec codec_;
  const std::chrono::milliseconds timeout_;
  const std::vector<std::pair<std::string, std::string>> headers_;
  const std::size_t max_idle_;
  const config::ClientTlsConfig tls_;
  const std::string tls_server_name_;     // SNI and the name the certificate must carry
  std::unique_ptr<FileWatch> tls_watch_;  // null without TLS files
  std::unique_ptr<BearerToken> token_;    // null without exporter.auth

  std::mutex pool_mutex_;
  std::vector<std::unique_ptr<HttpConnection>> idle_;  // guarded by pool_mutex_
  // Connections made with an older context are not pooled again: they finish
  // the export they are in and close.
  std::shared_ptr<boost::asio::ssl::context> tls_context_;  // guarded by pool_mutex_
};

// The client TLS context for exporter.tls: trust (ca_file or the system's
// store), the client certificate, the minimum version. Reads the files.
Result<std::shared_ptr<boost::asio::ssl::context>> make_client_tls_context(
    const config::ClientTlsConfig& tls);

}  // namespace spanrelay::exporters
