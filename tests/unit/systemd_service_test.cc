// The sd_listen_fds and sd_notify protocols, against real sockets.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "daemon/service/socket_activation.h"
#include "daemon/service/systemd_notifier.h"

using spanrelay::service::bound_address;
using spanrelay::service::SocketActivation;
using spanrelay::service::SystemdNotifier;

namespace {

// Descriptors well above anything the test process holds, so that passed
// sockets sit on consecutive numbers as systemd puts them.
constexpr int kFirstPassedFd = 700;

int tcp_listener(std::uint32_t address_host_order, std::uint16_t* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(address_host_order);
  socklen_t size = sizeof(address);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), size) == 0);
  REQUIRE(::listen(fd, 8) == 0);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0);
  *port = ntohs(address.sin_port);
  return fd;
}

int unix_listener(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  REQUIRE(::listen(fd, 8) == 0);
  return fd;
}

// Moves `fd` to `target` as systemd would have passed it.
void place(int fd, int target) {
  REQUIRE(::dup2(fd, target) == target);
  ::close(fd);
}

std::string temp_socket_path(const char* name) {
  return "/tmp/spanrelay-unit-" + std::to_string(::getpid()) + "-" + name;
}

const std::string kOurPid = std::to_string(::getpid());

}  // namespace

TEST_CASE("socket_activation: sockets are matched to listeners by their bound address") {
  const std::string path = temp_socket_path("grpc.sock");
  std::filesystem::remove(path);
  std::uint16_t loopback_port = 0;
  std::uint16_t wildcard_port = 0;
  place(unix_listener(path), kFirstPassedFd);
  place(tcp_listener(INADDR_LOOPBACK, &loopback_port), kFirstPassedFd + 1);
  place(tcp_listener(INADDR_ANY, &wildcard_port), kFirstPassedFd + 2);

  auto activation =
      SocketActivation::from_values(kOurPid, "3", "otlp-grpc:otlp-http:other", kFirstPassedFd);
  REQUIRE(activation.ok());
  auto& sockets = activation.value();
  CHECK(sockets.size() == 3);

  CHECK_FALSE(sockets.take_unix("/elsewhere.sock").has_value());
  auto unix_socket = sockets.take_unix(path);
  REQUIRE(unix_socket.has_value());
  CHECK(bound_address(unix_socket->get()) == "unix:" + path);

  const std::string loopback = "127.0.0.1:" + std::to_string(loopback_port);
  CHECK_FALSE(sockets.take_tcp("127.0.0.1:" + std::to_string(wildcard_port)).has_value());
  CHECK_FALSE(sockets.take_tcp("127.0.0.1:0").has_value());
  auto tcp_socket = sockets.take_tcp("localhost:" + std::to_string(loopback_port));
  REQUIRE(tcp_socket.has_value());
  CHECK(bound_address(tcp_socket->get()) == loopback);
  // A wildcard bind serves only a wildcard listener ("0.0.0.0", "::" or "").
  auto wildcard = sockets.take_tcp("0.0.0.0:" + std::to_string(wildcard_port));
  CHECK(wildcard.has_value());
  CHECK(sockets.size() == 0);
  CHECK(sockets.take_unclaimed().empty());
  std::filesystem::remove(path);
}

TEST_CASE("socket_activation: unclaimed sockets keep their names; other pids are ignored") {
  std::uint16_t port = 0;
  place(tcp_listener(INADDR_LOOPBACK, &port), kFirstPassedFd);

  // LISTEN_PID names another process: the descriptors are not ours to take.
  auto not_ours = SocketActivation::from_values("1", "1", "x", kFirstPassedFd);
  REQUIRE(not_ours.ok());
  CHECK(not_ours.value().size() == 0);
  CHECK(::fcntl(kFirstPassedFd, F_GETFD) >= 0);  // still open

  auto ours = SocketActivation::from_values(kOurPid, "1", "metrics", kFirstPassedFd);
  REQUIRE(ours.ok());
  auto unclaimed = ours.value().take_unclaimed();
  REQUIRE(unclaimed.size() == 1);
  CHECK(unclaimed[0].name == "metrics");
  CHECK(unclaimed[0].address == "127.0.0.1:" + std::to_string(port));
  // Close-on-exec from now on: a child process must not inherit the listener.
  CHECK((::fcntl(unclaimed[0].fd.get(), F_GETFD) & FD_CLOEXEC) != 0);
}

TEST_CASE("socket_activation: bad counts and non-listening descriptors are errors") {
  CHECK_FALSE(SocketActivation::from_values(kOurPid, "many", "", kFirstPassedFd).ok());
  CHECK_FALSE(SocketActivation::from_values(kOurPid, "-1", "", kFirstPassedFd).ok());

  place(::socket(AF_INET, SOCK_STREAM, 0), kFirstPassedFd);  // never listened on
  auto passed = SocketActivation::from_values(kOurPid, "1", "otlp-grpc", kFirstPassedFd);
  REQUIRE_FALSE(passed.ok());
  CHECK(passed.error().message.find("otlp-grpc") != std::string::npos);
  CHECK(passed.error().message.find("not a listening stream socket") != std::string::npos);
}

namespace {

// A datagram socket standing in for systemd's; `abstract` puts it in the
// abstract namespace (NOTIFY_SOCKET="@name").
class NotifyReceiver {
 public:
  NotifyReceiver(const std::string& name, bool abstract) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, name.data(), name.size());
    if (abstract) address.sun_path[0] = '\0';
    const auto size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&address), size) == 0);
    timeval limit{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
  }
  ~NotifyReceiver() { ::close(fd_); }
  std::string next() {
    char buffer[1024];
    const auto n = ::recv(fd_, buffer, sizeof(buffer), 0);
    return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : "";
  }

 private:
  int fd_ = -1;
};

}  // namespace

TEST_CASE("systemd_notifier: datagrams reach a path socket and an abstract socket") {
  const std::string path = temp_socket_path("notify");
  std::filesystem::remove(path);
  {
    NotifyReceiver receiver(path, false);
    SystemdNotifier notifier(path);
    CHECK(notifier.enabled());
    REQUIRE(notifier.ready("serving"));
    CHECK(receiver.next() == "READY=1\nSTATUS=serving");
    REQUIRE(notifier.reloading());
    const auto reloading = receiver.next();
    CHECK(reloading.rfind("RELOADING=1\n", 0) == 0);
    CHECK(reloading.find("MONOTONIC_USEC=") != std::string::npos);
    REQUIRE(notifier.stopping());
    CHECK(receiver.next().rfind("STOPPING=1", 0) == 0);
  }
  std::filesystem::remove(path);

  const std::string abstract = "@spanrelay-unit-" + std::to_string(::getpid());
  NotifyReceiver receiver(abstract, true);
  SystemdNotifier notifier(abstract);
  REQUIRE(notifier.status("hello"));
  CHECK(receiver.next() == "STATUS=hello");

  // Outside systemd nothing is sent and nothing fails.
  SystemdNotifier disabled("");
  CHECK_FALSE(disabled.enabled());
  CHECK(disabled.ready("x"));
}
