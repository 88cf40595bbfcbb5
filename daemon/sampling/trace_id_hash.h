#pragma once
// Trace ids are random (W3C Trace Context: at least the right-most 7 bytes),
// so their last 8 bytes are already a good hash.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "daemon/otlp/span_view.h"

namespace spanrelay::sampling {

struct TraceIdHash {
  std::size_t operator()(const otlp::TraceId& id) const noexcept {
    std::uint64_t low = 0;
    std::uint64_t high = 0;
    std::memcpy(&high, id.data(), 8);
    std::memcpy(&low, id.data() + 8, 8);
    // Mix both halves: some SDKs put structure (timestamps) in the high half.
    return static_cast<std::size_t>((low ^ (high * 0x9e3779b97f4a7c15ull)) * 0xbf58476d1ce4e5b9ull);
  }
};

}  // namespace spanrelay::sampling
