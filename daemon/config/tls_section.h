#pragma once
// The transport-security keys (issue 7): exporter.tls, exporter.auth and
// receivers.otlp.{grpc,http}.tls. Split from config_loader.cc because they
// form one feature with rules of their own (a client certificate needs its
// key, insecure: true excludes the TLS settings, https:// and tls agree).
#include <string_view>

#include "daemon/config/config.h"
#include "daemon/config/yaml_reader.h"

namespace spanrelay::config {

// Reads exporter.tls and exporter.auth into *out. Call after the destination
// (endpoint / endpoints / resolver) is read: whether TLS is on depends on it.
void read_exporter_transport_security(YamlReader& reader, const Section& exporter,
                                      ExporterConfig* out);

// Reads receivers.otlp.<name>.tls (absent: plaintext) into *out. `grpc`:
// the gRPC listener, whose library (gRPC 1.51) cannot enforce min_version 1.3.
void read_listener_tls(YamlReader& reader, const Field* field, bool grpc, ServerTlsConfig* out);

// "1.2" / "1.3", for describe() and logs.
std::string_view tls_version_name(TlsVersion version);

// True for an endpoint written with the https scheme (any case).
bool is_https_url(std::string_view url);

}  // namespace spanrelay::config
