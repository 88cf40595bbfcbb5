#include "daemon/receivers/receiver_tls.h"

#include <sys/socket.h>

#include <string>

#include "daemon/exporters/credential_files.h"

namespace spanrelay::receivers {

Result<std::shared_ptr<grpc::ServerCredentials>> grpc_tcp_credentials(
    const config::ServerTlsConfig& tls, std::string_view listener_name) {
  if (!tls.enabled) return grpc::InsecureServerCredentials();
  const std::string prefix = "receivers.otlp." + std::string(listener_name) + ".tls.";
  auto cert = exporters::read_credential_file(tls.cert_file, prefix + "cert_file");
  if (!cert) return cert.error();
  auto key = exporters::read_credential_file(tls.key_file, prefix + "key_file");
  if (!key) return key.error();
  grpc::SslServerCredentialsOptions options(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  options.pem_key_cert_pairs.push_back({std::move(key).value(), std::move(cert).value()});
  if (!tls.client_ca_file.empty()) {
    auto ca = exporters::read_credential_file(tls.client_ca_file, prefix + "client_ca_file");
    if (!ca) return ca.error();
    options.pem_root_certs = std::move(ca).value();
    // client_ca_file set = mTLS required: no certificate, no connection.
    options.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  auto credentials = grpc::SslServerCredentials(options);
  if (!credentials) return Error{prefix + "*: gRPC refused the TLS settings"};
  return credentials;
}

bool is_unix_domain_socket(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return false;
  return address.ss_family == AF_UNIX;
}

}  // namespace spanrelay::receivers
