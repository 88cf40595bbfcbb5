#pragma once
// The OpenSSL context of the OTLP/HTTP receiver's TLS listener
// (receivers.otlp.http.tls). Certificates mounted from Kubernetes Secrets are
// rotated in place, so the files are looked at again (at most every
// kCredentialCheckInterval) when a connection arrives: new connections get the
// new certificate, open ones keep the one they shook hands with. A rotation
// caught half-written keeps the last good context and is retried.
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "daemon/common/result.h"
#include "daemon/config/config.h"
#include "daemon/exporters/credential_files.h"

namespace boost::asio::ssl {
class context;
}

namespace spanrelay::telemetry {
class Counter;
class Registry;
}  // namespace spanrelay::telemetry

namespace spanrelay::receivers {

class ServerTlsContext {
 public:
  // Reads the files once: an unreadable certificate or key, or a key that does
  // not match the certificate, is a start-up error naming the key
  // ("receivers.otlp.<listener>.tls.cert_file").
  static Result<std::shared_ptr<ServerTlsContext>> create(const config::ServerTlsConfig& tls,
                                                          std::string_view listener_name,
                                                          telemetry::Registry& metrics);

  // The context for a new connection, rebuilt first when the files changed.
  std::shared_ptr<boost::asio::ssl::context> current();

  // A client that failed the handshake (plaintext, unknown CA, no client
  // certificate under mTLS, too old a TLS version).
  void count_handshake_failure();

  // Use create(); public for std::make_shared.
  ServerTlsContext(config::ServerTlsConfig tls, std::string prefix,
                   std::shared_ptr<boost::asio::ssl::context> first, telemetry::Counter& failures);

 private:
  const config::ServerTlsConfig tls_;
  const std::string prefix_;  // "receivers.otlp.http.tls."
  exporters::FileWatch watch_;
  telemetry::Counter& handshake_failures_;
  std::mutex mutex_;
  std::shared_ptr<boost::asio::ssl::context> context_;  // guarded by mutex_
};

// An OpenSSL server context from PEM files; errors name the key (prefix + name).
Result<std::shared_ptr<boost::asio::ssl::context>> make_server_tls_context(
    const config::ServerTlsConfig& tls, const std::string& key_prefix);

}  // namespace spanrelay::receivers
