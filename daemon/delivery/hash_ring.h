#pragma once
// Consistent hashing for load balancing (issue 8): every member puts
// `virtual_nodes` points on a 64-bit ring; a key belongs to the member whose
// point comes first at or after it (wrapping). Adding or removing one of N
// members therefore moves only the keys of the arcs it gains or loses, about
// 1/N of them, and a key that stays with its member keeps going there.
//
// The points depend only on the member names, never on their order or on
// which other members exist, so every relay with the same member list routes
// a trace to the same gateway.
//
// Immutable once built: share it (std::shared_ptr<const HashRing>) and build a
// new one when the membership changes.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/otlp/span_view.h"

namespace spanrelay::delivery {

// Balance: a member's share of the ring has a relative standard deviation of
// about 1/sqrt(virtual_nodes). 2048 keeps three members within about 2 % of an
// even split, for 32 KiB of points per member and a ~12-step lookup.
inline constexpr unsigned kDefaultVirtualNodes = 2048;

class HashRing {
 public:
  explicit HashRing(std::vector<std::string> members,
                    unsigned virtual_nodes = kDefaultVirtualNodes);

  bool empty() const { return members_.empty(); }
  // Sorted by name, duplicates removed.
  const std::vector<std::string>& members() const { return members_; }

  // The index into members() of the key's owner. The ring must not be empty.
  std::size_t owner_index(std::uint64_t key) const;
  const std::string& owner(std::uint64_t key) const { return members_[owner_index(key)]; }

 private:
  struct Point {
    std::uint64_t position;
    std::uint32_t member;
  };
  std::vector<std::string> members_;
  std::vector<Point> points_;  // sorted by position (ties: by member name)
};

// The routing keys. Both are spread evenly over 64 bits whatever the input
// looks like (trace ids with a timestamp in the high half, similar service
// names), because ring positions are compared as whole 64-bit numbers.
std::uint64_t trace_id_key(const otlp::TraceId& trace_id);
std::uint64_t text_key(std::string_view text);

}  // namespace spanrelay::delivery
