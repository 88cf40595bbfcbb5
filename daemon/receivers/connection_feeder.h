#pragma once
// Accepts connections on a listening socket someone else bound (systemd
// socket activation) and hands each to a server that cannot adopt a
// listening socket itself: gRPC takes accepted connections through its
// external-connection acceptor, but has no way to listen on a given fd.
#include <functional>
#include <thread>

#include "daemon/common/file_descriptor.h"

namespace spanrelay::receivers {

class ConnectionFeeder {
 public:
  // Receives each accepted connection (non-blocking, close-on-exec) and owns
  // it from then on. Runs on the feeder's thread.
  using Handoff = std::function<void(int listening_fd, int connection_fd)>;

  // Starts accepting at once.
  ConnectionFeeder(FileDescriptor listening_socket, Handoff handoff);
  ~ConnectionFeeder();  // stop()
  ConnectionFeeder(const ConnectionFeeder&) = delete;
  ConnectionFeeder& operator=(const ConnectionFeeder&) = delete;

  // Stops accepting and closes the listening socket (connections already
  // handed off are the server's). Safe twice.
  void stop();

 private:
  void accept_loop();

  FileDescriptor listening_;
  FileDescriptor wake_;  // an eventfd: stop() wakes the poll with it
  Handoff handoff_;
  std::thread thread_;
};

}  // namespace spanrelay::receivers
