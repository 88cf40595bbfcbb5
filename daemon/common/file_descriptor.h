#pragma once
// Owns a POSIX file descriptor and closes it on every path out of a scope.
#include <unistd.h>

#include <cstddef>
#include <string>

namespace spanrelay {

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

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
