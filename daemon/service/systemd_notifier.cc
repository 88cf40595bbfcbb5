#include "daemon/service/systemd_notifier.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include <cstdlib>
#include <cstring>

namespace spanrelay::service {

SystemdNotifier SystemdNotifier::from_environment() {
  const char* path = std::getenv("NOTIFY_SOCKET");
  SystemdNotifier notifier(path ? path : "");
  unsetenv("NOTIFY_SOCKET");
  return notifier;
}

SystemdNotifier::SystemdNotifier(std::string socket_path)
    : socket_path_(std::move(socket_path)),
      socket_(socket_path_.empty() ? -1 : ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {}

bool SystemdNotifier::send(std::string_view message) {
  if (!enabled()) return true;
  if (!socket_.valid()) return false;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (socket_path_.size() >= sizeof(address.sun_path)) return false;
  std::memcpy(address.sun_path, socket_path_.data(), socket_path_.size());
  // A leading '@' names a socket in the abstract namespace (a leading NUL).
  if (address.sun_path[0] == '@') address.sun_path[0] = '\0';
  const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_path_.size());
  const auto sent = ::sendto(socket_.get(), message.data(), message.size(), MSG_NOSIGNAL,
                             reinterpret_cast<const sockaddr*>(&address), length);
  return sent == static_cast<ssize_t>(message.size());
}

bool SystemdNotifier::ready(std::string_view status) {
  return send("READY=1\nSTATUS=" + std::string(status));
}

bool SystemdNotifier::reloading() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const auto usec = static_cast<long long>(now.tv_sec) * 1000000 + now.tv_nsec / 1000;
  return send("RELOADING=1\nSTATUS=reloading configuration\nMONOTONIC_USEC=" +
              std::to_string(usec));
}

bool SystemdNotifier::stopping() {
  return send("STOPPING=1\nSTATUS=flushing spans to the upstream");
}

bool SystemdNotifier::status(std::string_view text) { return send("STATUS=" + std::string(text)); }

}  // namespace spanrelay::service
