#pragma once
// Unix-socket files of the receivers: the parent directory is created, a
// stale socket left by a crashed run is replaced (but a regular file of the
// same name is never deleted), the mode is applied once the socket exists,
// and the file is removed when the listener closes.
#include <cstdint>
#include <string>

#include "daemon/common/result.h"

namespace spanrelay::receivers {

// Before bind(): make the path usable.
Status prepare_unix_socket_path(const std::string& path);
// After bind(): chmod the socket file (default 0660: the app's group may connect).
Status apply_unix_socket_mode(const std::string& path, std::uint32_t mode);
// On close: unlink if it is still a socket.
void remove_unix_socket_file(const std::string& path);

}  // namespace spanrelay::receivers
