// Transport security (issue 7): TLS and mTLS to the upstream for both
// exporters, certificate and bearer-token rotation without a restart, and TLS
// on the gRPC receiver. Certificates are made at test time with the openssl
// CLI (Debian package `openssl`) in the test's TempDir.
#include <doctest/doctest.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "daemon/exporters/http_exporter.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "tests/e2e/delivery_support.h"
#include "tests/e2e/harness.h"

using namespace spanrelay::e2e;
using namespace spanrelay::e2e::delivery;

namespace {

namespace otlp_collector = opentelemetry::proto::collector::trace::v1;

// A CA with one server certificate (for 127.0.0.1 and localhost) and one
// client certificate, all PEM files in the temp dir, prefixed by `name`.
struct Pki {
  std::string ca_cert, ca_key, server_cert, server_key, client_cert, client_key;
};

void openssl(const std::string& arguments, const TempDir& dir) {
  const std::string command = "openssl " + arguments + " >>" + dir.file("openssl.log") + " 2>&1";
  REQUIRE_MESSAGE(std::system(command.c_str()) == 0,
                  "openssl failed: " << arguments << "\n"
                                     << read_file(dir.file("openssl.log")));
}

// EC P-256 keys: made in milliseconds, unlike RSA ones.
Pki make_pki(const TempDir& dir, const std::string& name) {
  const auto f = [&](const std::string& file) { return dir.file(name + "-" + file); };
  Pki pki{f("ca.crt"),     f("ca.key"),     f("server.crt"),
          f("server.key"), f("client.crt"), f("client.key")};
  const std::string new_key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  openssl("req -x509 " + new_key + " -keyout " + pki.ca_key + " -out " + pki.ca_cert +
              " -days 2 -subj /CN=" + name + "-test-ca",
          dir);
  write_file(f("server.ext"),
             "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  write_file(f("client.ext"), "extendedKeyUsage=clientAuth\n");
  for (const std::string role : {"server", "client"}) {
    openssl("req " + new_key + " -keyout " + f(role + ".key") + " -out " + f(role + ".csr") +
                " -subj /CN=" + name + "-" + role,
            dir);
    openssl("x509 -req -in " + f(role + ".csr") + " -CA " + pki.ca_cert + " -CAkey " + pki.ca_key +
                " -set_serial " + std::to_string(role == "server" ? 1 : 2) + " -days 2 -out " +
                f(role + ".crt") + " -extfile " + f(role + ".ext"),
            dir);
  }
  return pki;
}

std::vector<std::string> sink_tls_flags(const Pki& pki, bool require_client_cert = false) {
  std::vector<std::string> flags{"--tls-cert", pki.server_cert, "--tls-key", pki.server_key};
  if (require_client_cert) {
    flags.insert(flags.end(), {"--tls-client-ca", pki.ca_cert});
  }
  return flags;
}

// relay_yaml() with `exporter_extra` lines ("  tls: {...}\n") in the exporter section.
std::string relay_yaml_with(const RelaySetup& setup, const std::string& exporter_extra) {
  std::string yaml = relay_yaml(setup);
  const std::string anchor = "  compression: gzip\n";
  const auto at = yaml.find(anchor);
  REQUIRE(at != std::string::npos);
  yaml.insert(at + anchor.size(), exporter_extra);
  return yaml;
}

// Rotation as Kubernetes does it: the new content appears at once (rename).
void replace_file(const std::string& path, const std::string& content) {
  write_file(path + ".new", content);
  std::filesystem::rename(path + ".new", path);
}

// relay_yaml() with a tls section (a flow map) on the receiver `listener`
// ("grpc" or "http").
std::string with_receiver_tls(const std::string& yaml, const std::string& listener,
                              const std::string& tls_flow_map) {
  std::string out = yaml;
  const std::string plain = "    " + listener + ": { endpoint: 127.0.0.1:0 }\n";
  const auto at = out.find(plain);
  REQUIRE(at != std::string::npos);
  out.replace(
      at, plain.size(),
      "    " + listener + ":\n      endpoint: 127.0.0.1:0\n      tls: " + tls_flow_map + "\n");
  return out;
}

// The receiver tls section for `pki`'s server certificate; with mTLS, clients
// need a certificate from its CA.
std::string receiver_tls(const Pki& pki, bool mutual) {
  return "{ cert_file: " + pki.server_cert + ", key_file: " + pki.server_key +
         (mutual ? ", client_ca_file: " + pki.ca_cert : std::string()) + " }";
}

// A receiver certificate at fixed paths, first `first`'s, rotated in place
// (key first, then certificate: for a moment they do not match).
struct LiveCertificate {
  std::string cert;
  std::string key;
  LiveCertificate(const TempDir& dir, const std::string& name, const Pki& first)
      : cert(dir.file(name + ".crt")), key(dir.file(name + ".key")) {
    write_file(cert, read_file(first.server_cert));
    write_file(key, read_file(first.server_key));
  }
  void rotate_to(const Pki& next) const {
    replace_file(key, read_file(next.server_key));
    replace_file(cert, read_file(next.server_cert));
  }
  std::string tls_section() const { return "{ cert_file: " + cert + ", key_file: " + key + " }"; }
};

void send_requests(const Daemon& daemon, AppSide& app, Via via, std::uint64_t first_seed,
                   int count) {
  for (int i = 0; i < count; ++i) {
    std::vector<GeneratedSpan> spans;
    const auto result = app.send(
        daemon, via, make_request({.seed = first_seed + static_cast<unsigned>(i)}, &spans), spans);
    REQUIRE_MESSAGE(result.has_value(), "the relay did not answer");
    REQUIRE_MESSAGE(is_ok(via, *result), "status " << result->status << ": " << result->body);
  }
}

void check_all_arrived(const Sink& sink, const std::vector<GeneratedSpan>& acked) {
  const Arrival arrival = wait_for_arrival(sink, acked);
  MESSAGE(arrival.describe());
  CHECK(arrival.missing == 0);
  CHECK(arrival.altered == 0);
  CHECK(arrival.unacked == 0);
}

bool sink_saw(const Sink& sink, const std::string& text) {
  return sink.requests_log().find(text) != std::string::npos;
}

double failed_exports(const Daemon& daemon) {
  return Scrape(daemon).sum("spanrelay_exporter_failed_requests_total");
}

// One OTLP/gRPC export over TLS; returns the gRPC status code.
int grpc_tls_export(const std::string& target, const std::string& request_bytes,
                    const grpc::SslCredentialsOptions& tls) {
  // A channel of its own (no subchannel shared with earlier calls): each call
  // makes a fresh connection and handshake.
  grpc::ChannelArguments arguments;
  arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto channel = grpc::CreateCustomChannel(target, grpc::SslCredentials(tls), arguments);
  auto stub = otlp_collector::TraceService::NewStub(channel);
  otlp_collector::ExportTraceServiceRequest request;
  REQUIRE(request.ParseFromString(request_bytes));
  otlp_collector::ExportTraceServiceResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 20s);
  return stub->Export(&context, request, &response).error_code();
}

}  // namespace

TEST_CASE(
    "tls: otlp_grpc to a TLS upstream: spans arrive unaltered; the bearer token rotates "
    "without a restart") {
  TempDir dir;
  const Pki pki = make_pki(dir, "a");
  Sink sink(dir, sink_tls_flags(pki));
  const std::string token = dir.file("token");
  write_file(token, "one\n");
  RelaySetup setup;
  setup.endpoint = sink.grpc_address();
  Daemon daemon(dir,
                relay_yaml_with(setup, "  tls: { ca_file: " + pki.ca_cert +
                                           " }\n  auth: { bearer_token_file: " + token + " }\n"));
  AppSide app;
  send_requests(daemon, app, Via::kGrpc, 100, 5);
  check_all_arrived(sink, app.acked());
  CHECK(sink_saw(sink, "\"authorization\":\"Bearer one\""));
  CHECK_FALSE(sink_saw(sink, "\"authorization\":\"Bearer one\\n"));
  // The token never reaches the relay's log.
  CHECK(daemon.process().log().find("Bearer one") == std::string::npos);

  replace_file(token, "two\n");
  // The file is looked at every few seconds: keep exporting until it shows.
  std::uint64_t seed = 200;
  const bool rotated = wait_until([&] {
    send_requests(daemon, app, Via::kGrpc, seed++, 1);
    return wait_until([&] { return sink.span_count() >= app.acked().size(); }, 20s) &&
           sink_saw(sink, "\"authorization\":\"Bearer two\"");
  });
  CHECK(rotated);
  check_all_arrived(sink, app.acked());
  CHECK(daemon.process().running());
  check_balance(daemon);
}

TEST_CASE(
    "tls: otlp_http over https:// to a TLS upstream: spans arrive unaltered, with the "
    "bearer token") {
  TempDir dir;
  const Pki pki = make_pki(dir, "h");
  Sink sink(dir, sink_tls_flags(pki));
  const std::string token = dir.file("token");
  write_file(token, "http-token\n");
  RelaySetup setup;
  setup.exporter = "otlp_http";
  setup.endpoint = "https://" + sink.http_address();
  Daemon daemon(dir, relay_yaml_with(setup, "  tls: { ca_file: " + pki.ca_cert +
                                                ", min_version: \"1.2\" }\n  auth: { "
                                                "bearer_token_file: " +
                                                token + " }\n"));
  AppSide app;
  send_requests(daemon, app, Via::kHttp, 300, 3);
  send_requests(daemon, app, Via::kGrpc, 310, 3);
  check_all_arrived(sink, app.acked());
  CHECK(sink_saw(sink, "\"transport\":\"http\""));
  CHECK(sink_saw(sink, "\"authorization\":\"Bearer http-token\""));
  CHECK(failed_exports(daemon) == 0);
  check_balance(daemon);
}

TEST_CASE(
    "tls: an upstream that requires a client certificate gets spans only from a relay "
    "that has one; the other's exports fail, are counted, and its spans wait") {
  TempDir dir;
  const Pki pki = make_pki(dir, "m");
  Sink sink(dir, sink_tls_flags(pki, /*require_client_cert=*/true));
  AppSide delivered;  // across both exporters: the sink holds the spans of both
  for (const std::string exporter : {"otlp_grpc", "otlp_http"}) {
    CAPTURE(exporter);
    RelaySetup setup;
    setup.exporter = exporter;
    setup.endpoint =
        exporter == "otlp_grpc" ? sink.grpc_address() : "https://" + sink.http_address();
    const std::size_t before = sink.span_count();
    Daemon without(dir, relay_yaml_with(setup, "  tls: { ca_file: " + pki.ca_cert + " }\n"),
                   "without-" + exporter);
    AppSide refused_app;
    send_requests(without, refused_app, Via::kGrpc, 400, 2);
    CHECK(wait_until([&] { return failed_exports(without) >= 2; }));
    // Nothing got through, and nothing was lost: the batches wait for a retry.
    CHECK(sink.span_count() == before);
    CHECK(wait_until([&] {
      const Scrape m(without);
      return m["spanrelay_queue_spans"] + m["spanrelay_spool_spans"] ==
             static_cast<double>(refused_app.acked().size());
    }));
    CHECK(Scrape(without).sum("spanrelay_dropped_spans_total{") == 0);
    check_balance(without);

    Daemon with(dir,
                relay_yaml_with(setup, "  tls: { ca_file: " + pki.ca_cert +
                                           ", cert_file: " + pki.client_cert +
                                           ", key_file: " + pki.client_key + " }\n"),
                "with-" + exporter);
    send_requests(with, delivered, Via::kGrpc, exporter == "otlp_grpc" ? 500 : 600, 3);
    check_all_arrived(sink, delivered.acked());
    check_balance(with);
  }
}

TEST_CASE("tls: an upstream certificate from an unknown CA is refused and counted") {
  TempDir dir;
  const Pki trusted = make_pki(dir, "trusted");
  const Pki other = make_pki(dir, "other");
  Sink sink(dir, sink_tls_flags(other));
  RelaySetup setup;
  setup.endpoint = sink.grpc_address();
  Daemon daemon(dir, relay_yaml_with(setup, "  tls: { ca_file: " + trusted.ca_cert + " }\n"));
  AppSide app;
  send_requests(daemon, app, Via::kGrpc, 700, 2);
  CHECK(wait_until([&] { return failed_exports(daemon) >= 2; }));
  CHECK(sink.span_count() == 0);
  CHECK(Scrape(daemon).sum("spanrelay_dropped_spans_total{") == 0);
  check_balance(daemon);
}

TEST_CASE(
    "tls: certificate rotation: a new upstream CA is picked up from the rewritten ca_file "
    "without restarting the relay, and no span is lost") {
  TempDir dir;
  const Pki first = make_pki(dir, "first");
  const Pki second = make_pki(dir, "second");
  const std::string address = loopback(unused_tcp_port());
  const std::string relay_ca = dir.file("relay-ca.crt");
  write_file(relay_ca, read_file(first.ca_cert));
  RelaySetup setup;
  setup.endpoint = address;
  Daemon daemon(dir, relay_yaml_with(setup, "  tls: { ca_file: " + relay_ca + " }\n"));
  AppSide app;
  std::vector<GeneratedSpan> before_rotation;
  {
    Sink old_sink(dir, sink_on(address, sink_tls_flags(first)), "old-sink");
    send_requests(daemon, app, Via::kGrpc, 800, 3);
    check_all_arrived(old_sink, app.acked());
    before_rotation = app.acked();
    old_sink.process().signal(SIGTERM);
    REQUIRE(old_sink.process().wait_exit() == 0);
  }
  // The upstream comes back with a certificate from a new CA: the relay does
  // not trust it yet, and keeps its batches.
  Sink new_sink(dir, sink_on(address, sink_tls_flags(second)), "new-sink");
  AppSide after;
  send_requests(daemon, after, Via::kGrpc, 900, 3);
  const double failures_before = failed_exports(daemon);
  CHECK(wait_until([&] { return failed_exports(daemon) > failures_before; }));
  CHECK(new_sink.span_count() == 0);

  replace_file(relay_ca, read_file(second.ca_cert));
  check_all_arrived(new_sink, after.acked());
  CHECK(daemon.process().running());
  CHECK(Scrape(daemon).sum("spanrelay_dropped_spans_total{") == 0);
  check_balance(daemon);
}

TEST_CASE(
    "tls: the gRPC receiver serves TLS (and mTLS): a client with the CA exports, a "
    "plaintext client cannot") {
  TempDir dir;
  const Pki pki = make_pki(dir, "r");
  Sink sink(dir);
  for (const bool mutual : {false, true}) {
    CAPTURE(mutual);
    RelaySetup setup;
    setup.endpoint = sink.grpc_address();
    const std::string yaml =
        with_receiver_tls(relay_yaml(setup), "grpc", receiver_tls(pki, mutual));
    Daemon daemon(dir, yaml, mutual ? "relay-mtls" : "relay-tls");
    const std::string target = daemon.tcp_address("grpc");

    std::vector<GeneratedSpan> spans;
    const std::string body = serialize(make_request({.seed = mutual ? 1100u : 1000u}, &spans));
    grpc::SslCredentialsOptions client;
    client.pem_root_certs = read_file(pki.ca_cert);
    if (mutual) {
      // Without a client certificate the handshake is refused.
      CHECK(grpc_tls_export(target, body, client) != grpc::StatusCode::OK);
      client.pem_cert_chain = read_file(pki.client_cert);
      client.pem_private_key = read_file(pki.client_key);
    }
    CHECK(grpc_tls_export(target, body, client) == grpc::StatusCode::OK);
    CHECK(grpc_export(target, body).status != grpc::StatusCode::OK);
    CHECK(wait_until([&] {
      const auto arrived = sink.spans();
      return std::count_if(arrived.begin(), arrived.end(), [&](const SinkSpan& span) {
               return span.span_id == spans.front().span_id_hex;
             }) >= 1;
    }));
  }
}

namespace {

// One OTLP/HTTP export over HTTPS, with the relay's own HTTP exporter as the
// client (a fresh one: a fresh connection and handshake each time).
spanrelay::exporters::ExportResult https_export(const std::string& address,
                                                const std::string& ca_file, const Pki* client,
                                                const std::string& body) {
  spanrelay::config::ExporterConfig config;
  config.type = spanrelay::config::ExporterType::kOtlpHttp;
  config.endpoint = "https://" + address + "/v1/traces";
  config.compression = spanrelay::config::Compression::kNone;
  config.timeout = 10s;
  config.tls.enabled = true;
  config.tls.ca_file = ca_file;
  if (client != nullptr) {
    config.tls.cert_file = client->client_cert;
    config.tls.key_file = client->client_key;
  }
  auto exporter = spanrelay::exporters::HttpExporter::create(config);
  REQUIRE_MESSAGE(exporter.ok(), exporter.error().message);
  return exporter.value()->export_request(body, 1);
}

bool succeeded(const spanrelay::exporters::ExportResult& result) {
  return result.disposition == spanrelay::exporters::ExportDisposition::kSuccess;
}

}  // namespace

TEST_CASE(
    "tls: the OTLP/HTTP receiver serves HTTPS (and mTLS): a client with the CA exports, a "
    "plaintext or certificate-less client is refused and counted") {
  TempDir dir;
  const Pki pki = make_pki(dir, "h");
  Sink sink(dir);
  for (const bool mutual : {false, true}) {
    CAPTURE(mutual);
    RelaySetup setup;
    setup.endpoint = sink.grpc_address();
    const std::string yaml =
        with_receiver_tls(relay_yaml(setup), "http", receiver_tls(pki, mutual));
    Daemon daemon(dir, yaml, mutual ? "relay-https-mtls" : "relay-https");
    const std::string address = daemon.tcp_address("http");

    std::vector<GeneratedSpan> spans;
    const std::string body = serialize(make_request({.seed = mutual ? 2100u : 2000u}, &spans));
    if (mutual) {
      const auto refused = https_export(address, pki.ca_cert, nullptr, body);
      CHECK_FALSE(succeeded(refused));
    }
    const auto accepted = https_export(address, pki.ca_cert, mutual ? &pki : nullptr, body);
    CHECK_MESSAGE(succeeded(accepted), accepted.code << ": " << accepted.message);
    // Plain HTTP to the TLS port gets no OTLP answer.
    CHECK_THROWS(http_export(address, body));
    const std::string failures =
        "spanrelay_receiver_tls_handshake_failures_total{receiver=\"http\"}";
    CHECK(wait_until([&] { return daemon.metric(failures) >= (mutual ? 2 : 1); }));
    CHECK(wait_until([&] {
      const auto arrived = sink.spans();
      return std::count_if(arrived.begin(), arrived.end(), [&](const SinkSpan& span) {
               return span.span_id == spans.front().span_id_hex;
             }) >= 1;
    }));
  }
}

TEST_CASE(
    "tls: a rotated OTLP/HTTP receiver certificate is served to new connections without a "
    "restart") {
  TempDir dir;
  const Pki first = make_pki(dir, "h1");
  const Pki second = make_pki(dir, "h2");
  // The relay reads its certificate from paths that rotation rewrites.
  const LiveCertificate live(dir, "live-https", first);
  Sink sink(dir);
  RelaySetup setup;
  setup.endpoint = sink.grpc_address();
  Daemon daemon(dir, with_receiver_tls(relay_yaml(setup), "http", live.tls_section()),
                "relay-https-rotate");
  const std::string address = daemon.tcp_address("http");
  std::vector<GeneratedSpan> spans;
  const std::string body = serialize(make_request({.seed = 2200u}, &spans));
  CHECK(succeeded(https_export(address, first.ca_cert, nullptr, body)));
  CHECK_FALSE(succeeded(https_export(address, second.ca_cert, nullptr, body)));

  // Between the key and the certificate the relay keeps serving the old pair.
  live.rotate_to(second);
  CHECK(
      wait_until([&] { return succeeded(https_export(address, second.ca_cert, nullptr, body)); }));
  CHECK_FALSE(succeeded(https_export(address, first.ca_cert, nullptr, body)));
  check_balance(daemon);
}

TEST_CASE(
    "tls: a rotated gRPC receiver certificate is served to new connections without a restart") {
  TempDir dir;
  const Pki first = make_pki(dir, "g1");
  const Pki second = make_pki(dir, "g2");
  const LiveCertificate live(dir, "live-grpc", first);
  Sink sink(dir);
  RelaySetup setup;
  setup.endpoint = sink.grpc_address();
  Daemon daemon(dir, with_receiver_tls(relay_yaml(setup), "grpc", live.tls_section()),
                "relay-grpc-rotate");
  const std::string target = daemon.tcp_address("grpc");
  std::vector<GeneratedSpan> spans;
  const std::string body = serialize(make_request({.seed = 2300u}, &spans));
  grpc::SslCredentialsOptions trusts_first;
  trusts_first.pem_root_certs = read_file(first.ca_cert);
  grpc::SslCredentialsOptions trusts_second;
  trusts_second.pem_root_certs = read_file(second.ca_cert);
  CHECK(grpc_tls_export(target, body, trusts_first) == grpc::StatusCode::OK);
  CHECK(grpc_tls_export(target, body, trusts_second) != grpc::StatusCode::OK);

  live.rotate_to(second);
  CHECK(wait_until(
      [&] { return grpc_tls_export(target, body, trusts_second) == grpc::StatusCode::OK; }));
  CHECK(grpc_tls_export(target, body, trusts_first) != grpc::StatusCode::OK);
  check_balance(daemon);
}
