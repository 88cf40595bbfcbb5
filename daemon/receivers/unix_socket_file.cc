#include "daemon/receivers/unix_socket_file.h"

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace spanrelay::receivers {

Status prepare_unix_socket_path(const std::string& path) {
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return Error{"unix socket path is too long (" + std::to_string(path.size()) +
                 " bytes, the limit is 107): " + path};
  }
  std::error_code ec;
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::filesystem::create_directories(parent, ec);
    if (ec) return Error{"cannot create directory " + parent.string() + ": " + ec.message()};
  }
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return Error{"refusing to replace " + path + ": it exists and is not a socket"};
    }
    if (unlink(path.c_str()) != 0) {
      return Error{"cannot remove stale socket " + path + ": " + std::strerror(errno)};
    }
  }
  return Ok{};
}

Status apply_unix_socket_mode(const std::string& path, std::uint32_t mode) {
  if (chmod(path.c_str(), static_cast<mode_t>(mode)) != 0) {
    return Error{"cannot chmod " + path + ": " + std::strerror(errno)};
  }
  return Ok{};
}

void remove_unix_socket_file(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path.c_str());
}

}  // namespace spanrelay::receivers
