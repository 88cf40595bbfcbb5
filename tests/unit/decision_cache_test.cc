#include "daemon/sampling/decision_cache.h"

#include <doctest/doctest.h>

using spanrelay::otlp::TraceId;
using spanrelay::sampling::DecisionCache;

namespace {
TraceId id(std::uint32_t n) {
  TraceId t{};
  for (int i = 0; i < 4; ++i) t[15 - i] = static_cast<std::uint8_t>(n >> (8 * i));
  return t;
}
}  // namespace

TEST_CASE("decision_cache: remembers keep and drop") {
  DecisionCache cache(10);
  cache.remember(id(1), true);
  cache.remember(id(2), false);
  CHECK(cache.find(id(1)) == true);
  CHECK(cache.find(id(2)) == false);
  CHECK_FALSE(cache.find(id(3)).has_value());
}

TEST_CASE("decision_cache: bounded, the oldest decision is forgotten first") {
  DecisionCache cache(3);
  for (std::uint32_t i = 1; i <= 5; ++i) cache.remember(id(i), i % 2 == 0);
  CHECK(cache.size() == 3);
  CHECK_FALSE(cache.find(id(1)).has_value());
  CHECK_FALSE(cache.find(id(2)).has_value());
  CHECK(cache.find(id(3)) == false);
  CHECK(cache.find(id(5)) == false);
  CHECK(cache.find(id(4)) == true);
}

TEST_CASE("decision_cache: capacity 0 remembers nothing") {
  DecisionCache cache(0);
  cache.remember(id(1), true);
  CHECK_FALSE(cache.find(id(1)).has_value());
}

TEST_CASE("decision_cache: re-deciding a trace does not grow the cache") {
  DecisionCache cache(2);
  cache.remember(id(1), false);
  cache.remember(id(1), true);
  cache.remember(id(2), true);
  CHECK(cache.size() == 2);
  CHECK(cache.find(id(1)) == true);
}
