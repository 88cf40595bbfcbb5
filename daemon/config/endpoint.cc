#include "daemon/config/endpoint.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

#include "daemon/config/units.h"

namespace spanrelay::config {
namespace {

bool starts_with_ignoring_case(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), text.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) ==
                  std::tolower(static_cast<unsigned char>(b));
         });
}

// DNS names and IPv4 literals. Underscores appear in real internal names
// (Docker service names), so they are allowed.
bool is_valid_host_name(std::string_view host) {
  if (host.empty() || host.size() > 253 || host.front() == '-' || host.front() == '.') return false;
  return std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
  });
}

bool is_valid_ipv6_literal(std::string_view address) {
  in6_addr parsed{};
  return inet_pton(AF_INET6, std::string(address).c_str(), &parsed) == 1;
}

std::string host_port_hint(std::string_view text) {
  return "expected host:port such as 127.0.0.1:4317 or [::1]:4317, got " + quoted(text);
}

}  // namespace

Result<HostPort> parse_host_port(std::string_view text, EndpointRole role) {
  if (text.find("://") != std::string_view::npos) {
    return Error{"expected host:port without a scheme, got " + quoted(text)};
  }
  HostPort result;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Error{host_port_hint(text)};
    }
    const auto address = text.substr(1, close - 1);
    if (!is_valid_ipv6_literal(address)) {
      return Error{"invalid IPv6 address " + quoted(address) + " in " + quoted(text)};
    }
    result.host = std::string(address);
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return Error{host_port_hint(text)};
    const auto host = text.substr(0, colon);
    if (host.find(':') != std::string_view::npos) {
      return Error{"IPv6 addresses need brackets, as in [::1]:4317; got " + quoted(text)};
    }
    if (host.empty()) {
      return Error{role == EndpointRole::kListen
                       ? "the host is missing (write 0.0.0.0:PORT to listen on every IPv4 "
                         "interface); got " +
                             quoted(text)
                       : "the host is missing; got " + quoted(text)};
    }
    if (!is_valid_host_name(host)) {
      return Error{"invalid host " + quoted(host) + " in " + quoted(text)};
    }
    result.host = std::string(host);
    port_text = text.substr(colon + 1);
  }

  const unsigned min_port = role == EndpointRole::kListen ? 0 : 1;
  const auto bad_port = [&] {
    return Error{"expected a port from " + std::to_string(min_port) + " to 65535, got " +
                 quoted(text)};
  };
  if (port_text.empty() || port_text.size() > 5) return bad_port();
  unsigned port = 0;
  for (const char c : port_text) {
    if (c < '0' || c > '9') return bad_port();
    port = port * 10 + static_cast<unsigned>(c - '0');
  }
  if (port < min_port || port > 65535) return bad_port();
  result.port = static_cast<std::uint16_t>(port);
  return result;
}

Result<std::string> normalize_grpc_target(std::string_view text) {
  constexpr std::string_view kHttp = "http://";
  if (starts_with_ignoring_case(text, "https://")) return Error{std::string(kHttpsNotSupported)};
  if (text.find('@') != std::string_view::npos) {
    // Not echoed: credentials in the endpoint would end up in logs.
    return Error{"credentials in the endpoint are not supported; put them in exporter.headers"};
  }
  std::string_view target = text;
  if (starts_with_ignoring_case(target, kHttp)) {
    target.remove_prefix(kHttp.size());
    if (!target.empty() && target.back() == '/') target.remove_suffix(1);
    if (target.find('/') != std::string_view::npos) {
      return Error{"an otlp_grpc endpoint takes no path, got " + quoted(text)};
    }
  } else if (text.find("://") != std::string_view::npos) {
    return Error{"expected host:port or http://host:port, got " + quoted(text)};
  }
  auto host_port = parse_host_port(target, EndpointRole::kConnect);
  if (!host_port.ok()) return host_port.error();
  return std::string(target);
}

Result<std::string> normalize_http_base_url(std::string_view text) {
  const bool https = starts_with_ignoring_case(text, "https://");
  const std::string_view scheme = https ? "https://" : "http://";
  const auto url_hint = [&] {
    return Error{"expected a URL http://host:port[/path] such as http://collector:4318, got " +
                 quoted(text)};
  };
  if (!starts_with_ignoring_case(text, scheme)) return url_hint();
  if (text.find_first_of("?#") != std::string_view::npos) {
    // Not echoed: a query string is where a token would hide.
    return Error{"query strings and fragments are not supported in the endpoint"};
  }
  const std::string_view rest = text.substr(scheme.size());
  const std::string_view authority = rest.substr(0, rest.find('/'));
  std::string_view path = rest.substr(authority.size());
  if (authority.find('@') != std::string_view::npos) {
    // Credentials in the URL would end up in logs; headers are redacted.
    return Error{"credentials in the URL are not supported; put them in exporter.headers"};
  }
  if (!parse_host_port(authority, EndpointRole::kConnect).ok()) return url_hint();
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  constexpr std::string_view kTracesPath = "/v1/traces";
  if (path.size() >= kTracesPath.size() &&
      path.substr(path.size() - kTracesPath.size()) == kTracesPath) {
    return Error{"give the base URL without /v1/traces (the exporter appends it), got " +
                 quoted(text)};
  }
  return std::string(scheme) + std::string(authority) + std::string(path);
}

}  // namespace spanrelay::config
