#include "daemon/receivers/receiver_tls.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <sys/socket.h>

#include <chrono>
#include <string>

#include "daemon/receivers/server_tls_context.h"

namespace spanrelay::receivers {

namespace {
// How often gRPC looks at the receiver's certificate files.
constexpr std::chrono::seconds kCertificateRefresh{2};
}  // namespace

Result<std::shared_ptr<grpc::ServerCredentials>> grpc_tcp_credentials(
    const config::ServerTlsConfig& tls, std::string_view listener_name) {
  if (!tls.enabled) return grpc::InsecureServerCredentials();
  const std::string prefix = "receivers.otlp." + std::string(listener_name) + ".tls.";
  // Read and checked with OpenSSL first (a key that does not match its
  // certificate, an unreadable CA): errors name the key, at start-up.
  if (auto checked = make_server_tls_context(tls, prefix); !checked) return checked.error();
  // The files were readable just now (errors above name them); from here on
  // gRPC's file watcher reads them, and again every kCertificateRefresh, so a
  // rotated certificate (Kubernetes swaps the Secret's directory atomically)
  // is served to new connections without a restart.
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      tls.key_file, tls.cert_file, tls.client_ca_file,
      static_cast<unsigned>(kCertificateRefresh.count()));
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (tls.client_ca_file.empty()) {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  } else {
    // client_ca_file set = mTLS required: no certificate, no connection.
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  auto credentials = grpc::experimental::TlsServerCredentials(options);
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
