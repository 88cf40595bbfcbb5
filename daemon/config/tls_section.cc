#include "daemon/config/tls_section.h"

#include <array>
#include <cctype>
#include <optional>
#include <string>
#include <utility>

namespace spanrelay::config {
namespace {

constexpr std::array<std::pair<std::string_view, TlsVersion>, 2> kTlsVersions{{
    {"1.2", TlsVersion::kTls12},
    {"1.3", TlsVersion::kTls13},
}};

// A file path: non-empty, no NUL (the files are read when the listener or
// exporter starts, and again when they change: a missing file is reported then).
std::optional<std::string> read_path(YamlReader& reader, const Field* field) {
  auto path = reader.text(field, "a file path", Empty::kRejected);
  if (!path) return std::nullopt;
  if (path->find('\0') != std::string::npos) {
    reader.fail(*field, "the path contains a NUL byte");
    return std::nullopt;
  }
  return path;
}

void read_path_into(YamlReader& reader, const Section& section, std::string_view key,
                    std::string* out) {
  if (auto path = read_path(reader, section.get(key))) *out = std::move(*path);
}

// A certificate without its key (or the reverse) cannot be presented.
void require_pair(YamlReader& reader, const Section& section, const Field* whole,
                  std::string_view cert_key, std::string_view key_key) {
  if (reader.failed()) return;
  const Field* cert = section.get(cert_key);
  const Field* key = section.get(key_key);
  if ((cert == nullptr) == (key == nullptr)) return;
  const Field& given = cert != nullptr ? *cert : *key;
  const std::string_view missing = cert != nullptr ? key_key : cert_key;
  reader.fail_at(given.key_mark, whole->path + "." + std::string(missing) + ": required with " +
                                     given.path +
                                     " (a certificate and its private key go together)");
}

// What the exporter's destination says about TLS: every https:// endpoint,
// no https:// endpoint, or a mix (an error).
enum class SchemeVerdict { kAllHttps, kNoHttps, kMixed };

SchemeVerdict http_schemes(const ExporterConfig& config) {
  std::vector<std::string_view> urls;
  if (!config.endpoints.empty()) {
    for (const auto& endpoint : config.endpoints) urls.push_back(endpoint);
  } else if (!config.endpoint.empty()) {
    urls.push_back(config.endpoint);
  }
  std::size_t https = 0;
  for (const auto url : urls) https += is_https_url(url) ? 1 : 0;
  if (https == 0) return SchemeVerdict::kNoHttps;
  return https == urls.size() ? SchemeVerdict::kAllHttps : SchemeVerdict::kMixed;
}

void read_auth(YamlReader& reader, const Field* field, AuthConfig* out) {
  const Section auth = reader.open_map(field, {"bearer_token_file"});
  read_path_into(reader, auth, "bearer_token_file", &out->bearer_token_file);
}

// gRPC 1.51's public C++ API has no way to set the minimum TLS version (its
// default range is 1.2 to 1.3): refusing is honest, accepting would not be.
void refuse_grpc_tls13(YamlReader& reader, const Section& tls, TlsVersion version) {
  if (reader.failed() || version != TlsVersion::kTls13) return;
  reader.fail(*tls.get("min_version"),
              "\"1.3\" cannot be enforced on gRPC connections (gRPC 1.51 offers TLS 1.2 and "
              "1.3 and negotiates 1.3 when the peer has it); use \"1.2\"");
}

}  // namespace

bool is_https_url(std::string_view url) {
  constexpr std::string_view kHttps = "https://";
  if (url.size() < kHttps.size()) return false;
  for (std::size_t i = 0; i < kHttps.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(url[i])) != kHttps[i]) return false;
  }
  return true;
}

std::string_view tls_version_name(TlsVersion version) {
  return version == TlsVersion::kTls13 ? "1.3" : "1.2";
}

void read_exporter_transport_security(YamlReader& reader, const Section& exporter,
                                      ExporterConfig* out) {
  read_auth(reader, exporter.get("auth"), &out->auth);
  const Field* field = exporter.get("tls");
  const Section tls = reader.open_map(
      field, {"insecure", "ca_file", "cert_file", "key_file", "server_name", "min_version"});
  ClientTlsConfig& config = out->tls;
  reader.read_bool(tls, "insecure", &config.insecure);
  read_path_into(reader, tls, "ca_file", &config.ca_file);
  read_path_into(reader, tls, "cert_file", &config.cert_file);
  read_path_into(reader, tls, "key_file", &config.key_file);
  if (const auto name = reader.text(tls.get("server_name"), "a host name", Empty::kRejected)) {
    config.server_name = *name;
  }
  reader.read_choice(tls, "min_version", kTlsVersions, &config.min_version);
  if (reader.failed()) return;
  if (field != nullptr) require_pair(reader, tls, field, "cert_file", "key_file");
  if (reader.failed()) return;

  if (config.insecure) {
    // Plaintext with TLS settings is a contradiction, not a preference.
    for (const std::string_view key :
         {"ca_file", "cert_file", "key_file", "server_name", "min_version"}) {
      if (const Field* given = tls.get(key)) {
        return reader.fail_at(given->key_mark,
                              given->path +
                                  ": has no effect with exporter.tls.insecure: true "
                                  "(plaintext); remove one of them");
      }
    }
  }

  switch (out->type) {
    case ExporterType::kFile:
      return;  // accepted and unused, so that switching type is a one-line change
    case ExporterType::kOtlpGrpc:
      refuse_grpc_tls13(reader, tls, config.min_version);
      config.enabled = field != nullptr && !config.insecure;
      return;
    case ExporterType::kOtlpHttp:
      break;
  }
  const SchemeVerdict schemes = http_schemes(*out);
  if (schemes == SchemeVerdict::kMixed) {
    return reader.fail_at(exporter.get("endpoints")->key_mark,
                          "exporter.endpoints: mixes http:// and https:// endpoints; TLS is "
                          "all or nothing");
  }
  if (schemes == SchemeVerdict::kAllHttps) {
    if (config.insecure) {
      return reader.fail(*tls.get("insecure"),
                         "insecure: true contradicts the https:// endpoint (write http:// for "
                         "plaintext)");
    }
    config.enabled = true;
    return;
  }
  // http:// endpoints. The DNS resolver has no scheme to write: there the tls
  // section alone turns TLS on, as for otlp_grpc.
  if (!out->dns.hostname.empty()) {
    config.enabled = field != nullptr && !config.insecure;
    return;
  }
  if (field != nullptr && !config.insecure) {
    return reader.fail_at(field->key_mark,
                          "exporter.tls: the endpoint is http:// (plaintext); write https:// for "
                          "TLS, or set insecure: true");
  }
}

void read_listener_tls(YamlReader& reader, const Field* field, bool grpc, ServerTlsConfig* out) {
  if (field == nullptr) return;
  const Section tls =
      reader.open_map(field, {"cert_file", "key_file", "client_ca_file", "min_version"});
  if (reader.failed()) return;
  for (const std::string_view key : {"cert_file", "key_file"}) {
    if (tls.get(key) == nullptr) {
      return reader.fail_at(field->key_mark, field->path + "." + std::string(key) +
                                                 ": required when " + field->path +
                                                 " is present (the server's certificate and "
                                                 "private key, PEM)");
    }
  }
  read_path_into(reader, tls, "cert_file", &out->cert_file);
  read_path_into(reader, tls, "key_file", &out->key_file);
  read_path_into(reader, tls, "client_ca_file", &out->client_ca_file);
  reader.read_choice(tls, "min_version", kTlsVersions, &out->min_version);
  if (grpc) refuse_grpc_tls13(reader, tls, out->min_version);
  if (!reader.failed()) out->enabled = true;
}

}  // namespace spanrelay::config
