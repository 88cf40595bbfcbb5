#include "daemon/receivers/listening_socket.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

namespace spanrelay::receivers {

Result<FileDescriptor> bind_tcp_listener(const std::string& host_port) {
  std::string host;
  std::string port;
  if (!host_port.empty() && host_port.front() == '[') {
    const auto close = host_port.find("]:");
    if (close == std::string::npos) return Error{"expected [address]:port"};
    host = host_port.substr(1, close - 1);
    port = host_port.substr(close + 2);
  } else {
    const auto colon = host_port.rfind(':');
    if (colon == std::string::npos) return Error{"expected host:port"};
    host = host_port.substr(0, colon);
    port = host_port.substr(colon + 1);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const int resolved =
      getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found);
  if (resolved != 0 || found == nullptr) {
    return Error{"cannot resolve '" + host + "': " + gai_strerror(resolved)};
  }
  FileDescriptor socket_fd(
      ::socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC, found->ai_protocol));
  std::string failure;
  if (!socket_fd.valid()) {
    failure = std::strerror(errno);
  } else {
    const int one = 1;
    setsockopt(socket_fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(socket_fd.get(), found->ai_addr, found->ai_addrlen) != 0 ||
        ::listen(socket_fd.get(), SOMAXCONN) != 0) {
      failure = std::strerror(errno);
    }
  }
  freeaddrinfo(found);
  if (!failure.empty()) return Error{failure};
  return socket_fd;
}

Result<FileDescriptor> bind_unix_listener(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) return Error{"the path is too long"};
  std::memcpy(address.sun_path, path.data(), path.size());
  FileDescriptor socket_fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!socket_fd.valid()) return Error{std::strerror(errno)};
  if (::bind(socket_fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(socket_fd.get(), SOMAXCONN) != 0) {
    return Error{std::strerror(errno)};
  }
  return socket_fd;
}

std::uint16_t bound_port(int fd) {
  sockaddr_storage bound{};
  socklen_t size = sizeof(bound);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &size) != 0) return 0;
  if (bound.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
  }
  if (bound.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port);
  }
  return 0;
}

}  // namespace spanrelay::receivers
