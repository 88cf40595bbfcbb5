#include "daemon/delivery/hash_ring.h"

#include <algorithm>
#include <cstring>

namespace spanrelay::delivery {
namespace {

// The 64-bit finalizer of MurmurHash3 (public domain): every input bit
// affects every output bit, so nearby inputs land far apart on the ring.
std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

std::uint64_t fnv1a64(std::string_view bytes) {
  std::uint64_t hash = 14695981039346656037ull;
  for (const unsigned char c : bytes) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

std::uint64_t load_big_endian(const std::uint8_t* bytes) {
  std::uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | bytes[i];
  return value;
}

}  // namespace

std::uint64_t trace_id_key(const otlp::TraceId& trace_id) {
  const std::uint64_t high = load_big_endian(trace_id.data());
  const std::uint64_t low = load_big_endian(trace_id.data() + 8);
  return mix64(low ^ mix64(high ^ 0x9e3779b97f4a7c15ull));
}

std::uint64_t text_key(std::string_view text) { return mix64(fnv1a64(text)); }

HashRing::HashRing(std::vector<std::string> members, unsigned virtual_nodes)
    : members_(std::move(members)) {
  std::sort(members_.begin(), members_.end());
  members_.erase(std::unique(members_.begin(), members_.end()), members_.end());
  points_.reserve(members_.size() * virtual_nodes);
  for (std::uint32_t m = 0; m < members_.size(); ++m) {
    const std::uint64_t seed = fnv1a64(members_[m]);
    for (std::uint64_t v = 0; v < virtual_nodes; ++v) {
      points_.push_back({mix64(seed ^ mix64(v + 1)), m});
    }
  }
  // members_ is sorted, so ordering ties by index orders them by name: the
  // ring does not depend on the order the members were given in.
  std::sort(points_.begin(), points_.end(), [](const Point& a, const Point& b) {
    return a.position != b.position ? a.position < b.position : a.member < b.member;
  });
}

std::size_t HashRing::owner_index(std::uint64_t key) const {
  auto it =
      std::lower_bound(points_.begin(), points_.end(), key,
                       [](const Point& point, std::uint64_t k) { return point.position < k; });
  if (it == points_.end()) it = points_.begin();
  return it->member;
}

}  // namespace spanrelay::delivery
