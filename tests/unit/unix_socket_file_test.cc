// Socket files of the receivers: stale ones are replaced, live ones are not,
// and a daemon removes only the file it bound.
#include "daemon/receivers/unix_socket_file.h"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>

using namespace spanrelay::receivers;

namespace {

// Binds a socket file at `path`; listening or not (a crashed run's leftover).
int bind_socket(const std::string& path, bool listen) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  if (listen) REQUIRE(::listen(fd, 4) == 0);
  return fd;
}

}  // namespace

TEST_CASE("unix_socket_file: a stale socket is replaced, a live one is refused") {
  const std::string path = "/tmp/spanrelay-unit-sock-" + std::to_string(::getpid());
  std::filesystem::remove(path);

  ::close(bind_socket(path, false));  // left behind: nobody listens
  REQUIRE(prepare_unix_socket_path(path).ok());
  CHECK_FALSE(std::filesystem::exists(path));

  const int live = bind_socket(path, true);
  const auto refused = prepare_unix_socket_path(path);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("another process is listening") != std::string::npos);
  CHECK(std::filesystem::exists(path));
  ::close(live);
  std::filesystem::remove(path);
}

TEST_CASE("unix_socket_file: shutdown removes only the socket file this process bound") {
  const std::string path = "/tmp/spanrelay-unit-sock2-" + std::to_string(::getpid());
  std::filesystem::remove(path);
  const int ours = bind_socket(path, true);
  const auto our_id = socket_file_id(path);
  CHECK(our_id.inode != 0);

  // Another daemon replaced the file (a rolling update on the same node).
  std::filesystem::remove(path);
  const int theirs = bind_socket(path, true);
  remove_unix_socket_file(path, our_id);
  CHECK(std::filesystem::exists(path));  // theirs stays

  remove_unix_socket_file(path, socket_file_id(path));
  CHECK_FALSE(std::filesystem::exists(path));
  ::close(ours);
  ::close(theirs);
}
