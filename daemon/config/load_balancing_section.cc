#include "daemon/config/load_balancing_section.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <string>
#include <utility>

#include "daemon/config/endpoint.h"

namespace spanrelay::config {
namespace {

constexpr std::array<std::pair<std::string_view, RoutingKey>, 2> kRoutingKeys{{
    {"traceID", RoutingKey::kTraceId},
    {"service", RoutingKey::kService},
}};

// Re-resolving more often than this only loads the DNS server: a headless
// Service's records change when pods come and go, in seconds.
constexpr Duration kMinResolverInterval = std::chrono::seconds(1);
constexpr std::uint32_t kMaxConsecutiveFailures = 1000;

// A DNS name or an IP literal, without port or scheme: what getaddrinfo takes.
bool is_valid_resolver_host(std::string_view host) {
  if (host.empty() || host.size() > 253 || host.front() == '-' || host.front() == '.') return false;
  return std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
  });
}

void read_endpoints(YamlReader& reader, const Field* field, ExporterType type,
                    std::vector<std::string>* out) {
  std::vector<std::string> endpoints;
  std::map<std::string, std::string> first_path;  // normalized endpoint -> where it was given
  const std::string_view expected = type == ExporterType::kOtlpGrpc
                                        ? "a non-empty list of host:port endpoints"
                                        : "a non-empty list of http://host:port endpoints";
  for (const Field& item : reader.open_list(field, expected)) {
    const auto value = reader.text(&item, "an endpoint", Empty::kRejected);
    if (!value) return;
    auto normalized = type == ExporterType::kOtlpGrpc ? normalize_grpc_target(*value)
                                                      : normalize_http_base_url(*value);
    if (!normalized.ok()) return reader.fail(item, normalized.error().message);
    const auto [it, inserted] = first_path.emplace(normalized.value(), item.path);
    if (!inserted) {
      return reader.fail(
          item, "duplicate endpoint " + quoted(normalized.value()) + " (also " + it->second + ")");
    }
    endpoints.push_back(std::move(normalized).value());
  }
  if (!reader.failed()) *out = std::move(endpoints);
}

void read_resolver(YamlReader& reader, const Field* field, ExporterType type,
                   DnsResolverConfig* out) {
  const Section resolver = reader.open_map(field, {"dns"});
  if (reader.failed()) return;
  const Field* dns_field = resolver.get("dns");
  if (dns_field == nullptr) {
    return reader.fail_at(field->key_mark,
                          "exporter.resolver.dns: required when exporter.resolver is present "
                          "(e.g. { hostname: gateway-headless.obs.svc, port: 4317 })");
  }
  const Section dns = reader.open_map(dns_field, {"hostname", "port", "interval"});
  if (reader.failed()) return;
  const Field* hostname = dns.get("hostname");
  if (hostname == nullptr) {
    return reader.fail_at(dns_field->key_mark,
                          "exporter.resolver.dns.hostname: required (the DNS name whose A/AAAA "
                          "records are the members)");
  }
  const auto host = reader.text(hostname, "a host name", Empty::kRejected);
  if (!host) return;
  if (!is_valid_resolver_host(*host)) {
    return reader.fail(*hostname,
                       "expected a DNS name such as gateway-headless.obs.svc (no "
                       "scheme, no port: the port is exporter.resolver.dns.port), got " +
                           quoted(*host));
  }
  std::uint32_t port = type == ExporterType::kOtlpGrpc ? 4317 : 4318;
  reader.read_integer(dns, "port", &port, 1, 65535);
  reader.read_duration(dns, "interval", &out->interval, kMinResolverInterval);
  if (reader.failed()) return;
  out->hostname = *host;
  out->port = static_cast<std::uint16_t>(port);
}

void read_ejection(YamlReader& reader, const Field* field, EjectionConfig* out) {
  const Section ejection =
      reader.open_map(field, {"consecutive_failures", "base_time", "max_time"});
  reader.read_integer(ejection, "consecutive_failures", &out->consecutive_failures, 1,
                      kMaxConsecutiveFailures);
  reader.read_duration(ejection, "base_time", &out->base_time, Duration(1));
  reader.read_duration(ejection, "max_time", &out->max_time, Duration(1));
  if (reader.failed() || out->max_time >= out->base_time) return;
  if (const Field* max_time = ejection.get("max_time")) {
    return reader.fail(*max_time, "must be at least base_time (" + format_duration(out->base_time) +
                                      "), got " + quoted(max_time->value.Scalar()));
  }
  const Field* base_time = ejection.get("base_time");
  reader.fail(*base_time, "must be at most max_time (" + format_duration(out->max_time) +
                              "), got " + quoted(base_time->value.Scalar()));
}

}  // namespace

bool has_load_balanced_destination(const Section& exporter) {
  return exporter.get("endpoints") != nullptr || exporter.get("resolver") != nullptr;
}

void read_load_balanced_destination(YamlReader& reader, const Section& exporter, const Field& type,
                                    ExporterConfig* out) {
  const Field* endpoints = exporter.get("endpoints");
  const Field* resolver = exporter.get("resolver");
  if (out->type == ExporterType::kFile) {
    const Field& given = endpoints != nullptr ? *endpoints : *resolver;
    return reader.fail_at(given.key_mark, given.path +
                                              ": load balancing needs exporter.type otlp_grpc or "
                                              "otlp_http, got " +
                                              type.value.Scalar());
  }
  // Several ways to name the upstream at once is a mistake, not a merge.
  if (const Field* endpoint = exporter.get("endpoint")) {
    const Field& other = endpoints != nullptr ? *endpoints : *resolver;
    return reader.fail_at(endpoint->key_mark,
                          "exporter.endpoint: give one of endpoint (one upstream), endpoints (a "
                          "list) or resolver (DNS), not both endpoint and " +
                              other.path);
  }
  if (endpoints != nullptr && resolver != nullptr) {
    return reader.fail_at(resolver->key_mark,
                          "exporter.resolver: give either exporter.endpoints or "
                          "exporter.resolver, not both");
  }
  // The file exporter's key is type-checked but unused, as in the one-endpoint case.
  (void)reader.text(exporter.get("path"), "text", Empty::kAllowed);
  if (endpoints != nullptr) return read_endpoints(reader, endpoints, out->type, &out->endpoints);
  read_resolver(reader, resolver, out->type, &out->dns);
}

void read_load_balancing_options(YamlReader& reader, const Section& exporter, ExporterConfig* out) {
  reader.read_choice(exporter, "routing_key", kRoutingKeys, &out->routing_key);
  read_ejection(reader, exporter.get("ejection"), &out->ejection);
}

std::string_view routing_key_name(RoutingKey key) {
  for (const auto& [name, value] : kRoutingKeys) {
    if (value == key) return name;
  }
  return "unknown";
}

}  // namespace spanrelay::config
