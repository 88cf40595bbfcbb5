#pragma once
// A small, generic HTTP/1.1 server on Boost.Beast, shared by the OTLP/HTTP
// receiver and the telemetry endpoint. It listens on TCP and Unix sockets with
// one session implementation, keeps connections alive, and bounds what a
// client can make it do: a fresh parser per message with a header and body
// limit, and a deadline on every read and write.
//
// Threads: one io_context run by `io_threads` threads; each connection is
// served on its own strand, so a handler never runs twice at the same time for
// one connection (but does run concurrently for different connections).
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/common/file_descriptor.h"
#include "daemon/common/result.h"

namespace spanrelay::receivers {

class PeerAccess;
class ServerTlsContext;
namespace http = boost::beast::http;
using HttpRequest = http::request<http::string_body>;
using HttpResponse = http::response<http::string_body>;
using HttpRequestHeader = http::request_header<>;

// Runs on an io thread: must not block (no network, no waiting on locks held
// across I/O). An exception escaping it becomes a 500.
using HttpHandler = std::function<HttpResponse(HttpRequest&&)>;

// Builds the answer the server sends on its own, before the handler saw the
// request (body over the limit: 413, malformed HTTP: 400, header too large:
// 431). `header` holds whatever was parsed (possibly nothing). Lets a protocol
// answer in its own error format (OTLP: a google.rpc.Status); the server sets
// version, keep-alive (always closed) and the payload size afterwards.
using HttpErrorResponder = std::function<HttpResponse(
    const HttpRequestHeader& header, http::status status, std::string_view message)>;

struct HttpServerOptions {
  std::size_t body_limit = 4u << 20;  // bytes on the wire, before any decompression
  // A deadline per message (and per response write), not per byte: a client
  // sending one byte a second is cut off like one sending nothing.
  std::chrono::milliseconds read_timeout{30000};
  // How long a keep-alive connection may wait for the first byte of its next
  // request; 0 = read_timeout.
  std::chrono::milliseconds idle_timeout{0};
  // When set, every accepted connection passes PeerAccess (allowed_cidrs,
  // allowed_uids/gids, max_connections) before any byte is read. Not owned:
  // it must outlive the server.
  PeerAccess* access = nullptr;
  std::size_t io_threads = 1;
  std::string name;                        // for logs and error messages
  std::uint32_t header_limit = 16 * 1024;  // bytes of request line + header fields
  HttpErrorResponder error_responder;      // empty: plain-text answers
  // When set, TCP listeners speak TLS (HTTPS); Unix sockets stay plaintext
  // (their access is the file mode and the peer's credentials).
  std::shared_ptr<ServerTlsContext> tls;
};

// A plain-text response, for handlers and the default error answers.
HttpResponse make_text_response(http::status status, std::string_view text, unsigned version = 11);

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, HttpHandler handler);
  ~HttpServer();  // shutdown()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // "host:port", "[v6addr]:port" or ":port" (all interfaces); port 0 picks a
  // free port (see bound_addresses()). The error names the address.
  Status listen_tcp(const std::string& host_port);
  // Creates the parent directory, replaces a stale socket file, binds, then
  // applies `mode` (e.g. 0660). The file is removed at shutdown.
  Status listen_unix(const std::string& path, std::uint32_t mode);
  // Serves a listening socket bound by someone else (systemd socket
  // activation), TCP or Unix; `address` is how logs and bound_addresses()
  // name it. The socket file of an adopted Unix socket belongs to its owner
  // and stays at shutdown.
  Status adopt(FileDescriptor listening_socket, const std::string& address);

  // Starts accepting on every listener and runs the io threads. Listeners
  // added after start() accept at once.
  void start();
  // Stops accepting, closes every connection (an answer being written is
  // finished first, within read_timeout), joins the io threads and removes the
  // Unix socket files. Idempotent; safe without start(). Must not be called
  // from a handler (it joins the io threads).
  void shutdown();

  // "127.0.0.1:41234", "[::1]:4318", "unix:/run/spanrelay/otlp-http.sock".
  std::vector<std::string> bound_addresses() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace spanrelay::receivers
