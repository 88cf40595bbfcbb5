#include "daemon/config/environment.h"

#include <cstdlib>

namespace spanrelay::config {

std::optional<std::string> process_environment(std::string_view name) {
  // getenv needs a NUL-terminated name; a name with a NUL in it cannot be set.
  if (name.find('\0') != std::string_view::npos) return std::nullopt;
  const char* value = std::getenv(std::string(name).c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

}  // namespace spanrelay::config
