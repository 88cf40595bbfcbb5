#pragma once
// The sd_notify protocol by hand (no libsystemd): with Type=notify, systemd
// passes a datagram socket in $NOTIFY_SOCKET and waits for "READY=1" before
// it calls the service started, so units ordered after spanrelay (and
// `systemctl start`) wait until every listener is bound. RELOADING=1 and
// STOPPING=1 keep `systemctl status` honest during SIGHUP and shutdown.
#include <string>
#include <string_view>

#include "daemon/common/file_descriptor.h"

namespace spanrelay::service {

class SystemdNotifier {
 public:
  // Reads $NOTIFY_SOCKET ("/path" or "@abstract"); without it every call is
  // a no-op, so the daemon runs the same outside systemd. The variable is
  // unset so that nothing the daemon starts notifies in its name.
  static SystemdNotifier from_environment();
  explicit SystemdNotifier(std::string socket_path);

  bool enabled() const { return !socket_path_.empty(); }

  // Each returns false when a datagram could not be sent (logged by the caller).
  bool ready(std::string_view status);
  // RELOADING=1 with MONOTONIC_USEC, which systemd 253+ requires to match it
  // with the READY=1 that ends the reload.
  bool reloading();
  bool stopping();
  bool status(std::string_view text);

  // One raw datagram of "KEY=value" lines.
  bool send(std::string_view message);

 private:
  std::string socket_path_;
  FileDescriptor socket_;
};

}  // namespace spanrelay::service
