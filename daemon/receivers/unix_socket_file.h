#pragma once
// Unix-socket files of the receivers: the parent directory is created, a
// stale socket left by a crashed run is replaced (but a regular file of the
// same name is never deleted), the mode is applied once the socket exists,
// and the file is removed when the listener closes.
#include <cstdint>
#include <string>

#include "daemon/common/result.h"

namespace spanrelay::receivers {

// Which file a socket path named when we bound it: another daemon may have
// replaced it since (a rolling update on one node), and its file is not ours
// to remove.
struct SocketFileId {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  bool operator==(const SocketFileId&) const = default;
};

// Before bind(): make the path usable. A socket file that still accepts
// connections belongs to a running process and is an error, not "stale".
Status prepare_unix_socket_path(const std::string& path);
// After bind(): chmod the socket file (default 0660: the app's group may connect).
Status apply_unix_socket_mode(const std::string& path, std::uint32_t mode);
// After bind(): the identity to pass to remove_unix_socket_file.
SocketFileId socket_file_id(const std::string& path);
// On close: unlink if the path is still the socket we bound.
void remove_unix_socket_file(const std::string& path, SocketFileId bound);

}  // namespace spanrelay::receivers
