#include "daemon/telemetry/process_metrics.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

namespace spanrelay::telemetry {

namespace {

// proc(5) numbers the fields of /proc/<pid>/stat from 1; field 3 (state) is
// the first one after the command name.
constexpr std::size_t kFirstFieldAfterComm = 3;
constexpr std::size_t kUtime = 14;
constexpr std::size_t kStime = 15;
constexpr std::size_t kStartTime = 22;
constexpr std::size_t kVsize = 23;
constexpr std::size_t kRss = 24;

Result<double> parse_number(std::string_view text, std::string_view what) {
  // Every field used here is an unsigned decimal (rss is signed in the kernel
  // but never negative for a live process).
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    return Error{std::string(what) + ": not a number: '" + std::string(text) + "'"};
  }
  return static_cast<double>(value);
}

Result<std::string> read_whole_file(const char* path) {
  // /proc files report size 0: read until EOF rather than by stat().
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error{std::string(path) + ": " + std::strerror(errno)};
  std::string text;
  std::array<char, 4096> buf{};
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int saved = errno;
      ::close(fd);
      return Error{std::string(path) + ": " + std::strerror(saved)};
    }
    if (n == 0) break;
    text.append(buf.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  return text;
}

// Reads /proc/self/stat on every scrape; remembers the last good reading so a
// transient failure never makes the CPU counter look like a reset.
class ProcSelfStat {
 public:
  ProcSelfStat(long ticks_per_second, long page_size, ProcessStat first)
      : ticks_per_second_(ticks_per_second), page_size_(page_size), last_(first) {}

  ProcessStat read() {
    auto text = read_whole_file("/proc/self/stat");
    std::lock_guard lock(mutex_);
    if (text.ok()) {
      auto parsed = parse_proc_stat(text.value(), ticks_per_second_, page_size_);
      if (parsed.ok()) last_ = parsed.value();
    }
    return last_;
  }

 private:
  const long ticks_per_second_;
  const long page_size_;
  std::mutex mutex_;
  ProcessStat last_;
};

}  // namespace

Result<ProcessStat> parse_proc_stat(std::string_view text, long ticks_per_second, long page_size) {
  if (ticks_per_second <= 0 || page_size <= 0) return Error{"invalid tick rate or page size"};
  // The command name (field 2) is in parentheses and may itself hold spaces
  // and ')': the fields resume after the last ')'.
  const auto comm_end = text.rfind(')');
  if (comm_end == std::string_view::npos) return Error{"/proc stat: no command name"};
  std::vector<std::string_view> fields;  // fields[0] is field 3
  std::string_view rest = text.substr(comm_end + 1);
  while (!rest.empty()) {
    const auto start = rest.find_first_not_of(" \n");
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    const auto end = std::min(rest.find_first_of(" \n"), rest.size());
    fields.push_back(rest.substr(0, end));
    rest.remove_prefix(end);
  }
  if (fields.size() <= kRss - kFirstFieldAfterComm) {
    return Error{"/proc stat: " + std::to_string(fields.size() + kFirstFieldAfterComm - 1) +
                 " fields, expected at least " + std::to_string(kRss)};
  }
  auto field = [&](std::size_t number, std::string_view what) {
    return parse_number(fields[number - kFirstFieldAfterComm], what);
  };
  const auto utime = field(kUtime, "utime");
  const auto stime = field(kStime, "stime");
  const auto start = field(kStartTime, "starttime");
  const auto vsize = field(kVsize, "vsize");
  const auto rss = field(kRss, "rss");
  for (const auto* r : {&utime, &stime, &start, &vsize, &rss}) {
    if (!r->ok()) return r->error();
  }
  const auto ticks = static_cast<double>(ticks_per_second);
  ProcessStat stat;
  stat.cpu_seconds = (utime.value() + stime.value()) / ticks;
  stat.start_seconds_after_boot = start.value() / ticks;
  stat.virtual_memory_bytes = vsize.value();
  stat.resident_memory_bytes = rss.value() * static_cast<double>(page_size);
  return stat;
}

Result<double> parse_boot_time(std::string_view proc_stat_text) {
  constexpr std::string_view kKey = "btime ";
  std::size_t pos = 0;
  while (pos < proc_stat_text.size()) {
    auto end = proc_stat_text.find('\n', pos);
    if (end == std::string_view::npos) end = proc_stat_text.size();
    const auto line = proc_stat_text.substr(pos, end - pos);
    if (line.substr(0, kKey.size()) == kKey) return parse_number(line.substr(kKey.size()), "btime");
    pos = end + 1;
  }
  return Error{"/proc/stat: no btime line"};
}

Result<std::size_t> count_open_fds(const std::string& fd_dir) {
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(fd_dir.c_str()), &::closedir);
  if (!dir) return Error{fd_dir + ": " + std::strerror(errno)};
  const std::string own_fd = std::to_string(::dirfd(dir.get()));
  std::size_t count = 0;
  while (const dirent* entry = ::readdir(dir.get())) {
    const std::string_view name = entry->d_name;
    if (name == "." || name == ".." || name == own_fd) continue;
    ++count;
  }
  return count;
}

Status register_process_metrics(Registry& registry) {
  const long ticks_per_second = ::sysconf(_SC_CLK_TCK);
  const long page_size = ::sysconf(_SC_PAGESIZE);
  auto self_text = read_whole_file("/proc/self/stat");
  if (!self_text.ok()) return self_text.error();
  auto first = parse_proc_stat(self_text.value(), ticks_per_second, page_size);
  if (!first.ok()) return first.error();
  auto system_text = read_whole_file("/proc/stat");
  if (!system_text.ok()) return system_text.error();
  auto boot_time = parse_boot_time(system_text.value());
  if (!boot_time.ok()) return boot_time.error();
  if (auto fds = count_open_fds(); !fds.ok()) return fds.error();

  auto stat = std::make_shared<ProcSelfStat>(ticks_per_second, page_size, first.value());
  // HELP texts and names as in the Prometheus client libraries, so existing
  // dashboards and alerts apply unchanged.
  registry.callback_counter("process_cpu_seconds_total",
                            "Total user and system CPU time spent in seconds.",
                            [stat] { return stat->read().cpu_seconds; });
  registry.callback_gauge("process_resident_memory_bytes", "Resident memory size in bytes.",
                          [stat] { return stat->read().resident_memory_bytes; });
  registry.callback_gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                          [stat] { return stat->read().virtual_memory_bytes; });
  registry.callback_gauge("process_open_fds", "Number of open file descriptors.", [] {
    const auto fds = count_open_fds();
    return fds.ok() ? static_cast<double>(fds.value()) : 0.0;
  });
  registry.callback_gauge("process_max_fds", "Maximum number of open file descriptors.", [] {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0.0;
    return static_cast<double>(limit.rlim_cur);
  });
  // Fixed for the life of the process: computed once.
  const double start_time = boot_time.value() + first.value().start_seconds_after_boot;
  registry.callback_gauge("process_start_time_seconds",
                          "Start time of the process since unix epoch in seconds.",
                          [start_time] { return start_time; });
  return Ok{};
}

}  // namespace spanrelay::telemetry
