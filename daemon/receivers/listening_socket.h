#pragma once
// Listening sockets the gRPC receiver binds itself, so that its own accept
// loop (ConnectionFeeder) can check each connection (PeerAccess) before gRPC
// sees it: gRPC's own listeners offer no hook at accept.
#include <cstdint>
#include <string>

#include "daemon/common/file_descriptor.h"
#include "daemon/common/result.h"

namespace spanrelay::receivers {

// "host:port" or "[v6]:port" (host names are resolved, the first address
// wins); port 0 picks a free one. Close-on-exec, SO_REUSEADDR, listening.
Result<FileDescriptor> bind_tcp_listener(const std::string& host_port);

// Binds and listens on `path` (prepare_unix_socket_path first).
Result<FileDescriptor> bind_unix_listener(const std::string& path);

// The port a TCP socket is bound to (0 on error).
std::uint16_t bound_port(int fd);

}  // namespace spanrelay::receivers
