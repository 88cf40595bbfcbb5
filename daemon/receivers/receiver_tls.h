#pragma once
// TLS for the TCP receivers (receivers.otlp.{grpc,http}.tls, issue 7). Unix
// sockets stay plaintext: their access is the file mode and the peer's uid.
#include <grpcpp/security/server_credentials.h>

#include <memory>

#include "daemon/common/result.h"
#include "daemon/config/config.h"

namespace spanrelay::receivers {

// The gRPC server credentials for a TCP listener: TLS with the configured
// certificate (and required, verified client certificates when client_ca_file
// is set), or insecure when tls is off. Reads the files: errors name them.
Result<std::shared_ptr<grpc::ServerCredentials>> grpc_tcp_credentials(
    const config::ServerTlsConfig& tls, std::string_view listener_name);

// True for an AF_UNIX socket.
bool is_unix_domain_socket(int fd);

}  // namespace spanrelay::receivers
