#include "bench/loadgen/process_stats.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace spanrelay::loadgen {

Result<double> process_cpu_seconds(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/stat";
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return Error{"cannot read " + path};
  // Field 2 (comm) is in parentheses and may contain spaces or ')': the
  // fields after the last ')' are positional, starting with field 3 (state).
  const auto close = line.rfind(')');
  if (close == std::string::npos) return Error{"unexpected format of " + path};
  std::istringstream fields(line.substr(close + 1));
  std::string field;
  unsigned long long utime = 0;
  unsigned long long stime = 0;
  for (int number = 3; number <= 15 && fields >> field; ++number) {
    if (number == 14) utime = std::stoull(field);
    if (number == 15) stime = std::stoull(field);
  }
  if (!fields) return Error{"unexpected format of " + path};
  const long ticks_per_second = ::sysconf(_SC_CLK_TCK);
  return static_cast<double>(utime + stime) / static_cast<double>(ticks_per_second);
}

Result<std::int64_t> process_peak_rss_kib(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/status";
  std::ifstream in(path);
  if (!in) return Error{"cannot read " + path};
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      std::istringstream value(line.substr(6));
      std::int64_t kib = 0;
      if (value >> kib) return kib;
    }
  }
  return Error{"no VmHWM in " + path};
}

}  // namespace spanrelay::loadgen
