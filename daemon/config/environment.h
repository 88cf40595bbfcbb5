#pragma once
// How the config loader sees the process environment. It takes a lookup
// function instead of calling getenv() itself so that tests can hand it a
// fixed environment and never touch (or depend on) the real one.
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace spanrelay::config {

// The value of an environment variable; nullopt when it is not set. A set but
// empty variable is "" (what that means is up to the caller).
using EnvironmentLookup = std::function<std::optional<std::string>(std::string_view name)>;

// Reads the real process environment (getenv).
std::optional<std::string> process_environment(std::string_view name);

}  // namespace spanrelay::config
