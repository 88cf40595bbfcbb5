#include "daemon/receivers/connection_feeder.h"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "daemon/common/thread_role.h"

namespace spanrelay::receivers {

namespace {

// accept() failing for lack of descriptors (EMFILE) is retried after a pause
// rather than in a hot loop; the pending connection waits in the backlog.
constexpr int kAcceptRetryDelayMs = 100;

}  // namespace

ConnectionFeeder::ConnectionFeeder(FileDescriptor listening_socket, Handoff handoff)
    : listening_(std::move(listening_socket)),
      wake_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      handoff_(std::move(handoff)) {
  const int flags = fcntl(listening_.get(), F_GETFL);
  fcntl(listening_.get(), F_SETFL, flags | O_NONBLOCK);
  thread_ = std::thread([this] { accept_loop(); });
}

ConnectionFeeder::~ConnectionFeeder() { stop(); }

void ConnectionFeeder::stop() {
  if (!thread_.joinable()) return;
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto written = ::write(wake_.get(), &one, sizeof(one));
  thread_.join();
  listening_ = FileDescriptor{};
}

void ConnectionFeeder::accept_loop() {
  set_current_thread_role("sr-grpc-accept", ThreadRole::kAckPath);
  pollfd fds[2] = {{listening_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
  for (;;) {
    const int ready = ::poll(fds, 2, -1);
    if (ready < 0 && errno != EINTR) {
      spdlog::error("socket activation: poll failed: {}", std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0) return;  // stop()
    for (;;) {
      const int connection =
          ::accept4(listening_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (connection >= 0) {
        handoff_(listening_.get(), connection);
        continue;
      }
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        spdlog::warn("socket activation: accept failed: {} (retrying)", std::strerror(errno));
        // Waits on the wake-up only: the listening socket stays readable.
        if (::poll(&fds[1], 1, kAcceptRetryDelayMs) > 0) return;
      }
      break;
    }
  }
}

}  // namespace spanrelay::receivers
