#include "daemon/receivers/unix_socket_file.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace spanrelay::receivers {

namespace {

// A crashed run leaves a socket file nobody listens on (connect() gets
// ECONNREFUSED at once); a live daemon's socket accepts.
bool accepts_connections(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), path.size());
  const bool accepted =
      ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return accepted;
}

}  // namespace

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
    if (accepts_connections(path)) {
      return Error{"another process is listening on " + path};
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

SocketFileId socket_file_id(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return {};
  return {static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
}

void remove_unix_socket_file(const std::string& path, SocketFileId bound) {
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && socket_file_id(path) == bound) {
    unlink(path.c_str());
  }
}

}  // namespace spanrelay::receivers
