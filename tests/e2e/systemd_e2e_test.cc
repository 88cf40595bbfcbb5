// systemd integration with the real tools: socket activation through
// systemd-socket-activate (the sd_listen_fds protocol systemd uses) and the
// Type=notify datagrams, received by a listener of our own standing in for
// systemd's $NOTIFY_SOCKET.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <set>

#include "tests/e2e/harness.h"

using namespace spanrelay::e2e;

namespace {

constexpr const char* kSocketActivate = "/usr/bin/systemd-socket-activate";

// A loopback port that is free now (systemd-socket-activate binds it next).
int free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(address);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), size) == 0);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0);
  ::close(fd);
  return ntohs(address.sin_port);
}

bool is_socket(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

std::set<std::string> digests(const std::vector<GeneratedSpan>& spans) {
  std::set<std::string> out;
  for (const auto& span : spans) out.insert(span.digest);
  return out;
}

std::set<std::string> digests(const std::vector<SinkSpan>& spans) {
  std::set<std::string> out;
  for (const auto& span : spans) out.insert(span.digest);
  return out;
}

// Stands in for systemd's notification socket: a datagram socket whose path
// the daemon gets in $NOTIFY_SOCKET.
class NotifyListener {
 public:
  explicit NotifyListener(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    // Bounds each wait: only a daemon that never notifies reaches it.
    timeval limit{60, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
  }
  ~NotifyListener() { ::close(fd_); }

  // The next datagram ("" when none came within the limit).
  std::string next() {
    char buffer[4096];
    const auto received = ::recv(fd_, buffer, sizeof(buffer), 0);
    return received > 0 ? std::string(buffer, static_cast<std::size_t>(received)) : "";
  }

 private:
  std::string path_;
  int fd_ = -1;
};

std::string relay_config(const std::string& grpc, const std::string& http, const Sink& sink) {
  return "receivers:\n  otlp:\n    grpc: " + grpc + "\n    http: " + http +
         "\nbatch: { timeout: 20ms }\n"
         "exporter: { type: otlp_grpc, endpoint: " +
         sink.grpc_address() +
         " }\n"
         "telemetry: { metrics: { endpoint: 127.0.0.1:0 } }\n";
}

}  // namespace

TEST_CASE(
    "systemd: socket activation passes a Unix socket and a TCP port; spans arrive through "
    "both") {
  TempDir dir;
  Sink sink(dir);
  const std::string grpc_socket = dir.file("otlp-grpc.sock");
  const int http_port = free_tcp_port();
  const int stray_port = free_tcp_port();
  const std::string http_address = "127.0.0.1:" + std::to_string(http_port);
  const std::string config = dir.file("relay.yaml");
  write_file(config, relay_config("{ endpoint: \"\", unix_socket: " + grpc_socket + " }",
                                  "{ endpoint: " + http_address + " }", sink));
  const std::string ready = dir.file("relay.ready");

  // systemd-socket-activate binds the sockets and starts the daemon when the
  // first connection arrives, as a .socket unit does.
  Process activator(
      kSocketActivate,
      {"-l", grpc_socket, "-l", http_address, "-l", "127.0.0.1:" + std::to_string(stray_port),
       "--fdname=otlp-grpc:otlp-http:stray", SPANRELAYD_PATH, "--config", config, "--ready-file",
       ready},
      dir.file("relay.log"));
  REQUIRE(wait_until([&] { return is_socket(grpc_socket); }));

  // The app connects before the daemon runs: the call waits in the backlog.
  std::vector<GeneratedSpan> over_unix;
  const auto unix_result =
      grpc_export("unix:" + grpc_socket, serialize(make_request({.seed = 11}, &over_unix)));
  CHECK(unix_result.status == 0);
  REQUIRE(sink.wait_for_spans(over_unix.size()));
  REQUIRE(wait_until([&] { return !read_file(ready).empty(); }));

  // The daemon serves the passed sockets instead of binding its own.
  const std::string ready_json = read_file(ready);
  CHECK(ready_json.find("\"unix:" + grpc_socket + "\"") != std::string::npos);
  CHECK(ready_json.find("\"" + http_address + "\"") != std::string::npos);
  const std::string log = activator.log();
  CHECK(log.find("otlp-grpc: serving unix:" + grpc_socket + " (passed by the service manager)") !=
        std::string::npos);
  CHECK(log.find("otlp-http: serving " + http_address + " (passed by the service manager)") !=
        std::string::npos);
  // A passed socket that no listener is configured for is named, not served.
  CHECK(log.find("127.0.0.1:" + std::to_string(stray_port) + " (stray) matches no configured") !=
        std::string::npos);

  std::vector<GeneratedSpan> over_tcp;
  CHECK(http_export(http_address, serialize(make_request({.seed = 12}, &over_tcp))).status == 200);
  REQUIRE(sink.wait_for_spans(over_unix.size() + over_tcp.size()));
  auto expected = digests(over_unix);
  const auto tcp_digests = digests(over_tcp);
  expected.insert(tcp_digests.begin(), tcp_digests.end());
  CHECK(digests(sink.spans()) == expected);

  activator.signal(SIGTERM);
  CHECK(activator.wait_exit() == 0);
  // The socket file belongs to the service manager, which keeps accepting
  // connections into the backlog across a restart: the daemon leaves it.
  CHECK(is_socket(grpc_socket));
}

TEST_CASE("systemd: Type=notify gets READY=1, RELOADING=1 then READY=1 on SIGHUP, STOPPING=1") {
  TempDir dir;
  Sink sink(dir);
  NotifyListener notify(dir.file("notify.sock"));
  const std::string config = dir.file("relay.yaml");
  write_file(config, relay_config("{ endpoint: 127.0.0.1:0 }", "{ endpoint: \"\" }", sink));
  Process daemon("/usr/bin/env",
                 {"NOTIFY_SOCKET=" + dir.file("notify.sock"), SPANRELAYD_PATH, "--config", config,
                  "--ready-file", dir.file("relay.ready")},
                 dir.file("relay.log"));

  const std::string ready = notify.next();
  CHECK(ready.find("READY=1") != std::string::npos);
  CHECK(ready.find("STATUS=serving") != std::string::npos);
  // READY=1 comes only once the listeners are bound.
  CHECK(!read_file(dir.file("relay.ready")).empty());

  daemon.signal(SIGHUP);
  const std::string reloading = notify.next();
  CHECK(reloading.find("RELOADING=1") != std::string::npos);
  CHECK(reloading.find("MONOTONIC_USEC=") != std::string::npos);
  CHECK(notify.next().find("READY=1") != std::string::npos);

  daemon.signal(SIGTERM);
  CHECK(notify.next().find("STOPPING=1") != std::string::npos);
  CHECK(daemon.wait_exit() == 0);
}
