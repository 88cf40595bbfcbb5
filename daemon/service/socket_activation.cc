#include "daemon/service/socket_activation.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <cstring>

#include "daemon/config/endpoint.h"

namespace spanrelay::service {

namespace {

// sd_listen_fds(3): passed descriptors start at 3.
constexpr int kListenFdsStart = 3;

std::optional<long> parse_number(std::string_view text) {
  long value = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end || text.empty()) return std::nullopt;
  return value;
}

std::vector<std::string> split_names(std::string_view names) {
  std::vector<std::string> out;
  while (!names.empty()) {
    const auto colon = names.find(':');
    out.emplace_back(names.substr(0, colon));
    if (colon == std::string_view::npos) break;
    names.remove_prefix(colon + 1);
  }
  return out;
}

bool is_listening_stream(int fd) {
  int type = 0;
  int listening = 0;
  socklen_t size = sizeof(type);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &size) != 0 || type != SOCK_STREAM) return false;
  size = sizeof(listening);
  return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) == 0 && listening != 0;
}

bool is_wildcard(const sockaddr_storage& address) {
  if (address.ss_family == AF_INET) {
    return reinterpret_cast<const sockaddr_in&>(address).sin_addr.s_addr == htonl(INADDR_ANY);
  }
  if (address.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(address).sin6_addr;
    return IN6_IS_ADDR_UNSPECIFIED(&in6);
  }
  return false;
}

std::uint16_t port_of(const sockaddr_storage& address) {
  if (address.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port);
  }
  if (address.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port);
  }
  return 0;
}

bool same_ip(const sockaddr_storage& a, const sockaddr* b) {
  if (a.ss_family != b->sa_family) return false;
  if (a.ss_family == AF_INET) {
    return reinterpret_cast<const sockaddr_in&>(a).sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in*>(b)->sin_addr.s_addr;
  }
  const auto& x = reinterpret_cast<const sockaddr_in6&>(a).sin6_addr;
  const auto& y = reinterpret_cast<const sockaddr_in6*>(b)->sin6_addr;
  return std::memcmp(&x, &y, sizeof(x)) == 0;
}

// Whether the socket bound at `bound` serves the configured host:port.
bool serves(const sockaddr_storage& bound, const config::HostPort& wanted) {
  if (wanted.port == 0 || port_of(bound) != wanted.port) return false;
  const bool wanted_wildcard =
      wanted.host.empty() || wanted.host == "0.0.0.0" || wanted.host == "::";
  if (wanted_wildcard || is_wildcard(bound)) return wanted_wildcard && is_wildcard(bound);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(wanted.host.c_str(), nullptr, &hints, &found) != 0) return false;
  bool match = false;
  for (const addrinfo* info = found; info && !match; info = info->ai_next) {
    match = same_ip(bound, info->ai_addr);
  }
  freeaddrinfo(found);
  return match;
}

}  // namespace

std::string bound_address(int fd) {
  sockaddr_storage address{};
  socklen_t size = sizeof(address);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) return "";
  char text[INET6_ADDRSTRLEN] = {};
  switch (address.ss_family) {
    case AF_UNIX: {
      const auto& un = reinterpret_cast<const sockaddr_un&>(address);
      const auto path_bytes = size - offsetof(sockaddr_un, sun_path);
      if (path_bytes == 0 || un.sun_path[0] == '\0') return "unix:@abstract";
      return "unix:" + std::string(un.sun_path, strnlen(un.sun_path, path_bytes));
    }
    case AF_INET:
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(address).sin_addr, text,
                sizeof(text));
      return std::string(text) + ":" + std::to_string(port_of(address));
    case AF_INET6:
      inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(address).sin6_addr, text,
                sizeof(text));
      return "[" + std::string(text) + "]:" + std::to_string(port_of(address));
    default:
      return "";
  }
}

SocketActivation::SocketActivation(SocketActivation&& other) noexcept
    : sockets_(std::move(other.sockets_)) {}

SocketActivation& SocketActivation::operator=(SocketActivation&& other) noexcept {
  if (this != &other) {
    std::scoped_lock lock(mutex_, other.mutex_);
    sockets_ = std::move(other.sockets_);
  }
  return *this;
}

Result<SocketActivation> SocketActivation::from_environment() {
  const char* pid = std::getenv("LISTEN_PID");
  const char* fds = std::getenv("LISTEN_FDS");
  const char* names = std::getenv("LISTEN_FDNAMES");
  if (pid == nullptr || fds == nullptr) return SocketActivation{};
  auto activation = from_values(pid, fds, names ? names : "", kListenFdsStart);
  // Whatever the outcome, the variables describe this process only.
  if (activation.ok() && activation.value().size() > 0) {
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
  }
  return activation;
}

Result<SocketActivation> SocketActivation::from_values(std::string_view listen_pid,
                                                       std::string_view listen_fds,
                                                       std::string_view listen_fdnames,
                                                       int first_fd) {
  SocketActivation activation;
  const auto pid = parse_number(listen_pid);
  // Meant for another process (e.g. inherited through a shell): not ours.
  if (!pid || *pid != static_cast<long>(getpid())) return activation;
  const auto count = parse_number(listen_fds);
  if (!count || *count < 0 || *count > 1024) {
    return Error{"LISTEN_FDS is not a count of descriptors: '" + std::string(listen_fds) + "'"};
  }
  const auto names = split_names(listen_fdnames);
  for (long i = 0; i < *count; ++i) {
    const int fd = first_fd + static_cast<int>(i);
    FileDescriptor owned(fd);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    std::string name = i < static_cast<long>(names.size()) ? names[i] : "unknown";
    if (!is_listening_stream(fd)) {
      return Error{"socket activation: passed fd " + std::to_string(fd) + " (" + name +
                   ") is not a listening stream socket (ListenStream= is required)"};
    }
    std::string address = bound_address(fd);
    activation.sockets_.push_back(InheritedSocket{std::move(owned), std::move(name), address});
  }
  return activation;
}

std::optional<FileDescriptor> SocketActivation::take_unix(std::string_view path) {
  const std::string wanted = "unix:" + std::string(path);
  std::lock_guard lock(mutex_);
  for (auto it = sockets_.begin(); it != sockets_.end(); ++it) {
    if (it->address == wanted) {
      FileDescriptor fd = std::move(it->fd);
      sockets_.erase(it);
      return fd;
    }
  }
  return std::nullopt;
}

std::optional<FileDescriptor> SocketActivation::take_tcp(std::string_view host_port) {
  auto wanted = config::parse_host_port(host_port, config::EndpointRole::kListen);
  if (!wanted.ok()) return std::nullopt;
  std::lock_guard lock(mutex_);
  for (auto it = sockets_.begin(); it != sockets_.end(); ++it) {
    sockaddr_storage bound{};
    socklen_t size = sizeof(bound);
    if (getsockname(it->fd.get(), reinterpret_cast<sockaddr*>(&bound), &size) != 0) continue;
    if (bound.ss_family != AF_INET && bound.ss_family != AF_INET6) continue;
    if (serves(bound, wanted.value())) {
      FileDescriptor fd = std::move(it->fd);
      sockets_.erase(it);
      return fd;
    }
  }
  return std::nullopt;
}

std::vector<InheritedSocket> SocketActivation::take_unclaimed() {
  std::lock_guard lock(mutex_);
  return std::exchange(sockets_, {});
}

std::size_t SocketActivation::size() const {
  std::lock_guard lock(mutex_);
  return sockets_.size();
}

}  // namespace spanrelay::service
