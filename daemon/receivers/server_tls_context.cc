#include "daemon/receivers/server_tls_context.h"

#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <boost/asio/ssl/context.hpp>
#include <vector>

#include "daemon/telemetry/metrics.h"

namespace spanrelay::receivers {

namespace ssl = boost::asio::ssl;

namespace {

std::vector<std::string> files_of(const config::ServerTlsConfig& tls) {
  std::vector<std::string> files{tls.cert_file, tls.key_file};
  if (!tls.client_ca_file.empty()) files.push_back(tls.client_ca_file);
  return files;
}

}  // namespace

Result<std::shared_ptr<ssl::context>> make_server_tls_context(const config::ServerTlsConfig& tls,
                                                              const std::string& key_prefix) {
  const auto failed = [&](std::string_view key, std::string_view why) {
    return Error{key_prefix + std::string(key) + ": " + std::string(why)};
  };
  auto cert = exporters::read_credential_file(tls.cert_file, key_prefix + "cert_file");
  if (!cert) return cert.error();
  auto key = exporters::read_credential_file(tls.key_file, key_prefix + "key_file");
  if (!key) return key.error();

  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  boost::system::error_code ec;
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                           ssl::context::no_sslv3 | ssl::context::no_compression |
                           ssl::context::single_dh_use,
                       ec);
  const int min_version =
      tls.min_version == config::TlsVersion::kTls13 ? TLS1_3_VERSION : TLS1_2_VERSION;
  if (SSL_CTX_set_min_proto_version(context->native_handle(), min_version) != 1) {
    return failed("min_version", "not supported by this OpenSSL");
  }
  context->use_certificate_chain(boost::asio::buffer(cert.value()), ec);
  if (ec) return failed("cert_file", ec.message());
  context->use_private_key(boost::asio::buffer(key.value()), ssl::context::pem, ec);
  if (ec) return failed("key_file", ec.message());
  if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
    return failed("key_file", "does not match " + key_prefix + "cert_file");
  }
  if (!tls.client_ca_file.empty()) {
    auto ca = exporters::read_credential_file(tls.client_ca_file, key_prefix + "client_ca_file");
    if (!ca) return ca.error();
    context->add_certificate_authority(boost::asio::buffer(ca.value()), ec);
    if (ec) return failed("client_ca_file", ec.message());
    // client_ca_file set = mTLS required: no certificate, no connection.
    context->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
    if (ec) return failed("client_ca_file", ec.message());
  }
  return context;
}

Result<std::shared_ptr<ServerTlsContext>> ServerTlsContext::create(
    const config::ServerTlsConfig& tls, std::string_view listener_name,
    telemetry::Registry& metrics) {
  std::string prefix = "receivers.otlp." + std::string(listener_name) + ".tls.";
  auto first = make_server_tls_context(tls, prefix);
  if (!first) return first.error();
  auto& failures = metrics.counter(
      "spanrelay_receiver_tls_handshake_failures_total",
      "Connections to a TLS listener that failed the handshake (plaintext client, unknown CA, "
      "missing client certificate, old TLS version).",
      {{"receiver", std::string(listener_name)}});
  return std::make_shared<ServerTlsContext>(tls, std::move(prefix), std::move(first).value(),
                                            failures);
}

ServerTlsContext::ServerTlsContext(config::ServerTlsConfig tls, std::string prefix,
                                   std::shared_ptr<ssl::context> first,
                                   telemetry::Counter& failures)
    : tls_(std::move(tls)),
      prefix_(std::move(prefix)),
      watch_(files_of(tls_), exporters::kCredentialCheckInterval),
      handshake_failures_(failures),
      context_(std::move(first)) {}

std::shared_ptr<ssl::context> ServerTlsContext::current() {
  if (watch_.poll()) {
    auto rebuilt = make_server_tls_context(tls_, prefix_);
    if (rebuilt) {
      spdlog::info("{}*: certificate files changed; new connections use them", prefix_);
      std::lock_guard lock(mutex_);
      context_ = std::move(rebuilt).value();
    } else {
      // Mid-rotation (key written, certificate not yet): keep serving the old one.
      spdlog::warn("{}*: changed files not usable yet ({}); keeping the previous certificate",
                   prefix_, rebuilt.error().message);
      watch_.retry_later();
    }
  }
  std::lock_guard lock(mutex_);
  return context_;
}

void ServerTlsContext::count_handshake_failure() { handshake_failures_.add(); }

}  // namespace spanrelay::receivers
