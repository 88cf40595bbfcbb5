#pragma once
// What a fuzz target uses to state a property. Unlike assert() it stays on in
// release builds (the gcc replay runs RelWithDebInfo, i.e. with NDEBUG), and
// it aborts: libFuzzer and the sanitizers treat an abort as a crash and save
// the input that caused it.
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace spanrelay::fuzz {

[[noreturn]] inline void property_failed(const char* condition, std::string_view detail,
                                         const char* file, int line) {
  std::fprintf(stderr, "%s:%d: fuzz property failed: %s\n", file, line, condition);
  if (!detail.empty()) {
    std::fprintf(stderr, "  %.*s\n", static_cast<int>(detail.size()), detail.data());
  }
  std::abort();
}

}  // namespace spanrelay::fuzz

// FUZZ_CHECK(condition) or FUZZ_CHECK(condition, detail): `detail` is anything
// convertible to std::string_view, evaluated only when the check fails.
#define FUZZ_CHECK(condition, ...)                                                              \
  do {                                                                                          \
    if (!(condition)) {                                                                         \
      ::spanrelay::fuzz::property_failed(#condition, ::std::string_view(__VA_ARGS__), __FILE__, \
                                         __LINE__);                                             \
    }                                                                                           \
  } while (false)
