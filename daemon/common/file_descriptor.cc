#include "daemon/common/file_descriptor.h"

#include <array>
#include <cerrno>

namespace spanrelay {

ReadAllResult read_all(int fd, std::size_t max_bytes, std::string& out) {
  std::array<char, 16384> buffer{};
  while (true) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return {ReadAllResult::Status::kError, errno};
    }
    if (n == 0) return {};
    out.append(buffer.data(), static_cast<std::size_t>(n));
    if (out.size() > max_bytes) return {ReadAllResult::Status::kTooLarge, 0};
  }
}

}  // namespace spanrelay
