#include "daemon/config/otel_environment.h"

#include <array>
#include <utility>

#include "daemon/config/endpoint.h"
#include "daemon/config/header_rules.h"
#include "daemon/config/units.h"

namespace spanrelay::config {
namespace {

constexpr std::string_view kTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
constexpr std::string_view kEndpoint = "OTEL_EXPORTER_OTLP_ENDPOINT";
constexpr std::string_view kTracesPath = "/v1/traces";
// The conventional OTLP/HTTP port (OTLP spec, "OTLP/HTTP Default Port").
constexpr std::uint16_t kOtlpHttpPort = 4318;
// Far beyond any sensible export deadline, and small enough for Duration.
constexpr std::uint64_t kMaxTimeoutMs = 24ull * 3600 * 1000;

// One setting with its signal-specific and general variable.
struct Setting {
  std::string_view variable;  // the one that was used
  std::string value;
};

std::optional<Setting> read_setting(const EnvironmentLookup& environment,
                                    std::string_view traces_variable,
                                    std::string_view general_variable) {
  for (const auto variable : {traces_variable, general_variable}) {
    // Spec, "Environment Variable Specification": an empty value is unset.
    if (auto value = environment(variable); value && !value->empty()) {
      return Setting{variable, std::move(*value)};
    }
  }
  return std::nullopt;
}

Error variable_error(std::string_view variable, std::string_view why) {
  return Error{std::string(variable) + ": " + std::string(why)};
}

std::optional<std::uint16_t> port_of(std::string_view endpoint) {
  if (const auto scheme_end = endpoint.find("://"); scheme_end != std::string_view::npos) {
    endpoint.remove_prefix(scheme_end + 3);
  }
  const auto host_port =
      parse_host_port(endpoint.substr(0, endpoint.find('/')), EndpointRole::kConnect);
  if (!host_port.ok()) return std::nullopt;
  return host_port.value().port;
}

// The endpoint checks were written for the YAML; point at the variable instead.
std::string for_the_environment(std::string message) {
  constexpr std::string_view kYamlHeaders = "exporter.headers";
  if (const auto at = message.find(kYamlHeaders); at != std::string::npos) {
    message.replace(at, kYamlHeaders.size(), "OTEL_EXPORTER_OTLP_HEADERS");
  }
  return message;
}

Result<ExporterType> read_type(const std::optional<Setting>& protocol, const Setting& endpoint) {
  if (!protocol) {
    return port_of(endpoint.value) == kOtlpHttpPort ? ExporterType::kOtlpHttp
                                                    : ExporterType::kOtlpGrpc;
  }
  if (protocol->value == "grpc") return ExporterType::kOtlpGrpc;
  if (protocol->value == "http/protobuf") return ExporterType::kOtlpHttp;
  if (protocol->value == "http/json") {
    return variable_error(protocol->variable,
                          "http/json is not supported for the upstream; use http/protobuf");
  }
  return variable_error(protocol->variable,
                        "expected grpc or http/protobuf, got " + config::quoted(protocol->value));
}

// Returns what ExporterConfig.endpoint holds: host:port for otlp_grpc, the
// base URL (without /v1/traces) for otlp_http.
Result<std::string> read_endpoint(const Setting& endpoint, ExporterType type) {
  if (type == ExporterType::kOtlpGrpc) {
    auto target = normalize_grpc_target(endpoint.value);
    if (!target.ok()) {
      return variable_error(endpoint.variable, for_the_environment(target.error().message));
    }
    return std::move(target).value();
  }
  std::string_view base = endpoint.value;
  if (endpoint.variable == kTracesEndpoint) {
    // The spec uses the signal-specific URL as is; ExporterConfig holds a base
    // URL that /v1/traces is appended to, so only URLs ending in it fit.
    // (Not echoed: a URL may carry credentials.)
    if (base.size() < kTracesPath.size() ||
        base.substr(base.size() - kTracesPath.size()) != kTracesPath) {
      return variable_error(endpoint.variable,
                            "expected the full traces URL, ending in /v1/traces, such as "
                            "http://collector:4318/v1/traces (or give the base URL in " +
                                std::string(kEndpoint) + ")");
    }
    base.remove_suffix(kTracesPath.size());
  }
  auto url = normalize_http_base_url(base);
  if (!url.ok()) return variable_error(endpoint.variable, for_the_environment(url.error().message));
  return std::move(url).value();
}

Result<Compression> read_compression(const Setting& compression) {
  if (compression.value == "gzip") return Compression::kGzip;
  if (compression.value == "none") return Compression::kNone;
  return variable_error(compression.variable,
                        "expected gzip or none, got " + config::quoted(compression.value));
}

Result<Duration> read_timeout(const Setting& timeout) {
  const std::string_view text = timeout.value;
  std::uint64_t milliseconds = 0;
  bool valid = !text.empty() && text.size() <= 10;
  for (const char c : text) {
    if (c < '0' || c > '9') valid = false;
    if (valid) milliseconds = milliseconds * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (!valid || milliseconds == 0 || milliseconds > kMaxTimeoutMs) {
    return variable_error(timeout.variable, "expected a whole number of milliseconds from 1 to " +
                                                std::to_string(kMaxTimeoutMs) +
                                                ", such as 10000; got " + quoted(text));
  }
  return Duration(static_cast<Duration::rep>(milliseconds));
}

std::string_view trim_blanks(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 section 2.1 percent-decoding ('+' stays '+': this is not a form).
std::optional<std::string> percent_decode(std::string_view text) {
  std::string decoded;
  for (std::size_t pos = 0; pos < text.size(); ++pos) {
    if (text[pos] != '%') {
      decoded += text[pos];
      continue;
    }
    if (pos + 2 >= text.size()) return std::nullopt;
    const int high = hex_digit(text[pos + 1]);
    const int low = hex_digit(text[pos + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    decoded += static_cast<char>(high * 16 + low);
    pos += 2;
  }
  return decoded;
}

}  // namespace

Result<std::map<std::string, std::string>> parse_otel_headers(std::string_view variable,
                                                              std::string_view text) {
  std::map<std::string, std::string> headers;
  std::size_t number = 0;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const std::string_view entry = trim_blanks(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    ++number;
    if (entry.empty()) continue;  // "a=1,,b=2" or a trailing comma
    const auto equals = entry.find('=');
    if (equals == std::string_view::npos) {
      // Not echoed: a lone token may be the secret itself.
      return variable_error(variable, "entry " + std::to_string(number) +
                                          " is not key=value (entries are separated by commas)");
    }
    const std::string_view name = trim_blanks(entry.substr(0, equals));
    if (!is_valid_header_name(name)) {
      // Not echoed either: a malformed entry is where a pasted token ends up.
      return variable_error(variable, "entry " + std::to_string(number) +
                                          " does not start with a valid header name (" +
                                          std::string(kHeaderNameRule) + ")");
    }
    const std::string lower = lower_case_header_name(name);
    auto value = percent_decode(trim_blanks(entry.substr(equals + 1)));
    if (!value) {
      return variable_error(variable, "the value of header " + config::quoted(lower) +
                                          " is not valid percent-encoding (% must be followed by "
                                          "two hex digits)");
    }
    if (!is_valid_header_value(*value)) {
      return variable_error(
          variable, "header " + config::quoted(lower) + ": " + std::string(kHeaderValueRule));
    }
    if (!headers.emplace(lower, std::move(*value)).second) {
      return variable_error(variable, "duplicate header " + config::quoted(lower) +
                                          " (header names are case-insensitive)");
    }
  }
  return headers;
}

Result<std::optional<EnvironmentExporter>> exporter_from_environment(
    const EnvironmentLookup& environment) {
  const auto endpoint = read_setting(environment, kTracesEndpoint, kEndpoint);
  const auto protocol = read_setting(environment, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                                     "OTEL_EXPORTER_OTLP_PROTOCOL");
  const auto headers =
      read_setting(environment, "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS");
  const auto compression = read_setting(environment, "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
                                        "OTEL_EXPORTER_OTLP_COMPRESSION");
  const auto timeout =
      read_setting(environment, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT");
  if (!endpoint) {
    for (const auto* other : {&protocol, &headers, &compression, &timeout}) {
      if (!*other) continue;
      // An SDK would fall back to localhost:4317/4318, which is this relay's
      // own receiver: exporting there would loop. Ask for the endpoint.
      return variable_error((*other)->variable,
                            "set, but neither " + std::string(kTracesEndpoint) + " nor " +
                                std::string(kEndpoint) +
                                " is; give the upstream's address in one of them (the SDK "
                                "default, localhost, is spanrelay's own receiver)");
    }
    return std::optional<EnvironmentExporter>();
  }

  EnvironmentExporter result;
  result.endpoint_variable = std::string(endpoint->variable);
  ExporterConfig& exporter = result.exporter;
  auto type = read_type(protocol, *endpoint);
  if (!type.ok()) return type.error();
  exporter.type = type.value();
  auto url = read_endpoint(*endpoint, exporter.type);
  if (!url.ok()) return url.error();
  exporter.endpoint = std::move(url).value();
  // The spec's default is no compression; ExporterConfig's is gzip.
  exporter.compression = Compression::kNone;
  if (compression) {
    auto chosen = read_compression(*compression);
    if (!chosen.ok()) return chosen.error();
    exporter.compression = chosen.value();
  }
  if (timeout) {
    auto deadline = read_timeout(*timeout);
    if (!deadline.ok()) return deadline.error();
    exporter.timeout = deadline.value();
  }
  if (headers) {
    auto parsed = parse_otel_headers(headers->variable, headers->value);
    if (!parsed.ok()) return parsed.error();
    exporter.headers = std::move(parsed).value();
  }
  return std::optional<EnvironmentExporter>(std::move(result));
}

}  // namespace spanrelay::config
