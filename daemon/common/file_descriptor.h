#pragma once
// Owns a POSIX file descriptor and closes it on every path out of a scope.
#include <unistd.h>

#include <cstddef>
#include <string>
#include <utility>

namespace spanrelay {

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd = -1) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(other.release()) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept {
    if (this != &other) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = other.release();
    }
    return *this;
  }
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership (e.g. to a library that closes the descriptor itself).
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// Reads `fd` to its end into `out`, retrying EINTR, stopping once more than
// `max_bytes` arrived (a config or secret file is never allowed to be huge).
struct ReadAllResult {
  enum class Status { kOk, kError, kTooLarge };
  Status status = Status::kOk;
  int error_number = 0;  // errno, with kError
};
ReadAllResult read_all(int fd, std::size_t max_bytes, std::string& out);

}  // namespace spanrelay
