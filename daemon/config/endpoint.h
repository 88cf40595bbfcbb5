#pragma once
// Endpoint spellings accepted in the config: "host:port" for listeners and the
// gRPC upstream, "http://host:port[/prefix]" for the OTLP/HTTP upstream. Shared
// by the loader (validation) and by whoever needs the host and port apart.
#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/common/result.h"

namespace spanrelay::config {

struct HostPort {
  std::string host;  // IPv6 without the brackets: "::1"
  std::uint16_t port = 0;
};

enum class EndpointRole {
  kListen,   // port 0 allowed (the kernel picks one: tests rely on it)
  kConnect,  // port 1..65535: nothing can be reached on port 0
};

// "127.0.0.1:4317", "localhost:4317", "[::1]:4317". No scheme, no path.
Result<HostPort> parse_host_port(std::string_view text, EndpointRole role);

// The otlp_grpc upstream: "host:port", or "http://host:port" with the scheme
// stripped as the OpenTelemetry SDKs do. Returns "host:port".
Result<std::string> normalize_grpc_target(std::string_view text);

// The otlp_http upstream base URL "http[s]://host:port[/prefix]"; the exporter
// appends "/v1/traces" (OTLP spec, "OTLP/HTTP Request": the signal path is
// added to a base endpoint). https:// means TLS (exporter.tls). Returns it
// with the scheme in lower case and without a trailing '/'.
Result<std::string> normalize_http_base_url(std::string_view text);

// The error text for an https:// otlp_grpc endpoint: a gRPC target has no
// scheme, and TLS is turned on by the exporter.tls section.
inline constexpr std::string_view kHttpsNotSupported =
    "https:// is not a gRPC target; write host:port and add an exporter.tls section for TLS";

}  // namespace spanrelay::config
