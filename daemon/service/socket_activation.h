#pragma once
// systemd socket activation (the sd_listen_fds protocol, done by hand so the
// daemon needs no libsystemd): the service manager binds the listening
// sockets, passes them as fds 3.. and names the count in LISTEN_FDS, the
// receiving pid in LISTEN_PID and optional names in LISTEN_FDNAMES. Apps can
// then connect before spanrelayd runs, and keep connecting across restarts:
// the kernel queues their connections on the socket systemd holds.
//
// A passed socket is adopted by the listener whose configured address it is
// bound to ("unix:/run/spanrelay/otlp-grpc.sock", "127.0.0.1:4317"), so one
// YAML file serves both with and without activation. Listeners with no passed
// socket bind their own; passed sockets no listener claims are reported.
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/common/file_descriptor.h"
#include "daemon/common/result.h"

namespace spanrelay::service {

struct InheritedSocket {
  FileDescriptor fd;
  std::string name;     // from LISTEN_FDNAMES ("unknown" when systemd gave none)
  std::string address;  // "unix:/path", "127.0.0.1:4317", "[::]:4317"
};

class SocketActivation {
 public:
  SocketActivation() = default;  // nothing inherited
  SocketActivation(SocketActivation&&) noexcept;
  SocketActivation& operator=(SocketActivation&&) noexcept;

  // Reads the variables of the current process. When LISTEN_PID names this
  // process, takes fds 3..3+LISTEN_FDS-1 (close-on-exec from now on) and
  // unsets the variables, so nothing started later believes they are its own.
  // An error names a passed fd that is not a listening stream socket.
  static Result<SocketActivation> from_environment();
  // The same from explicit values (tests).
  static Result<SocketActivation> from_values(std::string_view listen_pid,
                                              std::string_view listen_fds,
                                              std::string_view listen_fdnames, int first_fd);

  // The passed socket bound to this Unix socket path, if any.
  std::optional<FileDescriptor> take_unix(std::string_view path);
  // The passed TCP socket bound to this configured "host:port" (a wildcard
  // host matches a wildcard bind of either family), if any.
  std::optional<FileDescriptor> take_tcp(std::string_view host_port);
  // Sockets no listener took; the caller logs and closes them.
  std::vector<InheritedSocket> take_unclaimed();

  std::size_t size() const;

 private:
  mutable std::mutex mutex_;
  std::vector<InheritedSocket> sockets_;
};

// The address a socket is bound to, in the spelling above ("" if unknown).
std::string bound_address(int fd);

}  // namespace spanrelay::service
