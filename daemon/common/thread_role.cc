#include "daemon/common/thread_role.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace spanrelay {

void set_current_thread_role(std::string_view name, ThreadRole role) {
  const std::string short_name(name.substr(0, 15));
  pthread_setname_np(pthread_self(), short_name.c_str());
  if (role != ThreadRole::kBackground) return;
  // On Linux a nice value belongs to a thread (PRIO_PROCESS with a thread id).
  const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
  errno = 0;
  const int current = ::getpriority(PRIO_PROCESS, tid);
  if (current == -1 && errno != 0) return;
  ::setpriority(PRIO_PROCESS, tid, current + kBackgroundNiceOffset);
}

}  // namespace spanrelay
