// Runs saved inputs through a fuzz target without libFuzzer, so that the seed
// corpus and every crash reproducer are replayed by ctest in the normal (gcc)
// and the ASan builds:
//   fuzz_replay_<name> DIR_OR_FILE...
// Directories are walked recursively in name order; hidden files (.gitkeep)
// are skipped. A missing path is an error, so a typo cannot make the test pass
// by replaying nothing. A failing property aborts (see fuzz_check.h); the last
// "replay:" line on stderr names the input that did it.
//
// As libFuzzer's -timeout and -rss_limit_mb do, a watchdog aborts when one
// input runs longer than FUZZ_REPLAY_TIMEOUT seconds (default 25) or the
// process grows past FUZZ_REPLAY_RSS_LIMIT_MB (default 2048): a reproducer of
// an endless, allocating loop must fail the test, not take the machine down.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
// Optional in a target, as with libFuzzer.
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {

namespace fs = std::filesystem;

bool is_hidden(const fs::path& path) { return path.filename().string().starts_with("."); }

// The inputs under `root` (or `root` itself), sorted; false if it does not exist.
bool collect_inputs(const fs::path& root, std::vector<fs::path>& inputs) {
  std::error_code error;
  if (fs::is_regular_file(root, error)) {
    inputs.push_back(root);
    return true;
  }
  if (!fs::is_directory(root, error)) return false;
  std::vector<fs::path> found;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (entry.is_regular_file() && !is_hidden(entry.path())) found.push_back(entry.path());
  }
  std::sort(found.begin(), found.end());
  inputs.insert(inputs.end(), found.begin(), found.end());
  return true;
}

bool read_file(const fs::path& path, std::string& contents) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return false;
  contents.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  return !file.bad();
}

std::size_t setting(const char* name, std::size_t fallback) {
  const char* text = std::getenv(name);
  return text != nullptr && std::atol(text) > 0 ? static_cast<std::size_t>(std::atol(text))
                                                : fallback;
}

std::size_t resident_megabytes() {
  std::FILE* statm = std::fopen("/proc/self/statm", "r");
  if (statm == nullptr) return 0;
  unsigned long size_pages = 0, resident_pages = 0;
  const int read = std::fscanf(statm, "%lu %lu", &size_pages, &resident_pages);
  std::fclose(statm);
  if (read != 2) return 0;
  return resident_pages * static_cast<std::size_t>(sysconf(_SC_PAGESIZE)) >> 20;
}

// The input being replayed and since when (steady clock, milliseconds).
std::atomic<const char*> current_input{nullptr};
std::atomic<long long> current_since_ms{0};

long long now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

[[noreturn]] void watchdog(std::size_t timeout_seconds, std::size_t rss_limit_mb) {
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const char* input = current_input.load();
    if (input == nullptr) continue;
    const long long elapsed_ms = now_ms() - current_since_ms.load();
    const std::size_t rss = resident_megabytes();
    if (elapsed_ms > static_cast<long long>(timeout_seconds) * 1000 || rss > rss_limit_mb) {
      std::fprintf(stderr, "replay: %s: %s (%lld ms, %zu MB resident)\n", input,
                   rss > rss_limit_mb ? "out of memory" : "timeout", elapsed_ms, rss);
      std::abort();
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR_OR_FILE...\n", argv[0]);
    return 2;
  }
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  std::thread(watchdog, setting("FUZZ_REPLAY_TIMEOUT", 25),
              setting("FUZZ_REPLAY_RSS_LIMIT_MB", 2048))
      .detach();
  std::size_t replayed = 0;
  for (int i = 1; i < argc; ++i) {
    std::vector<fs::path> inputs;
    if (!collect_inputs(argv[i], inputs)) {
      std::fprintf(stderr, "%s: no such file or directory\n", argv[i]);
      return 2;
    }
    for (const fs::path& input : inputs) {
      std::string contents;
      if (!read_file(input, contents)) {
        std::fprintf(stderr, "%s: cannot read\n", input.c_str());
        return 2;
      }
      std::fprintf(stderr, "replay: %s (%zu bytes)\n", input.c_str(), contents.size());
      current_since_ms.store(now_ms());
      current_input.store(input.c_str());
      LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(contents.data()),
                             contents.size());
      current_input.store(nullptr);
      ++replayed;
    }
  }
  std::fprintf(stderr, "replayed %zu inputs, no property failed\n", replayed);
  return 0;
}
