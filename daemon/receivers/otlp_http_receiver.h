#pragma once
// OTLP/HTTP trace receiver (OTLP specification, "OTLP/HTTP"): POST /v1/traces
// with a binary protobuf or JSON ExportTraceServiceRequest, optionally
// compressed, answered in the request's encoding. It is a handler for
// HttpServer; decoding and admission are the shared Ingest path, so this file
// only maps HTTP onto it:
//   200  accepted: an empty ExportTraceServiceResponse ("" or "{}")
//   400  malformed body or compression       google.rpc.Status INVALID_ARGUMENT
//   413  over max_request_size               google.rpc.Status RESOURCE_EXHAUSTED
//   429  over the memory budget, Retry-After google.rpc.Status RESOURCE_EXHAUSTED
//   404 / 405 / 415                          plain text
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "daemon/config/config.h"
#include "daemon/receivers/http_server.h"
#include "daemon/receivers/ingest.h"

namespace spanrelay::receivers {

class PeerAccess;

class OtlpHttpReceiver {
 public:
  static constexpr const char* kTracesPath = "/v1/traces";

  // `max_request_size` bounds the body both on the wire and after
  // decompression. `ingest` must outlive the receiver.
  OtlpHttpReceiver(Ingest& ingest, std::size_t max_request_size);

  // The HttpServer handler. Never blocks: admission is a memory decision.
  HttpResponse handle(HttpRequest&& request);

  // HttpServerOptions::error_responder: a body over the wire limit is answered
  // with a google.rpc.Status in the request's encoding like every OTLP error.
  HttpResponse transport_error(const HttpRequestHeader& header, http::status status,
                               std::string_view message);

  // Options for the HttpServer that carries this receiver (body limit and
  // error responder set); `name` is for logs. The handler and responder bind
  // `this`: the receiver must outlive the server (or its shutdown()).
  HttpServerOptions server_options(std::string name, std::size_t io_threads = 1);
  HttpHandler handler();

  // Limits and access checks for the server_options() that follow
  // (receivers.otlp.*: max_header_size, read_timeout, idle_timeout; the
  // PeerAccess of allowed_cidrs / allowed_uids / max_connections).
  void set_connection_limits(const config::ReceiverLimitsConfig& limits,
                             std::shared_ptr<PeerAccess> access);

 private:
  Ingest& ingest_;
  std::size_t max_request_size_;
  std::optional<config::ReceiverLimitsConfig> limits_;
  std::shared_ptr<PeerAccess> access_;
};

}  // namespace spanrelay::receivers
